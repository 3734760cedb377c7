"""The exact cross-check has teeth: a deliberately broken likelihood is caught.

``likelihood_variance="tau2"`` drops s_i^2 from the likelihood (y_i ~ N(mu, tau^2)), so tau has to
absorb all the sampling noise. The draws are compared with the exact posterior of the *correct*
model, as a run would. Where s_i is comparable to or larger than the spread of the effects (8
schools; K=10 with tau = 0) the posterior moves by many MCSE and some |z| must exceed 4.

A control: where tau >> s_i (k5_log_tau_large) dropping s_i^2 hardly moves the posterior, so the
check may or may not notice -- it detects errors that matter at the Monte Carlo precision of the
fit, not every code change. Whether this seed's z-scores cross 4 is logged, not asserted; what is
asserted is the control's premise and its explanation: (1) the exact posteriors of the correct and
the broken model (s_i -> 0) differ by less than a quarter of a posterior sd in the mean and both
interval ends of mu and tau, computed exactly, and (2) the broken fit passes the sampler checks and
the exact cross-check against the exact posterior of the model it actually sampled, so whatever
its z-scores against the correct posterior show is that (small) shift, not sampler error.
"""

from __future__ import annotations

import numpy as np
import pytest
from stat_support import Z_BOUND, log

pytestmark = pytest.mark.statistical

SECTION = "perturbation: likelihood without s_i^2 vs the correct exact posterior"


def _line(fit) -> str:
    z = fit.flat_z()
    worst = max(z, key=lambda k: abs(z[k]))
    return (f"{fit.dataset.name:18s} max|z| {abs(z[worst]):6.1f} ({worst}); tau mean {fit.tau.mean():.4g} "
            f"vs exact {fit.exact.tau.mean:.4g}; mu mean {fit.mu.mean():.4g} vs exact {fit.exact.mu.mean:.4g}; "
            f"div={fit.divergences}")


@pytest.mark.parametrize("name", ["eight_schools", "k10_pp_tau0"])
def test_dropping_se_from_the_likelihood_is_caught(fits, name):
    from marketbayesmeta.runtime.diagnostics import fit_passes

    fit = fits.fit(name, likelihood_variance="tau2")
    log(SECTION, _line(fit))
    z = fit.flat_z()
    assert any(not (np.isfinite(v) and abs(v) <= Z_BOUND) for v in z.values()), _line(fit)
    assert not fit_passes(fit.exact_rows())


BROKEN_SE = 1e-6  # s_i -> 0: the exact posterior of y_i ~ N(mu, tau^2), the model sampled here
HARDLY = 0.25  # "hardly moves": every shift below a quarter of the correct posterior's sd


def test_perturbation_control_where_se_hardly_matters(fits):
    from stat_support import default_thresholds

    from marketbayesmeta.runtime.diagnostics import exact_checks, fit_passes
    from marketbayesmeta.runtime.exact import exact_posterior

    fit = fits.fit("k5_log_tau_large", likelihood_variance="tau2")
    ds = fit.dataset
    log(SECTION, _line(fit) + "  [control: whether |z| > 4 is not asserted; tau >> s]")
    broken = exact_posterior(ds.y, np.full(ds.k, BROKEN_SE), tau_family=ds.family, **ds.priors)
    for p in ("mu", "tau"):
        right, wrong = fit.exact.summary(p), broken.summary(p)
        shifts = {k: (getattr(wrong, k) - getattr(right, k)) / right.sd for k in ("mean", "lower", "upper")}
        log(SECTION, f"  exact shift of {p} without s_i^2, in posterior sds: "
                     + ", ".join(f"{k} {v:+.3f}" for k, v in shifts.items()))
        assert all(abs(v) < HARDLY for v in shifts.values()), (p, shifts)
    rows = fit.sampler_rows() + exact_checks(ds.name, fit.idata, broken, default_thresholds())
    failed = [f"{r['parameter']} {r['check']}={r['value']:.3g}" for r in rows if not r["pass"]]
    assert fit_passes(rows), f"the broken model was not sampled faithfully: {failed}"
