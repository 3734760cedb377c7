"""Tests for the exact (quadrature) posterior of the normal-normal random-effects model."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats
from scipy.interpolate import CubicSpline

from marketbayesmeta.runtime.exact import (
    ExactPosterior,
    Summary,
    exact_posterior,
    log_evidence_at_mu,
    log_marginal_tau,
)

SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOLS_S = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
QS = np.array([0.025, 0.1, 0.5, 0.9, 0.975])
FIELDS = ("mean", "sd", "median", "lower", "upper", "prob_positive")


# --------------------------------------------------------------------------- brute force


class Grid2D:
    """Unnormalised joint posterior of (mu, tau) on a dense midpoint grid, straight from
    p(mu) p(tau) prod_i N(y_i | mu, tau^2 + s_i^2); tau = c u / (1 - u) with u uniform-gridded.
    The box is zoomed to where the joint density is non-negligible."""

    def __init__(self, y, s, mu_mean, mu_sd, tau_scale, family, n=2000):
        self.y, self.s = np.asarray(y, float), np.asarray(s, float)
        self.args = (mu_mean, mu_sd, tau_scale, family)
        width = 10 * max(mu_sd, self.s.max(), np.ptp(self.y))
        mu_box = (min(self.y.min(), mu_mean) - width, max(self.y.max(), mu_mean) + width)
        self.c = tau_scale
        u_box = (0.0, 1.0)
        for it in range(4):
            logp, mu, u = self._evaluate(mu_box, u_box, n)
            mass = logp > logp.max() - 40
            mu_box = self._zoom(mu, mass.any(axis=1), mu_box)
            u_box = self._zoom(u, mass.any(axis=0), u_box)
            if it == 0:  # rescale the tau transform to the posterior's own scale
                tau = self.c * u / (1 - u)
                p_tau = np.exp(logp - logp.max()).sum(axis=0)
                self.c = tau[np.searchsorted(np.cumsum(p_tau) / p_tau.sum(), 0.5)]
                u_box = (0.0, 1.0)
        logp, self.mu, self.u = self._evaluate(mu_box, u_box, n)
        self.tau = self.c * self.u / (1 - self.u)
        p = np.exp(logp - logp.max())
        self.p = p / p.sum()
        self.dmu, self.du = self.mu[1] - self.mu[0], self.u[1] - self.u[0]

    @staticmethod
    def _zoom(x, keep, box):
        idx = np.flatnonzero(keep)
        h = x[1] - x[0]
        return max(box[0], x[idx[0]] - 2 * h), min(box[1], x[idx[-1]] + 2 * h)

    def _evaluate(self, mu_box, u_box, n):
        mu_mean, mu_sd, tau_scale, family = self.args
        mu = np.linspace(*mu_box, n + 1)
        mu = (mu[1:] + mu[:-1]) / 2
        u = np.linspace(*u_box, n + 1)
        u = (u[1:] + u[:-1]) / 2
        tau = self.c * u / (1 - u)
        jac = self.c / (1 - u) ** 2
        prior_tau = {"half_normal": stats.halfnorm, "half_cauchy": stats.halfcauchy,
                     "exponential": stats.expon}[family].logpdf(tau, scale=tau_scale)
        logp = stats.norm.logpdf(mu, mu_mean, mu_sd)[:, None] + (prior_tau + np.log(jac))[None]
        for yi, si in zip(self.y, self.s, strict=True):
            var = tau**2 + si**2  # N(y_i | mu, tau^2 + s_i^2)
            logp -= 0.5 * (np.log(2 * np.pi * var)[None] + (yi - mu[:, None]) ** 2 / var[None])
        return logp, mu, u

    def marginal(self, name):
        if name == "mu":
            return self.mu, self.p.sum(axis=1), self.dmu
        return self.tau, self.p.sum(axis=0), None

    def summary(self, name):
        x, p, _ = self.marginal(name)
        mean = p @ x
        prob_positive = 1 - self._cdf("mu")(0.0) if name == "mu" else 1.0
        return {"mean": mean, "sd": np.sqrt(p @ (x - mean) ** 2), "prob_positive": prob_positive}

    def _cdf(self, name):
        """Marginal CDF (of mu, or of u for tau): cubic spline of the density, integrated."""
        x, h = (self.mu, self.dmu) if name == "mu" else (self.u, self.du)
        density = self.p.sum(axis=1 if name == "mu" else 0) / h
        x = np.concatenate([[x[0] - h / 2], x, [x[-1] + h / 2]])  # box edges: density ~ 0
        density = np.concatenate([[0.0], density, [0.0]]) if name == "mu" else np.concatenate(
            [[density[0]], density, [0.0]])  # tau ~ 0: flat density at u = 0
        cdf = CubicSpline(x, density).antiderivative()
        return lambda v: cdf(v) / cdf(x[-1])

    def quantiles(self, name, qs):
        cdf = self._cdf(name)
        lo, hi = (self.mu[0] - self.dmu, self.mu[-1] + self.dmu) if name == "mu" else (0, 1)
        out = np.array([optimize.brentq(lambda v, q=q: cdf(v) - q, lo, hi, xtol=1e-14)
                        for q in np.atleast_1d(qs)])
        return out if name == "mu" else self.c * out / (1 - out)

    def sample(self, rng, n):
        """(mu, tau) draws: a cell by its probability, then uniform within the cell."""
        cell = rng.choice(self.p.size, size=n, p=self.p.ravel())
        i, j = np.unravel_index(cell, self.p.shape)
        mu = self.mu[i] + (rng.random(n) - 0.5) * self.dmu
        u = self.u[j] + (rng.random(n) - 0.5) * self.du
        return mu, self.c * u / (1 - u)


def _geo_y():
    return np.array([0.05, 0.12, -0.02, 0.08, 0.15, 0.03, 0.10])


CASES = {
    "k2_hn": ([0.3, -0.5], [0.4, 0.6], 0.0, 1.0, 0.5, "half_normal"),
    "k3_hc_tau_large": ([1.0, 4.5, -2.3], [0.5, 0.8, 1.0], 0.0, 5.0, 1.0, "half_cauchy"),
    "k5_hn_tau_small": ([0.21, 0.18, 0.25, 0.19, 0.22], [0.1, 0.12, 0.08, 0.1, 0.15], 0.0, 1.0,
                        0.5, "half_normal"),
    "k10_hc": (list(np.random.default_rng(3).normal(2.0, 1.5, 10)),
               list(np.random.default_rng(4).uniform(0.3, 1.2, 10)), 0.0, 10.0, 1.0,
               "half_cauchy"),
    "schools_hn": (SCHOOLS_Y, SCHOOLS_S, 0.0, 10.0, 5.0, "half_normal"),
    "schools_hc": (SCHOOLS_Y, SCHOOLS_S, 0.0, 10.0, 5.0, "half_cauchy"),
    "geo_log_hn": (_geo_y(), np.full(7, 0.02), 0.0, 1.0, 0.5, "half_normal"),
    "geo_log_hc": (_geo_y(), np.full(7, 0.02), 0.0, 1.0, 0.5, "half_cauchy"),
    "k3_exp": ([1.0, 4.5, -2.3], [0.5, 0.8, 1.0], 0.0, 5.0, 1.0, "exponential"),
    "schools_exp": (SCHOOLS_Y, SCHOOLS_S, 0.0, 10.0, 5.0, "exponential"),
    "geo_log_exp": (_geo_y(), np.full(7, 0.02), 0.0, 1.0, 0.5, "exponential"),
}


def _exact(case, **kw) -> ExactPosterior:
    y, s, m0, sd0, scale, family = CASES[case]
    return exact_posterior(y, s, mu_mean=m0, mu_sd=sd0, tau_scale=scale, tau_family=family, **kw)


@pytest.fixture(scope="module")
def grids():
    cache: dict[str, Grid2D] = {}

    def get(case):
        if case not in cache:
            cache[case] = Grid2D(*CASES[case])
        return cache[case]

    return get


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case", sorted(CASES))
def test_mu_and_tau_match_brute_force_grid(case, grids):
    """Agreement is ~1e-8 (moments) and ~1e-6 (quantiles) of the sd; asserted at 1e-4."""
    grid, post = grids(case), _exact(case)
    for name in ("mu", "tau"):
        summary, ref = getattr(post, name), grid.summary(name)
        tol = 1e-4 * ref["sd"]
        assert summary.mean == pytest.approx(ref["mean"], abs=tol)
        assert summary.sd == pytest.approx(ref["sd"], rel=1e-4)
        assert summary.prob_positive == pytest.approx(ref["prob_positive"], abs=1e-5)
        np.testing.assert_allclose(post.quantiles(name, QS), grid.quantiles(name, QS), rtol=0,
                                   atol=tol)
        np.testing.assert_allclose([summary.median, summary.lower, summary.upper],
                                   grid.quantiles(name, [0.5, 0.025, 0.975]), rtol=0, atol=tol)


@pytest.mark.parametrize("case", ["k3_hc_tau_large", "schools_hn", "geo_log_hc"])
def test_theta_and_future_match_monte_carlo_from_grid(case, grids):
    grid, post = grids(case), _exact(case)
    y, s = np.asarray(CASES[case][0], float), np.asarray(CASES[case][1], float)
    rng = np.random.default_rng(11)
    n = 200_000
    mu, tau = grid.sample(rng, n)
    draws = {"future_true_effect": rng.normal(mu, tau)}
    for i in range(y.size):
        prec = 1 / s[i] ** 2 + 1 / tau**2
        mean = (y[i] / s[i] ** 2 + mu / tau**2) / prec
        draws[f"theta[{i}]"] = rng.normal(mean, 1 / np.sqrt(prec))
    for name, x in draws.items():
        summary = post.summary(name)
        sd = x.std()
        assert abs(summary.mean - x.mean()) < 4.5 * sd / np.sqrt(n), name
        kurt = stats.kurtosis(x)  # SE of the sd depends on the tails
        assert abs(summary.sd - sd) < 4.5 * sd * np.sqrt((2 + kurt) / (4 * n)), name
        # Each exact quantile should sit at its probability in the Monte Carlo CDF.
        q_exact = post.quantiles(name, QS)
        hit = (x[:, None] <= q_exact).mean(axis=0)
        np.testing.assert_array_less(np.abs(hit - QS), 4.5 * np.sqrt(QS * (1 - QS) / n))
        ppos_se = np.sqrt(summary.prob_positive * (1 - summary.prob_positive) / n)
        assert abs((x > 0).mean() - summary.prob_positive) < 4.5 * ppos_se + 1e-12


@pytest.mark.parametrize("family", ["half_normal", "half_cauchy", "exponential"])
def test_intervals_are_calibrated_under_the_prior(family):
    rng = np.random.default_rng(20240607)
    n_sets, k = 2000, 4
    m0, sd0, scale = 0.0, 1.0, 0.5
    hits = np.zeros((4, n_sets), bool)
    for d in range(n_sets):
        mu = rng.normal(m0, sd0)
        tau = {"half_normal": lambda: abs(rng.normal(0, scale)), "half_cauchy": lambda: abs(
            scale * rng.standard_cauchy()), "exponential": lambda: scale * rng.standard_exponential()}[family]()
        s = rng.uniform(0.1, 0.6, k)
        theta = rng.normal(mu, tau, k)
        y = rng.normal(theta, s)
        new = rng.normal(mu, tau)
        post = exact_posterior(y, s, mu_mean=m0, mu_sd=sd0, tau_scale=scale, tau_family=family)
        for row, (summary, truth) in enumerate(
            [(post.mu, mu), (post.tau, tau), (post.theta[0], theta[0]),
             (post.future_true_effect, new)]
        ):
            hits[row, d] = summary.lower <= truth <= summary.upper
    binomial_sd = np.sqrt(0.95 * 0.05 / n_sets)
    np.testing.assert_array_less(np.abs(hits.mean(axis=1) - 0.95), 3.5 * binomial_sd)


def test_log_marginal_tau_matches_multivariate_normal():
    y, s, m0, sd0 = SCHOOLS_Y, SCHOOLS_S, 1.0, 10.0
    taus = np.array([0.0, 0.3, 5.0, 40.0])
    loglik, mean, var = log_marginal_tau(taus, y, s, m0, sd0)
    for tau, ll, m, v in zip(taus, loglik, mean, var, strict=True):
        cov = np.diag(tau**2 + s**2) + sd0**2
        assert ll == pytest.approx(stats.multivariate_normal(np.full(8, m0), cov).logpdf(y))
        w = 1 / (tau**2 + s**2)
        assert 1 / v == pytest.approx(1 / sd0**2 + w.sum())
        assert m == pytest.approx((m0 / sd0**2 + w @ y) * v)


TAU_PRIORS = {  # scipy's densities, written out independently of families.py
    "half_normal": lambda tau, scale: stats.halfnorm.logpdf(tau, scale=scale),
    "half_cauchy": lambda tau, scale: stats.halfcauchy.logpdf(tau, scale=scale),
    "exponential": lambda tau, scale: stats.expon.logpdf(tau, scale=scale),
}


@pytest.mark.parametrize("family", sorted(TAU_PRIORS))
@pytest.mark.parametrize(("y", "s", "mu", "scale"), [
    (SCHOOLS_Y, SCHOOLS_S, 0.0, 25.0),  # bayesmeta's eight schools, mu = 0
    (SCHOOLS_Y, SCHOOLS_S, 8.0, 5.0),
    ([0.05, 0.12, -0.02], [0.03, 0.04, 0.05], 0.0, 0.5),
    ([2.0, 2.1], [0.1, 0.1], 0.0, 0.1),  # mu = 0 reached only through a tau far in the prior's tail
])
def test_log_evidence_at_mu_matches_quad(family, y, s, mu, scale):
    """log p(y | mu) = log ∫ p(tau) prod N(y_i | mu, tau² + s_i²) dtau, by scipy's adaptive quad
    on log tau around the integrand's peak (found by a bounded search)."""
    y, s = np.asarray(y, float), np.asarray(s, float)

    def log_f(t):
        tau = np.exp(t)
        return (TAU_PRIORS[family](tau, scale) + t
                + stats.norm.logpdf(y, mu, np.sqrt(tau**2 + s**2)).sum())

    peak = optimize.minimize_scalar(lambda t: -log_f(t), bounds=(-30.0, 15.0), method="bounded")
    top = log_f(peak.x)
    below, _ = integrate.quad(lambda t: np.exp(log_f(t) - top), -60.0, peak.x, limit=400, epsabs=0, epsrel=1e-11)
    above, _ = integrate.quad(lambda t: np.exp(log_f(t) - top), peak.x, 40.0, limit=400, epsabs=0, epsrel=1e-11)
    expected = top + np.log(below + above)
    got = log_evidence_at_mu(mu, y, s, tau_scale=scale, tau_family=family)
    assert got == pytest.approx(expected, abs=1e-6)


def test_log_evidence_at_mu_rejects_bad_input():
    with pytest.raises(ValueError, match="se must be finite"):
        log_evidence_at_mu(0.0, [1.0], [0.0], tau_scale=1.0)
    with pytest.raises(ValueError, match="tau_scale"):
        log_evidence_at_mu(0.0, [1.0], [1.0], tau_scale=-1.0)


def test_fixed_effect_limit():
    y = np.array([1.0, 1.2, 0.8, 1.1, 0.95])
    s = np.array([0.5, 0.3, 0.4, 0.6, 0.2])
    post = exact_posterior(y, s, mu_mean=0.0, mu_sd=1e6, tau_scale=1e-6)
    w = 1 / s**2
    mean, sd = w @ y / w.sum(), 1 / np.sqrt(w.sum())
    assert post.mu.mean == pytest.approx(mean, rel=1e-6)
    assert post.mu.sd == pytest.approx(sd, rel=1e-6)
    z = stats.norm.ppf(0.975)
    assert post.mu.lower == pytest.approx(mean - z * sd, rel=1e-6)
    assert post.mu.upper == pytest.approx(mean + z * sd, rel=1e-6)
    assert post.mu.prob_positive == pytest.approx(stats.norm.cdf(mean / sd), abs=1e-9)
    assert post.tau.mean == pytest.approx(1e-6 * np.sqrt(2 / np.pi), rel=1e-3)  # ~ the prior
    for theta in post.theta:  # tau ~ 0 pools every theta_i onto mu
        assert theta.mean == pytest.approx(mean, rel=1e-5)
        assert theta.sd == pytest.approx(sd, rel=1e-4)


def test_single_study_and_heavy_tail():
    post = exact_posterior([0.3], [0.2], mu_mean=0, mu_sd=1, tau_scale=0.5,
                           tau_family="half_cauchy")
    assert np.isinf(post.tau.sd) and np.isinf(post.future_true_effect.sd)  # tau | y ~ tau^-3
    assert np.isfinite(post.tau.mean) and np.isfinite(post.mu.sd)
    post = exact_posterior([0.3], [0.2], mu_mean=0, mu_sd=1, tau_scale=0.5)
    assert np.isfinite(post.tau.sd) and post.tau.lower < post.tau.median < post.tau.upper


@pytest.mark.parametrize("case", sorted(CASES))
def test_grid_doubling_changes_nothing(case):
    a, b = _exact(case), _exact(case, grid_size=128)
    for name in ["mu", "tau", "future_true_effect", "theta[0]", "theta[1]"]:
        sa, sb = a.summary(name), b.summary(name)
        for f in FIELDS:
            assert abs(getattr(sa, f) - getattr(sb, f)) <= 1e-6 * sa.sd, (name, f)
        np.testing.assert_allclose(a.quantiles(name, QS), b.quantiles(name, QS),
                                   rtol=0, atol=1e-6 * sa.sd)


def test_grid_doubling_for_many_studies_near_zero_tau():
    rng = np.random.default_rng(5)
    s = rng.uniform(0.05, 0.2, 3000)
    y = rng.normal(0.1, s)
    a = exact_posterior(y, s, mu_mean=0, mu_sd=1, tau_scale=0.5)
    b = exact_posterior(y, s, mu_mean=0, mu_sd=1, tau_scale=0.5, grid_size=128)
    for name in ["mu", "tau", "future_true_effect", "theta[7]"]:
        sa, sb = a.summary(name), b.summary(name)
        for f in FIELDS:
            assert abs(getattr(sa, f) - getattr(sb, f)) <= 1e-6 * sa.sd, (name, f)


def test_api_shapes_and_quantile_consistency():
    post = _exact("schools_hn", interval=0.9)
    assert isinstance(post.mu, Summary) and len(post.theta) == 8
    assert post.interval == 0.9
    assert post.mu.quantile(0.05) == pytest.approx(post.mu.lower, abs=1e-9)
    assert post.tau.quantile(0.95) == pytest.approx(post.tau.upper, rel=1e-9)
    assert post.quantiles("theta[3]", [0.5])[0] == pytest.approx(post.theta[3].median, abs=1e-9)
    qs = np.linspace(0.01, 0.99, 25)
    for name in ["mu", "tau", "future_true_effect", "theta[7]"]:
        assert np.all(np.diff(post.quantiles(name, qs)) > 0)
    assert post.tau.prob_positive == 1.0
    assert post.tau_weights.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        post.quantiles("theta[8]", [0.5])
    with pytest.raises(ValueError):
        post.quantiles("sigma", [0.5])
    with pytest.raises(ValueError):
        post.mu.quantile(1.0)


def test_large_k_is_fast_and_accurate():
    rng = np.random.default_rng(7)
    k = 100_000
    s = rng.uniform(0.01, 0.04, k)
    y = rng.normal(rng.normal(0.05, 0.1, k), s)
    start = time.perf_counter()
    post = exact_posterior(y, s, mu_mean=0, mu_sd=1, tau_scale=0.5)
    elapsed = time.perf_counter() - start
    assert elapsed < 30  # typically ~2 s
    assert len(post.theta) == k
    assert post.tau.mean == pytest.approx(0.1, rel=0.02)
    assert post.mu.mean == pytest.approx(0.05, abs=0.002)
    assert np.isfinite([post.theta[-1].lower, post.theta[-1].upper]).all()


def test_small_k_runs_in_milliseconds():
    rng = np.random.default_rng(8)
    s = rng.uniform(0.5, 1.0, 1000)
    y = rng.normal(0.3, 1.0, 1000)
    exact_posterior(y, s, mu_mean=0, mu_sd=1, tau_scale=0.5)
    start = time.perf_counter()
    exact_posterior(y, s, mu_mean=0, mu_sd=1, tau_scale=0.5)
    assert time.perf_counter() - start < 1.0  # typically ~20 ms


SHAPES = "y and se must be 1-D and of equal length"
POSITIVE = "must be finite and > 0"


@pytest.mark.parametrize(
    "y, se, kw, message",
    [
        ([], [], {}, "need at least one study"),
        ([1.0, np.nan], [1.0, 1.0], {}, "y must be finite"),
        ([1.0, np.inf], [1.0, 1.0], {}, "y must be finite"),
        ([1.0, 2.0], [1.0, 0.0], {}, "se " + POSITIVE),
        ([1.0, 2.0], [1.0, -1.0], {}, "se " + POSITIVE),
        ([1.0, 2.0], [1.0, np.nan], {}, "se " + POSITIVE),
        ([1.0, 2.0], [1.0], {}, SHAPES),
        ([[1.0, 2.0]], [[1.0, 1.0]], {}, SHAPES),
        ([[1.0, 2.0]], [1.0, 1.0], {}, SHAPES),  # one of them 2-D, the sizes equal
        ([1.0, 2.0], [[1.0, 1.0]], {}, SHAPES),
        ([1.0], [1.0], {"mu_sd": 0.0}, "mu_sd " + POSITIVE),
        ([1.0], [1.0], {"mu_sd": np.inf}, "mu_sd " + POSITIVE),
        ([1.0], [1.0], {"tau_scale": -1.0}, "tau_scale " + POSITIVE),
        ([1.0], [1.0], {"tau_scale": np.nan}, "tau_scale " + POSITIVE),
        ([1.0], [1.0], {"mu_mean": np.nan}, "mu_mean must be finite"),
        ([1.0], [1.0], {"tau_family": "half_laplace"},
         "unknown tau prior family 'half_laplace'; known: half_normal, half_cauchy, exponential"),
        ([1.0], [1.0], {"interval": 1.0}, "interval must lie strictly between 0 and 1"),
        ([1.0], [1.0], {"interval": 0.0}, "interval must lie strictly between 0 and 1"),
        ([1.0], [1.0], {"grid_size": 3}, "grid_size must be an integer >= 8"),
        ([1.0], [1.0], {"grid_size": 8.5}, "grid_size must be an integer >= 8"),
    ],
)
def test_bad_inputs_raise(y, se, kw, message):
    """Each check of the input, with its own message (the exact text: the caller shows it)."""
    args = {"mu_mean": 0.0, "mu_sd": 1.0, "tau_scale": 0.5} | kw
    with pytest.raises(ValueError) as err:
        exact_posterior(y, se, **args)
    assert str(err.value) == message


def test_inputs_at_the_edge_of_validity_are_accepted():
    """The smallest grid (8 nodes), intervals close to 0 and 1, and one study."""
    for kw in ({"grid_size": 8}, {"interval": 1e-6}, {"interval": 1 - 1e-6}, {"grid_size": 8.0}):
        post = exact_posterior([0.3], [0.2], mu_mean=0.0, mu_sd=1.0, tau_scale=0.5, **kw)
        assert np.isfinite(post.mu.mean)


def test_quantile_probabilities_outside_the_open_unit_interval_are_refused():
    post = exact_posterior(SCHOOLS_Y, SCHOOLS_S, mu_mean=0.0, mu_sd=50.0, tau_scale=25.0)
    for bad in ([0.0], [1.0], [0.5, 1.2], [[0.2, 0.4]]):
        with pytest.raises(ValueError) as err:
            post.mu.quantiles(bad)
        assert str(err.value) == "quantile probabilities must lie strictly between 0 and 1"
    for bad in ("theta[8]", "sigma", "theta[x]"):
        with pytest.raises(ValueError) as err:
            post.summary(bad)
        assert str(err.value) == f"unknown parameter {bad!r}"


def test_log_evidence_at_mu_defaults_and_grid_size():
    """The default tau family is half-normal; a finer grid (grid_size) gives the same integral and a
    grid_size below 8 is refused, as for exact_posterior."""
    kw = {"tau_scale": 5.0}
    half_normal = log_evidence_at_mu(0.0, SCHOOLS_Y, SCHOOLS_S, tau_family="half_normal", **kw)
    assert log_evidence_at_mu(0.0, SCHOOLS_Y, SCHOOLS_S, **kw) == half_normal
    assert log_evidence_at_mu(0.0, SCHOOLS_Y, SCHOOLS_S, tau_family="half_cauchy", **kw) != pytest.approx(half_normal)
    fine = log_evidence_at_mu(0.0, SCHOOLS_Y, SCHOOLS_S, grid_size=256, **kw)
    assert fine == pytest.approx(half_normal, abs=1e-8) and fine != half_normal  # another grid, the same value
    with pytest.raises(ValueError, match="grid_size must be an integer >= 8"):
        log_evidence_at_mu(0.0, SCHOOLS_Y, SCHOOLS_S, grid_size=4, **kw)


@pytest.mark.parametrize("family", ["half_normal", "half_cauchy"])
def test_evidence_and_tau_second_moment_match_scipy(family):
    """log p(y) (exact_posterior's log_evidence) and E[tau² | y] (the quadrature rule's tau2_mean,
    which the meta-regression uses) against scipy's adaptive quad of the literal densities: y's
    multivariate normal given tau (mu integrated: covariance diag(tau² + s²) + mu_sd² 11') times
    the tau prior. Half-Cauchy with 3 studies has a finite E[tau²]; with 1 study it is infinite."""
    from marketbayesmeta.runtime.exact import _probabilities, quadrature_nodes

    y, s, m0, sd0, scale = SCHOOLS_Y[:3], SCHOOLS_S[:3], 1.0, 20.0, 10.0
    prior = TAU_PRIORS[family]

    def joint(tau):
        cov = np.diag(tau**2 + s**2) + sd0**2
        return np.exp(stats.multivariate_normal(np.full(3, m0), cov).logpdf(y) + prior(tau, scale))

    evidence, _ = integrate.quad(joint, 0, np.inf, limit=400, epsabs=0, epsrel=1e-10)
    tau2, _ = integrate.quad(lambda t: t**2 * joint(t), 0, np.inf, limit=400, epsabs=0, epsrel=1e-10)
    post = exact_posterior(y, s, mu_mean=m0, mu_sd=sd0, tau_scale=scale, tau_family=family)
    assert post.log_evidence == pytest.approx(np.log(evidence), abs=1e-6)
    g = post._grid
    nodes = quadrature_nodes(g.t, g.lg, g.mean, g.var, g.density, _probabilities(0.95), False)
    assert nodes.tau2_mean == pytest.approx(tau2 / evidence, rel=1e-5)
    assert nodes.log_integral + np.log(2 / np.pi) * (0.5 if family == "half_normal" else 1.0) - np.log(scale) \
        == pytest.approx(post.log_evidence, abs=1e-12)
    one = exact_posterior(y[:1], s[:1], mu_mean=m0, mu_sd=sd0, tau_scale=scale, tau_family="half_cauchy")
    g1 = one._grid
    assert quadrature_nodes(g1.t, g1.lg, g1.mean, g1.var, g1.density, _probabilities(0.95), True).tau2_mean == np.inf


def _tau_posterior_quad(y, s, m0, sd0, scale, family, log_g):
    """E[g(tau, m, v) | y] (m, v: mu's moments given tau) on a fine uniform grid in log tau (200,001 nodes over 1e-9..1e5 times the prior
    scale, in logs) of the literal densities: y's multivariate normal given tau (mu integrated:
    covariance diag(tau² + s²) + mu_sd² 11') times the tau prior times the Jacobian tau."""
    y, s = np.asarray(y, float), np.asarray(s, float)
    t = np.linspace(np.log(scale) - 21, np.log(scale) + 12, 200_001)
    tau = np.exp(t)
    v = tau[:, None] ** 2 + s**2  # the closed form of the MVN with a rank-one mu term (Sherman-Morrison)
    w = 1 / v
    prec = 1 / sd0**2 + w.sum(axis=1)
    quad = (w * y**2).sum(axis=1) + m0**2 / sd0**2 - (w @ y + m0 / sd0**2) ** 2 / prec
    loglik = -0.5 * (y.size * np.log(2 * np.pi) + np.log(v).sum(axis=1) + np.log(sd0**2 * prec) + quad)
    log_post = loglik + TAU_PRIORS[family](tau, scale) + t
    m, v = (w @ y + m0 / sd0**2) / prec, 1 / prec  # mu | tau, y
    return float(np.exp(special.logsumexp(log_post + log_g(tau, m, v)) - special.logsumexp(log_post)))


@pytest.mark.parametrize("case", ["schools_hn", "k3_exp", "geo_log_hn"])
def test_expectation_matches_a_fine_grid_in_log_tau(case):
    """ExactPosterior.expectation against a fine grid of the literal densities: E[exp(a·mu)]; E[tau²]
    and E[1] at once (an (G, 2) log g); E[exp(c·tau)], which moves mass above the posterior's own
    grid (the grid is extended)."""
    y, s, m0, sd0, scale, family = CASES[case]
    post = _exact(case)
    # E[exp(a·mu)]: g = E[exp(a·mu) | tau] = exp(a·m + a²·v/2); a = 1 is the per-cent lift of a log
    # effect. (A tilt of many posterior sds is dominated by far tau nodes where v reaches mu's prior
    # variance; the engine's coarse extension is not meant for those and misses them by ~15 %.)
    a = min(1.0, 0.3 / post.mu.sd)

    def tilt(tau, m, v):
        return a * m + a**2 * v / 2

    assert post.expectation(tilt) == pytest.approx(_tau_posterior_quad(y, s, m0, sd0, scale, family, tilt), rel=1e-6)
    both = post.expectation(lambda tau, m, v: np.stack([2 * np.log(tau), np.zeros_like(tau)], axis=1))
    assert both.shape == (2,)
    assert both[0] == pytest.approx(_tau_posterior_quad(y, s, m0, sd0, scale, family, lambda t, m, v: 2 * np.log(t)),
                                    rel=1e-6)
    assert both[1] == pytest.approx(1.0, rel=1e-12)
    c = 2.0 / post.tau.quantile(0.99)  # exp(c·tau) grows by e^2 across tau's 99 % range
    assert post.expectation(lambda tau, m, v: c * tau) == pytest.approx(
        _tau_posterior_quad(y, s, m0, sd0, scale, family, lambda t, m, v: c * t), rel=1e-6)


def test_expectation_of_a_moment_that_does_not_exist_is_infinite():
    """Half-Cauchy, one study: the posterior of tau falls like tau^-3, so E[tau²] is infinite."""
    post = exact_posterior([0.5], [0.3], mu_mean=0.0, mu_sd=1.0, tau_scale=0.5, tau_family="half_cauchy")
    assert post.expectation(lambda tau, m, v: 2 * np.log(tau)) == np.inf
    root = post.expectation(lambda tau, m, v: 0.5 * np.log(tau))  # E[tau^0.5] exists
    assert np.isfinite(root)
    both = post.expectation(lambda tau, m, v: np.stack([2 * np.log(tau), 0.5 * np.log(tau)], axis=-1))
    assert both[0] == np.inf and both[1] == pytest.approx(root, rel=1e-12)  # one diverging, one not
    # each function's decay is judged against its own peak: a diverging one far below another's
    # scale is still seen diverging
    scaled = post.expectation(lambda tau, m, v: np.stack([np.zeros_like(tau), 2 * np.log(tau) - 200.0], axis=-1))
    assert scaled[0] == pytest.approx(1.0, rel=1e-12) and scaled[1] == np.inf


def test_expectation_extends_the_grid_without_numpy_warnings():
    """Far out, tau² overflows in the density (it is then -inf, not a number): no warning reaches a
    caller, who may run with warnings as errors."""
    import warnings

    post = exact_posterior([0.5], [0.3], mu_mean=0.0, mu_sd=1.0, tau_scale=0.5, tau_family="half_cauchy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert post.expectation(lambda tau, m, v: 2 * np.log(tau)) == np.inf


def test_exponential_moment_is_finite_follows_the_prior_tail():
    """E[exp(c·tau^p)]: a half-normal prior (tail exp(-tau²/(2 scale²))) allows p < 2, and p = 2 with
    c < 1/(2 scale²) (at equality only with k > 1 studies, whose likelihood adds tau^-k); an
    exponential prior (tail exp(-tau/scale)) allows p < 1 and c < 1/scale; half-Cauchy allows none."""
    def post(family, k, scale=2.0):
        return exact_posterior(np.linspace(0, 1, k), np.full(k, 0.5), mu_mean=0.0, mu_sd=1.0, tau_scale=scale,
                               tau_family=family)

    hn3, hn1 = post("half_normal", 3), post("half_normal", 1)
    assert hn3.exponential_moment_is_finite(0.1, 2.0) and not hn3.exponential_moment_is_finite(0.2, 2.0)
    assert hn3.exponential_moment_is_finite(0.125, 2.0) and not hn1.exponential_moment_is_finite(0.125, 2.0)
    assert hn3.exponential_moment_is_finite(50.0, 1.0) and not hn3.exponential_moment_is_finite(1e-6, 3.0)
    ex = post("exponential", 3)
    assert ex.exponential_moment_is_finite(0.4, 1.0) and not ex.exponential_moment_is_finite(0.6, 1.0)
    assert ex.exponential_moment_is_finite(5.0, 0.5) and not ex.exponential_moment_is_finite(1e-6, 2.0)
    assert not post("half_cauchy", 5).exponential_moment_is_finite(1e-6, 0.5)


def test_theta_components_and_normal_mixture():
    """theta_i | tau, y is N(B y_i + (1 − B) m, B s_i² + (1 − B)² v) with B = tau²/(tau² + s_i²)
    (m, v: mu's conditional moments), by hand; mixing them with normal_mixture gives theta_i's own
    summary, and mixing mu's components gives mu's. The interval is the posterior's (here 80 %)."""
    post = exact_posterior(SCHOOLS_Y, SCHOOLS_S, mu_mean=0.0, mu_sd=20.0, tau_scale=10.0, interval=0.8)
    tau, m, v = post.tau_nodes, post.mu_cond_mean, post.mu_cond_var
    for i in (0, 3, 7):
        b = tau**2 / (tau**2 + SCHOOLS_S[i] ** 2)
        mean, var = post.theta_components(i)
        np.testing.assert_allclose(mean, b * SCHOOLS_Y[i] + (1 - b) * m, rtol=1e-12)
        np.testing.assert_allclose(var, b * SCHOOLS_S[i] ** 2 + (1 - b) ** 2 * v, rtol=1e-12)
        mixed = post.normal_mixture(mean, var)
        for key in FIELDS:
            assert getattr(mixed, key) == pytest.approx(getattr(post.theta[i], key), rel=1e-9), (i, key)
    mu = post.normal_mixture(m, v)
    assert (mu.lower, mu.upper) == (pytest.approx(post.mu.quantile(0.1)), pytest.approx(post.mu.quantile(0.9)))
    assert post.normal_mixture(m, v + tau**2, infinite_var=True).sd == np.inf
    assert np.isfinite(post.normal_mixture(m, v + tau**2).sd)


def test_tau_quantiles_below_the_grid_follow_the_density_at_zero():
    """Below the grid's first node the density of tau is flat (all three priors have a finite,
    positive density at 0), so P(tau <= x) = p(0)·x there and the q-quantile is q / p(0), with
    p(0) = prior(0)·p(y | tau = 0) / p(y) from the literal densities on a fine grid in log tau."""
    y, s, m0, sd0, scale = SCHOOLS_Y, SCHOOLS_S, 0.0, 20.0, 10.0
    for family in ("half_normal", "half_cauchy", "exponential"):
        post = exact_posterior(y, s, mu_mean=m0, mu_sd=sd0, tau_scale=scale, tau_family=family)
        t = np.linspace(np.log(scale) - 21, np.log(scale) + 12, 200_001)

        def log_joint(tau, family=family):
            v = np.asarray(tau, float)[:, None] ** 2 + s**2
            return multivariate_normal_loglik(y, v, m0, sd0) + TAU_PRIORS[family](tau, scale)

        log_z = special.logsumexp(log_joint(np.exp(t)) + t) + np.log(t[1] - t[0])
        p0 = float(np.exp(log_joint(np.array([0.0]))[0] - log_z))
        for q in (1e-13, 1e-11):
            assert post.tau.quantile(q) == pytest.approx(q / p0, rel=1e-6), (family, q)


def multivariate_normal_loglik(y, v, m0, sd0):
    """log N(y; m0 1, diag(v) + sd0² 11') for rows of variances ``v`` (G, K), by Sherman–Morrison."""
    w = 1 / v
    prec = 1 / sd0**2 + w.sum(axis=1)
    quad = (w * y**2).sum(axis=1) + m0**2 / sd0**2 - (w @ y + m0 / sd0**2) ** 2 / prec
    return -0.5 * (y.size * np.log(2 * np.pi) + np.log(v).sum(axis=1) + np.log(sd0**2 * prec) + quad)


def test_grid_size_is_honoured():
    """grid_size sets the node spacing: a coarse grid moves the numbers a little (quadrature error),
    a finer one than the default agrees with it to many digits."""
    kw = dict(mu_mean=0.0, mu_sd=20.0, tau_scale=10.0)
    default = exact_posterior(SCHOOLS_Y, SCHOOLS_S, **kw)
    coarse = exact_posterior(SCHOOLS_Y, SCHOOLS_S, grid_size=8, **kw)
    fine = exact_posterior(SCHOOLS_Y, SCHOOLS_S, grid_size=256, **kw)
    assert coarse.mu.sd != default.mu.sd and coarse.mu.sd == pytest.approx(default.mu.sd, rel=1e-2)
    assert fine.mu.sd == pytest.approx(default.mu.sd, rel=1e-9)


def test_the_posterior_records_its_priors():
    """exact_tables reads the priors back (Bayes factors, prior checks): every key, as floats."""
    post = exact_posterior([1, 2, 3], [1, 1, 2], mu_mean=0, mu_sd=5, tau_scale=2, tau_family="exponential")
    assert post.priors == {"mu_mean": 0.0, "mu_sd": 5.0, "tau_scale": 2.0, "tau_family": "exponential"}
    assert all(type(post.priors[k]) is float for k in ("mu_mean", "mu_sd", "tau_scale"))


def test_log_marginal_tau_in_chunks_matches_one_piece():
    """More nodes x studies than one work array holds (2e6 elements): computed chunk by chunk, every
    node's value is the one-piece closed form."""
    rng = np.random.default_rng(5)
    k = 1000
    y, s = rng.normal(0.1, 0.3, k), rng.uniform(0.1, 0.5, k)
    taus = np.exp(np.linspace(-8, 3, 2500))  # 2.5e6 elements: two chunks
    loglik, mean, var = log_marginal_tau(taus, y, s, 0.2, 1.5)
    v = taus[:, None] ** 2 + s**2
    np.testing.assert_allclose(loglik, multivariate_normal_loglik(y, v, 0.2, 1.5), rtol=1e-12)
    prec = 1 / 1.5**2 + (1 / v).sum(axis=1)
    np.testing.assert_allclose(var, 1 / prec, rtol=1e-12)
    np.testing.assert_allclose(mean, (0.2 / 1.5**2 + (y / v).sum(axis=1)) / prec, rtol=1e-12)


def test_a_moment_that_does_not_exist_is_infinite_on_a_coarse_grid_too():
    """With grid_size <= 32 the extension reaches tau = e^700, where tau overflows: those nodes have
    no mass and must not turn the sum into NaN (-inf weight + inf g)."""
    post = exact_posterior([0.5], [0.3], mu_mean=0.0, mu_sd=1.0, tau_scale=0.5, tau_family="half_cauchy",
                           grid_size=8)
    assert post.expectation(lambda tau, m, v: 2 * np.log(tau)) == np.inf

