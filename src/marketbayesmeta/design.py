"""The design matrix of a meta-regression as the plan records it (built by
:mod:`marketbayesmeta.compiler.moderators`, read by the runtime and the report)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModeratorProblem(_Strict):
    code: str
    severity: Literal["error", "exploratory"]
    moderator: str | None
    message: str
    rows: list[int] = Field(default_factory=list, description="spreadsheet rows (header = 1)")
    study_ids: list[str] = Field(default_factory=list)


class DesignTerm(_Strict):
    name: str  # "intercept", "duration_days", "channel[search]"
    moderator: str | None  # None for the intercept
    kind: Literal["intercept", "numeric", "categorical"]
    level: str | None  # categorical terms: the level this dummy marks
    exploratory: bool  # its level (or the reference level) has fewer than min_rows_per_level rows


class Subgroup(_Strict):
    """One level of a categorical moderator: ``contrast``'beta is its mean effect (model scale) for a
    study average in every other moderator (numeric ones at their pooled mean, other categorical
    ones in their pooled proportions)."""

    moderator: str
    level: str
    reference: bool
    n_rows: int
    exploratory: bool
    contrast: list[float]


class DesignMatrix(_Strict):
    """X of the meta-regression, one row per pooled tracker row (in the order given)."""

    moderators: list[str]
    terms: list[DesignTerm]
    study_ids: list[str]
    rows: list[int]  # spreadsheet rows (header = 1)
    matrix: list[list[float]]  # len(rows) x len(terms); numeric columns centred
    reference_levels: dict[str, str]
    centring: dict[str, float]  # numeric moderator -> the pooled rows' mean subtracted
    spread: dict[str, float]  # numeric moderator -> sd over the pooled rows (the prior's unit)
    level_counts: dict[str, dict[str, int]]  # categorical moderator -> level -> pooled rows
    subgroups: list[Subgroup]
    min_rows_per_level: int
    exploratory: bool
    problems: list[ModeratorProblem]  # non-blocking ones (severity "exploratory")

    @property
    def term_names(self) -> list[str]:
        return [t.name for t in self.terms]

    def array(self) -> np.ndarray:
        return np.asarray(self.matrix, dtype=float).reshape(len(self.rows), len(self.terms))
