"""The pool's priors: config values, business terms or scale-aware defaults, each with its
provenance (default or config), plus the scenario SEs and the named prior specs of the grid.

Order of precedence for mu (and likewise tau): ``mu_mean``/``mu_sd`` as written; else
``expected_effect`` converted to the model scale (:mod:`.business_priors`, the conversion recorded
in the plan); else the scale's default. ``tau_family`` defaults to half-normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, Problem
from ..plan import PriorSet, Provenanced
from ..vocabulary import SCENARIO_LEVELS
from .business_priors import BusinessPriorError, compile_business_priors, implied_business_terms
from .config import DEFAULT_PRIORS, DEFAULT_SCENARIOS, Config

PRIOR_KEYS = ("mu_mean", "mu_sd", "tau_scale", "tau_family")


@dataclass(frozen=True)
class ResolvedPriors:
    values: dict[str, Provenanced]  # mu_mean, mu_sd, tau_scale, tau_family
    conversion: dict[str, Any] | None  # how business terms became the values (None: none given)
    implied: str  # what the priors say in the pool's own unit (for people)

    @property
    def prior_set(self) -> PriorSet:
        return PriorSet(**{k: self.values[k].value for k in PRIOR_KEYS})


def resolve_priors(config: Config, *, config_file: str = "config") -> ResolvedPriors:
    p = config.priors
    scale = config.analysis.scale
    defaults = DEFAULT_PRIORS[scale]
    family = p.tau_family or str(defaults["tau_family"])
    stated: dict[str, Any] = {k: getattr(p, k) for k in PRIOR_KEYS}
    conversion = None
    if p.expected_effect is not None or p.typical_spread is not None:
        try:
            business = compile_business_priors(p.expected_effect, p.typical_spread, scale=scale, tau_family=family)
        except BusinessPriorError as exc:
            key = _failing_term(p, scale, family)
            raise ConfigError(f"{config_file}: invalid priors", [Problem(
                file=config_file, message=f"'priors.{key}': {exc}")]) from None
        stated.update({k: getattr(business, k) for k in ("mu_mean", "mu_sd", "tau_scale")
                       if getattr(business, k) is not None})
        conversion = business.provenance.model_dump(mode="json")
    values = {k: Provenanced(value=defaults[k] if stated[k] is None else stated[k],
                             provenance="default" if stated[k] is None else "config") for k in PRIOR_KEYS}
    implied = implied_business_terms(float(values["mu_mean"].value), float(values["mu_sd"].value),
                                     float(values["tau_scale"].value), scale=scale, tau_family=family).text
    return ResolvedPriors(values, conversion, implied)


def _failing_term(p: Any, scale: str, family: str) -> str:
    """The business term a conversion error came from (expected_effect is converted first)."""
    if p.expected_effect is None:
        return "typical_spread"
    try:
        compile_business_priors(p.expected_effect, None, scale=scale, tau_family=family)
    except BusinessPriorError:
        return "expected_effect"
    return "typical_spread"


def resolve_scenarios(config: Config) -> dict[str, Provenanced]:
    defaults = DEFAULT_SCENARIOS[config.analysis.scale]
    out = {}
    for level in SCENARIO_LEVELS:
        value = getattr(config.uncertainty.scenarios, level)
        out[level] = Provenanced(value=defaults[level] if value is None else value,
                                 provenance="default" if value is None else "config")
    return out


def prior_specs(config: Config, main: PriorSet) -> list[tuple[str, PriorSet]]:
    """Named prior sets of the prior grid; unset fields of a spec take the main priors."""
    if config.sensitivity.prior_specs is None:
        return [
            ("regularising", main.model_copy(update={"mu_sd": main.mu_sd / 2, "tau_scale": main.tau_scale / 2})),
            ("default", main),
            ("weak", main.model_copy(update={"mu_sd": main.mu_sd * 2, "tau_scale": main.tau_scale * 2})),
        ]
    specs = []
    for spec in config.sensitivity.prior_specs:
        update = {k: getattr(spec, k) for k in PRIOR_KEYS if getattr(spec, k) is not None}
        specs.append((spec.name, main.model_copy(update=update)))
    return specs
