"""Exact posterior of the marginalised normal-normal random-effects model (SPEC §7).

Model: ``y_i ~ N(mu, tau^2 + s_i^2)``, ``mu ~ N(mu_mean, mu_sd^2)``,
``tau ~ HalfNormal(tau_scale)`` or ``HalfCauchy(tau_scale)``.

Given ``tau``, ``mu`` is conjugate Normal and the marginal likelihood of ``tau`` (``mu``
integrated out) is closed form, so the posterior reduces to a 1-D integral over ``tau``.
That integral is done with the trapezoid rule on a uniform grid in ``t = log tau``: the
integrand is analytic and decays at both ends, so the rule converges geometrically
(errors ~1e-9 or less at the default resolution). The grid is placed adaptively on the
region carrying the posterior mass (``tau`` is concentrated like ``1/sqrt(K)`` for large K);
the mass below the grid (``tau`` ~ 0, where the density is flat) is added as one node.

``mu``, ``theta_i`` and ``future_true_effect`` are then finite mixtures of Normals over the
``tau`` nodes; the CDF of ``tau`` between nodes uses the sinc (Whittaker) interpolant that
matches the trapezoid rule. Quantiles are solved by safeguarded Newton iterations.

The same quadrature gives the evidence ``log p(y)`` (the normalising constant, with the tau
prior's normalised density; Bayes factors need it) and posterior expectations of any function of
``(tau, E[mu | tau], Var[mu | tau])`` (:meth:`ExactPosterior.expectation`, which extends the grid
upwards when the integrand, e.g. ``exp(tau^2 / 2)``, decays more slowly than the posterior).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from ..families import family

__all__ = ["ExactPosterior", "Summary", "exact_posterior", "log_marginal_tau", "shrinkage_factor",
           "theta_moments"]

_DROP = 36.0  # grid covers where log density (or its tau^2 moment) is within _DROP of its max
_H_CAP = 8.0  # node spacing in log tau = min(_H_CAP, support width) / grid_size
_GRID_SIZE = 64
_CHUNK = 2_000_000  # max elements of one (nodes x studies) work array (16 MB)
_MIN_WEIGHT = 1e-16  # mixture components lighter than this are dropped


@dataclass(frozen=True)
class Summary:
    """Posterior summary of one scalar parameter (``lower``/``upper``: equal-tailed interval)."""

    mean: float
    sd: float
    median: float
    lower: float
    upper: float
    prob_positive: float
    _quantiles: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)

    def quantile(self, q: float) -> float:
        """Posterior quantile at probability ``q`` in (0, 1)."""
        return float(self.quantiles([q])[0])

    def quantiles(self, qs: Sequence[float] | np.ndarray) -> np.ndarray:
        """Posterior quantiles at probabilities ``qs`` (each in (0, 1))."""
        qs = np.atleast_1d(np.asarray(qs, dtype=float))
        if qs.ndim != 1 or not np.all((qs > 0) & (qs < 1)):
            raise ValueError("quantile probabilities must lie strictly between 0 and 1")
        return self._quantiles(qs)


@dataclass(frozen=True)
class ExactPosterior:
    """Exact (quadrature) posterior; ``tau_nodes``/``tau_weights`` are the quadrature rule."""

    mu: Summary
    tau: Summary
    future_true_effect: Summary
    theta: list[Summary]
    interval: float
    tau_nodes: np.ndarray = field(repr=False)
    tau_weights: np.ndarray = field(repr=False)
    # The mixture components beside tau_nodes / tau_weights: E[mu | tau_g, y] and Var[mu | tau_g, y].
    mu_cond_mean: np.ndarray = field(repr=False)
    mu_cond_var: np.ndarray = field(repr=False)
    log_evidence: float  # log p(y) = log ∫ p(y | tau) p(tau) dtau, mu integrated over its prior
    y: np.ndarray = field(repr=False)
    se: np.ndarray = field(repr=False)
    priors: dict[str, Any]  # mu_mean, mu_sd, tau_scale, tau_family (the keys of plan.PriorSet)
    _grid: _Grid = field(repr=False, compare=False)

    def summary(self, parameter: str) -> Summary:
        """The summary of ``"mu"``, ``"tau"``, ``"future_true_effect"`` or ``"theta[i]"``."""
        if parameter in ("mu", "tau", "future_true_effect"):
            return getattr(self, parameter)
        match = re.fullmatch(r"theta\[(\d+)\]", parameter)
        if match is None or int(match.group(1)) >= len(self.theta):
            raise ValueError(f"unknown parameter {parameter!r}")
        return self.theta[int(match.group(1))]

    def quantiles(self, parameter: str, qs: Sequence[float]) -> np.ndarray:
        """Posterior quantiles of ``parameter`` (see :meth:`summary`) at probabilities ``qs``."""
        return self.summary(parameter).quantiles(qs)

    @property
    def k(self) -> int:
        """Number of studies."""
        return int(self.y.size)

    def theta_components(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of ``theta_i | tau_g, y`` at every mixture component."""
        mean, sd = _theta_components(self.tau_nodes, self.mu_cond_mean, self.mu_cond_var,
                                     self.y[i : i + 1], self.se[i : i + 1] ** 2)
        return mean[:, 0], sd[:, 0] ** 2

    def normal_mixture(self, mean: np.ndarray, var: np.ndarray, infinite_var: bool = False) -> Summary:
        """Summary (at this posterior's interval) of a quantity that is ``N(mean_g, var_g)`` given
        ``tau_g``: a Normal mixture over the posterior's components. ``infinite_var`` reports an
        infinite sd (a variance growing like tau^2 under a heavy-tailed tau posterior)."""
        probs = _probabilities(self.interval)
        return _normal_mixture(self.tau_weights, np.asarray(mean, float), np.asarray(var, float), probs,
                               infinite_var)

    def exponential_moment_is_finite(self, coef: float, power: float) -> bool:
        """Whether ``E[exp(coef · tau^power)]`` is finite under this posterior (``coef`` > 0)."""
        p = self.priors
        return family(p["tau_family"]).exponential_moment_is_finite(self.k, p["tau_scale"], coef, power)

    def expectation(self, log_g: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """``E[g(tau, E[mu | tau, y], Var[mu | tau, y])]`` for a positive ``g`` given by its log.

        ``log_g(tau, mean, var)`` receives arrays of shape (G,) and returns (G,) or (G, N) (N
        functions at once); the result has shape () or (N,). The trapezoid rule runs on the tau grid,
        extended upwards (same spacing) until the integrand is negligible at its top, so a ``g``
        growing faster than the posterior's own decay is still integrated accurately; an integrand
        that has not decayed after the extension limit gives ``inf`` (check
        :meth:`exponential_moment_is_finite` first for exponential moments)."""
        return self._grid.expectation(log_g)


def log_marginal_tau(
    tau: np.ndarray, y: np.ndarray, se: np.ndarray, mu_mean: float, mu_sd: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log p(y | tau)`` with ``mu`` integrated out, plus ``E[mu | tau, y]``, ``Var[mu | tau, y]``.

    Uses ``y ~ N(mu_mean 1, diag(tau^2 + s^2) + mu_sd^2 11')`` written via the conjugate update
    (precision ``P = 1/mu_sd^2 + sum w``, ``w = 1/(tau^2 + s^2)``), which avoids cancellation.
    """
    tau = np.atleast_1d(np.asarray(tau, dtype=float))
    y = np.asarray(y, dtype=float)
    s2 = np.asarray(se, dtype=float) ** 2
    v0 = float(mu_sd) ** 2
    loglik, mean, var = (np.empty(tau.size) for _ in range(3))
    rows = max(1, _CHUNK // y.size)
    for start in range(0, tau.size, rows):
        sl = slice(start, start + rows)
        v = tau[sl, None] ** 2 + s2
        w = 1.0 / v
        prec = 1.0 / v0 + w.sum(axis=1)
        m = (mu_mean / v0 + w @ y) / prec
        quad = np.einsum("gk,gk->g", w, (y - m[:, None]) ** 2) + (m - mu_mean) ** 2 / v0
        logdet = np.log(v).sum(axis=1) + np.log(v0 * prec)
        loglik[sl] = -0.5 * (y.size * np.log(2 * np.pi) + logdet + quad)
        mean[sl], var[sl] = m, 1.0 / prec
    return loglik, mean, var


def exact_posterior(
    y: Sequence[float] | np.ndarray,
    se: Sequence[float] | np.ndarray,
    *,
    mu_mean: float,
    mu_sd: float,
    tau_scale: float,
    tau_family: str = "half_normal",
    interval: float = 0.95,
    grid_size: int | None = None,
) -> ExactPosterior:
    """Exact posterior of ``mu``, ``tau``, ``theta_i`` and ``future_true_effect``.

    ``grid_size`` (default 64) is the number of nodes across the posterior support of
    ``log tau`` (node spacing at most ``8 / grid_size``); doubling it halves the spacing.
    """
    y, se = _validate(y, se, mu_mean, mu_sd, tau_scale, tau_family, interval, grid_size)
    n_grid = _GRID_SIZE if grid_size is None else int(grid_size)
    density = partial(_log_density, y=y, se=se, mu_mean=float(mu_mean), mu_sd=float(mu_sd),
                      scale=float(tau_scale), tau_family=tau_family)
    t, lg, m, v = _adaptive_grid(density, y, se, float(mu_mean), float(mu_sd),
                                 float(tau_scale), n_grid)
    grid = _Grid(t, lg, m, v, density, n_grid)
    probs = _probabilities(interval)
    infinite_tau_var = family(tau_family).infinite_posterior_variance(y.size)
    q = quadrature_nodes(t, lg, m, v, density, probs, infinite_tau_var)
    w, tau, m, v, tau_summary = q.weights, q.tau, q.mean, q.var, q.tau_summary
    mu = _normal_mixture(w, m, v, probs)
    future = _normal_mixture(w, m, v + tau**2, probs, infinite_tau_var)

    theta = _theta_summaries(w, tau, m, v, y, se**2, probs)
    # Evidence: ∫ p(y | tau) p(tau) dtau = (normalising constant of the tau prior) × ∫ exp(lg) dt.
    log_evidence = q.log_integral + family(tau_family).log_norm - np.log(float(tau_scale))
    priors = {"mu_mean": float(mu_mean), "mu_sd": float(mu_sd), "tau_scale": float(tau_scale),
              "tau_family": tau_family}
    return ExactPosterior(mu, tau_summary, future, theta, float(interval), tau, w, m, v,
                          float(log_evidence), y, se, priors, grid)


def log_evidence_at_mu(
    mu: float, y: Sequence[float] | np.ndarray, se: Sequence[float] | np.ndarray, *, tau_scale: float,
    tau_family: str = "half_normal", grid_size: int | None = None,
) -> float:
    """``log p(y | mu)``: the evidence of the model with mu fixed, tau integrated against its prior
    (on its own adaptive log-tau grid, in logs throughout, so it stays finite where p itself
    underflows). With :attr:`ExactPosterior.log_evidence` it gives the Bayes factor for ``mu = mu``.
    The integrand can peak far above the posterior's tau (a tau large enough to reach mu), which is
    why it is not computed on the posterior's grid."""
    y, se = _validate(y, se, float(mu), 1.0, tau_scale, tau_family, 0.5, grid_size)  # 1.0: no mu_sd here
    n_grid = _GRID_SIZE if grid_size is None else int(grid_size)
    scale, s2 = float(tau_scale), se**2

    def density(t):
        v = np.exp(2.0 * t)[:, None] + s2
        loglik = -0.5 * (np.log(2 * np.pi * v) + (y - mu) ** 2 / v).sum(axis=1)
        zeros = np.zeros(t.size)
        return loglik + family(tau_family).log_kernel(np.exp(t) / scale) + t, zeros, zeros

    # mu's prior sd plays no part; se.max() leaves the grid's search range to the data and tau's scale
    t, lg, _, _ = _adaptive_grid(density, y, se, float(mu), float(se.max()), scale, n_grid)
    return _log_trapezoid_total(lg, t[1] - t[0]) + family(tau_family).log_norm - float(np.log(scale))


# ----------------------------------------------------------------------------- internals


class Nodes(NamedTuple):
    weights: np.ndarray  # normalised quadrature weights
    tau: np.ndarray  # the nodes, tau
    mean: np.ndarray  # the conditional moments at each node (any trailing shape)
    var: np.ndarray
    tau_summary: Summary
    tau2_mean: float  # E[tau² | y] (inf when tau's posterior variance is infinite)
    log_integral: float  # log ∫ exp(lg) dt over the grid (refined): the evidence up to the prior's constant


def quadrature_nodes(t, lg, m, v, density, probs, infinite_tau_var) -> Nodes:
    """The quadrature rule of the uniform log-tau grid ``t`` (log density ``lg``, conditional moments
    ``m``, ``v`` per node, any trailing shape), tau's summary and the log integral of the density.

    The mass below the grid (tau ~ 0, flat density) is one node at tau = exp(t0) / 2; nodes lighter
    than _MIN_WEIGHT are dropped. Interpolating the CDF of tau between nodes converges more slowly
    than the trapezoid rule itself, so tau's summaries use the grid refined once more (midpoints
    added). Shared by the intercept-only engine and the meta-regression (exact_regression.py).
    """
    h = t[1] - t[0]
    w = _trapezoid_weights(lg, h)
    tau = np.exp(np.concatenate([[t[0] - np.log(2.0)], t]))
    m, v = np.concatenate([m[:1], m]), np.concatenate([v[:1], v])
    keep = w > _MIN_WEIGHT
    w, tau, m, v = w[keep] / w[keep].sum(), tau[keep], m[keep], v[keep]
    t_fine = np.empty(2 * t.size - 1)
    t_fine[::2], t_fine[1::2] = t, t[:-1] + h / 2
    lg_fine = np.empty_like(t_fine)
    lg_fine[::2], lg_fine[1::2] = lg, density(t_fine[1::2])[0]
    w_fine = _trapezoid_weights(lg_fine, h / 2)
    tau_q = partial(_tau_quantiles, t_fine, w_fine)
    tau_fine = np.exp(np.concatenate([[t[0] - np.log(2.0)], t_fine]))
    tau_mean = float(w_fine @ tau_fine)
    tau_sd = np.inf if infinite_tau_var else np.sqrt(w_fine @ (tau_fine - tau_mean) ** 2)
    tau2_mean = np.inf if infinite_tau_var else float(w_fine @ tau_fine**2)
    return Nodes(w, tau, m, v, _summary(tau_mean, tau_sd, 1.0, tau_q(probs), tau_q), tau2_mean,
                 _log_trapezoid_total(lg_fine, h / 2))


def _validate(y, se, mu_mean, mu_sd, tau_scale, tau_family, interval, grid_size):
    y = np.asarray(y, dtype=float)
    se = np.asarray(se, dtype=float)
    if y.ndim != 1 or se.ndim != 1 or y.size != se.size:
        raise ValueError("y and se must be 1-D and of equal length")
    if y.size < 1:
        raise ValueError("need at least one study")
    if not np.all(np.isfinite(y)):
        raise ValueError("y must be finite")
    if not np.all(np.isfinite(se) & (se > 0)):
        raise ValueError("se must be finite and > 0")
    if not np.isfinite(mu_mean):
        raise ValueError("mu_mean must be finite")
    for name, value in (("mu_sd", mu_sd), ("tau_scale", tau_scale)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be finite and > 0")
    family(tau_family)  # ValueError for an unknown family
    if not 0 < interval < 1:
        raise ValueError("interval must lie strictly between 0 and 1")
    if grid_size is not None and (int(grid_size) != grid_size or grid_size < 8):
        raise ValueError("grid_size must be an integer >= 8")
    return y, se


def _log_density(t, y, se, mu_mean, mu_sd, scale, tau_family):
    """Unnormalised log posterior density of ``t = log tau`` and the moments of mu | tau."""
    tau = np.exp(t)
    loglik, m, v = log_marginal_tau(tau, y, se, mu_mean, mu_sd)
    return loglik + family(tau_family).log_kernel(tau / scale) + t, m, v


def _adaptive_grid(density, y, se, mu_mean, mu_sd, scale, n_grid):
    """Uniform grid in t = log tau covering the posterior: nodes, log density, E/Var mu|tau."""
    # Below `small` the density in tau is flat (it depends on tau^2 / s^2, tau^2 / scale^2 and
    # varies on the scale s / K^(1/4)); above `big` the posterior has only its tail left.
    small = min(scale, se.min()) * y.size**-0.25
    big = max(scale, se.max(), np.ptp(y), np.abs(y - mu_mean).max(), mu_sd)
    h = 0.5
    t = np.arange(np.log(small) - 16.0, np.log(big) + 45.0 + h, h)
    lg, m, v = density(t)
    for _ in range(30):
        # Support: where the density, or the density times tau^2 (second moments), is
        # within _DROP of its maximum; padded by one node so an unresolved peak stays inside.
        top = np.argmax(lg)
        score = np.maximum(lg, lg + 2.0 * (t - t[top]))
        inside = np.flatnonzero(score > lg[top] - _DROP)
        i0, i1 = max(inside[0] - 1, 0), min(inside[-1] + 1, t.size - 1)
        target = min(_H_CAP, t[i1] - t[i0]) / n_grid
        if h <= 1.5 * target:
            return t[i0 : i1 + 1], lg[i0 : i1 + 1], m[i0 : i1 + 1], v[i0 : i1 + 1]
        t = np.linspace(t[i0], t[i1], int(np.ceil((t[i1] - t[i0]) / target)) + 1)
        h = t[1] - t[0]
        lg, m, v = density(t)
    raise RuntimeError("tau grid refinement did not converge")  # pragma: no cover


def _log_trapezoid_terms(lg, h):
    """log of [mass below the grid] + trapezoid weights of the nodes (unnormalised), in logs so that
    no term underflows far out in the tail.

    Below t0 the density in t is C e^t, so that mass is density(t0) (i.e. exp(lg[0])).
    """
    coef = np.full(lg.size + 1, np.log(h))
    coef[0] = 0.0
    coef[[1, -1]] -= np.log(2.0)
    return coef + np.concatenate([lg[:1], lg])


def _log_trapezoid_weights(lg, h):
    """log of the normalised weights: [mass below the grid] + trapezoid weights of the nodes."""
    terms = _log_trapezoid_terms(lg, h)
    return terms - special.logsumexp(terms)


def _trapezoid_weights(lg, h):
    """Normalised weights: [mass below the grid] + trapezoid weights of the nodes (summing to 1 to
    rounding: normalised by their sum, not in logs)."""
    terms = _log_trapezoid_terms(lg, h)
    weights = np.exp(terms - terms.max())
    return weights / weights.sum()


def _log_trapezoid_total(lg, h):
    """log ∫ exp(lg(t)) dt by the same rule."""
    return float(special.logsumexp(_log_trapezoid_terms(lg, h)))


def _probabilities(interval):
    """Median and the equal-tailed interval's ends."""
    alpha = (1.0 - interval) / 2.0
    return np.array([0.5, alpha, 1.0 - alpha])


def _normal_mixture(w, mean, var, probs, infinite_var=False) -> Summary:
    """Summary of the Normal mixture sum_g w_g N(mean_g, var_g)."""
    sd = np.sqrt(var)[:, None]
    mom = _mixture_moments(w, mean[:, None], sd)
    qfun = partial(_mixture_quantiles_1d, w, mean[:, None], sd)
    return _summary(*(x[0] for x in mom), qfun(probs), qfun, infinite_var)


_EXTEND_DROP = 40.0  # the integrand's top node must be this far (in log) below its maximum
_EXTEND_NODES = 4096  # at most this many nodes added above the grid (then the integral is inf)


@dataclass(frozen=True)
class _Grid:
    """The uniform quadrature grid in t = log tau (before the refinement for tau's CDF)."""

    t: np.ndarray
    lg: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    density: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
    n_grid: int

    def expectation(self, log_g):
        t, lg, m, v = self.t, self.lg, self.mean, self.var
        h = t[1] - t[0]
        while True:
            log_w = _log_trapezoid_weights(lg, h)
            with np.errstate(over="ignore"):  # tau = inf far out on a coarse grid: no mass there
                tau = np.exp(np.concatenate([[t[0] - np.log(2.0)], t]))
            lgv = np.asarray(log_g(tau, np.concatenate([m[:1], m]), np.concatenate([v[:1], v])), float)
            log_w = log_w.reshape((-1,) + (1,) * (lgv.ndim - 1))
            with np.errstate(invalid="ignore"):
                # a node without mass adds nothing, whatever g is there (g = inf where tau overflowed)
                terms = np.where(log_w == -np.inf, -np.inf, log_w + lgv)
            top = terms.max(axis=0)
            # done where the top node whose density is representable is negligible, or where g is 0
            # everywhere / overflowed
            last = terms[np.flatnonzero(np.isfinite(lg))[-1] + 1]
            decayed = (last < top - _EXTEND_DROP) | ~np.isfinite(top)
            if np.all(decayed):
                break
            if t.size - self.t.size >= _EXTEND_NODES:
                # not negligible by the extension's limit (or before tau² leaves the floats, where
                # the density is -inf): the integral does not converge as far as we can tell
                return np.where(decayed, np.exp(special.logsumexp(terms, axis=0)), np.inf)[()]
            t_new = t[-1] + h * np.arange(1, self.n_grid + 1)
            with np.errstate(over="ignore", invalid="ignore"):
                lg_new, m_new, v_new = self.density(t_new)
            lg_new = np.where(np.isfinite(lg_new), lg_new, -np.inf)
            t, lg = np.concatenate([t, t_new]), np.concatenate([lg, lg_new])
            m, v = np.concatenate([m, m_new]), np.concatenate([v, v_new])
        return np.exp(special.logsumexp(terms, axis=0))


def _summary(mean, sd, prob_positive, qv, qfun, infinite_var=False) -> Summary:
    sd = np.inf if infinite_var else float(sd)
    return Summary(float(mean), sd, float(qv[0]), float(qv[1]), float(qv[2]),
                   float(prob_positive), qfun)


def _mixture_moments(w, mean, sd):
    """Mean, sd and P(> 0) of Normal mixtures: weights (G,), components (G, N)."""
    mbar = w @ mean
    sdbar = np.sqrt(w @ (sd**2 + (mean - mbar) ** 2))
    return mbar, sdbar, w @ special.ndtr(mean / sd)


def _mixture_quantiles(w, mean, sd, qs, mbar, sdbar):
    """Quantiles (Q, N) of Normal mixtures (weights (G,), components (G, N)).

    Safeguarded Newton from a Cornish-Fisher start. The bracket is exact: at
    min_g(m_g + s_g z_q) every component CDF is <= q, at max_g(...) every one is >= q.
    """
    z = special.ndtri(qs)[:, None]
    d = mean - mbar
    skew = w @ (d**3 + 3.0 * d * sd**2) / sdbar**3
    ends = mean[None] + sd[None] * z[:, :, None]
    lo, hi = ends.min(axis=1), ends.max(axis=1)
    x = np.clip(mbar + sdbar * (z + (z**2 - 1.0) * skew / 6.0), lo, hi)
    tol = 1e-6 * sdbar  # a Newton step this small leaves an error ~ tol^2 / sd
    cols = np.arange(mean.shape[1])
    for _ in range(200):
        if cols.size == 0:
            break
        mc, sc, xc, lc, hc = mean[:, cols], sd[:, cols], x[:, cols], lo[:, cols], hi[:, cols]
        u = (xc[:, None, :] - mc) / sc
        cdf = w @ special.ndtr(u)
        pdf = w @ (np.exp(-0.5 * u**2) / sc) / np.sqrt(2 * np.pi)
        below = cdf < qs[:, None]
        lc, hc = np.where(below, xc, lc), np.where(below, hc, xc)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = (cdf - qs[:, None]) / pdf
        xn = xc - step
        bad = ~((xn >= lc) & (xn <= hc))
        xn[bad] = 0.5 * (lc + hc)[bad]
        tc = tol[cols]
        done = ((~bad & (np.abs(step) <= tc)) | (hc - lc <= 1e-3 * tc)).all(axis=0)
        x[:, cols], lo[:, cols], hi[:, cols] = xn, lc, hc
        cols = cols[~done]
    return x


def _mixture_quantiles_1d(w, mean, sd, qs):
    mbar, sdbar, _ = _mixture_moments(w, mean, sd)
    return _mixture_quantiles(w, mean, sd, qs, mbar, sdbar)[:, 0]


def shrinkage_factor(tau: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """B = s^2 / (s^2 + tau^2) for nodes ``tau`` (G,) and squared SEs ``s2`` (K,): shape (G, K)."""
    return s2 / (s2 + np.asarray(tau)[:, None] ** 2)


def theta_moments(tau: np.ndarray, mean: np.ndarray, var: np.ndarray, y: np.ndarray,
                  s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of theta_i | tau, y at nodes ``tau`` (G,) given ``mean``/``var`` = E/Var of
    mu | tau, y (G,), for studies ``y``, ``s2`` (K,): B E[mu] + (1 - B) y and tau^2 B + B^2 Var[mu],
    shapes (G, K)."""
    b = shrinkage_factor(tau, s2)
    return b * mean[:, None] + (1.0 - b) * y, np.asarray(tau)[:, None] ** 2 * b + b**2 * var[:, None]


def _theta_components(tau, m, v, y, s2):
    """theta_i | tau, y: mean and sd (see :func:`theta_moments`)."""
    mean, var = theta_moments(tau, m, v, y, s2)
    return mean, np.sqrt(var)


def _theta_quantiles(w, tau, m, v, y_i, s2_i, qs):
    mean, sd = _theta_components(tau, m, v, np.array([y_i]), np.array([s2_i]))
    mbar, sdbar, _ = _mixture_moments(w, mean, sd)
    return _mixture_quantiles(w, mean, sd, qs, mbar, sdbar)[:, 0]


def _theta_summaries(w, tau, m, v, y, s2, probs) -> list[Summary]:
    out: list[Summary] = []
    cols = max(1, _CHUNK // (w.size * probs.size))
    for start in range(0, y.size, cols):
        sl = slice(start, start + cols)
        mean, sd = _theta_components(tau, m, v, y[sl], s2[sl])
        mbar, sdbar, ppos = _mixture_moments(w, mean, sd)
        med, lower, upper = _mixture_quantiles(w, mean, sd, probs, mbar, sdbar).tolist()
        rows = zip(mbar.tolist(), sdbar.tolist(), med, lower, upper, ppos.tolist(),
                   y[sl].tolist(), s2[sl].tolist(), strict=True)
        out += [Summary(a, b, c, d, e, f, partial(_theta_quantiles, w, tau, m, v, yi, s2i))
                for a, b, c, d, e, f, yi, s2i in rows]
    return out


def _tau_quantiles(t, w, qs):
    """Quantiles of tau from the sinc interpolant of the density in t = log tau.

    ``w`` = [mass below t0] + trapezoid weights of the uniform nodes ``t``. The CDF
    F(x) = w_0 + sum_j w_j (1/2 + Si(pi (x - t_j) / h) / pi) integrates the cardinal series
    sum_j (w_j / h) sinc((x - t_j) / h), whose integral is exactly the trapezoid rule.
    """
    h, tail, w = t[1] - t[0], w[0], w[1:]

    def cdf_pdf(x):
        u = (x[:, None] - t) / h
        return tail + (0.5 + special.sici(np.pi * u)[0] / np.pi) @ w, np.sinc(u) @ w / h

    x = np.interp(qs, tail + np.cumsum(w) - 0.5 * w, t)
    lo, hi = np.full(qs.size, t[0]), np.full(qs.size, t[-1])
    for _ in range(200):
        cdf, pdf = cdf_pdf(x)
        below = cdf < qs
        lo, hi = np.where(below, x, lo), np.where(below, hi, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = x - (cdf - qs) / pdf
        bad = ~((xn >= lo) & (xn <= hi))
        xn[bad] = 0.5 * (lo + hi)[bad]
        step, x = np.abs(xn - x), xn
        if np.all((step <= 1e-12) | (hi - lo <= 1e-12)):
            break
    # Below the grid the density in tau is flat: interpolate linearly from tau = 0.
    first = cdf_pdf(t[:1])[0][0]
    return np.where(qs < first, np.exp(t[0]) * qs / first, np.exp(x))
