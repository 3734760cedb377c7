"""Fake run directories for report tests, written to the 0.5 contract (the design's output table:
every file and column a 0.5 run directory can hold, including heterogeneity, model comparison,
cumulative, triangulation, moderators and portfolio files).

The numbers are internally consistent (summaries computed from the draws stored in posterior.nc,
leave-one-out and cumulative from a fixed-tau normal approximation) but they do not come from the
package's engines: the report must work from the files alone, so the tests build the files
directly. ``make_fake_run`` writes one pool; ``make_fake_portfolio`` a portfolio run directory.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from marketbayesmeta.outputs import CATALOGUE

# Every CSV with the catalogue's (0.5) columns, in order.
COLUMNS: dict[str, list[str]] = {f.name: list(f.columns) for f in CATALOGUE if f.is_csv}

DEFAULT_ESTIMATES = [0.031, 0.058, -0.012, 0.082, 0.041, 0.025]
DEFAULT_SES = [0.020, 0.030, 0.025, 0.040, 0.020, 0.035]
WINDOW_ENDS = ["2025-06-30", "2025-03-31", "", "2025-09-30", "2024-12-31", "2025-11-30"]
CHANNELS = ["tv", "search", "tv", "social", "search", "tv"]
SPEND = [1.2, 0.4, 2.0, 0.8, 1.5, 0.6]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if not math.isfinite(float(value)) else f"{float(value):.10g}"
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return text


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])


def _summary(draws: np.ndarray, level: float, *, prob: bool, pct: bool) -> dict[str, Any]:
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    out: dict[str, Any] = {
        "mean": float(np.mean(draws)), "sd": float(np.std(draws, ddof=1)),
        "median": float(np.median(draws)), "lower": float(np.quantile(draws, lo)),
        "upper": float(np.quantile(draws, hi)), "interval_level": level,
    }
    if prob:
        out["prob_positive"] = float(np.mean(draws > 0))
    if pct:
        p = 100 * np.expm1(draws)
        out.update(mean_pct=float(np.mean(p)), median_pct=float(np.median(p)),
                   lower_pct=float(np.quantile(p, lo)), upper_pct=float(np.quantile(p, hi)))
    return out


def _fixed_tau_pool(y: np.ndarray, s: np.ndarray, tau: float, level: float, pct: bool) -> dict[str, Any]:
    """mu | tau for a subset (normal approximation with tau fixed): the leave-one-out and
    cumulative rows of the fixture."""
    w = 1 / (s ** 2 + tau ** 2)
    m = float((w * y).sum() / w.sum())
    sd = 1 / math.sqrt(w.sum())
    z = 1.959963984540054 if abs(level - 0.95) < 1e-9 else 1.6448536269514722
    out = {"mu_mean": m, "mu_sd": sd, "mu_lower": m - z * sd, "mu_upper": m + z * sd,
           "prob_positive": 0.5 * (1 + math.erf(m / sd / math.sqrt(2))), "tau_median": tau}
    if pct:
        out.update(mu_mean_pct=100 * math.expm1(m), mu_lower_pct=100 * math.expm1(m - z * sd),
                   mu_upper_pct=100 * math.expm1(m + z * sd))
    return out


def _rows(n_pool: int, n_scenario: int, names: list[str], mult: float, pct_scale: bool, row_note: str,
          triangulate: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n_pool):
        y = DEFAULT_ESTIMATES[i] * mult
        scenario = i >= n_pool - n_scenario
        se = (0.05 * mult) if scenario else DEFAULT_SES[i] * mult
        rows.append({
            "row": i + 2, "study_id": f"S{i + 1}", "study_name": names[i], "evidence_type": "geo_test",
            "metric": "sales", "decision": "scenario" if scenario else "included",
            "reason": "scenario_uncertainty" if scenario else "included",
            "reason_message": ("no source uncertainty: the medium scenario SE is used" if scenario
                               else "comparable row with source uncertainty"),
            "transform": "log1p_percent" if pct_scale else "identity",
            "transform_formula": "log(1 + x/100)" if pct_scale else "x",
            "source_estimate": 100 * math.expm1(y) if pct_scale else y,
            "source_unit": "relative_percent" if pct_scale else "percentage_point",
            "source_se": None if scenario else (100 * se * math.exp(y) if pct_scale else se),
            "uncertainty_source": "scenario" if scenario else "standard_error",
            "uncertainty_scenario": "medium" if scenario else None,
            "model_estimate": y, "model_se": se, "notes": row_note if i == 0 else "",
            "checks": "large_effect (acknowledged)" if i == 3 else "",
            "window_end": WINDOW_ENDS[i], "moderators": {"spend_index": SPEND[i], "channel": CHANNELS[i]},
        })
    n = n_pool + 2
    if triangulate:
        rows.append({
            "row": n, "study_id": "MMM-1", "study_name": "=MMM Q4 refresh", "evidence_type": "mmm", "metric": "sales",
            "decision": "excluded", "reason": "triangulate_only",
            "reason_message": "triangulate-only evidence (mmm): not pooled", "transform": "log1p_percent",
            "transform_formula": "log(1 + x/100)", "source_estimate": 7.9 if pct_scale else 2.6,
            "source_unit": "relative_percent" if pct_scale else "percentage_point", "source_se": 1.8,
            "uncertainty_source": "standard_error", "model_estimate": math.log1p(0.079) if pct_scale else 2.6,
            "model_se": 0.017 if pct_scale else 0.9, "notes": row_note, "window_end": "2025-12-31"})
        rows.append({
            "row": n + 1, "study_id": "MMM-2", "study_name": "MMM conversion read-out", "evidence_type": "mmm",
            "metric": "sales", "decision": "excluded", "reason": "triangulate_only",
            "reason_message": "triangulate-only evidence (mmm): not pooled", "transform": "none",
            "transform_formula": "", "source_estimate": 1.1,
            "source_unit": "percentage_point" if pct_scale else "relative_percent", "source_se": 0.4,
            "uncertainty_source": "standard_error", "model_estimate": None, "model_se": None, "window_end": ""})
        n += 2
    rows.append({
        "row": n, "study_id": "ROI-1", "study_name": "Search ROI", "evidence_type": "geo_test", "metric": "roi",
        "decision": "excluded", "reason": "other_metric", "reason_message": "metric roi is not the pooled metric sales",
        "transform": "none", "transform_formula": "", "source_estimate": 2.4, "source_unit": "ratio",
        "source_se": 0.4, "uncertainty_source": "standard_error", "model_estimate": None, "model_se": None,
        "notes": "", "window_end": "2025-05-31"})
    return rows


def make_fake_run(
    run_dir: str | Path,
    *,
    status: str = "completed_with_warnings",
    study_names: Sequence[str] | None = None,
    project_notes: str = "Fake run for report tests.",
    row_note: str = "",
    scale: str = "log_relative",
    scenario_rows: int = 1,
    material_prior: bool = False,
    leave_one_out: bool = True,
    moderators: bool = False,
    triangulate: bool = True,
    justification: str | None = None,
    forest_order: str | None = None,
    seed: int = 7,
) -> Path:
    """Write a plausible 0.5 run directory into ``run_dir`` and return it.

    ``status="blocked"`` writes only what a blocked run writes (plan.json, run_status.json,
    effect_preparation.csv, readiness.csv). ``moderators`` adds moderators.csv (a numeric and a
    categorical moderator); ``triangulate`` adds two MMM rows of the pool's metric (one comparable,
    one not) and triangulation.csv.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    blocked = status == "blocked"
    n_pool = 2 if blocked else 6
    names = list(study_names) if study_names is not None else [f"Geo test {i + 1}" for i in range(n_pool)]
    names = (names + [f"Geo test {i + 1}" for i in range(len(names), n_pool)])[:n_pool]
    pct_scale = scale == "log_relative"
    mult = 1.0 if pct_scale else 100.0
    level = 0.95
    metric = "sales"
    n_scenario = 0 if blocked else min(scenario_rows, n_pool - 1)
    rows = _rows(n_pool, n_scenario, names, mult, pct_scale, row_note, triangulate)
    write_csv(run_dir / "effect_preparation.csv", COLUMNS["effect_preparation.csv"], rows)
    pooled = [r for r in rows if r["decision"] != "excluded"]
    k = len(pooled)
    readiness = "not_recommended" if k < 3 else ("directional" if k < 4 else "ready")
    why = f"{k} comparable rows (directional from 3, ready from 4)"
    write_csv(run_dir / "readiness.csv", COLUMNS["readiness.csv"], [{
        "pool": f"geo_test/{metric}/{scale}", "evidence_types": "geo_test", "metric": metric, "scale": scale,
        "eligible": k, "included": k - n_scenario, "scenario": n_scenario, "readiness": readiness, "why": why,
        "min_rows_directional": 3, "min_rows_ready": 4, "blocking_duplicates": 0, "possible_duplicates": 1}])

    priors = {"mu_mean": 0.0, "mu_sd": 1.0 * mult, "tau_scale": 0.5 * mult, "tau_family": "half_normal"}
    specs = {"regularising": 0.5, "default": 1.0, "weak": 2.0}
    fits = [{"name": "main", "kind": "main", "label": "main", "priors": priors, "scenario_level": None,
             "leave_out": None, "seed": 1}]
    fits += [{"name": f"prior:{name}", "kind": "prior", "label": name,
              "priors": {**priors, "mu_sd": priors["mu_sd"] * f, "tau_scale": priors["tau_scale"] * f},
              "scenario_level": None, "leave_out": None, "seed": 2} for name, f in specs.items() if name != "default"]
    if n_scenario:
        fits += [{"name": f"uncertainty:{lvl}", "kind": "uncertainty", "label": lvl, "priors": priors,
                  "scenario_level": lvl, "leave_out": None, "seed": 3} for lvl in ("low", "medium", "high")]
    rule = ("material if the mean of mu moves by more than 0.5 reference sd, P(mu > 0) moves by more "
            "than 0.10 or crosses 0.5, or the interval width changes by more than 25 %")
    plan_rows = [{**{k2: v for k2, v in r.items() if k2 not in ("checks", "transform", "transform_formula",
                                                                "source_unit")},
                  "unit": r["source_unit"], "analysis_ready": True,
                  "transform": {"name": r["transform"], "formula": r["transform_formula"],
                                "uncertainty_method": "delta_method", "parameters": {}}} for r in rows]
    plan = {
        "format": "marketbayesmeta.plan/1", "package_version": "0.5.0", "plan_hash": "ab" * 32,
        "project_name": "fake_report_run", "project_notes": project_notes, "metric": metric,
        "scale": scale, "evidence_types": ["geo_test"], "triangulate_only_justification": justification,
        "sources": {"config": {"name": "config.yaml", "sha256": "cd" * 32, "size": 900},
                    "tracker": {"name": "tracker.csv", "sha256": "ef" * 32, "size": 1200}},
        "rows": plan_rows,
        "duplicates": [{"kind": "possible", "study_ids": ["S1", "S2"], "rows": [2, 3],
                        "message": "rows 2, 3 share brand, market, channel and window but report different numbers"}],
        "readiness": {"pool": f"geo_test/{metric}/{scale}", "eligible": k, "included": k - n_scenario,
                      "scenario": n_scenario, "readiness": readiness, "why": why,
                      "min_rows_directional": 3, "min_rows_ready": 4},
        "priors": {"mu_mean": {"value": 0.0, "provenance": "default"},
                   "mu_sd": {"value": priors["mu_sd"], "provenance": "default"},
                   "tau_scale": {"value": priors["tau_scale"], "provenance": "config"},
                   "tau_family": {"value": "half_normal", "provenance": "default"}},
        "scenario_se": {lvl: {"value": v * mult, "provenance": "default"}
                        for lvl, v in (("low", 0.02), ("medium", 0.05), ("high", 0.10))},
        "sampler": {"chains": 4, "draws": 200, "tune": 200, "target_accept": 0.9,
                    "random_seed": 20260603, "nuts_sampler": "pymc"},
        "thresholds": {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400,
                       "max_divergences": 0, "max_exact_z": 4.0, "min_bfmi": 0.3, "on_failure": "block"},
        "sensitivity": {"prior": True, "uncertainty": bool(n_scenario),
                        "uncertainty_status": "applicable" if n_scenario else "not applicable: no scenario rows",
                        "leave_one_out": leave_one_out, "reference_prior": "default",
                        "materiality": {"mean_shift_sd": 0.5, "prob_positive_shift": 0.1,
                                        "prob_positive_crosses_half": True, "interval_width_change": 0.25,
                                        "rule": rule}},
        "fits": fits, "reporting_interval": level, "output_directory": "output/fake",
        "locations": {"config": "../config.yaml", "tracker": "../tracker.csv", "output_directory": "."},
    }
    if forest_order:
        plan["reporting"] = {"interval": level, "forest_order": forest_order}
    pooled = [r for r in rows if r["decision"] != "excluded"]
    spend = [r["moderators"]["spend_index"] for r in pooled]
    centre = sum(spend) / len(spend)
    plan["moderators"] = {"design": {  # the meta-regression's design, as the plan records it (numeric centred)
        "terms": [{"name": "intercept", "moderator": None, "kind": "intercept", "level": None, "exploratory": False},
                  {"name": "spend_index", "moderator": "spend_index", "kind": "numeric", "level": None,
                   "exploratory": False}],
        "study_ids": [r["study_id"] for r in pooled], "matrix": [[1.0, x - centre] for x in spend],
        "centring": {"spend_index": centre}}}
    (run_dir / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True), encoding="utf-8")

    reasons: list[dict[str, str]] = []
    if blocked:
        reasons.append({"code": "readiness_not_recommended",
                        "message": f"only {k} comparable rows; at least 3 are needed to pool"})
    else:
        if readiness != "ready":
            reasons.append({"code": f"readiness_{readiness}", "message": why})
        if n_scenario:
            reasons.append({"code": "scenario_uncertainty",
                            "message": f"{n_scenario} pooled row(s) use scenario uncertainty"})
        if material_prior:
            reasons.append({"code": "material_prior_dependence",
                            "message": "the weak prior moves the result materially"})
    if status == "failed":
        reasons.append({"code": "diagnostics_failed", "message": "main fit: r_hat of tau 1.05 > 1.01"})
    exit_code = {"completed": 0, "completed_with_warnings": 0, "blocked": 3, "failed": 4}[status]
    run_status: dict[str, Any] = {
        "format": "marketbayesmeta.run_status/2", "engine": "exact", "pool": f"geo_test/{metric}/{scale}",
        "pool_hash": "12" * 32,
        "status": status, "reportable": status == "completed" and not reasons, "reasons": reasons,
        "exit_code": exit_code, "plan_hash": plan["plan_hash"], "project_name": plan["project_name"],
        "readiness": readiness, "allow_stale": False, "stale_sources": [],
        "started_at": "2026-06-03T10:00:00Z", "finished_at": "2026-06-03T10:01:00Z",
        "package_version": "0.5.0", "versions": {"python": "3.11", "pymc": "5.28"}, "headline": None,
    }
    if blocked:
        (run_dir / "run_status.json").write_text(json.dumps(run_status, indent=2), encoding="utf-8")
        return run_dir
    from report_fixture_results import write_results

    run_status["headline"] = write_results(run_dir, rng, rows, pooled, fits, specs, priors, status=status,
                                           level=level, mult=mult, pct_scale=pct_scale,
                                           material_prior=material_prior, leave_one_out=leave_one_out,
                                           moderators=moderators, n_scenario=n_scenario, scale=scale)
    (run_dir / "run_status.json").write_text(json.dumps(run_status, indent=2), encoding="utf-8")
    return run_dir


def make_fake_portfolio(root: str | Path, *, pool_names: Sequence[str] | None = None) -> Path:
    """A portfolio run directory: ``pools/<pool>/`` (a completed log_relative pool, a failed
    percentage_point pool, a blocked pool), ``portfolio.csv``, ``run_status.json`` and a v2 plan."""
    root = Path(root)
    names = list(pool_names or ["geo_sales", "brand_awareness", "search_sales"])
    kinds = [("completed_with_warnings", "log_relative"), ("failed", "percentage_point"), ("blocked", "log_relative")]
    rows, pools = [], []
    for name, (status, scale) in zip(names, kinds, strict=False):
        pool_dir = make_fake_run(root / "pools" / name, status=status, scale=scale)
        plan = json.loads((pool_dir / "plan.json").read_text(encoding="utf-8"))
        (pool_dir / "plan.json").unlink()
        (pool_dir / "pool.json").write_text(json.dumps({**plan, "name": name, "pool_hash": "34" * 32}, indent=2),
                                            encoding="utf-8")
        st = json.loads((pool_dir / "run_status.json").read_text(encoding="utf-8"))
        head = st.get("headline") or {}
        pct = scale == "log_relative"
        est = [head.get(f"mu_{k}_pct" if pct else f"mu_{k}") for k in ("mean", "lower", "upper")]
        rows.append({"pool": name, "metric": "sales", "scale": scale, "evidence_types": "geo_test", "filters": "",
                     "status": status, "exit_code": st["exit_code"], "readiness": st["readiness"],
                     "reportable": st["reportable"], "unit": "%" if pct else "pp",
                     "estimate": est[0], "lower": est[1], "upper": est[2], "interval_level": 0.95,
                     "prob_positive": head.get("prob_positive"), "typical_spread": None, "i2_median": None,
                     "rows_in": 5, "rows_scenario": 1, "rows_out": 3, "reused": False, "pool_hash": "34" * 32,
                     "reasons": "; ".join(r["code"] for r in st["reasons"])})
        pools.append({"name": name, "status": status, "exit_code": st["exit_code"],
                      "reportable": st["reportable"], "reused": False})
    write_csv(root / "portfolio.csv", COLUMNS["portfolio.csv"], rows)
    worst = "failed" if any(p["status"] == "failed" for p in pools) else "completed_with_warnings"
    (root / "run_status.json").write_text(json.dumps({
        "format": "marketbayesmeta.run_status/2", "status": worst, "reportable": False, "exit_code": 4,
        "reasons": [{"code": "pool_failed", "message": "pool brand_awareness failed"}], "pools": pools,
        "project_name": "fake_portfolio", "started_at": "2026-06-03T10:00:00Z",
        "finished_at": "2026-06-03T10:05:00Z"}, indent=2), encoding="utf-8")
    (root / "plan.json").write_text(json.dumps({"format": "marketbayesmeta.plan/2", "project_name": "fake_portfolio",
                                                "layout": "portfolio", "pools": []}), encoding="utf-8")
    return root
