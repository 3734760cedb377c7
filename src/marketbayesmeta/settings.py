"""Settings the config states and the plan records as they are (one model each, shared).

The compiler copies them from the config into the plan unchanged; the runtime reads them from the
plan. They live outside ``compiler/`` because the runtime may not import the compiler.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .vocabulary import NutsSampler, OnFailure


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sampler(_Strict):
    chains: int = Field(4, ge=1, le=64)
    draws: int = Field(1000, ge=10, le=1_000_000)
    tune: int = Field(1000, ge=0, le=1_000_000)
    target_accept: float = Field(0.9, gt=0, lt=1)
    random_seed: int = Field(20260603, ge=0, le=2**32 - 1)
    nuts_sampler: NutsSampler = Field(
        "pymc", description="pymc (default) or nutpie (needs the nutpie extra)")
    check: Literal["main", "all"] = Field(
        "main", description="which fits PyMC samples as a check of the exact numbers: the main fit "
                            "(default) or every fit of the sensitivity grid")
    max_draws: int | None = Field(
        None, ge=10, le=8_000_000,
        description="when only Monte Carlo precision checks fail, draws are doubled up to this many per "
                    "chain (default 8 × draws)")

    @model_validator(mode="after")
    def _max_draws(self) -> Sampler:
        if self.max_draws is not None and self.max_draws < self.draws:
            raise ValueError(f"max_draws ({self.max_draws}) must be >= draws ({self.draws})")
        return self

    @property
    def draw_limit(self) -> int:
        """Most draws per chain a self-extending check may use."""
        return 8 * self.draws if self.max_draws is None else self.max_draws


class Diagnostics(_Strict):
    max_rhat: float = Field(1.01, gt=1, allow_inf_nan=False)
    min_ess_bulk: float = Field(400, ge=0, allow_inf_nan=False)
    min_ess_tail: float = Field(400, ge=0, allow_inf_nan=False)
    max_divergences: int = Field(0, ge=0)
    max_exact_z: float = Field(4.0, gt=0, allow_inf_nan=False)
    min_bfmi: float = Field(0.3, ge=0, allow_inf_nan=False)
    on_failure: OnFailure = "block"


class Materiality(_Strict):
    """When prior dependence counts as material (SPEC §7 reportability)."""

    mean_shift_sd: float = Field(0.5, gt=0, description="|Δ mean(mu)| in units of the reference fit's sd(mu)")
    prob_positive_shift: float = Field(0.10, gt=0, lt=1, description="|Δ P(mu > 0)|")
    prob_positive_crosses_half: bool = Field(True, description="P(mu > 0) on the other side of 0.5")
    interval_width_change: float = Field(0.25, gt=0, description="|relative change| of interval width")


class Reporting(_Strict):
    interval: float = Field(0.95, gt=0.5, lt=1, description="equal-tailed posterior interval level")
    summaries: Literal["exact", "mcmc"] = Field(
        "exact", description="which engine produces the reported numbers: exact (quadrature, default) or "
                             "mcmc (summaries of the PyMC draws, as in 0.4)")
    forest_order: Literal["window_end", "effect", "tracker"] = Field(
        "window_end", description="order of the studies in the forest plot")
