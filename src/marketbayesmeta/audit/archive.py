"""archive: one deterministic review bundle (zip or tar.gz) of a verified run directory (SPEC §2).

The bundle holds the run directory's files under one top-level directory named after it
(``<run_dir name>/manifest.json``, ...). It is deterministic: members sorted by path (each directory
before its contents), fixed timestamps (1980-01-01 00:00:00 UTC), permissions 0o644 for files and
0o755 for directories, uid/gid 0 with empty owner names, and for tar.gz a gzip header with mtime 0
and no file name; archiving the same run directory twice gives identical bytes.

The run directory is verified against manifest.json first, and every file is re-hashed while it is
written, so a bundle always matches the manifest it carries; a mismatch refuses with
:class:`ArchiveRefused` (exit 1).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO

from ..canonical import CHUNK
from ..errors import InputError, MarketBayesMetaError, Problem
from .manifest import MANIFEST_NAME, read_manifest
from .verify import verify_run

__all__ = ["ArchiveRefused", "archive_format", "archive_run"]

FIXED_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip can hold
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
DIR_MODE = 0o755


class ArchiveRefused(MarketBayesMetaError):
    """The run directory does not match its manifest, so no bundle was written (exit 1)."""

    exit_code = 1


def archive_format(output: Path) -> str:
    """"zip" or "tar.gz" from the output file name; anything else is an InputError."""
    name = output.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    raise InputError(f"{output}: unsupported archive type",
                     [Problem(file=str(output), message="the output name decides the archive type",
                              value=output.name, accepted="a name ending in .zip, .tar.gz or .tgz")])


class _HashingReader:
    """Wraps a binary file: hashes and counts what is read through it."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _entries(root: str, files: list[str]) -> list[tuple[str, str | None]]:
    """(archive name, relative path or None for a directory), directories before their contents."""
    dirs = {root}
    for rel in files:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add(f"{root}/{'/'.join(parts[:i])}")
    items: list[tuple[str, str | None]] = [(d, None) for d in dirs]
    items += [(f"{root}/{rel}", rel) for rel in files]
    items.sort(key=lambda item: tuple(item[0].split("/")))
    return items


def _refuse_changed(run_dir: Path, rel: str) -> ArchiveRefused:
    return ArchiveRefused(f"{run_dir}: refused to archive: '{rel}' changed while the bundle was "
                          "being written; no archive was written",
                          [Problem(file=str(run_dir / rel), message="does not match manifest.json")])


def _write_tar(fh: BinaryIO, run_dir: Path, items: list[tuple[str, str | None]],
               expected: dict[str, tuple[str, int]]) -> None:
    with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, rel in items:
            info = tarfile.TarInfo(name)
            info.mtime = FIXED_EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if rel is None:
                info.type = tarfile.DIRTYPE
                info.mode = DIR_MODE
                tf.addfile(info)
                continue
            sha, size = expected[rel]
            info.type = tarfile.REGTYPE
            info.mode = FILE_MODE
            info.size = size
            with open(run_dir / rel, "rb") as src:
                reader = _HashingReader(src)
                try:
                    tf.addfile(info, reader)  # type: ignore[arg-type]
                except OSError:  # shorter than the manifest says
                    raise _refuse_changed(run_dir, rel) from None
                reader.drain()
            if reader.size != size or reader.hexdigest() != sha:
                raise _refuse_changed(run_dir, rel)


def _write_zip(fh: BinaryIO, run_dir: Path, items: list[tuple[str, str | None]],
               expected: dict[str, tuple[str, int]]) -> None:
    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, rel in items:
            if rel is None:
                info = zipfile.ZipInfo(name + "/", date_time=ZIP_DATE_TIME)
                info.create_system = 3
                info.external_attr = ((0o040000 | DIR_MODE) << 16) | 0x10
                info.file_size = info.compress_size = 0
                info.CRC = 0
                zf.mkdir(info)
                continue
            sha, size = expected[rel]
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = 3
            info.external_attr = (0o100000 | FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = size
            with open(run_dir / rel, "rb") as src, zf.open(info, mode="w") as dst:
                reader = _HashingReader(src)
                while chunk := reader.read(CHUNK):
                    dst.write(chunk)
            if reader.size != size or reader.hexdigest() != sha:
                raise _refuse_changed(run_dir, rel)


def archive_run(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write a review bundle of ``run_dir`` and return its path.

    ``output`` ends in ``.zip``, ``.tar.gz`` or ``.tgz`` (default: ``<run_dir>.tar.gz`` next to the
    run directory) and may not lie inside the run directory. Raises :class:`InputError` (exit 2) for
    a bad run directory or output name and :class:`ArchiveRefused` (exit 1) when the run directory
    does not match its manifest.json.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a run directory")
    resolved = run_dir.resolve()
    root = resolved.name
    out = Path(output) if output is not None else resolved.parent / f"{root}.tar.gz"
    fmt = archive_format(out)
    out_resolved = out.resolve()
    if out_resolved == resolved or resolved in out_resolved.parents:
        raise InputError(f"{out}: the archive cannot be written inside the run directory it "
                         f"bundles ({run_dir}); choose a path outside it")
    if out_resolved.is_dir():
        raise InputError(f"{out}: is a directory; give the archive file name")

    result = verify_run(run_dir)  # InputError if there is no (valid) manifest.json
    if not result.ok:
        problems = [Problem(file=str(run_dir / c.path), message="changed since manifest.json was "
                            f"written (sha256 {c.actual_sha256}, expected {c.expected_sha256})")
                    for c in result.changed]
        problems += [Problem(file=str(run_dir / p), message="listed in manifest.json but missing")
                     for p in result.missing]
        problems += [Problem(file=str(run_dir / p), message="not listed in manifest.json")
                     for p in result.added]
        problems += [Problem(file=str(run_dir), message=m) for m in result.inconsistencies]
        names = ", ".join(result.mismatched_paths()) or "plan_hash records"
        raise ArchiveRefused(f"{run_dir}: refused to archive: the run directory does not match its "
                             f"manifest.json ({names}); no archive was written", problems)

    manifest_bytes = (run_dir / MANIFEST_NAME).read_bytes()
    manifest = read_manifest(manifest_bytes, str(run_dir / MANIFEST_NAME))
    expected = {e["path"]: (e["sha256"], e["size"]) for e in manifest["files"]}
    expected[MANIFEST_NAME] = (hashlib.sha256(manifest_bytes).hexdigest(), len(manifest_bytes))
    items = _entries(root, sorted(expected))

    out_resolved.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_resolved.with_name(f".{out_resolved.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            if fmt == "zip":
                _write_zip(fh, resolved, items, expected)
            else:
                _write_tar(fh, resolved, items, expected)
        os.replace(tmp, out_resolved)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
