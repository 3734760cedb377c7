"""Property tests: the tracker reader returns a table or raises TrackerError, never anything else."""

from __future__ import annotations

import csv
import io

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketbayesmeta.compiler.tracker import KNOWN_COLUMNS, parse_tracker
from marketbayesmeta.errors import TrackerError

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TRICKY = [
    "", " ", "nan", "NaN", "inf", "-inf", "-1", "0", "1", "0.9", "90", "100", "1e308", "1e309",
    "-100", "😀", '"', '""', "'", ",", "\n", "\r\n", "\r", "=cmd", "=1+2", "yes", "no", "ratio",
    "relative_percent", "low", "2024-01-01", "2024-02-30", "S1", "S1 ", "é", ";", "\t", "\ufeff",
    "x" * 50,
]
COLUMN_NAMES = [*KNOWN_COLUMNS, "extra", "Study_ID", " unit ", "", "row", "estimates"]


def outcome(data: bytes) -> pd.DataFrame | None:
    """Parse; a TrackerError is fine (returns None), any other exception fails the test."""
    try:
        result = parse_tracker(data, "fuzz.csv")
    except TrackerError as exc:
        assert exc.problems and all(p.file == "fuzz.csv" for p in exc.problems)
        assert len(exc.problems) <= 201
        exc.render()
        return None
    assert isinstance(result, pd.DataFrame)
    assert list(result.index) == list(range(len(result)))
    return result


@FAST
@given(st.binary(max_size=3000))
def test_random_bytes(data):
    outcome(data)


@FAST
@given(st.text(max_size=2000))
def test_random_text(text):
    outcome(text.encode("utf-8", "surrogatepass"))


csv_rows = st.integers(min_value=1, max_value=8).flatmap(
    lambda width: st.tuples(
        st.lists(st.sampled_from(COLUMN_NAMES), min_size=width, max_size=width),
        st.lists(st.lists(st.sampled_from(TRICKY), min_size=0, max_size=width + 2), max_size=12),
    )
)


@FAST
@given(csv_rows, st.booleans(), st.sampled_from(["\n", "\r\n", "\r"]))
def test_csv_ish_text(table, quoted, newline):
    """Tricky cells, written either properly quoted (csv module) or naively joined with commas."""
    header, rows = table
    if quoted:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator=newline)
        writer.writerow(header)
        writer.writerows(rows)
        text = buf.getvalue()
    else:
        text = newline.join(",".join(row) for row in [header, *rows])
    outcome(text.encode("utf-8"))


GOOD_HEADER = ["study_id", "evidence_type", "metric", "unit", "estimate", "analysis_ready",
               "standard_error", "notes"]
note_text = st.lists(
    st.one_of(
        st.sampled_from(['"', '""', ",", "\n", "\r\n", "\r", " ", "😀", "=cmd", "é", ";", "\t"]),
        st.text(st.characters(exclude_categories=("Cs", "Cc", "Z")), max_size=5),
    ),
    max_size=8,
).map("".join)


@FAST
@given(st.lists(note_text, min_size=1, max_size=10),
       st.sampled_from([("\r\n", csv.QUOTE_MINIMAL), ("\n", csv.QUOTE_ALL)]))
def test_well_formed_trackers_round_trip(notes, dialect):
    """Any spreadsheet-style (RFC 4180) file parses; cells and row numbers survive quoting.

    (csv.writer with lineterminator="\n" and minimal quoting leaves a lone "\r" unquoted,
    which is a line break, so that combination is not RFC 4180.)
    """
    newline, quoting = dialect
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=newline, quoting=quoting)
    writer.writerow(GOOD_HEADER)
    for i, note in enumerate(notes):
        writer.writerow([f"S{i}", "rct", "conversion", "ratio", "1.1", "yes", "0.1", note])
    df = outcome(buf.getvalue().encode("utf-8"))
    assert df is not None
    assert df["row"].tolist() == list(range(2, len(notes) + 2))
    assert df["notes"].tolist() == [n.strip() for n in notes]
