"""runtime/posterior.py on small hand-checked inputs: the summary of a set of draws (every key and
value), the per-cent equivalents of a log-relative summary, double precision whatever the draws'
dtype, and derive's draws as the documented transformation of its seeded generator's normals.

test_derive.py checks derive's distributions by quadrature; here the exact stream is checked (the
same seed gives the same posterior.nc), against the precision-weighted form of the normal-normal
conditional (1/sd² = 1/s² + 1/tau², mean = sd² (y/s² + mu/tau²)), not the code's shrinkage form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marketbayesmeta.runtime.posterior import derive, pct, summarize


def test_summarize_every_key_by_hand() -> None:
    # 2 chains × 4 draws: -1, 0, 0, 2 | 3, 4, 5, 7
    x = np.array([[-1.0, 0.0, 0.0, 2.0], [3.0, 4.0, 5.0, 7.0]])
    s = summarize(x, 0.5)
    flat = [-1.0, 0.0, 0.0, 2.0, 3.0, 4.0, 5.0, 7.0]
    mean = sum(flat) / 8  # 2.5
    sd = math.sqrt(sum((v - mean) ** 2 for v in flat) / 7)
    # quantiles (linear interpolation at (n − 1) p): p = 0.25 → position 1.75 of the sorted draws
    # (0, 0) → 0; p = 0.5 → 3.5: (2 + 3) / 2; p = 0.75 → 5.25: 4 + 0.25 · (5 − 4)
    assert s == {"mean": mean, "sd": pytest.approx(sd, rel=1e-15), "median": 2.5, "lower": 0.0, "upper": 4.25,
                 "interval_level": 0.5, "prob_positive": 5 / 8}  # zero draws are not positive
    assert list(s) == ["mean", "sd", "median", "lower", "upper", "interval_level", "prob_positive"]


def test_pct_by_hand() -> None:
    summary = {"median": math.log(1.1), "lower": math.log(0.8), "upper": math.log(1.5)}
    draws = np.log(np.array([0.9, 1.2]))  # lifts −10 % and +20 %: mean +5 %
    p = pct(summary, draws)
    assert list(p) == ["mean_pct", "median_pct", "lower_pct", "upper_pct"]
    assert p == pytest.approx({"mean_pct": 5.0, "median_pct": 10.0, "lower_pct": -20.0, "upper_pct": 50.0},
                              rel=1e-12)


def test_summaries_are_computed_in_double_precision_whatever_the_dtype() -> None:
    """float32 draws (as some samplers store them) give the summaries of the same values as float64:
    the values are converted first, the arithmetic is not done in single precision."""
    rng = np.random.default_rng(0)
    x32 = (0.05 + 0.3 * rng.standard_normal((4, 2500))).astype(np.float32)
    x64 = x32.astype(np.float64)
    assert summarize(x32, 0.9) == summarize(x64, 0.9)
    s = summarize(x64, 0.9)
    assert s["mean"] == float(x64.reshape(-1).mean()) and s["sd"] == float(x64.reshape(-1).std(ddof=1))
    assert pct(s, x32) == pct(s, x64)
    assert pct(s, x64)["mean_pct"] == float((100.0 * np.expm1(x64)).mean())


def test_derive_in_double_precision_whatever_the_dtype_of_y_and_se() -> None:
    mu, tau = np.full((2, 50), 0.05), np.full((2, 50), 0.1)
    y32, se32 = np.array([0.1, -0.2, 0.3], np.float32), np.array([0.07, 0.11, 0.13], np.float32)
    a, b = derive(mu, tau, y32, se32, seed=2), derive(mu, tau, y32.astype(float), se32.astype(float), seed=2)
    for name in ("theta", "future", "y_rep", "shrinkage"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("seed", [0, 11])
def test_derive_draws_are_the_seeded_normals_transformed(seed: int) -> None:
    """The generator is SeedSequence([seed, 7]); its standard normals are drawn for theta (chain,
    draw, study), then future (chain, draw), then y_rep (chain, draw, study)."""
    gen = np.random.default_rng(0)
    mu, tau = 0.1 + 0.05 * gen.standard_normal((3, 40)), np.abs(0.2 * gen.standard_normal((3, 40)))
    y, se = np.array([0.2, -0.1, 0.05, 0.4]), np.array([0.1, 0.3, 0.05, 0.2])
    d = derive(mu, tau, y, se, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    z_theta = rng.standard_normal((3, 40, 4))
    z_future = rng.standard_normal((3, 40))
    z_rep = rng.standard_normal((3, 40, 4))
    m, t = mu[..., None], tau[..., None]
    precision = 1 / se**2 + 1 / t**2
    cond_sd = 1 / np.sqrt(precision)
    cond_mean = (y / se**2 + m / t**2) / precision
    theta = cond_mean + cond_sd * z_theta
    np.testing.assert_allclose(d.theta, theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d.future, mu + tau * z_future, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d.y_rep, d.theta + se * z_rep, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d.shrinkage, np.broadcast_to((1 / t**2) / precision, d.theta.shape), rtol=1e-12)
