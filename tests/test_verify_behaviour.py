"""verify, by behaviour: what a reviewer gives it (a run directory, a bundle, a path) and what it says
back (the result's fields, its JSON, its text, the error), for each way a bundle can be wrong.

Written against inputs and outputs only (no private helper of audit/verify.py), so the tests hold
whatever way verify reads an archive."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from marketbayesmeta.audit import UnsafeArchiveError, archive_run, verify_run, write_manifest
from marketbayesmeta.audit.verify import archive_kind
from marketbayesmeta.errors import InputError
from marketbayesmeta.plan import content_hash
from test_diff import make_plan, make_run_dir

ROOT = "run_x"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / ROOT)


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text(encoding="utf-8"))


def entry(run: Path, name: str) -> dict:
    return next(e for e in manifest(run)["files"] if e["path"] == name)


def remanifest(run: Path) -> None:
    """Write manifest.json again over the files as they are now (an edit the manifest agrees with)."""
    h = manifest(run)["plan_hash"]
    (run / "manifest.json").unlink()
    write_manifest(run, h)


# ------------------------------------------------------------------ a run directory


def test_a_clean_run_directory(run_dir: Path) -> None:
    m = manifest(run_dir)
    r = verify_run(run_dir)
    assert (r.source, r.kind, r.root, r.plan_hash, r.checked) == (str(run_dir), "directory", "", m["plan_hash"],
                                                                  len(m["files"]))
    assert r.ok and r.exit_code == 0 and r.mismatched_paths() == []
    assert r.to_json() == {"source": str(run_dir), "kind": "directory", "root": "", "plan_hash": m["plan_hash"],
                           "checked": len(m["files"]), "ok": True, "missing": [], "added": [], "changed": [],
                           "inconsistencies": [], "notes": []}
    assert r.render() == (f"verify {run_dir} (run directory; plan_hash {m['plan_hash']})\n"
                          f"OK: all {len(m['files'])} file(s) listed in manifest.json are present and match their "
                          "sha256 and size; no other files.")
    # the manifest's own path means its directory
    assert verify_run(run_dir / "manifest.json").to_json() == r.to_json()


def test_every_kind_of_mismatch_is_named(run_dir: Path) -> None:
    h = manifest(run_dir)["plan_hash"]
    n = len(manifest(run_dir)["files"])
    # run_status.json names another plan (and the manifest is rewritten to agree with its bytes)
    status = json.loads((run_dir / "run_status.json").read_text())
    status["plan_hash"] = "f" * 64
    (run_dir / "run_status.json").write_text(json.dumps(status), encoding="utf-8")
    remanifest(run_dir)
    same_size = entry(run_dir, "diagnostics.csv")
    longer = entry(run_dir, "analysis_report.md")
    data = (run_dir / "diagnostics.csv").read_bytes()
    (run_dir / "diagnostics.csv").write_bytes(data.replace(b"1.001", b"1.002"))  # same size
    (run_dir / "analysis_report.md").write_text("# Report\n\nStatus: edited later\n", encoding="utf-8")
    (run_dir / "pooled_summary.csv").unlink()
    (run_dir / "figures" / "extra.svg").write_text("<svg/>", encoding="utf-8")
    r = verify_run(run_dir)
    assert not r.ok and r.exit_code == 1
    assert r.missing == ["pooled_summary.csv"] and r.added == ["figures/extra.svg"]
    assert [c.path for c in r.changed] == ["analysis_report.md", "diagnostics.csv"]
    report_sha = hashlib.sha256((run_dir / "analysis_report.md").read_bytes()).hexdigest()
    diag_sha = hashlib.sha256((run_dir / "diagnostics.csv").read_bytes()).hexdigest()
    new_size = (run_dir / "analysis_report.md").stat().st_size
    assert [c.to_json() for c in r.changed] == [
        {"path": "analysis_report.md", "expected_sha256": longer["sha256"], "actual_sha256": report_sha,
         "expected_size": longer["size"], "actual_size": new_size},
        {"path": "diagnostics.csv", "expected_sha256": same_size["sha256"], "actual_sha256": diag_sha,
         "expected_size": same_size["size"], "actual_size": same_size["size"]}]
    message = f"run_status.json records plan_hash {'f' * 64!r}, manifest.json records {h!r}"
    assert r.inconsistencies == [message]
    assert r.mismatched_paths() == ["analysis_report.md", "diagnostics.csv", "figures/extra.svg",
                                    "pooled_summary.csv"]
    assert r.to_json()["ok"] is False and r.to_json()["inconsistencies"] == [message]
    assert r.render().splitlines() == [
        f"verify {run_dir} (run directory; plan_hash {h})",
        f"MISMATCH: 2 changed, 1 missing, 1 added, 1 inconsistent (manifest.json lists {n} file(s))",
        f"  changed  analysis_report.md: sha256 expected {longer['sha256']}, found {report_sha}; "
        f"size {longer['size']} -> {new_size}",
        f"  changed  diagnostics.csv: sha256 expected {same_size['sha256']}, found {diag_sha}; "
        f"size {same_size['size']} unchanged",
        "  missing  pooled_summary.csv: listed in manifest.json, not found",
        "  added    figures/extra.svg: not listed in manifest.json",
        f"  inconsistent  {message}",
    ]


@pytest.mark.parametrize("what", ["missing", "added", "changed", "inconsistent"])
def test_one_problem_alone_fails_the_check(run_dir: Path, what: str) -> None:
    if what == "missing":
        (run_dir / "diagnostics.csv").unlink()
    elif what == "added":
        (run_dir / "notes.txt").write_text("x", encoding="utf-8")
    elif what == "changed":
        (run_dir / "diagnostics.csv").write_text("x", encoding="utf-8")
    else:
        status = json.loads((run_dir / "run_status.json").read_text())
        status["plan_hash"] = "0" * 64
        (run_dir / "run_status.json").write_text(json.dumps(status), encoding="utf-8")
        remanifest(run_dir)
    r = verify_run(run_dir)
    assert not r.ok and r.exit_code == 1
    counts = {"missing": len(r.missing), "added": len(r.added), "changed": len(r.changed),
              "inconsistent": len(r.inconsistencies)}
    assert counts == {k: int(k == what) for k in counts}
    assert f"1 {what}" in r.render().splitlines()[1]


def _plan_doc(run: Path) -> dict:
    return json.loads((run / "plan.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("edit, expected", [
    ("not json", ["plan.json: not valid JSON"]),
    ("list", ["plan.json: not a JSON object"]),
    ("content", "edited"),
    ("other plan", "other"),
    ("status not json", ["run_status.json: not valid JSON"]),
    ("status without hash", []),
    ("status list", []),
])
def test_plan_and_status_are_cross_checked_when_their_bytes_match(run_dir: Path, edit: str, expected) -> None:
    h = manifest(run_dir)["plan_hash"]
    if edit == "not json":
        (run_dir / "plan.json").write_text("{not json", encoding="utf-8")
    elif edit == "list":
        (run_dir / "plan.json").write_text("[1, 2]", encoding="utf-8")
    elif edit == "content":  # edited after compile, its plan_hash kept
        doc = _plan_doc(run_dir)
        doc["project_name"] = "renamed"
        (run_dir / "plan.json").write_text(json.dumps(doc), encoding="utf-8")
        expected = [f"plan.json: its content hashes to {content_hash(doc)}, but it records plan_hash {h!r} "
                    "(edited after compile)"]
    elif edit == "other plan":  # a whole other (consistent) plan
        other = make_plan().model_copy(update={"project_name": "another"}).with_hash()
        (run_dir / "plan.json").write_text(json.dumps(other.model_dump(mode="json")), encoding="utf-8")
        expected = [f"plan.json records plan_hash {other.plan_hash!r}, manifest.json records {h!r}"]
    elif edit == "status not json":
        (run_dir / "run_status.json").write_text("nope", encoding="utf-8")
    elif edit == "status without hash":
        (run_dir / "run_status.json").write_text(json.dumps({"status": "completed"}), encoding="utf-8")
    else:
        (run_dir / "run_status.json").write_text("[]", encoding="utf-8")
    remanifest(run_dir)
    r = verify_run(run_dir)
    assert r.inconsistencies == expected
    assert not r.missing and not r.added and not r.changed and r.ok == (expected == [])


def test_a_plan_without_plan_hash_is_named_twice(run_dir: Path) -> None:
    h = manifest(run_dir)["plan_hash"]
    doc = _plan_doc(run_dir)
    del doc["plan_hash"]
    (run_dir / "plan.json").write_text(json.dumps(doc), encoding="utf-8")
    remanifest(run_dir)
    assert verify_run(run_dir).inconsistencies == [
        f"plan.json: its content hashes to {content_hash(doc)}, but it records plan_hash None (edited after compile)",
        f"plan.json records plan_hash None, manifest.json records {h!r}"]


def test_a_changed_or_missing_plan_is_not_also_cross_checked(run_dir: Path) -> None:
    (run_dir / "plan.json").write_text("{broken", encoding="utf-8")
    (run_dir / "run_status.json").write_text("broken too", encoding="utf-8")
    r = verify_run(run_dir)
    assert [c.path for c in r.changed] == ["plan.json", "run_status.json"] and r.inconsistencies == []
    (run_dir / "plan.json").unlink()
    r = verify_run(run_dir)
    assert r.missing == ["plan.json"] and r.inconsistencies == []


def test_nested_plan_and_status_are_not_the_run_s(run_dir: Path) -> None:
    """Only the run directory's own plan.json and run_status.json are cross-checked (a pool's
    run_status.json under pools/ belongs to the pool)."""
    (run_dir / "pools" / "a").mkdir(parents=True)
    (run_dir / "pools" / "a" / "run_status.json").write_text(json.dumps({"plan_hash": "1" * 64}), encoding="utf-8")
    remanifest(run_dir)
    assert verify_run(run_dir).ok


# ------------------------------------------------------------------ what is given


def test_paths_that_are_not_runs(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(InputError, match="no such run directory or archive"):
        verify_run(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no manifest\.json; not a completed run directory"):
        verify_run(empty)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a run directory or an archive"):
        verify_run(fifo)
    text = tmp_path / "notes.txt"
    text.write_text("hello", encoding="utf-8")
    with pytest.raises(InputError) as err:
        verify_run(text)
    assert str(err.value) == f"{text}: not a run directory or an archive"
    (problem,) = err.value.problems
    assert (problem.file, problem.message) == (str(text), "unrecognised file type")
    assert problem.accepted == "a run directory, .zip, .tar.gz or .tgz"


@pytest.mark.parametrize("name, head, kind", [
    ("b.zip", b"", "zip"), ("b.ZIP", b"\x1f\x8b", "zip"), ("b.tar.gz", b"PK\x03\x04", "tar"), ("b.TGZ", b"", "tar"),
    ("b.tar", b"", "tar"), ("bundle", b"PK\x03\x04rest", "zip"), ("bundle", b"PK\x05\x06", "zip"),
    ("bundle", b"\x1f\x8b\x08\x00", "tar"), ("bundle", b"PK\x01\x02", None), ("bundle", b"\x1f", None),
    ("bundle", b"", None), ("bundle.gz", b"hello", None),
])
def test_archive_kind_by_extension_then_by_first_bytes(tmp_path: Path, name: str, head: bytes,
                                                       kind: str | None) -> None:
    path = tmp_path / name
    path.write_bytes(head)
    assert archive_kind(path) == kind


def test_archive_kind_of_an_unreadable_file(tmp_path: Path) -> None:
    assert archive_kind(tmp_path / "absent") is None
    assert archive_kind(tmp_path) is None  # a directory cannot be opened as a file


# ------------------------------------------------------------------ bundles


def _members(run: Path, prefix: str) -> dict[str, bytes]:
    return {prefix + p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def make_tar(path: Path, members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return path


def make_zip(path: Path, members: dict[str, bytes], modes: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if modes and name in modes:
                info.external_attr = modes[name] << 16
            zf.writestr(info, data)
    return path


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
@pytest.mark.parametrize("prefix", [f"{ROOT}/", "", "./", f"./{ROOT}/"])
def test_a_clean_bundle_rooted_or_flat(tmp_path: Path, run_dir: Path, ext: str, prefix: str) -> None:
    members = _members(run_dir, prefix)
    path = tmp_path / f"bundle.{ext}"
    (make_zip if ext == "zip" else make_tar)(path, members)
    r = verify_run(path)
    root = ROOT if ROOT in prefix else ""
    kind = "zip" if ext == "zip" else "tar"
    assert (r.ok, r.kind, r.root, r.checked) == (True, kind, root, len(manifest(run_dir)["files"]))
    what = "zip archive" if kind == "zip" else "tar archive"
    where = f", run directory '{ROOT}/'" if root else ""
    assert r.render().splitlines()[0] == f"verify {path} ({what}{where}; plan_hash {manifest(run_dir)['plan_hash']})"


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_bundle_mismatches_are_named_as_in_a_directory(tmp_path: Path, run_dir: Path, ext: str) -> None:
    members = _members(run_dir, f"{ROOT}/")
    members[f"{ROOT}/diagnostics.csv"] = b"changed"
    del members[f"{ROOT}/pooled_summary.csv"]
    members[f"{ROOT}/figures/new.svg"] = b"<svg/>"
    members["README.txt"] = b"outside the run directory"
    members[f"{ROOT}/run_status.json"] = b"not json"
    path = tmp_path / f"bundle.{ext}"
    (make_zip if ext == "zip" else make_tar)(path, members)
    r = verify_run(path)
    assert r.missing == ["pooled_summary.csv"]
    assert r.added == ["README.txt", "figures/new.svg"]
    assert [c.path for c in r.changed] == ["diagnostics.csv", "run_status.json"]
    assert r.inconsistencies == []  # run_status.json changed: not read for cross-checks


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_bundle_cross_checks_plan_and_status(tmp_path: Path, run_dir: Path, ext: str) -> None:
    status = json.loads((run_dir / "run_status.json").read_text())
    status["plan_hash"] = "e" * 64
    (run_dir / "run_status.json").write_text(json.dumps(status), encoding="utf-8")
    remanifest(run_dir)
    path = tmp_path / f"bundle.{ext}"
    (make_zip if ext == "zip" else make_tar)(path, _members(run_dir, f"{ROOT}/"))
    h = manifest(run_dir)["plan_hash"]
    assert verify_run(path).inconsistencies == [
        f"run_status.json records plan_hash {'e' * 64!r}, manifest.json records {h!r}"]


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_bundles_that_hold_no_single_run(tmp_path: Path, run_dir: Path, ext: str) -> None:
    make = make_zip if ext == "zip" else make_tar
    members = _members(run_dir, "a/b/")  # manifest two levels down: not a bundle's layout
    with pytest.raises(InputError, match=r"no manifest\.json in the archive .*not a marketbayesmeta review bundle"):
        verify_run(make(tmp_path / f"deep.{ext}", members))
    members = {**_members(run_dir, "one/"), **_members(run_dir, "two/")}
    with pytest.raises(InputError, match=r"several run directories \('one', 'two'\); verify expects one, as archive writes it"):
        verify_run(make(tmp_path / f"two.{ext}", members))


def test_archive_written_by_archive_verifies(tmp_path: Path, run_dir: Path) -> None:
    for ext in ("zip", "tar.gz"):
        bundle = archive_run(run_dir, tmp_path / f"out.{ext}")
        r = verify_run(bundle)
        assert r.ok and r.root == ROOT


@pytest.mark.parametrize("raw, why", [
    ("/etc/passwd", "has an absolute path"),
    (f"{ROOT}/../escape.txt", "is unsafe"),
    ("../escape.txt", "is unsafe"),
])
@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_members_that_would_escape_are_refused(tmp_path: Path, run_dir: Path, raw: str, why: str,
                                               ext: str) -> None:
    members = {**_members(run_dir, f"{ROOT}/"), raw: b"x"}
    path = (make_zip if ext == "zip" else make_tar)(tmp_path / f"b.{ext}", members)
    with pytest.raises(UnsafeArchiveError) as err:
        verify_run(path)
    assert repr(raw) in str(err.value) and why in str(err.value) and "refused" in str(err.value)
    assert err.value.exit_code == 2


def _tarinfo(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize("kind, words", [
    (tarfile.SYMTYPE, "is a symbolic link (to 'target.csv')"),
    (tarfile.LNKTYPE, "is a hard link (to 'target.csv')"),
    (tarfile.FIFOTYPE, "is a device, fifo or other special file"),
    (tarfile.CHRTYPE, "is a device, fifo or other special file"),
    (tarfile.BLKTYPE, "is a device, fifo or other special file"),
])
def test_tar_links_and_special_files_are_refused(tmp_path: Path, run_dir: Path, kind: bytes, words: str) -> None:
    path = make_tar(tmp_path / "b.tar.gz", _members(run_dir, f"{ROOT}/"),
                    [_tarinfo(f"{ROOT}/odd", kind, "target.csv")])
    with pytest.raises(UnsafeArchiveError) as err:
        verify_run(path)
    assert str(err.value) == f"{path}: member '{ROOT}/odd' {words}; refused, nothing was extracted"


@pytest.mark.parametrize("mode, words", [
    (stat.S_IFLNK | 0o777, "is a symbolic link"),
    (stat.S_IFIFO | 0o644, "is a device, fifo or socket"),
    (stat.S_IFCHR | 0o644, "is a device, fifo or socket"),
    (stat.S_IFSOCK | 0o644, "is a device, fifo or socket"),
])
def test_zip_links_and_special_files_are_refused(tmp_path: Path, run_dir: Path, mode: int, words: str) -> None:
    members = {**_members(run_dir, f"{ROOT}/"), f"{ROOT}/odd": b"target.csv"}
    path = make_zip(tmp_path / "b.zip", members, {f"{ROOT}/odd": mode})
    with pytest.raises(UnsafeArchiveError) as err:
        verify_run(path)
    assert str(err.value) == f"{path}: member '{ROOT}/odd' {words}; refused, nothing was extracted"


def test_zip_members_with_unix_modes_of_plain_files_and_directories_are_read(tmp_path: Path, run_dir: Path) -> None:
    members = _members(run_dir, f"{ROOT}/")
    modes = {name: stat.S_IFREG | 0o644 for name in members}
    members[f"{ROOT}/figures/"] = b""
    modes[f"{ROOT}/figures/"] = stat.S_IFDIR | 0o755
    assert verify_run(make_zip(tmp_path / "b.zip", members, modes)).ok


@pytest.mark.parametrize("ext", ["zip", "tar.gz"])
def test_a_member_named_twice_is_refused(tmp_path: Path, run_dir: Path, ext: str) -> None:
    members = _members(run_dir, f"{ROOT}/")
    path = tmp_path / f"b.{ext}"
    name = f"{ROOT}/diagnostics.csv"
    if ext == "zip":
        with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning):
            for n, data in members.items():
                zf.writestr(n, data)
            zf.writestr("./" + name, b"shadow")
            zf.writestr(name, b"shadow")
    else:
        make_tar(path, {**members, "./" + name: b"shadow"})
    with pytest.raises(UnsafeArchiveError) as err:
        verify_run(path)
    assert "appears more than once; refused (a later copy would shadow the first)" in str(err.value)


def test_directory_members_are_not_files(tmp_path: Path, run_dir: Path) -> None:
    path = make_tar(tmp_path / "b.tar.gz", _members(run_dir, f"{ROOT}/"),
                    [_tarinfo(f"{ROOT}/figures", tarfile.DIRTYPE), _tarinfo(".", tarfile.DIRTYPE),
                     _tarinfo(f"{ROOT}", tarfile.DIRTYPE)])
    r = verify_run(path)
    assert r.ok and r.added == []


def test_an_encrypted_zip_member_cannot_be_verified(tmp_path: Path, run_dir: Path) -> None:
    path = make_zip(tmp_path / "b.zip", _members(run_dir, f"{ROOT}/"))
    data = bytearray(path.read_bytes())
    # set the "encrypted" flag bit of the first member in its local and central headers
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = data.index(sig)
        offset = at + (6 if sig == b"PK\x03\x04" else 8)
        data[offset] |= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="is encrypted; cannot verify it") as err:
        verify_run(path)
    assert not isinstance(err.value, UnsafeArchiveError)


@pytest.mark.parametrize("name, data, words", [
    ("b.zip", b"PK\x03\x04 not really a zip", "not a readable zip archive"),
    ("b.tar.gz", b"\x1f\x8b\x08\x00 not really gzip", "not a readable tar archive"),
    ("b.tar", b"x" * 1024, "not a readable tar archive"),
])
def test_unreadable_bundles(tmp_path: Path, name: str, data: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=words) as err:
        verify_run(path)
    assert not isinstance(err.value, UnsafeArchiveError) and str(err.value).startswith(f"{path}: ")


def test_a_truncated_bundle_is_unreadable(tmp_path: Path, run_dir: Path) -> None:
    for ext in ("zip", "tar.gz"):
        path = (make_zip if ext == "zip" else make_tar)(tmp_path / f"b.{ext}", _members(run_dir, f"{ROOT}/"))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with pytest.raises(InputError, match="not a readable"):
            verify_run(path)
