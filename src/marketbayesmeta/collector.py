"""The garbage collector's thresholds in the processes this package runs itself.

A run imports PyMC, PyTensor, ArviZ, SciPy, pandas and matplotlib: about half a million objects
that live as long as the process. With CPython's default thresholds (700, 10, 10) the cyclic
collector runs ~1,300 times while they load, nine of them full collections over everything loaded
so far: 1.3-1.7 s of CPU in the CLI's process during the example's run (measured with
``gc.callbacks``; the first generation fills up every 700 allocations). :data:`THRESHOLDS` lets the
first generation hold 10,000 objects and keeps CPython's ratios between the generations: ~100
collections, none of them full, ~0.5 s (50,000 saved no more). Garbage cycles wait a little longer
to be freed; reference counting, which frees almost everything, is unchanged.

Applied only where the process is ours: the CLI (:func:`marketbayesmeta.cli.main`), the local
workers of a portfolio run (spawned: a fresh interpreter), the report's notebook kernel (its
warm-up) and, by inheritance, every process they fork. Never on import: a notebook user's process
or a Dask worker keeps its own settings.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 10)

# The same, as the statement the report kernel runs first (report/notebook.py's WARM_UP).
KERNEL_STATEMENT = f"import gc as _gc; _gc.set_threshold(*{THRESHOLDS!r}); del _gc"


def tune_collector() -> None:
    """Set :data:`THRESHOLDS` for this process (and the processes it forks later)."""
    gc.set_threshold(*THRESHOLDS)
