"""Datasets for the statistical validation suite (tests/statistical, docs/statistical-validation.md).

Every synthetic dataset is drawn from the random-effects model itself with its own fixed numpy seed
(so adding a dataset never changes another): s_i ~ Uniform(lo, hi), theta_i ~ N(mu, tau^2),
y_i ~ N(theta_i, s_i^2). Two named datasets are fixed by hand: the geo-test trap and 8 schools.

Scales (the package defaults, docs/methodology.md):
* log_relative-like: s ~ 0.01-0.05, mu ~ N(0, 1), tau_scale 0.5
* percentage_point-like: s ~ 0.5-3, mu ~ N(0, 10), tau_scale 5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG = {"mu_mean": 0.0, "mu_sd": 1.0, "tau_scale": 0.5, "se": (0.01, 0.05)}
PP = {"mu_mean": 0.0, "mu_sd": 10.0, "tau_scale": 5.0, "se": (0.5, 3.0)}


@dataclass(frozen=True)
class Dataset:
    name: str
    y: np.ndarray
    se: np.ndarray
    mu_mean: float
    mu_sd: float
    tau_scale: float
    family: str  # tau prior family: half_normal or half_cauchy
    note: str

    @property
    def k(self) -> int:
        return int(self.y.size)

    @property
    def priors(self) -> dict[str, float]:
        return {"mu_mean": self.mu_mean, "mu_sd": self.mu_sd, "tau_scale": self.tau_scale}


def _synthetic(name: str, seed: int, k: int, scale: dict, mu: float, tau: float, family: str,
               note: str, outlier: float | None = None) -> Dataset:
    rng = np.random.default_rng(seed)
    lo, hi = scale["se"]
    se = rng.uniform(lo, hi, size=k)
    theta = mu + tau * rng.standard_normal(k)
    y = theta + se * rng.standard_normal(k)
    if outlier is not None:  # one study far out of line with the rest
        y[0] = mu + outlier
    return Dataset(name, np.round(y, 6), np.round(se, 6), scale["mu_mean"], scale["mu_sd"],
                   scale["tau_scale"], family, note)


# The geo-test trap: 4 geo tests, all with SE 0.02, agreeing closely, under the default
# log_relative priors (tau_scale 0.5 is 25 SEs). tau's posterior runs from ~0 to a few SEs while
# its prior is broad; sd(mu | tau) changes several-fold across that range (a funnel in (mu, log tau)).
GEO_TRAP = Dataset("geo_trap_k4", np.array([0.031, 0.052, 0.018, 0.044]), np.full(4, 0.02),
                   0.0, 1.0, 0.5, "half_normal", "geo-test trap: K=4, SE 0.02, tau_scale 0.5")

SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOLS_S = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])

DATASETS: list[Dataset] = [
    _synthetic("k2_log_tau0", 101, 2, LOG, 0.03, 0.0, "half_normal", "K=2, tau=0, log scale"),
    _synthetic("k2_pp_tau_large", 102, 2, PP, 2.0, 8.0, "half_normal", "K=2, tau >> s, pp scale"),
    _synthetic("k3_log_tau0_cauchy", 103, 3, LOG, 0.02, 0.0, "half_cauchy", "K=3, tau=0, log scale"),
    _synthetic("k3_pp_tau_large_cauchy", 104, 3, PP, 1.0, 6.0, "half_cauchy", "K=3, tau >> s, pp scale"),
    _synthetic("k5_log_tau_large", 105, 5, LOG, 0.05, 0.15, "half_normal", "K=5, tau >> s, log scale"),
    _synthetic("k5_pp_tau_mid_cauchy", 106, 5, PP, 3.0, 1.5, "half_cauchy", "K=5, tau ~ s, pp scale"),
    _synthetic("k10_pp_tau0", 107, 10, PP, 1.5, 0.0, "half_normal", "K=10, tau=0, pp scale"),
    _synthetic("k10_log_outlier_cauchy", 108, 10, LOG, 0.03, 0.01, "half_cauchy",
               "K=10, one study 0.40 (~10-40 SEs) out of line, log scale", outlier=0.40),
    _synthetic("k10_pp_outlier", 109, 10, PP, 2.0, 0.5, "half_normal",
               "K=10, one study 25 points out of line, pp scale", outlier=25.0),
    _synthetic("k50_log_tau_small", 110, 50, LOG, 0.02, 0.01, "half_normal", "K=50, tau ~ s/3, log scale"),
    _synthetic("k50_pp_tau_large_cauchy", 111, 50, PP, 2.0, 4.0, "half_cauchy", "K=50, tau >> s, pp scale"),
    _synthetic("k50_log_tau0_cauchy", 112, 50, LOG, 0.01, 0.0, "half_cauchy", "K=50, tau=0, log scale"),
    GEO_TRAP,
    Dataset("eight_schools", SCHOOLS_Y, SCHOOLS_S, 0.0, 10.0, 5.0, "half_normal", "8 schools, pp priors"),
    Dataset("eight_schools_cauchy", SCHOOLS_Y, SCHOOLS_S, 0.0, 10.0, 5.0, "half_cauchy",
            "8 schools, pp priors, half-Cauchy tau"),
    # the third family of the registry (exponential, the PC prior), on both scales
    _synthetic("k3_log_tau0_exponential", 113, 3, LOG, 0.02, 0.0, "exponential", "K=3, tau=0, log scale"),
    _synthetic("k6_pp_tau_mid_exponential", 114, 6, PP, 2.5, 2.0, "exponential", "K=6, tau ~ s, pp scale"),
    Dataset("eight_schools_exponential", SCHOOLS_Y, SCHOOLS_S, 0.0, 10.0, 5.0, "exponential",
            "8 schools, pp priors, exponential tau"),
]

BY_NAME = {d.name: d for d in DATASETS}
