"""diff: plans and run directories compared group by group (no sampling: fabricated fixtures)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from marketbayesmeta.audit import diff_plans, load_side, write_manifest
from marketbayesmeta.errors import InputError, PlanError
from marketbayesmeta.plan import Locations, Plan, write_plan

SPECS = Path(__file__).resolve().parents[1] / "specs"

# -- fixtures (shared with test_archive_verify.py) -------------------------------------------------

_ESTIMATES = [(5.2, 2.0), (3.1, 1.5), (-0.8, 2.5), (7.4, 3.0)]


def _row(i: int, est: float, se: float) -> dict[str, Any]:
    return {
        "row": i + 2, "study_id": f"G{i + 1}", "study_name": f"Geo test {i + 1}",
        "evidence_type": "geo_test", "metric": "sales", "unit": "relative_percent",
        "source_estimate": est, "source_se": se, "analysis_ready": True,
        "decision": "included", "reason": "included",
        "reason_message": "comparable row with source uncertainty",
        "transform": {"name": "log1p_percent", "formula": "log(1 + x/100)",
                      "uncertainty_method": "delta_method", "parameters": {}},
        "model_estimate": math.log1p(est / 100), "model_se": se / (100 + est),
        "uncertainty_source": "standard_error",
    }


def plan_dict() -> dict[str, Any]:
    """A small valid plan as a dict (mutate it, then :func:`make_plan`)."""
    priors = {"mu_mean": 0.0, "mu_sd": 1.0, "tau_scale": 0.5, "tau_family": "half_normal"}
    rows = [_row(i, e, s) for i, (e, s) in enumerate(_ESTIMATES)]
    rows.append({
        "row": 6, "study_id": "MMM-1", "evidence_type": "mmm", "metric": "roi", "unit": "ratio",
        "source_estimate": 2.4, "source_se": 0.4, "analysis_ready": True, "decision": "excluded",
        "reason": "other_metric", "reason_message": "metric roi is not the pooled metric sales",
        "transform": {"name": "none", "formula": "", "uncertainty_method": "none"},
        "uncertainty_source": "standard_error",
    })
    fits = [{"name": "main", "kind": "main", "label": "main", "priors": priors, "seed": 11}]
    for name, f, seed in (("regularising", 0.5, 12), ("default", 1.0, 13), ("weak", 2.0, 14)):
        fits.append({"name": f"prior:{name}", "kind": "prior", "label": name,
                     "priors": {**priors, "mu_sd": priors["mu_sd"] * f,
                                "tau_scale": priors["tau_scale"] * f}, "seed": seed})
    return {
        "package_version": "0.4.0",
        "project_name": "geo_sales", "project_notes": "test plan", "metric": "sales",
        "scale": "log_relative", "evidence_types": ["geo_test"],
        "triangulate_only_justification": None,
        "sources": {"config": {"name": "config.yaml", "sha256": "c" * 64, "size": 900},
                    "tracker": {"name": "tracker.csv", "sha256": "d" * 64, "size": 1200}},
        "rows": rows,
        "duplicates": [],
        "readiness": {"pool": "geo_test/sales/log_relative", "eligible": 4, "included": 4,
                      "scenario": 0, "readiness": "ready", "why": "4 comparable rows",
                      "min_rows_directional": 3, "min_rows_ready": 4},
        "priors": {k: {"value": v, "provenance": "default"} for k, v in priors.items()},
        "scenario_se": {lvl: {"value": v, "provenance": "default"}
                        for lvl, v in (("low", 0.02), ("medium", 0.05), ("high", 0.1))},
        "sampler": {"chains": 4, "draws": 1000, "tune": 1000, "target_accept": 0.9,
                    "random_seed": 20260603, "nuts_sampler": "pymc"},
        "thresholds": {"max_rhat": 1.01, "min_ess_bulk": 400.0, "min_ess_tail": 400.0,
                       "max_divergences": 0, "max_exact_z": 4.0, "min_bfmi": 0.3,
                       "on_failure": "block"},
        "sensitivity": {"prior": True, "uncertainty": True,
                        "uncertainty_status": "not applicable: no scenario rows",
                        "leave_one_out": False, "reference_prior": "default",
                        "materiality": {"mean_shift_sd": 0.5, "prob_positive_shift": 0.1,
                                        "prob_positive_crosses_half": True,
                                        "interval_width_change": 0.25, "rule": "material if ..."}},
        "fits": fits,
        "reporting_interval": 0.95,
    }


_PLAN_LEVEL = ("package_version", "project_name", "project_notes", "sources")


def make_plan(mutate: Callable[[dict[str, Any]], None] | None = None) -> Plan:
    """A single-pool plan from :func:`plan_dict`'s flat view (plan-level and pool fields together)."""
    data = plan_dict()
    if mutate is not None:
        mutate(data)
    pool = {k: v for k, v in data.items() if k not in _PLAN_LEVEL}
    pool["reporting"] = {"interval": pool.pop("reporting_interval")}
    pool.update(name=data["project_name"], label=pool["readiness"]["pool"])
    plan = {k: data[k] for k in _PLAN_LEVEL} | {"layout": "single", "pools": [pool]}
    return Plan.model_validate(plan).with_hash()


HEADLINE = {
    "scale": "log_relative", "mu_mean": 0.031, "mu_sd": 0.012, "mu_median": 0.0305,
    "mu_lower": 0.008, "mu_upper": 0.055, "prob_positive": 0.991, "tau_mean": 0.014,
    "tau_median": 0.011, "tau_lower": 0.0006, "tau_upper": 0.041, "future_mean": 0.031,
    "future_lower": -0.012, "future_upper": 0.074, "interval_level": 0.95,
    "mu_mean_pct": 3.15, "mu_lower_pct": 0.8, "mu_upper_pct": 5.65, "future_lower_pct": -1.19,
    "future_upper_pct": 7.68,
}


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def make_run_dir(path: Path, plan: Plan | None = None, *, status: str = "completed",
                 reportable: bool = True, headline: dict[str, Any] | None = None,
                 manifest: bool = True) -> Path:
    """A fabricated run directory: plan.json, run_status.json, a few CSVs, manifest.json."""
    plan = plan or make_plan()
    h = dict(HEADLINE if headline is None else headline)
    path.mkdir(parents=True, exist_ok=True)
    write_plan(plan, path / "plan.json")
    status_doc = {
        "status": status, "reportable": reportable, "reasons": [], "exit_code": 0,
        "plan_hash": plan.plan_hash, "project_name": plan.project_name, "readiness": "ready",
        "allow_stale": False, "stale_sources": [], "started_at": "2026-06-03T10:00:00Z",
        "finished_at": "2026-06-03T10:01:00Z", "package_version": plan.package_version,
        "versions": {"python": "3.11"}, "headline": h,
    }
    (path / "run_status.json").write_text(json.dumps(status_doc, indent=2) + "\n", encoding="utf-8")
    cols = ["parameter", "mean", "sd", "median", "lower", "upper", "interval_level",
            "prob_positive", "mean_pct", "median_pct", "lower_pct", "upper_pct"]
    _write_csv(path / "pooled_summary.csv", cols, [
        ["mu", h.get("mu_mean"), h.get("mu_sd"), h.get("mu_median"), h.get("mu_lower"),
         h.get("mu_upper"), 0.95, h.get("prob_positive"), h.get("mu_mean_pct"), "",
         h.get("mu_lower_pct"), h.get("mu_upper_pct")],
        ["tau", h.get("tau_mean"), 0.01, h.get("tau_median"), h.get("tau_lower"),
         h.get("tau_upper"), 0.95, "", "", "", "", ""]])
    _write_csv(path / "future_true_effect_summary.csv", cols, [
        ["future_true_effect", h.get("future_mean"), 0.02, 0.031, h.get("future_lower"),
         h.get("future_upper"), 0.95, 0.9, "", "", h.get("future_lower_pct"),
         h.get("future_upper_pct")]])
    _write_csv(path / "diagnostics.csv", ["fit", "parameter", "check", "value", "threshold", "pass"],
               [["main", "mu", "r_hat", 1.001, 1.01, "true"]])
    (path / "analysis_report.md").write_text("# Report\n\nStatus: completed\n", encoding="utf-8")
    (path / "figures").mkdir(exist_ok=True)
    (path / "figures" / "forest.svg").write_text("<svg/>\n", encoding="utf-8")
    if manifest:
        write_manifest(path, plan.plan_hash)
    return path


# -- helpers ---------------------------------------------------------------------------------------

def _validate(doc: dict[str, Any]) -> None:
    schema = json.loads((SPECS / "diff.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def _group(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    for g in doc["groups"]:
        if g["group"] == name:
            return g["changes"]
    raise AssertionError(f"no group {name!r} in {[g['group'] for g in doc['groups']]}")


def _plan_file(tmp_path: Path, name: str, plan: Plan) -> Path:
    return write_plan(plan, tmp_path / name / "plan.json")


# -- tests -----------------------------------------------------------------------------------------

def test_same_plan_is_identical(tmp_path: Path) -> None:
    p = _plan_file(tmp_path, "a", make_plan())
    result = diff_plans(p, p)
    assert not result.has_differences
    assert result.exit_code == 0
    doc = result.to_json()
    _validate(doc)
    assert doc["identical"] is True and doc["groups"] == []
    assert doc["format"] == "marketbayesmeta.diff/1"
    assert doc["a"]["plan_hash"] == doc["b"]["plan_hash"] == make_plan().plan_hash
    assert "No differences." in result.render()


def test_locations_and_paths_are_ignored(tmp_path: Path) -> None:
    plan = make_plan()

    def located(config: Path, tracker: Path, out: Path) -> Plan:
        loc = Locations(config=str(config), tracker=str(tracker), output_directory=str(out))
        return plan.model_copy(update={"locations": loc})

    a = write_plan(located(tmp_path / "c1.yaml", tmp_path / "t1.csv", tmp_path / "out1"),
                   tmp_path / "a" / "plan.json")
    b = write_plan(located(tmp_path / "x" / "c.yaml", tmp_path / "x" / "t.csv", tmp_path / "o"),
                   tmp_path / "b" / "deeper" / "plan.json")
    assert a.read_bytes() != b.read_bytes()
    assert not diff_plans(a, b).has_differences


def test_changed_prior_is_in_priors_group(tmp_path: Path) -> None:
    a = _plan_file(tmp_path, "a", make_plan())

    def change(d: dict[str, Any]) -> None:
        d["priors"]["mu_sd"] = {"value": 0.5, "provenance": "config"}

    b = _plan_file(tmp_path, "b", make_plan(change))
    result = diff_plans(a, b)
    assert result.has_differences and result.exit_code == 1
    doc = result.to_json()
    _validate(doc)
    assert not doc["identical"]
    changes = {(c["item"], c["field"]): c for c in _group(doc, "priors")}
    assert changes[("mu_sd", "value")]["a"] == 1.0
    assert changes[("mu_sd", "value")]["b"] == 0.5
    assert changes[("mu_sd", "value")]["delta"] == -0.5
    assert changes[("mu_sd", "provenance")]["a"] == "default"
    assert changes[("mu_sd", "provenance")]["b"] == "config"
    text = result.render()
    assert "[priors]" in text and "mu_sd" in text and "provenance" in text and "-0.5" in text


def test_changed_model_estimate_names_study(tmp_path: Path) -> None:
    a_plan = make_plan()
    old = a_plan.pool().rows[1].model_estimate

    def change(d: dict[str, Any]) -> None:
        d["rows"][1]["model_estimate"] = 0.0421

    a = _plan_file(tmp_path, "a", a_plan)
    b = _plan_file(tmp_path, "b", make_plan(change))
    result = diff_plans(a, b)
    doc = result.to_json()
    _validate(doc)
    [c] = _group(doc, "row transforms")
    assert (c["item"], c["field"], c["a"], c["b"]) == ("G2", "model_estimate", old, 0.0421)
    assert c["delta"] == pytest.approx(0.0421 - old)
    assert [g["group"] for g in doc["groups"]] == ["row transforms"]
    text = result.render()
    assert "G2" in text and repr(old) in text and "0.0421" in text


def test_rows_added_removed_decision_transform_source(tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["rows"] = [r for r in d["rows"] if r["study_id"] != "G4"]
        d["rows"].append({**_row(6, 1.0, 0.5), "study_id": "G9"})
        d["rows"][0]["decision"] = "excluded"
        d["rows"][0]["reason"] = "not_analysis_ready"
        d["rows"][1]["transform"]["name"] = "identity"
        d["rows"][2]["source_estimate"] = -0.9
        d["rows"][2]["study_name"] = "Renamed"

    result = diff_plans(_plan_file(tmp_path, "a", make_plan()),
                        _plan_file(tmp_path, "b", make_plan(change)))
    doc = result.to_json()
    _validate(doc)
    rows = {(c["item"], c["field"], c["kind"]): c for c in _group(doc, "rows")}
    assert rows[("G4", "row", "removed")]["b"] is None
    assert rows[("G4", "row", "removed")]["a"]["decision"] == "included"
    assert rows[("G9", "row", "added")]["a"] is None
    assert rows[("G3", "study_name", "changed")]["b"] == "Renamed"
    decisions = {(c["item"], c["field"]): (c["a"], c["b"]) for c in _group(doc, "row decisions")}
    assert decisions[("G1", "decision")] == ("included", "excluded")
    assert decisions[("G1", "reason")] == ("included", "not_analysis_ready")
    transforms = {(c["item"], c["field"]): (c["a"], c["b"]) for c in _group(doc, "row transforms")}
    assert transforms[("G2", "transform.name")] == ("log1p_percent", "identity")
    values = {(c["item"], c["field"]): c for c in _group(doc, "row source values")}
    assert values[("G3", "source_estimate")]["a"] == -0.8
    assert values[("G3", "source_estimate")]["b"] == -0.9
    text = result.render()
    for word in ("G4", "G9", "(absent)", "[row decisions]", "not_analysis_ready"):
        assert word in text


def test_grid_sampler_thresholds_readiness_sources_project(tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["fits"] = [f for f in d["fits"] if f["name"] != "prior:weak"]
        d["fits"][0]["seed"] = 99
        d["fits"].append({**d["fits"][0], "name": "loo:G1", "kind": "leave_one_out",
                          "label": "G1", "leave_out": "G1", "seed": 5})
        d["sampler"]["draws"] = 2000
        d["thresholds"]["max_rhat"] = 1.05
        d["readiness"]["readiness"] = "directional"
        d["sources"]["tracker"]["sha256"] = "e" * 64
        d["package_version"] = "0.5.0"
        d["evidence_types"] = ["geo_test", "holdout"]
        d["scenario_se"]["high"] = {"value": 0.2, "provenance": "config"}
        d["sensitivity"]["materiality"]["mean_shift_sd"] = 0.25
        d["duplicates"] = [{"kind": "possible", "study_ids": ["G1", "G2"], "rows": [2, 3],
                            "message": "same keys, different numbers"}]

    result = diff_plans(_plan_file(tmp_path, "a", make_plan()),
                        _plan_file(tmp_path, "b", make_plan(change)))
    doc = result.to_json()
    _validate(doc)
    grid = {(c["item"], c["field"], c["kind"]): c for c in _group(doc, "sensitivity grid")}
    assert grid[("main", "seed", "changed")]["a"] == 11
    assert grid[("main", "seed", "changed")]["b"] == 99
    assert ("prior:weak", "fit", "removed") in grid
    assert ("loo:G1", "fit", "added") in grid
    assert _group(doc, "sampler")[0]["field"] == "draws"
    assert _group(doc, "sampler")[0]["delta"] == 1000
    assert _group(doc, "diagnostic thresholds")[0]["b"] == 1.05
    assert _group(doc, "readiness")[0]["b"] == "directional"
    src = _group(doc, "sources")[0]
    assert (src["item"], src["field"], src["b"]) == ("tracker", "sha256", "e" * 64)
    assert _group(doc, "package")[0]["b"] == "0.5.0"
    assert _group(doc, "project")[0]["b"] == ["geo_test", "holdout"]
    assert _group(doc, "uncertainty scenarios")[0]["item"] == "high"
    assert _group(doc, "sensitivity settings")[0]["field"] == "materiality.mean_shift_sd"
    assert _group(doc, "duplicates")[0]["kind"] == "added"
    order = [g["group"] for g in doc["groups"]]
    assert order == sorted(order, key=["project", "package", "sources", "readiness", "duplicates",
                                       "rows", "row decisions", "row transforms",
                                       "row source values", "priors", "uncertainty scenarios",
                                       "sampler", "diagnostic thresholds", "sensitivity settings",
                                       "sensitivity grid", "other", "results"].index)
    assert "results" not in order and doc["results_compared"] is False


def test_mixed_plan_and_run_directory(tmp_path: Path) -> None:
    plan = make_plan()
    run = make_run_dir(tmp_path / "run", plan)
    p = _plan_file(tmp_path, "plan", plan)
    result = diff_plans(p, run)
    doc = result.to_json()
    _validate(doc)
    assert doc["identical"] and not doc["results_compared"]
    assert doc["a"]["kind"] == "plan" and doc["b"]["kind"] == "run"
    assert doc["b"]["status"] == "completed" and doc["a"]["status"] is None
    assert "plans only" in result.render()

    def change(d: dict[str, Any]) -> None:
        d["priors"]["tau_scale"] = {"value": 0.25, "provenance": "config"}

    other = _plan_file(tmp_path, "other", make_plan(change))
    doc2 = diff_plans(run, other).to_json()
    _validate(doc2)
    assert [g["group"] for g in doc2["groups"]] == ["priors"]


def test_directory_without_run_status_is_a_plan(tmp_path: Path) -> None:
    d = tmp_path / "compiled"
    write_plan(make_plan(), d / "plan.json")
    side = load_side(d)
    assert side.kind == "plan"


def test_two_run_directories_headline_deltas(tmp_path: Path) -> None:
    a = make_run_dir(tmp_path / "a")
    h = dict(HEADLINE, mu_mean=0.041, mu_upper=0.07, prob_positive=0.998, tau_mean=0.02)
    b = make_run_dir(tmp_path / "b", headline=h, status="completed_with_warnings",
                     reportable=False)
    result = diff_plans(a, b)
    doc = result.to_json()
    _validate(doc)
    assert doc["results_compared"]
    assert [g["group"] for g in doc["groups"]] == ["results"]
    res = {(c["item"], c["field"]): c for c in _group(doc, "results")}
    assert res[("headline", "mu_mean")]["delta"] == pytest.approx(0.01)
    assert res[("headline", "mu_upper")]["delta"] == pytest.approx(0.015)
    assert res[("headline", "prob_positive")]["delta"] == pytest.approx(0.007)
    assert res[("headline", "tau_mean")]["delta"] == pytest.approx(0.006)
    assert res[("run", "status")]["a"] == "completed"
    assert res[("run", "status")]["b"] == "completed_with_warnings"
    assert res[("run", "reportable")] == {"item": "run", "field": "reportable", "kind": "changed",
                                          "a": True, "b": False, "delta": None}
    assert ("headline", "mu_lower") not in res
    text = result.render()
    assert "[results]" in text and "mu_mean" in text and "+0.01" in text
    # same results: identical
    assert not diff_plans(a, make_run_dir(tmp_path / "c")).has_differences


def test_headline_falls_back_to_summary_csvs(tmp_path: Path) -> None:
    a = make_run_dir(tmp_path / "a")
    b = make_run_dir(tmp_path / "b", headline=dict(HEADLINE, mu_mean=0.05))
    for d in (a, b):
        doc = json.loads((d / "run_status.json").read_text())
        doc["headline"] = None
        (d / "run_status.json").write_text(json.dumps(doc))
    res = {(c["item"], c["field"]): c for c in _group(diff_plans(a, b).to_json(), "results")}
    assert res[("headline", "mu_mean")]["a"] == 0.031
    assert res[("headline", "mu_mean")]["b"] == 0.05


def test_edited_plan_and_bad_paths_are_input_errors(tmp_path: Path) -> None:
    p = _plan_file(tmp_path, "a", make_plan())
    text = p.read_text().replace('"draws": 1000', '"draws": 10')
    edited = tmp_path / "edited.json"
    edited.write_text(text)
    with pytest.raises(PlanError) as exc:
        diff_plans(p, edited)
    assert exc.value.exit_code == 2
    with pytest.raises(InputError):
        diff_plans(p, tmp_path / "nope.json")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(InputError, match="no plan.json"):
        load_side(empty)


# -- meta-regression -------------------------------------------------------------------------------

def _moderators_plan(tmp_path: Path, name: str, edit: Callable[[str], str] = lambda t: t) -> Path:
    import shutil

    from helpers import EXAMPLES
    from marketbayesmeta.api import compile_config

    d = tmp_path / name
    d.mkdir()
    shutil.copy(EXAMPLES / "portfolio_tracker.csv", d)
    (d / "moderators.yaml").write_text(edit((EXAMPLES / "moderators.yaml").read_text()), encoding="utf-8")
    return write_plan(compile_config(d / "moderators.yaml"), d / "plan.json")


def test_moderators_group_names_the_design_and_the_coefficient_priors(tmp_path: Path) -> None:
    a = _moderators_plan(tmp_path, "a")
    b = _moderators_plan(tmp_path, "b", lambda t: t.replace("reference_levels: {channel: tv}",
                                                            "reference_levels: {channel: search}")
                         .replace("  typical_spread:", "  beta_sd: 0.05\n  typical_spread:"))
    doc = diff_plans(a, b).to_json()
    _validate(doc)
    changes = {c["field"]: c for c in _group(doc, "moderators")}
    assert {c["item"] for c in changes.values()} == {"meta-regression"}
    assert (changes["reference_level.channel"]["a"], changes["reference_level.channel"]["b"]) == ("tv", "search")
    assert changes["beta_sd_setting"]["b"] == 0.05
    # the terms follow the reference level: the search term is gone, a tv term is new
    terms_a, terms_b = changes["terms"]["a"], changes["terms"]["b"]
    assert any("search" in t for t in terms_a) and not any("search" in t for t in terms_b)
    assert any("tv" in t for t in terms_b) and not any("tv" in t for t in terms_a)
    priors_b = {k: v["b"] for k, v in changes.items() if k.startswith("prior.") and v["b"] is not None}
    assert priors_b and all(p.endswith(", 0.05)") for p in priors_b.values())
    # a plan without moderators against one with them
    plain = _moderators_plan(tmp_path, "plain", lambda t: t.replace("  moderators: [channel, design]\n", "")
                             .replace("  reference_levels: {channel: tv}\n", ""))
    (change,) = [c for c in _group(diff_plans(plain, a).to_json(), "moderators") if c["field"] == "moderators"]
    assert (change["a"], change["b"]) == (None, ["channel", "design"])
    assert not diff_plans(a, _moderators_plan(tmp_path, "a2")).has_differences


def test_run_results_compare_the_coefficients_of_moderators_csv(tmp_path: Path) -> None:
    header = ["row_type", "term", "moderator", "level", "mean", "lower", "upper", "prob_positive"]
    a, b = make_run_dir(tmp_path / "a"), make_run_dir(tmp_path / "b")
    _write_csv(a / "moderators.csv", header, [["coefficient", "channel[search]", "channel", "search", 0.01, -0.02,
                                              0.04, 0.7], ["subgroup_mean", "channel=tv", "channel", "tv", 0.03,
                                                           0.0, 0.06, 0.97]])
    _write_csv(b / "moderators.csv", header, [["coefficient", "channel[search]", "channel", "search", 0.015, -0.02,
                                              0.04, 0.75], ["subgroup_mean", "channel=tv", "channel", "tv", 0.5,
                                                            0.0, 0.06, 0.97]])
    doc = diff_plans(load_side(a), load_side(b)).to_json()
    _validate(doc)
    res = {(c["item"], c["field"]): c for c in _group(doc, "results")}
    assert res[("moderators", "channel[search].mean")]["delta"] == pytest.approx(0.005)
    assert res[("moderators", "channel[search].prob_positive")]["delta"] == pytest.approx(0.05)
    assert ("moderators", "channel[search].lower") not in res
    assert not any("channel=tv" in f for _, f in res)  # only coefficients: subgroup means follow from them
