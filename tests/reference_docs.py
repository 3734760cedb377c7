"""The generated sections of docs/reference.md, built from the code that defines them.

docs/reference.md is hand-written around blocks delimited by
``<!-- generated: NAME -->`` ... ``<!-- end generated: NAME -->``; each block is produced here from
one source of truth: the argparse parser (commands and options), the Config model (config keys),
compiler/tracker.py's column lists (tracker columns) and outputs.py (the output catalogue).
tests/test_reference_docs.py fails when a block is out of step; ``make reference`` (this file with
``--write``) rewrites them.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from marketbayesmeta.cli import build_parser
from marketbayesmeta.compiler import tracker
from marketbayesmeta.compiler.config import Config
from marketbayesmeta.outputs import CATALOGUE

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- end generated: (?P=name) -->)", re.S)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def commands() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = []
    for name, sp in sub.choices.items():
        args = [a for a in sp._actions if not isinstance(a, argparse._HelpAction)]
        usage = " ".join([f"`marketbayesmeta {name}`"] + [
            f"`{a.metavar or a.dest.upper()}{'...' if a.nargs in ('+', '*') else ''}`" for a in args if not a.option_strings])
        out += [f"### {name}", "", f"{usage}: {helps.get(name, '')}", ""]
        options = [a for a in args if a.option_strings]
        if options:
            out += ["| option | meaning | default |", "|---|---|---|"]
            for a in options:
                flag = ", ".join(f"`{o}`" for o in a.option_strings)
                if a.nargs != 0:
                    flag += f" `{a.metavar or a.dest.upper()}`"
                default = "" if a.default in (None, False) else f"`{a.default}`"
                out.append(f"| {flag} | {_cell(a.help or '')} | {default} |")
            out.append("")
        positional_choices = [a for a in args if not a.option_strings and a.choices]
        for a in positional_choices:
            out += [f"`{a.dest}`: one of {', '.join(f'`{c}`' for c in a.choices)} (default `{a.default}`).", ""]
    return "\n".join(out)


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        return " \\| ".join(parts) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"list of {_type(args[0])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``Priors``, ``list[PriorSpec] | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for a in typing.get_args(annotation):
        found = _model(a)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list or any(_is_list(a) for a in typing.get_args(annotation))


def _walk(model: type[BaseModel], prefix: str, rows: list[str]) -> None:
    for name, f in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _model(f.annotation)
        if f.is_required():
            default = "required"
        elif f.default is PydanticUndefined and f.default_factory is not None:
            default = f"`{f.default_factory()}`"  # type: ignore[call-arg]
        elif sub is not None and f.default is not None and f.default is not PydanticUndefined:
            default = "(section)"
        elif f.default is None:
            default = "unset"
        else:
            default = f'`"{f.default}"`' if isinstance(f.default, str) else f"`{f.default}`"
        rows.append(f"| `{key}` | {_type(f.annotation)} | {default} | {_cell(f.description or '')} |")
        if sub is not None:
            _walk(sub, f"{key}[]." if _is_list(f.annotation) else f"{key}.", rows)


def config_keys() -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    _walk(Config, "", rows)
    return "\n".join(rows) + "\n"


def tracker_columns() -> str:
    groups = (("required", tracker.REQUIRED_COLUMNS), ("uncertainty (at least one way per row)",
                                                        tracker.UNCERTAINTY_COLUMNS),
              ("optional text", tracker.TEXT_COLUMNS), ("optional dates (ISO)", tracker.DATE_COLUMNS))
    rows = ["| columns | kind |", "|---|---|"]
    rows += [f"| {', '.join(f'`{c}`' for c in cols)} | {kind} |" for kind, cols in groups]
    rows += ["", f"Units: {', '.join(f'`{u}`' for u in tracker.UNITS)}. Scenario levels: "
             f"{', '.join(f'`{s}`' for s in tracker.SCENARIO_LEVELS)}. Other columns are kept and ignored."]
    return "\n".join(rows) + "\n"


def outputs() -> str:
    rows = ["| file | scope | written | content | columns |", "|---|---|---|---|---|"]
    for f in CATALOGUE:
        cols = ", ".join(f"`{c}`" for c in f.columns) if f.columns else ""
        rows.append(f"| `{f.name}` | {f.scope} | {_cell(f.when)} | {_cell(f.description)} | {cols} |")
    return "\n".join(rows) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "commands": commands, "config_keys": config_keys, "tracker_columns": tracker_columns, "outputs": outputs,
}


def blocks(text: str) -> dict[str, str]:
    return {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + "\n" + GENERATORS[m.group("name")]().strip("\n") + "\n\n" + m.group(4),
                     text)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/reference_docs.py --write   (rewrites the generated blocks of docs/reference.md)")
    REFERENCE.write_text(regenerate(REFERENCE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote the generated blocks of {REFERENCE}")
