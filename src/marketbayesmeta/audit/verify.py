"""verify: re-hash a run directory or a review bundle against its manifest.json (SPEC §2, §5).

Archives (.zip, .tar.gz/.tgz/.tar) are untrusted: they are read member by member in memory and never
extracted. A member with an absolute path, a ``..`` component, a link, a device or fifo, or a name
that appears twice is refused with :class:`UnsafeArchiveError` (exit 2) before anything else.

Layout: the run directory's files at the archive root, or (as ``archive`` writes them) under one
top-level directory named after the run directory, e.g. ``example_geo_sales_uplift/manifest.json``.
A leading ``./`` on member names is ignored.

Exit semantics for the CLI: ``VerifyResult.ok`` → 0, a mismatch → 1 (``VerifyResult.exit_code``),
invalid or unsafe input → an :class:`~marketbayesmeta.errors.InputError` is raised (exit 2).
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..canonical import CanonicalJSONError, hash_file, hash_stream, sha256_hex, strict_loads
from ..errors import InputError, Problem
from ..plan import content_hash
from .manifest import (
    MANIFEST_NAME,
    iter_run_files,
    read_manifest,
    unsafe_path_reason,
)

__all__ = ["FileMismatch", "UnsafeArchiveError", "VerifyResult", "archive_kind", "verify_run"]

# Small files kept in memory while scanning an archive (manifest, plan, status), by base name.
_KEEP = frozenset({MANIFEST_NAME, "plan.json", "run_status.json"})
_KEEP_MAX = 64 << 20


class UnsafeArchiveError(InputError):
    """An archive member that would escape or alias the run directory (exit 2); never extracted."""

    exit_code = 2


@dataclass(frozen=True)
class FileMismatch:
    path: str
    expected_sha256: str
    actual_sha256: str
    expected_size: int
    actual_size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "expected_sha256": self.expected_sha256,
                "actual_sha256": self.actual_sha256, "expected_size": self.expected_size,
                "actual_size": self.actual_size}


@dataclass
class VerifyResult:
    source: str  # the path given
    kind: str  # "directory", "zip" or "tar"
    root: str  # top-level directory inside an archive ("" for a directory or a flat archive)
    plan_hash: str  # as recorded in manifest.json
    checked: int  # files listed in manifest.json
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: list[FileMismatch] = field(default_factory=list)
    # cross-file problems found in files whose bytes match (plan.json or run_status.json naming
    # another plan_hash than the manifest, plan.json content not matching its own plan_hash)
    inconsistencies: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.added or self.changed or self.inconsistencies)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def mismatched_paths(self) -> list[str]:
        return sorted(set(self.missing) | set(self.added) | {c.path for c in self.changed})

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "root": self.root,
                "plan_hash": self.plan_hash, "checked": self.checked, "ok": self.ok,
                "missing": list(self.missing), "added": list(self.added),
                "changed": [c.to_json() for c in self.changed],
                "inconsistencies": list(self.inconsistencies)}

    def render(self) -> str:
        what = {"directory": "run directory", "zip": "zip archive", "tar": "tar archive"}[self.kind]
        head = f"verify {self.source} ({what}"
        if self.root:
            head += f", run directory '{self.root}/'"
        head += f"; plan_hash {self.plan_hash or '(none)'})"
        if self.ok:
            return (f"{head}\nOK: all {self.checked} file(s) listed in manifest.json are present "
                    "and match their sha256 and size; no other files.")
        counts = []
        for n, word in ((len(self.changed), "changed"), (len(self.missing), "missing"),
                        (len(self.added), "added"), (len(self.inconsistencies), "inconsistent")):
            if n:
                counts.append(f"{n} {word}")
        lines = [head, f"MISMATCH: {', '.join(counts)} (manifest.json lists {self.checked} file(s))"]
        for c in self.changed:
            size = (f"size {c.expected_size} -> {c.actual_size}" if c.expected_size != c.actual_size
                    else f"size {c.actual_size} unchanged")
            lines.append(f"  changed  {c.path}: sha256 expected {c.expected_sha256}, "
                         f"found {c.actual_sha256}; {size}")
        for p in self.missing:
            lines.append(f"  missing  {p}: listed in manifest.json, not found")
        for p in self.added:
            lines.append(f"  added    {p}: not listed in manifest.json")
        for msg in self.inconsistencies:
            lines.append(f"  inconsistent  {msg}")
        return "\n".join(lines)


# -- scanning --------------------------------------------------------------------------------------

@dataclass
class _Scan:
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (sha256, size)
    dirs: set[str] = field(default_factory=set)
    kept: dict[str, bytes] = field(default_factory=dict)  # small known files, by full name
    seen: set[str] = field(default_factory=set)


def archive_kind(path: Path) -> str | None:
    """"zip", "tar" or None, by extension, else by the first bytes of the file."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return "tar"
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError:
        return None
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        return "zip"
    if magic.startswith(b"\x1f\x8b"):
        return "tar"
    return None


def _member_name(archive: Path, raw: str) -> str | None:
    """Normalised member name (None for the archive's own '.' entry) or UnsafeArchiveError."""
    if raw.startswith("/"):
        raise UnsafeArchiveError(f"{archive}: member {raw!r} has an absolute path; refused, nothing "
                                 "was extracted")
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if name in ("", "."):
        return None
    reason = unsafe_path_reason(name)
    if reason:
        raise UnsafeArchiveError(f"{archive}: member {raw!r} is unsafe ({reason}); refused, nothing "
                                 "was extracted")
    return name


def _register(scan: _Scan, archive: Path, raw: str, name: str) -> None:
    if name in scan.seen:
        raise UnsafeArchiveError(f"{archive}: member {raw!r} appears more than once; refused (a "
                                 "later copy would shadow the first)")
    scan.seen.add(name)


def _keep_wanted(name: str, size: int) -> bool:
    parts = name.split("/")
    return parts[-1] in _KEEP and len(parts) <= 2 and size <= _KEEP_MAX


def _scan_zip(path: Path) -> _Scan:
    scan = _Scan()
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                raw = info.filename
                name = _member_name(path, raw)
                mode = info.external_attr >> 16
                fmt = stat.S_IFMT(mode)
                if fmt == stat.S_IFLNK:
                    raise UnsafeArchiveError(f"{path}: member {raw!r} is a symbolic link; refused, "
                                             "nothing was extracted")
                if fmt not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise UnsafeArchiveError(f"{path}: member {raw!r} is a device, fifo or socket; "
                                             "refused, nothing was extracted")
                if name is None:
                    continue
                _register(scan, path, raw, name)
                if info.is_dir() or fmt == stat.S_IFDIR:
                    scan.dirs.add(name)
                    continue
                if info.flag_bits & 0x1:
                    raise InputError(f"{path}: member {raw!r} is encrypted; cannot verify it")
                with zf.open(info) as fh:
                    _hash_member(scan, name, info.file_size, fh)
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, RuntimeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable zip archive ({exc})") from None
    return scan


def _hash_member(scan: _Scan, name: str, size: int, fh: Any) -> None:
    """Hash one archive member from its stream; keep the bytes of the few files verify reads."""
    if _keep_wanted(name, size):
        data = fh.read()
        scan.kept[name] = data
        scan.files[name] = (sha256_hex(data), len(data))
    else:
        scan.files[name] = hash_stream(fh)


def _scan_tar(path: Path) -> _Scan:
    scan = _Scan()
    try:
        with tarfile.open(path, mode="r:*") as tf:
            for member in tf:
                raw = member.name
                name = _member_name(path, raw)
                if member.issym() or member.islnk():
                    raise UnsafeArchiveError(f"{path}: member {raw!r} is a "
                                             f"{'symbolic' if member.issym() else 'hard'} link "
                                             f"(to {member.linkname!r}); refused, nothing was "
                                             "extracted")
                if not (member.isreg() or member.isdir()):
                    raise UnsafeArchiveError(f"{path}: member {raw!r} is a device, fifo or other "
                                             "special file; refused, nothing was extracted")
                if name is None:
                    continue
                _register(scan, path, raw, name)
                if member.isdir():
                    scan.dirs.add(name)
                    continue
                fh = tf.extractfile(member)
                if fh is None:  # pragma: no cover - regular members always have data
                    raise InputError(f"{path}: member {raw!r} has no data")
                with fh:
                    _hash_member(scan, name, member.size, fh)
    except InputError:
        raise
    except (tarfile.TarError, zlib.error, EOFError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable tar archive ({exc})") from None
    return scan


def _archive_root(path: Path, scan: _Scan) -> str:
    if MANIFEST_NAME in scan.files:
        return ""
    tops = sorted(n.split("/")[0] for n in scan.files
                  if n.count("/") == 1 and n.endswith("/" + MANIFEST_NAME))
    if not tops:
        raise InputError(f"{path}: no manifest.json in the archive (expected "
                         f"'<run directory>/{MANIFEST_NAME}'); not a marketbayesmeta review bundle")
    if len(tops) > 1:
        raise InputError(f"{path}: the archive holds several run directories ({', '.join(tops)}); "
                         "verify expects one")
    return tops[0]


# -- comparing -------------------------------------------------------------------------------------

def _consistency(manifest_hash: str, kept: dict[str, bytes], changed: set[str]) -> list[str]:
    """Cross-check plan.json and run_status.json (when present and unchanged) against the manifest."""
    out: list[str] = []
    plan_bytes = kept.get("plan.json")
    if plan_bytes is not None and "plan.json" not in changed:
        try:
            plan = strict_loads(plan_bytes)
        except (ValueError, CanonicalJSONError, UnicodeDecodeError):
            plan = None
            out.append("plan.json: not valid JSON")
        if isinstance(plan, dict):
            recorded = plan.get("plan_hash")
            try:
                content = content_hash(plan)
            except CanonicalJSONError:
                content = None
            if content is not None and recorded != content:
                out.append(f"plan.json: its content hashes to {content}, but it records plan_hash "
                           f"{recorded!r} (edited after compile)")
            if recorded != manifest_hash:
                out.append(f"plan.json records plan_hash {recorded!r}, manifest.json records "
                           f"{manifest_hash!r}")
        elif plan is not None:
            out.append("plan.json: not a JSON object")
    status_bytes = kept.get("run_status.json")
    if status_bytes is not None and "run_status.json" not in changed:
        try:
            status = strict_loads(status_bytes)
        except (ValueError, CanonicalJSONError, UnicodeDecodeError):
            status = None
            out.append("run_status.json: not valid JSON")
        if isinstance(status, dict) and "plan_hash" in status and status["plan_hash"] != manifest_hash:
            out.append(f"run_status.json records plan_hash {status['plan_hash']!r}, manifest.json "
                       f"records {manifest_hash!r}")
    return out


def _compare(source: str, kind: str, root: str, manifest: dict[str, Any],
             actual: dict[str, tuple[str, int]], outside: list[str],
             kept: dict[str, bytes]) -> VerifyResult:
    expected = {e["path"]: (e["sha256"], e["size"]) for e in manifest["files"]}
    result = VerifyResult(source=source, kind=kind, root=root, plan_hash=manifest["plan_hash"],
                          checked=len(expected))
    result.missing = sorted(set(expected) - set(actual))
    result.added = sorted((set(actual) - set(expected)) | set(outside))
    for p in sorted(set(expected) & set(actual)):
        (esha, esize), (asha, asize) = expected[p], actual[p]
        if esha != asha or esize != asize:
            result.changed.append(FileMismatch(p, esha, asha, esize, asize))
    present = {p: b for p, b in kept.items() if p in expected}
    bad = set(result.missing) | {c.path for c in result.changed}
    result.inconsistencies = _consistency(manifest["plan_hash"], present, bad)
    return result


def _verify_directory(path: Path) -> VerifyResult:
    mpath = path / MANIFEST_NAME
    if not mpath.is_file():
        raise InputError(f"{path}: no manifest.json; not a completed run directory (runs write "
                         "manifest.json last)")
    manifest = read_manifest(mpath.read_bytes(), str(mpath))
    actual: dict[str, tuple[str, int]] = {}
    kept: dict[str, bytes] = {}
    for rel, full in iter_run_files(path):
        if rel in _KEEP and full.stat().st_size <= _KEEP_MAX:
            data = full.read_bytes()
            kept[rel] = data
            actual[rel] = (sha256_hex(data), len(data))
        else:
            actual[rel] = hash_file(full)
    return _compare(str(path), "directory", "", manifest, actual, [], kept)


def _verify_archive(path: Path, kind: str) -> VerifyResult:
    scan = _scan_zip(path) if kind == "zip" else _scan_tar(path)
    root = _archive_root(path, scan)
    prefix = f"{root}/" if root else ""
    mname = prefix + MANIFEST_NAME
    if mname not in scan.kept:
        raise InputError(f"{path}: {mname} is too large to be a manifest")
    manifest = read_manifest(scan.kept[mname], f"{path}:{mname}")
    actual: dict[str, tuple[str, int]] = {}
    outside: list[str] = []
    for name, value in scan.files.items():
        if name == mname:
            continue
        if prefix and not name.startswith(prefix):
            outside.append(name)
        else:
            actual[name[len(prefix):]] = value
    kept = {n[len(prefix):]: b for n, b in scan.kept.items() if n.startswith(prefix)}
    return _compare(str(path), kind, root, manifest, actual, outside, kept)


def verify_run(path: str | Path) -> VerifyResult:
    """Verify a run directory or a review bundle (.zip, .tar.gz, .tgz) against its manifest.json.

    Returns a :class:`VerifyResult` (``ok`` → exit 0, otherwise exit 1); raises
    :class:`UnsafeArchiveError` or :class:`InputError` (exit 2) for unsafe or unreadable input.
    """
    path = Path(path)
    if path.name == MANIFEST_NAME and path.is_file():
        path = path.parent  # 'verify RUN_DIR/manifest.json' means the run directory
    if path.is_dir():
        return _verify_directory(path)
    if not path.exists():
        raise InputError(f"{path}: no such run directory or archive")
    if not path.is_file():
        raise InputError(f"{path}: not a run directory or an archive")
    kind = archive_kind(path)
    if kind is None:
        raise InputError(f"{path}: not a run directory or an archive",
                         [Problem(file=str(path), message="unrecognised file type",
                                  accepted="a run directory, .zip, .tar.gz or .tgz")])
    return _verify_archive(path, kind)
