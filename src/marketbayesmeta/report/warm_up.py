"""The report kernel's warm-up: render every section once on a small canned run directory.

A report's first notebook in a fresh kernel pays first-time costs that later ones do not: lazy
imports (xarray's netCDF backends, h5py), matplotlib's font cache, Agg renderer and the first
pass through its text, tick and layout code, the first calls of pandas' readers and of the
sections' own code. Together ~1.7 s on the example. A :class:`~.notebook.ReportKernel` imports
the libraries (:func:`load_libraries`) as soon as it starts and runs :func:`warm_up` while the
run compiles its model and samples, so the user's notebook finds all of it warm. The canned run
is static package data (the shipped example's run directory without its reports,
``tools/warm_up_run.py``), nothing from the user's run; everything displayed is captured and
dropped, nothing is written. A single run's kernel first draws that run's own figures ahead
(report/prerender.py) and skips those plots on the canned run.
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
    to come) that run's figures are drawn ahead first (report/prerender.py) and their plots are
    skipped on the canned run: their code is warm already, and drawing them twice is CPU the
    run's check would be short of."""
    from IPython.utils.capture import capture_output

    from .display import show
    from .load import load_run
    from .plots.common import plt
    from .prerender import prerender
    from .sections import SECTION_KEYS, section

    with warnings.catch_warnings(), capture_output(display=True):
        warnings.simplefilter("ignore")
        drawn = set(prerender(ahead)) if ahead is not None else set()
        run = load_run(canned)
        for key in SECTION_KEYS:
            for item in section(key).items:
                if item.plot not in drawn:
                    show(item, run)
    plt().close("all")
