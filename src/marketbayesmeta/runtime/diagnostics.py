"""Sampler diagnostics and the exact cross-check of every fit (SPEC §7)."""

from __future__ import annotations

from typing import Any

import arviz as az
import numpy as np

from ..settings import Diagnostics as Thresholds
from .exact import ExactPosterior

EXACT_QUANTILES = (0.025, 0.975)


def _row(fit: str, parameter: str, check: str, value: float, threshold: float, ok: bool) -> dict[str, Any]:
    return {"fit": fit, "parameter": parameter, "check": check, "value": float(value),
            "threshold": float(threshold), "pass": bool(ok)}


def sampler_checks(fit: str, idata: Any, th: Thresholds) -> list[dict[str, Any]]:
    """r-hat, ESS bulk/tail for mu and tau; divergences and min BFMI for the sampler."""
    rows = []
    post = idata.posterior[["mu", "tau"]]
    rhat = az.rhat(post)
    ess_bulk = az.ess(post, method="bulk")
    ess_tail = az.ess(post, method="tail")
    for p in ("mu", "tau"):
        r = float(rhat[p])
        rows.append(_row(fit, p, "r_hat", r, th.max_rhat, np.isfinite(r) and r <= th.max_rhat))
        b, t = float(ess_bulk[p]), float(ess_tail[p])
        rows.append(_row(fit, p, "ess_bulk", b, th.min_ess_bulk, np.isfinite(b) and b >= th.min_ess_bulk))
        rows.append(_row(fit, p, "ess_tail", t, th.min_ess_tail, np.isfinite(t) and t >= th.min_ess_tail))
    div = int(idata.sample_stats["diverging"].sum())
    rows.append(_row(fit, "(sampler)", "divergences", div, th.max_divergences, div <= th.max_divergences))
    try:
        bfmi = float(np.min(az.bfmi(idata)))
    except Exception:  # noqa: BLE001 - bfmi needs energy; absent for some samplers
        bfmi = float("nan")
    rows.append(_row(fit, "(sampler)", "bfmi", bfmi, th.min_bfmi, not np.isfinite(bfmi) or bfmi >= th.min_bfmi))
    return rows


def exact_z_scores(idata: Any, exact: ExactPosterior) -> dict[str, dict[str, float]]:
    """(MCMC − exact) / MCSE for the mean and the 2.5 % and 97.5 % quantiles of mu and tau."""
    out: dict[str, dict[str, float]] = {}
    for p in ("mu", "tau"):
        draws = idata.posterior[p].values
        flat = draws.reshape(-1)
        ex = exact.summary(p)
        exq = exact.quantiles(p, EXACT_QUANTILES)
        z = {}
        se_mean = float(np.asarray(az.mcse(draws, method="mean")).reshape(-1)[0])
        z["exact_z_mean"] = (float(flat.mean()) - ex.mean) / se_mean if se_mean > 0 else float("inf")
        for q, name, eq in zip(EXACT_QUANTILES, ("exact_z_q025", "exact_z_q975"), exq, strict=True):
            se_q = float(np.asarray(az.mcse(draws, method="quantile", prob=q)).reshape(-1)[0])
            z[name] = (float(np.quantile(flat, q)) - float(eq)) / se_q if se_q > 0 else float("inf")
        out[p] = z
    return out


def exact_checks(fit: str, idata: Any, exact: ExactPosterior, th: Thresholds) -> list[dict[str, Any]]:
    rows = []
    for p, zs in exact_z_scores(idata, exact).items():
        for name, z in zs.items():
            rows.append(_row(fit, p, name, z, th.max_exact_z, bool(np.isfinite(z) and abs(z) <= th.max_exact_z)))
    return rows


def fit_passes(rows: list[dict[str, Any]]) -> bool:
    return all(r["pass"] for r in rows)
