"""Figures drawn ahead of their notebook (``report/prerender.py``), reused while their inputs are
unchanged.

An entry holds a plot's PNG and the SHA-256 of every file it was drawn from, as they were when
the run directory was read: the files the plot read (:meth:`~..load.RunData.track`; a file that
was missing counts, as missing) and the plan (``plan.json``, ``pool.json`` and a portfolio's plan
two levels up), which every view of a run reads. :func:`lookup` gives the PNG back only if every
one of those files has the same bytes now, so a reused figure is the figure the same plot function
would draw from the same inputs; anything else draws it again. Entries are drawn without the
watermark of an unusable run, so they serve only runs that are usable (``run.unusable`` empty).

The cache lives in the process that draws (the report kernel) and holds one run directory's
figures: :func:`clear` before another's are drawn.

Figures drawn aside (``plots/aside.py``: by the run's own process while its kernel executes the
notebook) are entries on disk, in the directory the kernel's environment names (``notebook.ASIDE_ENV``):
``<plot>.png`` and ``<plot>.json`` (the run directory, the inputs' digests and the PNG's), the JSON
written last. :func:`lookup` reads them when it holds no entry of its own, under the same rule.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..notebook import ASIDE_ENV

PLAN_FILES = ("plan.json", "pool.json", "../../plan.json")


@dataclass(frozen=True)
class Entry:
    inputs: tuple[tuple[str, str | None], ...]  # (file name relative to the run directory, SHA-256 or None)
    png: bytes


_ENTRIES: dict[tuple[str, str], Entry] = {}


def digest(path: Path) -> str | None:
    """SHA-256 of the file's bytes; None when it is not there (or not readable)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def snapshot(run_dir: Path, names: list[str] | tuple[str, ...]) -> dict[str, str | None]:
    """``{name: digest}`` of the files ``names`` (relative to ``run_dir``) and of the plan files."""
    return {name: digest(run_dir / name) for name in (*PLAN_FILES, *names)}


def _key(run_dir: Path, name: str) -> tuple[str, str]:
    return str(Path(run_dir).resolve()), name


def _inputs(reads: set[str], files: dict[str, str | None]) -> tuple[tuple[str, str | None], ...] | None:
    """The (file, digest) pairs an entry depends on: the plan files and what the plot read, from the
    snapshot ``files``; None if the plot read a file the snapshot does not cover."""
    names = {*PLAN_FILES, *reads}
    if not names <= files.keys():
        return None
    return tuple(sorted((n, files[n]) for n in names))


def store(name: str, run_dir: Path, reads: set[str], files: dict[str, str | None], png: bytes) -> bool:
    """Keep plot ``name``'s ``png``, drawn from the run whose files had the digests ``files`` (a
    :func:`snapshot` taken before the run was read) after it read ``reads``; False (not kept) if it
    read a file the snapshot does not cover."""
    inputs = _inputs(reads, files)
    if inputs is None:
        return False
    _ENTRIES[_key(run_dir, name)] = Entry(inputs=inputs, png=png)
    return True


def lookup(name: str, run: Any) -> bytes | None:
    """The PNG of plot ``name`` drawn ahead for ``run``'s directory, if its inputs are unchanged and
    the run is usable; else None."""
    if run.unusable:
        return None
    entry = _ENTRIES.get(_key(run.run_dir, name)) or _aside_entry(name, run.run_dir)
    if entry is None:
        return None
    run_dir = Path(run.run_dir)
    if all(digest(run_dir / n) == d for n, d in entry.inputs):
        return entry.png
    return None


def entry_record(name: str, run_dir: Path, reads: set[str], files: dict[str, str | None],
                 png: bytes) -> dict[str, object] | None:
    """What an aside entry's JSON holds (see the module's docstring); None if the plot read a file
    the snapshot ``files`` does not cover."""
    inputs = _inputs(reads, files)
    if inputs is None:
        return None
    return {"plot": name, "run_dir": _key(run_dir, name)[0], "png_sha256": hashlib.sha256(png).hexdigest(),
            "inputs": [list(pair) for pair in inputs]}


def _aside_entry(name: str, run_dir: Path) -> Entry | None:
    where = os.environ.get(ASIDE_ENV)
    if not where:
        return None
    try:
        record = json.loads((Path(where) / f"{name}.json").read_text(encoding="utf-8"))
        png = (Path(where) / f"{name}.png").read_bytes()
    except (OSError, ValueError):
        return None
    if (not isinstance(record, dict) or record.get("plot") != name or record.get("run_dir") != _key(run_dir, name)[0]
            or record.get("png_sha256") != hashlib.sha256(png).hexdigest()):
        return None
    try:
        inputs = tuple((str(n), None if d is None else str(d)) for n, d in record["inputs"])
    except (KeyError, TypeError, ValueError):
        return None
    return Entry(inputs=inputs, png=png)


def clear() -> None:
    _ENTRIES.clear()
