"""The report kernel's warm-up (report/warm_up.py) and its canned run directory.

The warm-up renders every section once on ``report/warm_up_run/`` (the shipped example's run
without its reports, made by ``make warm-up-run``), so a report's first notebook finds the
kernel warm. These tests keep the canned run in step with what a run writes today (a stale copy
would warm up code paths the report no longer takes, or fail), check that it renders without
problems, and that warming up touches nothing and displays nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from marketbayesmeta.outputs import CSV_FILES
from marketbayesmeta.report import display
from marketbayesmeta.report import warm_up as W
from marketbayesmeta.report.load import MissingInput, load_run
from marketbayesmeta.report.plots import PLOTS, render
from marketbayesmeta.report.plots.common import plt
from marketbayesmeta.report.sections import SECTION_KEYS

pytest_plugins = ("example_run",)

STALE = "the canned warm-up run is stale: run `make warm-up-run` and commit src/marketbayesmeta/report/warm_up_run/"


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh))


def test_canned_run_has_every_csv_of_a_run_of_the_example_with_the_same_columns(example_run: Path) -> None:
    canned = sorted(p.name for p in W.WARM_UP_RUN.glob("*.csv"))
    written = sorted(name for name in CSV_FILES if (example_run / name).is_file())
    assert canned == written, STALE
    for name in canned:
        assert _header(W.WARM_UP_RUN / name) == _header(example_run / name), f"{name}: {STALE}"


def test_canned_run_json_files_have_the_current_format_and_keys(example_run: Path) -> None:
    for name in ("plan.json", "run_status.json"):
        canned = json.loads((W.WARM_UP_RUN / name).read_text(encoding="utf-8"))
        fresh = json.loads((example_run / name).read_text(encoding="utf-8"))
        assert sorted(canned) == sorted(fresh), f"{name}: {STALE}"
        assert canned.get("format") == fresh.get("format"), f"{name}: {STALE}"
    plan = json.loads((W.WARM_UP_RUN / "plan.json").read_text(encoding="utf-8"))
    assert not any("/" in v and v.startswith(("/", "..")) for v in plan["locations"].values())  # no machine paths


def test_canned_run_loads_without_problems_and_draws_every_plot_of_a_single_pool() -> None:
    run = load_run(W.WARM_UP_RUN)
    assert run.problems == []
    assert run.posterior().posterior.sizes["draw"] == 100
    drawn, missing = [], []
    for name in PLOTS:
        try:
            png = render(name, run)
        except MissingInput:
            missing.append(name)
            continue
        assert png.startswith(b"\x89PNG")
        drawn.append(name)
    # everything but what only a meta-regression or a leave-one-out with enough studies has
    assert set(missing) <= {"moderator_bubbles", "moderator_subgroups", "influence"}, missing
    assert {"forest", "prior_posterior", "sensitivity", "cumulative", "ppc", "trace", "rank"} <= set(drawn)


def test_warm_up_shows_every_section_of_the_canned_run_and_displays_nothing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from marketbayesmeta.report.sections import section

    shown: list[tuple[str, Path, list[str]]] = []
    real = display.show

    def spy(item, run) -> None:  # noqa: ANN001
        shown.append((item.name, run.run_dir, list(run.problems)))
        real(item, run)

    monkeypatch.setattr(display, "show", spy)
    before = {p.name: p.stat().st_mtime_ns for p in W.WARM_UP_RUN.iterdir()}
    W.warm_up()
    assert [k for k, _, _ in shown] == [item.name for key in SECTION_KEYS for item in section(key).items]
    assert {d for _, d, _ in shown} == {W.WARM_UP_RUN}
    assert all(problems == [] for _, _, problems in shown)
    assert capsys.readouterr() == ("", "")  # captured and dropped
    assert plt().get_fignums() == []
    assert {p.name: p.stat().st_mtime_ns for p in W.WARM_UP_RUN.iterdir()} == before  # nothing written


@pytest.mark.slow
def test_a_started_kernel_has_run_the_warm_up_before_its_first_notebook(tmp_path: Path) -> None:
    """What only warm_up() loads (the display code, posterior.nc's reader) is loaded in a kernel
    that was just started: code sent to it waits behind the warm-up, as a notebook does."""
    from marketbayesmeta.report import notebook

    kernel = notebook.ReportKernel(tmp_path / "kernel-home").start()
    try:
        kernel._wait(kernel.kc.wait_for_ready(timeout=120))
        kernel._run("import sys\nassert 'marketbayesmeta.report.display' in sys.modules\n"
                    "assert 'h5netcdf' in sys.modules\n", 120)  # raises unless both hold
    finally:
        kernel.close()
