"""manifest, verify and archive: tamper detection, unsafe bundles, deterministic bundles."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from marketbayesmeta.audit import (
    ArchiveRefused,
    UnsafeArchiveError,
    archive_run,
    build_manifest,
    read_manifest,
    verify_run,
    write_manifest,
)
from marketbayesmeta.errors import InputError
from test_diff import make_run_dir

SPECS = Path(__file__).resolve().parents[1] / "specs"
RUN_FILES = ["analysis_report.md", "diagnostics.csv", "figures/forest.svg",
             "future_true_effect_summary.csv", "plan.json", "pooled_summary.csv", "run_status.json"]
ROOT = "example_geo_sales_uplift"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / "runs" / ROOT)


def _flip(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


# -- archive rewriting helpers (in memory) ---------------------------------------------------------

Edit = Callable[[str, bytes], bytes | None]  # (member name, data) -> new data, or None to drop


def _rewrite_tar(src: Path, dst: Path, edit: Edit, extra: dict[str, bytes] | None = None) -> None:
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dst, "w:gz") as tout:
        for m in tin.getmembers():
            if m.isdir():
                tout.addfile(m)
                continue
            data = edit(m.name, tin.extractfile(m).read())  # type: ignore[union-attr]
            if data is None:
                continue
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))


def _rewrite_zip(src: Path, dst: Path, edit: Edit, extra: dict[str, bytes] | None = None) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.is_dir():
                zout.writestr(info, b"")
                continue
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)


def _rewrite(src: Path, dst: Path, edit: Edit, extra: dict[str, bytes] | None = None) -> Path:
    (_rewrite_zip if src.suffix == ".zip" else _rewrite_tar)(src, dst, edit, extra)
    return dst


def _tar_with(path: Path, *members: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(f"{ROOT}/manifest.json")
        manifest = json.dumps({"format": "marketbayesmeta.manifest/1", "plan_hash": "",
                               "files": []}).encode()
        info.size = len(manifest)
        tf.addfile(info, io.BytesIO(manifest))
        for m in members:
            if m.isreg():
                m.size = len(data)
                tf.addfile(m, io.BytesIO(data))
            else:
                tf.addfile(m)
    return path


def _tarinfo(name: str, type_: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    return info


# -- manifest --------------------------------------------------------------------------------------

def test_manifest_lists_every_file_sorted_and_validates(run_dir: Path) -> None:
    doc = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    schema = json.loads((SPECS / "manifest.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert doc["format"] == "marketbayesmeta.manifest/1"
    assert [f["path"] for f in doc["files"]] == RUN_FILES
    plan_entry = next(f for f in doc["files"] if f["path"] == "plan.json")
    assert plan_entry["size"] == (run_dir / "plan.json").stat().st_size
    assert doc == build_manifest(run_dir, doc["plan_hash"])
    assert read_manifest((run_dir / "manifest.json").read_bytes(), "m") == doc


@pytest.mark.parametrize("path", ["../evil", "/etc/passwd", "a/../b", "a\\b", "C:/x", "a//b",
                                  "./a", "manifest.json", ""])
def test_read_manifest_refuses_unsafe_paths(path: str) -> None:
    doc = {"format": "marketbayesmeta.manifest/1", "plan_hash": "",
           "files": [{"path": path, "sha256": "0" * 64, "size": 1}]}
    with pytest.raises(InputError) as exc:
        read_manifest(json.dumps(doc).encode(), "bundle/manifest.json")
    assert exc.value.exit_code == 2
    assert "bundle/manifest.json" in str(exc.value)
    schema = json.loads((SPECS / "manifest.schema.json").read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("bad", [
    b"not json", b"[]", b'{"format": "other/1", "plan_hash": "", "files": []}',
    b'{"format": "marketbayesmeta.manifest/1", "plan_hash": "", "files": [{"path": "a", '
    b'"sha256": "XYZ", "size": 1}]}',
    b'{"format": "marketbayesmeta.manifest/1", "plan_hash": "", "files": [{"path": "a", '
    b'"sha256": "' + b"0" * 64 + b'", "size": -1}]}',
    b'{"format": "marketbayesmeta.manifest/1", "plan_hash": "", "files": ['
    b'{"path": "a", "sha256": "' + b"0" * 64 + b'", "size": 1},'
    b'{"path": "a", "sha256": "' + b"0" * 64 + b'", "size": 1}]}',
])
def test_read_manifest_refuses_bad_structure(bad: bytes) -> None:
    with pytest.raises(InputError):
        read_manifest(bad, "manifest.json")


# -- verify a directory ----------------------------------------------------------------------------

def test_verify_directory_ok(run_dir: Path) -> None:
    result = verify_run(run_dir)
    assert result.ok and result.exit_code == 0
    assert result.checked == len(RUN_FILES)
    assert "OK" in result.render()
    assert result.to_json()["ok"] is True


@pytest.mark.parametrize("name", RUN_FILES)
def test_verify_directory_names_changed_missing_file(run_dir: Path, name: str) -> None:
    target = run_dir / name
    original = target.read_bytes()
    target.write_bytes(_flip(original))
    result = verify_run(run_dir)
    assert not result.ok and result.exit_code == 1
    assert [c.path for c in result.changed] == [name]
    assert result.changed[0].expected_size == result.changed[0].actual_size == len(original)
    assert result.changed[0].expected_sha256 != result.changed[0].actual_sha256
    assert not result.missing and not result.added
    assert f"changed  {name}" in result.render()

    target.unlink()
    result = verify_run(run_dir)
    assert result.missing == [name] and not result.changed
    assert f"missing  {name}" in result.render()


def test_verify_directory_names_added_file(run_dir: Path) -> None:
    (run_dir / "figures" / "extra.png").write_bytes(b"\x89PNG")
    (run_dir / "notes.txt").write_text("hi")
    result = verify_run(run_dir)
    assert result.added == ["figures/extra.png", "notes.txt"]
    assert "added    notes.txt" in result.render()


def test_verify_directory_checks_plan_hash_consistency(run_dir: Path) -> None:
    write_manifest(run_dir, "0" * 64)  # files match, but the manifest names another plan
    result = verify_run(run_dir)
    assert not result.ok and not result.changed
    assert any("plan.json records plan_hash" in m for m in result.inconsistencies)
    assert any("run_status.json" in m for m in result.inconsistencies)


def test_verify_refuses_bad_inputs(tmp_path: Path, run_dir: Path) -> None:
    (run_dir / "manifest.json").unlink()
    with pytest.raises(InputError, match="no manifest.json"):
        verify_run(run_dir)
    with pytest.raises(InputError, match="no such"):
        verify_run(tmp_path / "missing")
    other = tmp_path / "notes.txt"
    other.write_text("not an archive")
    with pytest.raises(InputError, match="not a run directory or an archive"):
        verify_run(other)
    bad_zip = tmp_path / "broken.zip"
    bad_zip.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(InputError, match="not a readable zip"):
        verify_run(bad_zip)
    bad_tar = tmp_path / "broken.tar.gz"
    bad_tar.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(InputError, match="not a readable tar"):
        verify_run(bad_tar)


def test_verify_directory_refuses_symlinks(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", run_dir / "link.txt")
    with pytest.raises(InputError, match="symbolic link"):
        verify_run(run_dir)


# -- archive + verify an archive -------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".tar.gz", ".tgz", ".zip"])
def test_archive_then_verify_ok(run_dir: Path, tmp_path: Path, ext: str) -> None:
    out = archive_run(run_dir, tmp_path / f"bundle{ext}")
    result = verify_run(out)
    assert result.ok, result.render()
    assert result.root == ROOT and result.checked == len(RUN_FILES)
    assert result.kind == ("zip" if ext == ".zip" else "tar")
    assert "OK" in result.render()


def test_archive_default_output_and_layout(run_dir: Path) -> None:
    out = archive_run(run_dir)
    assert out == run_dir.parent / f"{ROOT}.tar.gz"
    with tarfile.open(out, "r:gz") as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert names[0] == ROOT
    assert names == [ROOT, f"{ROOT}/analysis_report.md", f"{ROOT}/diagnostics.csv",
                     f"{ROOT}/figures", f"{ROOT}/figures/forest.svg",
                     f"{ROOT}/future_true_effect_summary.csv", f"{ROOT}/manifest.json",
                     f"{ROOT}/plan.json", f"{ROOT}/pooled_summary.csv", f"{ROOT}/run_status.json"]
    for m in members:
        assert m.mode == (0o755 if m.isdir() else 0o644)
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
        assert m.mtime == 315532800
    raw = out.read_bytes()
    assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime 0
    assert raw[3] & 0x08 == 0  # no file name in the gzip header


@pytest.mark.parametrize("ext", [".tar.gz", ".zip"])
def test_archive_is_deterministic(run_dir: Path, tmp_path: Path, ext: str) -> None:
    first = archive_run(run_dir, tmp_path / f"one{ext}").read_bytes()
    second = archive_run(run_dir, tmp_path / "other" / f"two{ext}").read_bytes()
    assert first == second
    # timestamps and permissions on disk do not leak into the bundle
    for p in run_dir.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))
        if p.is_file():
            p.chmod(0o600)
    assert archive_run(run_dir, tmp_path / f"three{ext}").read_bytes() == first
    # an existing output is replaced only with force (archive --force)
    (tmp_path / f"one{ext}").write_bytes(b"an older bundle")
    with pytest.raises(InputError, match="already exists.*--force"):
        archive_run(run_dir, tmp_path / f"one{ext}")
    assert (tmp_path / f"one{ext}").read_bytes() == b"an older bundle"
    assert archive_run(run_dir, tmp_path / f"one{ext}", force=True).read_bytes() == first


def test_zip_members_are_normalised(run_dir: Path, tmp_path: Path) -> None:
    out = archive_run(run_dir, tmp_path / "b.zip")
    with zipfile.ZipFile(out) as zf:
        infos = zf.infolist()
    assert infos[0].filename == f"{ROOT}/"
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        mode = info.external_attr >> 16
        assert mode & 0o777 == (0o755 if info.is_dir() else 0o644)


@pytest.mark.parametrize("ext", [".tar.gz", ".zip"])
@pytest.mark.parametrize("name", RUN_FILES)
def test_verify_archive_names_tampered_member(run_dir: Path, tmp_path: Path, ext: str,
                                              name: str) -> None:
    good = archive_run(run_dir, tmp_path / f"good{ext}")
    member = f"{ROOT}/{name}"
    bad = _rewrite(good, tmp_path / f"bad{ext}",
                   lambda n, d: _flip(d, len(d) // 2) if n == member else d)
    result = verify_run(bad)
    assert result.exit_code == 1
    assert [c.path for c in result.changed] == [name]
    assert not result.missing and not result.added
    assert name in result.render()

    gone = _rewrite(good, tmp_path / f"gone{ext}", lambda n, d: None if n == member else d)
    result = verify_run(gone)
    assert result.missing == [name] and not result.changed


@pytest.mark.parametrize("ext", [".tar.gz", ".zip"])
def test_verify_archive_names_added_member(run_dir: Path, tmp_path: Path, ext: str) -> None:
    good = archive_run(run_dir, tmp_path / f"good{ext}")
    bad = _rewrite(good, tmp_path / f"bad{ext}", lambda n, d: d,
                   extra={f"{ROOT}/extra.csv": b"a,b\n", "stray.txt": b"x"})
    result = verify_run(bad)
    assert result.added == ["extra.csv", "stray.txt"]
    assert not result.ok


def test_verify_accepts_flat_archive(run_dir: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat.tar.gz"
    with tarfile.open(flat, "w:gz") as tf:
        tf.add(run_dir, arcname=".")
    result = verify_run(flat)
    assert result.ok, result.render()
    assert result.root == ""


# -- unsafe archives -------------------------------------------------------------------------------

@pytest.mark.parametrize("member", [
    _tarinfo("../evil"),
    _tarinfo(f"{ROOT}/../../evil"),
    _tarinfo("/tmp/evil"),
    _tarinfo(f"{ROOT}/evil", tarfile.SYMTYPE, "/etc/passwd"),
    _tarinfo(f"{ROOT}/evil", tarfile.LNKTYPE, f"{ROOT}/manifest.json"),
    _tarinfo(f"{ROOT}/evil", tarfile.FIFOTYPE),
    _tarinfo(f"{ROOT}/evil", tarfile.CHRTYPE),
    _tarinfo(f"{ROOT}/manifest.json"),  # duplicate name
], ids=["traversal", "nested-traversal", "absolute", "symlink", "hardlink", "fifo", "device",
        "duplicate"])
def test_unsafe_tar_members_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    path = _tar_with(tmp_path / "unsafe.tar.gz", member)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchiveError) as exc:
        verify_run(path)
    assert exc.value.exit_code == 2
    assert isinstance(exc.value, InputError)
    assert repr(member.name) in str(exc.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing extracted


def _zip_with(path: Path, name: str, mode: int | None = None, data: bytes = b"x") -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        zf.writestr(f"{ROOT}/manifest.json", json.dumps(
            {"format": "marketbayesmeta.manifest/1", "plan_hash": "", "files": []}))
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.create_system = 3
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(("name", "mode"), [
    ("../evil", None),
    (f"{ROOT}/../evil", None),
    ("/abs/evil", None),
    (f"{ROOT}/link", 0o120777),
    (f"{ROOT}/fifo", 0o010644),
    (f"{ROOT}/manifest.json", None),
    (f"{ROOT}\\..\\evil", None),
], ids=["traversal", "nested-traversal", "absolute", "symlink", "fifo", "duplicate", "backslash"])
def test_unsafe_zip_members_are_refused(tmp_path: Path, name: str, mode: int | None) -> None:
    path = _zip_with(tmp_path / "unsafe.zip", name, mode)
    with pytest.raises(UnsafeArchiveError) as exc:
        verify_run(path)
    assert exc.value.exit_code == 2
    assert repr(name) in str(exc.value)


# -- archive refusals ------------------------------------------------------------------------------

def test_archive_refuses_tampered_run_dir(run_dir: Path, tmp_path: Path) -> None:
    target = run_dir / "pooled_summary.csv"
    target.write_bytes(_flip(target.read_bytes(), 20))
    out = tmp_path / "bundle.zip"
    with pytest.raises(ArchiveRefused) as exc:
        archive_run(run_dir, out)
    assert exc.value.exit_code == 1
    assert "pooled_summary.csv" in str(exc.value)
    assert any("pooled_summary.csv" in p.file for p in exc.value.problems)
    assert not out.exists()
    assert list(tmp_path.glob(".bundle.zip.tmp*")) == []


def test_archive_refuses_bad_outputs(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="inside the run directory"):
        archive_run(run_dir, run_dir / "bundle.tar.gz")
    with pytest.raises(InputError, match="inside the run directory"):
        archive_run(run_dir, run_dir / "figures" / "bundle.zip")
    with pytest.raises(InputError, match="unsupported archive type") as exc:
        archive_run(run_dir, tmp_path / "bundle.rar")
    assert exc.value.exit_code == 2
    with pytest.raises(InputError, match="not a run directory"):
        archive_run(tmp_path / "nope", tmp_path / "x.zip")
    (run_dir / "manifest.json").unlink()
    with pytest.raises(InputError, match="no manifest.json"):
        archive_run(run_dir, tmp_path / "x.zip")


def test_audit_does_not_import_pymc_or_arviz() -> None:
    code = ("import sys, marketbayesmeta.audit; "
            "bad = [m for m in ('pymc', 'arviz', 'pytensor') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_verify_archive_without_manifest_or_with_two_runs(tmp_path: Path, run_dir: Path) -> None:
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr(f"{ROOT}/pooled_summary.csv", "a\n")
    with pytest.raises(InputError, match="no manifest.json"):
        verify_run(empty)
    two = tmp_path / "two.tar.gz"
    with tarfile.open(two, "w:gz") as tf:
        tf.add(run_dir, arcname="run_a")
        tf.add(run_dir, arcname="run_b")
    with pytest.raises(InputError, match="several run directories"):
        verify_run(two)


def test_verify_accepts_the_manifest_path(run_dir: Path) -> None:
    assert verify_run(run_dir / "manifest.json").ok
