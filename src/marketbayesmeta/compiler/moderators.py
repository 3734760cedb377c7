"""The design matrix of a meta-regression (issue 20): pooled tracker rows + ``analysis.moderators``.

Pure: a table in, a :class:`DesignMatrix` out (no I/O, no PyMC). Each moderator is

* the built-in ``duration_days``: window_end - window_start + 1, in days, from the ISO dates;
* a tracker column whose non-empty values (in the pooled rows) all parse as finite numbers:
  **numeric**, centred at the pooled rows' mean, so the intercept is the effect of a study that is
  average in that moderator (and the slope is per unit of the column, e.g. per day);
* any other tracker column (or one listed in ``categorical``): **categorical**, dummy coded against
  a reference level (the first level in sorted order unless ``reference_levels`` names one); each
  coefficient is the difference between its level and the reference level.

Problems are reported with a code. Errors (the compile stops, :class:`ModeratorError`): unknown or
reserved column, a moderator that is empty in pooled rows, a column of numbers with a few text
cells (a typo such as "1,000"; list it under ``categorical`` if its values are labels), a constant
moderator, an unknown reference level, levels differing only in case, collinear moderators, and
more coefficients than the rows can carry (p coefficients need at least p + 2 rows: two left over for tau). Not an error:
a level with fewer than ``min_rows_per_level`` pooled rows makes the analysis *exploratory*
(recorded in ``DesignMatrix.problems`` and in the flags of its terms and subgroups).

Priors (:func:`beta_priors`): the intercept takes mu's prior; every other coefficient
N(0, beta_sd^2) per level difference, or per one standard deviation of a numeric moderator among
the pooled rows (N(0, (beta_sd / sd_x)^2) per unit). ``beta_sd`` defaults to the scale's default
``mu_sd`` (:func:`resolve_beta_sd`).
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..design import DesignMatrix, DesignTerm, ModeratorProblem, Subgroup
from ..errors import ConfigError, Problem
from ..plan import Provenanced
from .config import DEFAULT_PRIORS
from .tracker import _numbers

__all__ = [
    "DURATION",
    "DesignMatrix",
    "DesignTerm",
    "ModeratorError",
    "ModeratorProblem",
    "ModeratorsConfig",
    "Subgroup",
    "beta_priors",
    "build_design",
    "resolve_beta_sd",
]

DURATION = "duration_days"
INTERCEPT = "intercept"
# Tracker columns that identify a study, carry its estimate or uncertainty, or are free text.
RESERVED: tuple[str, ...] = (
    "row", "study_id", "study_name", "estimate", "standard_error", "ci_lower", "ci_upper", "ci_level",
    "uncertainty_scenario", "analysis_ready", "notes", "window_start", "window_end",
)
_NAME = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _normalise(name: str) -> str:
    return name.strip().lower()  # tracker column names are stripped and lower-cased


class ModeratorsConfig(_Strict):
    """The config keys of a meta-regression (the lead places them in the config file)."""

    moderators: list[_NAME] = Field(
        default_factory=list,
        description="tracker columns (or the built-in duration_days) that may explain why studies differ")
    reference_levels: dict[_NAME, _NAME] = Field(
        default_factory=dict, description="categorical moderator -> its reference level (default: first in sorted order)")
    categorical: list[_NAME] = Field(
        default_factory=list, description="moderators to treat as categorical even when their values are numbers")
    min_rows_per_level: int = Field(
        2, ge=1, description="a level with fewer pooled rows makes the meta-regression exploratory")
    beta_sd: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="prior sd of a moderator's coefficient (per level difference, or per one sd of a numeric "
                    "moderator), on the model scale; default: the scale's default mu_sd")

    @field_validator("moderators", "categorical")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        names = [_normalise(n) for n in names]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"moderators must be unique; repeated: {', '.join(dup)}")
        return names

    @field_validator("reference_levels")
    @classmethod
    def _reference_keys(cls, levels: dict[str, str]) -> dict[str, str]:
        return {_normalise(k): v.strip() for k, v in levels.items()}

    @model_validator(mode="after")
    def _known_keys(self) -> ModeratorsConfig:
        for key, names in (("reference_levels", list(self.reference_levels)), ("categorical", self.categorical)):
            stray = [n for n in names if n not in self.moderators]
            if stray:
                raise ValueError(f"{key} names {', '.join(stray)}, not listed in moderators")
        return self


class ModeratorError(ConfigError):
    """The moderators cannot be used as configured; ``details`` lists every problem found."""

    def __init__(self, message: str, problems: list[Problem], details: list[ModeratorProblem]):
        super().__init__(message, problems)
        self.details = details


def resolve_beta_sd(config: ModeratorsConfig, scale: str) -> Provenanced:
    """``beta_sd`` with its provenance (default: the scale's default mu_sd)."""
    if config.beta_sd is None:
        return Provenanced(value=float(DEFAULT_PRIORS[scale]["mu_sd"]), provenance="default")
    return Provenanced(value=float(config.beta_sd), provenance="config")


def beta_priors(design: DesignMatrix, *, mu_mean: float, mu_sd: float,
                beta_sd: float) -> tuple[list[float], list[float]]:
    """Prior means and sds of the coefficients, term by term: the intercept N(mu_mean, mu_sd^2);
    a level difference N(0, beta_sd^2); a numeric slope N(0, (beta_sd / sd_x)^2) per unit of x."""
    means, sds = [], []
    for term in design.terms:
        if term.kind == "intercept":
            means.append(float(mu_mean))
            sds.append(float(mu_sd))
        else:
            means.append(0.0)
            sds.append(float(beta_sd) / (design.spread[term.moderator] if term.kind == "numeric" else 1.0))
    return means, sds


# ----------------------------------------------------------------------------- building


class _Collector:
    def __init__(self, rows: list[int], study_ids: list[str], config_file: str, tracker_file: str):
        self.rows, self.study_ids = rows, study_ids
        self.config_file, self.tracker_file = config_file, tracker_file
        self.details: list[ModeratorProblem] = []
        self.problems: list[Problem] = []

    def error(self, code: str, moderator: str | None, message: str, *, accepted: str | None = None,
              at: np.ndarray | None = None) -> None:
        idx = [] if at is None else np.flatnonzero(at).tolist()
        self.details.append(ModeratorProblem(
            code=code, severity="error", moderator=moderator, message=message,
            rows=[self.rows[i] for i in idx], study_ids=[self.study_ids[i] for i in idx]))
        if idx:  # located in the tracker: one problem per row
            self.problems += [Problem(file=self.tracker_file, row=self.rows[i], column=moderator, value="",
                                      message=message, accepted=accepted) for i in idx]
        else:
            self.problems.append(Problem(file=self.config_file, column="analysis.moderators", value=moderator,
                                         message=message, accepted=accepted))

    def exploratory(self, code: str, moderator: str, message: str, at: np.ndarray) -> None:
        idx = np.flatnonzero(at).tolist()
        self.details.append(ModeratorProblem(
            code=code, severity="exploratory", moderator=moderator, message=message,
            rows=[self.rows[i] for i in idx], study_ids=[self.study_ids[i] for i in idx]))

    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.details)


def _where(rows: list[int], study_ids: list[str], mask: np.ndarray, limit: int = 10) -> str:
    idx = np.flatnonzero(mask).tolist()
    text = ", ".join(f"row {rows[i]} ({study_ids[i]})" for i in idx[:limit])
    return text + (f" and {len(idx) - limit} more" if len(idx) > limit else "")


def _durations(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(days, missing) from window_start/window_end (validated ISO dates or empty)."""
    start = frame.get("window_start", pd.Series([""] * len(frame), index=frame.index)).astype(str).str.strip()
    end = frame.get("window_end", pd.Series([""] * len(frame), index=frame.index)).astype(str).str.strip()
    missing = ((start == "") | (end == "")).to_numpy(dtype=bool)
    days = np.array([np.nan if gone else (dt.date.fromisoformat(e[:10]) - dt.date.fromisoformat(s[:10])).days + 1.0
                     for s, e, gone in zip(start.tolist(), end.tolist(), missing.tolist(), strict=True)])
    return days, missing


def build_design(rows: pd.DataFrame, config: ModeratorsConfig, *, config_file: str = "config.yaml",
                 tracker_file: str = "tracker.csv") -> DesignMatrix:
    """The design matrix of ``config.moderators`` over the pooled ``rows`` (a tracker table as
    ``compiler.tracker.parse_tracker`` returns it, restricted to the pool, in pool order).

    Raises :class:`ModeratorError` listing every blocking problem; exploratory ones are returned in
    ``DesignMatrix.problems``.
    """
    k = len(rows)
    sheet_rows = [int(r) for r in rows["row"].tolist()]
    study_ids = [str(s) for s in rows["study_id"].tolist()]
    out = _Collector(sheet_rows, study_ids, config_file, tracker_file)
    min_rows = config.min_rows_per_level
    candidates = sorted({c for c in rows.columns if c not in RESERVED} | {DURATION})

    columns: list[np.ndarray] = []
    terms = [DesignTerm(name=INTERCEPT, moderator=None, kind="intercept", level=None, exploratory=False)]
    centring: dict[str, float] = {}
    spread: dict[str, float] = {}
    level_counts: dict[str, dict[str, int]] = {}
    references: dict[str, str] = {}
    indicators: dict[str, dict[str, np.ndarray]] = {}  # categorical moderator -> level -> rows at it

    for name in config.moderators:
        if name in RESERVED:
            out.error("reserved_column", name, f"'{name}' identifies a study or carries its estimate, "
                      "uncertainty or notes; it cannot be a moderator",
                      accepted="a descriptive tracker column such as channel or design, or duration_days")
            continue
        if name == DURATION and name in rows.columns:
            out.error("ambiguous_moderator", name, "the tracker has a column named duration_days, which clashes "
                      "with the built-in duration_days (window_end - window_start + 1); rename the column")
            continue
        if name == DURATION:
            values, missing = _durations(rows)
            raw = None
            what = "window_start and window_end"
        elif name not in rows.columns:
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
            out.error("unknown_moderator", name, f"moderator '{name}' is not a tracker column"
                      + (f"; did you mean '{close[0]}'?" if close else ""),
                      accepted=", ".join(candidates))
            continue
        else:
            raw = rows[name].astype(str).str.strip()
            missing = (raw == "").to_numpy(dtype=bool)
            what = f"column '{name}'"
        if missing.any():
            out.error("missing_values", name,
                      f"moderator '{name}' has no value ({what} empty) in {int(missing.sum())} pooled row(s): "
                      f"{_where(sheet_rows, study_ids, missing)}",
                      accepted="a value in every pooled row (or leave the row out of the pool, or drop the "
                               "moderator)", at=missing)
            continue
        if raw is not None:
            values, numeric, _ = _numbers(raw)
            if name not in config.categorical and numeric.mean() >= 0.5 and not numeric.all():
                out.error("mixed_numeric", name,
                          f"moderator '{name}' holds numbers in most pooled rows but text in "
                          f"{int((~numeric).sum())}: {_where(sheet_rows, study_ids, ~numeric)}",
                          accepted=f"numbers only in '{name}' (no thousands separators or units), or list "
                                   f"'{name}' under categorical to treat its values as labels", at=~numeric)
                continue
            if name in config.categorical or not numeric.all():
                _categorical(name, raw, config, out, terms, columns, level_counts, references, indicators)
                continue
        if name in config.reference_levels:
            out.error("reference_for_numeric", name, f"moderator '{name}' is numeric; reference_levels apply "
                      "to categorical moderators", accepted=f"list '{name}' under categorical, or drop its "
                      "reference level")
            continue
        if np.ptp(values) == 0:
            out.error("constant_moderator", name, f"moderator '{name}' is {values[0]:g} in every pooled row; "
                      "a constant explains nothing", accepted="a moderator that varies between pooled studies")
            continue
        centring[name] = float(values.mean())
        spread[name] = float(values.std(ddof=1))
        columns.append(values - centring[name])
        terms.append(DesignTerm(name=name, moderator=name, kind="numeric", level=None, exploratory=False))

    if not out.has_errors():
        _check_capacity(out, terms, columns, k)
    if out.has_errors():
        errors = [d for d in out.details if d.severity == "error"]
        raise ModeratorError(f"{len(errors)} problem(s) with analysis.moderators", out.problems, errors)

    matrix = np.column_stack([np.ones(k), *columns]) if columns else np.ones((k, 1))
    subgroups = _subgroups(terms, indicators, references, level_counts, min_rows, k)
    problems = [d for d in out.details if d.severity == "exploratory"]
    return DesignMatrix(
        moderators=list(config.moderators), terms=terms, study_ids=study_ids, rows=sheet_rows,
        matrix=matrix.tolist(), reference_levels=references, centring=centring, spread=spread,
        level_counts=level_counts, subgroups=subgroups, min_rows_per_level=min_rows,
        exploratory=bool(problems), problems=problems)


def _categorical(name, raw, config, out, terms, columns, level_counts, references, indicators) -> None:
    values = raw.to_numpy(dtype=object)
    levels = sorted(set(values.tolist()))
    by_case: dict[str, list[str]] = {}
    for level in levels:
        by_case.setdefault(level.lower(), []).append(level)
    clashes = [group for group in by_case.values() if len(group) > 1]
    if clashes:
        out.error("levels_differ_by_case", name, f"moderator '{name}' has levels that differ only in case: "
                  + "; ".join(" / ".join(f"'{v}'" for v in group) for group in clashes),
                  accepted="one spelling per level")
        return
    if len(levels) == 1:
        out.error("constant_moderator", name, f"moderator '{name}' is '{levels[0]}' in every pooled row; "
                  "a constant explains nothing", accepted="a moderator that varies between pooled studies")
        return
    reference = config.reference_levels.get(name, levels[0])
    if reference not in levels:
        close = difflib.get_close_matches(reference, levels, n=1, cutoff=0.6)
        out.error("unknown_reference_level", name, f"reference level '{reference}' of moderator '{name}' does "
                  "not occur in the pooled rows" + (f"; did you mean '{close[0]}'?" if close else ""),
                  accepted=", ".join(levels))
        return
    at = {level: values == level for level in levels}
    counts = {level: int(mask.sum()) for level, mask in at.items()}
    min_rows = config.min_rows_per_level
    for level in levels:
        if counts[level] < min_rows:
            out.exploratory("few_rows_per_level", name,
                            f"level '{level}' of moderator '{name}' has {counts[level]} pooled row(s), fewer than "
                            f"min_rows_per_level = {min_rows}: its comparison is exploratory", at[level])
    level_counts[name], references[name], indicators[name] = counts, reference, at
    for level in levels:
        if level != reference:
            columns.append(at[level].astype(float))
            terms.append(DesignTerm(name=f"{name}[{level}]", moderator=name, kind="categorical", level=level,
                                    exploratory=min(counts[level], counts[reference]) < min_rows))


def _check_capacity(out: _Collector, terms: list[DesignTerm], columns: list[np.ndarray], k: int) -> None:
    p = len(terms)
    if p > k - 2:
        listing = ", ".join(t.name for t in terms)
        out.error("too_many_coefficients", None,
                  f"the moderators need {p} coefficients ({listing}) but the pool has {k} row(s); a "
                  f"meta-regression with {p} coefficients needs at least {p + 2} rows (two left over to "
                  "estimate the spread between studies)",
                  accepted="fewer moderators, or categorical levels merged, or more studies")
        return
    matrix = np.column_stack([np.ones(k), *columns])
    rank = 0
    for j in range(p):  # the first column the earlier ones already explain
        new_rank = np.linalg.matrix_rank(matrix[:, : j + 1])
        if new_rank == rank:
            others = sorted({t.moderator or INTERCEPT for t in terms[:j]})
            out.error("collinear_moderators", terms[j].moderator,
                      f"term '{terms[j].name}' is a combination of earlier terms ({', '.join(others)}) in the "
                      "pooled rows, so their effects cannot be told apart",
                      accepted="moderators that vary independently in the pooled rows (drop one of them)")
            return
        rank = new_rank


def _subgroups(terms, indicators, references, level_counts, min_rows, k) -> list[Subgroup]:
    index = {t.name: j for j, t in enumerate(terms)}
    average = np.zeros(len(terms))
    average[0] = 1.0
    for name, at in indicators.items():  # other categorical moderators in their pooled proportions
        for level, mask in at.items():
            if level != references[name]:
                average[index[f"{name}[{level}]"]] = mask.sum() / k
    out = []
    for name, at in indicators.items():
        for level in at:
            c = average.copy()
            for other in at:
                if other != references[name]:
                    c[index[f"{name}[{other}]"]] = 1.0 if other == level else 0.0
            out.append(Subgroup(moderator=name, level=level, reference=level == references[name],
                                n_rows=level_counts[name][level], exploratory=level_counts[name][level] < min_rows,
                                contrast=c.tolist()))
    return out
