"""Priors in business terms (compiler/business_priors.py).

The round trip is checked twice: through the module's own inverse (implied_business_terms) and
through an inverse written here from the unit definitions (SPEC §4) and the normal quantile of
the standard library; Monte Carlo draws (numpy, scipy) check the coverage and the tau median.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from marketbayesmeta.compiler.business_priors import (
    BusinessPriorError,
    ExpectedEffect,
    TypicalSpread,
    compile_business_priors,
    implied_business_terms,
    tau_quantile_factor,
)
from marketbayesmeta.compiler.units import TRANSFORMS
from marketbayesmeta.families import FAMILY_NAMES

PAIRS = sorted(TRANSFORMS)  # every (unit, scale) pair the model converts
SCALE_UNITS = {scale: [u for u, s in PAIRS if s == scale] for _, scale in PAIRS}
FAMILIES = sorted(FAMILY_NAMES)
# stated value -> model scale, written from the unit table of SPEC §4 (not from units.py)
TO_MODEL = {"relative_percent": lambda x: math.log(1 + x / 100), "relative_fraction": lambda x: math.log(1 + x),
            "ratio": math.log, "log_relative": lambda x: x, "percentage_point": lambda x: x,
            "proportion_difference": lambda x: 100 * x}
FROM_MODEL = {"relative_percent": lambda y: 100 * math.expm1(y), "relative_fraction": math.expm1, "ratio": math.exp,
              "log_relative": lambda y: y, "percentage_point": lambda y: y, "proportion_difference": lambda y: y / 100}
# a realistic but wide range of stated effects per unit: (lowest lower bound, widest interval)
RANGES = {"relative_percent": (-95.0, 300.0), "relative_fraction": (-0.95, 3.0), "ratio": (0.05, 4.0),
          "log_relative": (-3.0, 4.0), "percentage_point": (-60.0, 80.0), "proportion_difference": (-0.6, 0.8)}
SPREADS = {"relative_percent": (0.1, 100.0), "relative_fraction": (0.001, 1.0), "ratio": (1.001, 3.0),
           "log_relative": (0.001, 1.0), "percentage_point": (0.01, 50.0), "proportion_difference": (0.0001, 0.5)}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_the_issue_example() -> None:
    result = compile_business_priors(ExpectedEffect(lower=-5, upper=15, unit="relative_percent", level=0.95),
                                     TypicalSpread(value=5, unit="relative_percent"), scale="log_relative",
                                     tau_family="half_normal")
    z = 1.959963984540054  # 97.5 % point of the standard normal (tables: 1.95996)
    assert result.mu_mean == pytest.approx((math.log(0.95) + math.log(1.15)) / 2, rel=1e-12)
    assert result.mu_sd == pytest.approx((math.log(1.15) - math.log(0.95)) / (2 * z), rel=1e-12)
    assert result.tau_scale == pytest.approx(math.log(1.05) / 0.6744897501960817, rel=1e-12)
    assert result.provenance.text == (
        "expected effect −5 % to +15 % (95 %) → mu ~ N(0.044, 0.049) on log_relative",
        "typical spread 5 % (study-to-study, the prior median of tau) → tau ~ half_normal(0.072) on log_relative")
    assert "log(1 + x/100)" in result.provenance.mu_formula and "prior median" in result.provenance.tau_formula
    assert result.provenance.expected_effect.lower == -5 and result.provenance.tau_family == "half_normal"


def test_percentage_point_text_and_partial_priors() -> None:
    mu_only = compile_business_priors(ExpectedEffect(lower=-1, upper=3, unit="percentage_point", level=0.9), None,
                                      scale="percentage_point", tau_family="half_cauchy")
    assert mu_only.tau_scale is None and mu_only.provenance.tau_formula is None
    assert mu_only.provenance.text == ("expected effect −1 pp to +3 pp (90 %) → mu ~ N(1, 1.2) on percentage_point",)
    tau_only = compile_business_priors(None, TypicalSpread(value=0.02, unit="proportion_difference"),
                                       scale="percentage_point", tau_family="half_cauchy")
    assert tau_only.mu_mean is None and tau_only.mu_sd is None
    assert tau_only.tau_scale == pytest.approx(2.0)  # half-Cauchy: median = scale; 0.02 -> 2 pp
    assert tau_only.provenance.text[0].startswith("typical spread 0.02 (proportion_difference)")


@st.composite
def stated_effects(draw: st.DrawFn) -> tuple[ExpectedEffect, str]:
    unit, scale = draw(st.sampled_from(PAIRS))
    low, width = RANGES[unit]
    lower = draw(st.floats(low, low + width * 0.9))
    upper = draw(st.floats(lower + width * 1e-4, low + width))
    level = draw(st.floats(0.5001, 0.999))
    return ExpectedEffect(lower=lower, upper=upper, unit=unit, level=level), scale


@settings(max_examples=300, deadline=None)
@given(stated=stated_effects(), family=st.sampled_from(FAMILIES))
def test_property_expected_effect_round_trips(stated: tuple[ExpectedEffect, str], family: str) -> None:
    effect, scale = stated
    result = compile_business_priors(effect, None, scale=scale, tau_family=family)
    # the module's inverse
    implied = implied_business_terms(result.mu_mean, result.mu_sd, 1.0, scale=scale, tau_family=family,
                                     unit=effect.unit, level=effect.level)
    assert close(implied.lower, effect.lower) and close(implied.upper, effect.upper)
    # an inverse written here: the central `level` interval of N(mu_mean, mu_sd), mapped back
    normal = NormalDist(result.mu_mean, result.mu_sd)
    lower = FROM_MODEL[effect.unit](normal.inv_cdf((1 - effect.level) / 2))
    upper = FROM_MODEL[effect.unit](normal.inv_cdf((1 + effect.level) / 2))
    assert close(lower, effect.lower) and close(upper, effect.upper)
    assert close(result.mu_mean, (TO_MODEL[effect.unit](effect.lower) + TO_MODEL[effect.unit](effect.upper)) / 2)


@st.composite
def stated_spreads(draw: st.DrawFn) -> tuple[TypicalSpread, str]:
    unit, scale = draw(st.sampled_from(PAIRS))
    return TypicalSpread(value=draw(st.floats(*SPREADS[unit])), unit=unit), scale


@settings(max_examples=300, deadline=None)
@given(stated=stated_spreads(), family=st.sampled_from(FAMILIES))
def test_property_typical_spread_round_trips(stated: tuple[TypicalSpread, str], family: str) -> None:
    spread, scale = stated
    result = compile_business_priors(None, spread, scale=scale, tau_family=family)
    implied = implied_business_terms(0.0, 1.0, result.tau_scale, scale=scale, tau_family=family, unit=spread.unit)
    assert close(implied.spread_median, spread.value)
    assert close(TO_MODEL[spread.unit](spread.value), result.tau_scale * tau_quantile_factor(family, 0.5))


def test_tau_quantile_factors_match_scipy() -> None:
    dists = {"half_normal": stats.halfnorm(), "half_cauchy": stats.halfcauchy(), "exponential": stats.expon()}
    assert set(dists) == set(FAMILY_NAMES)
    for family, dist in dists.items():
        for p in (0.5, 0.95):
            assert tau_quantile_factor(family, p) == pytest.approx(dist.ppf(p), rel=1e-12), (family, p)


def test_monte_carlo_coverage_and_tau_median() -> None:
    """Draw from the compiled priors: the stated interval holds `level` of mu, half of tau is below the spread."""
    rng = np.random.default_rng(20260603)
    n = 400_000
    result = compile_business_priors(ExpectedEffect(lower=-5, upper=15, unit="relative_percent", level=0.8),
                                     TypicalSpread(value=5, unit="relative_percent"), scale="log_relative",
                                     tau_family="half_normal")
    lift = 100 * np.expm1(rng.normal(result.mu_mean, result.mu_sd, n))
    inside = np.mean((lift > -5) & (lift < 15))
    assert abs(inside - 0.8) < 4 * math.sqrt(0.8 * 0.2 / n)
    samplers = {"half_normal": lambda s: np.abs(rng.normal(0, s, n)), "half_cauchy": lambda s: np.abs(s * rng.standard_cauchy(n)),
                "exponential": lambda s: s * rng.standard_exponential(n)}
    for family, draw in samplers.items():
        result = compile_business_priors(None, TypicalSpread(value=5, unit="relative_percent"), scale="log_relative",
                                         tau_family=family)
        with np.errstate(over="ignore"):  # half-Cauchy draws beyond exp's range are +inf: above 5 % all the same
            spread = 100 * np.expm1(draw(result.tau_scale))
        assert abs(np.mean(spread < 5) - 0.5) < 4 * math.sqrt(0.25 / n), family
        implied = implied_business_terms(0.0, 1.0, result.tau_scale, scale="log_relative", tau_family=family)
        assert abs(np.mean(spread < implied.spread_q95) - 0.95) < 4 * math.sqrt(0.95 * 0.05 / n), family


def test_implied_terms_of_the_default_priors() -> None:
    """What the seed's defaults say (issue 15): mu_sd 1 and tau_scale 0.5 on log_relative."""
    implied = implied_business_terms(0.0, 1.0, 0.5, scale="log_relative", tau_family="half_normal")
    assert implied.unit == "relative_percent" and implied.level == 0.95
    assert implied.lower == pytest.approx(100 * math.expm1(-1.959963984540054))
    assert implied.spread_median == pytest.approx(100 * math.expm1(0.5 * 0.6744897501960817))
    assert implied.text == ("the priors say: effect −85.9 % to +610 % (95 %); study-to-study spread 40.1 % typical "
                            "(prior median), below 166 % with 95 % probability")
    pp = implied_business_terms(0.0, 10.0, 5.0, scale="percentage_point", tau_family="half_normal")
    assert pp.unit == "percentage_point" and pp.upper == pytest.approx(19.59963984540054)


@pytest.mark.parametrize(("unit", "scale"), [(u, s) for u in sorted({u for u, _ in PAIRS})
                                             for s in sorted(SCALE_UNITS) if (u, s) not in TRANSFORMS])
def test_unit_and_scale_pairs_that_do_not_convert_are_clear_errors(unit: str, scale: str) -> None:
    value = {"ratio": 1.1}.get(unit, 0.5)
    effect = ExpectedEffect(lower=value - 0.2, upper=value + 0.2, unit=unit)
    with pytest.raises(BusinessPriorError) as err:
        compile_business_priors(effect, None, scale=scale, tau_family="half_normal")
    message = str(err.value)
    assert f"'{unit}'" in message and f"accepted for {scale}: " in message
    assert all(u in message.split("accepted for")[1] for u in SCALE_UNITS[scale])
    with pytest.raises(BusinessPriorError, match="typical_spread unit"):
        compile_business_priors(None, TypicalSpread(value=value + 0.1, unit=unit), scale=scale, tau_family="half_normal")


@pytest.mark.parametrize(("payload", "words"), [
    ({"lower": 15, "upper": -5}, "must be below upper"),
    ({"lower": 5, "upper": 5}, "must be below upper"),
    ({"level": 0.5}, "between 0.5 and 1"),
    ({"level": 1.0}, "between 0.5 and 1"),
    ({"level": 0.0}, "between 0.5 and 1"),
    ({"level": 95}, "write 0.95"),
    ({"lower": -100}, "outside what relative_percent can express"),
    ({"lower": -150}, "a number > -100"),
    ({"lower": -1.0, "upper": 0.5, "unit": "relative_fraction"}, "a number > -1"),
    ({"lower": 0.0, "upper": 1.2, "unit": "ratio"}, "a number > 0"),
    ({"lower": 0.1, "upper": 1.2, "unit": "proportion_difference"}, "between -1 and 1"),
    ({"lower": -10, "upper": 100, "unit": "percentage_point"}, "between -100 and 100"),
    ({"lower": float("nan")}, "finite"),
    ({"upper": float("inf")}, "finite"),
    ({"unit": "percent"}, "relative_percent"),
    ({"extra": 1}, "Extra inputs"),
])
def test_expected_effect_validation(payload: dict, words: str) -> None:
    base = {"lower": -5, "upper": 15, "unit": "relative_percent", "level": 0.95}
    with pytest.raises(ValidationError) as err:
        ExpectedEffect(**(base | payload))
    assert words in str(err.value)


@pytest.mark.parametrize(("payload", "words"), [
    ({"value": 0}, "not a spread"), ({"value": -5}, "not a spread"),
    ({"value": 1.0, "unit": "ratio"}, "1.05"), ({"value": 0.9, "unit": "ratio"}, "a number > 1"),
    ({"value": 1.0, "unit": "proportion_difference"}, "between 0 and 1"),
    ({"value": float("inf")}, "finite"), ({"unit": "pp"}, "percentage_point"),
])
def test_typical_spread_validation(payload: dict, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        TypicalSpread(**({"value": 5, "unit": "relative_percent"} | payload))
    assert words in str(err.value)


def test_unknown_family_and_scale_are_clear_errors() -> None:
    effect = ExpectedEffect(lower=-5, upper=15, unit="relative_percent")
    with pytest.raises(BusinessPriorError, match="unknown tau family 'half_t'; accepted: half_normal, half_cauchy"):
        compile_business_priors(None, TypicalSpread(value=5, unit="relative_percent"), scale="log_relative",
                                tau_family="half_t")
    with pytest.raises(BusinessPriorError, match="unknown scale 'log'"):
        compile_business_priors(effect, None, scale="log", tau_family="half_normal")
    with pytest.raises(BusinessPriorError, match="must be > 0"):
        implied_business_terms(0.0, 0.0, 0.5, scale="log_relative", tau_family="half_normal")


def test_models_are_frozen_and_json_round_trip() -> None:
    result = compile_business_priors(ExpectedEffect(lower=-5, upper=15, unit="relative_percent"),
                                     TypicalSpread(value=5, unit="relative_percent"), scale="log_relative",
                                     tau_family="exponential")
    assert type(result).model_validate_json(result.model_dump_json()) == result
    with pytest.raises(ValidationError):
        result.mu_mean = 0.0  # type: ignore[misc]


def test_choose_priors_page_shows_what_the_code_prints() -> None:
    """docs/how-to/choose-priors.md: every worked line and the implied numbers, recomputed here."""
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "how-to" / "choose-priors.md").read_text(encoding="utf-8")
    pct = {"unit": "relative_percent"}
    worked = [
        (ExpectedEffect(lower=-5, upper=15, **pct), None, "log_relative", "half_normal"),
        (ExpectedEffect(lower=-10, upper=10, **pct), None, "log_relative", "half_normal"),
        (None, TypicalSpread(value=5, **pct), "log_relative", "half_normal"),
        (None, TypicalSpread(value=5, **pct), "log_relative", "half_cauchy"),
        (None, TypicalSpread(value=5, **pct), "log_relative", "exponential"),
        (ExpectedEffect(lower=-1, upper=3, unit="percentage_point", level=0.9), None, "percentage_point", "half_normal"),
        (None, TypicalSpread(value=1, unit="percentage_point"), "percentage_point", "half_normal"),
    ]
    for effect, spread, scale, family in worked:
        (line,) = compile_business_priors(effect, spread, scale=scale, tau_family=family).provenance.text
        assert line in page, line
    log_default = implied_business_terms(0.0, 1.0, 0.5, scale="log_relative", tau_family="half_normal").text
    pp_default = implied_business_terms(0.0, 10.0, 5.0, scale="percentage_point", tau_family="half_normal").text
    assert "effect −85.9 % to +610 %; study-to-study spread 40.1 % typical, below 166 %" in page
    assert "−85.9 % to +610 %" in log_default and "40.1 %" in log_default and "below 166 %" in log_default
    assert "effect −19.6 pp to +19.6 pp; spread 3.37 pp typical, below 9.8 pp" in page
    assert "−19.6 pp to +19.6 pp" in pp_default and "3.37 pp" in pp_default and "below 9.8 pp" in pp_default
    for family, q95 in (("half_normal", "15.2 %"), ("exponential", "23.5 %"), ("half_cauchy", "85.9 %")):
        scale = compile_business_priors(None, TypicalSpread(value=5, **pct), scale="log_relative",
                                        tau_family=family).tau_scale
        implied = implied_business_terms(0.0, 1.0, scale, scale="log_relative", tau_family=family)
        assert f"below {q95}" in implied.text and f"below {q95} under `{family}`" in page
