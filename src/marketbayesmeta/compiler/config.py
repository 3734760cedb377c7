"""The analysis config: pydantic models (``extra="forbid"``) for every key of SPEC §3.

Scale-aware defaults (priors, uncertainty scenarios) are left unset here and resolved by the
compiler, which records whether each value came from the config or from the default.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..vocabulary import NutsSampler, OnFailure, Scale, TauFamilyName

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

# Scale-aware defaults (SPEC §3; the scenario SEs are documented in the README).
DEFAULT_PRIORS: dict[str, dict[str, float | str]] = {
    "log_relative": {"mu_mean": 0.0, "mu_sd": 1.0, "tau_scale": 0.5, "tau_family": "half_normal"},
    "percentage_point": {"mu_mean": 0.0, "mu_sd": 10.0, "tau_scale": 5.0, "tau_family": "half_normal"},
}
DEFAULT_SCENARIOS: dict[str, dict[str, float]] = {
    "log_relative": {"low": 0.02, "medium": 0.05, "high": 0.10},
    "percentage_point": {"low": 0.2, "medium": 0.5, "high": 1.0},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Project(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=120,
                      description="letters, digits, _ and -")
    notes: str = Field("", max_length=20000, description="free text; recorded, never executed")


class Data(_Strict):
    tracker: str = Field(min_length=1, description="tracker CSV, relative to the config file")


class Analysis(_Strict):
    metric: str = Field(min_length=1, description="the tracker metric to pool")
    scale: Scale = "log_relative"
    evidence_types: list[str] = Field(min_length=1, description="evidence types allowed into the pool")
    triangulate_only_justification: str | None = Field(
        None, min_length=1,
        description="written reason to let triangulate-only rows (mmm; roi, iroas, cpa, cpo, pa2) into the pool")


class Priors(_Strict):
    mu_mean: FiniteFloat | None = None
    mu_sd: PositiveFloat | None = None
    tau_scale: PositiveFloat | None = None
    tau_family: TauFamilyName | None = None


class Scenarios(_Strict):
    low: PositiveFloat | None = None
    medium: PositiveFloat | None = None
    high: PositiveFloat | None = None


class Uncertainty(_Strict):
    scenarios: Scenarios = Scenarios()


class Sampler(_Strict):
    chains: int = Field(4, ge=1, le=64)
    draws: int = Field(1000, ge=10, le=1_000_000)
    tune: int = Field(1000, ge=0, le=1_000_000)
    target_accept: float = Field(0.9, gt=0, lt=1)
    random_seed: int = Field(20260603, ge=0, le=2**32 - 1)
    nuts_sampler: NutsSampler = Field(
        "pymc", description="pymc (default) or nutpie (needs the nutpie extra)")


class Diagnostics(_Strict):
    max_rhat: float = Field(1.01, gt=1, allow_inf_nan=False)
    min_ess_bulk: float = Field(400, ge=0, allow_inf_nan=False)
    min_ess_tail: float = Field(400, ge=0, allow_inf_nan=False)
    max_divergences: int = Field(0, ge=0)
    max_exact_z: float = Field(4.0, gt=0, allow_inf_nan=False)
    min_bfmi: float = Field(0.3, ge=0, allow_inf_nan=False)
    on_failure: OnFailure = "block"


class Readiness(_Strict):
    min_rows_directional: int = Field(3, ge=1)
    min_rows_ready: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Readiness:
        if self.min_rows_ready < self.min_rows_directional:
            raise ValueError("min_rows_ready must be >= min_rows_directional")
        return self


class PriorSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=60)
    mu_mean: FiniteFloat | None = None
    mu_sd: PositiveFloat | None = None
    tau_scale: PositiveFloat | None = None
    tau_family: TauFamilyName | None = None


class Materiality(_Strict):
    """When prior dependence counts as material (SPEC §7 reportability)."""

    mean_shift_sd: float = Field(0.5, gt=0, description="|Δ mean(mu)| in units of the reference fit's sd(mu)")
    prob_positive_shift: float = Field(0.10, gt=0, lt=1, description="|Δ P(mu > 0)|")
    prob_positive_crosses_half: bool = Field(True, description="P(mu > 0) on the other side of 0.5")
    interval_width_change: float = Field(0.25, gt=0, description="|relative change| of interval width")


class Sensitivity(_Strict):
    prior: bool = True
    uncertainty: bool = True
    leave_one_out: bool = False
    prior_specs: list[PriorSpec] | None = None
    materiality: Materiality = Materiality()

    @field_validator("prior_specs")
    @classmethod
    def _unique_names(cls, specs: list[PriorSpec] | None) -> list[PriorSpec] | None:
        if specs is not None:
            names = [s.name for s in specs]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"prior spec names must be unique; repeated: {', '.join(dup)}")
            if not specs:
                raise ValueError("prior_specs must list at least one spec (or be omitted for the default grid)")
        return specs


class Reporting(_Strict):
    interval: float = Field(0.95, gt=0.5, lt=1)


class Outputs(_Strict):
    directory: str | None = Field(None, min_length=1, description="default: output/<project.name> next to the config")


class Config(_Strict):
    """A marketbayesmeta analysis config (version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="marketbayesmeta config")

    version: Literal[1] = 1
    project: Project
    data: Data
    analysis: Analysis
    priors: Priors = Priors()
    uncertainty: Uncertainty = Uncertainty()
    sampler: Sampler = Sampler()
    diagnostics: Diagnostics = Diagnostics()
    readiness: Readiness = Readiness()
    sensitivity: Sensitivity = Sensitivity()
    reporting: Reporting = Reporting()
    outputs: Outputs = Outputs()
