"""``write_reports``: the report of one run directory, as named steps (see the package docstring).

Reads only files already in the run directory; returns warnings (for run_status.json) and never
raises for a missing or partial run. Interrupts (KeyboardInterrupt, the CLI's ``Interrupted``)
propagate: an interrupted report is an interrupted run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .html import (
    export_html,
    fallback_html,
    find_external_references,
    warm_exporter_if_cold,
    warm_exporter_meanwhile,
)
from .load import RunData, load_run
from .markdown import fallback_markdown, render_markdown
from .notebook import (
    ReportKernel,
    build_notebook,
    clean_outputs,
    execute_notebook,
    report_warnings,
    write_notebook,
)


def _step(out: list[str], what: str, fn: Callable[[], Any]) -> Any:
    """Run one step; an Exception becomes a warning ``<what>: <error>`` (interrupts propagate)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a report problem must not lose the run
        out.append(f"{what}: {type(exc).__name__}: {exc}")
        return None


def write_markdown(run: RunData) -> list[str]:
    """Step 2: analysis_report.md (a short fallback page if the full one cannot be built)."""
    out: list[str] = []
    text = _step(out, "analysis_report.md is a short fallback", lambda: render_markdown(run))
    if text is None:
        text = fallback_markdown(run, out[-1])
    _step(out, "analysis_report.md could not be written", lambda: write_atomic(run.run_dir / "analysis_report.md", text))
    return out


def write_reports(run_dir: str | Path, *, quiet: bool = True, timeout: int = 300,
                  kernel: ReportKernel | None = None, draw_aside: bool = False) -> list[str]:
    """Write analysis_report.md, report.ipynb (executed) and report.html into ``run_dir``.

    ``kernel``: the :class:`~.notebook.ReportKernel` to execute the notebook in (one a caller keeps
    for many reports, or started early); default a throwaway kernel of this report's own.
    ``draw_aside`` (with ``kernel``): this process draws the notebook's last figures meanwhile, in a
    thread, for the kernel to use (plots/aside.py); for a process with a core to spare (a single
    run), not a portfolio's worker, whose cores are busy."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return [f"report not written: {run_dir} is not a directory"]

    def say(msg: str) -> None:
        if not quiet:
            print(f"marketbayesmeta report: {msg}", file=sys.stderr)

    run = load_run(run_dir)                                                     # 1. load once
    out = write_markdown(run)                                                   # 2. Markdown
    say("analysis_report.md written")
    nb = _step(out, "report notebook could not be built", build_notebook)       # 3. build
    html_text = None
    if nb is not None:
        aside = warming = None
        if draw_aside and kernel is not None:
            from .plots.aside import Aside

            # the figures get this process's idle core first, then the exporter warms up
            aside = Aside(run_dir, kernel.aside_dir, then=warm_exporter_if_cold)
        else:
            warming = warm_exporter_meanwhile()  # on this process's idle core while the kernel works
        try:
            executed = _step(out, "report notebook execution failed",           # 4. execute
                             lambda: execute_notebook(nb, run_dir, timeout=timeout, kernel=kernel) or True)
        finally:
            if aside is not None:
                aside.finish()
            if warming is not None:
                warming.join()
        if executed:
            clean_outputs(nb)                                                   # 5. check
            out += report_warnings(nb)
            say("report.ipynb executed")
        _step(out, "report.ipynb could not be written", lambda: write_notebook(nb, run_dir / "report.ipynb"))
        html_text = _step(out, "report.html export failed",                    # 6. HTML
                          lambda: export_html(nb, title=f"marketbayesmeta report: {run.project_name}"))
    if html_text is None:
        md_path = run_dir / "analysis_report.md"
        html_text = fallback_html(out[-1] if out else "no notebook",
                                  md_path.read_text(encoding="utf-8") if md_path.is_file() else "")
    left = find_external_references(html_text)
    if left:
        out.append(f"report.html still references the network: {', '.join(left[:3])}")
    _step(out, "report.html could not be written", lambda: write_atomic(run_dir / "report.html", html_text))
    say("report.html written")
    return out
