"""Unit transforms and CI → SE conversion: every unit × scale cell, plus properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from marketbayesmeta.compiler.units import (
    SCALES,
    UNITS,
    se_delta,
    se_from_ci,
    transform_for,
    z_for_level,
)

EXPECTED = {
    ("relative_percent", "log_relative"): (5.2, math.log(1.052)),
    ("relative_fraction", "log_relative"): (0.052, math.log(1.052)),
    ("ratio", "log_relative"): (1.052, math.log(1.052)),
    ("log_relative", "log_relative"): (0.05, 0.05),
    ("percentage_point", "percentage_point"): (1.3, 1.3),
    ("proportion_difference", "percentage_point"): (0.013, 1.3),
}


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("scale", SCALES)
def test_every_cell(unit: str, scale: str) -> None:
    t = transform_for(unit, scale)
    if (unit, scale) not in EXPECTED:
        assert t is None, f"{unit} -> {scale} must be incompatible"
        return
    x, y = EXPECTED[(unit, scale)]
    assert t is not None
    assert float(t.forward(np.array([x]))[0]) == pytest.approx(y, rel=1e-12)
    assert float(t.inverse(t.forward(np.array([x])))[0]) == pytest.approx(x, rel=1e-12)


DOMAINS = {
    "relative_percent": st.floats(-99.0, 1e4),
    "relative_fraction": st.floats(-0.99, 100.0),
    "ratio": st.floats(1e-3, 1e3),
    "log_relative": st.floats(-10, 10),
    "percentage_point": st.floats(-100, 100),
    "proportion_difference": st.floats(-1, 1),
}


@pytest.mark.parametrize("pair", sorted(EXPECTED), ids="->".join)
@given(data=st.data())
def test_monotone_and_exact_inverse(pair: tuple[str, str], data: st.DataObject) -> None:
    t = transform_for(*pair)
    a = data.draw(DOMAINS[pair[0]])
    b = data.draw(DOMAINS[pair[0]])
    fa, fb = t.forward(np.array([a, b]))
    if a < b:
        assert fa <= fb
    assert float(t.inverse(np.array([fa]))[0]) == pytest.approx(a, rel=1e-9, abs=1e-12)


# CI -> SE, literal numbers worked out by hand (not through z_for_level or the transforms):
# two-sided z from a normal table: z_0.95 = 1.6448536270 (90 %), z_0.975 = 1.9599639845 (95 %),
# z_0.995 = 2.5758293035 (99 %).
CI_CASES = [
    # relative_percent [1, 9] at 90 %: ln 1.09 = 0.0861776962, ln 1.01 = 0.0099503309,
    # width 0.0762273654 / (2 * 1.6448536270 = 3.2897072539) = 0.0231714738
    ("relative_percent", "log_relative", 1.0, 9.0, 0.90, 0.0231714737830995),
    # relative_fraction [0.01, 0.09] at 90 %: the same bounds as above, as fractions
    ("relative_fraction", "log_relative", 0.01, 0.09, 0.90, 0.0231714737830995),
    # ratio [0.8, 1.25] at 95 %: ln 1.25 - ln 0.8 = 2 * 0.2231435513 = 0.4462871026,
    # / (2 * 1.9599639845 = 3.9199279690) = 0.1138508427
    ("ratio", "log_relative", 0.8, 1.25, 0.95, 0.11385084270646688),
    # log_relative [0.01, 0.09] at 95 %: 0.08 / 3.9199279690 = 0.0204085383
    ("log_relative", "log_relative", 0.01, 0.09, 0.95, 0.02040853827698616),
    # percentage_point [-0.2, 1.1] at 99 %: 1.3 / (2 * 2.5758293035 = 5.1516586071) = 0.2523459140
    ("percentage_point", "percentage_point", -0.2, 1.1, 0.99, 0.25234591403415185),
    # proportion_difference [-0.002, 0.011] at 99 %: x 100 -> [-0.2, 1.1] pp, as above
    ("proportion_difference", "percentage_point", -0.002, 0.011, 0.99, 0.25234591403415185),
]


@pytest.mark.parametrize(("unit", "scale", "lower", "upper", "level", "expected"), CI_CASES)
def test_ci_to_se_hand_computed(unit: str, scale: str, lower: float, upper: float, level: float,
                                expected: float) -> None:
    got = se_from_ci(transform_for(unit, scale), np.array([lower]), np.array([upper]), np.array([level]))
    assert got.dtype == np.float64
    assert float(got[0]) == pytest.approx(expected, rel=1e-9)


# SE -> SE by the delta method, |f'(x)| * se, by hand:
SE_CASES = [
    ("relative_percent", "log_relative", 25.0, 5.0, 0.04),  # 5 / (100 + 25)
    ("relative_percent", "log_relative", -20.0, 4.0, 0.05),  # 4 / (100 - 20)
    ("relative_fraction", "log_relative", 0.25, 0.1, 0.08),  # 0.1 / (1 + 0.25)
    ("relative_fraction", "log_relative", -0.5, 0.1, 0.2),  # 0.1 / (1 - 0.5)
    ("ratio", "log_relative", 0.8, 0.04, 0.05),  # 0.04 / 0.8
    ("ratio", "log_relative", 2.0, 0.5, 0.25),  # 0.5 / 2
    ("log_relative", "log_relative", -0.3, 0.03, 0.03),  # identity
    ("percentage_point", "percentage_point", -1.3, 0.4, 0.4),  # identity
    ("proportion_difference", "percentage_point", -0.013, 0.004, 0.4),  # 100 * 0.004
]


@pytest.mark.parametrize(("unit", "scale", "estimate", "se", "expected"), SE_CASES)
def test_delta_method_hand_computed(unit: str, scale: str, estimate: float, se: float, expected: float) -> None:
    got = se_delta(transform_for(unit, scale), np.array([estimate]), np.array([se]))
    assert got.dtype == np.float64
    assert float(got[0]) == pytest.approx(expected, rel=1e-12)


def test_object_columns_are_converted_to_float() -> None:
    """Tracker columns can reach the helpers as object-dtype pandas Series (mixed or missing
    cells); the helpers must treat them as numbers and return float arrays."""
    obj = lambda *v: pd.Series(list(v), dtype=object)  # noqa: E731
    ratio = transform_for("ratio", "log_relative")
    se = se_from_ci(ratio, obj(0.8), obj(1.25), obj(0.95))
    assert se.dtype == np.float64 and float(se[0]) == pytest.approx(0.11385084270646688, rel=1e-9)
    for unit, scale, estimate, s, expected in SE_CASES:
        got = se_delta(transform_for(unit, scale), obj(estimate), obj(s))
        assert got.dtype == np.float64, unit
        assert float(got[0]) == pytest.approx(expected, rel=1e-12), unit
    z = z_for_level(obj(0.9, 0.95))
    assert z.dtype == np.float64 and z.tolist() == pytest.approx([1.6448536269514722, 1.959963984540054])


@given(est=st.floats(-5, 5), se=st.floats(1e-4, 10), level=st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99, 0.999]))
def test_ci_to_se_recovers_the_se_of_a_normal_ci(est: float, se: float, level: float) -> None:
    """A normal CI built with scipy's quantile (an implementation independent of z_for_level)."""
    z = float(scipy.stats.norm.ppf(0.5 + level / 2))
    t = transform_for("log_relative", "log_relative")
    assert float(se_from_ci(t, est - z * se, est + z * se, level)) == pytest.approx(se, rel=1e-9)


def test_z_for_level_known_values() -> None:
    """Two-sided quantiles from a normal table; levels outside (0, 1) have none."""
    assert float(z_for_level(0.95)) == pytest.approx(1.959963984540054, rel=1e-12)
    assert float(z_for_level(0.90)) == pytest.approx(1.6448536269514722, rel=1e-12)
    assert float(z_for_level(0.80)) == pytest.approx(1.2815515655446004, rel=1e-12)
    assert float(z_for_level(0.99)) == pytest.approx(2.5758293035489004, rel=1e-12)
    assert float(z_for_level(0.5)) == pytest.approx(0.6744897501960817, rel=1e-12)
    got = z_for_level(np.array([0.0, 1.0, -0.5, 1.5, np.nan, 0.95]))
    assert np.isnan(got[:5]).all() and got[5] == pytest.approx(1.959963984540054, rel=1e-12)
    assert math.isnan(float(z_for_level(0)))


@pytest.mark.parametrize("pair", sorted(EXPECTED), ids="->".join)
@given(data=st.data())
def test_derivative_matches_central_difference(pair: tuple[str, str], data: st.DataObject) -> None:
    """Every unit's delta-method derivative against a numerical derivative of its forward map,
    (f(x + h) - f(x - h)) / 2h, anywhere in the unit's domain."""
    t = transform_for(*pair)
    x = data.draw(DOMAINS[pair[0]])
    # step: small against |x| and against the distance to the domain's edge (-100, -1 or 0)
    edge = {"relative_percent": -100.0, "relative_fraction": -1.0, "ratio": 0.0}.get(pair[0])
    h = 1e-4 * min(max(1.0, abs(x)), np.inf if edge is None else x - edge)
    fx = t.forward(np.array([x - h, x + h], dtype=float))
    numeric = (fx[1] - fx[0]) / (2 * h)
    analytic = float(t.derivative(np.array([x]))[0])
    assert analytic == pytest.approx(numeric, rel=1e-6)
    se = data.draw(st.floats(1e-3, 20))
    assert float(se_delta(t, np.array([x]), np.array([se]))[0]) == pytest.approx(abs(numeric) * se, rel=1e-6)


# -- the same bits on every machine (marketbayesmeta.libm) ------------------------------------------

_FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(st.lists(_FINITE, min_size=1, max_size=20))
def test_transforms_give_the_c_librarys_bits(values):
    """numpy's log1p/expm1/log/exp differ by CPU in the last bit (AVX-512: np.log1p(0.2) is one unit
    in the last place above the correctly rounded value); the plan must not. Each transform equals
    math's function element by element, bit for bit."""
    x = np.array(values)
    pct = transform_for("relative_percent", "log_relative")
    frac = transform_for("relative_fraction", "log_relative")
    ratio = transform_for("ratio", "log_relative")
    ok = x > -100
    assert pct.forward(x[ok]).tolist() == [math.log1p(v / 100.0) for v in x[ok]]
    y = x[np.abs(x) < 700]
    assert pct.inverse(y).tolist() == [100.0 * math.expm1(v) for v in y]
    assert frac.inverse(y).tolist() == [math.expm1(v) for v in y]
    assert ratio.inverse(y).tolist() == [math.exp(v) for v in y]
    pos = x[x > 0]
    assert ratio.forward(pos).tolist() == [math.log(v) for v in pos]
    assert frac.forward(x[x > -1]).tolist() == [math.log1p(v) for v in x[x > -1]]


def test_libm_keeps_numpys_answers_outside_the_domain():
    from marketbayesmeta import libm

    with np.errstate(all="ignore"):
        x = np.array([-1.0, -2.0, np.nan, np.inf, -np.inf, 0.0])
        np.testing.assert_array_equal(libm.log1p(x), np.log1p(x))
        x = np.array([0.0, -1.0, np.inf, np.nan])
        np.testing.assert_array_equal(libm.log(x), np.log(x))
        x = np.array([1000.0, -1000.0, np.inf, -np.inf, np.nan])
        np.testing.assert_array_equal(libm.exp(x), np.exp(x))
        np.testing.assert_array_equal(libm.expm1(x), np.expm1(x))
    assert libm.log1p(0.2) == 0.18232155679395462 and isinstance(libm.log1p(0.2), float)
    assert libm.log1p(np.float64(0.2)) == math.log1p(0.2) and libm.tan(math.pi / 4) == math.tan(math.pi / 4)
    assert libm.log1p(np.zeros((2, 3))).shape == (2, 3)
