"""The report kernel's warm-up: render every section once on a small canned run directory.

A report's first notebook in a fresh kernel pays first-time costs that later ones do not: lazy
imports (xarray's netCDF backends, h5py), matplotlib's font cache, Agg renderer and the first
pass through its text, tick and layout code, the first calls of pandas' readers and of the
sections' own code. Together ~1.7 s on the example. A :class:`~.notebook.ReportKernel` runs
:func:`warm_up` as soon as it starts, while the run samples, so the user's notebook finds all of
it warm. The canned run is static package data (the shipped example's run directory without its
reports, ``tools/warm_up_run.py``), nothing from the user's run; everything displayed is
captured and dropped, nothing is written.
"""

from __future__ import annotations

import warnings
from pathlib import Path

WARM_UP_RUN = Path(__file__).resolve().parent / "warm_up_run"


def warm_up(run_dir: Path = WARM_UP_RUN) -> None:
    """Render every section of the report outline on ``run_dir`` and discard the output."""
    from IPython.utils.capture import capture_output

    from .display import show_section
    from .load import load_run
    from .plots.common import plt
    from .sections import SECTION_KEYS

    with warnings.catch_warnings(), capture_output(display=True):
        warnings.simplefilter("ignore")
        run = load_run(run_dir)
        for key in SECTION_KEYS:
            show_section(key, run)
    plt().close("all")
