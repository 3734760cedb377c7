"""Drawing a run's figures ahead of its notebook, while the run's MCMC check samples.

With ``reporting.summaries: exact`` a run writes every table but the sensitivity tables before it
samples (runtime/numbers.py). A single run's report kernel has little else to do then (a
portfolio's workers keep every core busy: their kernels are not asked): the runtime asks it to
warm up with that run (:meth:`~.notebook.ReportKernel.warm_up`), and the warm-up first runs
:func:`prerender`, which draws every plot of the outline that those files allow and keeps them
(plots/cache.py), before the sampling starts. When the notebook runs after
the check, each plot whose files are unchanged is reused, byte for byte the figure it would draw;
the others (the sampler's trace and rank plots, the sensitivity plot, any whose inputs changed,
all of them in an unusable run) are drawn then. What the notebook shows is the same either way
(tests/test_report_prerender.py); only when the drawing happens differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..outputs import CSV_FILES
from .load import load_run
from .plots import cache, draw
from .plots.common import plt
from .sections import SECTIONS

# Every file a plot may read (the plan files are in every snapshot: plots/cache.py).
INPUTS = (*CSV_FILES, "run_status.json", "posterior.nc")


def plot_names() -> list[str]:
    """The plots of the outline in the order the notebook draws them (the summary's forest plot
    first), each once."""
    return list(dict.fromkeys(item.plot for sec in SECTIONS for item in sec.items if item.plot))


def drawn_from_files(run_dir: Path, names: list[str] | tuple[str, ...], stop: Callable[[], bool] = lambda: False,
                     ) -> Iterator[tuple[str, set[str], dict[str, str | None], bytes]]:
    """Draw plots ``names`` of ``run_dir`` (unmarked) from its files as they are now; yields each
    drawn plot's name, the files it read, the snapshot of the files' digests taken before the run
    was read (plots/cache.py) and its PNG. Nothing more is yielded once a file differs from that
    snapshot, or once ``stop()``; a plot that cannot be drawn (its inputs not written yet, a failure)
    is skipped: the notebook draws it, and says what went wrong."""
    files = cache.snapshot(run_dir, INPUTS)
    run = load_run(run_dir)
    for name in names:
        if stop() or cache.snapshot(run_dir, INPUTS) != files:
            return
        reads = run.track()
        try:
            png = draw(name, run, mark=False)
        except Exception:  # noqa: BLE001 - missing inputs (not written yet) or a failure: the notebook says
            plt().close("all")  # also a figure whose export failed
            continue
        yield name, reads, files, png


def prerender(run_dir: str | Path) -> list[str]:
    """Draw the outline's plots of ``run_dir`` that its files allow into the cache (emptied first);
    returns the names of those kept. A plot that cannot be drawn yet is left for the notebook, and
    if a file changed while the run directory was read nothing is kept."""
    run_dir = Path(run_dir)
    cache.clear()
    return [name for name, reads, files, png in drawn_from_files(run_dir, plot_names())
            if cache.store(name, run_dir, reads, files, png)]
