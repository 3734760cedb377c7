"""verify: re-hash a run directory or a review bundle against its manifest.json (SPEC §2, §5).

Archives (.zip, .tar.gz/.tgz/.tar) are untrusted: they are read member by member in memory and never
extracted. A member with an absolute path, a ``..`` component, a link, a device or fifo, or a name
that appears twice is refused with :class:`UnsafeArchiveError` (exit 2) before anything else.

Layout: the run directory's files at the archive root, or (as ``archive`` writes them) under one
top-level directory named after the run directory, e.g. ``example_geo_sales_uplift/manifest.json``.
A leading ``./`` on member names is ignored.

Bounded work on any input (issue 16): at most ``MAX_MEMBERS`` members and ``MAX_TOTAL_BYTES``
of content; an archive whose metadata (manifest.json, plan.json, run_status.json) sits in several
run directories, or whose manifest.json or run_status.json is larger than ``MAX_METADATA_BYTES``,
is refused before any member is read (for a zip from its central directory, for a tar from each
header before that member's data). Only those three files of the one run directory are held in
memory, one JSON document parsed at a time; a plan.json larger than ``MAX_METADATA_BYTES`` is
hashed like any file and its own plan_hash is not re-checked (said in a note). Memory stays under
~300 MiB for any archive.

Exit semantics for the CLI: ``VerifyResult.ok`` → 0, a mismatch → 1 (``VerifyResult.exit_code``),
invalid or unsafe input → an :class:`~marketbayesmeta.errors.InputError` is raised (exit 2).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..canonical import CHUNK, CanonicalJSONError, hash_file, sha256_hex, strict_loads
from ..display import visible
from ..errors import InputError, Problem
from ..plan import content_hash
from .manifest import (
    MANIFEST_NAME,
    MAX_METADATA_BYTES,
    iter_run_files,
    read_manifest,
    unsafe_path_reason,
)

__all__ = ["FileMismatch", "UnsafeArchiveError", "VerifyResult", "archive_kind", "verify_run"]

# Small files kept in memory while scanning an archive (manifest, plan, status), by base name.
_KEEP = frozenset({MANIFEST_NAME, "plan.json", "run_status.json"})
_MUST_FIT = frozenset({MANIFEST_NAME, "run_status.json"})  # larger ones: not a run's
MAX_MEMBERS = 10_000  # a run directory holds a few dozen files (a few per pool)
MAX_TOTAL_BYTES = 16 << 30  # content hashed per archive (a large posterior.nc is a few GiB)
MAX_NAME_CHARS = 4096
MAX_HEADER_READ = 64 << 20  # one read of a tar stream (a pax or long-name header is read whole)
MAX_CENTRAL_DIRECTORY = 64 << 20


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
    notes: list[str] = field(default_factory=list)  # checks not made (e.g. a very large plan.json)

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
                "inconsistencies": list(self.inconsistencies), "notes": list(self.notes)}

    def render(self) -> str:
        """The report for a terminal; every name from the input is shown with :func:`visible`
        (a member name cannot forge a line or send escape sequences)."""
        what = {"directory": "run directory", "zip": "zip archive", "tar": "tar archive"}[self.kind]
        head = f"verify {visible(self.source)} ({what}"
        if self.root:
            head += f", run directory '{visible(self.root)}/'"
        head += f"; plan_hash {visible(self.plan_hash) or '(none)'})"
        notes = [f"  note  {visible(n)}" for n in self.notes]
        if self.ok:
            return "\n".join([f"{head}\nOK: all {self.checked} file(s) listed in manifest.json are "
                              "present and match their sha256 and size; no other files.", *notes])
        counts = []
        for n, word in ((len(self.changed), "changed"), (len(self.missing), "missing"),
                        (len(self.added), "added"), (len(self.inconsistencies), "inconsistent")):
            if n:
                counts.append(f"{n} {word}")
        lines = [head, f"MISMATCH: {', '.join(counts)} (manifest.json lists {self.checked} file(s))"]
        for c in self.changed:
            size = (f"size {c.expected_size} -> {c.actual_size}" if c.expected_size != c.actual_size
                    else f"size {c.actual_size} unchanged")
            lines.append(f"  changed  {visible(c.path)}: sha256 expected {c.expected_sha256}, "
                         f"found {c.actual_sha256}; {size}")
        for p in self.missing:
            lines.append(f"  missing  {visible(p)}: listed in manifest.json, not found")
        for p in self.added:
            lines.append(f"  added    {visible(p)}: not listed in manifest.json")
        for msg in self.inconsistencies:
            lines.append(f"  inconsistent  {visible(msg)}")
        return "\n".join(lines + notes)


# -- scanning --------------------------------------------------------------------------------------

@dataclass
class _Scan:
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (sha256, size)
    dirs: set[str] = field(default_factory=set)
    kept: dict[str, bytes] = field(default_factory=dict)  # the run's metadata, by full name
    seen: set[str] = field(default_factory=set)
    root: str | None = None  # "" (flat) or the run directory, once a metadata member shows it
    total: int = 0


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
    if len(raw) > MAX_NAME_CHARS:
        raise UnsafeArchiveError(f"{archive}: a member name is {len(raw)} characters long (at most "
                                 f"{MAX_NAME_CHARS}); not a review bundle, nothing was extracted")
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
    if len(scan.seen) >= MAX_MEMBERS:
        raise InputError(f"{archive}: more than {MAX_MEMBERS} members; not a review bundle "
                         "(a run directory holds a few dozen files)")
    scan.seen.add(name)


def _metadata_root(name: str) -> str | None:
    """The run directory a metadata member belongs to ("" at the root), None for other members."""
    parts = name.split("/")
    if parts[-1] not in _KEEP or len(parts) > 2:
        return None
    return parts[0] if len(parts) == 2 else ""


def _admit(scan: _Scan, archive: Path, raw: str, name: str, size: int) -> bool:
    """Checks made from a member's header, before its data is read; True to keep its bytes."""
    scan.total += size
    if scan.total > MAX_TOTAL_BYTES:
        raise InputError(f"{archive}: the members add up to more than {MAX_TOTAL_BYTES >> 30} GiB; "
                         "not a review bundle, refused before reading it")
    root = _metadata_root(name)
    if root is None:
        return False
    if scan.root is None:
        scan.root = root
    elif root != scan.root:
        names = ", ".join(repr(r or ".") for r in sorted({scan.root, root}))
        raise InputError(f"{archive}: the archive holds several run directories ({names}); verify "
                         "expects one, as archive writes it")
    base = name.rsplit("/", 1)[-1]
    if size > MAX_METADATA_BYTES:
        if base in _MUST_FIT:
            raise InputError(f"{archive}: member {raw!r} is {size} bytes, larger than any run's "
                             f"{base} ({MAX_METADATA_BYTES >> 20} MiB at most); not a review bundle, "
                             "refused before reading it")
        return False  # a very large plan.json: hashed, not held in memory
    return True


def _hash_member(scan: _Scan, name: str, keep: bool, fh: Any) -> None:
    """Hash one member from its stream; keep the bytes of the run's metadata (bounded reads)."""
    if keep:
        data = fh.read(MAX_METADATA_BYTES + 1)
        if len(data) > MAX_METADATA_BYTES:  # longer than its header said
            raise InputError(f"{name}: larger than its archive header says; not a review bundle")
        scan.kept[name] = data
        scan.files[name] = (sha256_hex(data), len(data))
        return
    h = hashlib.sha256()
    size = 0
    while chunk := fh.read(CHUNK):  # zipfile and tarfile read no more than the header's size,
        size += len(chunk)  # which _admit has counted in scan.total already
        h.update(chunk)
    scan.files[name] = (h.hexdigest(), size)


def _zip_central_directory(path: Path) -> None:
    """Refuse a zip whose central directory lists too many entries or is too large, from its end
    record alone (zipfile would otherwise read the whole directory into memory). The end record is
    found exactly as zipfile finds it (its own ``_EndRecData``: the last 22 bytes, else the last
    signature within a comment's reach, and a zip64 record wherever its locator is present), so the
    sizes checked are the ones zipfile goes on to read."""
    with open(path, "rb") as fh:
        end = zipfile._EndRecData(fh)  # noqa: SLF001
    if end is None:
        return  # zipfile reports what is wrong
    entries, cd_size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # noqa: SLF001
    if entries > MAX_MEMBERS or cd_size > MAX_CENTRAL_DIRECTORY:
        raise InputError(f"{path}: the zip lists {entries} members in a {cd_size}-byte directory; "
                         f"not a review bundle (at most {MAX_MEMBERS} members)")


def _scan_zip(path: Path) -> _Scan:
    scan = _Scan()
    try:
        _zip_central_directory(path)
        with zipfile.ZipFile(path) as zf:
            plan: list[tuple[zipfile.ZipInfo, str, bool]] = []
            for info in zf.infolist():  # every check from the central directory, nothing read yet
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
                plan.append((info, name, _admit(scan, path, raw, name, info.file_size)))
            for info, name, keep in plan:
                with zf.open(info) as fh:
                    _hash_member(scan, name, keep, fh)
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, RuntimeError, ValueError, struct.error) as exc:
        raise InputError(f"{path}: not a readable zip archive ({exc})") from None
    return scan


class _BoundedReads:
    """A stream whose single reads may not exceed ``MAX_HEADER_READ`` (tarfile reads a pax or
    long-name header whole: a crafted one would otherwise fill memory)."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > MAX_HEADER_READ:
            raise InputError(f"a tar header asks for a {n}-byte read; not a review bundle")
        return self._fh.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


def _decompressed(raw: BinaryIO) -> BinaryIO:
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if magic.startswith(b"\xfd7zXZ"):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    return raw


def _scan_tar(path: Path) -> _Scan:
    scan = _Scan()
    try:
        with open(path, "rb") as raw, _decompressed(raw) as stream, \
                tarfile.open(fileobj=_BoundedReads(stream), mode="r:") as tf:  # type: ignore[arg-type]
            for member in tf:
                raw_name = member.name
                name = _member_name(path, raw_name)
                if member.issym() or member.islnk():
                    raise UnsafeArchiveError(f"{path}: member {raw_name!r} is a "
                                             f"{'symbolic' if member.issym() else 'hard'} link "
                                             f"(to {member.linkname!r}); refused, nothing was "
                                             "extracted")
                if not (member.isreg() or member.isdir()):
                    raise UnsafeArchiveError(f"{path}: member {raw_name!r} is a device, fifo or "
                                             "other special file; refused, nothing was extracted")
                if name is None:
                    continue
                _register(scan, path, raw_name, name)
                if member.isdir():
                    scan.dirs.add(name)
                    continue
                keep = _admit(scan, path, raw_name, name, member.size)
                fh = tf.extractfile(member)
                if fh is None:  # pragma: no cover - regular members always have data
                    raise InputError(f"{path}: member {raw_name!r} has no data")
                with fh:
                    _hash_member(scan, name, keep, fh)
    except InputError as exc:
        if str(exc).startswith("a tar header"):
            raise InputError(f"{path}: {exc}") from None
        raise
    except (tarfile.TarError, zlib.error, EOFError, OSError, ValueError, lzma.LZMAError) as exc:
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
        raise InputError(f"{path}: the archive holds several run directories ({', '.join(map(repr, tops))}); "
                         "verify expects one, as archive writes it")
    return tops[0]


# -- comparing -------------------------------------------------------------------------------------

def _plan_check(manifest_hash: str, plan_bytes: bytes) -> list[str]:
    """plan.json: valid, its content matching its plan_hash, which matches the manifest's. Parsed
    here and dropped on return (one JSON document in memory at a time)."""
    try:
        plan = strict_loads(plan_bytes)
    except (ValueError, CanonicalJSONError, UnicodeDecodeError, RecursionError):
        return ["plan.json: not valid JSON"]
    if not isinstance(plan, dict):
        return ["plan.json: not a JSON object"]
    out = []
    recorded = plan.get("plan_hash")
    try:
        content = content_hash(plan)
    except (CanonicalJSONError, RecursionError, TypeError, ValueError):
        content = None
    if content is None:  # compile writes canonical JSON: a value it refuses was put there later
        out.append("plan.json: its content cannot be hashed (a value canonical JSON does not allow); "
                   "edited after compile")
    elif recorded != content:
        out.append(f"plan.json: its content hashes to {content}, but it records plan_hash "
                   f"{recorded!r} (edited after compile)")
    if recorded != manifest_hash:
        out.append(f"plan.json records plan_hash {recorded!r}, manifest.json records "
                   f"{manifest_hash!r}")
    return out


def _status_check(manifest_hash: str, status_bytes: bytes) -> list[str]:
    try:
        status = strict_loads(status_bytes)
    except (ValueError, CanonicalJSONError, UnicodeDecodeError, RecursionError):
        return ["run_status.json: not valid JSON"]
    if isinstance(status, dict) and "plan_hash" in status and status["plan_hash"] != manifest_hash:
        return [f"run_status.json records plan_hash {status['plan_hash']!r}, manifest.json "
                f"records {manifest_hash!r}"]
    return []


def _consistency(manifest_hash: str, kept: dict[str, bytes], changed: set[str]) -> list[str]:
    """Cross-check plan.json and run_status.json (when present and unchanged) against the manifest."""
    out: list[str] = []
    if "plan.json" in kept and "plan.json" not in changed:
        out += _plan_check(manifest_hash, kept.pop("plan.json"))
    if "run_status.json" in kept and "run_status.json" not in changed:
        out += _status_check(manifest_hash, kept.pop("run_status.json"))
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
    kept.clear()
    bad = set(result.missing) | {c.path for c in result.changed}
    if "plan.json" in actual and "plan.json" not in present and "plan.json" not in bad:
        result.notes.append(f"plan.json is larger than {MAX_METADATA_BYTES >> 20} MiB: its bytes "
                            "match manifest.json, but its own plan_hash was not re-computed")
    result.inconsistencies = _consistency(manifest["plan_hash"], present, bad)
    return result


def _read_bounded(path: Path, what: str) -> bytes:
    """The bytes of a run's metadata file, refused above MAX_METADATA_BYTES."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise InputError(f"{path}: larger than any run's {what} ({MAX_METADATA_BYTES >> 20} MiB at "
                         "most); not a run directory")
    return data


def _verify_directory(path: Path) -> VerifyResult:
    mpath = path / MANIFEST_NAME
    if not mpath.is_file():
        raise InputError(f"{path}: no manifest.json; not a completed run directory (runs write "
                         "manifest.json last)")
    manifest = read_manifest(_read_bounded(mpath, MANIFEST_NAME), str(mpath))
    actual: dict[str, tuple[str, int]] = {}
    kept: dict[str, bytes] = {}
    for rel, full in iter_run_files(path):
        size = full.stat().st_size
        if rel in _KEEP and (size <= MAX_METADATA_BYTES or rel in _MUST_FIT):
            data = _read_bounded(full, rel)
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
    if mname not in scan.kept:  # pragma: no cover - refused by _admit before reading
        raise InputError(f"{path}: {mname} is too large to be a manifest")
    manifest = read_manifest(scan.kept.pop(mname), f"{path}:{mname}")
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
    scan.kept.clear()
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
