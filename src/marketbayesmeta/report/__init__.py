"""The report layer: a run directory in, ``analysis_report.md``, ``report.ipynb`` and
``report.html`` out (and ``portfolio_report.html`` for a portfolio run). It reads nothing but the
files of the run directory (never the compiler, the runtime or the CLI).

Steps of :func:`write_reports`, in order (``write.py``):

1. **load** (``load.py``): read the run directory once into one :class:`RunData` (run_status.json,
   the plan through :class:`PlanView`, the CSVs of the output catalogue, posterior.nc on demand);
   missing or unreadable files are listed, never fatal;
2. **markdown** (``markdown.py``): analysis_report.md from the outline in ``sections.py``;
3. **build** (``notebook.py``): report.ipynb from the static template (no run data in any cell);
4. **execute** (``notebook.py``): a private kernel (files inside the run directory, removed after)
   runs ``R.show_section(...)`` for each section; ``display.py`` shows each item or says why not;
5. **check** (``notebook.py``): interrupts re-raise, library stderr is dropped, failures become
   run warnings;
6. **html** (``html.py``): report.html, offline (nothing fetched), wide tables scroll in their box.

A :class:`~.notebook.ReportKernel` warms up as soon as it starts (``warm_up.py``): it renders every
section once on a small canned run, so the first notebook finds matplotlib and the readers warm.
While a single run's MCMC check samples, its kernel draws the figures the exact tables (written before the
check) allow (``prerender.py``); the notebook reuses each only if the files it was drawn from are
unchanged (``plots/cache.py``).

What a section shows comes from: ``summary.py`` (status banner and headline), ``prose.py`` and
``findings.py`` (reporting language), ``tables.py`` (each table once), ``plots/`` (forest, prior
versus posterior, sensitivity, influence and history, meta-regression, sampler), all formatting
through ``fmt.py`` (numbers, escaping) and ``unit.py`` (the pool's business unit).
:func:`write_portfolio_report` (``portfolio.py``) writes a portfolio run's overview page.
"""

from __future__ import annotations

from .display import show, show_section
from .fmt import format_number, md_escape
from .html import find_external_references, strip_external_references
from .load import MissingInput, PlanView, RunData, load_run
from .notebook import build_notebook
from .portfolio import write_portfolio_report
from .write import write_reports

__all__ = [
    "MissingInput", "PlanView", "RunData", "build_notebook", "find_external_references", "format_number",
    "load_run", "md_escape", "show", "show_section", "strip_external_references", "write_portfolio_report",
    "write_reports",
]
