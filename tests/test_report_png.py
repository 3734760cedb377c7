"""figure_png (report/plots/common.py) draws a figure once and writes the PNG savefig would have
written: the same bytes for every plot, marked or not, in pyplot's figures and in those drawn
without pyplot, and savefig for a canvas that is not Agg."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from marketbayesmeta.report import load_run
from marketbayesmeta.report.load import MissingInput
from marketbayesmeta.report.plots import PLOTS
from marketbayesmeta.report.plots.common import PNG_DPI, figure_png, plt, watermark, without_pyplot
from report_fixture import make_fake_run


def _savefig(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    plt().close(fig)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["usable", "failed", "moderators"])
def test_every_plot_is_the_png_savefig_writes(tmp_path: Path, kind: str) -> None:
    run_dir = make_fake_run(tmp_path / "run", status="failed" if kind == "failed" else "completed_with_warnings",
                            moderators=kind == "moderators")
    run = load_run(run_dir)
    open_before = plt().get_fignums()  # another test's figures, in this process
    compared = []
    for name, plot in PLOTS.items():
        try:
            a, b = plot(run), plot(run)
        except MissingInput:
            continue
        if run.unusable:
            watermark(a, run.unusable)
            watermark(b, run.unusable)
        assert figure_png(a) == _savefig(b), name
        compared.append(name)
    assert {"forest", "trace", "rank"} <= set(compared)
    if kind == "moderators":
        assert {"moderator_bubbles", "moderator_subgroups"} & set(compared)
    assert plt().get_fignums() == open_before  # every figure closed


def test_a_figure_drawn_without_pyplot_and_at_another_dpi(tmp_path: Path) -> None:
    run = load_run(make_fake_run(tmp_path / "run"))
    with without_pyplot():
        fig = PLOTS["forest"](run)
    fig.set_dpi(72)  # as a notebook user's rcParams["figure.dpi"] would make it
    ref = PLOTS["forest"](run)
    assert figure_png(fig) == _savefig(ref)
    assert b"pHYs" in figure_png(PLOTS["rank"](run))  # the resolution is recorded, as savefig does


def test_a_canvas_that_is_not_agg_goes_through_savefig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.backend_bases import FigureCanvasBase

    run = load_run(make_fake_run(tmp_path / "run"))
    fig = PLOTS["rank"](run)
    FigureCanvasBase(fig)  # a canvas without Agg's buffer
    saved: list[dict] = []
    real = type(fig).savefig
    monkeypatch.setattr(type(fig), "savefig", lambda self, *a, **k: saved.append(k) or real(self, *a, **k))
    png = figure_png(fig)
    assert png.startswith(b"\x89PNG") and saved and saved[0]["dpi"] == PNG_DPI
