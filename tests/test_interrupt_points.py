"""SIGINT and SIGTERM at every point of a run (issue 16): during compile, sampling, artefacts,
each cell of the report notebook, the HTML export, the manifest, and the swap of the run
directory. Every outcome is either the previous run intact or the new run complete (never a mix,
never leftovers), and never exit 0 after an interrupt.

The run is the CLI in a subprocess; a launcher wraps the function of one point so that it touches
a marker file and waits (or, for a notebook cell, makes the kernel wait inside that cell). The test
waits for the marker, sends the signal, and checks the outcome. The quick variant takes one signal
per point; the slow variant every point with both signals, every notebook cell, and a Ctrl-C that
reaches the whole process group.
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
from marketbayesmeta.report.notebook import build_notebook
from test_interrupts import _config, _wait_for  # the same short plan and wait

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIMEOUT = 240

LAUNCHER = r"""
import os, sys, time
from pathlib import Path

point, marker = sys.argv[1], Path(sys.argv[2])


def arrive(wait=60.0):
    marker.write_text(point)
    time.sleep(wait)


def before(module, name, wait=60.0, when=lambda *a, **k: True):
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        if when(*args, **kwargs) and not marker.exists():
            arrive(wait)
        return original(*args, **kwargs)

    setattr(module, name, wrapper)


if point == "compile":
    import marketbayesmeta.compiler.build as m
    before(m, "compile_plan")
elif point == "sampling":
    import pymc
    _sample = pymc.sample

    def sample(*args, **kwargs):
        def callback(trace, draw):
            if not marker.exists():
                marker.write_text(point)
        kwargs["callback"] = callback
        return _sample(*args, **kwargs)

    pymc.sample = sample
elif point == "artefacts":
    import marketbayesmeta.runtime.pool_run as m
    before(m, "_posterior_netcdf")
elif point == "markdown":
    import marketbayesmeta.report.write as m
    before(m, "write_markdown")
elif point.startswith("cell:"):
    import marketbayesmeta.report.write as m
    k = int(point[5:])
    _build = m.build_notebook

    def build():
        nb = _build()
        code = [c for c in nb.cells if c.cell_type == "code"]
        code[k].source = (f"open({str(marker)!r}, 'w').write('cell')\nimport time\ntime.sleep(60)\n"
                          + code[k].source)
        return nb

    m.build_notebook = build
elif point == "html":
    import marketbayesmeta.report.write as m
    before(m, "export_html")
elif point == "manifest":
    import marketbayesmeta.audit.manifest as m
    before(m, "write_manifest")
elif point == "swap":  # inside the commit, between moving the old run aside and the new one in
    before(os, "replace", wait=2.0,
           when=lambda src, dst, **k: ".staging-" in os.path.basename(str(src)))
elif point == "drop_previous":  # inside the commit, while the old run is removed
    import marketbayesmeta.runtime.rundir as m
    before(m.shutil, "rmtree", wait=2.0, when=lambda p, *a, **k: ".previous-" in str(p))

from marketbayesmeta.cli import main  # noqa: E402

main(sys.argv[3:])
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A project with a completed previous run ("old") and a new plan ("new") for the same run
    directory."""
    root = tmp_path_factory.mktemp("points")
    shutil.copy(EXAMPLES / "example_tracker.csv", root / "tracker.csv")
    for name, draws in (("old", 200), ("new", 210)):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(_config(draws)), encoding="utf-8")
        write_plan(compile_config(root / f"{name}.yaml"), root / f"{name}.json")
    result = execute_plan(root / "old.json", quiet=True, report=False, fit_jobs=1)
    assert verify_run(root / "run").ok, result.reasons
    return root


def _tree(path: Path) -> dict[str, str]:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MARKETBAYESMETA_DEBUG"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src") + os.pathsep + env.get(
        "PYTHONPATH", "")
    env["TMPDIR"] = str(tmp)
    return env


def interrupt_at(tmp_path: Path, template: Path, point: str, signum: int, *,
                 group: bool = False) -> None:
    root = tmp_path / "project"
    shutil.copytree(template, root)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    before = _tree(root / "run")
    old_hash = load_plan(root / "old.json").plan_hash
    new_hash = load_plan(root / "new.json").plan_hash
    marker = root / "point.marker"
    argv = (["run", str(root / "new.yaml"), "--fit-jobs", "1"] if point == "compile"
            else ["execute", str(root / "new.json"), "--fit-jobs", "1"])
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, point, str(marker), *argv], cwd=root,
                            env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=group)
    _wait_for(proc, marker)
    time.sleep(0.3)  # inside the point
    if group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    out, err = proc.communicate(timeout=TIMEOUT)
    context = f"{point} {signal.Signals(signum).name}: exit {proc.returncode}\n{out}\n{err}"

    assert proc.returncode == 128 + signum, context  # never 0 (nor a traceback) after an interrupt
    assert "interrupted" in err and "Traceback" not in out + err, context
    assert "completed" not in out, context
    leftovers = sorted(p.name for p in root.iterdir() if ".staging-" in p.name or ".previous-" in p.name)
    assert leftovers == [], context
    assert sorted(p.name for p in tmp.iterdir()) == [], context  # no kernel temp directory left
    result = verify_run(root / "run")
    assert result.ok, context + result.render()
    status = json.loads((root / "run" / "run_status.json").read_text(encoding="utf-8"))
    if status["plan_hash"] == old_hash:  # the previous run, byte for byte
        assert _tree(root / "run") == before, context
    else:  # the new run, complete (the interrupt came while it was being swapped in)
        assert status["plan_hash"] == new_hash and status["finished_at"], context
        assert point in ("swap", "drop_previous"), context
        assert "already complete" in err, context
    if point in ("swap", "drop_previous"):
        assert status["plan_hash"] == new_hash, context


QUICK = [("compile", signal.SIGTERM), ("sampling", signal.SIGINT), ("artefacts", signal.SIGTERM),
         ("cell:0", signal.SIGINT), ("cell:3", signal.SIGTERM), ("html", signal.SIGTERM),
         ("manifest", signal.SIGINT), ("swap", signal.SIGTERM)]


@pytest.mark.parametrize(("point", "signum"), QUICK, ids=lambda v: getattr(v, "name", v))
def test_interrupt_at_each_point(tmp_path: Path, template: Path, point: str, signum: int) -> None:
    interrupt_at(tmp_path, template, point, signum)


def _code_cells() -> int:
    return sum(c.cell_type == "code" for c in build_notebook().cells)


SLOW = ([(p, s) for p in ("compile", "sampling", "artefacts", "markdown", "html", "manifest",
                          "swap", "drop_previous") for s in (signal.SIGINT, signal.SIGTERM)]
        + [(f"cell:{k}", (signal.SIGINT, signal.SIGTERM)[k % 2]) for k in range(_code_cells())])


@pytest.mark.exhaustive
@pytest.mark.parametrize(("point", "signum"), SLOW, ids=lambda v: getattr(v, "name", v))
def test_interrupt_at_every_point_with_both_signals(tmp_path: Path, template: Path, point: str,
                                                   signum: int) -> None:
    if (point, signum) in QUICK:
        pytest.skip("in the quick variant")
    interrupt_at(tmp_path, template, point, signum)


@pytest.mark.exhaustive
@pytest.mark.parametrize("point", ["sampling", "cell:2", "html"])
def test_ctrl_c_to_the_whole_process_group(tmp_path: Path, template: Path, point: str) -> None:
    """A terminal's Ctrl-C reaches every process of the group (the kernel included)."""
    interrupt_at(tmp_path, template, point, signal.SIGINT, group=True)
