"""The report kernel's warm-up: render every section once on a small canned run directory.

A report's first notebook in a fresh kernel pays first-time costs that later ones do not: lazy
imports (xarray's netCDF backends, h5py), matplotlib's font cache, Agg renderer and the first
pass through its text, tick and layout code, the first calls of pandas' readers and of the
sections' own code. Together ~1.7 s on the example. A :class:`~.notebook.ReportKernel` imports
the libraries (:func:`load_libraries`) as soon as it starts and runs :func:`warm_up` while the
run compiles its model and samples, so the user's notebook finds all of it warm. The canned run
is static package data (the shipped example's run directory without its reports,
``tools/warm_up_run.py``), nothing from the user's run; everything displayed is captured and
dropped, nothing is written.

A single run's kernel first draws that run's own figures ahead (report/prerender.py), then shows
the canned run's texts and tables and reads its posterior, but draws none of its figures: the
figures still to come (those of the MCMC check) are drawn once, in the notebook, and drawing them
on the canned run too took ~1 s of CPU while the run's check sampled on both cores; what their
first drawing pays beyond the second (the posterior's reader, the first figure's set-up) is paid
here. A portfolio's kernel, which writes many reports, draws every figure of the canned run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

WARM_UP_RUN = Path(__file__).resolve().parent / "warm_up_run"


def load_libraries() -> None:
    """Import what every report notebook uses (sent to a kernel as soon as it starts)."""
    from . import display, prerender  # noqa: F401 - display loads the tables, plots and run reader
    from .plots.common import plt

    plt()


def warm_up(ahead: str | Path | None = None, canned: Path = WARM_UP_RUN) -> None:
    """Render every section of the report outline on the canned run ``canned`` and discard the
    output. With ``ahead`` (a run directory whose exact tables are written, its MCMC check still
    to come) that run's figures are drawn ahead first (report/prerender.py) and no plot is drawn
    on the canned run, whose posterior is read instead: CPU the run's check would be short of
    (see the module's docstring)."""
    from IPython.utils.capture import capture_output

    from .display import show
    from .load import load_run
    from .plots.common import plt
    from .prerender import prerender
    from .sections import SECTION_KEYS, section

    with warnings.catch_warnings(), capture_output(display=True):
        warnings.simplefilter("ignore")
        if ahead is not None:
            prerender(ahead)
        run = load_run(canned)
        if ahead is not None:
            run.posterior()  # the reader's imports and first read; the figures are left to the notebook
        for key in SECTION_KEYS:
            for item in section(key).items:
                if ahead is None or item.plot is None:
                    show(item, run)
    plt().close("all")
