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
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def store(name: str, run_dir: Path, reads: set[str], files: dict[str, str | None], png: bytes) -> bool:
    """Keep plot ``name``'s ``png``, drawn from the run whose files had the digests ``files`` (a
    :func:`snapshot` taken before the run was read) after it read ``reads``; False (not kept) if it
    read a file the snapshot does not cover."""
    names = {*PLAN_FILES, *reads}
    if not names <= files.keys():
        return False
    _ENTRIES[_key(run_dir, name)] = Entry(inputs=tuple(sorted((n, files[n]) for n in names)), png=png)
    return True


def lookup(name: str, run: Any) -> bytes | None:
    """The PNG of plot ``name`` drawn ahead for ``run``'s directory, if its inputs are unchanged and
    the run is usable; else None."""
    if not _ENTRIES or run.unusable:
        return None
    entry = _ENTRIES.get(_key(run.run_dir, name))
    if entry is None:
        return None
    run_dir = Path(run.run_dir)
    if all(digest(run_dir / n) == d for n, d in entry.inputs):
        return entry.png
    return None


def clear() -> None:
    _ENTRIES.clear()
