"""Run directories (issue 16): a directory is replaced only if it is recognised as one of our runs
by its own content; symlinks are resolved first; lock and temporary files are never opened
through a planted link. None of these tests samples: a refusal happens before anything runs, and
the runs that do go through are blocked plans (no sampling)."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import row, write_project
from marketbayesmeta.api import compile_config, execute_plan
from marketbayesmeta.audit.archive import archive_run
from marketbayesmeta.audit.manifest import write_manifest
from marketbayesmeta.errors import InputError, LockError
from marketbayesmeta.plan import write_plan
from marketbayesmeta.runtime.rundir import POOL_FILES, RUN_FILES, RunDirectory, foreign_entries
from marketbayesmeta.safeio import remove_stale_tempdirs, write_atomic
from test_bad_inputs import snapshot

PLAN_HASH = "ab" * 32


@pytest.fixture(scope="module")
def blocked_plan(tmp_path_factory: pytest.TempPathFactory):
    """A plan that is blocked (one row): execute writes its artefacts without sampling."""
    root = tmp_path_factory.mktemp("blocked")
    return compile_config(write_project(root, [row("s1", 2.0)]))


def make_run(path: Path, files: dict[str, bytes] | None = None, plan_hash: str = PLAN_HASH) -> Path:
    """A directory that is one of our runs: run files and a manifest of ours."""
    path.mkdir(parents=True, exist_ok=True)
    for rel, data in (files or {"plan.json": b"{}", "run_status.json": b"{}"}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(data)
    write_manifest(path, plan_hash)
    return path


# -- what counts as one of our runs ---------------------------------------------------------------

def test_a_real_run_and_an_empty_directory_are_replaceable(tmp_path: Path, blocked_plan) -> None:
    first = execute_plan(blocked_plan, tmp_path / "run", quiet=True, report=False)
    assert first.status == "blocked" and foreign_entries(first.run_dir) == []
    again = execute_plan(blocked_plan, tmp_path / "run", quiet=True, report=False)
    assert again.run_dir == first.run_dir and foreign_entries(again.run_dir) == []
    (tmp_path / "empty").mkdir()
    assert foreign_entries(tmp_path / "empty") == []
    portfolio = make_run(tmp_path / "portfolio", {"portfolio.csv": b"x", "plan.json": b"{}",
                                                  "pools/a-1/pool.json": b"{}",
                                                  "pools/a-1/run_status.json": b"{}", "pools/b/ppc.csv": b""})
    assert foreign_entries(portfolio) == []


@pytest.mark.parametrize(("files", "named"), [
    ({"manifest.json": b'{"name": "vscode-extension", "version": "1.0.0"}', "index.js": b"x"},
     "index.js"),
    ({"manifest.json": b'{"format": "marketbayesmeta.manifest/1", "plan_hash": "x", "files": []}'},
     "no plan hash"),
    ({"run_status.json": b"{}", "plan.json": b"{}"}, "no manifest.json"),
    ({"plan.json": b"{}"}, "no manifest.json"),
    ({"src/app.py": b"print()"}, "src/"),
])
def test_foreign_directories_are_named(tmp_path: Path, files: dict[str, bytes], named: str) -> None:
    for rel, data in files.items():
        (tmp_path / "d" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / rel).write_bytes(data)
    problems = foreign_entries(tmp_path / "d")
    assert any(named in p for p in problems), problems


def test_the_issue_cases_are_refused_and_untouched(tmp_path: Path, blocked_plan) -> None:
    """`outputs.directory: "."` in a project with a web app's manifest.json, and --out webapp."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "manifest.json").write_text('{"short_name": "app", "start_url": "."}')
    (project / "src" / "main.js").write_text("console.log(1)")
    (project / "config.yaml").write_text("precious")
    before = snapshot(tmp_path)
    with pytest.raises(InputError) as info:
        execute_plan(blocked_plan, project, quiet=True, report=False)
    message = str(info.value)
    assert "not a marketbayesmeta run directory" in message
    assert "config.yaml" in message and "src/" in message and "manifest.json" in message
    assert snapshot(tmp_path) == before


# -- the property: anything that is not one of our runs is refused and left byte for byte ---------

NAMES = st.one_of(st.sampled_from(sorted(RUN_FILES)), st.sampled_from(["pools", ".DS_Store",
                  "notes.txt", "manifest.json.bak", ".git", "src", "Plan.json", "index.html"]),
                  st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)
                  .filter(lambda n: n not in (".", "..")))
CONTENT = st.binary(max_size=64)


@st.composite
def foreign_trees(draw: st.DrawFn) -> list[tuple[str, str, bytes]]:
    """(kind, relative path, content) entries: start from one of our runs, then make at least one
    change that makes it not ours."""
    entries: list[tuple[str, str, bytes]] = [
        ("file", name, draw(CONTENT)) for name in
        draw(st.sets(st.sampled_from(sorted(RUN_FILES - {"manifest.json"})), max_size=5))]
    manifest = {"format": "marketbayesmeta.manifest/1", "plan_hash": PLAN_HASH, "files": []}
    change = draw(st.sampled_from(["foreign_file", "foreign_dir", "symlink", "no_manifest",
                                   "bad_format", "bad_hash", "manifest_not_json", "pool_foreign",
                                   "pool_bad_name", "pools_file", "run_file_is_dir",
                                   "manifest_is_link", "random"]))
    foreign_name = draw(NAMES.filter(lambda n: n not in RUN_FILES and n != "pools"))
    pool = draw(st.sampled_from(["a", "pool_1", "x-y"]))
    if change == "foreign_file":
        entries.append(("file", foreign_name, draw(CONTENT)))
    elif change == "foreign_dir":
        entries.append(("file", f"{foreign_name}/{draw(NAMES)}", draw(CONTENT)))
    elif change == "symlink":
        entries.append(("link", draw(st.sampled_from(sorted(RUN_FILES - {"manifest.json"}))),
                        b"../outside.txt"))
    elif change == "no_manifest":
        manifest = None
    elif change == "bad_format":
        manifest["format"] = draw(st.sampled_from(["marketbayesmeta.manifest/2", "webapp", None]))
    elif change == "bad_hash":
        manifest["plan_hash"] = draw(st.sampled_from(["", "x" * 64, PLAN_HASH.upper(), 7]))
    elif change == "manifest_not_json":
        entries.append(("file", "manifest.json", draw(CONTENT)))
        manifest = None
    elif change == "pool_foreign":
        entries.append(("file", f"pools/{pool}/pool.json", b"{}"))
        entries.append(("file", f"pools/{pool}/{foreign_name}", draw(CONTENT)))
    elif change == "pool_bad_name":
        entries.append(("file", f"pools/.{pool}/pool.json", b"{}"))
    elif change == "pools_file":
        entries.append(("file", "pools", draw(CONTENT)))
    elif change == "run_file_is_dir":
        name = draw(st.sampled_from(sorted(RUN_FILES - {"manifest.json"})))
        entries = [e for e in entries if e[1] != name]
        entries.append(("file", f"{name}/{draw(NAMES)}", draw(CONTENT)))
    elif change == "manifest_is_link":
        entries.append(("link", "manifest.json", b"../outside.txt"))
        manifest = None
    else:  # random names and content, plus maybe a valid manifest
        entries += [("file", n, draw(CONTENT)) for n in draw(st.lists(NAMES, min_size=1, max_size=6))]
        entries.append(("file", foreign_name, draw(CONTENT)))
    if manifest is not None:
        entries.append(("file", "manifest.json", json.dumps(manifest).encode()))
    return entries


def _build(root: Path, entries: list[tuple[str, str, bytes]]) -> None:
    root.mkdir()
    for kind, rel, data in entries:
        path = root / rel
        if any(p.is_file() or p.is_symlink() for p in [*path.parents][: len(Path(rel).parts) - 1]):
            continue  # a file where a directory would be: keep the file
        if kind == "link" and path.is_file() and not path.is_symlink():
            path.unlink()  # the change replaces a run file by a link
        if path.exists() or path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "link":
            path.symlink_to(data.decode())
        else:
            path.write_bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=foreign_trees())
def test_execute_never_replaces_a_directory_that_is_not_ours(tmp_path_factory, blocked_plan,
                                                            entries) -> None:
    base = tmp_path_factory.mktemp("p")
    (base / "outside.txt").write_text("not ours")
    target = base / "target"
    _build(target, entries)
    if not any(target.iterdir()):
        return  # an empty directory is replaceable (nothing to lose)
    before = snapshot(base)
    with pytest.raises(InputError, match="not a marketbayesmeta run directory"):
        execute_plan(blocked_plan, target, quiet=True, report=False)
    assert snapshot(base) == before


def test_run_files_come_from_the_output_catalogue() -> None:
    from marketbayesmeta.outputs import CATALOGUE

    assert RUN_FILES == {f.name for f in CATALOGUE}
    assert {"pool.json", "run_status.json", "pooled_summary.csv"} <= POOL_FILES
    assert not {"manifest.json", "plan.json", "portfolio.csv"} & POOL_FILES


# -- real paths and the lock ---------------------------------------------------------------------

def test_a_symlinked_run_directory_is_replaced_where_it_is(tmp_path: Path, blocked_plan) -> None:
    real = execute_plan(blocked_plan, tmp_path / "real", quiet=True, report=False).run_dir
    (tmp_path / "link").symlink_to("real")
    result = execute_plan(blocked_plan, tmp_path / "link", quiet=True, report=False)
    assert result.run_dir == real
    assert (tmp_path / "link").is_symlink() and os.readlink(tmp_path / "link") == "real"
    assert (tmp_path / "real").is_dir() and not (tmp_path / "real").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".real.lock", "link", "real"]


def test_one_lock_for_a_directory_and_a_link_to_it(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "outlink").symlink_to("out")
    first, second = RunDirectory(tmp_path / "out"), RunDirectory(tmp_path / "outlink")
    assert first.lock_path == second.lock_path
    first.acquire()
    try:
        with pytest.raises(LockError, match="another execute"):
            second.acquire()
    finally:
        first.release()


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo"])
def test_a_planted_lock_file_is_refused_and_its_target_kept(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock = tmp_path / ".out.lock"
    if kind == "symlink":
        lock.symlink_to(victim)
    elif kind == "hardlink":
        os.link(victim, lock)
    else:
        os.mkfifo(lock)
    rd = RunDirectory(tmp_path / "out")
    with pytest.raises(InputError, match="lock file"):
        rd.acquire()
    assert victim.read_text() == "precious"


def test_planted_links_named_like_staging_or_previous_are_removed_not_followed(tmp_path: Path) -> None:
    elsewhere = make_run(tmp_path / "elsewhere")
    before = snapshot(elsewhere)
    make_run(tmp_path / "out")
    (tmp_path / ".out.staging-1").symlink_to(elsewhere)
    (tmp_path / ".out.previous-2").symlink_to(elsewhere)
    (tmp_path / ".out.staging-keep").mkdir()  # not a pid: not ours
    rd = RunDirectory(tmp_path / "out")
    rd.acquire()
    rd.release()
    assert not (tmp_path / ".out.staging-1").exists() and not (tmp_path / ".out.previous-2").is_symlink()
    assert (tmp_path / ".out.staging-keep").is_dir()
    assert snapshot(elsewhere) == before


def test_the_target_is_checked_again_before_the_swap(tmp_path: Path) -> None:
    make_run(tmp_path / "out")
    with RunDirectory(tmp_path / "out") as rd:
        rd.start()
        (tmp_path / "out" / "notes.txt").write_text("written meanwhile")
        with pytest.raises(InputError, match="notes.txt"):
            rd.commit()
    assert (tmp_path / "out" / "notes.txt").read_text() == "written meanwhile"
    assert not list(tmp_path.glob(".out.staging-*"))


# -- temporary files never follow a planted link --------------------------------------------------

def _plant(path: Path, victim: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.symlink_to(victim)


def test_temporary_files_do_not_follow_planted_links(tmp_path: Path, blocked_plan) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    pid = os.getpid()
    _plant(tmp_path / "plans" / f".p.json.tmp-{pid}", victim)
    write_plan(blocked_plan, tmp_path / "plans" / "p.json")
    run = make_run(tmp_path / "run", {"readiness.csv": b"pool\n"})
    _plant(run / f".manifest.json.tmp-{pid}", victim)
    with pytest.raises(InputError, match="symbolic link"):  # a run directory holds no links
        write_manifest(run, PLAN_HASH)
    (run / f".manifest.json.tmp-{pid}").unlink()
    _plant(tmp_path / f".run.zip.tmp-{pid}", victim)
    archive_run(run, tmp_path / "run.zip")
    _plant(tmp_path / f".x.txt.tmp-{pid}", victim)
    write_atomic(tmp_path / "x.txt", ["new"])
    assert victim.read_text() == "precious"
    assert (tmp_path / "x.txt").read_text() == "new"
    assert not list(tmp_path.rglob(f"*.tmp-{pid}"))


def test_a_symlink_at_the_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "x.txt").symlink_to(victim)
    write_atomic(tmp_path / "x.txt", [b"new"])
    assert victim.read_text() == "precious" and not (tmp_path / "x.txt").is_symlink()


# -- kernel temp directories of killed runs -------------------------------------------------------

def test_stale_kernel_temp_dirs_are_removed_live_ones_kept(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f"mbm-ipc-{dead}-abcd"
    live = tmp_path / f"mbm-ipc-{os.getppid()}-efgh"
    other = tmp_path / "mbm-ipc-notapid-x"
    for d in (stale, live, other):
        (d / "ipc").mkdir(parents=True)
    assert remove_stale_tempdirs("mbm-ipc-", tmp_path) == [stale]
    assert not stale.exists() and live.is_dir() and other.is_dir()


# -- locations are outside plan_hash ----------------------------------------------------------------

def test_a_missing_recorded_source_is_a_reason_and_not_reportable(tmp_path: Path) -> None:
    from marketbayesmeta.runtime.status import StatusBook

    plan = compile_config(write_project(tmp_path, [row("s1", 2.0)]))
    path = write_plan(plan, tmp_path / "out.plan.json")
    (tmp_path / "tracker.csv").unlink()
    result = execute_plan(path, quiet=True, report=False)
    reasons = {r["code"]: r["message"] for r in result.reasons}
    assert "missing_source" in reasons and str(tmp_path / "tracker.csv") in reasons["missing_source"]
    assert str(tmp_path / "config.yaml") not in reasons["missing_source"]  # still there
    status = json.loads((result.run_dir / "run_status.json").read_text())
    assert "missing_source" in {r["code"] for r in status["reasons"]}
    book = StatusBook()
    book.add("missing_source", "tracker gone")
    assert book.status == "completed_with_warnings" and book.reportable is False


def test_an_edited_output_location_needs_an_explicit_out(tmp_path: Path) -> None:
    from marketbayesmeta.errors import PlanError

    plan = compile_config(write_project(tmp_path / "project", [row("s1", 2.0)]))
    path = write_plan(plan, tmp_path / "project" / "out.plan.json")
    doc = json.loads(path.read_text())
    assert doc["locations"]["output_directory"] == "out"  # beside the plan, as compiled
    doc["locations"]["output_directory"] = "../../victim"  # not covered by plan_hash
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanError, match="outside the plan's own directory"):
        execute_plan(path, quiet=True, report=False)
    assert not (tmp_path.parent / "victim").exists()
    result = execute_plan(path, tmp_path / "chosen", quiet=True, report=False)
    assert result.run_dir == (tmp_path / "chosen").resolve()
