"""The meta-regression's PyMC model (runtime.model.build_regression_model) against its exact
posterior (runtime.exact_regression), issue 20.

Six small datasets (K = 5-15): categorical moderators (2 and 3 levels, dummy coded), numeric ones
(centred), both together, the three tau families, log-relative and percentage-point scales, tau = 0
and tau >> s, and the BCG vaccine trials. For each, one compiled model per (tau family, number of
terms) is reused across datasets through set_regression_inputs (as a run would), and

* |z| <= 4 for the mean and the 2.5/97.5 % quantiles of every coefficient, of tau and (categorical
  moderators) of a subgroup mean, z = (MCMC - exact) / MCSE with ArviZ's MCSE;
* zero divergences and r-hat <= 1.01 for every coefficient and tau.

Sampler settings are the package defaults (4 chains x 1000 draws after 1000 tuning steps,
target_accept 0.9).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest
from stat_support import CHAINS, DRAWS, TUNE, Z_BOUND, log, mcse_mean, mcse_quantile, seed_for

pytestmark = pytest.mark.statistical

SECTION = "meta-regression: PyMC vs exact (4 chains x 1000 draws)"


@dataclass(frozen=True)
class RegressionData:
    name: str
    y: np.ndarray
    se: np.ndarray
    X: np.ndarray
    terms: tuple[str, ...]
    beta_mean: np.ndarray
    beta_sd: np.ndarray
    tau_scale: float
    family: str
    note: str
    subgroup: tuple[float, ...] | None = None  # a contrast c: c'beta is a subgroup mean


def _dummies(levels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Dummy columns against the first sorted level (as compiler/moderators.py codes them)."""
    values = sorted(set(levels))
    return np.column_stack([[v == lev for v in levels] for lev in values[1:]]).astype(float), values[1:]


def _simulate(name: str, seed: int, columns: np.ndarray, terms: list[str], beta: list[float], tau: float,
              se_range: tuple[float, float], prior_sd: list[float], tau_scale: float, family: str,
              note: str, subgroup: tuple[float, ...] | None = None) -> RegressionData:
    rng = np.random.default_rng(seed)
    k = columns.shape[0]
    X = np.column_stack([np.ones(k), columns])
    se = rng.uniform(*se_range, size=k)
    y = X @ np.asarray(beta) + rng.normal(0, tau, k) + rng.normal(0, se)
    return RegressionData(name, np.round(y, 6), np.round(se, 6), X, ("intercept", *terms),
                          np.zeros(X.shape[1]), np.asarray(prior_sd, float), tau_scale, family, note, subgroup)


def _centred(x) -> np.ndarray:
    x = np.asarray(x, float)
    return (x - x.mean())[:, None]


CHANNEL9 = ["tv", "search", "social", "tv", "search", "social", "tv", "search", "social"]
DESIGN15 = ["rct"] * 8 + ["quasi"] * 7
WEEKS8 = [2, 4, 6, 3, 8, 5, 10, 4]
BCG_ABLAT = [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33]
BCG_YI = [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209, 0.0120, -0.4694, -1.3713, -0.3394,
          0.4459, -0.0173]
BCG_VI = [0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069, 0.2230, 0.0040, 0.0564, 0.0730, 0.0124, 0.5325,
          0.0714]


def _datasets() -> list[RegressionData]:
    channel, channel_terms = _dummies(CHANNEL9)
    design, design_terms = _dummies(DESIGN15)
    mixed_levels = ["a", "b"] * 6
    mixed, mixed_terms = _dummies(mixed_levels)
    spend12 = np.random.default_rng(7).uniform(10, 100, 12)
    bcg_x = _centred(BCG_ABLAT)
    return [
        _simulate("cat3_log_k9", 201, channel, [f"channel[{t}]" for t in channel_terms], [0.05, 0.03, -0.02],
                  0.02, (0.01, 0.05), [1.0, 1.0, 1.0], 0.5, "half_normal",
                  "channel with 3 levels (dummy coded), K=9, log scale, tau ~ s", subgroup=(1.0, 0.0, 1.0)),
        _simulate("num_pp_k8_cauchy", 202, _centred(WEEKS8), ["weeks"], [2.0, 0.8], 3.0, (0.5, 3.0),
                  [10.0, 10.0 / np.std(WEEKS8, ddof=1)], 5.0, "half_cauchy",
                  "numeric moderator (test length), K=8, pp scale, half-Cauchy"),
        _simulate("mixed_log_k12_exp", 203, np.column_stack([_centred(spend12), mixed]),
                  ["spend", *(f"group[{t}]" for t in mixed_terms)], [0.04, 0.001, 0.05], 0.03, (0.01, 0.05),
                  [1.0, 1.0 / np.std(spend12, ddof=1), 1.0], 0.5, "exponential",
                  "numeric + 2-level categorical, K=12, log scale, exponential (PC) prior",
                  subgroup=(1.0, 0.0, 1.0)),
        _simulate("num_log_k5_trap", 204, _centred([1, 2, 3, 4, 5]), ["x"], [0.03, 0.005], 0.0, (0.02, 0.02),
                  [1.0, 1.0 / np.std([1, 2, 3, 4, 5], ddof=1)], 0.5, "half_normal",
                  "K=5, SE 0.02, tau = 0, tau_scale 0.5 (the geo-test trap with a slope)"),
        _simulate("cat2_pp_k15_tau0", 205, design, [f"design[{t}]" for t in design_terms], [1.5, 1.0], 0.0,
                  (0.5, 3.0), [10.0, 10.0], 5.0, "half_normal",
                  "design with 2 levels, K=15, pp scale, tau = 0", subgroup=(1.0, 1.0)),
        RegressionData("bcg_ablat", np.array(BCG_YI), np.sqrt(BCG_VI), np.column_stack([np.ones(13), bcg_x]),
                       ("intercept", "ablat"), np.zeros(2), np.array([1.0, 1.0 / np.std(BCG_ABLAT, ddof=1)]), 0.5,
                       "half_normal", "BCG vaccine trials (metafor dat.bcg), absolute latitude centred"),
    ]


DATASETS = _datasets()
BY_NAME = {d.name: d for d in DATASETS}


class _Models:
    """One compiled model per (tau family, number of terms), reused through set_regression_inputs."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, int], object] = {}
        self.fits: dict[str, tuple] = {}

    def fit(self, name: str):
        if name in self.fits:
            return self.fits[name]
        from marketbayesmeta.runtime.exact_regression import exact_regression
        from marketbayesmeta.runtime.model import (
            build_regression_model,
            sample_model,
            set_regression_inputs,
        )

        ds = BY_NAME[name]
        key = (ds.family, ds.X.shape[1])
        if key not in self.models:
            self.models[key] = build_regression_model(ds.y, ds.se, ds.X, beta_mean=ds.beta_mean, beta_sd=ds.beta_sd,
                                                      tau_scale=ds.tau_scale, family=ds.family, terms=list(ds.terms))
        fm = self.models[key]
        set_regression_inputs(fm, ds.y, ds.se, ds.X, ds.beta_mean, ds.beta_sd, ds.tau_scale)
        t0 = time.perf_counter()
        idata = sample_model(fm, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed_for(name), progressbar=False)
        seconds = time.perf_counter() - t0
        exact = exact_regression(ds.y, ds.se, ds.X, beta_mean=ds.beta_mean, beta_sd=ds.beta_sd,
                                 tau_scale=ds.tau_scale, tau_family=ds.family, terms=ds.terms)
        self.fits[name] = (idata, exact, seconds)
        return self.fits[name]


@pytest.fixture(scope="module")
def models(fits) -> _Models:  # noqa: ARG001 - the session fixture quiets PyTensor's BLAS warning and logs
    return _Models()


def _z(draws: np.ndarray, summary) -> dict[str, float]:
    """(MCMC - exact) / MCSE for the mean and the 2.5 % and 97.5 % quantiles; draws (chain, draw)."""
    z = {"mean": (float(draws.mean()) - summary.mean) / mcse_mean(draws)}
    for q, exact_q in zip((0.025, 0.975), summary.quantiles([0.025, 0.975]), strict=True):
        z[f"q{1000 * q:03.0f}"] = (float(np.quantile(draws, q)) - exact_q) / mcse_quantile(draws, q)
    return z


def test_dataset_coverage():
    """What the issue asks for: >= 5 datasets, K 5-15, a categorical (dummy coded, 2-3 levels) and a
    numeric moderator, every tau family."""
    assert len(DATASETS) >= 5
    assert all(5 <= d.X.shape[0] <= 15 for d in DATASETS)
    assert any(d.name.startswith("cat3") for d in DATASETS) and any(d.name.startswith("num") for d in DATASETS)
    assert {d.family for d in DATASETS} == {"half_normal", "half_cauchy", "exponential"}
    for d in DATASETS:
        assert np.all(d.X[:, 0] == 1) and np.linalg.matrix_rank(d.X) == d.X.shape[1]


@pytest.mark.parametrize("name", list(BY_NAME))
def test_regression_model_matches_exact(models, name):
    import arviz as az

    ds = BY_NAME[name]
    idata, exact, seconds = models.fit(name)
    beta = idata.posterior["beta"]
    assert beta.sizes["term"] == len(ds.terms)  # names come from the dataset the shared model was built for
    z = {}
    for j, term in enumerate(ds.terms):
        for k, v in _z(beta.values[..., j], exact.beta[j]).items():
            z[f"{term}.{k}"] = v
    for k, v in _z(idata.posterior["tau"].values, exact.tau).items():
        z[f"tau.{k}"] = v
    if ds.subgroup is not None:
        draws = beta.values @ np.asarray(ds.subgroup)
        for k, v in _z(draws, exact.combination(ds.subgroup)).items():
            z[f"subgroup.{k}"] = v
    rhat = az.rhat(idata.posterior[["beta", "tau"]])
    worst_rhat = max(float(rhat["beta"].max()), float(rhat["tau"]))
    divergences = int(idata.sample_stats["diverging"].sum())
    log(SECTION, f"{name:20s} K={ds.X.shape[0]:<2d} p={ds.X.shape[1]} {ds.family:11s} {seconds:5.1f}s "
                 f"div={divergences} max rhat={worst_rhat:.4f} max|z|={max(map(abs, z.values())):.2f} "
                 f"({len(z)} z-scores)")
    bad = {k: round(v, 2) for k, v in z.items() if not (np.isfinite(v) and abs(v) <= Z_BOUND)}
    assert not bad, f"{name}: MCMC disagrees with the exact posterior beyond {Z_BOUND} MCSE: {bad}"
    assert divergences == 0, f"{name}: {divergences} divergences"
    assert worst_rhat <= 1.01, f"{name}: r-hat {worst_rhat:.4f}"


def test_swapped_inputs_leave_no_state(models):
    """A shared model switched from another dataset (K differs) with set_regression_inputs gives
    draws bit-identical to a freshly built one with the same seed."""
    from marketbayesmeta.runtime.model import (
        build_regression_model,
        sample_model,
        set_regression_inputs,
    )

    ds, other = BY_NAME["mixed_log_k12_exp"], BY_NAME["cat3_log_k9"]  # 3 terms each; K 12 and 9
    shared = build_regression_model(other.y, other.se, other.X, beta_mean=other.beta_mean, beta_sd=other.beta_sd,
                                    tau_scale=other.tau_scale, family=ds.family)
    set_regression_inputs(shared, ds.y, ds.se, ds.X, ds.beta_mean, ds.beta_sd, ds.tau_scale)
    kw = {"draws": 200, "tune": 200, "chains": 2, "seed": 11, "progressbar": False}
    reused = sample_model(shared, **kw)
    fresh = sample_model(build_regression_model(ds.y, ds.se, ds.X, beta_mean=ds.beta_mean, beta_sd=ds.beta_sd,
                                                tau_scale=ds.tau_scale, family=ds.family), **kw)
    for p in ("beta", "tau"):
        np.testing.assert_array_equal(reused.posterior[p].values, fresh.posterior[p].values)
