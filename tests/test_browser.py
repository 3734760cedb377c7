"""report.html in a real browser: Debian's chromium, headless, over the DevTools protocol
(tests/cdp.py). For the example run, a failed run, a run with every 0.5 section and a portfolio
page: no console errors, no network requests, no horizontal overflow at 1280 px, and the status
banner and the summary (headline and forest plot) within the first 900 px. Screenshots are saved
to $MBM_ARTIFACTS (default /tmp/marketbayesmeta-artifacts) and the directory is printed.

Run with ``make check-browser`` (marker ``browser``; not part of ``make check``). Where chromium is
missing the tests are skipped with a loud message, unless MBM_REQUIRE_BROWSER=1 (set by .ci/run
after it installed chromium), where they fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdp import Browser, Rendered, find_chromium
from marketbayesmeta import report as R
from report_fixture import make_fake_portfolio, make_fake_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest_plugins = ("example_run",)

WIDTH, FOLD = 1280, 900
LOUD = ("\n" + "!" * 78 + "\n!! BROWSER TEST SKIPPED: chromium is not installed, report.html was NOT checked in a\n"
        "!! real browser. Install it (apt-get install -y chromium) or run .ci/run, which does.\n" + "!" * 78 + "\n")


@pytest.fixture(scope="module")
def shots() -> Path:
    path = Path(os.environ.get("MBM_ARTIFACTS") or "/tmp/marketbayesmeta-artifacts") / "browser"
    path.mkdir(parents=True, exist_ok=True)
    sys.__stderr__.write(f"\nbrowser test artefacts (screenshots): {path}\n")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    exe = find_chromium()
    if exe is None:
        if os.environ.get("MBM_REQUIRE_BROWSER") == "1":
            pytest.fail("MBM_REQUIRE_BROWSER=1 but chromium is not installed")
        sys.__stderr__.write(LOUD)
        pytest.skip("chromium is not installed: report.html was not checked in a browser (see the message above)")
    b = Browser(exe)
    try:
        yield b
    finally:
        b.close()


def check(page: Rendered, *, summary: bool = True) -> None:
    assert page.console_errors == [], page.console_errors
    assert page.network_requests == [], page.network_requests
    lay = page.layout
    assert lay["viewport"] == WIDTH
    assert lay["scrollWidth"] <= WIDTH and lay["overflowCount"] == 0, (
        f"horizontal overflow at {WIDTH} px: page {lay['scrollWidth']} px, elements {lay['overflowing']}")
    assert lay["banner"] is not None, "no status banner"
    assert lay["banner"]["bottom"] <= FOLD, f"status banner ends at {lay['banner']['bottom']:.0f} px, below the fold"
    if summary:
        assert lay["summary"]["bottom"] <= FOLD, f"the summary ends at {lay['summary']['bottom']:.0f} px, below the fold"


def test_example_report(browser: Browser, shots: Path, example_run: Path) -> None:
    check(browser.render(example_run / "report.html", shots, "example"))


@pytest.mark.parametrize("kind", ["failed", "rich", "percentage_point"])
def test_fixture_reports(browser: Browser, shots: Path, tmp_path: Path, kind: str) -> None:
    options = {"failed": {"status": "failed"}, "rich": {"moderators": True, "justification": "calibrated MMM"},
               "percentage_point": {"scale": "percentage_point", "moderators": True}}[kind]
    run_dir = make_fake_run(tmp_path / "run", study_names=["<script>alert(1)</script>", "A very long study name "
                                                           "that goes on and on about the market and the window"],
                            **options)
    assert R.write_reports(run_dir) == []
    check(browser.render(run_dir / "report.html", shots, kind))


def test_portfolio_report(browser: Browser, shots: Path, tmp_path: Path) -> None:
    root = make_fake_portfolio(tmp_path / "portfolio")
    assert R.write_portfolio_report(root) == []
    check(browser.render(root / "portfolio_report.html", shots, "portfolio"))


def test_the_check_catches_overflow_and_a_low_banner(browser: Browser, shots: Path, tmp_path: Path) -> None:
    """The assertions above fail on a page with an unboxed wide table and a banner below the fold."""
    wide = "<table><tr>" + "".join(f"<td>column_{i}_with_a_long_name</td>" for i in range(40)) + "</tr></table>"
    page = tmp_path / "bad.html"
    page.write_text(f'<!DOCTYPE html><html><body><div style="height: 1000px">intro</div>'
                    f'<div id="mbm-summary"><div id="mbm-status-banner">banner</div></div>{wide}</body></html>',
                    encoding="utf-8")
    rendered = browser.render(page, shots, "planted-bad")
    with pytest.raises(AssertionError, match="horizontal overflow"):
        check(rendered)
    rendered.layout.update(scrollWidth=WIDTH, overflowCount=0)
    with pytest.raises(AssertionError, match="below the fold"):
        check(rendered)
