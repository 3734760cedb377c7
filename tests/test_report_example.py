"""The report of a real run: the shipped example (run once per session, tests/example_run.py)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from html_page import Page
from marketbayesmeta.report.sections import SECTIONS
from marketbayesmeta.report.tables import table_title
from marketbayesmeta.report.unit import Unit

pytestmark = pytest.mark.slow
pytest_plugins = ("example_run",)

BANNERS = ("ArviZ is undergoing", "FutureWarning", "DeprecationWarning", "UserWarning")


def _mu(run_dir: Path) -> dict[str, str]:
    with (run_dir / "pooled_summary.csv").open(encoding="utf-8") as fh:
        return next(r for r in csv.DictReader(fh) if r["parameter"] == "mu")


def test_example_report_shows_each_table_once(example_run: Path) -> None:
    page = Page(example_run / "report.html")
    counts = Counter(page.tables)
    assert max(counts.values()) == 1, counts
    expected = {"readiness", "rows", "duplicates", "study_effects", "prior_sensitivity", "uncertainty_sensitivity",
                "priors", "reportable_checklist", "diagnostics_by_fit", "prior_diagnostics", "ppc", "pooled_summary",
                "future_true_effect", "notes", "provenance", "files"}
    assert expected <= set(counts), expected - set(counts)
    md = (example_run / "analysis_report.md").read_text(encoding="utf-8")
    for name in counts:
        assert md.count(table_title(name).replace("_", "\\_")) <= 1, name


def test_example_summary_is_in_the_business_unit(example_run: Path) -> None:
    mu = _mu(example_run)
    head = Unit("log_relative").estimate(float(mu["mean_pct"]), float(mu["lower_pct"]), float(mu["upper_pct"]), 0.95)
    page = Page(example_run / "report.html")
    assert head in page.joined
    status = json.loads((example_run / "run_status.json").read_text(encoding="utf-8"))
    assert status["finished_at"] and f"finished at {status['finished_at']}" in page.joined
    raw = (example_run / "report.html").read_text(encoding="utf-8")
    assert raw.index(head) < raw.index("Caveats and what to check next")
    md = (example_run / "analysis_report.md").read_text(encoding="utf-8")
    assert re.findall(r"^## (.+)$", md, re.M) == [s.title for s in SECTIONS if s.title]
    assert md.index(head) < md.index("## Caveats")


def test_no_library_warning_reaches_the_report(example_run: Path) -> None:
    for name in ("report.html", "analysis_report.md", "report.ipynb"):
        text = (example_run / name).read_text(encoding="utf-8")
        assert not [b for b in BANNERS if b in text], name
