"""Honesty check: why the default parameterisation exists, and that the diagnostics notice.

The textbook ("centered") form -- mu ~ Normal, tau ~ HalfNormal sampled on log tau -- is fitted to
the geo-test trap (4 geo tests, SE 0.02, tau_scale 0.5: tau's posterior runs from ~0 up to a few
SEs while sd(mu | tau) changes several-fold across it, a funnel in (mu, log tau)). The fit must
fail at least one of the checks a run applies: divergences > 0, some |z| > 4 against the exact
posterior, or r-hat > 1.01. The default ("conditional") fit of the same data, same seed, passes
(test_exact_crosscheck). sd(mu) and sd(tau) of both fits against the exact values are logged.
"""

from __future__ import annotations

import numpy as np
import pytest
from stat_support import Z_BOUND, log

pytestmark = pytest.mark.statistical

TRAP = "geo_trap_k4"
EXTRA_SEEDS = (1, 2, 3, 4, 5)  # a few more seeds, to show the spread of sd(mu) (logged)
SECTION = "geo-test trap: centered vs default parameterisation"


def _describe(fit) -> str:
    import arviz as az

    sd_mu, ex_mu, z_mu = fit.sd_report("mu")
    sd_tau, ex_tau, z_tau = fit.sd_report("tau")
    ess = az.ess(fit.idata.posterior[["mu", "tau"]], method="bulk")
    z = fit.flat_z()
    rh = fit.rhat()
    return (f"{fit.parameterisation:11s} div={fit.divergences:<3d} rhat(mu,tau)={rh['mu']:.4f},{rh['tau']:.4f} "
            f"ess_bulk(mu,tau)={float(ess['mu']):.0f},{float(ess['tau']):.0f} "
            f"max|z|={max(map(abs, z.values())):.2f} | sd(mu) {sd_mu:.5f} vs exact {ex_mu:.5f} "
            f"({100 * (sd_mu / ex_mu - 1):+.0f} %, z {z_mu:+.2f}) | sd(tau) {sd_tau:.5f} vs exact {ex_tau:.5f} "
            f"({100 * (sd_tau / ex_tau - 1):+.0f} %) | mu q2.5/q97.5 {np.quantile(fit.mu, 0.025):.5f}/"
            f"{np.quantile(fit.mu, 0.975):.5f} vs exact {fit.exact.mu.lower:.5f}/{fit.exact.mu.upper:.5f}")


def _failing(fit) -> str:
    """The production checks (sampler + exact cross-check) a fit fails, with their values."""
    rows = [r for r in fit.sampler_rows() + fit.exact_rows() if not r["pass"]]
    return ", ".join(f"{r['parameter']} {r['check']}={r['value']:.3g}" for r in rows) or "nothing"


def _flags(fit) -> dict[str, bool]:
    z = fit.flat_z()
    return {
        "divergences": fit.divergences > 0,
        "|z| > 4": any(not (np.isfinite(v) and abs(v) <= Z_BOUND) for v in z.values()),
        "r-hat > 1.01": max(fit.rhat().values()) > 1.01,
    }


def test_centered_parameterisation_is_flagged_on_the_geo_trap(fits):
    from marketbayesmeta.runtime.diagnostics import fit_passes

    centered = fits.fit(TRAP, parameterisation="centered")
    default = fits.fit(TRAP)
    for fit in (default, centered):
        log(SECTION, f"seed {fit.seed}: " + _describe(fit))

    flags = _flags(centered)
    log(SECTION, f"seed {centered.seed}: centered fails " + _failing(centered))
    assert any(flags.values()), f"the centered fit of the trap passed every check: {_describe(centered)}"
    # ... and so a run's diagnostics (sampler checks + exact cross-check) would fail it.
    assert not fit_passes(centered.sampler_rows() + centered.exact_rows())
    # The default parameterisation, same data and seed, passes the same checks.
    assert fit_passes(default.sampler_rows() + default.exact_rows())


def test_trap_over_more_seeds(fits):
    """Over more seeds: the default passes every check at every seed, the centered fit fails a
    run's diagnostics at every seed, and the default's sd(mu) over all seeds together agrees with
    the exact sd within Z_BOUND Monte Carlo standard errors (one seed's sd is noisy, as the
    posterior of mu is heavy-tailed here: the per-seed ratios are logged)."""
    from stat_support import mcse_sd

    from marketbayesmeta.runtime.diagnostics import fit_passes

    flagged, ratios = 0, {"conditional": [], "centered": []}
    missed, default_mu = [], []
    for seed in EXTRA_SEEDS:
        for par in ("conditional", "centered"):
            fit = fits.fit(TRAP, parameterisation=par, seed=seed)
            log(SECTION, f"seed {seed}: " + _describe(fit))
            ratios[par].append(fit.sd_report("mu")[0] / fit.exact.mu.sd)
            if par == "centered":
                flagged += any(_flags(fit).values())
                log(SECTION, f"seed {seed}: centered fails " + _failing(fit))
                if fit_passes(fit.sampler_rows() + fit.exact_rows()):
                    missed.append(f"seed {seed}: {_describe(fit)}")
            else:
                assert fit_passes(fit.sampler_rows() + fit.exact_rows()), _describe(fit)
                default_mu.append(fit.mu)
    for par, r in ratios.items():
        log(SECTION, f"{par}: sd(mu)/exact over seeds {list(EXTRA_SEEDS)}: "
                     + ", ".join(f"{x:.2f}" for x in r))
    log(SECTION, f"centered flagged (divergences, |z| > 4 or r-hat > 1.01) in {flagged}/{len(EXTRA_SEEDS)} seeds")
    assert not missed, "a run's diagnostics passed the centered fit of the trap:\n" + "\n".join(missed)
    pooled = np.concatenate(default_mu, axis=0)  # (seeds x chains, draws)
    sd, exact_sd = float(pooled.std(ddof=1)), fit.exact.mu.sd  # the exact posterior is the same for every fit
    z = (sd - exact_sd) / mcse_sd(pooled)
    log(SECTION, f"default, all {len(EXTRA_SEEDS)} seeds pooled: sd(mu) {sd:.5f} vs exact {exact_sd:.5f} "
                 f"({100 * (sd / exact_sd - 1):+.1f} %, z {z:+.2f})")
    assert abs(z) <= Z_BOUND, f"pooled sd(mu) {sd:.5f} vs exact {exact_sd:.5f}: z {z:+.2f}"
