"""Evidence-tracker CSV → validated, normalised DataFrame (SPEC §4). Pure: bytes in, table out.

:func:`parse_tracker` either returns the normalised table or raises :class:`TrackerError` listing
every problem found (file, spreadsheet row, column, value, what is accepted). The happy path is
vectorised: the C CSV parser of pandas plus a numpy scan of the raw bytes that finds record
boundaries and field counts (pandas silently pads short rows, so it cannot tell us about them).

The stages, in order (``_parse``); the first three stop at the first file-level problem, the
others collect every row problem before raising:

1. ``_read_layout``: BOM dropped, UTF-8 checked, records and fields found, cells read as text.
2. ``_header``: column names normalised; duplicates, reserved and missing required columns.
3. ``_records``: blank records skipped, ragged ones reported, empty unnamed columns dropped.
4. ``_check_lengths``: no cell longer than ``MAX_CELL_CHARS``.
5. ``_identity``: study_id (non-empty, unique), evidence_type, metric, unit (one of ``UNITS``).
6. ``_uncertainty``: estimate, standard_error, CI (complete, ordered, containing the estimate;
   ``ci_level`` as 0.9, 90 or 90%), uncertainty_scenario; at least one source per row.
7. ``_check_domains``: values inside the domain of their unit's transform (``units.TRANSFORMS``).
8. ``_check_model_scale``: the model-scale estimate and SE that compile computes from the row
   are usable numbers (``MODEL_ABS_MAX``, ``MODEL_SE_RANGE``), so check-config refuses exactly
   what compile or the fit could not handle.
9. ``_flags_and_dates``: analysis_ready, window dates.
10. ``_assemble``: the normalised table.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import Problem, TrackerError
from .units import (
    MODEL_ABS_MAX,
    MODEL_SE_RANGE,
    TRANSFORMS,
    UnitTransform,
    se_delta,
    se_from_ci,
    z_for_level,
)

__all__ = [
    "REQUIRED_COLUMNS",
    "UNITS",
    "TEXT_COLUMNS",
    "SCENARIO_LEVELS",
    "KNOWN_COLUMNS",
    "OUTPUT_COLUMNS",
    "parse_tracker",
]

REQUIRED_COLUMNS: tuple[str, ...] = (
    "study_id", "evidence_type", "metric", "unit", "estimate", "analysis_ready",
)
# Units and their transforms come from units.TRANSFORMS (each unit converts to one model scale).
_TRANSFORM_OF: dict[str, UnitTransform] = {unit: t for (unit, _), t in TRANSFORMS.items()}
UNITS: tuple[str, ...] = tuple(_TRANSFORM_OF)
TEXT_COLUMNS: tuple[str, ...] = (
    "study_name", "brand", "market", "channel", "population", "design", "source", "notes",
)
SCENARIO_LEVELS: tuple[str, ...] = ("low", "medium", "high")
UNCERTAINTY_COLUMNS: tuple[str, ...] = (
    "standard_error", "ci_lower", "ci_upper", "ci_level", "uncertainty_scenario",
)
DATE_COLUMNS: tuple[str, ...] = ("window_start", "window_end")
KNOWN_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + UNCERTAINTY_COLUMNS + TEXT_COLUMNS + DATE_COLUMNS
OUTPUT_COLUMNS: tuple[str, ...] = (
    "row", "study_id", "evidence_type", "metric", "unit", "estimate",
    "standard_error", "ci_lower", "ci_upper", "ci_level", "uncertainty_scenario", "analysis_ready",
    "study_name", "brand", "market", "channel", "population", "window_start", "window_end",
    "design", "source", "notes",
)

MAX_CELL_CHARS = 10_000
MAX_PROBLEMS = 200
MAX_COLUMNS = 1_000

_BOOL_WORDS = {
    "true": True, "yes": True, "1": True, "y": True, "t": True,
    "false": False, "no": False, "0": False, "n": False, "f": False,
}
_BOOL_ACCEPTED = "true/false, yes/no, 1/0, y/n, t/f (any case)"
_NUMBER_RE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER_ACCEPTED = "a finite number such as 0.052, -1.3 or 5e-3 (no thousands separators)"
# Excel and pandas often append a midnight time to dates; it is accepted and dropped.
_DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ]00:00(?::00(?:\.0+)?)?)?"
_DATE_ACCEPTED = "an ISO date YYYY-MM-DD, e.g. 2024-03-31"
_UNCERTAINTY_ACCEPTED = (
    "standard_error; or ci_lower + ci_upper + ci_level; or uncertainty_scenario (low/medium/high)"
)
_DOMAIN = {unit: t.lower_bound for unit, t in _TRANSFORM_OF.items() if t.lower_bound is not None}
_PERCENT_RE = _NUMBER_RE + r"\s*%"
_LEVEL_ACCEPTED = ("a fraction strictly between 0 and 1 (0.9), a percentage strictly between 1 and "
                   "100 (90), or a percentage with a percent sign (90% or 90 %)")
_MODEL_ACCEPTED = (f"values whose model-scale estimate lies within ±{MODEL_ABS_MAX:g} and whose "
                   f"model-scale standard error lies within {MODEL_SE_RANGE[0]:g} to "
                   f"{MODEL_SE_RANGE[1]:g}")


def parse_tracker(data: bytes, filename: str) -> pd.DataFrame:
    """Validate an evidence-tracker CSV (``data``: the file's bytes) and return it normalised.

    One row per data record in file order (blank records skipped), columns ``OUTPUT_COLUMNS``
    then any extra columns (raw strings); ``row`` is the spreadsheet row (header = 1).

    Raises :class:`TrackerError` whose ``problems`` list every problem found, sorted by row then
    column (at most ``MAX_PROBLEMS`` plus a final "N more" entry). No other exception escapes for
    any input bytes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_tracker expects bytes, got {type(data).__name__}")
    try:
        return _parse(bytes(data), filename)
    except TrackerError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure must reach the user as a TrackerError
        problem = Problem(file=filename, message=f"could not read the tracker as CSV: "
                                                 f"{type(exc).__name__}: {_clip(str(exc), 300)}")
        raise TrackerError(f"{filename}: 1 problem(s) in the tracker", [problem]) from None


# ----------------------------------------------------------------------------- problem collection


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class _Problems:
    """Problems gathered in vectorised groups; Problem objects are built only for the ones shown."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.column_order: dict[str, int] = {}
        # (rows, column, build(i) -> Problem)
        self._groups: list[tuple[np.ndarray, str | None, Callable[[int], Problem]]] = []

    def add(self, problem: Problem) -> None:
        row = 0 if problem.row is None else problem.row
        self._groups.append((np.array([row], dtype=np.int64), problem.column, lambda i: problem))

    def add_mask(self, mask: np.ndarray, rows: np.ndarray, column: str | None,
                 message: str | Callable[[int, str], str], accepted: str | None = None,
                 values: pd.Series | None = None) -> None:
        """One problem per True in ``mask`` (positional, aligned with ``rows`` and ``values``).

        A callable ``message`` gets the record's position and its cell value.
        """
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        if idx.size == 0:
            return
        bad_rows = rows[idx]
        bad_values = None if values is None else values.iloc[idx]

        def build(i: int) -> Problem:
            value = None if bad_values is None else str(bad_values.iloc[i])
            text = message(int(idx[i]), value or "") if callable(message) else message
            return Problem(file=self.filename, message=text, row=int(bad_rows[i]), column=column,
                           value=None if value is None else _clip(value), accepted=accepted)

        self._groups.append((bad_rows.astype(np.int64), column, build))

    def __len__(self) -> int:
        return sum(len(rows) for rows, _, _ in self._groups)

    def raise_if_any(self) -> None:
        total = len(self)
        if total == 0:
            return
        rows = np.concatenate([g[0] for g in self._groups])
        cols = np.concatenate([
            np.full(len(g[0]), -1 if g[1] is None else self.column_order.get(g[1], 10**6))
            for g in self._groups])
        group = np.concatenate([np.full(len(g[0]), k) for k, g in enumerate(self._groups)])
        elem = np.concatenate([np.arange(len(g[0])) for g in self._groups])
        order = np.lexsort((elem, group, cols, rows))[:MAX_PROBLEMS]
        problems = [self._groups[group[k]][2](int(elem[k])) for k in order]
        if total > MAX_PROBLEMS:
            problems.append(Problem(
                file=self.filename,
                message=f"... and {total - MAX_PROBLEMS} more problem(s) not listed; "
                        f"fix the ones above and check again"))
        raise TrackerError(f"{self.filename}: {total} problem(s) in the tracker", problems)


def _fail(filename: str, message: str, **where: object) -> TrackerError:
    return TrackerError(f"{filename}: 1 problem(s) in the tracker",
                        [Problem(file=filename, message=message, **where)])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- bytes and layout


def _check_encoding(raw: bytes, filename: str) -> None:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(filename, "the file is UTF-16 encoded; save the file as UTF-8 "
                              "(in Excel: 'CSV UTF-8 (Comma delimited)')")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if b"\x00" in raw:
            line = raw[: raw.index(b"\x00")].count(b"\n") + 1
            raise _fail(filename, f"line {line} contains a NUL byte: this looks like a binary file "
                                  "(e.g. an .xlsx workbook), not a CSV; export the sheet as CSV and "
                                  "save the file as UTF-8")
        return
    problems = _Problems(filename)
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.add(Problem(
                file=filename,
                message=f"line {number} is not valid UTF-8 (byte 0x{line[exc.start]:02X} at byte "
                        f"{exc.start + 1} of the line); save the file as UTF-8 "
                        "(in Excel: 'CSV UTF-8 (Comma delimited)')",
                row=None, value=_clip(line.decode("utf-8", "replace"))))
    problems.raise_if_any()


@dataclass
class _Layout:
    """Where the CSV records are: byte offsets of record terminators and fields per record."""

    term_pos: np.ndarray  # byte offset of each record terminator
    n_records: int
    n_fields: np.ndarray  # per record, header included

    def record_span(self, record: int, size: int) -> tuple[int, int]:
        start = 0 if record == 0 else int(self.term_pos[record - 1]) + 1
        end = int(self.term_pos[record]) if record < len(self.term_pos) else size
        return start, end


def _scan(raw: bytes, filename: str) -> _Layout:
    """Find records and fields with quote parity (RFC 4180). Malformed quoting is an error.

    A comma or line break is structural when an even number of '"' precede it. That agrees with
    the pandas C parser exactly when every quote opens a field, closes it, or is doubled inside a
    quoted field, which is what we check (spreadsheets always write files that way).
    """
    b = np.frombuffer(raw, dtype=np.uint8)
    is_quote = b == 34
    q = is_quote.view(np.uint8)
    parity_after = np.bitwise_xor.accumulate(q)
    inside = (parity_after ^ q).view(bool)  # parity before the byte: inside a quoted field
    structural = ~inside
    newline = (b == 10) & structural
    cr = (b == 13) & structural
    cr[:-1] &= b[1:] != 10
    term = newline | cr
    term_pos = np.flatnonzero(term)
    n_records = len(term_pos) + (0 if term[-1] else 1)

    def record_of(pos: int) -> int:
        return int(np.searchsorted(term_pos, pos, side="left"))

    def snippet(pos: int) -> str:
        start = 0 if record_of(pos) == 0 else int(term_pos[record_of(pos) - 1]) + 1
        return raw[start: pos + 60].decode("utf-8", "replace")

    def separates(x: np.ndarray) -> np.ndarray:
        return (x == 44) | (x == 10) | (x == 13) | (x == 34)

    prev = np.empty_like(b)
    prev[0], prev[1:] = 44, b[:-1]
    nxt = np.empty_like(b)
    nxt[-1], nxt[:-1] = 44, b[1:]
    bad_quote = (is_quote & structural & ~separates(prev)) | (is_quote & inside & ~separates(nxt))
    comma_pos = np.flatnonzero((b == 44) & structural)
    if bad_quote.any():
        pos = int(np.argmax(bad_quote))
        record = record_of(pos)
        start = 0 if record == 0 else int(term_pos[record - 1]) + 1
        field = int(np.searchsorted(comma_pos, pos) - np.searchsorted(comma_pos, start))
        column = None
        if record > 0:
            header = next(csv.reader([raw[: term_pos[0]].decode("utf-8")]), [])
            if field < len(header):
                column = header[field].strip().lower() or None
        raise _fail(filename, "misplaced quote character: a '\"' inside a field that is not "
                              "enclosed in quotes, or text after a closing quote",
                    row=record + 1, column=column, value=_clip(snippet(pos)),
                    accepted='enclose the whole field in double quotes and double any " inside it')
    if parity_after[-1]:
        opening = np.flatnonzero(is_quote & structural)
        pos = int(opening[-1]) if opening.size else 0
        raise _fail(filename, "a quoted field is never closed (a '\"' without its closing '\"')",
                    row=record_of(pos) + 1, value=_clip(snippet(pos)),
                    accepted='a field enclosed in double quotes, with any " inside doubled ("")')

    comma_record = np.searchsorted(term_pos, comma_pos, side="left")
    n_fields = 1 + np.bincount(comma_record, minlength=n_records)
    return _Layout(term_pos=term_pos, n_records=n_records, n_fields=n_fields[:n_records])


def _read_cells(raw: bytes, layout: _Layout, n_columns: int, filename: str) -> pd.DataFrame:
    """All records with at most ``n_columns`` fields as strings, indexed by record number."""
    frame = pd.read_csv(
        io.BytesIO(raw), header=None, names=range(n_columns), index_col=False, dtype=str,
        keep_default_na=False, na_filter=False, skip_blank_lines=False, on_bad_lines="skip",
        engine="c", encoding="utf-8", quotechar='"', doublequote=True, sep=",",
    )
    kept = np.flatnonzero(layout.n_fields <= n_columns)
    if len(frame) != len(kept):
        raise _fail(filename, f"could not parse the CSV consistently ({len(frame)} records read, "
                              f"{len(kept)} expected); check the file's quoting")
    frame.index = kept
    return frame


# ----------------------------------------------------------------------------- header


def _header(cells: pd.Series, filename: str) -> list[str]:
    """Normalised column names (stripped, lowercase; blank ones named ``unnamed_<n>``)."""
    raw_names = [str(v) for v in cells.tolist()]
    if all(not v.strip() for v in raw_names):
        raise _fail(filename, "row 1 is empty; the first row must hold the column names", row=1,
                    accepted=", ".join(REQUIRED_COLUMNS) + " (and optional columns)")
    if len(raw_names) == 1 and (";" in raw_names[0] or "\t" in raw_names[0]):
        sep = "semicolons" if ";" in raw_names[0] else "tabs"
        raise _fail(filename, f"the file is separated by {sep}; it must be comma-separated "
                              "(in Excel: save as 'CSV UTF-8 (Comma delimited)')",
                    row=1, value=_clip(raw_names[0]), accepted="a comma-separated file")
    names = [v.strip().strip("\ufeff").strip().lower() or f"unnamed_{j + 1}"
             for j, v in enumerate(raw_names)]
    problems = _Problems(filename)
    positions: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        positions.setdefault(name, []).append(j + 1)
    for name, where in positions.items():
        if len(where) > 1:
            problems.add(Problem(
                file=filename, row=1, column=name, value=name,
                message=f"column name appears {len(where)} times (columns "
                        f"{', '.join(map(str, where))}); column names must be unique"))
    if "row" in positions:
        problems.add(Problem(file=filename, row=1, column="row", value="row",
                             message="'row' is reserved for the spreadsheet row number; "
                                     "rename the column"))
    missing = [c for c in REQUIRED_COLUMNS if c not in positions]
    if missing:
        candidates = [n for n in positions if n not in KNOWN_COLUMNS]
        parts = []
        for name in missing:
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
            parts.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        problems.add(Problem(file=filename, row=1, message="missing required column(s): "
                             + ", ".join(parts), value=_clip(",".join(raw_names)),
                             accepted="a header with " + ", ".join(REQUIRED_COLUMNS)))
    problems.raise_if_any()
    return names


# ----------------------------------------------------------------------------- cell conversion


def _numbers(stripped: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, is_number_and_finite, is_empty) for stripped string cells."""
    empty = (stripped == "").to_numpy(dtype=bool)
    shaped = stripped.str.fullmatch(_NUMBER_RE).to_numpy(dtype=bool, na_value=False)
    values = pd.to_numeric(stripped.where(shaped), errors="coerce").to_numpy(dtype=np.float64)
    ok = shaped & np.isfinite(values)
    return np.where(ok, values, np.nan), ok, empty


def _dates(stripped: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(YYYY-MM-DD strings, is_valid) for non-empty stripped cells."""
    shaped = stripped.str.fullmatch(_DATE_RE).to_numpy(dtype=bool, na_value=False)
    day = stripped.str.slice(0, 10).where(shaped, "0001-01-01")
    year = pd.to_numeric(day.str.slice(0, 4)).to_numpy(dtype=np.int64)
    month = pd.to_numeric(day.str.slice(5, 7)).to_numpy(dtype=np.int64)
    dom = pd.to_numeric(day.str.slice(8, 10)).to_numpy(dtype=np.int64)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    last = month_days[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok = shaped & (year >= 1) & (month >= 1) & (month <= 12) & (dom >= 1) & (dom <= last)
    return day, ok


def _did_you_mean(options: tuple[str, ...], what: str) -> Callable[[int, str], str]:
    def message(_: int, value: str) -> str:
        close = difflib.get_close_matches(value.strip().lower(), options, n=1, cutoff=0.6)
        return f"unknown {what}" + (f"; did you mean '{close[0]}'?" if close else "")
    return message


# ----------------------------------------------------------------------------- the stages


def _parse(raw: bytes, filename: str) -> pd.DataFrame:
    """The stages of the module docstring, in order."""
    raw, layout, cells = _read_layout(raw, filename)
    cells.columns = names = _header(cells.loc[0], filename)
    table = _records(raw, layout, cells, names, filename)
    _check_lengths(table)
    identity = _identity(table)
    numbers = _uncertainty(table)
    _check_domains(table, identity["unit"], numbers)
    _check_model_scale(table, identity["unit"], numbers)
    flags = _flags_and_dates(table)
    table.problems.raise_if_any()
    return _assemble(table, {**identity, **numbers, **flags})


def _read_layout(raw: bytes, filename: str) -> tuple[bytes, _Layout, pd.DataFrame]:
    """Stage 1: BOM dropped, encoding checked, records found, cells read as strings."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    _check_encoding(raw, filename)
    if not raw.decode("utf-8").strip():
        raise _fail(filename, "the file is empty; expected a header row and data rows",
                    accepted="a comma-separated file with a header row")
    layout = _scan(raw, filename)
    n_columns = int(layout.n_fields[0])
    if n_columns > MAX_COLUMNS:
        raise _fail(filename, f"the header has {n_columns} columns; at most {MAX_COLUMNS}", row=1)
    return raw, layout, _read_cells(raw, layout, n_columns, filename)


@dataclass
class _Table:
    """The data records being validated: raw cells, stripped cells, spreadsheet rows, problems."""

    frame: pd.DataFrame  # raw cell strings, one row per data record
    clean: pd.DataFrame  # the same, stripped
    rows: np.ndarray  # spreadsheet row of each record (header = 1)
    problems: _Problems

    def __post_init__(self) -> None:
        self.empty_column = pd.Series(np.full(len(self.frame), "", dtype=object), dtype=str)

    def stripped(self, name: str) -> pd.Series:
        return self.clean[name] if name in self.clean.columns else self.empty_column

    def present(self, name: str) -> np.ndarray:
        return (self.stripped(name) != "").to_numpy(dtype=bool)

    def raw_values(self, name: str) -> pd.Series:
        return self.frame[name] if name in self.frame.columns else self.empty_column

    def add(self, mask: np.ndarray, column: str | None, message: str | Callable[[int, str], str],
            accepted: str | None = None, values: str | None = None) -> None:
        """One problem per True in ``mask``; ``values``: the column whose raw cells are shown."""
        self.problems.add_mask(mask, self.rows, column, message, accepted,
                               None if values is None else self.raw_values(values))

    def number(self, name: str, *, required: bool,
               cells: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values, is_finite_number, is_empty) of a numeric column; problems for bad cells."""
        values, ok, empty = _numbers(self.stripped(name) if cells is None else cells)
        if required:
            self.add(empty, name, f"{name} is empty", _NUMBER_ACCEPTED, name)
        self.add(~ok & ~empty, name, f"{name} is not a finite number", _NUMBER_ACCEPTED, name)
        return values, ok, empty


def _records(raw: bytes, layout: _Layout, cells: pd.DataFrame, names: list[str],
             filename: str) -> _Table:
    """Stage 3: blank records skipped, ragged ones reported, empty unnamed columns dropped."""
    n_columns = int(layout.n_fields[0])
    problems = _Problems(filename)
    problems.column_order = {name: j for j, name in enumerate(names)}
    data = cells.iloc[1:]
    clean = pd.DataFrame({name: data[name].str.strip() for name in names}, index=data.index)
    blank = np.ones(len(data), dtype=bool)
    for name in names:
        blank &= (clean[name] == "").to_numpy(dtype=bool)
    records = data.index.to_numpy()
    short = layout.n_fields[records] != n_columns
    ragged_records = records[short & ~blank].tolist()
    for record in np.flatnonzero(layout.n_fields > n_columns).tolist():
        start, end = layout.record_span(record, len(raw))
        text = raw[start:end].decode("utf-8")
        if text.replace(",", "").replace('"', "").strip():
            ragged_records.append(record)
    for record in sorted(ragged_records):
        start, end = layout.record_span(record, len(raw))
        problems.add(Problem(
            file=filename, row=record + 1, value=_clip(raw[start:end].decode("utf-8")),
            message=f"row has {int(layout.n_fields[record])} fields but the header has "
                    f"{n_columns}", accepted=f"{n_columns} comma-separated fields per row "
                                          "(quote any field that contains a comma)"))
    frame = data[~blank & ~short].reset_index(drop=True)
    clean = clean[~blank & ~short]
    if frame.empty:
        if not ragged_records:
            raise _fail(filename, "no data rows: the file has a header but no data rows",
                        accepted="one row per study below the header")
        problems.raise_if_any()
    rows = clean.index.to_numpy(dtype=np.int64) + 1
    clean = clean.reset_index(drop=True)
    for name in [n for n in names if n.startswith("unnamed_") and n not in KNOWN_COLUMNS]:
        if (clean[name] == "").all():  # an empty spreadsheet column without a header
            frame = frame.drop(columns=name)
            clean = clean.drop(columns=name)
    return _Table(frame=frame, clean=clean, rows=rows, problems=problems)


def _check_lengths(table: _Table) -> None:
    """Stage 4: no cell longer than MAX_CELL_CHARS."""
    for name in table.frame.columns:
        length = table.frame[name].str.len().to_numpy()
        for i in np.flatnonzero(length > MAX_CELL_CHARS).tolist():
            table.problems.add(Problem(
                file=table.problems.filename, row=int(table.rows[i]), column=name,
                value=_clip(str(table.frame[name].iloc[i]), 40),
                message=f"field is {int(length[i])} characters long; at most {MAX_CELL_CHARS}"))


def _identity(table: _Table) -> dict[str, pd.Series]:
    """Stage 5: study_id (non-empty, unique), evidence_type, metric, unit (known)."""
    study_id = table.stripped("study_id")
    table.add(study_id == "", "study_id", "study_id is empty", "a non-empty identifier, unique "
              "within the tracker", "study_id")
    dup = (study_id.duplicated(keep=False) & (study_id != "")).to_numpy(dtype=bool)
    if dup.any():
        for value, group in pd.Series(table.rows[dup]).groupby(study_id[dup].to_numpy()):
            where = group.tolist()
            table.problems.add(Problem(
                file=table.problems.filename, row=int(where[0]), column="study_id",
                value=_clip(str(value)), message=f"study_id is repeated in rows "
                                                 f"{', '.join(map(str, where))}",
                accepted="a study_id that is unique within the tracker"))
    out = {"study_id": study_id}
    for name in ("evidence_type", "metric"):
        out[name] = table.stripped(name).str.lower()
        table.add(out[name] == "", name, f"{name} is empty", f"a non-empty {name}", name)
    out["unit"] = unit = table.stripped("unit").str.lower()
    table.add(~unit.isin(UNITS).to_numpy(dtype=bool), "unit", _did_you_mean(UNITS, "unit"),
              ", ".join(UNITS), "unit")
    return out


def _ci_level(table: _Table) -> tuple[np.ndarray, np.ndarray]:
    """ci_level as a fraction (NaN where invalid) and where it was a number: 0.9, 90 and 90%."""
    cells = table.stripped("ci_level")
    percent = cells.str.fullmatch(_PERCENT_RE).to_numpy(dtype=bool, na_value=False)
    number = cells.where(~percent, cells.str.rstrip("%").str.rstrip())
    raw, ok, _ = table.number("ci_level", required=False, cells=number)
    with np.errstate(invalid="ignore"):
        level = np.where(percent, np.where((raw > 0) & (raw < 100), raw / 100, np.nan),
                         np.where((raw > 0) & (raw < 1), raw,
                                  np.where((raw > 1) & (raw < 100), raw / 100, np.nan)))
    table.add(ok & np.isnan(level), "ci_level", "ci_level is not a valid confidence level",
              _LEVEL_ACCEPTED, "ci_level")
    return level, ok


def _uncertainty(table: _Table) -> dict[str, np.ndarray | pd.Series]:
    """Stage 6: estimate, standard_error, the CI (complete, ordered, containing the estimate),
    uncertainty_scenario, and at least one source of uncertainty per row."""
    add = table.add
    estimate, est_ok, _ = table.number("estimate", required=True)
    se, se_ok, se_empty = table.number("standard_error", required=False)
    add(se_ok & (se <= 0), "standard_error", "standard_error must be > 0", "a positive number",
        "standard_error")

    ci_names = ("ci_lower", "ci_upper", "ci_level")
    ci_present = {name: table.present(name) for name in ci_names}
    ci_any = ci_present["ci_lower"] | ci_present["ci_upper"] | ci_present["ci_level"]
    ci_all = ci_present["ci_lower"] & ci_present["ci_upper"] & ci_present["ci_level"]
    for i in np.flatnonzero(ci_any & ~ci_all).tolist():
        missing = [n for n in ci_names if not ci_present[n][i]]
        given = [n for n in ci_names if ci_present[n][i]]
        table.problems.add(Problem(
            file=table.problems.filename, row=int(table.rows[i]), column=missing[0], value="",
            message=f"{' and '.join(given)} given but {' and '.join(missing)} empty; "
                    "a confidence interval needs all three", accepted="ci_lower, ci_upper and "
                    "ci_level all filled, or all empty"))
    lower, lower_ok, _ = table.number("ci_lower", required=False)
    upper, upper_ok, _ = table.number("ci_upper", required=False)
    level, level_ok = _ci_level(table)
    bounds_ok = lower_ok & upper_ok
    inverted = bounds_ok & (lower >= upper)
    add(inverted, "ci_lower",
        lambda i, _: f"ci_lower must be below ci_upper ({upper[i]:g}); the interval is inverted "
        "or has zero width", "ci_lower < ci_upper", "ci_lower")
    outside = bounds_ok & ~inverted & est_ok & ((estimate < lower) | (estimate > upper))
    add(outside, "estimate",
        lambda i, _: f"estimate lies outside its confidence interval [{lower[i]:g}, {upper[i]:g}]",
        "ci_lower <= estimate <= ci_upper", "estimate")

    scenario = table.stripped("uncertainty_scenario").str.lower()
    scenario_present = (scenario != "").to_numpy(dtype=bool)
    add(scenario_present & ~scenario.isin(SCENARIO_LEVELS).to_numpy(dtype=bool),
        "uncertainty_scenario", "unknown uncertainty_scenario", ", ".join(SCENARIO_LEVELS),
        "uncertainty_scenario")
    add(se_empty & ~ci_any & ~scenario_present, None,
        "row has no uncertainty: give a standard_error, a confidence interval, or an "
        "uncertainty_scenario", _UNCERTAINTY_ACCEPTED)
    return {"estimate": estimate, "standard_error": se, "ci_lower": lower, "ci_upper": upper,
            "ci_level": level, "uncertainty_scenario": scenario,
            # validity masks, used by the later stages and dropped from the output
            "_est_ok": est_ok, "_se_ok": se_ok, "_lower_ok": lower_ok, "_upper_ok": upper_ok,
            "_level_ok": level_ok & ~np.isnan(level), "_ci_ok": bounds_ok & ~inverted}


def _check_domains(table: _Table, unit: pd.Series, numbers: dict) -> None:
    """Stage 7: estimate and CI bounds inside the domain of their unit's transform (the bound
    comes from :mod:`.units`)."""
    unit_values = unit.to_numpy(dtype=object)
    for unit_name, bound in _DOMAIN.items():
        is_unit = unit_values == unit_name
        for name, ok in (("estimate", "_est_ok"), ("ci_lower", "_lower_ok"),
                         ("ci_upper", "_upper_ok")):
            table.add(is_unit & numbers[ok] & (numbers[name] <= bound), name,
                      f"{name} must be > {bound:g} for unit '{unit_name}' (outside the domain of "
                      "the log transform)", f"a number > {bound:g}", name)


def _check_model_scale(table: _Table, unit: pd.Series, numbers: dict) -> None:
    """Stage 8: the model-scale estimate and SE compile would compute from each row are usable
    numbers (finite estimate within ±MODEL_ABS_MAX, SE within MODEL_SE_RANGE), with compile's
    precedence: a complete CI, else the standard error. Only rows valid so far are checked."""
    unit_values = unit.to_numpy(dtype=object)
    estimate, level = numbers["estimate"], numbers["ci_level"]
    lo_se, hi_se = MODEL_SE_RANGE
    with np.errstate(all="ignore"):
        z_ok = np.isfinite(z_for_level(np.where(numbers["_level_ok"], level, np.nan)))
    table.add(numbers["_level_ok"] & ~z_ok, "ci_level",
              "ci_level is too close to 0 or to 100 % to give a finite normal quantile",
              _LEVEL_ACCEPTED, "ci_level")
    for unit_name, t in _TRANSFORM_OF.items():
        rows = unit_values == unit_name
        valid = rows & numbers["_est_ok"]
        if t.lower_bound is not None:
            valid &= estimate > t.lower_bound
        if not valid.any():
            continue
        ci = valid & numbers["_ci_ok"] & numbers["_level_ok"] & z_ok
        if t.lower_bound is not None:
            ci &= numbers["ci_lower"] > t.lower_bound
        has_ci = (table.present("ci_lower") & table.present("ci_upper")
                  & table.present("ci_level"))
        se_rows = valid & ~has_ci & numbers["_se_ok"] & (numbers["standard_error"] > 0)
        with np.errstate(all="ignore"):
            model_estimate = t.forward(np.where(valid, estimate, np.nan))
            se_ci = se_from_ci(t, np.where(ci, numbers["ci_lower"], np.nan),
                               np.where(ci, numbers["ci_upper"], np.nan), np.where(ci, level, 0.5))
            se_sd = se_delta(t, np.where(se_rows, estimate, np.nan),
                             np.where(se_rows, numbers["standard_error"], np.nan))
        bad_estimate = valid & ~(np.abs(model_estimate) <= MODEL_ABS_MAX)
        table.add(bad_estimate, "estimate", lambda i, _, m=model_estimate, f=t.formula:
                  f"estimate gives {m[i]:.6g} on the model scale ({f}), outside the usable range "
                  f"-{MODEL_ABS_MAX:g} to {MODEL_ABS_MAX:g}", _MODEL_ACCEPTED, "estimate")
        for mask, model_se, column, how in (
                (ci, se_ci, "ci_lower", "the confidence interval gives"),
                (se_rows, se_sd, "standard_error", "standard_error gives (delta method)")):
            bad = mask & ~bad_estimate & ~((model_se >= lo_se) & (model_se <= hi_se))
            table.add(bad, column, lambda i, _, m=model_se, h=how:
                      f"{h} a model-scale standard error of {m[i]:.6g}, outside the usable range "
                      f"{lo_se:g} to {hi_se:g}", _MODEL_ACCEPTED, column)


def _flags_and_dates(table: _Table) -> dict[str, np.ndarray | pd.Series]:
    """Stage 9: analysis_ready as a boolean, window dates valid and ordered."""
    add = table.add
    ready = table.stripped("analysis_ready").str.lower().map(_BOOL_WORDS)
    add(~ready.notna().to_numpy(dtype=bool), "analysis_ready",
        "analysis_ready is not a yes/no value", _BOOL_ACCEPTED, "analysis_ready")
    dates: dict[str, pd.Series] = {}
    date_ok: dict[str, np.ndarray] = {}
    for name in DATE_COLUMNS:
        value = table.stripped(name)
        has = (value != "").to_numpy(dtype=bool)
        day, ok = _dates(value)
        add(has & ~ok, name, f"{name} is not a valid date", _DATE_ACCEPTED, name)
        dates[name] = day.where(has & ok, "")
        date_ok[name] = has & ok
    both = date_ok["window_start"] & date_ok["window_end"]
    start = dates["window_start"]
    add(both & (start > dates["window_end"]).to_numpy(dtype=bool), "window_end",
        lambda i, _: f"window_end is before window_start ({start.iloc[i]})",
        "a window_end on or after window_start", "window_end")
    return {"analysis_ready": ready, **dates}


def _assemble(table: _Table, values: dict) -> pd.DataFrame:
    """Stage 10: the normalised table, ``OUTPUT_COLUMNS`` then the extra columns as text."""
    out: dict[str, object] = {"row": table.rows}
    for name in OUTPUT_COLUMNS[1:]:
        if name == "analysis_ready":
            out[name] = values[name].to_numpy(dtype=bool)
        elif name in values:
            out[name] = values[name]
        else:
            out[name] = table.stripped(name)
    for name in table.frame.columns:
        if name not in KNOWN_COLUMNS:
            out[name] = table.frame[name]
    result = pd.DataFrame({k: (v.reset_index(drop=True) if isinstance(v, pd.Series) else v)
                           for k, v in out.items()})
    result["row"] = result["row"].astype(np.int64)
    for name in result.columns:
        if name not in ("row", "estimate", "standard_error", "ci_lower", "ci_upper", "ci_level",
                        "analysis_ready"):
            result[name] = result[name].astype(str)
    return result
