"""Interrupted and concurrent runs (SPEC §5): a killed or interrupted execute never damages the
previous run directory, leaves no half-written set behind that looks complete, and the next
execute cleans up; a second execute into a busy directory refuses and names the holder.

These tests sample (a tiny model), in subprocesses so that they can be killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from marketbayesmeta.api import compile_config, execute_plan
from marketbayesmeta.audit.verify import verify_run
from marketbayesmeta.plan import load_plan, write_plan

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIMEOUT = 240  # seconds: generous, for cold pytensor caches on slow machines

# Runs the CLI with pymc.sample wrapped so that the first draw touches a marker file: the test
# then knows the process is inside PyMC's sampling loop (where PyMC swallows KeyboardInterrupt).
LAUNCHER = r"""
import sys
from pathlib import Path

import pymc

marker = Path(sys.argv[1])
_sample = pymc.sample


def sample(*args, **kwargs):
    def callback(trace, draw):
        if not marker.exists():
            marker.write_text("sampling")

    kwargs["callback"] = callback
    return _sample(*args, **kwargs)


pymc.sample = sample
from marketbayesmeta.cli import main  # noqa: E402

main(sys.argv[2:])
"""


def _config(draws: int) -> dict:
    config = yaml.safe_load((EXAMPLES / "config.yaml").read_text(encoding="utf-8"))
    config["data"]["tracker"] = "tracker.csv"
    config["outputs"]["directory"] = "run"
    config["sampler"].update(chains=2, draws=draws, tune=200)
    config["sensitivity"] = {"prior": False, "uncertainty": False}
    config["diagnostics"] = {"on_failure": "warn"}
    return config


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A project with a short plan, a long plan (same run directory) and a completed run."""
    root = tmp_path_factory.mktemp("interrupts")
    shutil.copy(EXAMPLES / "example_tracker.csv", root / "tracker.csv")
    for name, draws in (("short", 200), ("long", 200_000)):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(_config(draws)), encoding="utf-8")
        write_plan(compile_config(root / f"{name}.yaml"), root / f"{name}.json")
    result = execute_plan(root / "short.json", quiet=True, report=False)
    assert result.exit_code == 0, result.reasons
    assert verify_run(root / "run").ok
    return root


@pytest.fixture
def project(template, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(template, root, symlinks=True)
    return root


def _tree(path: Path) -> dict[str, str]:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if ".staging-" in p.name or ".previous-" in p.name)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MARKETBAYESMETA_DEBUG"}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(root: Path, *argv: str) -> tuple[subprocess.Popen, Path]:
    """Start the CLI in a subprocess that signals (a marker file) when sampling has begun."""
    marker = root / "sampling.marker"
    marker.unlink(missing_ok=True)
    argv = argv or ("execute", str(root / "long.json"), "--out", str(root / "run"))
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(marker), *argv], cwd=root,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, marker


def _wait_for(proc: subprocess.Popen, *paths: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not all(p.exists() for p in paths):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"execute ended early (exit {proc.returncode})\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {[str(p) for p in paths]}")
        time.sleep(0.05)


def _cli(root: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "marketbayesmeta", *argv], cwd=root, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)


def _assert_previous_run_intact(root: Path, before: dict[str, str]) -> None:
    run = root / "run"
    assert _tree(run) == before
    result = verify_run(run)
    assert result.ok, result.render()
    status = json.loads((run / "run_status.json").read_text(encoding="utf-8"))
    assert status["plan_hash"] == load_plan(root / "short.json").plan_hash


def test_sigkill_leaves_previous_run_and_next_execute_recovers(project):
    before = _tree(project / "run")
    proc, marker = _start(project)
    staging = project / f".run.staging-{proc.pid}"
    _wait_for(proc, staging, marker)
    assert (staging / "plan.json").exists()  # a half-written set exists beside the run
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    assert staging.exists()  # nobody cleaned up after a SIGKILL...
    _assert_previous_run_intact(project, before)  # ...but the previous run is untouched

    result = execute_plan(project / "short.json", quiet=True, report=False)
    assert result.exit_code == 0, result.reasons
    assert not staging.exists(), "the next execute removes the killed run's staging directory"
    assert _leftovers(project) == []
    assert verify_run(project / "run").ok


def test_second_concurrent_execute_refuses_and_names_the_holder(project):
    before = _tree(project / "run")
    proc, marker = _start(project)
    try:
        _wait_for(proc, project / f".run.staging-{proc.pid}")  # the lock is taken before staging
        second = _cli(project, "execute", str(project / "short.json"), "-q")
        assert second.returncode == 2, second.stderr
        assert "another execute" in second.stderr
        assert f'"pid": {proc.pid}' in second.stderr, second.stderr
        assert "Traceback" not in second.stdout + second.stderr
        _assert_previous_run_intact(project, before)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130
    assert _leftovers(project) == []
    _assert_previous_run_intact(project, before)
    # the lock is free again: the refused execute now goes through
    again = _cli(project, "execute", str(project / "short.json"), "-q")
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(("command", "signum", "code"), [
    ("execute", signal.SIGINT, 130), ("execute", signal.SIGTERM, 143), ("run", signal.SIGINT, 130)])
def test_interrupt_during_sampling_is_clean(project, command, signum, code):
    before = _tree(project / "run")
    if command == "run":  # compile + execute of a changed config into the same directory
        proc, marker = _start(project, "run", str(project / "long.yaml"))
    else:
        proc, marker = _start(project)
    _wait_for(proc, project / f".run.staging-{proc.pid}", marker)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=TIMEOUT)
    # PyMC swallows KeyboardInterrupt inside its sampling loop and returns truncated chains; the
    # run must not carry on and complete with them.
    assert proc.returncode == code, f"{out}\n{err}"
    assert "interrupted" in err
    assert "Traceback" not in out + err
    assert "completed" not in out
    assert _leftovers(project) == []
    _assert_previous_run_intact(project, before)
