"""The report's tables: each built once here, shown once (in report.html and analysis_report.md).

A table of a CSV artefact shows the file's columns in the catalogue's order (outputs.py), with any
newer column the catalogue does not list yet appended. Cells are escaped; numbers use
:func:`~.fmt.format_number`; on a FAILED/BLOCKED run every number carries the ⚠ marker. In HTML a
table sits in its own scrolling box, so a wide table never widens the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from ..outputs import CSV_FILES, FILES
from .facts import diagnostics_by_fit, failed_checks, reportable_checklist
from .fmt import MdSafe, format_number, md_escape
from .load import MissingInput, RunData

MARK = "⚠"


def csv_frame(run: RunData, name: str) -> pd.DataFrame:
    """CSV ``name`` with its columns in catalogue order (unknown, newer columns last)."""
    df = run.require(name)
    known = [c for c in FILES[name].columns if c in df.columns]
    return df[known + [c for c in df.columns if c not in known]]


def _nonempty(df: pd.DataFrame | None, why: str) -> pd.DataFrame:
    if df is None or df.empty:
        raise MissingInput(why)
    return df


def priors_table(run: RunData) -> pd.DataFrame:
    priors = run.priors()
    return pd.DataFrame([{"prior": k, "value": v.get("value"), "provenance": v.get("provenance", ""),
                          **{kk: vv for kk, vv in v.items() if kk not in ("value", "provenance")}}
                         for k, v in priors.items()])


def duplicates_table(run: RunData) -> pd.DataFrame:
    dups = run.plan.duplicates()
    if not dups:
        raise MissingInput("no duplicate or possible-duplicate rows were recorded in the plan"
                           if run.plan.present else run.missing_reason("plan.json"))
    return pd.DataFrame([{"kind": d.get("kind", ""), "study_ids": ", ".join(map(str, d.get("study_ids") or [])),
                          "rows": ", ".join(map(str, d.get("rows") or [])), "message": d.get("message", "")}
                         for d in dups])


def notes_table(run: RunData) -> pd.DataFrame:
    notes = run.plan.notes()
    if not notes:
        raise MissingInput("no notes recorded in the plan" if run.plan.present else run.missing_reason("plan.json"))
    return pd.DataFrame(notes)


def provenance_table(run: RunData) -> pd.DataFrame:
    plan = run.plan
    rows = [
        ("project", run.project_name), ("pool", run.pool_label), ("status", run.status_name),
        ("exit code", run.status_value("exit_code")),
        ("engine", run.status_value("engine")),
        ("plan hash", run.status_value("plan_hash") or plan.plan_hash),
        ("pool hash", run.status_value("pool_hash")),
        ("package version", run.status_value("package_version") or plan.package_version),
        ("started at", run.status_value("started_at")), ("finished at", run.status_value("finished_at")),
        ("executed with --allow-stale", run.status_value("allow_stale")),
        ("stale sources", ", ".join(map(str, run.status_value("stale_sources") or [])) or "none"),
    ]
    for name, src in plan.sources().items():
        rows.append((f"{name} source", f"{src.get('name', '')} (sha256 {str(src.get('sha256', ''))[:12]}…)"))
    for lib, ver in (run.status_value("versions") or {}).items():
        rows.append((f"{lib} version", ver))
    shown = {True: "yes", False: "no"}
    return pd.DataFrame([{"item": k, "value": shown[v] if isinstance(v, bool) else str(v)}
                         for k, v in rows if v is not None])


def files_table(run: RunData) -> pd.DataFrame:
    rows = []
    for n in ("run_status.json", "plan.json", *CSV_FILES, "posterior.nc"):
        present = (run.run_dir / n).is_file()
        note = run.problem(n) or ("" if present else run.missing_reason(n))
        rows.append({"file": n, "present": "yes" if present else "no", "note": note})
    return pd.DataFrame(rows)


CSV_OF = {name: f"{name}.csv" for name in ("readiness", "heterogeneity", "model_comparison", "study_effects",
                                             "prior_sensitivity", "uncertainty_sensitivity", "triangulation",
                                             "influence", "cumulative", "moderators", "prior_diagnostics", "ppc",
                                             "pooled_summary")}
CSV_OF.update(rows="effect_preparation.csv", future_true_effect="future_true_effect_summary.csv")
TITLES = {
    "duplicates": "Duplicate groups recorded in the plan",
    "priors": "Priors (model scale) and where they come from",
    "reportable_checklist": "Reportability conditions as the files show them (run_status.json decides)",
    "diagnostics_by_fit": "Sampler diagnostics per fit: worst value of each check (diagnostics.csv)",
    "failed_checks": "Failed diagnostic checks",
    "notes": "Notes recorded in the plan (shown as text, never executed)",
    "provenance": "Provenance",
    "files": "Files of the run directory",
    "portfolio": "portfolio.csv: one row per pool (estimates in each pool's own unit)",
}


def _csv(name: str) -> Callable[[RunData], pd.DataFrame]:
    return lambda run: csv_frame(run, name)


TABLES: dict[str, Callable[[RunData], pd.DataFrame]] = {name: _csv(file) for name, file in CSV_OF.items()}
TABLES.update({
    "duplicates": duplicates_table,
    "priors": priors_table,
    "reportable_checklist": reportable_checklist,
    "diagnostics_by_fit": lambda run: _nonempty(diagnostics_by_fit(run), run.missing_reason("diagnostics.csv")),
    "failed_checks": lambda run: _nonempty(failed_checks(run), "no diagnostic check failed"),
    "notes": notes_table,
    "provenance": provenance_table,
    "files": files_table,
})


def table_title(name: str) -> str:
    if name in CSV_OF:
        f = FILES[CSV_OF[name]]
        return f"{f.name}: {f.description}"
    return TITLES.get(name, name.replace("_", " "))


def _cell(value: Any, mark: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value) + (f" {MARK}" if mark else "")
    return str(value)


def display_cells(df: pd.DataFrame, mark: bool) -> pd.DataFrame:
    """Every cell as display text (numbers by the table rule, ⚠ on an unusable run)."""
    return pd.DataFrame({c: [_cell(v, mark) for v in df[c]] for c in df.columns}, columns=list(df.columns))


def _td(value: Any, text: str) -> str:
    num = isinstance(value, int | float) and not isinstance(value, bool) and text != ""
    cls = "mbm-num" if num else ("mbm-long" if len(text) > 40 else "mbm-text")
    return f'<td class="{cls}">{html.escape(text)}</td>'


def frame_html(df: pd.DataFrame, name: str, marker: str = "") -> str:
    """A DataFrame as an HTML table (every cell escaped; numbers right-aligned, long text wrapped)
    in its own horizontally scrolling box, under its title."""
    cells = display_cells(df, bool(marker))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cells.columns)
    body = "".join("<tr>" + "".join(_td(v, t) for v, t in zip(raw, shown, strict=True)) + "</tr>"
                   for raw, shown in zip(df.itertuples(index=False), cells.itertuples(index=False), strict=True))
    caption = (f'<p class="mbm-nfu-caption">{MARK} {html.escape(marker)}: no number in this table is a '
               "result for use.</p>" if marker else "")
    title = f'<p class="mbm-caption"><strong>{html.escape(table_title(name))}</strong></p>'
    return (f'{title}<div class="mbm-scroll" data-table="{html.escape(name)}">{caption}'
            f'<table class="mbm-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')


def md_table(df: pd.DataFrame | None, marker: str = "", name: str = "") -> MdSafe:
    """A DataFrame as a Markdown table with every cell escaped."""
    if df is None or df.empty:
        return MdSafe("")
    cells = display_cells(df, bool(marker))
    lines = [f"**{md_escape(table_title(name))}**\n"] if name else []
    lines += ["| " + " | ".join(md_escape(c) for c in cells.columns) + " |",
             "|" + "|".join("---" for _ in cells.columns) + "|"]
    for _, r in cells.iterrows():
        lines.append("| " + " | ".join(md_escape(v) for v in r) + " |")
    if marker:
        lines.append(f"\n{MARK} {md_escape(marker)}: no number in this table is a result for use.")
    return MdSafe("\n".join(lines))
