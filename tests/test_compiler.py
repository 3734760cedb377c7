"""Compiler: decisions and reasons, duplicates, readiness, priors, grid, seeds, hashing."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from helpers import EXAMPLES, four_rows, row, write_project
from marketbayesmeta.api import compile_config
from marketbayesmeta.compiler.grid import fit_seed
from marketbayesmeta.plan import load_plan, parse_plan, plan_to_text, write_plan


def _plan(tmp_path: Path, rows: list[dict], **overrides: object):
    return compile_config(write_project(tmp_path, rows, **overrides))


def _by_id(plan):
    return {r.study_id: r for r in plan.pool().rows}


def test_every_reason_code(tmp_path: Path) -> None:
    rows = [
        row("inc", 5.0),
        row("scn", 0.02, unit="relative_fraction", se=None, uncertainty_scenario="high"),
        row("other", 1.0, metric="awareness"),
        row("etype", 1.0, evidence_type="brand_lift"),
        row("tri_mmm", 1.0, evidence_type="mmm"),
        row("tri_roi", 1.0, metric="roi"),
        row("notready", 1.0, ready="no"),
        row("incompat", 1.0, unit="percentage_point"),
        row("dup_a", 3.0, market="m", se=0.5),
        row("dup_b", 3.0, market="m", se=0.5),
    ]
    plan = _plan(tmp_path, rows, analysis={"evidence_types": ["geo_test", "mmm"]})
    got = {sid: (r.decision, r.reason) for sid, r in _by_id(plan).items()}
    assert got == {
        "inc": ("included", "included"),
        "scn": ("scenario", "scenario"),
        "other": ("excluded", "other_metric"),
        "etype": ("excluded", "evidence_type_not_in_pool"),
        "tri_mmm": ("excluded", "triangulate_only"),
        "tri_roi": ("excluded", "other_metric"),
        "notready": ("excluded", "not_analysis_ready"),
        "incompat": ("excluded", "incompatible_unit"),
        "dup_a": ("included", "included"),
        "dup_b": ("excluded", "blocking_duplicate"),
    }
    for r in plan.pool().rows:
        assert r.reason_message, r.study_id


def test_triangulate_only_metric_reason_when_metric_is_pooled(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [row("a", 2.0, metric="roi", unit="ratio")],
                 analysis={"metric": "roi"})
    assert plan.pool().rows[0].reason == "triangulate_only"
    assert "metric 'roi'" in plan.pool().rows[0].reason_message


def test_triangulate_only_opt_in_is_recorded(tmp_path: Path) -> None:
    rows = [*four_rows(), row("m1", 6.0, evidence_type="mmm")]
    justification = "MMM harmonised to geo-test estimand upstream (see memo 12)"
    plan = _plan(tmp_path, rows, analysis={"evidence_types": ["geo_test", "mmm"],
                                           "triangulate_only_justification": justification})
    assert _by_id(plan)["m1"].decision == "included"
    assert plan.pool().triangulate_only_justification == justification


def test_model_scale_values_and_transforms(tmp_path: Path) -> None:
    rows = [
        row("pct_se", 5.0, se=2.0),
        row("ratio_ci", 1.05, unit="ratio", se=None, ci_lower=1.01, ci_upper=1.09, ci_level=90),
        row("frac_ci", 0.05, unit="relative_fraction", se=None, ci_lower=0.01, ci_upper=0.09, ci_level=0.95),
    ]
    plan = _plan(tmp_path, rows)
    r = _by_id(plan)
    assert r["pct_se"].model_estimate == pytest.approx(math.log(1.05))
    assert r["pct_se"].model_se == pytest.approx(2.0 / 105.0)
    assert r["pct_se"].transform.uncertainty_method == "delta_method"
    z90 = 1.6448536269514722
    assert r["ratio_ci"].model_se == pytest.approx((math.log(1.09) - math.log(1.01)) / (2 * z90))
    assert r["ratio_ci"].transform.parameters == {"ci_level": 0.9}
    assert r["ratio_ci"].uncertainty_source == "confidence_interval"
    assert r["frac_ci"].model_se == pytest.approx((math.log(1.09) - math.log(1.01)) / (2 * 1.959963984540054))


def test_percentage_point_scale(tmp_path: Path) -> None:
    rows = [row("pp", 1.3, unit="percentage_point", se=0.4), row("pd", 0.013, unit="proportion_difference", se=0.004),
            row("rel", 5.0)]
    plan = _plan(tmp_path, rows, analysis={"scale": "percentage_point"})
    r = _by_id(plan)
    assert r["pd"].model_estimate == pytest.approx(1.3) and r["pd"].model_se == pytest.approx(0.4)
    assert r["rel"].reason == "incompatible_unit"
    assert plan.pool().priors["mu_sd"].value == 10.0 and plan.pool().priors["tau_scale"].value == 5.0
    assert plan.pool().scenario_se["medium"].value == 0.5


def test_scenario_rows_get_configured_se(tmp_path: Path) -> None:
    rows = [*four_rows(), row("sc", 0.03, unit="log_relative", se=None, uncertainty_scenario="low")]
    plan = _plan(tmp_path, rows, uncertainty={"scenarios": {"low": 0.011}})
    sc = _by_id(plan)["sc"]
    assert sc.decision == "scenario" and sc.model_se == 0.011
    assert plan.pool().scenario_se["low"].provenance == "config" and plan.pool().scenario_se["high"].provenance == "default"


def test_possible_duplicate_is_warning_not_exclusion(tmp_path: Path) -> None:
    rows = [*four_rows(), row("p1", 3.0, market="same", se=0.5), row("p2", 3.3, market="same", se=0.5)]
    plan = _plan(tmp_path, rows)
    kinds = [d.kind for d in plan.pool().duplicates]
    assert kinds == ["possible"]
    assert _by_id(plan)["p2"].decision == "included"


def test_blocking_duplicate_only_when_both_enter_pool(tmp_path: Path) -> None:
    rows = [*four_rows(), row("b1", 3.0, market="same", se=0.5), row("b2", 3.0, market="same", se=0.5, ready="no")]
    plan = _plan(tmp_path, rows)
    assert not plan.pool().has_blocking_duplicates
    rows[-1]["analysis_ready"] = "yes"
    plan = _plan(tmp_path / "again", rows)
    assert plan.pool().has_blocking_duplicates
    assert [d.study_ids for d in plan.pool().duplicates if d.kind == "blocking"] == [["b1", "b2"]]


@pytest.mark.parametrize(("n", "expected"), [(0, "not_recommended"), (2, "not_recommended"), (3, "directional"),
                                             (4, "ready"), (6, "ready")])
def test_readiness_boundaries(tmp_path: Path, n: int, expected: str) -> None:
    rows = [row(f"s{i}", 1.0 + i) for i in range(n)] or [row("x", 1.0, metric="other")]
    plan = _plan(tmp_path, rows)
    assert plan.pool().readiness.readiness == expected
    assert plan.pool().readiness.included == n


def test_priors_provenance_and_default_grid(tmp_path: Path) -> None:
    plan = _plan(tmp_path, four_rows(), priors={"tau_scale": 0.3},
                 sensitivity={"prior": True, "uncertainty": True})
    assert plan.pool().priors["tau_scale"].value == 0.3 and plan.pool().priors["tau_scale"].provenance == "config"
    assert plan.pool().priors["mu_sd"].value == 1.0 and plan.pool().priors["mu_sd"].provenance == "default"
    names = [f.name for f in plan.pool().fits]
    assert names == ["main", "prior:regularising", "prior:default", "prior:weak",
                     "loo:s1", "loo:s2", "loo:s3", "loo:s4"]  # leave-one-out is on by default (exact)
    assert plan.pool().fit("prior:default").same_as == "main"  # the same posterior: not a second fit
    assert plan.pool().fit("prior:weak").same_as is None
    assert plan.pool().fit("prior:regularising").priors.tau_scale == pytest.approx(0.15)
    assert plan.pool().fit("prior:weak").priors.mu_sd == pytest.approx(2.0)
    assert plan.pool().sensitivity.uncertainty_status.startswith("not applicable")
    assert plan.pool().sensitivity.reference_prior == "default"


def test_uncertainty_grid_and_loo(tmp_path: Path) -> None:
    rows = [*four_rows(), row("sc", 0.03, unit="log_relative", se=None, uncertainty_scenario="medium")]
    plan = _plan(tmp_path, rows, sensitivity={"prior": False, "uncertainty": True, "leave_one_out": True})
    names = [f.name for f in plan.pool().fits]
    assert names[:4] == ["main", "uncertainty:low", "uncertainty:medium", "uncertainty:high"]
    assert [n for n in names if n.startswith("loo:")] == ["loo:s1", "loo:s2", "loo:s3", "loo:s4", "loo:sc"]
    ids, _, se = plan.pool().fit_data(plan.pool().fit("uncertainty:high"))
    assert se[ids.index("sc")] == 0.10
    # the scenario row already uses "medium": that level is the main fit itself
    assert [f.same_as for f in plan.pool().fits[1:4]] == [None, "main", None]
    ids, _, _ = plan.pool().fit_data(plan.pool().fit("loo:s2"))
    assert "s2" not in ids


def test_custom_prior_specs_fill_from_main(tmp_path: Path) -> None:
    plan = _plan(tmp_path, four_rows(), sensitivity={"prior": True, "prior_specs": [
        {"name": "sceptical", "mu_sd": 0.1}, {"name": "cauchy", "tau_family": "half_cauchy"}]})
    assert plan.pool().fit("prior:sceptical").priors.tau_scale == 0.5
    assert plan.pool().fit("prior:cauchy").priors.tau_family == "half_cauchy"
    assert plan.pool().sensitivity.reference_prior == "main"


def test_seeds_are_deterministic_and_distinct(tmp_path: Path) -> None:
    plan = _plan(tmp_path, four_rows(), sensitivity={"prior": True})
    seeds = [f.seed for f in plan.pool().fits]
    assert len(set(seeds)) == len(seeds)
    assert plan.pool().fit("main").seed == fit_seed(7, "main")
    assert fit_seed(7, "main") != fit_seed(8, "main")


def test_materiality_rule_recorded(tmp_path: Path) -> None:
    plan = _plan(tmp_path, four_rows(), sensitivity={"materiality": {"mean_shift_sd": 0.3}})
    assert plan.pool().sensitivity.materiality.mean_shift_sd == 0.3
    assert "0.3" in plan.pool().sensitivity.materiality.rule


def test_hash_is_location_independent_and_bytes_identical(tmp_path: Path) -> None:
    a = tmp_path / "a" / "examples"
    b = tmp_path / "deeper" / "b" / "examples"
    shutil.copytree(EXAMPLES, a)
    shutil.copytree(EXAMPLES, b)
    pa, pb = compile_config(a / "config.yaml"), compile_config(b / "config.yaml")
    assert pa.plan_hash == pb.plan_hash
    fa = write_plan(pa, Path(pa.locations.output_directory) / "plan.json")
    fb = write_plan(pb, Path(pb.locations.output_directory) / "plan.json")
    assert fa.read_bytes() == fb.read_bytes()
    assert str(tmp_path) not in fa.read_text()
    # written elsewhere: same hash, locations still resolve
    other = write_plan(pa, tmp_path / "elsewhere" / "p.json")
    loaded = load_plan(other)
    assert loaded.plan_hash == pa.plan_hash
    assert Path(loaded.locations.tracker) == (a / "example_tracker.csv").resolve()


def test_compiling_twice_is_identical() -> None:
    a, b = compile_config(EXAMPLES / "config.yaml"), compile_config(EXAMPLES / "config.yaml")
    assert plan_to_text(a, EXAMPLES) == plan_to_text(b, EXAMPLES)


def test_edited_plan_is_refused(tmp_path: Path) -> None:
    from marketbayesmeta.errors import PlanError

    plan = _plan(tmp_path, four_rows())
    text = plan_to_text(plan, tmp_path).replace('"chains": 2', '"chains": 3')
    with pytest.raises(PlanError, match="edited"):
        parse_plan(text)


def test_example_readiness_is_directional() -> None:
    plan = compile_config(EXAMPLES / "config.yaml")
    assert plan.pool().readiness.readiness == "directional"
    reasons = {r.reason for r in plan.pool().rows}
    assert {"included", "scenario", "not_analysis_ready", "triangulate_only", "incompatible_unit",
            "other_metric"} <= reasons
    assert any(r.uncertainty_source == "confidence_interval" and r.ci_level == 0.9 for r in plan.pool().rows)
    assert any(r.uncertainty_source == "standard_error" and r.decision == "included" for r in plan.pool().rows)
