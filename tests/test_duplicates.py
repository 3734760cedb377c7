"""Duplicate detection (SPEC §4), systematically: every key column and every number column, each
changed alone, flips the verdict.

Two rows that share every key column (evidence type, metric, brand, market, channel, window) and
every number (estimate, SE, CI, CI level, scenario, unit) are a *blocking* duplicate when both enter
the pool. Change one number and they are a *possible* duplicate (same study reported twice with
different numbers?); change one key and they are not duplicates at all. The column lists are
written out here, not imported, so that a column dropped from the module's lists fails.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers import four_rows, row, tracker_csv, write_project
from marketbayesmeta.api import compile_config
from marketbayesmeta.compiler.duplicates import find_duplicates
from marketbayesmeta.compiler.tracker import parse_tracker

BASE: dict[str, Any] = {
    "evidence_type": "geo_test", "metric": "sales", "unit": "relative_percent", "estimate": 3.0,
    "standard_error": 0.5, "ci_lower": 2.0, "ci_upper": 4.0, "ci_level": 0.9, "uncertainty_scenario": "medium",
    "analysis_ready": "yes", "brand": "acme", "market": "north", "channel": "tv", "window_start": "2025-01-06",
    "window_end": "2025-02-02",
}
# one other valid value per column
KEY_CHANGES = {
    "evidence_type": "brand_lift", "metric": "awareness", "brand": "other", "market": "south", "channel": "radio",
    "window_start": "2025-01-13", "window_end": "2025-02-09",
}
NUMBER_CHANGES = {
    "estimate": 3.1, "standard_error": 0.6, "ci_lower": 1.9, "ci_upper": 4.1, "ci_level": 0.95,
    "uncertainty_scenario": "high", "unit": "log_relative",
}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return parse_tracker(tracker_csv(rows).encode(), "tracker.csv")


def _pair(**change: Any) -> list[dict[str, Any]]:
    return [{**BASE, "study_id": "a"}, {**BASE, "study_id": "b", **change}]


def _verdict(rows: list[dict[str, Any]], comparable: list[bool] | None = None) -> list[tuple[str, list[int]]]:
    frame = _frame(rows)
    mask = pd.Series(comparable or [True] * len(frame), index=frame.index)
    return [(d.kind, d.index) for d in find_duplicates(frame, mask)]


def test_identical_pair_is_blocking() -> None:
    assert _verdict(_pair()) == [("blocking", [0, 1])]


@pytest.mark.parametrize("column", sorted(KEY_CHANGES))
def test_any_key_column_changed_alone_means_no_duplicate(column: str) -> None:
    assert _verdict(_pair(**{column: KEY_CHANGES[column]})) == []


@pytest.mark.parametrize("column", sorted(KEY_CHANGES))
def test_any_key_column_changed_alone_also_clears_a_possible_duplicate(column: str) -> None:
    assert _verdict(_pair(estimate=3.1)) == [("possible", [0, 1])]
    assert _verdict(_pair(estimate=3.1, **{column: KEY_CHANGES[column]})) == []


@pytest.mark.parametrize("column", sorted(NUMBER_CHANGES))
def test_any_number_column_changed_alone_turns_blocking_into_possible(column: str) -> None:
    assert _verdict(_pair(**{column: NUMBER_CHANGES[column]})) == [("possible", [0, 1])]


def test_every_column_of_the_tracker_that_identifies_a_study_is_covered() -> None:
    """The two lists above are the whole row apart from the id, name, notes, design and readiness:
    a new tracker column must be classified here (key, number, or neither)."""
    from helpers import HEADER

    neither = {"study_id", "study_name", "notes", "design", "analysis_ready"}
    assert set(HEADER) == set(KEY_CHANGES) | set(NUMBER_CHANGES) | neither


def test_numbers_are_compared_as_numbers_and_blanks_as_equal() -> None:
    # "3" and "3.00" are the same estimate; a CI left blank on both rows is the same (NaN == NaN)
    blank_ci = {"ci_lower": "", "ci_upper": "", "ci_level": ""}
    rows = [{**BASE, **blank_ci, "study_id": "a", "estimate": "3"},
            {**BASE, **blank_ci, "study_id": "b", "estimate": "3.00"}]
    assert _verdict(rows) == [("blocking", [0, 1])]
    # ... and a CI on one row only is a different number
    rows[1] = {**BASE, "study_id": "b"}
    assert _verdict(rows) == [("possible", [0, 1])]


def test_blocking_needs_two_comparable_members_and_names_only_those() -> None:
    rows = [{**BASE, "study_id": sid} for sid in ("a", "b", "c")]
    assert _verdict(rows, [True, False, True]) == [("blocking", [0, 2])]
    assert _verdict(rows, [True, False, False]) == []
    assert _verdict(rows, [False, True, True]) == [("blocking", [1, 2])]


@pytest.mark.parametrize("column", ["brand", "market", "channel", "window_start", "window_end"])
def test_possible_needs_one_descriptive_column(column: str) -> None:
    """Rows without brand, market, channel or window would make every row of a metric alike, so
    different numbers there are not a possible duplicate; any one of them filled in is enough."""
    blank = {c: "" for c in ("brand", "market", "channel", "window_start", "window_end")}
    assert _verdict([{**BASE, **blank, "study_id": "a"}, {**BASE, **blank, "study_id": "b", "estimate": 3.1}]) == []
    one = {**blank, column: BASE[column]}
    assert _verdict([{**BASE, **one, "study_id": "a"}, {**BASE, **one, "study_id": "b", "estimate": 3.1}]) == [
        ("possible", [0, 1])]
    # identical rows without any descriptive column still block (the same study entered twice)
    assert _verdict([{**BASE, **blank, "study_id": "a"}, {**BASE, **blank, "study_id": "b"}]) == [
        ("blocking", [0, 1])]


def test_groups_order_members_and_messages() -> None:
    """Groups are reported in tracker order (blocking before possible for the same first row),
    members in tracker order, with the spreadsheet rows (header = 1) and ids in the message."""
    other = {**BASE, "market": "south"}
    rows = [
        {**other, "study_id": "x1"},          # row 2: key group B
        {**BASE, "study_id": "a"},            # row 3: key group A
        {**BASE, "study_id": "b"},            # row 4: A, same numbers as a -> blocking a, b
        {**other, "study_id": "x2", "estimate": 3.9},  # row 5: B, different numbers -> possible x1, x2
        {**BASE, "study_id": "c", "estimate": 3.1},    # row 6: A, different numbers -> possible a, b, c
        {**BASE, "study_id": "lone", "market": "west"},  # row 7: shares no keys
    ]
    dups = find_duplicates(_frame(rows), pd.Series([True] * len(rows)))
    assert [(d.kind, d.index) for d in dups] == [("possible", [0, 3]), ("blocking", [1, 2]),
                                                  ("possible", [1, 2, 4])]
    assert dups[0].message == ("rows 2, 5 (x1, x2) share evidence type, metric, brand, market, channel and "
                               "window but report different numbers: overlapping evidence? Check before pooling")
    assert dups[1].message == ("rows 3, 4 (a, b) share evidence type, metric, brand, market, channel and window "
                               "and report the same estimate and uncertainty")
    assert dups[2].message.startswith("rows 3, 4, 6 (a, b, c) share")


def test_index_labels_not_positions() -> None:
    """The duplicates carry the frame's index labels (the compiler maps them back to its rows)."""
    rows = [{**BASE, "study_id": "other", "market": "west"}, *_pair()]
    frame = _frame(rows)
    frame.index = frame.index + 10
    dups = find_duplicates(frame, pd.Series([True] * 3, index=frame.index))
    assert [(d.kind, d.index) for d in dups] == [("blocking", [11, 12])]


def test_no_rows_or_no_shared_keys() -> None:
    frame = _frame(_pair())
    assert find_duplicates(frame.iloc[:0], pd.Series([], dtype=bool)) == []
    assert find_duplicates(_frame(_pair(market="south")), pd.Series([True, True])) == []


# -- through the compiler: the verdicts become decisions, reasons and readiness -------------------

def _compiled(tmp_path: Path, extra: list[dict[str, Any]]):
    return compile_config(write_project(tmp_path, [*four_rows(), *extra]))


def _as_row(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    return row(r.pop("study_id"), r.pop("estimate"), se=r.pop("standard_error"), ready=r.pop("analysis_ready"),
               **r)


@pytest.mark.parametrize("column", ["standard_error", "window_start"])
def test_compiled_plan_flips_with_one_column(tmp_path: Path, column: str) -> None:
    plan = _compiled(tmp_path / "same", [_as_row(r) for r in _pair()])
    assert [(d.kind, d.study_ids) for d in plan.pool().duplicates] == [("blocking", ["a", "b"])]
    assert plan.pool().has_blocking_duplicates
    by_id = {r.study_id: r for r in plan.pool().rows}
    assert (by_id["b"].decision, by_id["b"].reason) == ("excluded", "blocking_duplicate")
    assert "blocking duplicate" in plan.pool().readiness.why
    change = {**KEY_CHANGES, **NUMBER_CHANGES}[column]
    plan = _compiled(tmp_path / "changed", [_as_row(r) for r in _pair(**{column: change})])
    expected = [("possible", ["a", "b"])] if column in NUMBER_CHANGES else []
    assert [(d.kind, d.study_ids) for d in plan.pool().duplicates] == expected
    assert not plan.pool().has_blocking_duplicates
    assert {r.study_id: r.decision for r in plan.pool().rows}["b"] == "included"
    assert not math.isnan({r.study_id: r.model_se for r in plan.pool().rows}["b"])


def test_key_columns_are_compared_one_by_one_not_as_joined_text() -> None:
    """market "north" + channel "tv" is not market "nort" + channel "htv"."""
    rows = _pair(market="nort", channel="htv")
    assert _verdict(rows) == []
    rows = _pair(brand="acmen", market="orth")
    assert _verdict(rows) == []
