"""Tau prior families: one small declarative object per family, looked up by name.

Every place that needs something family-specific (the PyMC model, the exact engine, prior
checks and prior conversions in the compiler, plots in the report) asks the registry:
``family("half_normal").log_pdf(tau, scale)``. An unknown name is an error, never a fallback.

A family is defined on the standardised variable ``x = tau / scale``:

* ``log_kernel(x)``: the log density of x up to the constant ``log_norm`` (the exact engine
  integrates the kernel; Bayes factors and plots use the normalised density);
* ``quantile(q)`` and ``draw(rng, n)``: for prior conversions, plots and prior-predictive checks;
* ``tail_exponent``: the prior density falls like ``x**-tail_exponent`` (None: faster than any
  power), which decides when tau's posterior variance is infinite;
* ``log_tail`` ``(a, p)``: otherwise the prior density falls like ``exp(-a x**p)``, which decides
  whether posterior expectations such as ``E[exp(tau)]`` (relative-lift means) are finite;
* two PyMC builders (imported lazily; the compiler never imports PyMC): ``conditional`` builds tau
  in sampler-friendly coordinates (see runtime/model.py), ``centered`` the textbook form.

Families (``scale`` = ``priors.tau_scale``):

* ``half_normal``: density 2 φ(x); median 0.674·scale. Default.
* ``half_cauchy``: density 2 / (π (1 + x²)); median = scale; heavy tail.
* ``exponential``: density e^(−x); median 0.693·scale; the penalised-complexity (PC) prior of
  Simpson et al. (2017) for a random-effect sd: it shrinks towards tau = 0 with a finite slope.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from . import libm

Array = np.ndarray


@dataclass(frozen=True)
class TauFamily:
    name: str
    label: str  # for people: "half-normal"
    heavy_tail: bool
    tail_exponent: float | None
    log_tail: tuple[float, float] | None  # (a, p): density ~ exp(-a x**p) when tail_exponent is None
    log_norm: float  # log of the constant that normalises exp(log_kernel) on x > 0
    log_kernel: Callable[[Array], Array]
    quantile_std: Callable[[Array], Array]
    draw_std: Callable[[np.random.Generator, int], Array]
    build_conditional: Callable[[Any], Any]  # PyMC: scale tensor -> tau (registers its variables)
    build_centered: Callable[[Any], Any]

    # -- numpy ----------------------------------------------------------------------------------
    def log_pdf(self, tau: Array | float, scale: float) -> Array:
        """Normalised log density of tau (−inf for tau < 0)."""
        tau = np.asarray(tau, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.log_kernel(tau / scale) + self.log_norm - math.log(scale)
        return np.where(tau >= 0, out, -np.inf)

    def pdf(self, tau: Array | float, scale: float) -> Array:
        return np.exp(self.log_pdf(tau, scale))

    def quantile(self, q: Array | float, scale: float) -> Array:
        """Prior quantile(s) of tau at probabilities ``q`` in [0, 1)."""
        return scale * self.quantile_std(np.asarray(q, dtype=float))

    def median(self, scale: float) -> float:
        return float(self.quantile(0.5, scale))

    def draw(self, rng: np.random.Generator, scale: float, n: int) -> Array:
        """``n`` prior draws of tau from ``rng``."""
        return scale * self.draw_std(rng, n)

    def infinite_posterior_variance(self, k: int) -> bool:
        """Whether tau's posterior variance is infinite with ``k`` studies: the marginal likelihood
        falls like tau**-k, so the posterior like tau**-(a + k); the variance needs a + k > 3."""
        return self.tail_exponent is not None and self.tail_exponent + k <= 3

    def exponential_moment_is_finite(self, k: int, scale: float, coef: float, power: float) -> bool:
        """Whether ``E[exp(coef · tau**power)]`` (coef > 0) is finite under the posterior with ``k``
        studies: the marginal likelihood falls like tau**-k, so the posterior like tau**-k times the
        prior; a power-law prior never suffices, ``exp(-a (tau/scale)**p)`` does when it decays faster
        (on a tie the leftover tau**-k needs k > 1)."""
        if self.log_tail is None:
            return False
        a, p = self.log_tail
        if p != power:
            return p > power
        rate = a / scale**p
        return coef < rate or (coef == rate and k > 1)

    def describe(self, scale: float) -> str:
        return f"{self.label}({scale:g})"


# -- PyMC builders (lazy imports: only the runtime calls them) -------------------------------------

def _half_normal_conditional(scale: Any) -> Any:
    # tau = scale·softplus(v): ~ scale·e^v near 0, ~ scale·v in the tail (no log-scale wall);
    # the half-normal prior density plus the Jacobian log(scale·sigmoid(v)) on a flat v.
    import pymc as pm
    import pytensor.tensor as pt

    v = pm.Flat("tau_raw")
    tau = pm.Deterministic("tau", scale * pt.softplus(v))
    pm.Potential("tau_prior_and_jacobian",
                 pm.logp(pm.HalfNormal.dist(sigma=scale), tau) + pt.log(scale) - pt.softplus(-v))
    return tau


def _half_cauchy_conditional(scale: Any) -> Any:
    # tau = scale·tan(πu/2), u = sigmoid(v), v ~ Logistic(0, 1): exactly half-Cauchy(scale) by the
    # inverse-CDF construction, with logistic tails in v.
    import pymc as pm
    import pytensor.tensor as pt

    u = pm.math.sigmoid(pm.Logistic("tau_logit", mu=0.0, s=1.0))
    return pm.Deterministic("tau", scale * pt.tan(np.pi * u / 2.0))


def _exponential_conditional(scale: Any) -> Any:
    # tau = scale·softplus(v) = −scale·log(1 − u), u = sigmoid(v), v ~ Logistic(0, 1): exactly
    # Exponential(mean = scale) by the inverse-CDF construction, with logistic tails in v.
    import pymc as pm
    import pytensor.tensor as pt

    return pm.Deterministic("tau", scale * pt.softplus(pm.Logistic("tau_logit", mu=0.0, s=1.0)))


def _centered(dist: str, **kw: str) -> Callable[[Any], Any]:
    def build(scale: Any) -> Any:
        import pymc as pm

        return getattr(pm, dist)("tau", **{name: scale for name in kw.values()})
    return build


FAMILIES: dict[str, TauFamily] = {f.name: f for f in (
    TauFamily(
        name="half_normal", label="half-normal", heavy_tail=False, tail_exponent=None, log_tail=(0.5, 2.0),
        log_norm=0.5 * math.log(2.0 / math.pi),
        log_kernel=lambda x: -0.5 * x**2,
        quantile_std=lambda q: math.sqrt(2.0) * special.erfinv(q),
        draw_std=lambda rng, n: np.abs(rng.standard_normal(n)),
        build_conditional=_half_normal_conditional,
        build_centered=_centered("HalfNormal", s="sigma")),
    TauFamily(
        name="half_cauchy", label="half-Cauchy", heavy_tail=True, tail_exponent=2.0, log_tail=None,
        log_norm=math.log(2.0 / math.pi),
        log_kernel=lambda x: -np.log1p(x**2),
        quantile_std=lambda q: libm.tan(np.pi * q / 2.0),  # libm: the same bits on every CPU
        draw_std=lambda rng, n: np.abs(rng.standard_cauchy(n)),
        build_conditional=_half_cauchy_conditional,
        build_centered=_centered("HalfCauchy", s="beta")),
    TauFamily(
        name="exponential", label="exponential", heavy_tail=False, tail_exponent=None, log_tail=(1.0, 1.0),
        log_norm=0.0,
        log_kernel=lambda x: -x,
        quantile_std=lambda q: -libm.log1p(-q),
        draw_std=lambda rng, n: rng.standard_exponential(n),
        build_conditional=_exponential_conditional,
        build_centered=_centered("Exponential", s="scale")),
)}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def family(name: str) -> TauFamily:
    """The registered family called ``name``; an unknown name is a ValueError."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown tau prior family {name!r}; known: {', '.join(FAMILY_NAMES)}") from None
