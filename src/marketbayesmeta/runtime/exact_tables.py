"""Rows of the exact-first tables, every number from the exact posterior (runtime/exact.py).

Each builder returns dicts keyed by the columns of the output catalogue (outputs.py, 0.5 columns),
None where a value does not apply. Everything is on the model scale; the ``*_pct`` columns (the
relative lift in per cent, ``100·(exp(x) − 1)``) are filled only on ``log_relative``. The formulas
and their references are in docs/methodology.md.

* ``mean_pct`` is ``E[100·(exp(x) − 1)]``, exact: given tau, x is Normal, so ``E[exp(x) | tau] =
  exp(m + v/2)``, integrated over tau by the engine's quadrature. Where the expectation is infinite
  (a heavy-tailed tau posterior under ``exp(tau^2/2)``, see
  :meth:`~marketbayesmeta.families.TauFamily.exponential_moment_is_finite`) it is ``inf``.
  ``median_pct``/``lower_pct``/``upper_pct`` map the quantiles through the monotone transform.
* Leave-one-out and cumulative rows re-run the exact engine on subsets of the studies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import special

from ..families import family
from ..plan import PriorSet
from ..settings import Materiality
from ..vocabulary import SCALES
from . import sensitivity
from .exact import (
    ExactPosterior,
    Summary,
    exact_posterior,
    log_evidence_at_mu,
    log_marginal_tau,
    shrinkage_factor,
    theta_moments,
)

__all__ = ["changes_conclusion", "cumulative_rows", "evidence_words", "fit_stats", "future_row",
           "heterogeneity_rows", "influence_rows", "lift", "model_comparison_rows", "pooled_rows", "ppc_rows",
           "prior_weight", "study_rows", "typical_se"]

Row = dict[str, Any]
LogG = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
_NO_PCT: Row = {"mean_pct": None, "median_pct": None, "lower_pct": None, "upper_pct": None}
_EXP_TAU2 = (0.5, 2.0)  # exp(tau^2 / 2): the growth of E[exp(x) | tau] when x | tau has variance ~ tau^2
_EXP_TAU = (1.0, 1.0)  # exp(tau)

# Kass & Raftery (1995), section 3.2: Bayes factor ranges and their words.
_EVIDENCE = ((150.0, "very strong evidence"), (20.0, "strong evidence"), (3.0, "positive evidence"))


def lift(x: float) -> float:
    """The relative lift in per cent of a log-relative value: 100·(exp(x) − 1)."""
    return float(100.0 * math.expm1(x))


# -- pooled, future, studies -------------------------------------------------------------------


def pooled_rows(post: ExactPosterior, log_scale: bool) -> list[Row]:
    """pooled_summary.csv: rows ``mu`` and ``tau`` (tau: no prob_positive, no ``*_pct``)."""
    mu = {"parameter": "mu", **_summary(post.mu, post.interval), "prob_positive": post.mu.prob_positive,
          **_pct(post, post.mu, lambda tau, m, v: m + v / 2, log_scale)}
    tau = {"parameter": "tau", **_summary(post.tau, post.interval), "prob_positive": None, **_NO_PCT}
    return [mu, tau]


def future_row(post: ExactPosterior, log_scale: bool) -> Row:
    """future_true_effect_summary.csv: N(mu, tau^2) mixed over the posterior."""
    s = post.future_true_effect
    return {"parameter": "future_true_effect", **_summary(s, post.interval), "prob_positive": s.prob_positive,
            **_pct(post, s, lambda tau, m, v: m + (v + tau**2) / 2, log_scale, _EXP_TAU2)}


def study_rows(post: ExactPosterior, ids: Sequence[str], names: Sequence[str], decisions: Sequence[str],
               y: Sequence[float] | np.ndarray, se: Sequence[float] | np.ndarray, log_scale: bool) -> list[Row]:
    """study_effects.csv: theta_i, ``shrinkage`` = E[s_i^2 / (s_i^2 + tau^2) | y] and ``weight`` =
    the study's share of E[mu | y] (bayesmeta's ``weights``; with :func:`prior_weight` they sum to 1)."""
    _check_data(post, y, se)
    s2 = post.se**2
    shrinkage = post.expectation(lambda tau, m, v: np.log(shrinkage_factor(tau, s2)))
    weight = post.expectation(lambda tau, m, v: np.log(v)[:, None] - np.log(tau[:, None] ** 2 + s2))

    def log_exp_theta(tau: np.ndarray, m: np.ndarray, v: np.ndarray) -> np.ndarray:
        mean, var = theta_moments(tau, m, v, post.y, s2)
        return mean + var / 2

    exp_theta = post.expectation(log_exp_theta) if log_scale else None
    rows = []
    for i, s in enumerate(post.theta):
        pct = _pct_row(s, 100.0 * (exp_theta[i] - 1.0)) if exp_theta is not None else _NO_PCT
        rows.append({"study_id": ids[i], "study_name": names[i], "decision": decisions[i],
                     "observed": float(post.y[i]), "se": float(post.se[i]), **_summary(s, post.interval),
                     "prob_positive": s.prob_positive, "shrinkage": float(shrinkage[i]),
                     "weight": float(weight[i]), **pct})
    return rows


def prior_weight(post: ExactPosterior) -> float:
    """The mu prior's share of E[mu | y] (bayesmeta's ``weights["prior mean"]``):
    E[(1/mu_sd^2) / (1/mu_sd^2 + sum_i 1/(tau^2 + s_i^2)) | y]."""
    log_v0 = 2.0 * math.log(post.priors["mu_sd"])
    return float(post.expectation(lambda tau, m, v: np.log(v) - log_v0))


def ppc_rows(post: ExactPosterior, ids: Sequence[str], y: Sequence[float] | np.ndarray,
             se: Sequence[float] | np.ndarray, interval: float) -> list[Row]:
    """ppc.csv, exact: y_rep_i | tau ~ N(E[theta_i | tau, y], Var[theta_i | tau, y] + s_i^2)."""
    _check_data(post, y, se)
    alpha = (1.0 - interval) / 2.0
    rows = []
    for i, sid in enumerate(ids):
        obs, s = float(post.y[i]), float(post.se[i])
        mean, var = post.theta_components(i)
        var = var + s**2
        rep = post.normal_mixture(mean, var)
        lower, upper = rep.quantiles([alpha, 1.0 - alpha])
        sd = np.sqrt(var)
        below = float(post.tau_weights @ special.ndtr((obs - mean) / sd))  # P(y_rep <= y)
        above = float(post.tau_weights @ special.ndtr((mean - obs) / sd))  # P(y_rep >= y)
        rows.append({"study_id": sid, "observed": obs, "se": s, "yrep_mean": rep.mean,
                     "lower": float(lower), "upper": float(upper), "interval_level": interval,
                     "tail_probability": min(1.0, 2.0 * min(below, above)),
                     "flag": bool(obs < lower or obs > upper)})
    return rows


# -- heterogeneity -----------------------------------------------------------------------------


def typical_se(se: Sequence[float] | np.ndarray) -> float:
    """Higgins & Thompson's (2002) typical within-study SE: s̃^2 = (k − 1) Σw / ((Σw)^2 − Σw^2),
    w = 1/s^2. With one study (0/0) it is that study's SE, which the formula gives for equal SEs."""
    w = 1.0 / np.asarray(se, float) ** 2
    if w.size == 1:
        return float(np.asarray(se, float)[0])
    return float(np.sqrt((w.size - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())))


def heterogeneity_rows(post: ExactPosterior, y: Sequence[float] | np.ndarray, se: Sequence[float] | np.ndarray,
                       scale: str) -> list[Row]:
    """heterogeneity.csv: ``i2``, ``typical_spread`` and ``next_observed``."""
    _check_data(post, y, se)
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    log_scale = scale == "log_relative"
    s_typ = typical_se(post.se)
    s2_typ = s_typ**2

    def i2(tau: np.ndarray) -> np.ndarray:
        return tau**2 / (tau**2 + s2_typ)

    i2_mean = float(post.expectation(lambda tau, m, v: np.log(i2(tau))))
    with np.errstate(divide="ignore"):
        i2_sd = math.sqrt(post.expectation(lambda tau, m, v: 2.0 * np.log(np.abs(i2(tau) - i2_mean))))
    median, lower, upper = i2(np.array([post.tau.median, post.tau.lower, post.tau.upper]))
    i2_row = {"quantity": "i2", "mean": i2_mean, "sd": i2_sd, "median": float(median), "lower": float(lower),
              "upper": float(upper), "interval_level": post.interval, **_NO_PCT, "reference_se": s_typ,
              "description": "share of the variation between the studies' estimates that comes from real "
                             "differences in their true effects rather than from sampling error (I², "
                             "against the typical standard error reference_se)"}
    spread = {"quantity": "typical_spread", **_summary(post.tau, post.interval),
              **_pct(post, post.tau, lambda tau, m, v: tau, log_scale, _EXP_TAU), "reference_se": None,
              "description": "how far true effects typically differ from study to study (tau, the standard "
                             "deviation of true effects), in the pool's unit"
                             + (" and, in the *_pct columns, as a relative lift in per cent" if log_scale
                                else "")}
    infinite_var = family(post.priors["tau_family"]).infinite_posterior_variance(post.k)
    nxt = post.normal_mixture(post.mu_cond_mean, post.mu_cond_var + post.tau_nodes**2 + s2_typ, infinite_var)
    next_row = {"quantity": "next_observed", **_summary(nxt, post.interval),
                **_pct(post, nxt, lambda tau, m, v: m + (v + tau**2 + s2_typ) / 2, log_scale, _EXP_TAU2),
                "reference_se": s_typ,
                "description": "the estimate the next comparable study would report at the typical standard "
                               "error reference_se: the future true effect plus that study's sampling error"}
    return [i2_row, spread, next_row]


# -- Bayes factors -----------------------------------------------------------------------------


def model_comparison_rows(post: ExactPosterior, priors: PriorSet) -> list[Row]:
    """model_comparison.csv: BF01 for ``tau = 0`` and ``mu = 0`` against the model's priors
    (bayesmeta's ``bayesfactor["actual", ]``: p(y | H0) / p(y))."""
    _check_priors(post, priors)
    p = post.priors
    log_tau0 = float(log_marginal_tau(np.array([0.0]), post.y, post.se, p["mu_mean"], p["mu_sd"])[0][0])
    # p(y | mu = 0) directly, tau integrated on its own grid. (Savage–Dickey, the posterior density of
    # mu at 0, would integrate over tau where its posterior weights underflow: a far-off mu = 0 is
    # best explained by a large tau.)
    log_mu0 = log_evidence_at_mu(0.0, post.y, post.se, tau_scale=p["tau_scale"], tau_family=p["tau_family"])
    return [
        _bf_row("tau = 0", log_tau0 - post.log_evidence,
                "BF01 = p(y | tau = 0) / p(y): how much better the estimates are predicted with no "
                "study-to-study spread than with the tau prior; above 1 favours tau = 0"),
        _bf_row("mu = 0", log_mu0 - post.log_evidence,
                "BF01 = p(y | mu = 0) / p(y): how much better the estimates are predicted with no average "
                "effect than with the mu prior; above 1 favours mu = 0 (a wider mu prior raises it)"),
    ]


def evidence_words(log10_bf01: float, hypothesis: str) -> str:
    """Kass & Raftery's (1995) reading of a Bayes factor (given as log10 BF01, which neither
    underflows nor overflows) for ``hypothesis`` against the model."""
    toward = "for" if log10_bf01 >= 0.0 else "against"
    for bound, words in _EVIDENCE:
        if abs(log10_bf01) >= math.log10(bound):
            return f"{words} {toward} {hypothesis}"
    return f"evidence {toward} {hypothesis} not worth more than a bare mention"


def _bf_row(hypothesis: str, log_bf01: float, description: str) -> Row:
    """A model_comparison.csv row; beyond ~1e±308 the factors are 0 / inf and log10_bf01 holds the value."""
    with np.errstate(over="ignore", under="ignore"):
        bf01, bf10 = float(np.exp(log_bf01)), float(np.exp(-log_bf01))
    log10_bf01 = log_bf01 / math.log(10.0)
    return {"hypothesis": hypothesis, "bayes_factor_01": bf01, "bayes_factor_10": bf10, "log10_bf01": log10_bf01,
            "evidence": evidence_words(log10_bf01, hypothesis), "description": description}


# -- sensitivity, leave-one-out, cumulative ----------------------------------------------------


def fit_stats(post: ExactPosterior, diagnostics_pass: bool | None = None) -> Row:
    """mu's statistics in the form :func:`~marketbayesmeta.runtime.sensitivity.compare` consumes
    (``diagnostics_pass`` None: the fit was not sampled)."""
    mu = post.mu
    return sensitivity.fit_stats({"mean": mu.mean, "sd": mu.sd, "lower": mu.lower, "upper": mu.upper,
                                  "prob_positive": mu.prob_positive}, diagnostics_pass)


def influence_rows(y: Sequence[float] | np.ndarray, se: Sequence[float] | np.ndarray, ids: Sequence[str],
                   names: Sequence[str], priors: PriorSet, interval: float, rule: Materiality,
                   log_scale: bool) -> list[Row]:
    """influence.csv: mu with each study left out (exact; none with fewer than 3 studies), its
    shifts against the full pool judged by the materiality rule of the sensitivity tables, and
    whether leaving the study out changes the conclusion."""
    y, se = np.asarray(y, float), np.asarray(se, float)
    if y.size < 3:
        return []
    full = _fit(y, se, priors, interval)
    ref = fit_stats(full)
    rows = []
    for i in range(y.size):
        keep = np.arange(y.size) != i
        post = _fit(y[keep], se[keep], priors, interval)
        c = sensitivity.compare(fit_stats(post), ref, rule)
        mu = _mu_columns(post, log_scale)
        pct = {key: mu.pop(key) for key in ("mu_mean_pct", "mu_lower_pct", "mu_upper_pct")}
        rows.append({"left_out": ids[i], "study_name": names[i], **mu,
                     "delta_mu_mean": c["delta_mean"], "delta_mu_mean_sd": c["delta_mean_sd"],
                     "delta_prob_positive": c["delta_prob_positive"],
                     "delta_interval_width_rel": c["delta_interval_width_rel"], **pct, "material": c["material"],
                     "material_reasons": c["material_reasons"],
                     "changes_conclusion": changes_conclusion(full.mu, post.mu)})
    return rows


def changes_conclusion(ref: Summary, other: Summary) -> bool:
    """Whether ``other`` flips whether mu's interval excludes 0, or moves P(mu > 0) across 0.5."""
    def excludes_zero(s: Summary) -> bool:
        return s.lower > 0.0 or s.upper < 0.0

    crosses = (ref.prob_positive - 0.5) * (other.prob_positive - 0.5) < 0.0
    return bool(excludes_zero(ref) != excludes_zero(other) or crosses)


def cumulative_rows(y: Sequence[float] | np.ndarray, se: Sequence[float] | np.ndarray, ids: Sequence[str],
                    names: Sequence[str], window_ends: Sequence[str | None], rows: Sequence[int],
                    priors: PriorSet, interval: float, log_scale: bool) -> list[Row]:
    """cumulative.csv: mu after each study, studies in ``window_end`` order (ISO dates; blank last),
    ties by tracker row ``rows``."""
    y, se = np.asarray(y, float), np.asarray(se, float)
    order = sorted(range(y.size), key=lambda i: (not window_ends[i], window_ends[i] or "", rows[i]))
    out = []
    for step, j in enumerate(order, start=1):
        idx = np.array(order[:step])
        post = _fit(y[idx], se[idx], priors, interval)
        out.append({"step": step, "study_id": ids[j], "study_name": names[j], "window_end": window_ends[j] or "",
                    **_mu_columns(post, log_scale)})
    return out


# -- helpers -----------------------------------------------------------------------------------


def _fit(y: np.ndarray, se: np.ndarray, priors: PriorSet, interval: float) -> ExactPosterior:
    return exact_posterior(y, se, mu_mean=priors.mu_mean, mu_sd=priors.mu_sd, tau_scale=priors.tau_scale,
                           tau_family=priors.tau_family, interval=interval)


def _mu_columns(post: ExactPosterior, log_scale: bool) -> Row:
    """k, mu's summary, tau's median and mu's %-lift columns of influence.csv and cumulative.csv."""
    mu = post.mu
    pct = _pct(post, mu, lambda tau, m, v: m + v / 2, log_scale)
    return {"k": post.k, "mu_mean": mu.mean, "mu_sd": mu.sd, "mu_lower": mu.lower, "mu_upper": mu.upper,
            "prob_positive": mu.prob_positive, "tau_median": post.tau.median, "mu_mean_pct": pct["mean_pct"],
            "mu_lower_pct": pct["lower_pct"], "mu_upper_pct": pct["upper_pct"]}


def _summary(s: Summary, interval: float) -> Row:
    return {"mean": s.mean, "sd": s.sd, "median": s.median, "lower": s.lower, "upper": s.upper,
            "interval_level": interval}


def _pct_row(s: Summary, mean_pct: float) -> Row:
    return {"mean_pct": float(mean_pct), "median_pct": lift(s.median), "lower_pct": lift(s.lower),
            "upper_pct": lift(s.upper)}


def _pct(post: ExactPosterior, s: Summary, log_mean_exp: LogG, log_scale: bool,
         growth: tuple[float, float] | None = None) -> Row:
    """The ``*_pct`` columns of a quantity x whose ``log E[exp(x) | tau]`` is ``log_mean_exp``;
    ``growth`` = (c, p) when that grows like c·tau^p (then E[exp(x)] may be infinite)."""
    if not log_scale:
        return _NO_PCT
    if growth is not None and not post.exponential_moment_is_finite(*growth):
        return _pct_row(s, math.inf)
    return _pct_row(s, 100.0 * (float(post.expectation(log_mean_exp)) - 1.0))


def _check_data(post: ExactPosterior, y: Sequence[float] | np.ndarray, se: Sequence[float] | np.ndarray) -> None:
    if not (np.array_equal(post.y, np.asarray(y, float)) and np.array_equal(post.se, np.asarray(se, float))):
        raise ValueError("y and se are not the data this exact posterior was computed from")


def _check_priors(post: ExactPosterior, priors: PriorSet) -> None:
    given = {key: getattr(priors, key) for key in post.priors}
    if given != post.priors:
        raise ValueError(f"priors {given} are not the priors of this exact posterior {post.priors}")
