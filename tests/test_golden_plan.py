"""Golden test: the example plan is pinned byte for byte. The test only reads the pinned file; after
a deliberate change re-pin it with ``make golden`` (tests/golden.py) and review the diff."""

from __future__ import annotations

from golden import GOLDEN, example_plan_text
from marketbayesmeta.plan import parse_plan


def test_example_plan_is_pinned() -> None:
    golden = GOLDEN.read_text(encoding="utf-8")
    text, plan_hash = example_plan_text()
    assert text == golden, "the example plan changed: review, then re-pin with make golden"
    assert parse_plan(golden).plan_hash == plan_hash
