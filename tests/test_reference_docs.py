"""The project documents itself: docs/reference.md is in step with the code, and the README and
docs link only to files inside the repository."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import reference_docs

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("name", sorted(reference_docs.GENERATORS))
def test_reference_section_is_in_step_with_the_code(name: str) -> None:
    blocks = reference_docs.blocks(reference_docs.REFERENCE.read_text(encoding="utf-8"))
    assert name in blocks, f"docs/reference.md has no generated block {name!r}"
    expected = "\n" + reference_docs.GENERATORS[name]().strip("\n") + "\n\n"
    assert blocks[name] == expected, f"docs/reference.md's {name} section is out of date: run make reference"


def test_reference_names_every_command_option_key_column_and_file() -> None:
    text = reference_docs.REFERENCE.read_text(encoding="utf-8")
    from marketbayesmeta.compiler import tracker
    from marketbayesmeta.compiler.config import Config
    from marketbayesmeta.outputs import CATALOGUE

    for f in CATALOGUE:
        assert f"`{f.name}`" in text
    for col in (*tracker.REQUIRED_COLUMNS, *tracker.UNCERTAINTY_COLUMNS, *tracker.TEXT_COLUMNS, *tracker.DATE_COLUMNS):
        assert f"`{col}`" in text
    for key in Config.model_fields:
        assert f"| `{key}` |" in text
    assert "`--allow-stale`" in text and "### schema" in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_link_only_inside_the_repository(page: Path) -> None:
    if not page.is_file():
        pytest.skip(f"{page.name} does not exist")
    text = page.read_text(encoding="utf-8")
    assert "../shared" not in text and not re.search(r"\bSPEC\b", text), f"{page.name} points outside the repository"
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http(s):, mailto: ... are not files
            continue
        path = (page.parent / target).resolve()
        assert path.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        assert path.exists(), f"{page.name} links to a missing file: {target}"


def test_validation_snapshot_layout(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("validation_snapshot", ROOT / "tools" / "validation_snapshot.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    import datetime as dt

    results = [{"target": "check", "ok": True, "seconds": 61.2, "summary": "312 passed in 61s", "tail": []},
               {"target": "check-statistical", "ok": False, "seconds": 600, "summary": "1 failed, 40 passed",
                "tail": ["E  assert 4.2 < 4"]},
               {"target": "bench", "ok": True, "seconds": 300, "summary": "", "tail": ["overhead 0.92x"]}]
    text = mod.render(results, dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC))
    assert "2026-12-01 09:30 UTC" in text
    assert "| `make check` | passed | 61 s | 312 passed in 61s |" in text
    assert "| `make check-statistical` | **FAILED** |" in text and "E  assert 4.2 < 4" in text
    assert "overhead 0.92x" in text
    assert mod.SUMMARY.match("==== 3 passed, 1 skipped in 2.1s ====").group(1) == "3 passed, 1 skipped in 2.1s"
