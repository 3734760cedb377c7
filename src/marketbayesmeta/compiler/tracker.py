"""Evidence-tracker CSV → validated, normalised DataFrame (SPEC §4). Pure: bytes in, table out.

:func:`parse_tracker` either returns the normalised table or raises :class:`TrackerError` listing
every problem found (file, spreadsheet row, column, value, what is accepted). The happy path is
vectorised: the C CSV parser of pandas plus a numpy scan of the raw bytes that finds record
boundaries and field counts (pandas silently pads short rows, so it cannot tell us about them).
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
UNITS: tuple[str, ...] = (
    "relative_percent", "relative_fraction", "ratio", "log_relative",
    "percentage_point", "proportion_difference",
)
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
_DOMAIN = {  # unit -> exclusive lower bound of the log transform's domain
    "ratio": 0.0,
    "relative_percent": -100.0,
    "relative_fraction": -1.0,
}


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


# ----------------------------------------------------------------------------- main


def _parse(raw: bytes, filename: str) -> pd.DataFrame:
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
    cells = _read_cells(raw, layout, n_columns, filename)
    names = _header(cells.loc[0], filename)
    cells.columns = names
    problems = _Problems(filename)
    problems.column_order = {name: j for j, name in enumerate(names)}

    # Records: skip blank ones, report ragged ones, validate the rest.
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
    names = list(frame.columns)

    for name in names:
        length = frame[name].str.len().to_numpy()
        too_long = length > MAX_CELL_CHARS
        if too_long.any():
            for i in np.flatnonzero(too_long).tolist():
                problems.add(Problem(
                    file=filename, row=int(rows[i]), column=name,
                    value=_clip(str(frame[name].iloc[i]), 40),
                    message=f"field is {int(length[i])} characters long; at most {MAX_CELL_CHARS}"))

    def column(name: str) -> pd.Series | None:
        return frame[name] if name in frame.columns else None

    empty_column = pd.Series(np.full(len(frame), "", dtype=object), dtype=str)

    def stripped(name: str) -> pd.Series:
        return clean[name] if name in clean.columns else empty_column

    def present(name: str) -> np.ndarray:
        return (stripped(name) != "").to_numpy(dtype=bool)

    def raw_values(name: str) -> pd.Series:
        s = column(name)
        return empty_column if s is None else s

    add = problems.add_mask

    # Identity and classification.
    study_id = stripped("study_id")
    add(study_id == "", rows, "study_id", "study_id is empty", "a non-empty identifier, unique "
        "within the tracker", raw_values("study_id"))
    dup = (study_id.duplicated(keep=False) & (study_id != "")).to_numpy(dtype=bool)
    if dup.any():
        for value, group in pd.Series(rows[dup]).groupby(study_id[dup].to_numpy()):
            where = group.tolist()
            problems.add(Problem(
                file=filename, row=int(where[0]), column="study_id", value=_clip(str(value)),
                message=f"study_id is repeated in rows {', '.join(map(str, where))}",
                accepted="a study_id that is unique within the tracker"))
    evidence_type = stripped("evidence_type").str.lower()
    metric = stripped("metric").str.lower()
    for name, series in (("evidence_type", evidence_type), ("metric", metric)):
        add(series == "", rows, name, f"{name} is empty", f"a non-empty {name}", raw_values(name))
    unit = stripped("unit").str.lower()
    unit_ok = unit.isin(UNITS).to_numpy(dtype=bool)
    add(~unit_ok, rows, "unit", _did_you_mean(UNITS, "unit"), ", ".join(UNITS), raw_values("unit"))

    # Numbers.
    def number(name: str, *, required: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        values, ok, empty = _numbers(stripped(name))
        if required:
            add(empty, rows, name, f"{name} is empty", _NUMBER_ACCEPTED, raw_values(name))
        add(~ok & ~empty, rows, name, f"{name} is not a finite number", _NUMBER_ACCEPTED,
            raw_values(name))
        return values, ok, empty

    estimate, est_ok, _ = number("estimate", required=True)
    se, se_ok, se_empty = number("standard_error", required=False)
    add(se_ok & (se <= 0), rows, "standard_error", "standard_error must be > 0",
        "a positive number", raw_values("standard_error"))

    ci_names = ("ci_lower", "ci_upper", "ci_level")
    ci_present = {name: present(name) for name in ci_names}
    ci_any = ci_present["ci_lower"] | ci_present["ci_upper"] | ci_present["ci_level"]
    ci_all = ci_present["ci_lower"] & ci_present["ci_upper"] & ci_present["ci_level"]
    partial = ci_any & ~ci_all
    for i in np.flatnonzero(partial).tolist():
        missing = [n for n in ci_names if not ci_present[n][i]]
        given = [n for n in ci_names if ci_present[n][i]]
        problems.add(Problem(
            file=filename, row=int(rows[i]), column=missing[0], value="",
            message=f"{' and '.join(given)} given but {' and '.join(missing)} empty; "
                    "a confidence interval needs all three", accepted="ci_lower, ci_upper and "
                    "ci_level all filled, or all empty"))
    lower, lower_ok, _ = number("ci_lower", required=False)
    upper, upper_ok, _ = number("ci_upper", required=False)
    level_raw, level_ok, _ = number("ci_level", required=False)
    with np.errstate(invalid="ignore"):
        level = np.where((level_raw > 0) & (level_raw < 1), level_raw,
                         np.where((level_raw > 1) & (level_raw < 100), level_raw / 100, np.nan))
    add(level_ok & np.isnan(level), rows, "ci_level", "ci_level is not a valid confidence level",
        "a fraction strictly between 0 and 1 (0.9) or a percentage strictly between 1 and 100 (90)",
        raw_values("ci_level"))
    bounds_ok = lower_ok & upper_ok
    inverted = bounds_ok & (lower >= upper)
    add(inverted, rows, "ci_lower",
        lambda i, _: f"ci_lower must be below ci_upper ({upper[i]:g}); the interval is inverted "
        "or has zero width", "ci_lower < ci_upper", raw_values("ci_lower"))
    outside = bounds_ok & ~inverted & est_ok & ((estimate < lower) | (estimate > upper))
    add(outside, rows, "estimate",
        lambda i, _: f"estimate lies outside its confidence interval [{lower[i]:g}, {upper[i]:g}]",
        "ci_lower <= estimate <= ci_upper", raw_values("estimate"))

    scenario = stripped("uncertainty_scenario").str.lower()
    scenario_present = (scenario != "").to_numpy(dtype=bool)
    add(scenario_present & ~scenario.isin(SCENARIO_LEVELS).to_numpy(dtype=bool), rows,
        "uncertainty_scenario", "unknown uncertainty_scenario", ", ".join(SCENARIO_LEVELS),
        raw_values("uncertainty_scenario"))
    add(se_empty & ~ci_any & ~scenario_present, rows, None,
        "row has no uncertainty: give a standard_error, a confidence interval, or an "
        "uncertainty_scenario", _UNCERTAINTY_ACCEPTED)

    # Domain of each unit's transform.
    unit_values = unit.to_numpy(dtype=object)
    for unit_name, bound in _DOMAIN.items():
        is_unit = unit_values == unit_name
        for name, values, ok in (("estimate", estimate, est_ok), ("ci_lower", lower, lower_ok),
                                 ("ci_upper", upper, upper_ok)):
            add(is_unit & ok & (values <= bound), rows, name,
                f"{name} must be > {bound:g} for unit '{unit_name}' (outside the domain of the "
                "log transform)", f"a number > {bound:g}", raw_values(name))

    # Flags, dates, text.
    ready = stripped("analysis_ready").str.lower().map(_BOOL_WORDS)
    ready_ok = ready.notna().to_numpy(dtype=bool)
    add(~ready_ok, rows, "analysis_ready", "analysis_ready is not a yes/no value",
        _BOOL_ACCEPTED, raw_values("analysis_ready"))
    dates: dict[str, pd.Series] = {}
    date_ok: dict[str, np.ndarray] = {}
    for name in DATE_COLUMNS:
        value = stripped(name)
        has = (value != "").to_numpy(dtype=bool)
        day, ok = _dates(value)
        add(has & ~ok, rows, name, f"{name} is not a valid date", _DATE_ACCEPTED, raw_values(name))
        dates[name] = day.where(has & ok, "")
        date_ok[name] = has & ok
    both = date_ok["window_start"] & date_ok["window_end"]
    start = dates["window_start"]
    add(both & (start > dates["window_end"]).to_numpy(dtype=bool), rows, "window_end",
        lambda i, _: f"window_end is before window_start ({start.iloc[i]})",
        "a window_end on or after window_start", raw_values("window_end"))

    problems.raise_if_any()

    out: dict[str, object] = {
        "row": rows,
        "study_id": study_id,
        "evidence_type": evidence_type,
        "metric": metric,
        "unit": unit,
        "estimate": estimate,
        "standard_error": se,
        "ci_lower": lower,
        "ci_upper": upper,
        "ci_level": level,
        "uncertainty_scenario": scenario,
        "analysis_ready": ready.to_numpy(dtype=bool),
    }
    for name in OUTPUT_COLUMNS[12:]:
        out[name] = dates[name] if name in DATE_COLUMNS else stripped(name)
    for name in names:
        if name not in KNOWN_COLUMNS:
            out[name] = frame[name]
    result = pd.DataFrame({k: (v.reset_index(drop=True) if isinstance(v, pd.Series) else v)
                           for k, v in out.items()})
    result["row"] = result["row"].astype(np.int64)
    for name in result.columns:
        if name not in ("row", "estimate", "standard_error", "ci_lower", "ci_upper", "ci_level",
                        "analysis_ready"):
            result[name] = result[name].astype(str)
    return result

