"""Plausibility checks and their acknowledgements: the shared types (pure).

A :class:`Check` is one finding about the rows that could enter a pool: a code, a severity, the
spreadsheet rows and study ids it concerns, a message naming the rows and the fix, and (where one
is obvious) a suggested correction. The checks themselves are computed by
:mod:`.plausibility` (numbers and comparability) and :mod:`.triangulate` (model outputs).

Rules:

* Each code has one severity (:data:`CHECK_SEVERITY`). ``blocking`` checks make a run
  non-reportable until acknowledged; ``review`` checks are reasons for the reviewer.
* An :class:`Acknowledgement` (config: ``acknowledge: [{row: STUDY_ID, check: CODE, why: "..."}]``)
  matches every check with that code whose ``study_ids`` contain ``row``. For a check about several
  rows (mixed designs, non-overlapping windows, ...) any of its study ids acknowledges it.
* An acknowledged check stays in every output, marked ``acknowledged`` with the written ``why``;
  it no longer blocks (:attr:`Check.blocks`).
* An acknowledgement that matches no check, or repeats an earlier one, is a problem to report
  (the data may have been fixed since; remove the stale entry).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Severity = Literal["blocking", "review"]
CheckCode = Literal[
    "unit_shift", "se_outlier", "dominant_weight", "outlying_estimate", "estimate_at_ci_edge",
    "mixed_designs", "mixed_populations", "non_overlapping_windows", "possible_model_output",
]
# code -> severity; the order is the order in which checks are listed (blocking first).
CHECK_SEVERITY: dict[str, Severity] = {
    "unit_shift": "blocking",
    "se_outlier": "review",
    "dominant_weight": "review",
    "outlying_estimate": "review",
    "estimate_at_ci_edge": "review",
    "mixed_designs": "review",
    "mixed_populations": "review",
    "non_overlapping_windows": "review",
    "possible_model_output": "review",
}
CHECK_CODES: tuple[str, ...] = tuple(CHECK_SEVERITY)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Check(_Frozen):
    """One plausibility finding about one or more rows of a pool."""

    code: CheckCode
    severity: Severity
    rows: tuple[int, ...] = Field(description="spreadsheet rows (header = 1), ascending")
    study_ids: tuple[str, ...] = Field(description="study ids of those rows, same order")
    message: str = Field(description="names the rows and the fix")
    suggestion: str | None = Field(None, description="the probable correction, e.g. a unit")
    details: dict[str, Any] = Field(default_factory=dict, description="the numbers behind the check")
    acknowledged: bool = False
    acknowledgement: str | None = Field(None, description="the written why of the acknowledgement(s)")

    @property
    def blocks(self) -> bool:
        """True for an unacknowledged blocking check."""
        return self.severity == "blocking" and not self.acknowledged


def make_check(code: str, rows: Sequence[int], study_ids: Sequence[str], message: str, *,
               suggestion: str | None = None, details: dict[str, Any] | None = None) -> Check:
    """A :class:`Check` with the code's severity; rows sorted ascending (ids kept in step)."""
    order = sorted(range(len(rows)), key=lambda i: rows[i])
    return Check(code=code, severity=CHECK_SEVERITY[code], rows=tuple(int(rows[i]) for i in order),
                 study_ids=tuple(str(study_ids[i]) for i in order), message=message,
                 suggestion=suggestion, details=details or {})


def sort_checks(checks: Iterable[Check]) -> tuple[Check, ...]:
    """Blocking first, then by code (order of :data:`CHECK_CODES`), then by first row."""
    return tuple(sorted(checks, key=lambda c: (c.severity != "blocking", CHECK_CODES.index(c.code),
                                               c.rows[:1], c.study_ids)))


class Acknowledgement(_Frozen):
    """``acknowledge: [{row: STUDY_ID, check: CODE, why: "..."}]``: a check accepted with a reason."""

    row: str = Field(min_length=1, description="the study_id of the row the check names")
    check: CheckCode = Field(description="the check's code")
    why: str = Field(min_length=1, max_length=5000, description="why the numbers are right; recorded")

    @field_validator("row", "why")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


@dataclass(frozen=True)
class AcknowledgementProblem:
    """An acknowledgement that matches no check or repeats an earlier one."""

    index: int  # position in the config's ``acknowledge`` list (0-based)
    row: str
    check: str
    message: str


def apply_acknowledgements(checks: Sequence[Check], acknowledgements: Sequence[Acknowledgement],
                           ) -> tuple[tuple[Check, ...], tuple[AcknowledgementProblem, ...]]:
    """Mark the checks the acknowledgements match; list the acknowledgements that match nothing.

    Returns the checks in the same order and number as given (matched ones with
    ``acknowledged=True`` and ``acknowledgement`` = the why, several whys joined by " | "), and one
    problem per acknowledgement that matches no check or repeats an earlier (row, check) pair.
    With several pools, call it once with every pool's checks: a study may be in one pool only.
    """
    whys: dict[int, list[str]] = {}
    problems: list[AcknowledgementProblem] = []
    seen: dict[tuple[str, str], int] = {}
    for k, ack in enumerate(acknowledgements):
        key = (ack.row, ack.check)
        if key in seen:
            problems.append(AcknowledgementProblem(
                k, ack.row, ack.check, f"acknowledge[{k}] repeats acknowledge[{seen[key]}] "
                                       f"(row '{ack.row}', check '{ack.check}'); keep one"))
            continue
        seen[key] = k
        hits = [i for i, c in enumerate(checks) if c.code == ack.check and ack.row in c.study_ids]
        if not hits:
            problems.append(AcknowledgementProblem(k, ack.row, ack.check, _unmatched(k, ack, checks)))
        for i in hits:
            whys.setdefault(i, []).append(ack.why)
    out = tuple(c.model_copy(update={"acknowledged": True, "acknowledgement": " | ".join(whys[i])})
                if i in whys else c for i, c in enumerate(checks))
    return out, tuple(problems)


def _unmatched(k: int, ack: Acknowledgement, checks: Sequence[Check]) -> str:
    on_row = sorted({c.code for c in checks if ack.row in c.study_ids}, key=CHECK_CODES.index)
    head = f"acknowledge[{k}] (row '{ack.row}', check '{ack.check}') matches no check"
    if on_row:
        return f"{head}: the checks on row '{ack.row}' are {', '.join(on_row)}"
    ids = sorted({s for c in checks for s in c.study_ids})
    close = difflib.get_close_matches(ack.row, ids, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return (f"{head}: no check names study '{ack.row}'{hint}; if the row was corrected, remove the "
            "acknowledgement")


def blocking(checks: Iterable[Check]) -> tuple[Check, ...]:
    """The checks that still block (blocking and not acknowledged)."""
    return tuple(c for c in checks if c.blocks)


def row_labels(checks: Iterable[Check]) -> dict[int, str]:
    """Spreadsheet row -> ``;``-joined codes of the checks naming it (effect_preparation.csv
    ``checks`` column); acknowledged ones suffixed `` (acknowledged)``. Rows without checks are absent."""
    labels: dict[int, list[str]] = {}
    for c in sort_checks(checks):
        label = f"{c.code} (acknowledged)" if c.acknowledged else c.code
        for r in c.rows:
            if label not in labels.setdefault(r, []):
                labels[r].append(label)
    return {r: ";".join(v) for r, v in sorted(labels.items())}
