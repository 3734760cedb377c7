"""manifest.json: the sha256 and size of every file of a run directory (SPEC §6).

Format (``specs/manifest.schema.json``)::

    {"format": "marketbayesmeta.manifest/1",
     "plan_hash": "<sha256 of the plan executed>",
     "files": [{"path": "diagnostics.csv", "sha256": "<hex>", "size": 1234}, ...]}

``files`` lists every regular file under the run directory except the top-level manifest.json
itself, recursively, as POSIX paths relative to the run directory, sorted by path.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..canonical import hash_file, load_versioned, pretty_dumps
from ..errors import InputError
from ..safeio import write_atomic

MANIFEST_FORMAT = "marketbayesmeta.manifest/1"
MANIFEST_NAME = "manifest.json"
# The largest manifest.json / run_status.json of a run (a few KiB in practice), and the largest
# plan.json whose content verify parses (JSON takes up to ~25x its size in memory).
MAX_METADATA_BYTES = 4 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# -- paths -----------------------------------------------------------------------------------------

def unsafe_path_reason(name: str) -> str | None:
    """Why ``name`` is not a safe relative POSIX path inside a run directory (None when it is)."""
    if not name:
        return "empty path"
    if "\x00" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "absolute path"
    if re.match(r"^[A-Za-z]:", name):
        return "absolute (drive) path"
    parts = name.split("/")
    if ".." in parts:
        return "contains a '..' component"
    if any(p in ("", ".") for p in parts):
        return "contains an empty or '.' component"
    return None


def iter_run_files(run_dir: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, absolute path) of every regular file under ``run_dir``, sorted.

    Symbolic links and special files are refused (InputError): a run directory holds regular files.
    The top-level manifest.json is skipped.
    """
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(run_dir, followlinks=False):
        base = Path(dirpath)
        for name in list(dirnames) + filenames:
            full = base / name
            rel = full.relative_to(run_dir).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise InputError(f"{run_dir}: '{rel}' is a symbolic link; a run directory holds "
                                 "regular files only")
            if name in filenames:
                if not stat.S_ISREG(mode):
                    raise InputError(f"{run_dir}: '{rel}' is not a regular file")
                if rel != MANIFEST_NAME:
                    found.append((rel, full))
    found.sort(key=lambda item: item[0])
    return iter(found)


# -- building, writing, reading -------------------------------------------------------------------

def build_manifest(run_dir: Path, plan_hash: str) -> dict[str, Any]:
    """The manifest of ``run_dir`` as a dict (nothing is written)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a directory")
    files = []
    for rel, full in iter_run_files(run_dir):
        digest, size = hash_file(full)
        files.append({"path": rel, "sha256": digest, "size": size})
    return {"format": MANIFEST_FORMAT, "plan_hash": plan_hash, "files": files}


def manifest_text(manifest: dict[str, Any]) -> str:
    return pretty_dumps(manifest)


def write_manifest(run_dir: Path, plan_hash: str) -> Path:
    """Write ``run_dir/manifest.json`` (atomically) and return its path."""
    run_dir = Path(run_dir)
    manifest = build_manifest(run_dir, plan_hash)
    return write_atomic(run_dir / MANIFEST_NAME, [manifest_text(manifest)])


def _entries(files: Iterable[Any], source_name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(files):
        where = f"{source_name}: files[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected an object with path, sha256 and size")
        keys = set(entry)
        if keys != {"path", "sha256", "size"}:
            missing = sorted({"path", "sha256", "size"} - keys)
            extra = sorted(keys - {"path", "sha256", "size"})
            raise InputError(f"{where}: expected exactly the keys path, sha256, size "
                             f"(missing {missing}, unknown {extra})")
        path, digest, size = entry["path"], entry["sha256"], entry["size"]
        if not isinstance(path, str):
            raise InputError(f"{where}: path must be a string (got {path!r})")
        reason = unsafe_path_reason(path)
        if reason:
            raise InputError(f"{where}: unsafe path {path!r} ({reason}); accepted: a relative "
                             "POSIX path inside the run directory")
        if path == MANIFEST_NAME:
            raise InputError(f"{where}: the manifest cannot list itself")
        if path in seen:
            raise InputError(f"{where}: path {path!r} is listed twice")
        seen.add(path)
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise InputError(f"{where} ({path}): sha256 must be 64 lowercase hex digits "
                             f"(got {digest!r})")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InputError(f"{where} ({path}): size must be a non-negative integer (got {size!r})")
        out.append({"path": path, "sha256": digest, "size": size})
    return out


def read_manifest(data: bytes, source_name: str) -> dict[str, Any]:
    """Parse and validate manifest bytes; any structural problem is an InputError naming the file."""
    doc = load_versioned(data, source_name, "manifest", MANIFEST_FORMAT, InputError)
    fmt = doc["format"]
    unknown = sorted(set(doc) - {"format", "plan_hash", "files"})
    if unknown:
        raise InputError(f"{source_name}: unknown manifest key(s) {unknown}")
    plan_hash = doc.get("plan_hash")
    if not isinstance(plan_hash, str):
        raise InputError(f"{source_name}: plan_hash must be a string (got {plan_hash!r})")
    files = doc.get("files")
    if not isinstance(files, list):
        raise InputError(f"{source_name}: files must be a list (got {type(files).__name__})")
    return {"format": fmt, "plan_hash": plan_hash, "files": _entries(files, source_name)}
