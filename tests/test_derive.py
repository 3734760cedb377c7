"""runtime.posterior.derive (the derived draws in posterior.nc and the MCMC summaries) against the
conditional distributions computed by brute force.

At fixed (mu, tau), theta_i | mu, tau, y_i has density ∝ N(theta; mu, tau²) · N(y_i; theta, s_i²):
its mean and sd are computed here by quadrature on a fine theta grid (no closed form), and the
draws ``derive`` makes at those (mu, tau) must match them within Monte Carlo error. Likewise
y_rep_i ~ theta_i + N(0, s_i²) and future ~ N(mu, tau²). The shrinkage derive reports is the weight
of mu in theta's conditional mean, read off the grid mean: (y − E[theta]) / (y − mu).

(Issue 17: a wrong conditional sd or an inverted shrinkage weight here was caught only by the
statistical suite, or not at all.)
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from marketbayesmeta.runtime.posterior import derive

Y = np.array([0.12, -0.05, 0.30])
SE = np.array([0.05, 0.20, 0.10])
N = 50_000  # draws per chain, 4 chains
Z = 5.0  # Monte Carlo standard errors allowed


def grid_moments(mu: float, tau: float, y: float, s: float) -> tuple[float, float]:
    """Mean and sd of theta | mu, tau, y by quadrature of prior × likelihood on a fine grid."""
    width = 12 * max(tau, s)
    theta = np.linspace(min(mu, y) - width, max(mu, y) + width, 400_001)
    dens = stats.norm.pdf(theta, mu, tau) * stats.norm.pdf(y, theta, s)
    dens /= dens.sum()
    mean = float(dens @ theta)
    return mean, float(np.sqrt(dens @ (theta - mean) ** 2))


@pytest.mark.parametrize(("mu", "tau"), [(0.05, 0.02), (0.05, 0.15), (-0.1, 0.4)])
def test_theta_yrep_future_draws_match_the_brute_force_conditionals(mu: float, tau: float) -> None:
    d = derive(np.full((4, N), mu), np.full((4, N), tau), Y, SE, seed=5)
    n = 4 * N
    assert d.theta.shape == d.y_rep.shape == (4, N, Y.size)
    for i, (y, s) in enumerate(zip(Y, SE, strict=True)):
        mean, sd = grid_moments(mu, tau, y, s)
        theta = d.theta[..., i].reshape(-1)
        assert abs(theta.mean() - mean) < Z * sd / np.sqrt(n), (i, theta.mean(), mean)
        assert abs(theta.std() - sd) < Z * sd / np.sqrt(2 * n), (i, theta.std(), sd)
        rep_sd = np.hypot(sd, s)  # y_rep = theta + independent N(0, s²)
        rep = d.y_rep[..., i].reshape(-1)
        assert abs(rep.mean() - mean) < Z * rep_sd / np.sqrt(n)
        assert abs(rep.std() - rep_sd) < Z * rep_sd / np.sqrt(2 * n)
        # the shrinkage column: mu's weight in theta's conditional mean
        assert float(d.shrinkage[..., i].mean()) == pytest.approx((y - mean) / (y - mu), rel=1e-6)
    future = d.future.reshape(-1)
    assert abs(future.mean() - mu) < Z * tau / np.sqrt(n)
    assert abs(future.std() - tau) < Z * tau / np.sqrt(2 * n)


def test_tau_zero_puts_every_theta_at_mu() -> None:
    mu = np.array([[0.01, 0.2, -0.3]])
    d = derive(mu, np.zeros_like(mu), Y, SE, seed=1)
    np.testing.assert_array_equal(d.theta, np.broadcast_to(mu[..., None], d.theta.shape))
    np.testing.assert_array_equal(d.shrinkage, np.ones_like(d.shrinkage))


def test_draws_are_seeded() -> None:
    mu, tau = np.full((2, 10), 0.1), np.full((2, 10), 0.2)
    a, b, c = derive(mu, tau, Y, SE, seed=3), derive(mu, tau, Y, SE, seed=3), derive(mu, tau, Y, SE, seed=4)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, c.theta)
