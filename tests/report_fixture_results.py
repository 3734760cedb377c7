"""The result files of a fake (not blocked) run for report tests; see report_fixture.py."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from report_fixture import COLUMNS, _fixed_tau_pool, _summary, write_csv


def _draws(rng: np.random.Generator, y: np.ndarray, s: np.ndarray, mult: float) -> dict[str, np.ndarray]:
    """tau from a made-up distribution, mu | tau conjugate, theta | mu, tau, future ~ N(mu, tau)."""
    chains, draws = 4, 200
    tau = np.abs(rng.normal(0.0, 0.025 * mult, (chains, draws))) + 1e-4 * mult
    w = 1.0 / (s[None, None, :] ** 2 + tau[..., None] ** 2)
    mu = rng.normal((w * y).sum(-1) / w.sum(-1), 1.0 / np.sqrt(w.sum(-1)))
    prec = 1 / s ** 2 + 1 / tau[..., None] ** 2
    theta = rng.normal((y / s ** 2 + mu[..., None] / tau[..., None] ** 2) / prec, 1 / np.sqrt(prec))
    return {"mu": mu, "tau": tau, "theta": theta, "future_true_effect": rng.normal(mu, tau)}


def _diagnostics(fits: list[dict[str, Any]], rhat: Any, ess: Any, ess_tail: Any, failed: bool) -> list[dict[str, Any]]:
    diag: list[dict[str, Any]] = []
    for fit in fits:
        main = fit["name"] == "main"
        for p in ("mu", "tau"):
            r_hat = float(rhat[p]) if main else 1.001
            if main and failed and p == "tau":
                r_hat = 1.05
            diag += [
                {"fit": fit["name"], "parameter": p, "check": "r_hat", "value": r_hat, "threshold": 1.01,
                 "pass": r_hat <= 1.01},
                {"fit": fit["name"], "parameter": p, "check": "ess_bulk", "value": float(ess[p]) if main else 900.0,
                 "threshold": 400, "pass": True},
                {"fit": fit["name"], "parameter": p, "check": "ess_tail",
                 "value": float(ess_tail[p]) if main else 850.0, "threshold": 400, "pass": True},
            ]
        diag += [{"fit": fit["name"], "parameter": "(sampler)", "check": "divergences", "value": 0, "threshold": 0,
                  "pass": True},
                 {"fit": fit["name"], "parameter": "(sampler)", "check": "bfmi", "value": 0.95, "threshold": 0.3,
                  "pass": True}]
        for p in ("mu", "tau"):
            for check, v in (("exact_z_mean", 0.42), ("exact_z_q025", -1.1), ("exact_z_q975", 0.8)):
                diag.append({"fit": fit["name"], "parameter": p, "check": check, "value": v, "threshold": 4.0,
                             "pass": True, "mcmc": 0.031 + 0.001 * v, "exact": 0.031, "mcse": 0.001})
    for fit in fits:
        ok = all(d["pass"] for d in diag if d["fit"] == fit["name"])
        diag.append({"fit": fit["name"], "parameter": "(fit)", "check": "all", "value": None, "threshold": None,
                     "pass": ok})
    for d in diag:
        d["draws"] = 200
    return diag


def _sensitivity(mu_s: dict[str, Any], specs: dict[str, float], priors: dict[str, Any], mult: float,
                 material_prior: bool) -> list[dict[str, Any]]:
    width = mu_s["upper"] - mu_s["lower"]
    out = []
    for name, f in specs.items():
        shift = 0.0 if name == "default" else (0.004 * (f - 1) * mult)
        if material_prior and name == "weak":
            shift = 0.8 * mu_s["sd"]
        w_f = width * (1 + 0.05 * (f - 1))
        mat = material_prior and name == "weak"
        out.append({
            "fit": "main" if name == "default" else f"prior:{name}", "spec": name, "mu_mean": 0.0,
            "mu_sd": priors["mu_sd"] * f, "tau_scale": priors["tau_scale"] * f, "tau_family": "half_normal",
            "mean": mu_s["mean"] + shift, "sd": mu_s["sd"], "lower": mu_s["mean"] + shift - w_f / 2,
            "upper": mu_s["mean"] + shift + w_f / 2, "interval_width": w_f, "prob_positive": mu_s["prob_positive"],
            "diagnostics_pass": True, "delta_mean": shift, "delta_mean_sd": shift / mu_s["sd"],
            "delta_prob_positive": 0.0, "delta_interval_width_rel": w_f / width - 1, "material": mat,
            "material_reasons": "mean moved 0.8 sd (> 0.5)" if mat else "",
            "same_as": "main" if name == "default" else "", "checked_with_mcmc": name != "weak"})
    return out


def _heterogeneity(d: dict[str, np.ndarray], s: np.ndarray, level: float, pct: bool) -> list[dict[str, Any]]:
    w = 1 / s ** 2
    s2 = (len(s) - 1) * w.sum() / (w.sum() ** 2 - (w ** 2).sum())  # Higgins-Thompson typical variance
    tau = d["tau"].ravel()
    nxt = d["mu"].ravel() + np.random.default_rng(3).normal(0, 1, tau.size) * np.sqrt(tau ** 2 + s2)
    spread = _summary(tau, level, prob=False, pct=False)
    if pct:
        p = 100 * np.expm1(tau)
        spread.update(mean_pct=float(p.mean()), median_pct=float(np.median(p)),
                      lower_pct=float(np.quantile(p, (1 - level) / 2)),
                      upper_pct=float(np.quantile(p, 1 - (1 - level) / 2)))
    return [
        {"quantity": "i2", **_summary(tau ** 2 / (tau ** 2 + s2), level, prob=False, pct=False),
         "reference_se": math.sqrt(s2), "description": "I²: share of the variation that is between studies"},
        {"quantity": "typical_spread", **spread, "reference_se": math.sqrt(s2),
         "description": "how far a study's true effect typically lies from the average"},
        {"quantity": "next_observed", **_summary(nxt, level, prob=False, pct=pct), "reference_se": math.sqrt(s2),
         "description": "the estimate of a new comparable study at the typical standard error"},
    ]


def _triangulation(rows: list[dict[str, Any]], future: np.ndarray, pct: bool) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r.get("reason") != "triangulate_only":
            continue
        est = r.get("model_estimate")
        if est is None:
            out.append({**r, "estimate_pct": None, "comparable": False, "percentile": None,
                        "verdict": "not comparable",
                        "why": f"unit {r['source_unit']} cannot be converted to the pool's scale", "justification": ""})
            continue
        q = float(np.mean(future <= est))
        verdict = ("consistent" if 0.05 <= q <= 0.95 else "in the tail (outside the central 90 %)"
                   if 0.005 <= q <= 0.995 else "outside the 99 % band")
        out.append({**r, "estimate_pct": 100 * math.expm1(est) if pct else None, "comparable": True,
                    "percentile": q, "verdict": verdict, "why": "", "justification": ""})
    return out


def _moderators(mu_s: dict[str, Any], level: float, pct: bool) -> list[dict[str, Any]]:
    def row(row_type: str, term: str, moderator: str, level_name: str, m: float, sd: float, n: int,
            exploratory: bool, note: str = "", bf: float | None = None) -> dict[str, Any]:
        z = 1.959963984540054
        r = {"row_type": row_type, "term": term, "moderator": moderator, "level": level_name, "mean": m, "sd": sd,
             "median": m, "lower": m - z * sd, "upper": m + z * sd, "interval_level": level,
             "prob_positive": 0.5 * (1 + math.erf(m / sd / math.sqrt(2))), "bayes_factor_01": bf, "n_rows": n,
             "exploratory": exploratory, "note": note}
        if pct:
            r.update(mean_pct=100 * math.expm1(m), median_pct=100 * math.expm1(m),
                     lower_pct=100 * math.expm1(m - z * sd), upper_pct=100 * math.expm1(m + z * sd))
        return r

    mult = 1.0 if pct else 100.0
    return [
        row("coefficient", "intercept", "", "", 0.01 * mult, 0.02 * mult, 6, False),
        row("coefficient", "spend_index", "spend_index", "", 0.015 * mult, 0.012 * mult, 6, False, bf=1.8),
        row("subgroup_mean", "channel[tv]", "channel", "tv", mu_s["mean"], mu_s["sd"] * 1.3, 3, False),
        row("subgroup_mean", "channel[search]", "channel", "search", mu_s["mean"] * 1.4, mu_s["sd"] * 1.6, 2, True,
            "only 2 rows"),
        row("subgroup_mean", "channel[social]", "channel", "social", mu_s["mean"] * 2, mu_s["sd"] * 2.5, 1, True,
            "only 1 row"),
        {**row("heterogeneity", "tau_explained", "", "", 0.2, 0.1, 6, True, "share of tau explained"),
         "mean_pct": None, "median_pct": None, "lower_pct": None, "upper_pct": None},
    ]


def write_results(run_dir: Path, rng: np.random.Generator, rows: list[dict[str, Any]], pooled: list[dict[str, Any]],
                  fits: list[dict[str, Any]], specs: dict[str, float], priors: dict[str, Any], *, status: str,
                  level: float, mult: float, pct_scale: bool, material_prior: bool, leave_one_out: bool,
                  moderators: bool, n_scenario: int, scale: str) -> dict[str, Any]:
    y = np.array([r["model_estimate"] for r in pooled])
    s = np.array([r["model_se"] for r in pooled])
    ids = [r["study_id"] for r in pooled]
    k = len(pooled)
    d = _draws(rng, y, s, mult)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz as az

        idata = az.from_dict(
            posterior=d, sample_stats={"diverging": np.zeros(d["mu"].shape, dtype=bool),
                                       "energy": rng.normal(0, 1, d["mu"].shape), "lp": rng.normal(-5, 1, d["mu"].shape)},
            observed_data={"y": y}, constant_data={"se": s},
            coords={"study": ids}, dims={"theta": ["study"], "y": ["study"], "se": ["study"]})
        idata.to_netcdf(str(run_dir / "posterior.nc"))
        ess = az.ess(idata, var_names=["mu", "tau"])
        ess_tail = az.ess(idata, var_names=["mu", "tau"], method="tail")
        rhat = az.rhat(idata, var_names=["mu", "tau"])
    mu_s = _summary(d["mu"].ravel(), level, prob=True, pct=pct_scale)
    tau_s = _summary(d["tau"].ravel(), level, prob=False, pct=False)
    fut = _summary(d["future_true_effect"].ravel(), level, prob=True, pct=pct_scale)
    write_csv(run_dir / "pooled_summary.csv", COLUMNS["pooled_summary.csv"],
              [{"parameter": "mu", **mu_s}, {"parameter": "tau", **tau_s}])
    write_csv(run_dir / "future_true_effect_summary.csv", COLUMNS["future_true_effect_summary.csv"],
              [{"parameter": "future_true_effect", **fut}])
    tau_med = tau_s["median"]
    prec = 1 / (s ** 2 + tau_med ** 2)
    total = prec.sum() + 1 / priors["mu_sd"] ** 2
    shrink = (s[None, None, :] ** 2 / (s[None, None, :] ** 2 + d["tau"][..., None] ** 2)).reshape(-1, k).mean(0)
    write_csv(run_dir / "study_effects.csv", COLUMNS["study_effects.csv"], [
        {"study_id": r["study_id"], "study_name": r["study_name"], "decision": r["decision"],
         "observed": r["model_estimate"], "se": r["model_se"], "shrinkage": float(shrink[i]),
         "weight": float(prec[i] / total), **_summary(d["theta"][..., i].ravel(), level, prob=True, pct=pct_scale)}
        for i, r in enumerate(pooled)])
    write_csv(run_dir / "heterogeneity.csv", COLUMNS["heterogeneity.csv"], _heterogeneity(d, s, level, pct_scale))
    write_csv(run_dir / "model_comparison.csv", COLUMNS["model_comparison.csv"], [
        {"hypothesis": "tau = 0", "bayes_factor_01": 3.2, "bayes_factor_10": 1 / 3.2, "log10_bf01": math.log10(3.2),
         "evidence": "substantial evidence for tau = 0", "description": "no spread between studies"},
        {"hypothesis": "mu = 0", "bayes_factor_01": 0.4, "bayes_factor_10": 2.5, "log10_bf01": math.log10(0.4),
         "evidence": "barely worth mentioning evidence against mu = 0", "description": "no average effect"}])
    write_csv(run_dir / "diagnostics.csv", COLUMNS["diagnostics.csv"],
              _diagnostics(fits, rhat, ess, ess_tail, status == "failed"))
    write_csv(run_dir / "prior_diagnostics.csv", COLUMNS["prior_diagnostics.csv"], [
        {"check": "prior_weight", "parameter": "mu", "value": 0.0011, "reference": 0.1, "warning": False,
         "message": "prior precision is 0.11 % of the fixed-effect data precision"},
        {"check": "prior_predictive_tau_q95", "parameter": "tau", "value": 0.98 * mult, "reference": 1.0 * mult,
         "warning": True, "message": "the tau prior puts 5 % of its mass above a 166 % spread of true effects"}])
    ppc_rows = []
    for i, r in enumerate(pooled):
        yrep = d["theta"][..., i].ravel() + rng.normal(0, s[i], d["theta"][..., i].size)
        lo, hi = np.quantile(yrep, [(1 - level) / 2, 1 - (1 - level) / 2])
        tail = float(2 * min(np.mean(yrep <= y[i]), np.mean(yrep >= y[i])))
        ppc_rows.append({"study_id": r["study_id"], "observed": y[i], "se": s[i], "yrep_mean": float(yrep.mean()),
                         "lower": float(lo), "upper": float(hi), "interval_level": level, "tail_probability": tail,
                         "flag": tail < 0.05})
    write_csv(run_dir / "ppc.csv", COLUMNS["ppc.csv"], ppc_rows)
    sens = _sensitivity(mu_s, specs, priors, mult, material_prior)
    write_csv(run_dir / "prior_sensitivity.csv", COLUMNS["prior_sensitivity.csv"], sens)
    if n_scenario:
        us = []
        width = mu_s["upper"] - mu_s["lower"]
        for lvl, se_l in (("low", 0.02), ("medium", 0.05), ("high", 0.10)):
            shift, w_l = (se_l - 0.05) * 0.1 * mult, width * (1 + (se_l - 0.05))
            us.append({"fit": f"uncertainty:{lvl}", "level": lvl, "scenario_se": se_l * mult,
                       "mean": mu_s["mean"] + shift, "sd": mu_s["sd"], "lower": mu_s["mean"] + shift - w_l / 2,
                       "upper": mu_s["mean"] + shift + w_l / 2, "interval_width": w_l,
                       "prob_positive": mu_s["prob_positive"], "diagnostics_pass": True, "delta_mean": shift,
                       "delta_mean_sd": shift / mu_s["sd"], "delta_prob_positive": 0.0,
                       "delta_interval_width_rel": w_l / width - 1, "material": False, "material_reasons": "",
                       "same_as": "main" if lvl == "medium" else "", "checked_with_mcmc": False})
        write_csv(run_dir / "uncertainty_sensitivity.csv", COLUMNS["uncertainty_sensitivity.csv"], us)
    full = _fixed_tau_pool(y, s, tau_med, level, pct_scale)
    if leave_one_out:
        inf = []
        for i, r in enumerate(pooled):
            keep = np.arange(k) != i
            loo = _fixed_tau_pool(y[keep], s[keep], tau_med, level, pct_scale)
            flips = (loo["mu_lower"] > 0) != (full["mu_lower"] > 0) or (loo["prob_positive"] > 0.5) != (
                full["prob_positive"] > 0.5)
            inf.append({"left_out": r["study_id"], "study_name": r["study_name"], "k": k - 1, **loo,
                        "delta_mu_mean": loo["mu_mean"] - full["mu_mean"],
                        "delta_mu_mean_sd": (loo["mu_mean"] - full["mu_mean"]) / full["mu_sd"],
                        "delta_prob_positive": loo["prob_positive"] - full["prob_positive"],
                        "delta_interval_width_rel": loo["mu_sd"] / full["mu_sd"] - 1,
                        "material": abs(loo["mu_mean"] - full["mu_mean"]) > 0.5 * full["mu_sd"],
                        "material_reasons": "", "changes_conclusion": flips})
        write_csv(run_dir / "influence.csv", COLUMNS["influence.csv"], inf)
    order = sorted(range(k), key=lambda i: (pooled[i]["window_end"] == "", pooled[i]["window_end"], pooled[i]["row"]))
    write_csv(run_dir / "cumulative.csv", COLUMNS["cumulative.csv"], [
        {"step": j + 1, "study_id": pooled[i]["study_id"], "study_name": pooled[i]["study_name"],
         "window_end": pooled[i]["window_end"], "k": j + 1,
         **_fixed_tau_pool(y[order[: j + 1]], s[order[: j + 1]], tau_med, level, pct_scale)}
        for j, i in enumerate(order)])
    tri = _triangulation(rows, d["future_true_effect"].ravel(), pct_scale)
    if tri:
        write_csv(run_dir / "triangulation.csv", COLUMNS["triangulation.csv"], tri)
    if moderators:
        write_csv(run_dir / "moderators.csv", COLUMNS["moderators.csv"], _moderators(mu_s, level, pct_scale))
    head = {"scale": scale, "mu_mean": mu_s["mean"], "mu_sd": mu_s["sd"], "mu_median": mu_s["median"],
            "mu_lower": mu_s["lower"], "mu_upper": mu_s["upper"], "prob_positive": mu_s["prob_positive"],
            "tau_mean": tau_s["mean"], "tau_median": tau_s["median"], "tau_lower": tau_s["lower"],
            "tau_upper": tau_s["upper"], "future_mean": fut["mean"], "future_lower": fut["lower"],
            "future_upper": fut["upper"], "interval_level": level}
    if pct_scale:
        head.update(mu_mean_pct=mu_s["mean_pct"], mu_lower_pct=mu_s["lower_pct"], mu_upper_pct=mu_s["upper_pct"],
                    future_lower_pct=fut["lower_pct"], future_upper_pct=fut["upper_pct"])
    return head
