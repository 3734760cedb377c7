"""The PyMC model (SPEC §7), built once per tau family and reused across every fit of a plan.

Data (y, se) and prior parameters are ``pm.Data`` inputs, so a sensitivity fit only swaps values
and samples again; the NUTS step (and its compiled log-density) is built once and reused.

Parameterisation (the same model in sampler-friendly coordinates). With few studies and small
SEs, plain NUTS on (mu, log tau) meets two problems: a funnel (sd(mu | tau) grows with tau) and,
under log tau, a double-exponential wall in the upper tail of a half-normal prior; both cause
divergences and under-explore tau's tail. Default ``parameterisation="conditional"``:

* half-normal: tau = scale·softplus(v) with a flat v, the half-normal density and the Jacobian
  added (tau ≈ scale·e^v near 0, ≈ scale·v in the tail: no double-exponential wall);
  half-Cauchy: tau = scale·tan(πu/2), u = sigmoid(v), v ~ Logistic(0, 1), which is exactly
  half-Cauchy(scale) by the inverse-CDF construction, with logistic tails in v. (All ops have C
  implementations; erfinv does not, which would put the whole density on Python's slow path.)
* mu = c(tau) + d(tau)·z, with c and d the mean and sd of mu's exact conditional given tau
  (Normal–Normal conjugacy), z flat, and the prior of mu plus the Jacobian log d(tau) added.

The likelihood is evaluated as written. ``parameterisation="centered"`` keeps the textbook form
(mu ~ Normal, tau ~ HalfNormal/HalfCauchy with a log transform), used by tests that show why the
default exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..families import family as family_of

PARAMETERISATIONS = ("conditional", "centered")


@dataclass
class FitModel:
    """A compiled model plus its reusable NUTS step."""

    model: pm.Model
    family: str
    parameterisation: str
    target_accept: float
    _step: Any = field(default=None, repr=False)
    _nutpie: Any = field(default=None, repr=False)
    _inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    def set_inputs(self, y: np.ndarray, se: np.ndarray, mu_mean: float, mu_sd: float, tau_scale: float) -> None:
        self._inputs = {"y": np.asarray(y, float), "se": np.asarray(se, float), "mu_mean": float(mu_mean),
                        "mu_sd": float(mu_sd), "tau_scale": float(tau_scale)}
        with self.model:
            pm.set_data(self._inputs)

    def nutpie_model(self) -> Any:
        """nutpie's compiled model (numba; compiled once, ~10 s) with the current inputs swapped in."""
        import nutpie

        if self._nutpie is None:
            self._nutpie = nutpie.compile_pymc_model(self.model)
        return self._nutpie.with_data(**self._inputs) if self._inputs else self._nutpie

    def step(self) -> Any:
        if self._step is None:
            with self.model:
                self._step = pm.NUTS(target_accept=self.target_accept)
        return self._step


def likelihood_variance(tau: Any, se: Any) -> Any:
    """Var(y_i | mu, tau) of the likelihood with theta_i integrated out: tau² + s_i². (Tests replace
    this function to build a deliberately broken model and show the exact cross-check catches it.)"""
    return tau**2 + se**2


def build_model(y: np.ndarray, se: np.ndarray, *, mu_mean: float, mu_sd: float, tau_scale: float,
                family: str = "half_normal", parameterisation: str = "conditional",
                target_accept: float = 0.9) -> FitModel:
    """Build the random-effects model (the marginal likelihood's variance is :func:`likelihood_variance`)."""
    if parameterisation not in PARAMETERISATIONS:
        raise ValueError(f"unknown parameterisation {parameterisation!r}")
    with pm.Model() as model:
        y_d = pm.Data("y", np.asarray(y, float))
        se_d = pm.Data("se", np.asarray(se, float))
        m0 = pm.Data("mu_mean", float(mu_mean))
        s0 = pm.Data("mu_sd", float(mu_sd))
        scale = pm.Data("tau_scale", float(tau_scale))
        fam = family_of(family)  # an unknown family is an error, never a fallback
        tau = fam.build_conditional(scale) if parameterisation == "conditional" else fam.build_centered(scale)
        var = likelihood_variance(tau, se_d)
        if parameterisation == "conditional":
            w = 1.0 / var
            precision = 1.0 / s0**2 + pt.sum(w)
            centre = (m0 / s0**2 + pt.sum(w * y_d)) / precision
            spread = 1.0 / pt.sqrt(precision)
            z = pm.Flat("z")
            mu = pm.Deterministic("mu", centre + spread * z)
            pm.Potential("mu_prior_and_jacobian", pm.logp(pm.Normal.dist(m0, s0), mu) + pt.log(spread))
        else:
            mu = pm.Normal("mu", m0, s0)
        pm.Normal("y_obs", mu=mu, sigma=pt.sqrt(var), observed=y_d)
    return FitModel(model=model, family=family, parameterisation=parameterisation, target_accept=target_accept)


def sample_model(fm: FitModel, *, draws: int, tune: int, chains: int, seed: int, progressbar: bool,
                 nuts_sampler: str = "pymc") -> Any:
    """Sample ``fm`` with its current inputs; returns ArviZ InferenceData (posterior: mu, tau)."""
    if nuts_sampler == "nutpie":
        import nutpie

        idata = nutpie.sample(fm.nutpie_model(), draws=draws, tune=tune, chains=chains, seed=seed,
                              target_accept=fm.target_accept, progress_bar=progressbar)
    else:
        with fm.model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, step=fm.step(), random_seed=seed,
                              progressbar=progressbar, compute_convergence_checks=False, return_inferencedata=True)
    got = (idata.posterior.sizes.get("chain", 0), idata.posterior.sizes.get("draw", 0))
    if got != (chains, draws):
        # PyMC catches KeyboardInterrupt mid-sampling and returns truncated chains; a run built on
        # them would look complete. Re-raise instead.
        raise KeyboardInterrupt(f"sampling was interrupted ({got[0]} chains × {got[1]} draws of "
                                f"{chains} × {draws})")
    return idata
