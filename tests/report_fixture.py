"""A fake run directory for report tests, written to the contract of docs/outputs.md.

The numbers are internally consistent (the CSV summaries are computed from the draws stored in
posterior.nc) but they do not come from the package's sampler: the report must work from the
files alone, so the tests build the files directly.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS: dict[str, list[str]] = {
    "effect_preparation.csv": [
        "row", "study_id", "study_name", "evidence_type", "metric", "decision", "reason",
        "reason_message", "transform", "transform_formula", "source_estimate", "source_unit",
        "source_se", "ci_lower", "ci_upper", "ci_level", "uncertainty_source",
        "uncertainty_scenario", "model_estimate", "model_se"],
    "readiness.csv": [
        "pool", "evidence_types", "metric", "scale", "eligible", "included", "scenario",
        "readiness", "why", "min_rows_directional", "min_rows_ready", "blocking_duplicates",
        "possible_duplicates"],
    "pooled_summary.csv": [
        "parameter", "mean", "sd", "median", "lower", "upper", "interval_level", "prob_positive",
        "mean_pct", "median_pct", "lower_pct", "upper_pct"],
    "study_effects.csv": [
        "study_id", "study_name", "decision", "observed", "se", "mean", "sd", "median", "lower",
        "upper", "interval_level", "prob_positive", "shrinkage", "mean_pct", "median_pct",
        "lower_pct", "upper_pct"],
    "future_true_effect_summary.csv": [
        "parameter", "mean", "sd", "median", "lower", "upper", "interval_level", "prob_positive",
        "mean_pct", "median_pct", "lower_pct", "upper_pct"],
    "diagnostics.csv": ["fit", "parameter", "check", "value", "threshold", "pass"],
    "prior_diagnostics.csv": ["check", "parameter", "value", "reference", "warning", "message"],
    "ppc.csv": [
        "study_id", "observed", "se", "yrep_mean", "lower", "upper", "interval_level",
        "tail_probability", "flag"],
    "prior_sensitivity.csv": [
        "fit", "spec", "mu_mean", "mu_sd", "tau_scale", "tau_family", "mean", "sd", "lower",
        "upper", "interval_width", "prob_positive", "diagnostics_pass", "delta_mean",
        "delta_mean_sd", "delta_prob_positive", "delta_interval_width_rel", "material",
        "material_reasons"],
    "uncertainty_sensitivity.csv": [
        "fit", "level", "scenario_se", "mean", "sd", "lower", "upper", "interval_width",
        "prob_positive", "diagnostics_pass", "delta_mean", "delta_mean_sd", "delta_prob_positive",
        "delta_interval_width_rel", "material", "material_reasons"],
    "influence.csv": [
        "left_out", "mu_mean", "mu_lower", "mu_upper", "tau_mean", "delta_mu_mean",
        "delta_tau_mean", "diagnostics_pass"],
}

DEFAULT_ESTIMATES = [0.031, 0.058, -0.012, 0.082, 0.041, 0.025]
DEFAULT_SES = [0.020, 0.030, 0.025, 0.040, 0.020, 0.035]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
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
    seed: int = 7,
) -> Path:
    """Write a plausible run directory into ``run_dir`` and return it.

    ``status="blocked"`` writes only what a run blocked by readiness writes (plan.json,
    run_status.json, effect_preparation.csv, readiness.csv): no posterior and no summaries.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    blocked = status == "blocked"
    n_pool = 2 if blocked else 6
    n_pool = min(n_pool, len(DEFAULT_ESTIMATES))
    names = list(study_names) if study_names is not None else [f"Geo test {i + 1}" for i in range(n_pool)]
    names = (names + [f"Geo test {i + 1}" for i in range(len(names), n_pool)])[:n_pool]
    pct_scale = scale == "log_relative"
    mult = 1.0 if pct_scale else 100.0
    level = 0.95
    metric = "sales"

    # -- rows ------------------------------------------------------------------------------------
    rows: list[dict[str, Any]] = []
    n_scenario = 0 if blocked else min(scenario_rows, n_pool - 1)
    for i in range(n_pool):
        y = DEFAULT_ESTIMATES[i] * mult
        scenario = i >= n_pool - n_scenario
        se = (0.05 * mult) if scenario else DEFAULT_SES[i] * mult
        src_est = 100 * math.expm1(y) if pct_scale else y
        rows.append({
            "row": i + 2, "study_id": f"S{i + 1}", "study_name": names[i],
            "evidence_type": "geo_test", "metric": metric,
            "decision": "scenario" if scenario else "included",
            "reason": "scenario_uncertainty" if scenario else "included",
            "reason_message": ("no source uncertainty: the medium scenario SE is used" if scenario
                               else "comparable row with source uncertainty"),
            "transform": "log1p_percent" if pct_scale else "identity",
            "transform_formula": "log(1 + x/100)" if pct_scale else "x",
            "source_estimate": src_est,
            "source_unit": "relative_percent" if pct_scale else "percentage_point",
            "source_se": None if scenario else (100 * se * math.exp(y) if pct_scale else se),
            "ci_lower": None, "ci_upper": None, "ci_level": None,
            "uncertainty_source": "scenario" if scenario else "standard_error",
            "uncertainty_scenario": "medium" if scenario else None,
            "model_estimate": y, "model_se": se,
            "notes": row_note if i == 0 else "",
        })
    rows.append({
        "row": n_pool + 2, "study_id": "MMM-1", "study_name": "=MMM roi 2025",
        "evidence_type": "mmm", "metric": "roi", "decision": "excluded", "reason": "other_metric",
        "reason_message": "metric roi is not the pooled metric sales", "transform": "none",
        "transform_formula": "", "source_estimate": 2.4, "source_unit": "ratio", "source_se": 0.4,
        "uncertainty_source": "standard_error", "model_estimate": None, "model_se": None,
        "notes": row_note,
    })
    write_csv(run_dir / "effect_preparation.csv", COLUMNS["effect_preparation.csv"], rows)
    pooled = [r for r in rows if r["decision"] != "excluded"]
    k = len(pooled)
    readiness = "not_recommended" if k < 3 else ("directional" if k < 4 else "ready")
    why = f"{k} comparable rows (directional from 3, ready from 4)"
    write_csv(run_dir / "readiness.csv", COLUMNS["readiness.csv"], [{
        "pool": f"geo_test/{metric}/{scale}", "evidence_types": "geo_test", "metric": metric,
        "scale": scale, "eligible": k, "included": k - n_scenario, "scenario": n_scenario,
        "readiness": readiness, "why": why, "min_rows_directional": 3, "min_rows_ready": 4,
        "blocking_duplicates": 0, "possible_duplicates": 0,
    }])

    priors = {"mu_mean": 0.0, "mu_sd": 1.0 * mult, "tau_scale": 0.5 * mult, "tau_family": "half_normal"}
    specs = {"regularising": 0.5, "default": 1.0, "weak": 2.0}
    fits = [{"name": "main", "kind": "main", "label": "main", "priors": priors, "scenario_level": None,
             "leave_out": None, "seed": 1}]
    for name, f in specs.items():
        if name != "default":
            fits.append({"name": f"prior:{name}", "kind": "prior", "label": name,
                         "priors": {**priors, "mu_sd": priors["mu_sd"] * f, "tau_scale": priors["tau_scale"] * f},
                         "scenario_level": None, "leave_out": None, "seed": 2})
    if n_scenario:
        for lvl in ("low", "medium", "high"):
            fits.append({"name": f"uncertainty:{lvl}", "kind": "uncertainty", "label": lvl,
                         "priors": priors, "scenario_level": lvl, "leave_out": None, "seed": 3})
    rule = ("material if the mean of mu moves by more than 0.5 reference sd, P(mu > 0) moves by more "
            "than 0.10 or crosses 0.5, or the interval width changes by more than 25 %")
    plan = {
        "format": "marketbayesmeta.plan/1", "package_version": "0.4.0", "plan_hash": "ab" * 32,
        "project_name": "fake_report_run", "project_notes": project_notes, "metric": metric,
        "scale": scale, "evidence_types": ["geo_test"], "triangulate_only_justification": None,
        "sources": {"config": {"name": "config.yaml", "sha256": "cd" * 32, "size": 900},
                    "tracker": {"name": "tracker.csv", "sha256": "ef" * 32, "size": 1200}},
        "rows": [{**{k2: v for k2, v in r.items() if k2 in (
            "row", "study_id", "study_name", "evidence_type", "metric", "source_estimate", "source_se",
            "ci_lower", "ci_upper", "ci_level", "uncertainty_scenario", "decision", "reason",
            "reason_message", "model_estimate", "model_se", "uncertainty_source", "notes")},
            "unit": r["source_unit"], "analysis_ready": True,
            "transform": {"name": r["transform"], "formula": r["transform_formula"],
                          "uncertainty_method": "delta_method", "parameters": {}}} for r in rows],
        "duplicates": [],
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
                                        "prob_positive_crosses_half": True,
                                        "interval_width_change": 0.25, "rule": rule}},
        "fits": fits, "reporting_interval": level, "output_directory": "output/fake",
        "locations": {"config": "../config.yaml", "tracker": "../tracker.csv", "output_directory": "."},
    }
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
        "status": status, "reportable": status == "completed" and not reasons, "reasons": reasons,
        "exit_code": exit_code, "plan_hash": plan["plan_hash"], "project_name": plan["project_name"],
        "readiness": readiness, "allow_stale": False, "stale_sources": [],
        "started_at": "2026-06-03T10:00:00Z", "finished_at": "2026-06-03T10:01:00Z",
        "package_version": "0.4.0", "versions": {"python": "3.11", "pymc": "5.28"}, "headline": None,
    }
    if blocked:
        (run_dir / "run_status.json").write_text(json.dumps(run_status, indent=2), encoding="utf-8")
        return run_dir

    # -- posterior draws (tau from a made-up distribution, mu | tau conjugate, theta | mu, tau) ------
    y = np.array([r["model_estimate"] for r in pooled])
    s = np.array([r["model_se"] for r in pooled])
    ids = [r["study_id"] for r in pooled]
    chains, draws = 4, 200
    tau = np.abs(rng.normal(0.0, 0.025 * mult, (chains, draws))) + 1e-4 * mult
    w = 1.0 / (s[None, None, :] ** 2 + tau[..., None] ** 2)
    mu_hat = (w * y).sum(-1) / w.sum(-1)
    mu = rng.normal(mu_hat, 1.0 / np.sqrt(w.sum(-1)))
    prec = 1 / s ** 2 + 1 / tau[..., None] ** 2
    theta_mean = (y / s ** 2 + mu[..., None] / tau[..., None] ** 2) / prec
    theta = rng.normal(theta_mean, 1 / np.sqrt(prec))
    future = rng.normal(mu, tau)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz as az

        idata = az.from_dict(
            posterior={"mu": mu, "tau": tau, "theta": theta, "future_true_effect": future},
            sample_stats={"diverging": np.zeros((chains, draws), dtype=bool),
                          "energy": rng.normal(0, 1, (chains, draws)),
                          "lp": rng.normal(-5, 1, (chains, draws))},
            observed_data={"y": y}, constant_data={"se": s},
            coords={"study": ids}, dims={"theta": ["study"], "y": ["study"], "se": ["study"]},
        )
        idata.to_netcdf(str(run_dir / "posterior.nc"))
        ess = az.ess(idata, var_names=["mu", "tau"])
        ess_tail = az.ess(idata, var_names=["mu", "tau"], method="tail")
        rhat = az.rhat(idata, var_names=["mu", "tau"])

    mu_s = _summary(mu.ravel(), level, prob=True, pct=pct_scale)
    tau_s = _summary(tau.ravel(), level, prob=False, pct=False)
    write_csv(run_dir / "pooled_summary.csv", COLUMNS["pooled_summary.csv"],
              [{"parameter": "mu", **mu_s}, {"parameter": "tau", **tau_s}])
    write_csv(run_dir / "future_true_effect_summary.csv", COLUMNS["future_true_effect_summary.csv"],
              [{"parameter": "future_true_effect", **_summary(future.ravel(), level, prob=True, pct=pct_scale)}])
    shrink = (s[None, None, :] ** 2 / (s[None, None, :] ** 2 + tau[..., None] ** 2)).reshape(-1, k).mean(0)
    write_csv(run_dir / "study_effects.csv", COLUMNS["study_effects.csv"], [
        {"study_id": r["study_id"], "study_name": r["study_name"], "decision": r["decision"],
         "observed": r["model_estimate"], "se": r["model_se"], "shrinkage": float(shrink[i]),
         **_summary(theta[..., i].ravel(), level, prob=True, pct=pct_scale)}
        for i, r in enumerate(pooled)])

    diag: list[dict[str, Any]] = []
    fail_main = status == "failed"
    for fit in fits:
        main = fit["name"] == "main"
        for p in ("mu", "tau"):
            r_hat = float(rhat[p]) if main else 1.001
            if main and fail_main and p == "tau":
                r_hat = 1.05
            diag += [
                {"fit": fit["name"], "parameter": p, "check": "r_hat", "value": r_hat, "threshold": 1.01,
                 "pass": r_hat <= 1.01},
                {"fit": fit["name"], "parameter": p, "check": "ess_bulk",
                 "value": float(ess[p]) if main else 900.0, "threshold": 400, "pass": True},
                {"fit": fit["name"], "parameter": p, "check": "ess_tail",
                 "value": float(ess_tail[p]) if main else 850.0, "threshold": 400, "pass": True},
            ]
        diag += [
            {"fit": fit["name"], "parameter": "(sampler)", "check": "divergences", "value": 0,
             "threshold": 0, "pass": True},
            {"fit": fit["name"], "parameter": "(sampler)", "check": "bfmi", "value": 0.95,
             "threshold": 0.3, "pass": True},
        ]
        for p in ("mu", "tau"):
            for check, v in (("exact_z_mean", 0.42), ("exact_z_q025", -1.1), ("exact_z_q975", 0.8)):
                diag.append({"fit": fit["name"], "parameter": p, "check": check, "value": v,
                             "threshold": 4.0, "pass": True})
    for fit in fits:
        ok = all(d["pass"] for d in diag if d["fit"] == fit["name"])
        diag.append({"fit": fit["name"], "parameter": "(fit)", "check": "all", "value": None,
                     "threshold": None, "pass": ok})
    write_csv(run_dir / "diagnostics.csv", COLUMNS["diagnostics.csv"], diag)

    write_csv(run_dir / "prior_diagnostics.csv", COLUMNS["prior_diagnostics.csv"], [
        {"check": "prior_weight", "parameter": "mu", "value": 0.0011, "reference": 0.1,
         "warning": False, "message": "prior precision is 0.11 % of the fixed-effect data precision"},
        {"check": "prior_predictive_tau_q95", "parameter": "tau", "value": 0.98 * mult,
         "reference": 1.0 * mult, "warning": True,
         "message": "the tau prior puts 5 % of its mass above a 166 % spread of true effects"},
    ])

    ppc_rows = []
    for i, r in enumerate(pooled):
        yrep = theta[..., i].ravel() + rng.normal(0, s[i], theta[..., i].size)
        lo, hi = np.quantile(yrep, [(1 - level) / 2, 1 - (1 - level) / 2])
        tail = float(2 * min(np.mean(yrep <= y[i]), np.mean(yrep >= y[i])))
        ppc_rows.append({"study_id": r["study_id"], "observed": y[i], "se": s[i],
                         "yrep_mean": float(yrep.mean()), "lower": float(lo), "upper": float(hi),
                         "interval_level": level, "tail_probability": tail, "flag": tail < 0.05})
    write_csv(run_dir / "ppc.csv", COLUMNS["ppc.csv"], ppc_rows)

    width = mu_s["upper"] - mu_s["lower"]
    sens = []
    for name, f in specs.items():
        shift = 0.0 if name == "default" else (0.004 * (f - 1) * mult)
        if material_prior and name == "weak":
            shift = 0.8 * mu_s["sd"]
        w_f = width * (1 + 0.05 * (f - 1))
        mat = material_prior and name == "weak"
        sens.append({
            "fit": "main" if name == "default" else f"prior:{name}", "spec": name, "mu_mean": 0.0,
            "mu_sd": priors["mu_sd"] * f, "tau_scale": priors["tau_scale"] * f,
            "tau_family": "half_normal", "mean": mu_s["mean"] + shift, "sd": mu_s["sd"],
            "lower": mu_s["mean"] + shift - w_f / 2, "upper": mu_s["mean"] + shift + w_f / 2,
            "interval_width": w_f, "prob_positive": mu_s["prob_positive"], "diagnostics_pass": True,
            "delta_mean": shift, "delta_mean_sd": shift / mu_s["sd"], "delta_prob_positive": 0.0,
            "delta_interval_width_rel": w_f / width - 1, "material": mat,
            "material_reasons": "mean moved 0.8 sd (> 0.5)" if mat else "",
        })
    write_csv(run_dir / "prior_sensitivity.csv", COLUMNS["prior_sensitivity.csv"], sens)
    if n_scenario:
        us = []
        for lvl, se_l in (("low", 0.02), ("medium", 0.05), ("high", 0.10)):
            shift = (se_l - 0.05) * 0.1 * mult
            w_l = width * (1 + (se_l - 0.05))
            us.append({
                "fit": f"uncertainty:{lvl}", "level": lvl, "scenario_se": se_l * mult,
                "mean": mu_s["mean"] + shift, "sd": mu_s["sd"], "lower": mu_s["mean"] + shift - w_l / 2,
                "upper": mu_s["mean"] + shift + w_l / 2, "interval_width": w_l,
                "prob_positive": mu_s["prob_positive"], "diagnostics_pass": True, "delta_mean": shift,
                "delta_mean_sd": shift / mu_s["sd"], "delta_prob_positive": 0.0,
                "delta_interval_width_rel": w_l / width - 1, "material": False, "material_reasons": "",
            })
        write_csv(run_dir / "uncertainty_sensitivity.csv", COLUMNS["uncertainty_sensitivity.csv"], us)
    if leave_one_out:
        inf = []
        for i, r in enumerate(pooled):
            keep = np.arange(k) != i
            wk = 1 / (s[keep] ** 2 + tau_s["mean"] ** 2)
            m = float((wk * y[keep]).sum() / wk.sum())
            half = 1.96 / math.sqrt(wk.sum())
            inf.append({"left_out": r["study_id"], "mu_mean": m, "mu_lower": m - half,
                        "mu_upper": m + half, "tau_mean": tau_s["mean"],
                        "delta_mu_mean": m - mu_s["mean"], "delta_tau_mean": 0.0,
                        "diagnostics_pass": True})
        write_csv(run_dir / "influence.csv", COLUMNS["influence.csv"], inf)

    fut = _summary(future.ravel(), level, prob=True, pct=pct_scale)
    headline = {
        "scale": scale, "mu_mean": mu_s["mean"], "mu_sd": mu_s["sd"], "mu_median": mu_s["median"],
        "mu_lower": mu_s["lower"], "mu_upper": mu_s["upper"], "prob_positive": mu_s["prob_positive"],
        "tau_mean": tau_s["mean"], "tau_median": tau_s["median"], "tau_lower": tau_s["lower"],
        "tau_upper": tau_s["upper"], "future_mean": fut["mean"], "future_lower": fut["lower"],
        "future_upper": fut["upper"], "interval_level": level,
    }
    if pct_scale:
        headline.update(mu_mean_pct=mu_s["mean_pct"], mu_lower_pct=mu_s["lower_pct"],
                        mu_upper_pct=mu_s["upper_pct"], future_lower_pct=fut["lower_pct"],
                        future_upper_pct=fut["upper_pct"])
    run_status["headline"] = headline
    (run_dir / "run_status.json").write_text(json.dumps(run_status, indent=2), encoding="utf-8")
    return run_dir
