"""The exact cross-check has teeth: a deliberately broken likelihood is caught.

``likelihood_variance="tau2"`` drops s_i^2 from the likelihood (y_i ~ N(mu, tau^2)), so tau has to
absorb all the sampling noise. The draws are compared with the exact posterior of the *correct*
model, as a run would. Where s_i is comparable to or larger than the spread of the effects (8
schools; K=10 with tau = 0) the posterior moves by many MCSE and some |z| must exceed 4.

A control (logged, not asserted): where tau >> s_i (k5_log_tau_large) dropping s_i^2 hardly moves
the posterior, so the check may not notice -- it detects errors that matter at the Monte Carlo
precision of the fit, not every code change.
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


def test_perturbation_control_where_se_hardly_matters(fits):
    fit = fits.fit("k5_log_tau_large", likelihood_variance="tau2")
    log(SECTION, _line(fit) + "  [control, not asserted: tau >> s]")
