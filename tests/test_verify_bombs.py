"""verify on hostile archives: bounded memory (< 300 MiB, measured with getrusage in a fresh
process) and a refusal (exit 2) before reading what a review bundle cannot hold (issue 16).

The bombs are small files (at most a few MiB) that expand to gigabytes: many large metadata
members in several run directories, a huge manifest.json, hundreds of thousands of members, a
pax or long-name header of 600 MiB, a plan.json that is a 4 MiB JSON bomb. Archives are written
by hand from one compressed block, so building them takes well under a second each.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from marketbayesmeta.audit.manifest import MAX_METADATA_BYTES

LIMIT_MIB = 300
MIB = 1 << 20
# verify runs in a process forked from a fresh interpreter: on Linux ru_maxrss survives exec, so
# a process started by a large pytest would report the parent's size, not its own.
PROBE = r"""
import json, os, resource, sys
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    from marketbayesmeta.audit.verify import verify_run
    from marketbayesmeta.errors import InputError
    try:
        result = verify_run(sys.argv[1])
        outcome = "ok" if result.ok else "mismatch"
        detail = result.render()[:300]
    except InputError as exc:
        outcome, detail = "refused", str(exc)[:300]
    mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    os.write(w, json.dumps([outcome, mib, detail]).encode())
    os._exit(0)
os.close(w)
data = b""
while chunk := os.read(r, 65536):
    data += chunk
os.waitpid(pid, 0)
print(data.decode())
"""


def _probe(path: Path) -> tuple[str, int, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr
    outcome, mib, detail = json.loads(proc.stdout)
    return outcome, int(mib), detail


# -- a minimal zip writer: every member shares one deflated payload ---------------------------------

def _zip(path: Path, names: list[str], payload: bytes, repeat: int = 1,
         extra: dict[str, bytes] | None = None, level: int = 9) -> Path:
    """A zip whose members ``names`` each hold ``payload`` repeated ``repeat`` times (deflated
    once), plus ``extra`` members with their own content."""
    members: list[tuple[str, bytes, int, int]] = []  # name, compressed, crc, size
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    chunks = [comp.compress(payload) for _ in range(repeat)]
    shared = b"".join(chunks) + comp.flush()
    crc = 0
    for _ in range(repeat):
        crc = zlib.crc32(payload, crc)
    for name in names:
        members.append((name, shared, crc, len(payload) * repeat))
    for name, data in (extra or {}).items():
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        members.append((name, c.compress(data) + c.flush(), zlib.crc32(data), len(data)))
    out = io.BytesIO()
    central = []
    for name, data, crc_, size in members:
        offset = out.tell()
        raw = name.encode()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc_, len(data), size,
                              len(raw), 0) + raw)
        out.write(data)
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x0314, 20, 0, 8, 0, 0,
                                   crc_, len(data), size, len(raw), 0, 0, 0, 0,
                                   (0o100644 << 16), offset) + raw)
    start = out.tell()
    for entry in central:
        out.write(entry)
    n = len(central)
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                          out.tell() - start, start, 0))
    path.write_bytes(out.getvalue())
    return path


def _manifest(plan_hash: str = "a" * 64, files: list[dict] | None = None) -> bytes:
    return json.dumps({"format": "marketbayesmeta.manifest/1", "plan_hash": plan_hash,
                       "files": files or []}).encode()


def _tar_header(name: str, size: int, kind: bytes = b"0") -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _tgz(path: Path, blocks: list[tuple[bytes, bytes, int]]) -> Path:
    """A tar.gz of (header, payload chunk, repeat) blocks, each payload padded to 512 bytes."""
    with gzip.open(path, "wb", compresslevel=1) as gz:
        for header, chunk, repeat in blocks:
            gz.write(header)
            for _ in range(repeat):
                gz.write(chunk)
            size = len(chunk) * repeat
            gz.write(b"\0" * (-size % 512))
        gz.write(b"\0" * 1024)
    return path


# -- the bombs --------------------------------------------------------------------------------------

def bomb_thirty_plans_zip(tmp: Path) -> Path:
    """The issue's case: thirty 64 MiB */plan.json members in a 2 MB zip."""
    return _zip(tmp / "thirty.zip", [f"run{i}/plan.json" for i in range(30)], b" " * MIB, 64,
                extra={"run0/manifest.json": _manifest()})


def bomb_thirty_plans_tgz(tmp: Path) -> Path:
    blocks = [(_tar_header(f"run{i}/plan.json", 8 * MIB), b" " * MIB, 8) for i in range(30)]
    return _tgz(tmp / "thirty.tar.gz", blocks)


def bomb_huge_manifest_zip(tmp: Path) -> Path:
    return _zip(tmp / "manifest.zip", ["run/manifest.json"], b" " * MIB, 64)


def bomb_huge_status_tgz(tmp: Path) -> Path:
    m = _manifest()
    return _tgz(tmp / "status.tar.gz", [(_tar_header("run/manifest.json", len(m)), m, 1),
                                        (_tar_header("run/run_status.json", 64 * MIB),
                                         b" " * MIB, 64)])


def bomb_many_members_zip(tmp: Path, n: int = 200_000) -> Path:
    return _zip(tmp / "many.zip", [f"run/{i:x}" for i in range(n)], b"", 1,
                extra={"run/manifest.json": _manifest()})


def bomb_many_members_tgz(tmp: Path) -> Path:
    blocks = [(_tar_header(f"run/f{i}.csv", 0), b"", 0) for i in range(20_000)]
    return _tgz(tmp / "many.tar.gz", blocks)


def bomb_pax_header_tgz(tmp: Path) -> Path:
    """A pax extended header of 400 MiB: tarfile reads a header whole."""
    return _tgz(tmp / "pax.tar.gz", [(_tar_header("././@PaxHeader", 400 * MIB, b"x"),
                                      b"a" * MIB, 400)])


def bomb_long_name_tgz(tmp: Path) -> Path:
    """A GNU long-name header of 400 MiB."""
    header = tarfile.TarInfo("././@LongLink")
    header.type = tarfile.GNUTYPE_LONGNAME
    header.size = 400 * MIB
    return _tgz(tmp / "longname.tar.gz", [(header.tobuf(format=tarfile.GNU_FORMAT), b"a" * MIB,
                                           400)])


def bomb_big_plan_zip(tmp: Path) -> Path:
    """One run directory whose plan.json is 400 MiB: hashed as a stream, never held in memory."""
    return _zip(tmp / "bigplan.zip", ["run/plan.json"], b" " * MIB, 400,
                extra={"run/manifest.json": _manifest()}, level=1)


def bomb_json_plan_zip(tmp: Path) -> Path:
    """A plan.json just under the limit made of empty objects (the costliest JSON to parse)."""
    n = (MAX_METADATA_BYTES - 2) // 3
    bomb = ("[" + ",".join(["{}"] * n) + "]").encode()
    assert len(bomb) <= MAX_METADATA_BYTES
    return _zip(tmp / "jsonplan.zip", [], b"", 1,
                extra={"run/manifest.json": _manifest(), "run/plan.json": bomb,
                       "run/run_status.json": bomb[: MAX_METADATA_BYTES // 2 - 1] + b"]"})


BOMBS = {name[5:]: fn for name, fn in globals().items() if name.startswith("bomb_")}
REFUSED = {"thirty_plans_zip", "thirty_plans_tgz", "huge_manifest_zip", "huge_status_tgz",
           "many_members_zip", "many_members_tgz", "pax_header_tgz", "long_name_tgz"}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_verify_memory_is_bounded_on_bombs(name: str, tmp_path: Path) -> None:
    archive = BOMBS[name](tmp_path)
    assert archive.stat().st_size <= 100 * MIB
    outcome, mib, detail = _probe(archive)
    assert mib < LIMIT_MIB, f"{name}: {mib} MiB ({outcome}: {detail})"
    if name in REFUSED:
        assert outcome == "refused", detail
    else:
        assert outcome == "mismatch", detail  # nothing listed: added files, no crash


def test_several_run_directories_are_refused_before_reading(tmp_path: Path) -> None:
    """Refused from the zip's central directory: with the data region truncated away the
    verdict is the same (nothing of the members was needed)."""
    archive = bomb_thirty_plans_zip(tmp_path)
    outcome, _, detail = _probe(archive)
    assert outcome == "refused" and "several run directories" in detail
    outcome, _, detail = _probe(_zip(tmp_path / "big_status.zip", ["run/run_status.json"],
                                     b" " * MIB, 64, extra={"run/manifest.json": _manifest()}))
    assert outcome == "refused" and "run_status.json" in detail and "before reading" in detail


def test_a_large_plan_is_noted_not_silently_skipped(tmp_path: Path) -> None:
    from marketbayesmeta.audit.verify import verify_run

    big = b" " * (MAX_METADATA_BYTES + 1)
    import hashlib

    entry = {"path": "plan.json", "sha256": hashlib.sha256(big).hexdigest(), "size": len(big)}
    archive = _zip(tmp_path / "ok.zip", [], b"", 1,
                   extra={"run/manifest.json": _manifest(files=[entry]), "run/plan.json": big})
    result = verify_run(archive)
    assert result.ok and result.notes and "not re-computed" in result.render()


@pytest.mark.slow
def test_a_zip_with_a_million_members_is_refused_from_its_end_record(tmp_path: Path) -> None:
    """~100 MiB of central directory: zipfile alone would hold every entry (~500 MiB)."""
    archive = bomb_many_members_zip(tmp_path, 1_000_000)
    assert archive.stat().st_size <= 100 * MIB
    outcome, mib, detail = _probe(archive)
    assert outcome == "refused" and "members" in detail
    assert mib < LIMIT_MIB, f"{mib} MiB"
