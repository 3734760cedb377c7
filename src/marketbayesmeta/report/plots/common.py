"""What every plot shares: the matplotlib handle, axes in the pool's unit, labels, the watermark
of an unusable run and PNG export."""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Iterator
from typing import Any

from ..fmt import plot_label, to_float
from ..unit import Unit

COLORS = {"observed": "0.25", "theta": "tab:blue", "pooled": "tab:red", "prediction": "tab:purple",
          "triangulation": "tab:orange", "prior": "tab:orange", "posterior": "tab:blue", "material": "black",
          "flag": "tab:red"}


_THREAD = threading.local()


def plt() -> Any:
    """pyplot (the Agg backend when this process has not chosen one), or, in a thread drawing
    aside (:func:`without_pyplot`), the same calls without pyplot."""
    figures = getattr(_THREAD, "figures", None)
    if figures is not None:
        return figures
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


class _Figures:
    """The part of pyplot the plots use (``subplots``, ``close``), without pyplot: a Figure with an
    Agg canvas, which is what pyplot makes under the Agg backend, and no figure manager to close."""

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, *, sharex: Any = False, sharey: Any = False, squeeze: bool = True,
                 width_ratios: Any = None, height_ratios: Any = None, subplot_kw: Any = None, gridspec_kw: Any = None,
                 **fig_kw: Any) -> tuple[Any, Any]:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(**fig_kw)
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=squeeze, width_ratios=width_ratios,
                            height_ratios=height_ratios, subplot_kw=subplot_kw, gridspec_kw=gridspec_kw)
        return fig, axes

    @staticmethod
    def close(*_: Any) -> None:
        return None


@contextlib.contextmanager
def without_pyplot() -> Iterator[None]:
    """In this thread, :func:`plt` gives figures that pyplot never sees (plots/aside.py): the
    process's pyplot state and backend are left alone, and no GUI backend is driven from a thread."""
    _THREAD.figures = _Figures()
    try:
        yield
    finally:
        _THREAD.figures = None


def num(v: Any) -> float:
    return to_float(v)


def study_label(sid: Any, name: Any, width: int = 40) -> str:
    sid, name = str(sid or ""), str(name or "")
    return plot_label(f"{name} ({sid})" if name and name != sid else sid, width)


def _pct_tick(p: float, spread: bool) -> str:
    text = f"{abs(p):g}" if spread else (f"{p:+g}" if p else "0")
    return ("±" if spread and p else "") + text.replace("-", "\u2212") + " %"


def unit_axis(ax: Any, unit: Unit, axis: str = "x", *, spread: bool = False, label: str | None = None,
              nbins: int = 6) -> None:
    """Label ``axis`` (positions on the model scale) in the pool's unit: on log_relative the ticks
    are placed at round per-cent values (``+5 %``) through 100·(exp(x) − 1)."""
    from matplotlib.ticker import MaxNLocator

    get_lim = ax.get_xlim if axis == "x" else ax.get_ylim
    set_lim = ax.set_xlim if axis == "x" else ax.set_ylim
    set_ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    set_label = ax.set_xlabel if axis == "x" else ax.set_ylabel
    lo, hi = get_lim()
    set_lim(lo, hi)
    if unit.relative:
        plo, phi = unit.from_model(lo), unit.from_model(hi)
        ticks = [p for p in MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(plo, phi) if plo <= p <= phi]
        set_ticks([unit.to_model(p) for p in ticks], [_pct_tick(p, spread) for p in ticks])
    default = ("typical spread between studies (%)" if spread and unit.relative
               else "typical spread between studies (pp)" if spread and unit.points else unit.axis_label)
    set_label(label or default)


def watermark(fig: Any, label: str) -> None:
    """A large diagonal mark across the whole figure: the numbers are not for use."""
    fig.text(0.5, 0.5, f"{label}: NOT FOR USE", fontsize=34, color="tab:red", alpha=0.28, rotation=20,
             ha="center", va="center", weight="bold", zorder=1000)


PNG_DPI = 100


def figure_png(fig: Any) -> bytes:
    """The figure as PNG bytes at :data:`PNG_DPI`, without a Software entry; the figure is closed.

    On an Agg canvas (every plot's: :func:`plt`) the figure is drawn once, without savefig's
    extra pass over every artist to lay it out before drawing it (about a sixth of a plot's time;
    a report draws eight), and its pixels are written by Pillow: as RGB when every pixel is opaque
    (the plots' white background: the same pixels in three quarters of the bytes), at zlib level
    3 (level 6 took a third as long again for 1 % smaller files). Any other canvas goes through
    ``savefig``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buf = io.BytesIO()
    if isinstance(fig.canvas, FigureCanvasAgg):
        import numpy as np
        from PIL import Image

        if fig.dpi != PNG_DPI:
            fig.set_dpi(PNG_DPI)
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        opaque = rgba[..., 3].min() == 255
        image = Image.fromarray(np.ascontiguousarray(rgba[..., :3] if opaque else rgba))  # RGB / RGBA
        image.save(buf, format="png", dpi=(PNG_DPI, PNG_DPI), compress_level=3)
    else:
        fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    plt().close(fig)
    return buf.getvalue()


def interval_plot(run: Any, rows: list[dict[str, Any]], *, title: str, reference: float | None = None,
                  reference_label: str = "all studies", label: str | None = None) -> Any:
    """Horizontal intervals, one per row, top to bottom, on the model scale with the unit's ticks.

    A row: ``label, mean, lower, upper`` (model scale) and optionally ``color``, ``hollow`` (an
    open marker: material / flagged), ``point`` (an extra x marker, e.g. the observed estimate).
    """
    pyplot = plt()
    n = max(len(rows), 1)
    fig, ax = pyplot.subplots(figsize=(9.5, 1.3 + 0.36 * n), layout="constrained")
    for i, r in enumerate(rows):
        color = r.get("color", COLORS["theta"])
        m, lo, hi = num(r.get("mean")), num(r.get("lower")), num(r.get("upper"))
        ax.plot([lo, hi], [-i, -i], color=color, lw=2.4, alpha=0.8, solid_capstyle="butt")
        ax.plot([m], [-i], "o", color=color, ms=6, mfc="white" if r.get("hollow") else color)
        if "point" in r:
            ax.plot([num(r["point"])], [-i], "kx", ms=7, label="observed" if i == 0 else None)
    ax.set_yticks([-i for i in range(len(rows))], [plot_label(r["label"], 60) for r in rows])
    if reference is not None and reference == reference:
        ax.axvline(reference, color=COLORS["pooled"], lw=0.9, ls=":", label=reference_label)
    ax.axvline(0, color="0.6", lw=0.8, ls="--")
    ax.grid(axis="x", color="0.92")
    unit_axis(ax, run.unit, label=label)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    ax.set_title(title, fontsize=10, loc="left")
    return fig
