"""The pinned example plan (tests/data/golden/example_plan.json): how it is produced, and the
command that re-pins it after a deliberate change (``make golden``, i.e. ``python tests/golden.py``;
review the diff before committing). The test (test_golden_plan.py) only reads the file."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "example_plan.json"


def example_plan_text() -> tuple[str, str]:
    """(plan text as written next to its run directory, plan hash) of the shipped example."""
    from marketbayesmeta.api import compile_config
    from marketbayesmeta.plan import plan_to_text

    plan = compile_config(EXAMPLES / "config.yaml")
    return plan_to_text(plan, plan.locations.output_directory), plan.plan_hash


def main() -> int:
    text, plan_hash = example_plan_text()
    old = GOLDEN.read_text(encoding="utf-8") if GOLDEN.exists() else None
    if old == text:
        print(f"{GOLDEN.name}: unchanged (plan hash {plan_hash})")
        return 0
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(text, encoding="utf-8")
    print(f"{GOLDEN.name}: re-pinned (plan hash {plan_hash}); review it with git diff {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
