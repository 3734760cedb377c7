"""Prior diagnostics: how much the mu prior weighs against the data, and whether the tau prior can
produce the spread the studies show. Warnings are prompts to look at sensitivity, not verdicts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..families import family
from ..plan import PriorSet

PRIOR_WEIGHT_WARNING = 0.10  # prior precision share above which the mu prior is informative
N_PRIOR_DRAWS = 20_000


def prior_diagnostic_rows(priors: PriorSet, y: np.ndarray, se: np.ndarray, seed: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    prior_prec = 1.0 / priors.mu_sd**2
    data_prec = float(np.sum(1.0 / np.asarray(se, float) ** 2))
    weight = prior_prec / (prior_prec + data_prec)
    rows.append({"check": "mu_prior_precision", "parameter": "mu", "value": prior_prec, "reference": data_prec,
                 "warning": False, "message": "prior precision 1/mu_sd² against the fixed-effect data precision Σ1/s_i²"})
    warn = weight > PRIOR_WEIGHT_WARNING
    rows.append({"check": "mu_prior_weight", "parameter": "mu", "value": weight, "reference": PRIOR_WEIGHT_WARNING,
                 "warning": warn,
                 "message": (f"the mu prior carries {100 * weight:.1f} % of the fixed-effect precision: it is "
                             "informative here; check prior sensitivity" if warn else
                             f"the mu prior carries {100 * weight:.2g} % of the fixed-effect precision")})
    if len(y) < 2:
        rows.append({"check": "tau_prior_predictive", "parameter": "tau", "value": None, "reference": None,
                     "warning": True, "message": "fewer than two studies: tau is informed by its prior alone"})
        return rows
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    spread = float(np.std(y, ddof=1))
    tau = family(priors.tau_family).draw(rng, priors.tau_scale, N_PRIOR_DRAWS)
    q50, q99 = np.quantile(tau, [0.5, 0.99])
    low = spread > q99
    rows.append({"check": "tau_prior_covers_spread", "parameter": "tau", "value": float(q99), "reference": spread,
                 "warning": bool(low),
                 "message": ("the observed between-study SD exceeds the tau prior's 99th percentile: the prior "
                             "cannot accommodate the observed heterogeneity" if low else
                             "the tau prior's 99th percentile is at least the observed between-study SD")})
    wide = q50 > 10 * max(spread, float(np.max(se)))
    rows.append({"check": "tau_prior_scale", "parameter": "tau", "value": float(q50),
                 "reference": max(spread, float(np.max(se))), "warning": bool(wide),
                 "message": ("the tau prior's median is more than 10× both the observed spread and the largest "
                             "SE: at this K the prior may dominate tau (and widen mu)" if wide else
                             "the tau prior's median is within 10× of the observed spread or SEs")})
    mu = priors.mu_mean + priors.mu_sd * rng.standard_normal(N_PRIOR_DRAWS)
    theta = mu[:, None] + tau[:, None] * rng.standard_normal((N_PRIOR_DRAWS, len(y)))
    y_rep = theta + np.asarray(se, float) * rng.standard_normal(theta.shape)
    p_spread = float((np.std(y_rep, axis=1, ddof=1) >= spread).mean())
    odd = p_spread < 0.01 or p_spread > 0.99
    rows.append({"check": "prior_predictive_spread", "parameter": "tau", "value": p_spread, "reference": spread,
                 "warning": bool(odd),
                 "message": (f"P(prior-predictive SD of the estimates >= observed SD) = {p_spread:.3f}: the "
                             "priors make the observed spread implausible" if odd else
                             f"P(prior-predictive SD of the estimates >= observed SD) = {p_spread:.3f}")})
    return rows
