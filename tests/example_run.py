"""The shipped example, run once per test session and shared by every module that needs a real
run directory: a module loads it with ``pytest_plugins = ("example_run",)``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import EXAMPLES
from marketbayesmeta.cli import _dispatch, build_parser


@pytest.fixture(scope="session")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, exactly as shipped, run once per session. Read-only: copy it to change it."""
    root = tmp_path_factory.mktemp("example")
    shutil.copytree(EXAMPLES, root / "examples")
    assert _dispatch(["run", str(root / "examples" / "config.yaml"), "--quiet"], build_parser()) == 0
    return root / "output" / "example_geo_sales_uplift"
