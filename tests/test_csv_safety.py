"""CSV artefacts are spreadsheet-safe: text a spreadsheet would evaluate as a formula is prefixed
with an apostrophe; numbers are written by one fixed rule and never prefixed."""

from __future__ import annotations

import csv
import io
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from marketbayesmeta.api import compile_config
from marketbayesmeta.outputs import columns
from marketbayesmeta.runtime import csvio, tables

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DANGEROUS = ['=HYPERLINK("http://x","click")', "+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1+1",
             "=cmd|' /C calc'!A0", "-", "+", "=", "@"]
HARMLESS = ["geo test", "1+1", "a=b", "x-1", "", "'quoted", " =leading space", "€5", "Île-de-France"]


# -- neutralise / format_cell ----------------------------------------------------------------------

@pytest.mark.parametrize("text", DANGEROUS)
def test_dangerous_text_gets_an_apostrophe(text):
    assert csvio.neutralise(text) == "'" + text
    assert csvio.format_cell(text) == "'" + text


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_is_unchanged(text):
    assert csvio.neutralise(text) == text
    assert csvio.format_cell(text) == text


def test_every_formula_prefix_is_covered():
    assert set(csvio.FORMULA_PREFIXES) >= {"=", "+", "-", "@", "\t", "\r"}
    for prefix in csvio.FORMULA_PREFIXES:
        assert csvio.neutralise(prefix + "x").startswith("'")


@pytest.mark.parametrize(("value", "expected"), [
    (-1.5, "-1.5"), (-0.0, "0"), (0.0, "0"), (1e-12, "1e-12"), (-3e20, "-3e+20"),
    (-2, "-2"), (0, "0"), (12345678901234, "12345678901234"), (1 / 3, "0.3333333333"),
    (np.float64(-0.25), "-0.25"), (np.float32(-0.5), "-0.5"), (np.int64(-7), "-7"),
    (float("nan"), ""), (None, ""), (float("inf"), "inf"), (float("-inf"), "-inf"),
    (True, "true"), (False, "false"), (np.bool_(True), "true"),
])
def test_numbers_are_never_prefixed(value, expected):
    assert csvio.format_cell(value) == expected


def test_csv_text_round_trip():
    columns = ["name", "estimate", "se", "flag"]
    rows = [{"name": t, "estimate": -1.25 * (i + 1), "se": 0.1, "flag": i % 2 == 0}
            for i, t in enumerate(DANGEROUS)]
    rows.append({"name": "plain", "estimate": None, "se": float("nan")})
    text = csvio.csv_text(columns, rows)
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == columns
    assert len(parsed) == len(rows) + 1
    for row, (name, estimate, se, flag) in zip(rows, parsed[1:], strict=True):
        assert name == csvio.neutralise(row["name"])
        assert not name or name[0] not in "=+-@\t\r"
        if row["estimate"] is not None:
            assert float(estimate) == row["estimate"] and not estimate.startswith("'")
            assert float(se) == 0.1
            assert flag == ("true" if row["flag"] else "false")
    assert parsed[-1] == ["plain", "", "", ""]


# -- end to end: compile a tracker with formula-like text, build effect_preparation.csv ------------

def _tracker_with_formulas(path: Path) -> dict[str, str]:
    rows = list(csv.reader(io.StringIO((EXAMPLES / "example_tracker.csv").read_text("utf-8"))))
    header = rows[0]
    names = {}
    formulas = ['=HYPERLINK("x")', "+1", "-2+3", "@SUM(A1)"]
    for i, formula in enumerate(formulas):
        row = rows[1 + i]
        row[header.index("study_name")] = formula
        row[header.index("notes")] = formula
        names[row[header.index("study_id")]] = formula
    rows[5][header.index("study_id")] = "=1+1"  # a formula as an identifier (mmm row, excluded)
    names["=1+1"] = rows[5][header.index("study_name")]
    rows[1][header.index("estimate")] = "-2.5"  # negative source estimate inside its CI [-3, 7.4]
    rows[1][header.index("ci_lower")] = "-3"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return names


def test_effect_preparation_csv_is_neutralised(tmp_path):
    shutil.copy(EXAMPLES / "config.yaml", tmp_path / "config.yaml")
    names = _tracker_with_formulas(tmp_path / "example_tracker.csv")
    plan = compile_config(tmp_path / "config.yaml")
    text = csvio.csv_text(columns("effect_preparation.csv"), tables.effect_preparation_rows(plan.pool()))
    records = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(records) == len(plan.pool().rows)
    by_id = {r["study_id"]: r for r in records}
    assert "'=1+1" in by_id and "=1+1" not in by_id
    for study_id, name in names.items():
        record = by_id[csvio.neutralise(study_id)]
        assert record["study_name"] == csvio.neutralise(name)
    for formula in ['=HYPERLINK("x")', "+1", "-2+3", "@SUM(A1)"]:
        assert ("'" + formula) in {r["study_name"] for r in records}
    # no cell of any text column starts a formula; numeric columns hold plain numbers
    numeric = {"row", "source_estimate", "source_se", "ci_lower", "ci_upper", "ci_level",
               "model_estimate", "model_se"}
    negative_seen = False
    for r in records:
        for column, cell in r.items():
            if column in numeric:
                if cell:
                    value = float(cell)
                    assert math.isfinite(value)
                    negative_seen |= value < 0
            else:
                assert not cell or cell[0] not in "=+-@\t\r", (column, cell)
    assert negative_seen, "the fixture should carry a negative estimate"
    first = by_id["geo-2025-01"]
    assert first["source_estimate"] == "-2.5" and first["ci_lower"] == "-3"
    assert float(first["model_estimate"]) == pytest.approx(math.log1p(-0.025), rel=1e-9)


@pytest.mark.parametrize("text", ["\r=1+1", "line one\rline two"])
def test_carriage_return_inside_text_keeps_the_row_together(text):
    parsed = list(csv.reader(io.StringIO(csvio.csv_text(["a", "b"], [{"a": text, "b": 1}]),
                                         newline="")))
    assert parsed == [["a", "b"], [csvio.neutralise(text), "1"]]
