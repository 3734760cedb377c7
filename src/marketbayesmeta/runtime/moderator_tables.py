"""moderators.csv: the pool's meta-regression, from the exact engine (:mod:`.exact_regression`).

Rows, in order:

* ``coefficient``: every term of the design (the intercept, each numeric slope per unit of its
  moderator, each level's difference from the reference level), with P(> 0) and the Savage–Dickey
  Bayes factor against 0 (none for the intercept);
* ``subgroup_mean``: each level of a categorical moderator, the mean effect of a study at that level
  and average in every other moderator;
* ``heterogeneity``: tau without and with the moderators, and the share of tau² the moderators
  explain (1 − E[tau² | moderators] / E[tau² | none]);
* ``prior_sensitivity``: each coefficient (but the intercept) under every other prior spec of the
  grid, its sd scaled like mu's, with the materiality rule's verdict in ``note``.

On log_relative the ``*_pct`` columns give the multiplicative effect in per cent, 100·(exp(x) − 1):
a lift for the intercept and the subgroup means, a relative difference for a level, per unit of the
moderator for a slope.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..plan import Pool, PriorSet
from .exact import ExactPosterior, Summary
from .exact_regression import RegressionPosterior, exact_regression, heterogeneity_explained
from .sensitivity import compare

_FLOAT_MAX_LOG = 709.0


def _lift(x: float) -> float:
    return 100.0 * math.expm1(x) if x < _FLOAT_MAX_LOG else math.inf


def _summary(s: Summary, interval: float) -> dict[str, Any]:
    return {"mean": s.mean, "sd": s.sd, "median": s.median, "lower": s.lower, "upper": s.upper,
            "interval_level": interval, "prob_positive": s.prob_positive}


def _pct(post: RegressionPosterior, c: np.ndarray, s: Summary) -> dict[str, Any]:
    """The %-columns of ``c'beta``: the exact mean of 100·(exp(x) − 1) (Normal mixture: Σ w exp(m + v/2))."""
    w, mean, var = post.mixture(c)
    with np.errstate(over="ignore"):
        mean_exp = float(w @ np.exp(mean + var / 2))
    return {"mean_pct": 100.0 * (mean_exp - 1.0), "median_pct": _lift(s.median), "lower_pct": _lift(s.lower),
            "upper_pct": _lift(s.upper)}


def fit_regression(pool: Pool, y: np.ndarray, se: np.ndarray, priors: PriorSet) -> RegressionPosterior:
    """The exact meta-regression under ``priors`` (mu's prior for the intercept; the coefficients'
    sds scaled by priors.mu_sd / the main mu_sd, so a prior spec widens or narrows them alike)."""
    m = pool.moderators
    assert m is not None
    main = pool.fit("main").priors
    factor = priors.mu_sd / main.mu_sd
    means = [priors.mu_mean if t.kind == "intercept" else mean for t, mean in zip(m.design.terms, m.beta_mean,
                                                                                  strict=True)]
    sds = [priors.mu_sd if t.kind == "intercept" else sd * factor for t, sd in zip(m.design.terms, m.beta_sd,
                                                                                 strict=True)]
    return exact_regression(y, se, m.design.array(), beta_mean=means, beta_sd=sds, tau_scale=priors.tau_scale,
                            tau_family=priors.tau_family, interval=pool.reporting.interval,
                            terms=m.design.term_names)


def moderator_rows(pool: Pool, y: np.ndarray, se: np.ndarray, without: ExactPosterior) -> tuple[list[dict[str, Any]],
                                                                                                 list[str]]:
    """(moderators.csv rows, material prior-sensitivity findings)."""
    m = pool.moderators
    assert m is not None
    design, iv = m.design, pool.reporting.interval
    log = pool.scale == "log_relative"
    post = fit_regression(pool, y, se, pool.fit("main").priors)
    p = len(design.terms)
    k = len(design.rows)
    rows: list[dict[str, Any]] = []
    for j, term in enumerate(design.terms):
        c = np.eye(p)[j]
        s = post.beta[j]
        if term.kind == "intercept":
            note = ("the effect of a study at the reference level(s) and at the pooled average of numeric moderators"
                    if len(design.terms) > 1 else "the average effect")
            n_rows = k
        elif term.kind == "numeric":
            note = (f"change in the effect per 1 unit of {term.moderator} (centred at "
                    f"{design.centring[term.moderator]:.6g}; prior sd {m.beta_sd[j]:.4g} per unit)")
            n_rows = k
        else:
            ref = design.reference_levels.get(term.moderator or "", "")
            note = f"{term.level} versus {ref} (the reference level)"
            n_rows = design.level_counts.get(term.moderator or "", {}).get(term.level or "", 0)
        rows.append({"row_type": "coefficient", "term": term.name, "moderator": term.moderator, "level": term.level,
                     **_summary(s, iv),
                     "bayes_factor_01": None if term.kind == "intercept" else post.bayes_factor_01(j),
                     **(_pct(post, c, s) if log else {}), "n_rows": n_rows, "exploratory": term.exploratory,
                     "note": note})
    for g in design.subgroups:
        c = np.asarray(g.contrast, dtype=float)
        s = post.combination(c)
        rows.append({"row_type": "subgroup_mean", "term": f"{g.moderator}={g.level}", "moderator": g.moderator,
                     "level": g.level, **_summary(s, iv), **(_pct(post, c, s) if log else {}),
                     "n_rows": g.n_rows, "exploratory": g.exploratory,
                     "note": "reference level" if g.reference else ""})
    explained = heterogeneity_explained(post.tau, without.tau)
    for term, s, note in (("tau_without_moderators", without.tau, "tau of the pool without moderators"),
                          ("tau_with_moderators", post.tau, "tau left once the moderators are in the model")):
        rows.append({"row_type": "heterogeneity", "term": term, **_summary(s, iv), "prob_positive": None,
                     "n_rows": k, "exploratory": design.exploratory, "note": note})
    rows.append({"row_type": "heterogeneity", "term": "heterogeneity_explained",
                 "mean": None if math.isnan(explained) else explained, "n_rows": k, "exploratory": design.exploratory,
                 "note": "share of tau² the moderators explain: 1 − E[tau² | moderators] / E[tau² | none]"
                         + (" (not defined: tau's posterior variance is infinite)" if math.isnan(explained) else "")})
    material = []
    rule = pool.sensitivity.materiality
    for fit in pool.fits:
        if fit.kind != "prior" or fit.same_as is not None:
            continue
        other = fit_regression(pool, y, se, fit.priors)
        for j, term in enumerate(design.terms):
            if term.kind == "intercept":
                continue
            ref, alt = post.beta[j], other.beta[j]
            verdict = compare(_stats(alt), _stats(ref), rule)
            rows.append({"row_type": "prior_sensitivity", "term": term.name, "moderator": term.moderator,
                         "level": term.level, **_summary(alt, iv), "n_rows": None, "exploratory": term.exploratory,
                         "note": f"prior spec {fit.label}" + (f": material ({verdict['material_reasons']})"
                                                               if verdict["material"] else "")})
            if verdict["material"]:
                material.append(f"{term.name} under {fit.label}: {verdict['material_reasons']}")
    return rows, material


def _stats(s: Summary) -> dict[str, Any]:
    return {"mean": s.mean, "sd": s.sd, "lower": s.lower, "upper": s.upper, "interval_width": s.upper - s.lower,
            "prob_positive": s.prob_positive, "diagnostics_pass": None}
