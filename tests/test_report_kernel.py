"""ReportKernel (report/notebook.py): one kernel executing the reports of many runs (a portfolio
worker's) gives each run the notebook a fresh kernel gives it: empty namespace, the run directory
as working directory, the same bytes. A kernel that died between reports is started again, and
closing it removes its files."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from marketbayesmeta import report as R
from marketbayesmeta.report import notebook
from report_fixture import make_fake_run

pytestmark = pytest.mark.slow

PROBE = "import os\nprint(os.getcwd())\nprint(sorted(k for k in globals() if not k.startswith('_') and k not in " \
        "('In', 'Out', 'exit', 'quit', 'get_ipython', 'os')))"


def _probe(kernel: notebook.ReportKernel | None, where: Path) -> list[str]:
    """What a new notebook sees in ``kernel`` (None: a throwaway kernel of its own): its working
    directory and the names it finds."""
    from nbformat import v4

    nb = v4.new_notebook(cells=[v4.new_code_cell(PROBE)])
    notebook.execute_notebook(nb, where, kernel=kernel)
    return "".join(o.get("text", "") for o in nb.cells[0].outputs).splitlines()


def _report(run_dir: Path) -> tuple[str, str]:
    return ((run_dir / "report.ipynb").read_text(encoding="utf-8"),
            (run_dir / "report.html").read_text(encoding="utf-8"))


def test_shared_kernel_gives_each_run_a_fresh_kernels_report(tmp_path: Path) -> None:
    first = make_fake_run(tmp_path / "first", moderators=True, study_names=["North", "South", "East"])
    second = make_fake_run(tmp_path / "second", scale="percentage_point", status="failed", leave_one_out=False,
                           study_names=["Alpha", "Beta", "Gamma"])
    alone = tmp_path / "alone"
    shutil.copytree(second, alone)

    assert R.write_reports(alone) == []  # a throwaway kernel of its own

    home = tmp_path / "kernel-home"
    with notebook.ReportKernel(home) as kernel:
        kernel.start()
        assert R.write_reports(first, kernel=kernel) == []
        cwd, names = _probe(kernel, second)
        assert cwd == str(second.resolve())
        assert names == _probe(None, second)[1]  # the first report's variables (run, R, ...) are gone
        assert "run" not in names
        assert R.write_reports(second, kernel=kernel) == []
        assert home.is_dir()
    assert not home.exists()
    assert _report(second) == _report(alone)
    cells = json.loads(_report(second)[0])["cells"]
    assert any(o.get("output_type") == "display_data" for c in cells for o in c.get("outputs", []))


def test_the_first_notebook_after_the_warm_up_finds_a_fresh_namespace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm-up's imports and names do not reach the first notebook (it empties the namespace
    itself: _ENTER does not), and the kernel runs with the package's collector thresholds, its
    warm-up's survivors frozen."""
    from marketbayesmeta.collector import THRESHOLDS

    run_dir = make_fake_run(tmp_path / "run")
    with monkeypatch.context() as m:  # a kernel that never ran anything: the names a fresh one has
        m.setattr(notebook, "IMPORTS", "pass")
        m.setattr(notebook, "WARM_UP", "pass")
        with notebook.ReportKernel(tmp_path / "fresh-home") as fresh:
            fresh_names = _probe(fresh.start(), run_dir)[1]
    assert "warnings" not in fresh_names and "matplotlib" not in fresh_names
    with notebook.ReportKernel(tmp_path / "kernel-home") as kernel:
        kernel.start()
        assert _probe(kernel, run_dir) == [str(run_dir.resolve()), fresh_names]
        from nbformat import v4

        nb = v4.new_notebook(cells=[v4.new_code_cell("import gc\nprint(tuple(gc.get_threshold()))\n"
                                                     "print(gc.get_freeze_count() > 10_000)\n"
                                                     "print(get_ipython().history_manager.enabled)")])
        notebook.execute_notebook(nb, run_dir, kernel=kernel)
        # the libraries the warm-up loaded are frozen: a notebook's reset collects only its own
        # objects; no input history is written to SQLite
        assert nb.cells[0].outputs[0]["text"].split() == [*repr(THRESHOLDS).split(), "True", "False"]
        assert (tmp_path / "kernel-home").is_dir() and not list((tmp_path / "kernel-home").rglob("*.sqlite"))


def test_dead_kernel_is_started_again_and_close_removes_its_files(tmp_path: Path) -> None:
    run_dir = make_fake_run(tmp_path / "run")
    home = tmp_path / "kernel-home"
    kernel = notebook.ReportKernel(home).start()
    try:
        assert _probe(kernel, run_dir)[0] == str(run_dir.resolve())
        pid = kernel.km.provisioner.pid
        os.kill(pid, signal.SIGKILL)
        assert R.write_reports(run_dir, kernel=kernel) == []
        assert kernel.km.provisioner.pid != pid
    finally:
        kernel.close()
    assert not home.exists()
    kernel.close()  # twice is fine


def test_process_kernel_lives_in_a_pid_named_temp_dir_and_closes(tmp_path: Path) -> None:
    kernel = notebook.process_kernel()
    try:
        assert notebook.process_kernel() is kernel
        assert kernel.home.name.startswith(f"{notebook.PROCESS_KERNEL_PREFIX}{os.getpid()}-")
        run_dir = make_fake_run(tmp_path / "run")
        assert R.write_reports(run_dir, kernel=kernel.start()) == []
        home = kernel.home
        assert home.is_dir()
    finally:
        notebook.close_process_kernel()
    assert not home.exists()
    assert notebook.process_kernel() is not kernel
    notebook.close_process_kernel()


def test_a_kernel_that_dies_before_the_notebook_fails_at_once_not_after_the_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The preparation of a notebook waits behind the kernel's warm-up; a kernel that dies then
    (here: it kills itself) is an error at once, not a wait for the whole timeout."""
    import time

    run_dir = make_fake_run(tmp_path / "run")
    monkeypatch.setattr(notebook, "_ENTER", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    kernel = notebook.ReportKernel(tmp_path / "kernel-home")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the report kernel died before the notebook could start"):
        kernel.execute(R.build_notebook(), run_dir, timeout=600)
    assert time.monotonic() - started < 300  # the timeout was 600 s
    assert not kernel.started  # closed: the next notebook starts a new kernel
    assert not (tmp_path / "kernel-home").exists()


def test_figures_drawn_ahead_in_the_kernel_give_the_report_a_fresh_kernel_gives(tmp_path: Path) -> None:
    """ReportKernel.warm_up with a run: the kernel draws the exact figures of a run before its
    check's files exist (report/prerender.py), binds no name in the next notebook's namespace, and
    the report is the one a throwaway kernel writes without anything drawn ahead."""
    from nbformat import v4

    run_dir = make_fake_run(tmp_path / "run", study_names=["North", "South", "East"])
    alone = tmp_path / "alone"
    shutil.copytree(run_dir, alone)
    aside = tmp_path / "aside"
    aside.mkdir()
    for name in ("run_status.json", "diagnostics.csv", "posterior.nc", "prior_sensitivity.csv",
                 "uncertainty_sensitivity.csv"):
        shutil.move(run_dir / name, aside / name)
    with notebook.ReportKernel(tmp_path / "kernel-home") as kernel:
        kernel.start(warm_up=False)
        kernel.warm_up(run_dir)
        nb = v4.new_notebook(cells=[v4.new_code_cell(
            "from marketbayesmeta.report.plots import cache\n"
            "print(sorted(name for _, name in cache._ENTRIES))")])
        notebook.execute_notebook(nb, run_dir, kernel=kernel)  # runs after the drawing, before the files return
        assert nb.cells[0].outputs[0]["text"].strip() == str(sorted(["forest", "influence", "cumulative", "ppc"]))
        for p in aside.iterdir():
            shutil.move(p, run_dir / p.name)
        assert R.write_reports(run_dir, kernel=kernel) == []
        assert R.write_reports(alone) == []
    assert _report(run_dir) == _report(alone)


def test_a_warm_up_with_a_run_binds_no_name_in_the_next_notebook(tmp_path: Path) -> None:
    run_dir = make_fake_run(tmp_path / "run")
    with notebook.ReportKernel(tmp_path / "kernel-home") as kernel:
        kernel.start(warm_up=False)
        fresh = _probe(kernel, run_dir)
        kernel.warm_up(run_dir)
        assert _probe(kernel, run_dir) == fresh
