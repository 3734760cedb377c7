"""Calibration of the cross-check itself: over all datasets the z-scores of the default model
should look standard normal. If the MCSEs were too small the check would raise false alarms
(mean |z| and the |z| > 3 fraction too large); if they were too large it would be toothless
(mean |z| too small). For N(0, 1): mean |z| = 0.80, P(|z| > 3) = 0.27 %.

Asserted on the 6 production z-scores per dataset (mean, q2.5, q97.5 of mu and tau); the derived
quantities' z-scores (theta_i means, future_true_effect) are logged. z-scores within a dataset are
correlated (mu and tau share draws; theta_i all shrink towards mu), so the bounds are loose.
"""

from __future__ import annotations

import numpy as np
import pytest
from stat_datasets import DATASETS
from stat_support import log

pytestmark = pytest.mark.statistical

SECTION = "calibration of the z-scores (default model, all datasets)"


def _stats(z: np.ndarray) -> str:
    a = np.abs(z)
    return (f"n={z.size} mean={z.mean():+.2f} sd={z.std(ddof=1):.2f} mean|z|={a.mean():.2f} "
            f"max|z|={a.max():.2f} |z|>2: {100 * (a > 2).mean():.1f} % |z|>3: {100 * (a > 3).mean():.1f} %")


def test_z_scores_look_standard_normal(fits):
    from scipy import stats

    core = {d.name: fits.fit(d.name).flat_z() for d in DATASETS}
    z = np.array([v for zs in core.values() for v in zs.values()])
    log(SECTION, "production z (mu, tau: mean, q2.5, q97.5): " + _stats(z))
    for kind in ("mean", "q025", "q975"):
        zk = np.array([v for zs in core.values() for k, v in zs.items() if k.endswith(kind)])
        log(SECTION, f"  {kind:4s} only: " + _stats(zk))
    log(SECTION, f"  KS test against N(0, 1) (z correlated within a dataset, indicative): "
                 f"p = {stats.kstest(z, 'norm').pvalue:.2f}")
    derived = np.array([v for d in DATASETS for v in fits.fit(d.name).derived_z().values()])
    log(SECTION, "derived z (theta_i means; future mean, q2.5, q97.5): " + _stats(derived))

    assert np.all(np.isfinite(z))
    assert np.mean(np.abs(z) > 3) <= 0.05
    assert 0.5 < np.mean(np.abs(z)) < 1.2
    assert abs(np.mean(z)) < 0.5
