"""Notebook side: show a section of the outline in the executing kernel.

:func:`show` is the one display helper: it builds an item (summary, text, table or plot) and
displays it, or displays a one-line note saying why it is not shown (a missing input), or a note
recorded as a report warning (an unexpected failure; never an error output). Only static calls
reach the notebook (``R.show_section("evidence", run)``); run data is read from files.
"""

from __future__ import annotations

import base64
from typing import Any

from .fmt import md_escape
from .load import MissingInput, RunData
from .notebook import META_KEY
from .plots import ALT_TEXT, render
from .sections import TEXTS, Item, section
from .summary import build_summary, summary_html
from .tables import TABLES, frame_html


def _display(obj: Any, meta: dict[str, Any] | None = None) -> None:
    from IPython.display import display

    display(obj, metadata={META_KEY: meta} if meta else None)


def _note(text: str, failure: str | None = None) -> None:
    from IPython.display import Markdown

    _display(Markdown(f"*{md_escape(text)}*"), {"failure": failure} if failure else None)


def summary_block(run: RunData) -> str:
    try:
        png = base64.b64encode(render("forest", run)).decode("ascii")
        note = ""
    except MissingInput as exc:
        png, note = None, f"Forest plot not shown: {exc}."
    return summary_html(build_summary(run), png, note)


def _build(item: Item, run: RunData) -> tuple[Any, dict[str, Any]]:
    from IPython.display import HTML, Image, Markdown

    if item.kind == "summary":
        return HTML(summary_block(run)), {"summary": True}
    if item.kind == "text":
        return Markdown(TEXTS[item.name](run)), {}
    if item.kind == "table":
        return HTML(frame_html(TABLES[item.name](run), item.name, run.unusable and f"{run.unusable} run")), \
            {"table": item.name}
    return Image(data=render(item.name, run), format="png"), {"plot": item.name, "alt": ALT_TEXT[item.name]}


def show(item: Item, run: RunData) -> None:
    """Display ``item``, or a note saying why it is not shown."""
    try:
        obj, meta = _build(item, run)
    except MissingInput as exc:
        if not item.quiet:
            _note(f"Not shown: {exc}.")
        return
    except Exception as exc:  # a report problem becomes a note (and a warning), never an error output
        _note(f"The {item.name} {item.kind} could not be built ({type(exc).__name__}: {exc}).",
              failure=f"{item.kind} {item.name}: {type(exc).__name__}: {exc}")
        return
    _display(obj, meta)


def show_section(key: str, run: RunData) -> None:
    """Display one section of the outline: its title, its explanation and its items in order."""
    from IPython.display import Markdown

    sec = section(key)
    if sec.title:
        _display(Markdown(f"## {sec.title}" + (f"\n\n{sec.intro}" if sec.intro else "")))
    for item in sec.items:
        show(item, run)
