"""The default model (parameterisation="conditional") against the exact posterior (SPEC §7).

For every dataset of stat_datasets.DATASETS: sample with the session's shared compiled model
(one per tau family, inputs swapped with FitModel.set_inputs), then

* |z| <= 4 for the mean and the 2.5/97.5 % quantiles of mu and tau, z = (MCMC - exact) / MCSE
  (runtime.diagnostics.exact_z_scores, the production check);
* |z| <= 4 for every theta_i mean and for the mean and 2.5/97.5 % quantiles of
  future_true_effect, both derived with runtime.posterior.derive as a run does;
* the production sampler checks pass at their default thresholds: zero divergences,
  r-hat <= 1.01, ESS bulk/tail >= 400, BFMI >= 0.3.
"""

from __future__ import annotations

import numpy as np
import pytest
from stat_datasets import BY_NAME, DATASETS, LOG, PP
from stat_support import CHAINS, DRAWS, TUNE, Z_BOUND, log, seed_for

from marketbayesmeta.families import FAMILY_NAMES

pytestmark = pytest.mark.statistical

NAMES = [d.name for d in DATASETS]


def test_dataset_coverage():
    """The datasets cover what the brief asks for (guards against silent edits of the list)."""
    assert len(DATASETS) >= 12
    assert {2, 3, 5, 10, 50} <= {d.k for d in DATASETS}
    assert set(FAMILY_NAMES) == {d.family for d in DATASETS}  # every family of the registry
    assert {(d.mu_sd, d.tau_scale) for d in DATASETS} == {(LOG["mu_sd"], LOG["tau_scale"]),
                                                         (PP["mu_sd"], PP["tau_scale"])}
    assert any("tau=0" in d.note for d in DATASETS) and any("tau >> s" in d.note for d in DATASETS)
    assert any("out of line" in d.note for d in DATASETS)
    trap = BY_NAME["geo_trap_k4"]
    assert trap.k == 4 and np.all(trap.se == 0.02) and trap.tau_scale == 0.5
    schools = BY_NAME["eight_schools"]
    assert schools.y.tolist() == [28, 8, -3, 7, -1, 1, 18, 12]
    assert schools.se.tolist() == [15, 10, 16, 11, 9, 11, 10, 18]


def _sd_vs_interval(fit, p: str) -> str:
    """Relative error of the sd next to that of the 95 % interval's width (both scale measures,
    in % of the exact value)."""
    x = fit.mu if p == "mu" else fit.tau
    ex = fit.exact.summary(p)
    sd_err = 100 * (float(x.std(ddof=1)) / ex.sd - 1)
    lo, hi = np.quantile(x, [0.025, 0.975])
    width_err = 100 * ((hi - lo) / (ex.upper - ex.lower) - 1)
    return f"{p}: sd {sd_err:+5.1f} %, width {width_err:+5.1f} %"


@pytest.mark.parametrize("name", NAMES)
def test_default_model_matches_exact(fits, name):
    fit = fits.fit(name)
    z = fit.flat_z()
    rh = fit.rhat()
    sd_mu, ex_sd_mu, z_sd = fit.sd_report("mu")
    log("default model vs exact (4 chains x 1000 draws)",
        f"{name:24s} K={fit.dataset.k:<2d} {fit.dataset.family:11s} {fit.seconds:4.1f}s "
        f"div={fit.divergences} rhat(mu,tau)={rh['mu']:.4f},{rh['tau']:.4f} max|z|={max(map(abs, z.values())):.2f} "
        f"sd(mu) {sd_mu:.4g} vs exact {ex_sd_mu:.4g} (z {z_sd:+.2f})")
    log("sd vs 95 % interval: relative error of MCMC vs exact",
        f"{name:24s} " + "  ".join(_sd_vs_interval(fit, p) for p in ("mu", "tau")))
    bad = {k: round(v, 2) for k, v in z.items() if not (np.isfinite(v) and abs(v) <= Z_BOUND)}
    assert not bad, f"{name}: MCMC disagrees with the exact posterior beyond {Z_BOUND} MCSE: {bad}"
    failing = [(r["parameter"], r["check"], r["value"]) for r in fit.sampler_rows() if not r["pass"]]
    assert not failing, f"{name}: sampler diagnostics fail: {failing}"
    assert fit.divergences == 0 and max(rh.values()) <= 1.01


@pytest.mark.parametrize("name", NAMES)
def test_derived_quantities_match_exact(fits, name):
    z = fits.fit(name).derived_z()
    worst = max(z, key=lambda k: abs(z[k]))
    log("derived quantities vs exact", f"{name:24s} {len(z):2d} z-scores, max |z| {abs(z[worst]):.2f} ({worst})")
    bad = {k: round(v, 2) for k, v in z.items() if not (np.isfinite(v) and abs(v) <= Z_BOUND)}
    assert not bad, f"{name}: derived quantities disagree with the exact posterior: {bad}"


def test_shared_model_reuse_is_exact(fits):
    """The session's shared half-Cauchy model, last used on K=50 and switched to 8 schools with
    set_inputs, gives draws bit-identical to a freshly built model with the same seed: swapping
    inputs (K changes) leaves no state behind."""
    from marketbayesmeta.runtime.model import build_model, sample_model

    name = "eight_schools_cauchy"
    ds = BY_NAME[name]
    fits.fit("k50_log_tau0_cauchy")  # make sure the shared model has seen another K
    shared = fits.model(ds.family, "conditional", "tau2_plus_se2", ds)
    big = BY_NAME["k50_log_tau0_cauchy"]
    shared.set_inputs(big.y, big.se, big.mu_mean, big.mu_sd, big.tau_scale)
    shared.set_inputs(ds.y, ds.se, ds.mu_mean, ds.mu_sd, ds.tau_scale)
    kw = {"draws": DRAWS, "tune": TUNE, "chains": CHAINS, "seed": seed_for(name), "progressbar": False}
    reused = sample_model(shared, **kw)
    fresh = sample_model(build_model(ds.y, ds.se, family=ds.family, **ds.priors), **kw)
    for p in ("mu", "tau"):
        np.testing.assert_array_equal(reused.posterior[p].values, fresh.posterior[p].values)
