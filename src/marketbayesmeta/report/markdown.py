"""analysis_report.md: the outline of :mod:`.sections` as Markdown, in the same order as
report.html (plots are in report.html only). Every value is escaped Markdown; a table that
cannot be shown says why in one line."""

from __future__ import annotations

from typing import Any

from .fmt import REVIEW_NOTE, MdSafe, format_number, md_escape
from .load import MissingInput, RunData
from .notebook import TEMPLATES
from .sections import SECTIONS, TEXTS, Item
from .summary import build_summary, summary_markdown
from .tables import TABLES, md_table

MARKDOWN_TEMPLATE = "analysis_report.md.j2"


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, MdSafe):
        return value
    if isinstance(value, float):
        return format_number(value)
    return md_escape(value)


def _jinja_env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=False, undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, finalize=_finalize,
    )


def _block(item: Item, run: RunData) -> MdSafe | None:
    try:
        if item.kind == "summary":
            return summary_markdown(build_summary(run))
        if item.kind == "text":
            return TEXTS[item.name](run)
        if item.kind == "table":
            marker = f"{run.unusable} run" if run.unusable else ""
            return md_table(TABLES[item.name](run), marker, item.name)
    except MissingInput as exc:
        return None if item.quiet else MdSafe(f"*Not shown: {md_escape(exc)}.*")
    return None  # plots: report.html


def markdown_context(run: RunData) -> dict[str, Any]:
    sections = []
    for sec in SECTIONS:
        blocks = [b for b in (_block(i, run) for i in sec.items) if b]
        sections.append({"title": sec.title, "intro": MdSafe(md_escape(sec.intro)) if sec.intro else "",
                         "blocks": blocks})
    return {"project_name": run.project_name, "review_note": REVIEW_NOTE, "sections": sections}


def render_markdown(run: RunData) -> str:
    return _jinja_env().get_template(MARKDOWN_TEMPLATE).render(**markdown_context(run))


def fallback_markdown(run: RunData, error: str) -> str:
    lines = [f"# Analysis report: {md_escape(run.project_name)}", "",
             f"The full report could not be written ({md_escape(error)}).", "",
             f"- Status: {md_escape(run.status_name)}",
             f"- Reportable: {md_escape(run.reportable)}"]
    lines += [f"- Reason: {md_escape(r['code'])}: {md_escape(r['message'])}" for r in run.reasons]
    lines += ["", f"This report is {REVIEW_NOTE}.", ""]
    return "\n".join(lines)
