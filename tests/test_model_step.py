"""The compiled NUTS step and the trace template of runtime.model are speed-ups only: the draws
are those of a plain ``pm.NUTS`` with PyMC's own trace, chain for chain, and the chains do not
share their sample arrays (the trace template is copied per chain)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_tuned_step_and_trace_template_give_plain_pymc_draws() -> None:
    import pymc as pm

    from marketbayesmeta.runtime.model import build_model, sample_model

    logging.getLogger("pymc").setLevel(logging.ERROR)
    y, se = np.array([0.05, 0.01, 0.09, 0.03]), np.array([0.02, 0.03, 0.025, 0.04])
    fm = build_model(y, se, mu_mean=0.0, mu_sd=0.5, tau_scale=0.1)
    ours = sample_model(fm, draws=150, tune=150, chains=3, seed=7, progressbar=False)
    again = sample_model(fm, draws=150, tune=150, chains=3, seed=7, progressbar=False)  # template reused

    plain_model = build_model(y, se, mu_mean=0.0, mu_sd=0.5, tau_scale=0.1)
    with plain_model.model:
        plain = pm.sample(draws=150, tune=150, chains=3, cores=1, step=pm.NUTS(target_accept=0.9), random_seed=7,
                          progressbar=False, compute_convergence_checks=False)
    for name in ("mu", "tau", "z"):
        a, b, c = (d.posterior[name].values for d in (ours, again, plain))
        assert a.shape == (3, 150)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    mu = ours.posterior["mu"].values
    assert not np.array_equal(mu[0], mu[1]) and not np.array_equal(mu[1], mu[2])
    assert float(np.std(mu)) > 0
