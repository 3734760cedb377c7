"""Business-term priors: what compile prints and records, word for word, and the edges where a stated
prior gives no usable model-scale prior (compiler/business_priors.py)."""

from __future__ import annotations

import pytest

from marketbayesmeta.compiler.business_priors import (
    BusinessPriorError,
    ExpectedEffect,
    TypicalSpread,
    compile_business_priors,
    implied_business_terms,
)

ACCEPTED_LOG = "relative_percent, relative_fraction, ratio, log_relative"


def test_the_recorded_formulas_and_lines() -> None:
    b = compile_business_priors(ExpectedEffect(lower=-5, upper=15, unit="relative_percent", level=0.9),
                                TypicalSpread(value=2, unit="relative_percent"), scale="log_relative",
                                tau_family="half_normal")
    p = b.provenance
    assert p.mu_formula == ("mu_mean = (f(lower) + f(upper)) / 2, mu_sd = (f(upper) − f(lower)) / (2 · 1.64485) "
                            "with f(x) = log(1 + x/100) and 1.64485 the normal quantile of 0.95")
    assert p.tau_formula == ("tau_scale = f(value) / 0.67449 with f(x) = log(1 + x/100) and 0.67449 the median of "
                             "half_normal at scale 1: the stated spread is the prior median of tau")
    # (log 0.95 + log 1.15) / 2 = 0.044, (log 1.15 − log 0.95) / 3.29 = 0.058, log 1.02 / 0.674 = 0.029
    assert p.text == ("expected effect −5 % to +15 % (90 %) → mu ~ N(0.044, 0.058) on log_relative",
                      "typical spread 2 % (study-to-study, the prior median of tau) → tau ~ half_normal(0.029) on "
                      "log_relative")
    assert p.expected_effect.level == 0.9 and p.typical_spread.value == 2


def test_units_without_a_symbol_are_named_and_ratios_are_unsigned() -> None:
    b = compile_business_priors(ExpectedEffect(lower=0.95, upper=1.2, unit="ratio"),
                                TypicalSpread(value=1.05, unit="ratio"), scale="log_relative", tau_family="exponential")
    # (log 0.95 + log 1.2) / 2 = 0.066, (log 1.2 − log 0.95) / 3.92 = 0.06; log 1.05 / log 2 = 0.07
    assert b.provenance.text == (
        "expected effect 0.95 to 1.2 (ratio) (95 %) → mu ~ N(0.066, 0.06) on log_relative",
        "typical spread 1.05 (ratio) (study-to-study, the prior median of tau) → tau ~ exponential(0.07) on "
        "log_relative")
    b = compile_business_priors(ExpectedEffect(lower=-0.05, upper=0.1, unit="relative_fraction"), None,
                                scale="log_relative", tau_family="half_normal")
    assert b.provenance.text[0].startswith("expected effect −0.05 to +0.1 (relative_fraction) (95 %)")


def test_stated_numbers_are_printed_as_written_even_when_tiny() -> None:
    b = compile_business_priors(ExpectedEffect(lower=-1e-5, upper=2e-5, unit="relative_percent"),
                                TypicalSpread(value=3e-6, unit="relative_percent"), scale="log_relative",
                                tau_family="half_normal")
    assert b.provenance.text[0].startswith("expected effect −1e−05 % to +2e−05 % (95 %)")
    assert b.provenance.text[1].startswith("typical spread 3e−06 % (study-to-study")


def test_implied_terms_word_for_word() -> None:
    # mu ~ N(0, 0.05²): 100 (exp(± 1.959964 · 0.05) − 1) = −9.335 % to +10.3 %; tau's median 0.6745 · 1e-9 and
    # 95 % quantile 1.96 · 1e-9 as lifts in per cent
    implied = implied_business_terms(0.0, 0.05, 1e-9, scale="log_relative", tau_family="half_normal")
    assert implied.text == ("the priors say: effect −9.33 % to +10.3 % (95 %); study-to-study spread 6.74e−08 % "
                            "typical (prior median), below 1.96e−07 % with 95 % probability")
    implied = implied_business_terms(1.0, 2.0, 0.5, scale="percentage_point", tau_family="half_normal", level=0.9)
    assert implied.text == ("the priors say: effect −2.29 pp to +4.29 pp (90 %); study-to-study spread 0.337 pp "
                            "typical (prior median), below 0.98 pp with 95 % probability")
    # mu ~ N(0, (1e-9)²) on percentage_point: ± 1.96e-09 pp, printed as such
    implied = implied_business_terms(0.0, 1e-9, 0.5, scale="percentage_point", tau_family="half_normal")
    assert implied.text.startswith("the priors say: effect −1.96e−09 pp to +1.96e−09 pp (95 %)")
    implied = implied_business_terms(0.0, 0.1, 0.05, scale="log_relative", tau_family="half_normal", unit="ratio")
    assert implied.text.startswith("the priors say: effect 0.822 to 1.22 (ratio) (95 %); study-to-study spread 1.03 "
                                   "(ratio) typical")


@pytest.mark.parametrize("args", [
    (0.0, 0.0, 0.5, 0.95), (0.0, 1.0, 0.0, 0.95), (0.0, 1.0, 0.5, 0.0), (0.0, 1.0, 0.5, 1.0), (0.0, 1.0, 0.5, 1.5),
    (0.0, -1.0, 0.5, 0.95), (0.0, 1.0, -0.5, 0.95),
])
def test_implied_terms_need_positive_scales_and_a_level_in_0_1(args: tuple[float, ...]) -> None:
    mu_mean, mu_sd, tau_scale, level = args
    with pytest.raises(BusinessPriorError) as err:
        implied_business_terms(mu_mean, mu_sd, tau_scale, scale="log_relative", tau_family="half_normal", level=level)
    assert str(err.value) == "mu_sd and tau_scale must be > 0 and level in (0, 1)"


def test_implied_terms_in_a_unit_that_does_not_convert() -> None:
    with pytest.raises(BusinessPriorError) as err:
        implied_business_terms(0.0, 1.0, 0.5, scale="log_relative", tau_family="half_normal", unit="percentage_point")
    assert str(err.value) == ("the unit 'percentage_point' cannot be converted to the log_relative scale; accepted for "
                              f"log_relative: {ACCEPTED_LOG}")
    with pytest.raises(BusinessPriorError) as err:
        implied_business_terms(0.0, 1.0, 0.5, scale="per_mille", tau_family="half_normal")
    assert str(err.value) == "unknown scale 'per_mille'; accepted: log_relative, percentage_point"


def test_conversion_errors_word_for_word() -> None:
    with pytest.raises(BusinessPriorError) as err:
        compile_business_priors(ExpectedEffect(lower=1, upper=2, unit="percentage_point"), None,
                                scale="log_relative", tau_family="half_normal")
    assert str(err.value) == ("expected_effect unit 'percentage_point' cannot be converted to the log_relative scale; "
                              f"accepted for log_relative: {ACCEPTED_LOG}")
    with pytest.raises(BusinessPriorError) as err:
        compile_business_priors(None, TypicalSpread(value=2, unit="relative_percent"), scale="percentage_point",
                                tau_family="half_normal")
    assert str(err.value) == ("typical_spread unit 'relative_percent' cannot be converted to the percentage_point "
                              "scale; accepted for percentage_point: percentage_point, proportion_difference")
    with pytest.raises(BusinessPriorError) as err:
        compile_business_priors(None, TypicalSpread(value=2, unit="relative_percent"), scale="nope",
                                tau_family="half_normal")
    assert str(err.value) == "unknown scale 'nope'; accepted: log_relative, percentage_point"


def test_an_interval_too_narrow_for_floating_point() -> None:
    """lower < upper as written, but log(1 + x/100) cannot tell them apart: mu_sd would be 0."""
    with pytest.raises(BusinessPriorError) as err:
        compile_business_priors(ExpectedEffect(lower=1e300, upper=1.0000000000000002e300, unit="relative_percent"),
                                None, scale="log_relative", tau_family="half_normal")
    assert str(err.value) == ("expected_effect 1e+300 to 1e+300 is too narrow to give a positive mu_sd on the model "
                              "scale; widen it")


def test_a_spread_too_small_for_floating_point() -> None:
    """5e-324 % is a positive spread, but log(1 + 5e-326) is 0: no positive tau."""
    with pytest.raises(BusinessPriorError) as err:
        compile_business_priors(None, TypicalSpread(value=5e-324, unit="relative_percent"), scale="log_relative",
                                tau_family="half_normal")
    assert str(err.value) == "typical_spread 4.94066e-324 gives no positive tau on log_relative"
