"""CLI-level behaviour of compile, diff, audit, archive and verify on real compiled plans."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import EXAMPLES
from marketbayesmeta.cli import _dispatch, build_parser


def _cli(*argv: str) -> int:
    return _dispatch(list(argv), build_parser())


@pytest.fixture()
def examples(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path / "examples"


def _compile(config: Path, out: Path) -> Path:
    assert _cli("compile", str(config), "-o", str(out), "-q") == 0
    return out


def test_compile_prints_summary(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("compile", str(examples / "config.yaml")) == 0
    out = capsys.readouterr().out
    assert "geo-2025-01" in out and "triangulate_only" in out and "plan_hash:" in out and "directional" in out
    # the default target is a file beside the run directory, never inside it (SPEC §2)
    assert (examples.parent / "output" / "example_geo_sales_uplift.plan.json").is_file()
    assert not (examples.parent / "output" / "example_geo_sales_uplift").exists()
    assert "wrote " + str(examples.parent / "output" / "example_geo_sales_uplift.plan.json") in out


def test_compile_never_writes_into_a_completed_run(examples: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Recompiling after a run leaves that run verifiable (it used to overwrite its plan.json)."""
    from marketbayesmeta.audit.manifest import write_manifest
    from marketbayesmeta.audit.verify import verify_run

    run = examples.parent / "output" / "example_geo_sales_uplift"
    plan = _compile(examples / "config.yaml", run / "plan.json")  # explicit -o: a stand-in run
    from marketbayesmeta.plan import load_plan

    plan_hash = load_plan(plan).plan_hash
    (run / "run_status.json").write_text(json.dumps({"plan_hash": plan_hash}), encoding="utf-8")
    write_manifest(run, plan_hash)
    assert verify_run(run).ok
    before = plan.read_bytes()
    cfg = yaml.safe_load((examples / "config.yaml").read_text())
    cfg.setdefault("reporting", {})["interval"] = 0.9  # a changed plan
    (examples / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert _cli("compile", str(examples / "config.yaml"), "-q") == 0  # default target: beside
    assert (run.parent / "example_geo_sales_uplift.plan.json").is_file()
    capsys.readouterr()
    assert _cli("compile", str(examples / "config.yaml"), "-o", str(run), "-q") == 2
    assert _cli("compile", str(examples / "config.yaml"), "-o", str(run / "plan.json"), "-q") == 2
    assert "inside a completed run directory" in capsys.readouterr().err
    assert plan.read_bytes() == before and verify_run(run).ok


def test_diff_same_plan_exit_0(examples: Path, tmp_path: Path) -> None:
    plan = _compile(examples / "config.yaml", tmp_path / "a.json")
    assert _cli("diff", str(plan), str(plan)) == 0


def test_diff_changed_prior_exit_1(examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _compile(examples / "config.yaml", tmp_path / "a.json")
    cfg = yaml.safe_load((examples / "config.yaml").read_text())
    cfg["priors"]["typical_spread"]["value"] = 6  # twice the spread: twice tau's prior scale
    (examples / "changed.yaml").write_text(yaml.safe_dump(cfg))
    b = _compile(examples / "changed.yaml", tmp_path / "b.json")
    capsys.readouterr()
    assert _cli("diff", str(a), str(b)) == 1
    out = capsys.readouterr().out
    assert "tau_scale" in out and "0.04382394577968208" in out and "0.08638" in out
    assert _cli("diff", str(a), str(b), "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert any(g["group"] == "priors" for g in doc["groups"])


def test_diff_names_changed_row(examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _compile(examples / "config.yaml", tmp_path / "a.json")
    tracker = examples / "example_tracker.csv"
    tracker.write_text(tracker.read_text().replace("ratio,1.031,", "ratio,1.045,"))
    b = _compile(examples / "config.yaml", tmp_path / "b.json")
    capsys.readouterr()
    assert _cli("diff", str(a), str(b)) == 1
    out = capsys.readouterr().out
    assert "geo-2025-02" in out and "1.031" in out and "1.045" in out


def test_audit_runs_on_tracker_and_config(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("audit", str(examples / "example_tracker.csv")) == 0
    assert "geo_test" in capsys.readouterr().out


def test_audit_json_groups(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("audit", str(examples / "config.yaml"), "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    group = next(g for g in doc["groups"] if (g["evidence_type"], g["metric"], g["scale"]) ==
                 ("geo_test", "sales", "log_relative"))
    assert group["readiness"] == "directional" and group["scenario"] == 1
    assert group["ready_but_incompatible_unit"] == 1 and group["possible_duplicates"] == 1


def test_audit_bad_input_exit_2(tmp_path: Path) -> None:
    assert _cli("audit", str(tmp_path / "missing.csv")) == 2


def test_unknown_command_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        _cli("frobnicate")
    assert exc.value.code == 2


def test_execute_refuses_a_fifo_as_plan_without_waiting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    assert _cli("execute", str(fifo), "--out", str(tmp_path / "run")) == 2  # would block forever if read
    assert "not a regular file" in capsys.readouterr().err


def test_console_script_exits_fast_but_runs_exit_handlers_and_flushes(tmp_path: Path) -> None:
    """As the process's own command, main() ends with os._exit (no interpreter teardown): the
    exit handlers must still run and every byte written to a pipe must arrive."""
    import subprocess
    import sys

    flag = tmp_path / "atexit-ran"
    script = tmp_path / "entry.py"
    script.write_text(
        "import atexit, pathlib, sys\n"
        f"atexit.register(lambda: pathlib.Path({str(flag)!r}).write_text('yes'))\n"
        "from marketbayesmeta.cli import main\n"
        f"sys.argv = ['marketbayesmeta', 'check-config', {str(Path(__file__).resolve().parent.parent / 'examples' / 'config.yaml')!r}]\n"
        "main()\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert flag.read_text() == "yes"
    alone = subprocess.run([sys.executable, "-c", "import sys; from marketbayesmeta.cli import _dispatch, "
                            "build_parser; sys.exit(_dispatch(sys.argv[1:], build_parser()))", "check-config",
                            str(Path(__file__).resolve().parent.parent / "examples" / "config.yaml")],
                           capture_output=True, text=True, timeout=120)
    assert proc.stdout == alone.stdout and len(proc.stdout) > 200


@pytest.mark.parametrize("entry", ["main", "run_main"])
def test_the_console_scripts_process_uses_the_packages_collector_thresholds(entry: str) -> None:
    """As its process's own command (no argv) the CLI sets collector.THRESHOLDS; called with argv
    (a test, a notebook user) it leaves the caller's process alone."""
    import gc
    import subprocess
    import sys

    from marketbayesmeta import cli
    from marketbayesmeta.collector import THRESHOLDS

    before = gc.get_threshold()
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert gc.get_threshold() == before != THRESHOLDS
    script = ("import atexit, gc, sys\n"
              "atexit.register(lambda: print('thresholds', tuple(gc.get_threshold())))\n"
              f"sys.argv = ['marketbayesmeta', '--help']\n"
              f"from marketbayesmeta import cli\ncli.{entry}()\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert f"thresholds {THRESHOLDS!r}" in proc.stdout, proc.stdout[-500:] + proc.stderr[-500:]
