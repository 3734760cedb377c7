"""Session fixture and terminal summary of the statistical suite (helpers: stat_support.py)."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stat_support import RESULTS, FitCache  # noqa: E402


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    """Under pytest-xdist, a worker hands its logged results to the controller (which prints them)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["statistical_results"] = json.dumps(RESULTS)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: only called when pytest-xdist runs the suite
def pytest_testnodedown(node, error):  # noqa: ARG001
    """Controller side of pytest_sessionfinish: merge a finished worker's results, section by section."""
    for section, lines in json.loads(getattr(node, "workeroutput", {}).get("statistical_results", "{}")).items():
        RESULTS.setdefault(section, []).extend(lines)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if not RESULTS:
        return
    terminalreporter.section("statistical validation results")
    for section, lines in RESULTS.items():
        terminalreporter.write_line(f"[{section}]")
        for line in lines:
            terminalreporter.write_line("  " + line)


@pytest.fixture(scope="session")
def fits() -> FitCache:
    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    for name in ("pymc", "pytensor"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return FitCache()
