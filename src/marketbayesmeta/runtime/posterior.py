"""Derived quantities and posterior summaries (numpy; seeded, deterministic)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Draws:
    """Posterior draws of one fit, shaped (chain, draw[, study])."""

    mu: np.ndarray
    tau: np.ndarray
    theta: np.ndarray
    future: np.ndarray
    y_rep: np.ndarray
    shrinkage: np.ndarray  # s²/(s² + tau²) per draw and study


def derive(mu: np.ndarray, tau: np.ndarray, y: np.ndarray, se: np.ndarray, seed: int) -> Draws:
    """theta_i from their Normal conditional given (y_i, mu, tau, s_i); future ~ N(mu, tau²);
    in-sample replicates y_rep_i ~ N(theta_i, s_i²). All from one seeded generator."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    mu3, tau3 = mu[..., None], tau[..., None]
    s2 = np.asarray(se, float) ** 2
    t2 = tau3**2
    shrink = s2 / (s2 + t2)  # weight on mu; tau → 0 gives 1 (theta = mu)
    cond_mean = shrink * mu3 + (1.0 - shrink) * np.asarray(y, float)
    cond_sd = np.sqrt(s2 * t2 / (s2 + t2))
    theta = cond_mean + cond_sd * rng.standard_normal(cond_mean.shape)
    future = mu + tau * rng.standard_normal(mu.shape)
    y_rep = theta + np.sqrt(s2) * rng.standard_normal(theta.shape)
    return Draws(mu=mu, tau=tau, theta=theta, future=future, y_rep=y_rep, shrinkage=shrink)


def summarize(x: np.ndarray, interval: float) -> dict[str, float]:
    """Mean, sd, median, equal-tailed interval and P(> 0) over all chains and draws."""
    flat = np.asarray(x, float).reshape(-1)
    alpha = (1.0 - interval) / 2.0
    lo, med, hi = np.quantile(flat, [alpha, 0.5, 1.0 - alpha])
    return {"mean": float(flat.mean()), "sd": float(flat.std(ddof=1)), "median": float(med),
            "lower": float(lo), "upper": float(hi), "interval_level": float(interval),
            "prob_positive": float((flat > 0).mean())}


def pct(summary: dict[str, float], draws: np.ndarray) -> dict[str, float]:
    """Relative-lift (%) equivalents of a log-relative summary: 100·(exp(x) − 1).

    Quantiles map through the monotone transform; the mean is the mean of the transformed draws."""
    lift = 100.0 * np.expm1(np.asarray(draws, float))
    return {"mean_pct": float(lift.mean()), "median_pct": float(100.0 * np.expm1(summary["median"])),
            "lower_pct": float(100.0 * np.expm1(summary["lower"])),
            "upper_pct": float(100.0 * np.expm1(summary["upper"]))}
