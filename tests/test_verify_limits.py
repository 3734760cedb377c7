"""verify at its limits (audit/verify.py, issue 16): each bound at exactly its value and one past it,
the refusal word for word, the metadata held in memory only up to MAX_METADATA_BYTES, memory that
stays small on large members, and the less common shapes of a bundle (bzip2 or xz inside a .tar, a
``./`` entry, a directory entry without a Unix mode, an empty pax header).

The limits on counts and totals are set low with monkeypatch (they are module constants read at each
call), so the bundles stay a few MiB; MAX_METADATA_BYTES (4 MiB) is used as it is. Expected messages
are written out, the numbers in them worked out here from the bundle's own bytes."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import struct
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

import marketbayesmeta.audit.verify as verify_module
from marketbayesmeta.audit import UnsafeArchiveError, verify_run
from marketbayesmeta.audit.verify import FileMismatch, VerifyResult
from marketbayesmeta.errors import InputError
from test_diff import make_run_dir
from test_verify_behaviour import ROOT, _members, make_tar, make_zip, manifest, remanifest

MIB = 1 << 20
LIMIT = 4 * MIB  # MAX_METADATA_BYTES, the largest manifest.json / plan.json / run_status.json held in memory
LARGE_PLAN_NOTE = ("plan.json is larger than 4 MiB: its bytes match manifest.json, but its own plan_hash was "
                   "not re-computed")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / ROOT)


def test_the_limit_used_here_is_the_module_s() -> None:
    assert verify_module.MAX_METADATA_BYTES == LIMIT


def pad_json(path: Path, size: int) -> None:
    """Rewrite a JSON file as the same document followed by spaces, ``size`` bytes in all."""
    text = json.dumps(json.loads(path.read_text(encoding="utf-8"))).encode()
    assert len(text) <= size
    path.write_bytes(text + b" " * (size - len(text)))


def bundle(tmp_path: Path, run: Path, ext: str, name: str = "bundle") -> Path:
    path = tmp_path / f"{name}.{ext}"
    (make_zip if ext == "zip" else make_tar)(path, _members(run, f"{ROOT}/"))
    return path


# ------------------------------------------------------------------ metadata at MAX_METADATA_BYTES


@pytest.mark.parametrize("where", ["directory", "zip", "tar.gz"])
@pytest.mark.parametrize("name", ["plan.json", "run_status.json"])
def test_metadata_of_exactly_the_limit_is_read_and_cross_checked(tmp_path: Path, run_dir: Path, where: str,
                                                                  name: str) -> None:
    pad_json(run_dir / name, LIMIT)
    remanifest(run_dir)
    r = verify_run(run_dir if where == "directory" else bundle(tmp_path, run_dir, where))
    assert (r.ok, r.notes, r.inconsistencies, r.changed) == (True, [], [], [])
    # still cross-checked: the same file naming another plan_hash is an inconsistency
    doc = json.loads((run_dir / name).read_text(encoding="utf-8"))
    doc["plan_hash"] = "e" * 64
    (run_dir / name).write_bytes(b"")
    (run_dir / name).write_text(json.dumps(doc), encoding="utf-8")
    pad_json(run_dir / name, LIMIT)
    remanifest(run_dir)
    r = verify_run(run_dir if where == "directory" else bundle(tmp_path, run_dir, where, "again"))
    assert not r.ok and any(f"records plan_hash {'e' * 64!r}" in m for m in r.inconsistencies)


@pytest.mark.parametrize("where", ["directory", "zip", "tar.gz"])
def test_a_plan_larger_than_the_limit_is_hashed_and_noted(tmp_path: Path, run_dir: Path, where: str) -> None:
    pad_json(run_dir / "plan.json", LIMIT + 1)
    remanifest(run_dir)
    r = verify_run(run_dir if where == "directory" else bundle(tmp_path, run_dir, where))
    assert (r.ok, r.notes, r.inconsistencies) == (True, [LARGE_PLAN_NOTE], [])
    assert r.render().splitlines()[-1] == f"  note  {LARGE_PLAN_NOTE}"
    assert r.to_json()["notes"] == [LARGE_PLAN_NOTE]


@pytest.mark.parametrize("where", ["directory", "zip", "tar.gz"])
def test_a_large_plan_that_changed_is_named_changed_not_noted(tmp_path: Path, run_dir: Path, where: str) -> None:
    pad_json(run_dir / "plan.json", LIMIT + 1)
    remanifest(run_dir)
    data = (run_dir / "plan.json").read_bytes()
    (run_dir / "plan.json").write_bytes(data[:-1] + b"\n")  # same size, other bytes
    r = verify_run(run_dir if where == "directory" else bundle(tmp_path, run_dir, where))
    assert [c.path for c in r.changed] == ["plan.json"] and r.notes == [] and r.inconsistencies == []


def test_a_run_without_plan_json_has_no_note(run_dir: Path) -> None:
    (run_dir / "plan.json").unlink()
    remanifest(run_dir)
    r = verify_run(run_dir)
    assert (r.ok, r.notes) == (True, [])


@pytest.mark.parametrize("name", ["manifest.json", "run_status.json"])
def test_a_directory_s_manifest_or_status_over_the_limit_is_refused(run_dir: Path, name: str) -> None:
    if name == "run_status.json":
        pad_json(run_dir / name, LIMIT + 1)
        remanifest(run_dir)
    else:
        pad_json(run_dir / name, LIMIT + 1)
    with pytest.raises(InputError) as err:
        verify_run(run_dir)
    assert str(err.value) == (f"{run_dir / name}: larger than any run's {name} (4 MiB at most); not a run "
                              "directory")


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
@pytest.mark.parametrize("name", ["manifest.json", "run_status.json"])
def test_a_bundle_s_manifest_or_status_over_the_limit_is_refused_before_reading(tmp_path: Path, run_dir: Path,
                                                                               ext: str, name: str) -> None:
    pad_json(run_dir / name, LIMIT + 1)
    path = bundle(tmp_path, run_dir, ext)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: member '{ROOT}/{name}' is {LIMIT + 1} bytes, larger than any run's {name} "
                              "(4 MiB at most); not a review bundle, refused before reading it")


@pytest.mark.parametrize("where", ["directory", "zip", "tar.gz"])
def test_a_data_file_larger_than_the_limit_and_than_a_read_is_hashed_whole(tmp_path: Path, run_dir: Path,
                                                                          where: str) -> None:
    big = bytes(range(256)) * ((LIMIT + 1) // 256) + b"!"
    (run_dir / "posterior.bin").write_bytes(big)
    remanifest(run_dir)
    assert {"path": "posterior.bin", "size": LIMIT + 1} in [{k: e[k] for k in ("path", "size")}
                                                            for e in manifest(run_dir)["files"]]
    r = verify_run(run_dir if where == "directory" else bundle(tmp_path, run_dir, where))
    assert (r.ok, r.changed, r.notes) == (True, [], [])
    # one byte changed at the end (beyond the first read) is found, with both sizes right
    (run_dir / "posterior.bin").write_bytes(big[:-1] + b"?")
    r = verify_run(run_dir if where == "directory" else bundle(tmp_path, run_dir, where, "again"))
    assert [(c.path, c.expected_size, c.actual_size) for c in r.changed] == [("posterior.bin", len(big), len(big))]


# ------------------------------------------------------------------ memory


def _peak(fn) -> int:  # noqa: ANN001
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_small_on_a_large_member_of_an_unnamed_archive(tmp_path: Path, run_dir: Path) -> None:
    """A 24 MiB member (random, so the archive is 24 MiB too) of a gzip tar without an extension:
    the file's type, its decompression and the member's hash are all read in small pieces."""
    (run_dir / "posterior.bin").write_bytes(os.urandom(24 * MIB))
    remanifest(run_dir)
    path = tmp_path / "bundle"
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        tf.add(run_dir, arcname=ROOT)
    assert verify_run(path).ok
    assert _peak(lambda: verify_run(path)) < 8 * MIB


def test_memory_stays_small_on_a_large_status_in_a_directory(run_dir: Path) -> None:
    (run_dir / "run_status.json").write_bytes(b" " * (24 * MIB))
    with pytest.raises(InputError, match="larger than any run's run_status.json"):
        verify_run(run_dir)

    def refused() -> None:
        with pytest.raises(InputError):
            verify_run(run_dir)
    assert _peak(refused) < 8 * MIB


def test_only_the_metadata_of_a_directory_is_held_in_memory(run_dir: Path) -> None:
    for i in range(8):
        (run_dir / f"draws_{i}.bin").write_bytes(os.urandom(3 * MIB))
    remanifest(run_dir)
    assert verify_run(run_dir).ok
    assert _peak(lambda: verify_run(run_dir)) < 8 * MIB


# ------------------------------------------------------------------ totals, counts, names (limits set low)


def _content(run: Path) -> int:
    return sum(p.stat().st_size for p in run.rglob("*") if p.is_file())


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_total_content_at_the_limit_passes_and_one_byte_over_is_refused(tmp_path: Path, run_dir: Path, ext: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The members' sizes add up to ``total``: each byte counted once (a tar's members were once
    counted twice, refusing a tar of more than half the limit)."""
    total = _content(run_dir)
    path = bundle(tmp_path, run_dir, ext)
    monkeypatch.setattr(verify_module, "MAX_TOTAL_BYTES", total)
    assert verify_run(path).ok
    monkeypatch.setattr(verify_module, "MAX_TOTAL_BYTES", total - 1)
    with pytest.raises(InputError, match="the members add up to more than"):
        verify_run(path)


def _tar_claiming(path: Path, size: int) -> Path:
    """An uncompressed tar whose only header claims ``size`` bytes of content (none follow)."""
    info = tarfile.TarInfo(f"{ROOT}/posterior.nc")
    info.size = size
    path.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024)
    return path


def test_a_member_claiming_more_than_16_gib_is_refused_before_reading(tmp_path: Path) -> None:
    path = _tar_claiming(tmp_path / "big.tar", (16 << 30) + 1)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: the members add up to more than 16 GiB; not a review bundle, refused "
                              "before reading it")
    # exactly 16 GiB is allowed: the tar is then found short of data
    path = _tar_claiming(tmp_path / "limit.tar", 16 << 30)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value).startswith(f"{path}: not a readable tar archive (")


def test_tar_members_at_the_count_limit_pass_and_one_more_is_refused(tmp_path: Path, run_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = bundle(tmp_path, run_dir, "tar.gz")
    n = len(_members(run_dir, ""))
    monkeypatch.setattr(verify_module, "MAX_MEMBERS", n)
    assert verify_run(path).ok
    monkeypatch.setattr(verify_module, "MAX_MEMBERS", n - 1)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: more than {n - 1} members; not a review bundle (a run directory holds a "
                              "few dozen files)")


def _end_record(path: Path) -> tuple[int, int]:
    """(entries, central directory size) from the last 22 bytes of a zip without a comment."""
    sig, _, _, _, entries, size, _, comment = struct.unpack("<4sHHHHIIH", path.read_bytes()[-22:])
    assert sig == b"PK\x05\x06" and comment == 0
    return entries, size


def test_zip_central_directory_limits(tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = bundle(tmp_path, run_dir, "zip")
    entries, size = _end_record(path)
    assert entries == len(_members(run_dir, ""))
    monkeypatch.setattr(verify_module, "MAX_MEMBERS", entries)
    monkeypatch.setattr(verify_module, "MAX_CENTRAL_DIRECTORY", size)
    assert verify_run(path).ok
    monkeypatch.setattr(verify_module, "MAX_MEMBERS", entries - 1)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: the zip lists {entries} members in a {size}-byte directory; not a review "
                              f"bundle (at most {entries - 1} members)")
    monkeypatch.setattr(verify_module, "MAX_MEMBERS", entries)
    monkeypatch.setattr(verify_module, "MAX_CENTRAL_DIRECTORY", size - 1)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: the zip lists {entries} members in a {size}-byte directory; not a review "
                              f"bundle (at most {entries} members)")


def test_a_zip64_record_is_read_whatever_the_end_record_says(tmp_path: Path, run_dir: Path) -> None:
    """zipfile takes the counts of a zip64 end record whenever its locator is present, even when the
    plain end record is not saturated (0xFFFF): the limit must look at the same numbers (an end record
    saying 8 entries used to hide a zip64 record saying a million)."""
    plain = bundle(tmp_path, run_dir, "zip").read_bytes()
    eocd = plain[-22:]
    _, _, _, _, entries, size, offset, _ = struct.unpack("<4sHHHHIIH", eocd)
    claimed = 1_000_000
    at = len(plain) - 22  # the zip64 record goes where the end record was
    zip64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, claimed, claimed, size, offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, at, 1)
    path = tmp_path / "zip64.zip"
    path.write_bytes(plain[:at] + zip64 + locator + eocd)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: the zip lists {claimed} members in a {size}-byte directory; not a review "
                              "bundle (at most 10000 members)")


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_member_names_at_the_length_limit_pass_and_longer_are_refused(tmp_path: Path, run_dir: Path, ext: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"{ROOT}/figures/" + "n" * 30  # longer than every name of the run
    monkeypatch.setattr(verify_module, "MAX_NAME_CHARS", len(name))
    members = {**_members(run_dir, f"{ROOT}/"), name: b"x"}
    path = (make_zip if ext == "zip" else make_tar)(tmp_path / f"b.{ext}", members)
    assert verify_run(path).added == ["figures/" + "n" * 30]
    monkeypatch.setattr(verify_module, "MAX_NAME_CHARS", len(name) - 1)
    with pytest.raises(UnsafeArchiveError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: a member name is {len(name)} characters long (at most {len(name) - 1}); "
                              "not a review bundle, nothing was extracted")


def test_a_pax_header_larger_than_one_read_is_refused(tmp_path: Path, run_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pax.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo(f"{ROOT}/notes.txt")
        info.pax_headers = {"comment": "c" * 100_000}
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
        tf.add(run_dir, arcname=ROOT)
    header = path.read_bytes()[:512]
    assert header[156:157] == b"x"  # the pax header comes first
    pax_size = int(header[124:136].rstrip(b"\0 "), 8)
    read = -(-pax_size // 512) * 512  # tarfile reads the header's blocks in one read
    monkeypatch.setattr(verify_module, "MAX_HEADER_READ", read)
    assert verify_run(path).added == ["notes.txt"]
    monkeypatch.setattr(verify_module, "MAX_HEADER_READ", read - 1)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == f"{path}: a tar header asks for a {read}-byte read; not a review bundle"


def test_an_empty_pax_header_is_read(tmp_path: Path, run_dir: Path) -> None:
    """A pax header of size 0 makes tarfile ask for a 0-byte read: allowed."""
    empty = tarfile.TarInfo("././@PaxHeader")
    empty.type = tarfile.XHDTYPE
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        tf.add(run_dir, arcname=ROOT)
    path = tmp_path / "b.tar"
    path.write_bytes(empty.tobuf(format=tarfile.USTAR_FORMAT) + buf.getvalue())
    assert verify_run(path).ok


# ------------------------------------------------------------------ several run directories, nested metadata


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_metadata_of_a_second_run_directory_is_refused(tmp_path: Path, run_dir: Path, ext: str) -> None:
    members = {**_members(run_dir, ""), "other/plan.json": b"{}"}
    path = (make_zip if ext == "zip" else make_tar)(tmp_path / f"b.{ext}", members)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: the archive holds several run directories ('.', 'other'); verify expects "
                              "one, as archive writes it")


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_metadata_names_deeper_in_the_run_are_plain_files(tmp_path: Path, run_dir: Path, ext: str) -> None:
    members = {**_members(run_dir, f"{ROOT}/"), f"{ROOT}/figures/plan.json": b"{}",
               f"{ROOT}/figures/run_status.json": b"[]"}
    r = verify_run((make_zip if ext == "zip" else make_tar)(tmp_path / f"b.{ext}", members))
    assert (r.root, r.added, r.inconsistencies) == (ROOT, ["figures/plan.json", "figures/run_status.json"], [])


# ------------------------------------------------------------------ shapes of a bundle


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_a_leading_dot_slash_entry_is_skipped(tmp_path: Path, run_dir: Path, ext: str) -> None:
    members = _members(run_dir, "./")
    path = tmp_path / f"b.{ext}"
    if ext == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(zipfile.ZipInfo("./"), b"")
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(path, "w:gz") as tf:
            tf.addfile(_dir("./"))
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    r = verify_run(path)
    assert (r.ok, r.root, r.added) == (True, "", [])


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def test_a_zip_directory_entry_with_only_the_ms_dos_flag_is_a_directory(tmp_path: Path, run_dir: Path) -> None:
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(f"{ROOT}/figures/")
        info.external_attr = 0x10  # no Unix mode, as zips made on Windows
        zf.writestr(info, b"")
        for name, data in _members(run_dir, f"{ROOT}/").items():
            zf.writestr(name, data)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo(f"{ROOT}/figures/").external_attr >> 16 == 0
    r = verify_run(path)
    assert (r.ok, r.added) == (True, [])


def test_names_ending_in_x_keep_their_letters(tmp_path: Path, run_dir: Path) -> None:
    members = {**_members(run_dir, f"{ROOT}/"), f"{ROOT}/figures/MATRIX": b"m"}
    r = verify_run(make_zip(tmp_path / "b.zip", members))
    assert r.added == ["figures/MATRIX"]


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress])
def test_a_tar_compressed_with_bzip2_or_xz_is_read(tmp_path: Path, run_dir: Path, compress) -> None:  # noqa: ANN001
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(run_dir, arcname=ROOT)
    path = tmp_path / "bundle.tar"
    path.write_bytes(compress(buf.getvalue()))
    r = verify_run(path)
    assert (r.ok, r.kind, r.root) == (True, "tar", ROOT)


def test_a_tar_gz_compressed_twice_is_not_a_bundle(tmp_path: Path, run_dir: Path) -> None:
    """One layer of compression is read (as archive writes it); a second is not looked into."""
    inner = bundle(tmp_path, run_dir, "tar.gz").read_bytes()
    path = tmp_path / "twice.tar.gz"
    path.write_bytes(gzip.compress(inner))
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value).startswith(f"{path}: not a readable tar archive (")


# ------------------------------------------------------------------ messages word for word


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_refusals_name_the_bundle_and_the_member(tmp_path: Path, run_dir: Path, ext: str) -> None:
    make = make_zip if ext == "zip" else make_tar
    members = _members(run_dir, f"{ROOT}/")
    path = make(tmp_path / f"abs.{ext}", {**members, "/etc/passwd": b"x"})
    with pytest.raises(UnsafeArchiveError) as err:
        verify_run(path)
    assert str(err.value) == f"{path}: member '/etc/passwd' has an absolute path; refused, nothing was extracted"
    path = make(tmp_path / f"dots.{ext}", {**members, f"{ROOT}/../escape.txt": b"x"})
    with pytest.raises(UnsafeArchiveError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: member '{ROOT}/../escape.txt' is unsafe (contains a '..' component); "
                              "refused, nothing was extracted")
    path = make(tmp_path / f"none.{ext}", {f"{ROOT}/diagnostics.csv": b"x"})
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: no manifest.json in the archive (expected '<run directory>/manifest.json'); "
                              "not a marketbayesmeta review bundle")
    path = make(tmp_path / f"list.{ext}", {**members, f"{ROOT}/manifest.json": b"[]"})
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value).startswith(f"{path}:{ROOT}/manifest.json: ")


def test_a_zip_member_named_twice_names_the_bundle(tmp_path: Path, run_dir: Path) -> None:
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning):
        for n, data in _members(run_dir, f"{ROOT}/").items():
            zf.writestr(n, data)
        zf.writestr(f"{ROOT}/diagnostics.csv", b"shadow")
    with pytest.raises(UnsafeArchiveError) as err:
        verify_run(path)
    assert str(err.value) == (f"{path}: member '{ROOT}/diagnostics.csv' appears more than once; refused (a later "
                              "copy would shadow the first)")


def test_directory_messages(run_dir: Path) -> None:
    (run_dir / "manifest.json").write_text("[]", encoding="utf-8")
    with pytest.raises(InputError) as err:
        verify_run(run_dir)
    assert str(err.value).startswith(f"{run_dir / 'manifest.json'}: ")
    (run_dir / "manifest.json").unlink()
    with pytest.raises(InputError) as err:
        verify_run(run_dir)
    assert str(err.value) == (f"{run_dir}: no manifest.json; not a completed run directory (runs write "
                              "manifest.json last)")


def test_a_file_that_is_no_zip_at_all(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    path.write_bytes(b"not a zip at all, " * 4)
    with pytest.raises(InputError) as err:
        verify_run(path)
    assert str(err.value) == f"{path}: not a readable zip archive (File is not a zip file)"


@pytest.mark.parametrize("value", ["1e400", '"\\ud800"'])
def test_a_plan_whose_content_cannot_be_hashed_is_inconsistent(run_dir: Path, value: str) -> None:
    """A value canonical JSON refuses (a number too large for a float, a lone surrogate) cannot come from
    compile: the plan was edited, even when it still records the manifest's plan_hash."""
    text = (run_dir / "plan.json").read_text(encoding="utf-8")
    (run_dir / "plan.json").write_text(text.replace("{", '{"edited": ' + value + ", ", 1), encoding="utf-8")
    remanifest(run_dir)
    r = verify_run(run_dir)
    assert r.inconsistencies == ["plan.json: its content cannot be hashed (a value canonical JSON does not allow); "
                                 "edited after compile"]


# ------------------------------------------------------------------ the text of a result


def test_render_of_a_result_without_plan_hash_and_with_notes() -> None:
    r = VerifyResult(source="b.zip", kind="zip", root="run", plan_hash="", checked=2, notes=["first", "second"])
    assert r.render() == ("verify b.zip (zip archive, run directory 'run/'; plan_hash (none))\n"
                          "OK: all 2 file(s) listed in manifest.json are present and match their sha256 and size; "
                          "no other files.\n"
                          "  note  first\n"
                          "  note  second")
    r.changed.append(FileMismatch("a.csv", "1" * 64, "2" * 64, 3, 3))
    assert r.render().splitlines()[-2:] == ["  note  first", "  note  second"]
    assert r.render().splitlines()[1] == "MISMATCH: 1 changed (manifest.json lists 2 file(s))"
