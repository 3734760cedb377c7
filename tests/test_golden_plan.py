"""Golden test: the example plan is pinned byte for byte (set MBM_UPDATE_GOLDEN=1 to re-pin after a
deliberate change, and review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import EXAMPLES
from marketbayesmeta.api import compile_config
from marketbayesmeta.plan import parse_plan, plan_to_text

GOLDEN = Path(__file__).parent / "data" / "golden" / "example_plan.json"


def test_example_plan_is_pinned() -> None:
    plan = compile_config(EXAMPLES / "config.yaml")
    text = plan_to_text(plan, plan.locations.output_directory)
    if os.environ.get("MBM_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    golden = GOLDEN.read_text(encoding="utf-8")
    assert text == golden, "the example plan changed: review, then re-pin with MBM_UPDATE_GOLDEN=1"
    assert parse_plan(golden).plan_hash == plan.plan_hash
