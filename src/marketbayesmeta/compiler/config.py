"""The analysis config: pydantic models (``extra="forbid"``) for every key of SPEC §3.

Scale-aware defaults (priors, uncertainty scenarios) are left unset here and resolved by the
compiler, which records whether each value came from the config or from the default.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..checks import Acknowledgement
from ..settings import Count, Diagnostics, Materiality, Reporting, Sampler
from ..vocabulary import Scale, TauFamilyName
from .business_priors import ExpectedEffect, TypicalSpread
from .triangulate import TriangulateOnlyExtension
from .units import MODEL_SE_RANGE

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# A configured model-scale SE must be usable by the fit, like one computed from a tracker row.
ModelSE = Annotated[float, Field(ge=MODEL_SE_RANGE[0], le=MODEL_SE_RANGE[1], allow_inf_nan=False)]

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
    triangulate_only: TriangulateOnlyExtension | None = Field(
        None, description="more evidence types / metrics to treat as triangulate-only (besides the built-in list)")
    moderators: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, min_length=1, description="meta-regression: tracker columns (or the built-in duration_days) that "
                                        "may explain why studies differ")
    reference_levels: dict[str, str] = Field(
        default_factory=dict, description="categorical moderator -> its reference level (default: first sorted)")
    categorical: list[str] = Field(
        default_factory=list, description="moderators to treat as categorical even when their values are numbers")
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
    expected_effect: ExpectedEffect | None = Field(
        None, description="mu's prior stated as the range the effect is expected in (instead of mu_mean, mu_sd)")
    typical_spread: TypicalSpread | None = Field(
        None, description="tau's prior median, the typical study-to-study spread (instead of tau_scale)")
    justification: str | None = Field(
        None, min_length=1, description="why these priors (priors set without one are listed as a reason)")
    beta_sd: PositiveFloat | None = Field(
        None, description="meta-regression: prior sd of a moderator's coefficient (per level difference, or per "
                          "one sd of a numeric moderator), model scale; default: mu's prior sd")

    @model_validator(mode="after")
    def _one_form(self) -> Priors:
        if self.expected_effect is not None and (self.mu_mean is not None or self.mu_sd is not None):
            raise ValueError("give either expected_effect or mu_mean/mu_sd, not both")
        if self.typical_spread is not None and self.tau_scale is not None:
            raise ValueError("give either typical_spread or tau_scale, not both")
        return self

    @property
    def stated(self) -> bool:
        """Whether the config sets any prior value (not only a justification)."""
        return any(getattr(self, k) is not None for k in ("mu_mean", "mu_sd", "tau_scale", "tau_family",
                                                         "expected_effect", "typical_spread", "beta_sd"))


class Scenarios(_Strict):
    low: ModelSE | None = None
    medium: ModelSE | None = None
    high: ModelSE | None = None


class Uncertainty(_Strict):
    scenarios: Scenarios = Scenarios()


class Readiness(_Strict):
    min_rows_directional: Count = Field(3, ge=1)
    min_rows_ready: Count = Field(4, ge=1)
    min_rows_per_level: Count = Field(2, ge=1, description="meta-regression: a level with fewer pooled rows makes "
                                                         "the analysis exploratory")

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
    leave_one_out: bool = Field(True, description="influence.csv: mu with each study left out (exact)")
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
    acknowledge: list[Acknowledgement] | None = Field(
        None, description="plausibility checks accepted with a written reason: {row: STUDY_ID, check: CODE, why}")

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
