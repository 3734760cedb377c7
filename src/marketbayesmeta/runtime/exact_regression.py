"""Exact posterior of the normal-normal meta-regression (issue 20; docs/methodology.md).

Model: ``y_i ~ N(x_i'beta + u_i, s_i^2)``, ``u_i ~ N(0, tau^2)``, ``beta_j ~ N(m_j, s_j^2)``
independent, ``tau ~ family(tau_scale)`` (families.py).

Given ``tau``, ``beta`` is conjugate Gaussian: with ``W = diag(1 / (tau^2 + s_i^2))`` and
``S0 = diag(s_j^2)``, the posterior precision is ``P = S0^-1 + X'WX`` and the mean
``b = P^-1 (S0^-1 m + X'Wy)``. The marginal likelihood ``p(y | tau)`` (beta integrated out) is
``N(y | Xm, D + X S0 X')``, ``D = diag(tau^2 + s_i^2)``; it is evaluated through the conjugate
update (determinant lemma ``|D + X S0 X'| = |D| |S0| |P|`` and the completed square), which
avoids forming the K x K covariance. So the posterior reduces to a 1-D integral over ``tau``,
done exactly as for the intercept-only model (runtime/exact.py, whose grid, trapezoid weights,
mixture moments/quantiles and tau quantiles are reused unchanged): every linear combination
``c'beta`` is a finite mixture of Normals over the tau nodes.

With ``X`` a column of ones this is the intercept-only model and the numbers agree with
:func:`~marketbayesmeta.runtime.exact.exact_posterior` to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..families import family
from .exact import (
    _CHUNK,
    _GRID_SIZE,
    Summary,
    _adaptive_grid,
    _mixture_moments,
    _mixture_quantiles_1d,
    _summary,
    quadrature_nodes,
)

__all__ = [
    "RegressionPosterior",
    "exact_regression",
    "heterogeneity_explained",
    "log_marginal_tau_regression",
]


@dataclass(frozen=True)
class RegressionPosterior:
    """Exact (quadrature) posterior of a meta-regression.

    ``beta[j]`` summarises coefficient ``j`` (column ``j`` of ``X``, named ``terms[j]``);
    :meth:`combination` summarises any linear combination ``c'beta`` (e.g. a subgroup mean on
    the model scale). The mixture internals: ``tau_nodes``/``tau_weights`` (the quadrature
    rule), ``beta_means`` (G, p) and ``beta_covs`` (G, p, p), the Gaussian ``beta | tau, y`` at
    each node. ``log_evidence`` is ``log p(y)`` under the priors (normalised densities).
    """

    beta: list[Summary]
    tau: Summary
    terms: tuple[str, ...]
    interval: float
    log_evidence: float
    tau_squared_mean: float  # E[tau^2 | y]; inf when tau's posterior variance is infinite
    tau_nodes: np.ndarray = field(repr=False)
    tau_weights: np.ndarray = field(repr=False)
    beta_means: np.ndarray = field(repr=False)
    beta_covs: np.ndarray = field(repr=False)
    prior_mean: np.ndarray = field(repr=False)
    prior_sd: np.ndarray = field(repr=False)
    _tau_infinite_variance: bool = field(default=False, repr=False)

    def index(self, term: int | str) -> int:
        """Column index of ``term`` (an index or a name in ``terms``)."""
        if isinstance(term, str):
            if term not in self.terms:
                raise ValueError(f"unknown term {term!r}; terms: {', '.join(self.terms)}")
            return self.terms.index(term)
        j = int(term)
        if not 0 <= j < len(self.terms):
            raise ValueError(f"term index {term} out of range 0..{len(self.terms) - 1}")
        return j

    def coefficient(self, term: int | str) -> Summary:
        """The summary of one coefficient, by index or name."""
        return self.beta[self.index(term)]

    def mixture(self, c: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``c'beta`` as a Normal mixture: (weights, means, variances) over the tau nodes."""
        c = self._contrast(c)
        return self.tau_weights, self.beta_means @ c, np.einsum("gij,i,j->g", self.beta_covs, c, c)

    def combination(self, c: Sequence[float] | np.ndarray) -> Summary:
        """Posterior summary of the linear combination ``c'beta``."""
        w, mean, var = self.mixture(c)
        return _mixture_summary(w, mean, var, self.interval)

    def future_true_effect(self, c: Sequence[float] | np.ndarray) -> Summary:
        """The true effect of a new study with covariates ``c``: ``c'beta + u``, u ~ N(0, tau^2)."""
        w, mean, var = self.mixture(c)
        return _mixture_summary(w, mean, var + self.tau_nodes**2, self.interval,
                                self._tau_infinite_variance)

    def density(self, c: Sequence[float] | np.ndarray, x: float | np.ndarray) -> np.ndarray:
        """Posterior density of ``c'beta`` at ``x``."""
        w, mean, var = self.mixture(c)
        x = np.atleast_1d(np.asarray(x, dtype=float))
        z = (x[:, None] - mean) ** 2 / var
        return (np.exp(-0.5 * z) / np.sqrt(2 * np.pi * var)) @ w

    def bayes_factor_01(self, term: int | str) -> float:
        """Savage-Dickey Bayes factor for ``beta_j = 0`` against the model's priors: the marginal
        posterior density of ``beta_j`` at 0 over its prior density at 0 (valid because the
        prior of ``beta_j`` is independent of the other parameters)."""
        j = self.index(term)
        c = np.zeros(len(self.terms))
        c[j] = 1.0
        prior = math.exp(-0.5 * (self.prior_mean[j] / self.prior_sd[j]) ** 2) / (
            math.sqrt(2 * math.pi) * self.prior_sd[j])
        return float(self.density(c, 0.0)[0] / prior)

    def _contrast(self, c) -> np.ndarray:
        c = np.asarray(c, dtype=float)
        if c.shape != (len(self.terms),):
            raise ValueError(f"a combination needs {len(self.terms)} coefficients, got shape {c.shape}")
        if not np.all(np.isfinite(c)) or not np.any(c != 0):
            raise ValueError("a combination must be finite and not all zero")
        return c


def heterogeneity_explained(tau_with: Summary, tau_without: Summary) -> float:
    """Share of the between-study variance the moderators explain:
    ``max(0, 1 - E[tau^2 | moderators] / E[tau^2 | no moderators])``.

    ``tau_with`` is the meta-regression's tau summary, ``tau_without`` the intercept-only
    model's (same rows, same tau prior); ``E[tau^2] = mean^2 + sd^2`` from each. The Bayesian
    counterpart of metafor's pseudo-R^2 (which plugs in point estimates of tau^2 and is likewise
    truncated at 0: by chance, tau can come out larger with moderators than without). NaN when
    either expectation is infinite (half-Cauchy prior with a single study).
    """
    e_with = tau_with.mean**2 + tau_with.sd**2
    e_without = tau_without.mean**2 + tau_without.sd**2
    if not (np.isfinite(e_with) and np.isfinite(e_without)) or e_without <= 0:
        return float("nan")
    return max(0.0, 1.0 - e_with / e_without)


def log_marginal_tau_regression(
    tau: np.ndarray, y: np.ndarray, se: np.ndarray, X: np.ndarray, beta_mean: np.ndarray,
    beta_sd: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log p(y | tau)`` with beta integrated out, plus ``E[beta | tau, y]`` (G, p) and
    ``Cov[beta | tau, y]`` (G, p, p) at each ``tau`` (G,)."""
    tau = np.atleast_1d(np.asarray(tau, dtype=float))
    y, X = np.asarray(y, dtype=float), np.asarray(X, dtype=float)
    s2 = np.asarray(se, dtype=float) ** 2
    m0, v0 = np.asarray(beta_mean, dtype=float), np.asarray(beta_sd, dtype=float) ** 2
    k, p = X.shape
    loglik, mean, cov = np.empty(tau.size), np.empty((tau.size, p)), np.empty((tau.size, p, p))
    rows = max(1, _CHUNK // (k * p))
    for start in range(0, tau.size, rows):
        sl = slice(start, start + rows)
        v = tau[sl, None] ** 2 + s2
        w = 1.0 / v
        prec = np.einsum("gk,ki,kj->gij", w, X, X)
        prec[:, np.arange(p), np.arange(p)] += 1.0 / v0
        chol = np.linalg.cholesky(prec)
        rhs = m0 / v0 + (w * y) @ X
        b = _cho_solve(chol, rhs)
        resid = y - b @ X.T
        quad = np.einsum("gk,gk->g", w, resid**2) + ((b - m0) ** 2 / v0).sum(axis=1)
        logdet = (np.log(v).sum(axis=1) + np.log(v0).sum()
                  + 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1))
        loglik[sl] = -0.5 * (k * np.log(2 * np.pi) + logdet + quad)
        inv_chol = np.linalg.inv(chol)
        mean[sl], cov[sl] = b, np.einsum("gki,gkj->gij", inv_chol, inv_chol)
    return loglik, mean, cov


def exact_regression(
    y: Sequence[float] | np.ndarray,
    se: Sequence[float] | np.ndarray,
    X: Sequence[Sequence[float]] | np.ndarray,
    *,
    beta_mean: Sequence[float] | np.ndarray,
    beta_sd: Sequence[float] | np.ndarray,
    tau_scale: float,
    tau_family: str = "half_normal",
    interval: float = 0.95,
    grid_size: int | None = None,
    terms: Sequence[str] | None = None,
) -> RegressionPosterior:
    """Exact posterior of the meta-regression's coefficients and of tau.

    ``X`` is K x p (rows: studies, columns: terms, e.g. an intercept column of ones and
    moderators); ``beta_mean``/``beta_sd`` are the independent Normal priors of the p
    coefficients. ``grid_size`` as for :func:`~marketbayesmeta.runtime.exact.exact_posterior`.
    """
    y, se, X, m0, s0 = _validate(y, se, X, beta_mean, beta_sd, tau_scale, tau_family, interval,
                                 grid_size)
    names = tuple(terms) if terms is not None else tuple(f"beta[{j}]" for j in range(X.shape[1]))
    if len(names) != X.shape[1] or len(set(names)) != len(names):
        raise ValueError("terms must be unique, one per column of X")
    n_grid = _GRID_SIZE if grid_size is None else int(grid_size)
    fam = family(tau_family)
    density = partial(_log_density, y=y, se=se, X=X, beta_mean=m0, beta_sd=s0,
                      scale=float(tau_scale), tau_family=tau_family)
    # The grid's search range uses the prior-predictive centre and spread of x_i'beta (for an
    # intercept column these are mu_mean and mu_sd, as in exact.py).
    prior_centre = X @ m0
    prior_spread = float(np.sqrt((X**2 @ s0**2).max()))
    t, lg, m, v = _adaptive_grid(density, y, se, prior_centre, prior_spread, float(tau_scale), n_grid)
    alpha = (1.0 - interval) / 2.0
    probs = np.array([0.5, alpha, 1.0 - alpha])
    infinite = fam.infinite_posterior_variance(y.size)
    q = quadrature_nodes(t, lg, m, v, density, probs, infinite)
    w, tau, m, v, tau_summary, tau2_mean = q.weights, q.tau, q.mean, q.var, q.tau_summary, q.tau2_mean
    log_evidence = q.log_integral + fam.log_norm - math.log(tau_scale)
    sd = np.sqrt(np.diagonal(v, axis1=1, axis2=2))
    mbar, sdbar, ppos = _mixture_moments(w, m, sd)
    beta = []
    for j in range(X.shape[1]):
        qfun = partial(_mixture_quantiles_1d, w, m[:, j : j + 1], sd[:, j : j + 1])
        beta.append(_summary(mbar[j], sdbar[j], ppos[j], qfun(probs), qfun))

    return RegressionPosterior(beta, tau_summary, names, float(interval), float(log_evidence),
                               tau2_mean, tau, w, m, v, m0, s0, infinite)


# ----------------------------------------------------------------------------- internals


def _cho_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``(L L') x = rhs`` for stacked lower-triangular ``L`` (G, p, p), ``rhs`` (G, p)."""
    z = np.linalg.solve(chol, rhs[..., None])
    return np.linalg.solve(np.swapaxes(chol, 1, 2), z)[..., 0]


def _log_density(t, y, se, X, beta_mean, beta_sd, scale, tau_family):
    """Unnormalised log posterior density of ``t = log tau`` and the moments of beta | tau."""
    tau = np.exp(t)
    loglik, m, v = log_marginal_tau_regression(tau, y, se, X, beta_mean, beta_sd)
    return loglik + family(tau_family).log_kernel(tau / scale) + t, m, v


def _mixture_summary(w, mean, var, interval, infinite_var=False) -> Summary:
    alpha = (1.0 - interval) / 2.0
    sd = np.sqrt(var)[:, None]
    mbar, sdbar, ppos = _mixture_moments(w, mean[:, None], sd)
    qfun = partial(_mixture_quantiles_1d, w, mean[:, None], sd)
    return _summary(mbar[0], sdbar[0], ppos[0], qfun(np.array([0.5, alpha, 1.0 - alpha])), qfun,
                    infinite_var)


def _validate(y, se, X, beta_mean, beta_sd, tau_scale, tau_family, interval, grid_size):
    y = np.asarray(y, dtype=float)
    se = np.asarray(se, dtype=float)
    X = np.asarray(X, dtype=float)
    m0 = np.atleast_1d(np.asarray(beta_mean, dtype=float))
    s0 = np.atleast_1d(np.asarray(beta_sd, dtype=float))
    if y.ndim != 1 or se.ndim != 1 or y.size != se.size:
        raise ValueError("y and se must be 1-D and of equal length")
    if y.size < 1:
        raise ValueError("need at least one study")
    if X.ndim != 2 or X.shape[0] != y.size or X.shape[1] < 1:
        raise ValueError(f"X must be K x p with K = {y.size} rows and p >= 1 columns, got {X.shape}")
    if m0.shape != (X.shape[1],) or s0.shape != (X.shape[1],):
        raise ValueError(f"beta_mean and beta_sd need one value per column of X ({X.shape[1]})")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(X)) and np.all(np.isfinite(m0))):
        raise ValueError("y, X and beta_mean must be finite")
    if not np.all(np.isfinite(se) & (se > 0)):
        raise ValueError("se must be finite and > 0")
    if not np.all(np.isfinite(s0) & (s0 > 0)):
        raise ValueError("beta_sd must be finite and > 0")
    if not (np.isfinite(tau_scale) and tau_scale > 0):
        raise ValueError("tau_scale must be finite and > 0")
    family(tau_family)  # ValueError for an unknown family
    if not 0 < interval < 1:
        raise ValueError("interval must lie strictly between 0 and 1")
    if grid_size is not None and (int(grid_size) != grid_size or grid_size < 8):
        raise ValueError("grid_size must be an integer >= 8")
    return y, se, X, m0, s0
