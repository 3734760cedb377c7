"""The analysis config: pydantic models (``extra="forbid"``) for every key of SPEC §3.

Scale-aware defaults (priors, uncertainty scenarios) are left unset here and resolved by the
compiler, which records whether each value came from the config or from the default.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..settings import Diagnostics, Materiality, Reporting, Sampler
from ..vocabulary import Scale, TauFamilyName

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


FILTER_COLUMNS = ("brand", "market", "channel", "population", "design")
FilterColumn = Literal[FILTER_COLUMNS]  # type: ignore[valid-type]
PoolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=80)]


class Analysis(_Strict):
    metric: str | None = Field(None, min_length=1, description="the tracker metric to pool (required unless "
                                                                "every entry of `pools` names its metric)")
    scale: Scale = "log_relative"
    evidence_types: list[str] | None = Field(None, min_length=1, description="evidence types allowed into the pool")
    triangulate_only_justification: str | None = Field(
        None, min_length=1,
        description="written reason to let triangulate-only rows (mmm; roi, iroas, cpa, cpo, pa2) into the pool")
    split_by: list[FilterColumn] | None = Field(
        None, min_length=1, description="one pool per distinct value (combination) of these tracker columns")

    @field_validator("split_by")
    @classmethod
    def _distinct(cls, cols: list[str] | None) -> list[str] | None:
        if cols is not None and len(set(cols)) != len(cols):
            raise ValueError("split_by lists a column twice")
        return cols


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


class PoolConfig(_Strict):
    """One named pool; unset keys take the values of ``analysis``, ``priors`` (key by key) and
    ``sensitivity`` (as a whole)."""

    name: PoolName
    metric: str | None = Field(None, min_length=1)
    scale: Scale | None = None
    evidence_types: list[str] | None = Field(None, min_length=1)
    filters: dict[FilterColumn, list[str]] = Field(
        default_factory=dict, description="tracker column -> accepted values (case-insensitive)")
    triangulate_only_justification: str | None = Field(None, min_length=1)
    priors: Priors | None = None
    sensitivity: Sensitivity | None = None

    @field_validator("filters")
    @classmethod
    def _values(cls, filters: dict[str, list[str]]) -> dict[str, list[str]]:
        for column, values in filters.items():
            if not values:
                raise ValueError(f"filter '{column}' lists no value")
        return filters


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
    pools: list[PoolConfig] | None = Field(None, min_length=1, description="several named pools in one plan")

    @model_validator(mode="after")
    def _pools_complete(self) -> Config:
        a = self.analysis
        if self.pools is None:
            missing = [k for k in ("metric", "evidence_types") if getattr(a, k) is None]
            if missing:
                raise ValueError(f"analysis.{' and analysis.'.join(missing)} required (or list `pools`)")
            return self
        names = [p.name for p in self.pools]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(repeated)}")
        for p in self.pools:
            missing = [k for k in ("metric", "evidence_types") if getattr(p, k) is None and getattr(a, k) is None]
            if missing:
                raise ValueError(f"pool '{p.name}' has no {' and no '.join(missing)} (set it on the pool or in "
                                 "analysis)")
        return self
