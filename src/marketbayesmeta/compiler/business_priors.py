"""Priors stated in business terms, and what given priors mean in those terms (pure; issue 15 item 7).

```yaml
priors:
  expected_effect: {lower: -5, upper: 15, unit: relative_percent, level: 0.95}
  typical_spread: {value: 5, unit: relative_percent}   # study-to-study, the prior median of tau
```

Rules (``f`` is the unit's transform to the pool's scale, :func:`.units.transform_for`: log(1 +
x/100) for relative_percent, log(1 + x) for relative_fraction, log(x) for ratio, x for
log_relative and percentage_point, 100 x for proportion_difference):

* **expected_effect → mu.** ``mu_mean = (f(lower) + f(upper)) / 2`` and ``mu_sd = (f(upper) −
  f(lower)) / (2 z)`` with z the standard-normal quantile of ``(1 + level) / 2``. Since f is
  increasing, the prior's central ``level`` interval of mu, mapped back to the stated unit, is
  exactly [lower, upper]. On log_relative the interval is symmetric in log(1 + lift), so an
  interval symmetric in per cent (−10 % to +10 %) gets a slightly negative mu_mean.
* **typical_spread → tau.** The stated value is the *prior median* of tau, the study-to-study
  standard deviation of true effects, expressed in the unit: ``median(tau) = f(value)`` (on
  log_relative, a spread of 5 % is log(1.05); a spread in ``ratio`` is a factor such as 1.05).
  The family's scale follows from its median factor m (median of the family at scale 1, from the
  family registry :mod:`marketbayesmeta.families`): ``tau_scale = f(value) / m``. half_normal:
  m = 0.6745 (Φ⁻¹(0.75)); half_cauchy: m = 1 (tan(π/4)); exponential: m = log 2 = 0.6931.
* Accepted unit × scale pairs: relative_percent, relative_fraction, ratio, log_relative →
  log_relative; percentage_point, proportion_difference → percentage_point. Anything else is an
  error naming the pair and what is accepted.
* The inverse (:func:`implied_business_terms`) maps given mu_mean, mu_sd, tau_scale back: the
  central ``level`` interval of mu and tau's median and 95 % quantile, in the pool's unit
  (relative_percent on log_relative, percentage_point on percentage_point, or a unit you name).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..families import FAMILIES, FAMILY_NAMES
from .units import TRANSFORMS, UNITS, UnitTransform, transform_for, z_for_level

Unit = Literal["relative_percent", "relative_fraction", "ratio", "log_relative", "percentage_point",
               "proportion_difference"]

DEFAULT_UNIT = {"log_relative": "relative_percent", "percentage_point": "percentage_point"}
# unit -> (exclusive lower bound, exclusive upper bound) of a stated effect (None: unbounded)
EFFECT_DOMAIN: dict[str, tuple[float | None, float | None]] = {
    "relative_percent": (-100.0, None), "relative_fraction": (-1.0, None), "ratio": (0.0, None),
    "log_relative": (None, None), "percentage_point": (-100.0, 100.0), "proportion_difference": (-1.0, 1.0),
}
# unit -> exclusive lower bound of a typical spread (a ratio spread is a factor above 1)
SPREAD_MINIMUM: dict[str, float] = {u: 0.0 for u in UNITS} | {"ratio": 1.0}
_UNIT_TEXT = {"relative_percent": " %", "percentage_point": " pp"}


class BusinessPriorError(ValueError):
    """A business-term prior that cannot be converted (message names the values and what is accepted)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)



class ExpectedEffect(_Frozen):
    """``priors.expected_effect``: the pooled effect is between lower and upper with probability level."""

    lower: float = Field(allow_inf_nan=False, description="lower end, in unit")
    upper: float = Field(allow_inf_nan=False, description="upper end, in unit")
    unit: Unit
    level: float = Field(0.95, allow_inf_nan=False, description="probability of the interval, a fraction in (0.5, 1)")

    @model_validator(mode="after")
    def _valid(self) -> ExpectedEffect:
        if not 0.5 < self.level < 1:
            hint = f" ({self.level:g} looks like a percentage: write {self.level / 100:g})" if 50 < self.level < 100 else ""
            raise ValueError(f"level {self.level:g} must be a fraction between 0.5 and 1 (exclusive), e.g. 0.95{hint}")
        if not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower:g}) must be below upper ({self.upper:g})")
        low, high = EFFECT_DOMAIN[self.unit]
        for name, value in (("lower", self.lower), ("upper", self.upper)):
            if (low is not None and value <= low) or (high is not None and value >= high):
                raise ValueError(f"{name} {value:g} is outside what {self.unit} can express; accepted: "
                                 f"{_domain_text(low, high)}")
        return self


class TypicalSpread(_Frozen):
    """``priors.typical_spread``: the typical study-to-study spread of true effects (prior median of tau)."""

    value: float = Field(allow_inf_nan=False, description="typical spread (1 sd), in unit")
    unit: Unit

    @model_validator(mode="after")
    def _valid(self) -> TypicalSpread:
        low = SPREAD_MINIMUM[self.unit]
        _, high = EFFECT_DOMAIN[self.unit]
        if self.value <= low or (high is not None and self.value >= high):
            what = " (a ratio spread is a factor such as 1.05 for ±5 %)" if self.unit == "ratio" else ""
            raise ValueError(f"value {self.value:g} is not a spread in {self.unit}{what}; accepted: "
                             f"{_domain_text(low, high)}")
        return self


def _domain_text(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "any finite number"
    if high is None:
        return f"a number > {low:g}"
    if low is None:
        return f"a number < {high:g}"
    return f"a number between {low:g} and {high:g} (exclusive)"


class PriorProvenance(_Frozen):
    """How business-term priors became model-scale priors (recorded in the plan)."""

    scale: str
    tau_family: str
    expected_effect: ExpectedEffect | None = None
    typical_spread: TypicalSpread | None = None
    mu_formula: str | None = None
    tau_formula: str | None = None
    text: tuple[str, ...] = Field(description="one line per conversion, for compile's summary")


class BusinessPriors(_Frozen):
    """Model-scale priors from business terms; None where the business term was not given."""

    mu_mean: float | None = None
    mu_sd: float | None = None
    tau_scale: float | None = None
    provenance: PriorProvenance


class ImpliedPriors(_Frozen):
    """What model-scale priors say in business terms (for prior-diagnostic messages)."""

    unit: str
    level: float
    lower: float = Field(description="central level interval of mu, in unit")
    upper: float
    spread_median: float = Field(description="tau's prior median, in unit")
    spread_q95: float = Field(description="tau's prior 95 % quantile, in unit")
    text: str


def _transform(unit: str, scale: str, what: str) -> UnitTransform:
    t = transform_for(unit, scale)
    if t is None:
        accepted = [u for u in UNITS if (u, scale) in TRANSFORMS]
        known = sorted({s for _, s in TRANSFORMS})
        if scale not in known:
            raise BusinessPriorError(f"unknown scale '{scale}'; accepted: {', '.join(known)}")
        raise BusinessPriorError(f"{what} unit '{unit}' cannot be converted to the {scale} scale; accepted "
                                 f"for {scale}: {', '.join(accepted)}")
    return t


def tau_quantile_factor(family: str, probability: float) -> float:
    """The ``probability`` quantile of the tau family at scale 1 (the family registry's)."""
    if family not in FAMILIES:
        raise BusinessPriorError(f"unknown tau family '{family}'; accepted: {', '.join(FAMILY_NAMES)}")
    return float(FAMILIES[family].quantile(probability, 1.0))


def _z(level: float) -> float:
    return float(z_for_level(level))


def _value_text(x: float, unit: str, fmt: str, *, signed: bool = True) -> str:
    text = format(x, ("+" if signed and unit != "ratio" else "") + fmt)
    return text.replace("-", "−") + _UNIT_TEXT.get(unit, "")


def _range_text(lower: float, upper: float, unit: str, fmt: str = "g") -> str:
    """"−5 % to +15 %", "0.95 to 1.15 (ratio)": stated values as written (``g``), derived ones to 3 digits."""
    tail = "" if unit in _UNIT_TEXT else f" ({unit})"
    return f"{_value_text(lower, unit, fmt)} to {_value_text(upper, unit, fmt)}{tail}"


def _model_number(x: float) -> str:
    """A model-scale number to two significant digits, with a proper minus sign."""
    return f"{x:.2g}".replace("-", "−")


def _spread_text(x: float, unit: str, fmt: str = "g") -> str:
    tail = "" if unit in _UNIT_TEXT else f" ({unit})"
    return _value_text(x, unit, fmt, signed=False) + tail


def compile_business_priors(expected_effect: ExpectedEffect | None, typical_spread: TypicalSpread | None,
                            *, scale: str, tau_family: str) -> BusinessPriors:
    """mu_mean, mu_sd from ``expected_effect`` and tau_scale from ``typical_spread`` (module
    docstring) on ``scale`` for ``tau_family``, with the conversion recorded.

    Raises :class:`BusinessPriorError` for a unit that does not convert to the scale, an unknown
    family, or an interval too narrow to give a positive mu_sd.
    """
    mu_mean = mu_sd = tau_scale = None
    mu_formula = tau_formula = None
    text: list[str] = []
    if expected_effect is not None:
        e = expected_effect
        t = _transform(e.unit, scale, "expected_effect")
        lo, hi, z = float(t.forward(e.lower)), float(t.forward(e.upper)), _z(e.level)
        mu_mean, mu_sd = (lo + hi) / 2.0, (hi - lo) / (2.0 * z)
        if not (math.isfinite(mu_sd) and mu_sd > 0):
            raise BusinessPriorError(f"expected_effect {e.lower:g} to {e.upper:g} is too narrow to give a "
                                     "positive mu_sd on the model scale; widen it")
        mu_formula = (f"mu_mean = (f(lower) + f(upper)) / 2, mu_sd = (f(upper) − f(lower)) / (2 · {z:.6g}) "
                      f"with f(x) = {t.formula} and {z:.6g} the normal quantile of {(1 + e.level) / 2:g}")
        text.append(f"expected effect {_range_text(e.lower, e.upper, e.unit)} ({100 * e.level:g} %) → "
                    f"mu ~ N({_model_number(mu_mean)}, {_model_number(mu_sd)}) on {scale}")
    if typical_spread is not None:
        s = typical_spread
        t = _transform(s.unit, scale, "typical_spread")
        median = float(t.forward(s.value))
        m = tau_quantile_factor(tau_family, 0.5)
        tau_scale = median / m
        if not (math.isfinite(tau_scale) and tau_scale > 0):
            raise BusinessPriorError(f"typical_spread {s.value:g} gives no positive tau on {scale}")
        tau_formula = (f"tau_scale = f(value) / {m:.6g} with f(x) = {t.formula} and {m:.6g} the median of "
                       f"{tau_family} at scale 1: the stated spread is the prior median of tau")
        text.append(f"typical spread {_spread_text(s.value, s.unit)} (study-to-study, the prior median of tau) → "
                    f"tau ~ {tau_family}({_model_number(tau_scale)}) on {scale}")
    provenance = PriorProvenance(scale=scale, tau_family=tau_family, expected_effect=expected_effect,
                                 typical_spread=typical_spread, mu_formula=mu_formula, tau_formula=tau_formula,
                                 text=tuple(text))
    return BusinessPriors(mu_mean=mu_mean, mu_sd=mu_sd, tau_scale=tau_scale, provenance=provenance)


def implied_business_terms(mu_mean: float, mu_sd: float, tau_scale: float, *, scale: str, tau_family: str,
                           unit: str | None = None, level: float = 0.95) -> ImpliedPriors:
    """What the priors mu ~ N(mu_mean, mu_sd²), tau ~ tau_family(tau_scale) say in ``unit``
    (default: relative_percent on log_relative, percentage_point on percentage_point): the central
    ``level`` interval of mu and tau's prior median and 95 % quantile."""
    if not (mu_sd > 0 and tau_scale > 0 and 0 < level < 1):
        raise BusinessPriorError("mu_sd and tau_scale must be > 0 and level in (0, 1)")
    unit = unit or DEFAULT_UNIT.get(scale, "")
    t = _transform(unit, scale, "the")
    z = _z(level)
    lower, upper = float(t.inverse(mu_mean - z * mu_sd)), float(t.inverse(mu_mean + z * mu_sd))
    median = float(t.inverse(tau_quantile_factor(tau_family, 0.5) * tau_scale))
    q95 = float(t.inverse(tau_quantile_factor(tau_family, 0.95) * tau_scale))
    text = (f"the priors say: effect {_range_text(lower, upper, unit, '.3g')} ({100 * level:g} %); study-to-study "
            f"spread {_spread_text(median, unit, '.3g')} typical (prior median), below "
            f"{_spread_text(q95, unit, '.3g')} with 95 % probability")
    return ImpliedPriors(unit=unit, level=level, lower=lower, upper=upper, spread_median=median,
                         spread_q95=q95, text=text)
