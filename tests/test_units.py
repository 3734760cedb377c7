"""Unit transforms and CI → SE conversion: every unit × scale cell, plus properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
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


@pytest.mark.parametrize("pair", sorted(EXPECTED))
@given(data=st.data())
def test_monotone_and_exact_inverse(pair: tuple[str, str], data: st.DataObject) -> None:
    t = transform_for(*pair)
    a = data.draw(DOMAINS[pair[0]])
    b = data.draw(DOMAINS[pair[0]])
    fa, fb = t.forward(np.array([a, b]))
    if a < b:
        assert fa <= fb
    assert float(t.inverse(np.array([fa]))[0]) == pytest.approx(a, rel=1e-9, abs=1e-12)


@given(est=st.floats(-5, 5), se=st.floats(1e-4, 10), level=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_ci_to_se_equals_se_for_symmetric_normal_ci(est: float, se: float, level: float) -> None:
    t = transform_for("log_relative", "log_relative")
    z = float(z_for_level(level))
    got = float(se_from_ci(t, est - z * se, est + z * se, level))
    assert got == pytest.approx(se, rel=1e-9)


def test_z_for_level_known_values() -> None:
    assert float(z_for_level(0.95)) == pytest.approx(1.959963984540054)
    assert float(z_for_level(0.90)) == pytest.approx(1.6448536269514722)
    assert math.isnan(float(z_for_level(1.0)))


@given(x=st.floats(-50, 500), se=st.floats(1e-3, 20))
def test_delta_method_matches_derivative(x: float, se: float) -> None:
    t = transform_for("relative_percent", "log_relative")
    assert float(se_delta(t, x, se)) == pytest.approx(se / (100 + x), rel=1e-12)
