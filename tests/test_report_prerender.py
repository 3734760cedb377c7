"""Figures drawn ahead of the notebook (report/prerender.py, report/plots/cache.py): drawn from the
files a run writes before its MCMC check, reused only while every file they were drawn from is
unchanged and the run is usable; the notebook then shows what it would have drawn itself.

The run's state before the check is simulated on a fake run directory: the files written after
the check (run_status.json, diagnostics.csv, posterior.nc, the sensitivity tables) are moved away
while the figures are drawn ahead, and put back before the notebook would run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from marketbayesmeta.report import load_run
from marketbayesmeta.report import prerender as P
from marketbayesmeta.report.plots import PLOTS, cache, render
from report_fixture import make_fake_run

AFTER_THE_CHECK = ("run_status.json", "diagnostics.csv", "posterior.nc", "prior_sensitivity.csv",
                   "uncertainty_sensitivity.csv")
EXACT_PLOTS = {"forest", "influence", "cumulative", "ppc", "moderator_bubbles", "moderator_subgroups"}


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _before_the_check(run_dir: Path, aside: Path) -> None:
    aside.mkdir()
    for name in AFTER_THE_CHECK:
        if (run_dir / name).exists():
            shutil.move(run_dir / name, aside / name)


def _after_the_check(run_dir: Path, aside: Path) -> None:
    for p in aside.iterdir():
        shutil.move(p, run_dir / p.name)


def _drawn_now(run_dir: Path) -> dict[str, bytes]:
    """Every plot the outline draws, drawn now with nothing ahead (an empty cache)."""
    saved = dict(cache._ENTRIES)
    cache.clear()
    run = load_run(run_dir)
    out = {}
    for name in P.plot_names():
        try:
            out[name] = render(name, run)
        except Exception:  # noqa: BLE001 - a plot without its inputs
            pass
    cache._ENTRIES.update(saved)
    return out


def _spy_plots(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    drawn: list[str] = []
    for name, fn in list(PLOTS.items()):
        def spy(run, fn=fn, name=name):
            drawn.append(name)
            return fn(run)
        monkeypatch.setitem(PLOTS, name, spy)
    return drawn


@pytest.fixture()
def ahead(tmp_path: Path) -> Path:
    """A fake run whose exact figures were drawn ahead, before its check's files were written."""
    run_dir = make_fake_run(tmp_path / "run", moderators=True)
    _before_the_check(run_dir, tmp_path / "aside")
    assert sorted(P.prerender(run_dir)) == sorted(EXACT_PLOTS)
    _after_the_check(run_dir, tmp_path / "aside")
    return run_dir


def test_the_notebook_reuses_the_figures_drawn_ahead_and_shows_the_same_bytes(
        ahead: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _drawn_now(ahead)
    assert EXACT_PLOTS | {"trace", "rank", "sensitivity", "prior_posterior"} <= set(expected)
    drawn = _spy_plots(monkeypatch)
    run = load_run(ahead)
    got = {name: render(name, run) for name in expected}
    assert got == expected
    # only what needs the check's files is drawn now
    assert set(drawn) == {"trace", "rank", "sensitivity", "prior_posterior"}


def test_a_figure_whose_file_changed_since_is_drawn_again(ahead: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ahead / "study_effects.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    head = lines[0].split(",")
    cells = lines[1].split(",")
    for col in ("mean", "lower", "upper"):  # the first study's interval moves right
        i = head.index(col)
        cells[i] = str(float(cells[i]) + 0.01)
    path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n", encoding="utf-8")
    expected = _drawn_now(ahead)
    drawn = _spy_plots(monkeypatch)
    run = load_run(ahead)
    assert render("forest", run) == expected["forest"]
    assert drawn == ["forest"]  # it reads study_effects.csv: drawn again, with the new number
    assert render("cumulative", run) == expected["cumulative"] and drawn == ["forest"]  # it does not


def test_a_changed_plan_or_a_file_that_appeared_is_drawn_again(ahead: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = json.loads((ahead / "plan.json").read_text(encoding="utf-8"))
    plan["project_notes"] = "changed"
    (ahead / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    drawn = _spy_plots(monkeypatch)
    render("ppc", load_run(ahead))
    assert drawn == ["ppc"]


def test_an_unusable_run_draws_every_figure_with_its_mark(ahead: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = json.loads((ahead / "run_status.json").read_text(encoding="utf-8"))
    status["status"] = "failed"
    (ahead / "run_status.json").write_text(json.dumps(status), encoding="utf-8")
    expected = _drawn_now(ahead)
    drawn = _spy_plots(monkeypatch)
    run = load_run(ahead)
    assert render("forest", run) == expected["forest"]  # watermarked
    assert drawn == ["forest"]


def test_the_figures_of_another_run_directory_are_not_used(ahead: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(ahead, twin)  # the same bytes in another directory: its own figures
    drawn = _spy_plots(monkeypatch)
    render("forest", load_run(twin))
    assert drawn == ["forest"]


def test_a_file_written_while_the_run_is_read_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = make_fake_run(tmp_path / "run")
    _before_the_check(run_dir, tmp_path / "aside")
    real = P.load_run

    def load_while_writing(path):
        run = real(path)
        shutil.copy(tmp_path / "aside" / "diagnostics.csv", run_dir / "diagnostics.csv")
        return run

    monkeypatch.setattr(P, "load_run", load_while_writing)
    assert P.prerender(run_dir) == []
    assert not cache._ENTRIES


def test_a_new_run_empties_the_cache_first(ahead: Path, tmp_path: Path) -> None:
    other = make_fake_run(tmp_path / "other", leave_one_out=False)
    assert cache._ENTRIES
    P.prerender(other)
    assert {d for d, _ in cache._ENTRIES} == {str(other.resolve())}


def test_tracking_records_the_files_a_plot_reads(tmp_path: Path) -> None:
    run = load_run(make_fake_run(tmp_path / "run"))
    reads = run.track()
    PLOTS["trace"](run)
    assert reads == {"posterior.nc"}
    reads = run.track()
    _ = run.unusable, run.table("not_a_file.csv")
    assert reads == {"run_status.json", "not_a_file.csv"}


def test_a_warm_up_with_a_run_draws_its_figures_first_and_none_on_the_canned_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """report/warm_up.py with ``ahead``: the run's figures are drawn ahead before anything else; the
    canned run's texts and tables are shown and its posterior is read, but none of its figures is
    drawn (the MCMC check's figures are drawn once, in the notebook). Without a run, every plot."""
    from marketbayesmeta.report import warm_up as W
    from marketbayesmeta.report.load import RunData

    run_dir = make_fake_run(tmp_path / "run", moderators=True)
    _before_the_check(run_dir, tmp_path / "aside")
    drawn: list[tuple[str, str]] = []
    for name, fn in list(PLOTS.items()):
        def spy(run, fn=fn, name=name):
            fig = fn(run)  # a plot without its inputs yet raises: not drawn
            drawn.append((Path(run.run_dir).name, name))
            return fig
        monkeypatch.setitem(PLOTS, name, spy)
    read: list[str] = []
    real_posterior = RunData.posterior

    def posterior(self: RunData) -> object:
        read.append(Path(self.run_dir).name)
        return real_posterior(self)

    monkeypatch.setattr(RunData, "posterior", posterior)
    W.warm_up(run_dir)
    ahead = [name for where, name in drawn if where == "run"]
    assert set(ahead) == EXACT_PLOTS and drawn == [("run", n) for n in ahead]
    assert W.WARM_UP_RUN.name in read  # the posterior's reader is warm for the notebook

    drawn.clear()
    W.warm_up()  # without a run: every plot of the canned run
    assert {"forest", "trace"} <= {name for _, name in drawn}
