"""Sampler diagnostics and the exact cross-check of every fit (SPEC §7)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..settings import Diagnostics as Thresholds
from .libraries import arviz_without_numba

EXACT_QUANTILES = (0.025, 0.975)


def _row(fit: str, parameter: str, check: str, value: float, threshold: float, ok: bool) -> dict[str, Any]:
    return {"fit": fit, "parameter": parameter, "check": check, "value": float(value),
            "threshold": float(threshold), "pass": bool(ok)}


def scalar_draws(idata: Any) -> dict[str, np.ndarray]:
    """Every checked parameter's draws, shaped (chain, draw): mu (or beta[term] of a meta-regression)
    and tau."""
    post = idata.posterior
    out: dict[str, np.ndarray] = {}
    if "beta" in post:
        beta = post["beta"]
        terms = [str(t) for t in beta.coords[beta.dims[-1]].values]
        for j, term in enumerate(terms):
            out[f"beta[{term}]"] = np.asarray(beta.values[..., j])
    else:
        out["mu"] = np.asarray(post["mu"].values)
    out["tau"] = np.asarray(post["tau"].values)
    return out


def sampler_checks(fit: str, idata: Any, th: Thresholds) -> list[dict[str, Any]]:
    """r-hat, ESS bulk/tail per parameter; divergences and min BFMI for the sampler."""
    with arviz_without_numba() as az:
        rows = _draws_checks(fit, idata, th, az)
        try:
            bfmi = float(np.min(az.bfmi(idata)))
        except Exception:  # noqa: BLE001 - bfmi needs energy; absent for some samplers
            bfmi = float("nan")
    div = int(idata.sample_stats["diverging"].sum())
    rows.append(_row(fit, "(sampler)", "divergences", div, th.max_divergences, div <= th.max_divergences))
    rows.append(_row(fit, "(sampler)", "bfmi", bfmi, th.min_bfmi, not np.isfinite(bfmi) or bfmi >= th.min_bfmi))
    return rows


def _draws_checks(fit: str, idata: Any, th: Thresholds, az: Any) -> list[dict[str, Any]]:
    rows = []
    for p, draws in scalar_draws(idata).items():
        r = float(az.rhat(draws))
        rows.append(_row(fit, p, "r_hat", r, th.max_rhat, np.isfinite(r) and r <= th.max_rhat))
        b, t = float(az.ess(draws, method="bulk")), float(az.ess(draws, method="tail"))
        rows.append(_row(fit, p, "ess_bulk", b, th.min_ess_bulk, np.isfinite(b) and b >= th.min_ess_bulk))
        rows.append(_row(fit, p, "ess_tail", t, th.min_ess_tail, np.isfinite(t) and t >= th.min_ess_tail))
    return rows


def exact_z_scores(idata: Any, exact: Any) -> dict[str, dict[str, tuple[float, float, float, float]]]:
    """Per parameter and check: (z, MCMC value, exact value, MCSE) for the mean and the 2.5 % and
    97.5 % quantiles; z = (MCMC − exact) / MCSE. ``exact`` is an :class:`ExactPosterior` or a
    mapping of parameter name -> exact Summary (a meta-regression's coefficients and tau)."""
    summaries = exact if isinstance(exact, dict) else {"mu": exact.mu, "tau": exact.tau}
    out: dict[str, dict[str, tuple[float, float, float, float]]] = {}
    with arviz_without_numba() as az:
        for p, draws in scalar_draws(idata).items():
            out[p] = _z_scores(draws, summaries[p], az)
    return out


def _z_scores(draws: np.ndarray, ex: Any, az: Any) -> dict[str, tuple[float, float, float, float]]:
    flat = draws.reshape(-1)
    checks: dict[str, tuple[float, float, float]] = {}
    mean_se = float(np.asarray(az.mcse(draws, method="mean")).reshape(-1)[0])
    checks["exact_z_mean"] = (float(flat.mean()), float(ex.mean), mean_se)
    for q, name, eq in zip(EXACT_QUANTILES, ("exact_z_q025", "exact_z_q975"), ex.quantiles(EXACT_QUANTILES),
                           strict=True):
        se_q = float(np.asarray(az.mcse(draws, method="quantile", prob=q)).reshape(-1)[0])
        checks[name] = (float(np.quantile(flat, q)), float(eq), se_q)
    return {name: ((mc - e) / se if se > 0 else float("inf"), mc, e, se) for name, (mc, e, se) in checks.items()}


def exact_checks(fit: str, idata: Any, exact: Any, th: Thresholds) -> list[dict[str, Any]]:
    rows = []
    for p, zs in exact_z_scores(idata, exact).items():
        for name, (z, mcmc, ex, mcse) in zs.items():
            row = _row(fit, p, name, z, th.max_exact_z, bool(np.isfinite(z) and abs(z) <= th.max_exact_z))
            rows.append({**row, "mcmc": mcmc, "exact": ex, "mcse": mcse})
    return rows


def fit_passes(rows: list[dict[str, Any]]) -> bool:
    return all(r["pass"] for r in rows)
