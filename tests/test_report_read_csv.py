"""report.load.read_csv reads a run directory's CSV files with the csv module when they are plain
(as the run writes them) and with pandas otherwise: either way the same frame (values, dtypes,
columns, index) as pandas' reading, or pandas' error."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketbayesmeta.report.load import _read_pandas, _read_plain, read_csv

CELLS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", "", "mu", "tau", "true", "False", "'=1+1", "'-x", "=cmd", "inf", "-inf", "nan", "NaN",
                     " 1", "1 ", "1_000", "1e5", ".5", "5.", "+3", "1,5", "\u0661", "a,b", 'say "hi"', "two\nlines",
                     "  ", "1e", "0x10", "NA", "null", "\t1"]),
    st.text(max_size=6),
)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _same(path: Path) -> None:
    try:
        expected = _read_pandas(path)
    except Exception as exc:  # noqa: BLE001 - the same error (type) from read_csv
        with pytest.raises(type(exc)):
            read_csv(path)
        return
    got = read_csv(path)
    assert list(got.columns) == list(expected.columns)
    assert list(got.dtypes) == list(expected.dtypes)
    assert got.index.equals(expected.index)
    assert got.equals(expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), n_cols=st.integers(1, 5), n_rows=st.integers(0, 6))
def test_any_table_reads_as_pandas_reads_it(tmp_path: Path, data: st.DataObject, n_cols: int, n_rows: int) -> None:
    header = data.draw(st.lists(st.one_of(st.sampled_from(["mean", "a", "", " ", "1.5", "'=x"]), st.text(max_size=4)),
                                min_size=n_cols, max_size=n_cols))
    col_kind = data.draw(st.lists(st.sampled_from(["num", "any"]), min_size=n_cols, max_size=n_cols))
    rows = []
    for _ in range(n_rows):
        rows.append([data.draw(st.one_of(st.just(""), st.floats(allow_nan=False, allow_infinity=False).map(repr))
                               if k == "num" else CELLS) for k in col_kind])
    path = tmp_path / "t.csv"
    _write(path, header, rows)
    _same(path)


def test_a_runs_own_files_take_the_plain_path(tmp_path: Path) -> None:
    from report_fixture import make_fake_run

    run = make_fake_run(tmp_path / "run")
    files = sorted(run.glob("*.csv"))
    assert len(files) >= 10
    for path in files:
        assert _read_plain(path) is not None, path.name
        _same(path)
    frame = read_csv(run / "pooled_summary.csv")
    assert frame["mean"].dtype == float and frame["parameter"].dtype == object


@pytest.mark.parametrize("text", [
    "a,b\n1,2\n3\n",            # a short row
    "a,b\n1,2,3\n",             # a long row
    "a,a\n1,2\n",               # a repeated name
    ",b\n1,2\n",                # a blank name
    "\ufeffa,b\n1,2\n",         # a byte-order mark
    "a,b\r\n1,2\r\n",           # CRLF
    "\n  \n\n",                 # whitespace only
    "",                         # empty
    "a,b\n1,inf\n",             # a number pandas reads its own way
    "a,b\n'=1,x\n2,\n",         # the writer's formula prefix, an empty cell
])
def test_files_not_as_the_run_writes_them_read_as_pandas_reads_them(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    _same(path)


def test_a_file_not_in_utf8_is_pandas_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("a,b\nx,\u00e9\n".encode("latin-1"))
    assert _read_plain(path) is None
    with pytest.raises(UnicodeDecodeError):
        read_csv(path)


def test_plain_frames_are_what_the_report_expects(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("parameter,mean,note\nmu,0.5,'=SUM(A1)\ntau,,\n", encoding="utf-8")
    frame = read_csv(path)
    assert frame["parameter"].tolist() == ["mu", "tau"]
    assert frame["mean"].iloc[0] == 0.5 and pd.isna(frame["mean"].iloc[1])
    assert frame["note"].tolist() == ["=SUM(A1)", ""]
