"""JSON Schemas generated from the pydantic models; ``python -m marketbayesmeta.schemas specs``
rewrites the generated specs/*.schema.json (``make schema``); diff and manifest
schemas there are written by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

GENERATED = ("config", "plan", "run_status")


def schema(which: str) -> dict[str, Any]:
    if which == "config":
        from .compiler.config import Config

        return Config.model_json_schema()
    if which == "plan":
        from .plan import Plan

        return Plan.model_json_schema()
    if which == "run_status":
        from .run_status import RunStatus

        return RunStatus.model_json_schema()
    raise ValueError(which)


def schema_text(which: str) -> str:
    return json.dumps(schema(which), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for which in GENERATED:
        path = directory / f"{which}.schema.json"
        path.write_text(schema_text(which), encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "specs")):
        print(f"wrote {p}")
