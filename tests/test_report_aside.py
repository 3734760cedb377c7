"""Figures drawn aside (report/plots/aside.py): a single run's process draws the notebook's last
figures while its kernel executes the notebook; the kernel uses one only while its inputs are
unchanged, and the report is the same either way."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import matplotlib
import pytest

from marketbayesmeta.report import load_run
from marketbayesmeta.report.notebook import ASIDE_ENV
from marketbayesmeta.report.plots import aside as A
from marketbayesmeta.report.plots import cache, draw, render
from marketbayesmeta.report.plots.common import plt
from report_fixture import make_fake_run


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_fake_run(tmp_path / "run")


def test_drawn_aside_in_a_thread_without_pyplot_is_the_figure_pyplot_draws(run_dir: Path, tmp_path: Path) -> None:
    into = tmp_path / "aside"
    figures_before = plt().get_fignums()
    written: list[list[str]] = []
    thread = threading.Thread(target=lambda: written.append(A.draw_aside(run_dir, into)))
    thread.start()
    thread.join()
    assert written == [list(A.ASIDE_PLOTS)]
    assert plt().get_fignums() == figures_before  # pyplot never saw them
    run = load_run(run_dir)
    for name in A.ASIDE_PLOTS:
        assert (into / f"{name}.png").read_bytes() == draw(name, run, mark=False)  # through pyplot


def test_the_kernel_side_uses_an_aside_figure_only_while_its_inputs_are_unchanged(
        run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    into = tmp_path / "aside"
    A.draw_aside(run_dir, into)
    marker = b"\x89PNG drawn aside"  # proves where the bytes come from
    record = json.loads((into / "trace.json").read_text(encoding="utf-8"))
    record["png_sha256"] = __import__("hashlib").sha256(marker).hexdigest()
    (into / "trace.png").write_bytes(marker)
    (into / "trace.json").write_text(json.dumps(record), encoding="utf-8")
    monkeypatch.setenv(ASIDE_ENV, str(into))
    assert render("trace", load_run(run_dir)) == marker
    twin = tmp_path / "twin"
    shutil.copytree(run_dir, twin)
    assert render("trace", load_run(twin)) != marker  # another run directory: drawn there
    (run_dir / "posterior.nc").write_bytes((run_dir / "posterior.nc").read_bytes() + b"\0")
    assert render("trace", load_run(run_dir)) != marker  # its input changed: drawn again
    monkeypatch.delenv(ASIDE_ENV)
    assert cache._aside_entry("rank", run_dir) is None  # no aside directory named: none is read


def test_a_torn_or_foreign_aside_entry_is_not_used(run_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    into = tmp_path / "aside"
    A.draw_aside(run_dir, into)
    monkeypatch.setenv(ASIDE_ENV, str(into))
    assert cache._aside_entry("rank", run_dir) is not None
    (into / "rank.png").write_bytes(b"half")  # the PNG does not match its JSON's digest
    assert cache._aside_entry("rank", run_dir) is None
    (into / "trace.json").write_text("{not json", encoding="utf-8")
    assert cache._aside_entry("trace", run_dir) is None


def test_nothing_is_drawn_aside_when_this_processs_matplotlib_settings_differ(run_dir: Path, tmp_path: Path) -> None:
    into = tmp_path / "aside"
    (into).mkdir()
    (into / "stale.png").write_bytes(b"old")  # an earlier run's entries are removed first
    assert A.same_settings_as_kernel()
    with matplotlib.rc_context({"font.size": 13}):  # a notebook user's style
        assert not A.same_settings_as_kernel()
        assert A.draw_aside(run_dir, into) == []
    assert list(into.iterdir()) == []


def test_the_thread_stops_after_the_plot_it_is_drawing(run_dir: Path, tmp_path: Path) -> None:
    into = tmp_path / "aside"
    asked = []

    def stop() -> bool:
        asked.append(True)
        return len(asked) > 1  # after the first plot

    assert A.draw_aside(run_dir, into, stop=stop) == [A.ASIDE_PLOTS[0]]
    aside = A.Aside(run_dir, tmp_path / "other")
    assert aside.finish() in ([], [A.ASIDE_PLOTS[0]], list(A.ASIDE_PLOTS))


@pytest.mark.slow
def test_a_report_with_figures_drawn_aside_is_the_report_without(tmp_path: Path) -> None:
    from marketbayesmeta.report import write_reports
    from marketbayesmeta.report.notebook import ReportKernel

    with_aside = make_fake_run(tmp_path / "with")
    without = make_fake_run(tmp_path / "without")
    shown: dict[str, list[str]] = {}
    real = A.draw_aside

    def spy(run_dir: Path, into: Path, **kw: object) -> list[str]:
        shown[run_dir.name] = real(run_dir, into, **kw)
        return shown[run_dir.name]

    A.draw_aside = spy
    try:
        for run_dir, aside in ((with_aside, True), (without, False)):
            kernel = ReportKernel(tmp_path / f"kernel-{run_dir.name}").start(warm_up=False)
            try:
                assert write_reports(run_dir, kernel=kernel, draw_aside=aside) == []
            finally:
                kernel.close()
    finally:
        A.draw_aside = real
    assert shown == {"with": list(A.ASIDE_PLOTS)}
    nb_with = json.loads((with_aside / "report.ipynb").read_text(encoding="utf-8"))
    nb_without = json.loads((without / "report.ipynb").read_text(encoding="utf-8"))
    images = [[o.get("data", {}).get("image/png") for c in nb["cells"] for o in c.get("outputs", [])]
              for nb in (nb_with, nb_without)]
    assert images[0] == images[1] and sum(1 for i in images[0] if i) >= 2


def test_the_kernel_is_told_where_its_runs_process_draws_aside(tmp_path: Path) -> None:
    from marketbayesmeta.report.notebook import ReportKernel, _kernel_env

    kernel = ReportKernel(tmp_path / "home")
    assert _kernel_env(kernel.home)[ASIDE_ENV] == str(kernel.aside_dir)


def test_after_the_figures_the_thread_runs_what_comes_next_even_when_stopped_early(
        run_dir: Path, tmp_path: Path) -> None:
    """write_reports passes the HTML exporter's warm-up: the figures get the process's time first,
    and the warm-up still happens when the notebook ended before the figures were drawn."""
    events: list[str] = []
    aside = A.Aside(run_dir, tmp_path / "aside", then=lambda: events.append(f"then after {len(aside.written)}"))
    written = aside.finish()
    assert events == [f"then after {len(written)}"]  # once, after the drawing
    stopped = A.Aside(run_dir, tmp_path / "stopped", then=lambda: events.append("then, stopped"))
    stopped.finish()  # asked to stop at once
    assert events[-1] == "then, stopped" and len(events) == 2
