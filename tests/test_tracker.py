"""Unit tests for the evidence-tracker reader (SPEC §4)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from marketbayesmeta.compiler.tracker import (
    OUTPUT_COLUMNS,
    REQUIRED_COLUMNS,
    SCENARIO_LEVELS,
    TEXT_COLUMNS,
    UNITS,
    parse_tracker,
)
from marketbayesmeta.errors import Problem, TrackerError

FILE = "tracker.csv"
GOOD = {
    "study_id": "S1",
    "evidence_type": "rct",
    "metric": "conversion",
    "unit": "relative_percent",
    "estimate": "5.2",
    "analysis_ready": "yes",
    "standard_error": "1.1",
}


def to_csv(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def tracker(*rows: dict[str, str], drop: tuple[str, ...] = ()) -> bytes:
    """A tracker with one good row per dict, each dict overriding GOOD (study_id S1, S2, ...)."""
    records = [{**GOOD, "study_id": f"S{i + 1}", **row} for i, row in enumerate(rows or [{}])]
    header = [c for c in dict.fromkeys(k for r in records for k in r) if c not in drop]
    return to_csv(header, [[r.get(c, "") for c in header] for r in records])


def parse(data: bytes) -> pd.DataFrame:
    return parse_tracker(data, FILE)


def problems(data: bytes) -> list[Problem]:
    with pytest.raises(TrackerError) as info:
        parse(data)
    assert str(info.value).startswith(f"{FILE}: ")
    assert info.value.problems
    return info.value.problems


def only_problem(data: bytes, *, row: int | None = None, column: str | None = None,
                 value: str | None = None, contains: str = "") -> str:
    found = problems(data)
    assert len(found) == 1, [p.render() for p in found]
    text = found[0].render()
    assert FILE in text
    if row is not None:
        assert f"row {row}" in text and found[0].row == row
    if column is not None:
        assert f"column '{column}'" in text and found[0].column == column
    if value is not None:
        assert repr(value) in text
    assert contains in text
    return text


# --------------------------------------------------------------------------- happy path and shape


def test_good_tracker_shape_and_types():
    df = parse(tracker({}, {"estimate": "-1.5", "analysis_ready": "No"}))
    assert list(df.columns) == list(OUTPUT_COLUMNS)
    assert list(df.index) == [0, 1]
    assert df["row"].tolist() == [2, 3] and df["row"].dtype == np.int64
    assert df["study_id"].tolist() == ["S1", "S2"]
    assert df["estimate"].tolist() == [5.2, -1.5] and df["estimate"].dtype == np.float64
    assert df["analysis_ready"].tolist() == [True, False] and df["analysis_ready"].dtype == bool
    for name in ("ci_lower", "ci_upper", "ci_level"):
        assert df[name].isna().all() and df[name].dtype == np.float64
    for name in (*TEXT_COLUMNS, "uncertainty_scenario", "window_start", "window_end"):
        assert df[name].tolist() == ["", ""]
        assert pd.api.types.is_string_dtype(df[name])


def test_constants():
    assert REQUIRED_COLUMNS == ("study_id", "evidence_type", "metric", "unit", "estimate",
                                "analysis_ready")
    assert "ratio" in UNITS and len(UNITS) == 6 and isinstance(UNITS, tuple)
    assert SCENARIO_LEVELS == ("low", "medium", "high")
    assert "notes" in TEXT_COLUMNS


def test_bom_is_accepted():
    df = parse(b"\xef\xbb\xbf" + tracker())
    assert df["study_id"].tolist() == ["S1"]


def test_crlf_line_endings():
    df = parse(tracker({}, {}).replace(b"\n", b"\r\n"))
    assert df["row"].tolist() == [2, 3]


def test_header_names_are_stripped_and_lowercased():
    data = tracker().replace(b"study_id", b"  Study_ID ", 1).replace(b"unit", b"UNIT", 1)
    assert parse(data)["study_id"].tolist() == ["S1"]


def test_quoted_commas_and_embedded_newlines_keep_row_numbers():
    data = tracker({"notes": "a, b\nsecond line\r\nthird"}, {}, {"estimate": "oops"})
    found = problems(data)
    assert len(found) == 1 and found[0].row == 4 and "row 4" in found[0].render()
    df = parse(tracker({"notes": 'said "hi", then\nleft'}, {}))
    assert df["notes"].tolist() == ['said "hi", then\nleft', ""]
    assert df["row"].tolist() == [2, 3]


def test_extra_columns_are_kept_after_known_ones():
    df = parse(tracker({"zeta": " keep me ", "Alpha": "1"}))
    assert list(df.columns) == [*OUTPUT_COLUMNS, "zeta", "alpha"]
    assert df["zeta"].tolist() == [" keep me "]
    assert df["alpha"].tolist() == ["1"]


def test_text_columns_are_stripped():
    df = parse(tracker({"brand": "  Acme  ", "notes": " n "}))
    assert df["brand"].tolist() == ["Acme"] and df["notes"].tolist() == ["n"]


def test_large_tracker_parses():
    n = 100_000
    rng = np.random.default_rng(1)
    estimates = rng.normal(5, 2, n)
    header = ["study_id", "evidence_type", "metric", "unit", "estimate", "analysis_ready",
              "standard_error", "ci_lower", "ci_upper", "ci_level", "brand", "window_start",
              "window_end", "notes"]
    lines = [",".join(header)]
    lines += [f"S{i},rct,conversion,relative_percent,{e:.4f},yes,1.0,{e - 3:.4f},{e + 3:.4f},90,"
              f"Acme,2024-01-01,2024-03-31,\"note, {i}\"" for i, e in enumerate(estimates)]
    df = parse(("\n".join(lines) + "\n").encode())
    assert len(df) == n
    assert df["row"].iloc[-1] == n + 1
    assert np.allclose(df["ci_level"], 0.9)


# --------------------------------------------------------------------------- file-level problems


def test_latin1_is_rejected_naming_the_line():
    data = tracker({}, {"notes": "café"}).replace("é".encode(), b"\xe9")
    text = only_problem(data, contains="line 3")
    assert "save the file as UTF-8" in text and "0xE9" in text


def test_utf16_is_rejected():
    only_problem(tracker().decode().encode("utf-16"), contains="save the file as UTF-8")


def test_nul_bytes_are_rejected():
    only_problem(b"study_id,unit\x00\n", contains="NUL")


@pytest.mark.parametrize("data", [b"", b"   \n\r\n\t", b"\xef\xbb\xbf"])
def test_empty_file(data):
    only_problem(data, contains="empty")


def test_header_only():
    only_problem(tracker().split(b"\n")[0] + b"\n", contains="no data rows")


def test_header_and_blank_rows_only():
    only_problem(tracker().split(b"\n")[0] + b"\n,,,,,,\n\n", contains="no data rows")


@pytest.mark.parametrize("sep", [b";", b"\t"])
def test_other_delimiters_are_rejected(sep):
    data = tracker().replace(b",", sep)
    text = only_problem(data, row=1, contains="comma-separated")
    assert "study_id" in text


def test_duplicate_column_names():
    data = tracker().replace(b"standard_error", b"Metric")
    only_problem(data, row=1, column="metric", value="metric", contains="unique")


def test_missing_required_columns_with_suggestion():
    data = tracker(drop=("analysis_ready",)).replace(b"estimate", b"estimates")
    text = only_problem(data, row=1, contains="'estimate' (did you mean 'estimates'?)")
    assert "'analysis_ready'" in text


def test_row_column_is_reserved():
    only_problem(tracker({"row": "7"}), row=1, column="row")


def test_unnamed_empty_column_is_dropped_and_unnamed_data_kept():
    data = tracker({"": ""})
    assert "unnamed_8" not in parse(data).columns
    assert parse(tracker({"": "x"}))["unnamed_8"].tolist() == ["x"]


def test_misplaced_quote():
    data = tracker({"notes": "PLACEHOLDER"}).replace(b"PLACEHOLDER", b'5" screen')
    only_problem(data, row=2, column="notes", contains="quote")


def test_unclosed_quote():
    data = tracker({}, {}) + b'S9,rct,"conversion,ratio,1,yes,1\n'
    only_problem(data, row=4, contains="never closed")


def test_too_many_problems_are_capped():
    found = problems(tracker(*[{"estimate": "x"} for _ in range(250)]))
    assert len(found) == 201
    assert "50 more" in found[-1].render()
    with pytest.raises(TrackerError, match="250 problem"):
        parse(tracker(*[{"estimate": "x"} for _ in range(250)]))


# --------------------------------------------------------------------------- row structure


def test_blank_rows_are_skipped():
    lines = tracker({}, {}).split(b"\n")
    data = b"\n".join([lines[0], b",,,", lines[1], b"", b'  ,"",  ,,,,,,,,', lines[2]]) + b"\n"
    assert parse(data)["row"].tolist() == [3, 6]


def test_row_with_too_few_fields():
    data = tracker({}) + b"S2,rct,conversion\n"
    only_problem(data, row=3, value="S2,rct,conversion", contains="3 fields but the header has 7")


def test_row_with_too_many_fields():
    data = tracker({}) + b"S2,rct,conversion,ratio,1,yes,1,surplus\n"
    only_problem(data, row=3, contains="8 fields but the header has 7")


def test_cell_too_long():
    only_problem(tracker({"notes": "x" * 10_001}), row=2, column="notes",
                 contains="field is 10001 characters long; at most 10000")
    assert parse(tracker({"notes": "x" * 10_000}))["notes"].str.len().tolist() == [10_000]


def test_all_problems_reported_at_once_and_sorted():
    found = problems(tracker({}, {"unit": "percent"}, {}, {"estimate": ""}, {"metric": ""}))
    assert [(p.row, p.column) for p in found] == [(3, "unit"), (5, "estimate"), (6, "metric")]


def test_problems_in_one_row_sorted_by_column_order():
    found = problems(tracker({"estimate": "x", "evidence_type": "", "analysis_ready": "?"}))
    assert [p.column for p in found] == ["evidence_type", "estimate", "analysis_ready"]


# --------------------------------------------------------------------------- identity columns


def test_study_id_empty():
    only_problem(tracker({}, {"study_id": "  "}), row=3, column="study_id", value="  ",
                 contains="empty")


def test_study_id_repeated_names_every_row():
    text = only_problem(tracker({"study_id": "A"}, {}, {"study_id": "A "}, {"study_id": "A"}),
                        row=2, column="study_id", value="A")
    assert "rows 2, 4, 5" in text


@pytest.mark.parametrize("column", ["evidence_type", "metric"])
def test_classification_columns(column):
    assert parse(tracker({column: "  RCT "}))[column].tolist() == ["rct"]
    only_problem(tracker({column: ""}), row=2, column=column, value="", contains="empty")


def test_unit_normalised_and_validated():
    assert parse(tracker({"unit": " Ratio ", "estimate": "1.1"}))["unit"].tolist() == ["ratio"]
    text = only_problem(tracker({"unit": "percent"}), row=2, column="unit", value="percent")
    assert all(u in text for u in UNITS)
    assert "did you mean 'relative_percent'?" in text


# --------------------------------------------------------------------------- numbers and flags


@pytest.mark.parametrize("value,expected", [(" 1.5 ", 1.5), ("-2e-3", -0.002), ("+3", 3.0),
                                            (".5", 0.5)])
def test_estimate_good(value, expected):
    assert parse(tracker({"estimate": value}))["estimate"].tolist() == [expected]


def test_estimate_near_the_float_limit_is_good_when_its_model_scale_values_are():
    # a ratio of 1e308 is log 709 on the model scale, and its CI gives an SE of 0.7
    row = {"unit": "ratio", "estimate": "1e308", "standard_error": "", "ci_lower": "1e307",
           "ci_upper": "1.5e308", "ci_level": "90"}
    assert parse(tracker(row))["estimate"].tolist() == [1e308]


@pytest.mark.parametrize("value", ["", "abc", "nan", "NaN", "inf", "-inf", "1,000", "1e999",
                                   "1 000", "0x10", "5%"])
def test_estimate_bad(value):
    only_problem(tracker({"estimate": value}), row=2, column="estimate", value=value)


@pytest.mark.parametrize("value,expected", [
    ("true", True), ("FALSE", False), (" Yes ", True), ("no", False), ("1", True), ("0", False),
    ("y", True), ("N", False), ("t", True), ("f", False),
])
def test_analysis_ready_good(value, expected):
    assert parse(tracker({"analysis_ready": value}))["analysis_ready"].tolist() == [expected]


@pytest.mark.parametrize("value", ["", "maybe", "2", "ja"])
def test_analysis_ready_bad(value):
    text = only_problem(tracker({"analysis_ready": value}), row=2, column="analysis_ready",
                        value=value)
    assert "yes/no" in text


# --------------------------------------------------------------------------- uncertainty


CI = {"ci_lower": "1", "ci_upper": "9", "ci_level": "90"}


def test_standard_error_good_and_optional():
    assert parse(tracker({"standard_error": " 0.5 "}))["standard_error"].tolist() == [0.5]
    df = parse(tracker({**CI}, drop=("standard_error",)))
    assert df["standard_error"].isna().all()


@pytest.mark.parametrize("value", ["0", "-1", "abc", "inf"])
def test_standard_error_bad(value):
    only_problem(tracker({"standard_error": value}), row=2, column="standard_error", value=value)


@pytest.mark.parametrize("level,expected", [("90", 0.9), ("0.9", 0.9), ("95.0", 0.95),
                                            ("0.5", 0.5), ("1.5", 0.015)])
def test_ci_level_good(level, expected):
    df = parse(tracker({**CI, "ci_level": level, "standard_error": ""}))
    assert df["ci_level"].tolist() == [pytest.approx(expected)]
    assert df["ci_lower"].tolist() == [1.0] and df["ci_upper"].tolist() == [9.0]


@pytest.mark.parametrize("level", ["0", "1", "100", "150", "-5", "ninety"])
def test_ci_level_bad(level):
    only_problem(tracker({**CI, "ci_level": level}), row=2, column="ci_level", value=level)


@pytest.mark.parametrize("missing", ["ci_lower", "ci_upper", "ci_level"])
def test_ci_partial(missing):
    text = only_problem(tracker({**CI, missing: ""}), row=2, column=missing,
                        contains="needs all three")
    assert missing in text


def test_ci_inverted():
    only_problem(tracker({**CI, "ci_lower": "9", "ci_upper": "1"}), row=2, column="ci_lower",
                 value="9", contains="inverted")


def test_ci_bound_not_finite():
    only_problem(tracker({**CI, "ci_upper": "inf"}), row=2, column="ci_upper", value="inf")


def test_estimate_outside_ci():
    only_problem(tracker({**CI, "estimate": "12"}), row=2, column="estimate", value="12",
                 contains="outside")
    assert parse(tracker({**CI, "estimate": "9"}))["estimate"].tolist() == [9.0]


@pytest.mark.parametrize("value", ["low", " Medium ", "HIGH"])
def test_scenario_good(value):
    df = parse(tracker({"standard_error": "", "uncertainty_scenario": value}))
    assert df["uncertainty_scenario"].tolist() == [value.strip().lower()]


def test_scenario_bad():
    text = only_problem(tracker({"uncertainty_scenario": "extreme"}), row=2,
                        column="uncertainty_scenario", value="extreme")
    assert "low, medium, high" in text


def test_no_uncertainty():
    text = only_problem(tracker({}, {"standard_error": ""}), row=3, contains="no uncertainty")
    assert "standard_error" in text and "ci_level" in text and "uncertainty_scenario" in text
    only_problem(tracker(drop=("standard_error",)), row=2, contains="no uncertainty")


# --------------------------------------------------------------------------- unit domains


@pytest.mark.parametrize("unit,column,value", [
    ("ratio", "estimate", "0"), ("ratio", "estimate", "-0.5"), ("ratio", "ci_lower", "-0.1"),
    ("relative_percent", "estimate", "-100"), ("relative_percent", "ci_lower", "-150"),
    ("relative_fraction", "estimate", "-1"), ("relative_fraction", "ci_lower", "-1.2"),
])
def test_unit_domain_bad(unit, column, value):
    row = {"unit": unit, "estimate": "0.5", "ci_lower": "0.1", "ci_upper": "0.9", "ci_level": "95"}
    row[column] = value
    if column == "estimate":
        row.update(ci_lower="", ci_upper="", ci_level="")
    found = [p for p in problems(tracker(row)) if p.column == column]
    assert len(found) == 1
    text = found[0].render()
    assert "row 2" in text and f"column '{column}'" in text and repr(value) in text


@pytest.mark.parametrize("unit,value", [("ratio", "0.01"), ("relative_percent", "-99.9"),
                                        ("relative_fraction", "-0.99"), ("log_relative", "-5"),
                                        ("percentage_point", "-300")])
def test_unit_domain_good(unit, value):
    assert parse(tracker({"unit": unit, "estimate": value}))["estimate"].tolist() == [float(value)]


# --------------------------------------------------------------------------- dates


def test_dates_good():
    df = parse(tracker({"window_start": " 2024-01-01 ", "window_end": "2024-02-29 00:00:00"}))
    assert df["window_start"].tolist() == ["2024-01-01"]
    assert df["window_end"].tolist() == ["2024-02-29"]
    df = parse(tracker({"window_start": "2024-03-01", "window_end": "2024-03-01"}))
    assert df["window_end"].tolist() == ["2024-03-01"]


@pytest.mark.parametrize("value", ["01/02/2024", "2023-02-29", "2024-13-01", "2024-1-5",
                                   "yesterday", "2024-01-01T12:30"])
def test_dates_bad(value):
    only_problem(tracker({"window_start": value}), row=2, column="window_start", value=value)


def test_window_start_after_end():
    only_problem(tracker({"window_start": "2024-05-01", "window_end": "2024-04-30"}), row=2,
                 column="window_end", value="2024-04-30", contains="before window_start")


def test_never_a_raw_exception_for_odd_bytes():
    for data in (b"\x00\x01", b'"', b'""\n""', b",,,\n,,,", b"\r\r\r", b"a\rb\rc"):
        with pytest.raises(TrackerError):
            parse(data)
