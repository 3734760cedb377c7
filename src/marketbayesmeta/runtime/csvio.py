"""Deterministic, spreadsheet-safe CSV writing for every artefact."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..outputs import columns

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Prefix a text cell a spreadsheet would evaluate as a formula with an apostrophe."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def format_cell(value: Any) -> str:
    """One fixed rule: floats ``%.10g`` (empty when NaN/None), bools true/false, ints as is,
    text neutralised against formula injection. Numeric values are never prefixed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = f"{value:.10g}"
        return "0" if text == "-0" else text
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar
        return format_cell(value.item())
    return neutralise(str(value))


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV with ``\n`` line endings. csv quotes only characters of the line terminator, so a row
    with a bare CR inside a cell is written fully quoted to keep it one record."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    quote_all = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    for row in rows:
        cells = [format_cell(row.get(c)) for c in columns]
        (quote_all if any("\r" in c for c in cells) else writer).writerow(cells)
    return buf.getvalue()


def write_table(directory: Path, name: str, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write the catalogue's CSV file ``name`` (its columns, in order) into ``directory``."""
    path = directory / name
    path.write_text(csv_text(columns(name), rows), encoding="utf-8", newline="")
    return path
