"""The pool's priors (compiler/priors.py) through compile: defaults per scale, values as written,
business terms converted (by hand here), provenance, the recorded conversion, the prior grid, the
scenario SEs, and errors that name the file and the key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from helpers import four_rows, row, write_project
from marketbayesmeta.api import compile_config
from marketbayesmeta.errors import ConfigError

Z95 = 1.959963984540054  # Φ⁻¹(0.975)
HALF_NORMAL_MEDIAN = 0.6744897501960817  # Φ⁻¹(0.75)
# SPEC §3's scale-aware defaults, written out
DEFAULTS = {"log_relative": {"mu_mean": 0.0, "mu_sd": 1.0, "tau_scale": 0.5, "tau_family": "half_normal"},
            "percentage_point": {"mu_mean": 0.0, "mu_sd": 10.0, "tau_scale": 5.0, "tau_family": "half_normal"}}
SCENARIOS = {"log_relative": {"low": 0.02, "medium": 0.05, "high": 0.10},
             "percentage_point": {"low": 0.2, "medium": 0.5, "high": 1.0}}
PP_ROWS = [row(f"b{i}", est, unit="percentage_point", se=0.5, evidence_type="geo_test")
           for i, est in enumerate([1.0, 2.0, 1.5, 0.5])]


def pool(tmp: Path, scale: str = "log_relative", **overrides: Any):
    rows = four_rows() if scale == "log_relative" else PP_ROWS
    analysis = {"metric": "sales", "scale": scale, "evidence_types": ["geo_test"]}
    return compile_config(write_project(tmp, rows, analysis=analysis, **overrides)).pool()


def values(p) -> dict[str, Any]:
    return {k: v.value for k, v in p.priors.items()}


def provenance(p) -> dict[str, str]:
    return {k: v.provenance for k, v in p.priors.items()}


@pytest.mark.parametrize("scale", sorted(DEFAULTS))
def test_defaults_per_scale(tmp_path: Path, scale: str) -> None:
    p = pool(tmp_path, scale, sensitivity={"prior": True})
    assert values(p) == DEFAULTS[scale]
    assert set(provenance(p).values()) == {"default"}
    assert p.prior_conversion is None and p.priors_justification is None
    assert {k: v.value for k, v in p.scenario_se.items()} == SCENARIOS[scale]
    assert {v.provenance for v in p.scenario_se.values()} == {"default"}
    main = p.fit("main").priors
    assert main.model_dump() == DEFAULTS[scale]
    # the default grid: sds halved (regularising) and doubled (weak) around the main priors
    d = DEFAULTS[scale]
    grid = {f.label: f.priors.model_dump() for f in p.fits if f.kind == "prior"}
    assert grid == {"regularising": {**d, "mu_sd": d["mu_sd"] / 2, "tau_scale": d["tau_scale"] / 2},
                    "default": d, "weak": {**d, "mu_sd": d["mu_sd"] * 2, "tau_scale": d["tau_scale"] * 2}}
    assert p.fit("prior:default").same_as == "main" and p.fit("prior:weak").same_as is None
    assert p.sensitivity.reference_prior == "default"


def test_model_scale_values_as_written(tmp_path: Path) -> None:
    p = pool(tmp_path, priors={"mu_sd": 0.3, "tau_family": "half_cauchy", "justification": "j"},
             uncertainty={"scenarios": {"high": 0.2}})
    assert values(p) == {"mu_mean": 0.0, "mu_sd": 0.3, "tau_scale": 0.5, "tau_family": "half_cauchy"}
    assert provenance(p) == {"mu_mean": "default", "mu_sd": "config", "tau_scale": "default",
                             "tau_family": "config"}
    assert p.prior_conversion is None and p.priors_justification == "j"
    assert {k: (v.value, v.provenance) for k, v in p.scenario_se.items()} == {
        "low": (0.02, "default"), "medium": (0.05, "default"), "high": (0.2, "config")}
    assert "half_cauchy" in p.priors_implied or "study-to-study spread" in p.priors_implied


def test_expected_effect_alone(tmp_path: Path) -> None:
    p = pool(tmp_path, priors={"expected_effect": {"lower": -10, "upper": 20, "unit": "relative_percent"}})
    # 95 %: mu_mean = (log 0.9 + log 1.2) / 2, mu_sd = (log 1.2 − log 0.9) / (2 · 1.96)
    v = values(p)
    assert v["mu_mean"] == pytest.approx((math.log(0.9) + math.log(1.2)) / 2, rel=1e-12)
    assert v["mu_sd"] == pytest.approx((math.log(1.2) - math.log(0.9)) / (2 * Z95), rel=1e-12)
    assert (v["tau_scale"], v["tau_family"]) == (0.5, "half_normal")
    assert provenance(p) == {"mu_mean": "config", "mu_sd": "config", "tau_scale": "default",
                             "tau_family": "default"}
    c = p.prior_conversion
    assert c["expected_effect"] == {"lower": -10.0, "upper": 20.0, "unit": "relative_percent", "level": 0.95}
    assert c["typical_spread"] is None and c["tau_formula"] is None and "mu_sd" in c["mu_formula"]
    assert (c["scale"], c["tau_family"]) == ("log_relative", "half_normal")
    assert len(c["text"]) == 1 and c["text"][0].startswith("expected effect −10 % to +20 % (95 %)")
    assert "effect −10 % to +20 % (95 %)" in p.priors_implied
    assert p.fit("main").priors.mu_sd == pytest.approx(v["mu_sd"], rel=1e-15)


@pytest.mark.parametrize("family, median", [("half_normal", HALF_NORMAL_MEDIAN), ("exponential", math.log(2)),
                                            ("half_cauchy", 1.0)])
def test_typical_spread_alone(tmp_path: Path, family: str, median: float) -> None:
    p = pool(tmp_path, priors={"typical_spread": {"value": 4, "unit": "relative_percent"}, "tau_family": family})
    v = values(p)
    assert v["tau_scale"] == pytest.approx(math.log(1.04) / median, rel=1e-12)  # the prior median is log 1.04
    assert (v["mu_mean"], v["mu_sd"], v["tau_family"]) == (0.0, 1.0, family)
    assert provenance(p) == {"mu_mean": "default", "mu_sd": "default", "tau_scale": "config",
                             "tau_family": "config"}
    c = p.prior_conversion
    assert c["expected_effect"] is None and c["mu_formula"] is None and c["tau_family"] == family
    assert c["typical_spread"] == {"value": 4.0, "unit": "relative_percent"}
    assert "spread 4 % typical" in p.priors_implied


def test_both_business_terms_on_percentage_point(tmp_path: Path) -> None:
    p = pool(tmp_path, "percentage_point", priors={
        "expected_effect": {"lower": -0.01, "upper": 0.03, "unit": "proportion_difference", "level": 0.9},
        "typical_spread": {"value": 0.8, "unit": "percentage_point"}})
    v = values(p)
    # proportion differences are 100 x percentage points: −1 to 3 pp with 90 % (z = 1.645)
    assert v["mu_mean"] == pytest.approx(1.0, rel=1e-12)
    assert v["mu_sd"] == pytest.approx(4 / (2 * 1.6448536269514722), rel=1e-12)
    assert v["tau_scale"] == pytest.approx(0.8 / HALF_NORMAL_MEDIAN, rel=1e-12)
    assert set(provenance(p).values()) == {"config", "default"} and provenance(p)["tau_family"] == "default"
    assert len(p.prior_conversion["text"]) == 2


def test_named_prior_specs_take_the_main_priors_for_what_they_leave_out(tmp_path: Path) -> None:
    p = pool(tmp_path, priors={"mu_sd": 0.4, "tau_scale": 0.1, "justification": "j"},
             sensitivity={"prior": True, "prior_specs": [{"name": "tight", "mu_sd": 0.05},
                                                         {"name": "cauchy", "tau_family": "half_cauchy"},
                                                         {"name": "same"}]})
    grid = {f.label: f.priors.model_dump() for f in p.fits if f.kind == "prior"}
    main = {"mu_mean": 0.0, "mu_sd": 0.4, "tau_scale": 0.1, "tau_family": "half_normal"}
    assert grid == {"tight": {**main, "mu_sd": 0.05}, "cauchy": {**main, "tau_family": "half_cauchy"},
                    "same": main}
    assert [f.same_as for f in p.fits if f.kind == "prior"] == [None, None, "main"]
    assert p.sensitivity.reference_prior == "main"


@pytest.mark.parametrize("priors, key, says", [
    ({"expected_effect": {"lower": 1, "upper": 2, "unit": "percentage_point"}}, "expected_effect",
     "expected_effect unit 'percentage_point' cannot be converted to the log_relative scale"),
    ({"typical_spread": {"value": 2, "unit": "percentage_point"}}, "typical_spread",
     "typical_spread unit 'percentage_point' cannot be converted to the log_relative scale"),
    # a valid effect beside an invalid spread: the error names the spread
    ({"expected_effect": {"lower": -5, "upper": 10, "unit": "relative_percent"},
      "typical_spread": {"value": 2, "unit": "percentage_point"}}, "typical_spread",
     "typical_spread unit 'percentage_point' cannot be converted"),
    ({"expected_effect": {"lower": 1, "upper": 2, "unit": "percentage_point"},
      "typical_spread": {"value": 2, "unit": "relative_percent"}}, "expected_effect",
     "expected_effect unit 'percentage_point' cannot be converted"),
])
def test_business_terms_that_do_not_convert_name_file_and_key(tmp_path: Path, priors: dict[str, Any], key: str,
                                                              says: str) -> None:
    with pytest.raises(ConfigError) as err:
        pool(tmp_path, priors=priors)
    assert str(err.value) == "config.yaml: invalid priors"
    (problem,) = err.value.problems
    assert problem.file == "config.yaml"
    assert problem.message.startswith(f"'priors.{key}': {says}"), problem.message
    assert "accepted for log_relative: relative_percent, relative_fraction, ratio, log_relative" in problem.message


def test_the_plan_holds_the_conversion_as_a_run_reads_it(tmp_path: Path) -> None:
    """The compiled plan and the plan read back from plan.json are equal: the conversion is recorded
    as JSON (lists, not tuples)."""
    from marketbayesmeta.plan import parse_plan, plan_to_text

    plan = compile_config(write_project(tmp_path, four_rows(), priors={
        "expected_effect": {"lower": -10, "upper": 20, "unit": "relative_percent"},
        "typical_spread": {"value": 3, "unit": "relative_percent"}, "justification": "j"}))
    assert parse_plan(plan_to_text(plan)) == plan
    # (log 0.9 + log 1.2) / 2 = 0.038, (log 1.2 − log 0.9) / 3.92 = 0.073, log 1.03 / 0.674 = 0.044
    assert plan.pool().prior_conversion["text"] == [
        "expected effect −10 % to +20 % (95 %) → mu ~ N(0.038, 0.073) on log_relative",
        "typical spread 3 % (study-to-study, the prior median of tau) → tau ~ half_normal(0.044) on log_relative"]


def test_resolve_priors_called_directly_names_a_generic_file() -> None:
    from marketbayesmeta.compiler.config import Config
    from marketbayesmeta.compiler.priors import resolve_priors

    config = Config.model_validate({"version": 1, "project": {"name": "p"}, "data": {"tracker": "t.csv"},
                                    "analysis": {"metric": "sales", "evidence_types": ["geo_test"]},
                                    "priors": {"typical_spread": {"value": 2, "unit": "percentage_point"}}})
    with pytest.raises(ConfigError) as err:
        resolve_priors(config)
    assert str(err.value) == "config: invalid priors" and err.value.problems[0].file == "config"
