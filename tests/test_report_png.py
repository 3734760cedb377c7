"""figure_png (report/plots/common.py) draws a figure once and writes the pixels savefig would
have written: the same image for every plot, marked or not, in pyplot's figures and in those
drawn without pyplot; RGB when every pixel is opaque, RGBA otherwise; savefig for a canvas that
is not Agg."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def _same_image(ours: bytes, saved: bytes) -> None:
    image = Image.open(io.BytesIO(ours))
    assert image.info.get("dpi") and round(image.info["dpi"][0]) == PNG_DPI  # resolution recorded
    assert "Software" not in image.info
    np.testing.assert_array_equal(_pixels(ours), _pixels(saved))


@pytest.mark.parametrize("kind", ["usable", "failed", "moderators"])
def test_every_plot_is_the_image_savefig_writes(tmp_path: Path, kind: str) -> None:
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
        png = figure_png(a)
        assert Image.open(io.BytesIO(png)).mode == "RGB", name  # white background: no alpha channel
        _same_image(png, _savefig(b))
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
    _same_image(figure_png(fig), _savefig(PLOTS["forest"](run)))


def test_a_figure_with_transparent_pixels_keeps_its_alpha(tmp_path: Path) -> None:
    run = load_run(make_fake_run(tmp_path / "run"))
    a, b = PLOTS["rank"](run), PLOTS["rank"](run)
    for fig in (a, b):
        fig.patch.set_alpha(0.0)
    png = figure_png(a)
    assert Image.open(io.BytesIO(png)).mode == "RGBA"
    _same_image(png, _savefig(b))
    assert _pixels(png)[..., 3].min() < 255


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
