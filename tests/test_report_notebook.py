"""The executed report (notebook kernel, HTML export) of fake 0.5 run directories: safety (user text
is data, escaped, never code; nothing from the network), each table once, failed and blocked runs
marked, the kernel's files inside the run directory and gone afterwards."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from html_page import Page
from marketbayesmeta import report as R
from marketbayesmeta.outputs import REPORT_FILES
from marketbayesmeta.report import notebook
from marketbayesmeta.report.plots import PLOTS
from marketbayesmeta.report.sections import SECTIONS
from report_fixture import make_fake_run

pytestmark = pytest.mark.slow

SCRIPT_NAME = "<script>alert(1)</script>"
CODE_NOTE = '"); import os; os.system("touch pwned") #'
JUSTIFICATION = "MMM <img src=x onerror=alert(2)> calibrated against 2024 geo tests"
LEVEL = "<b>social</b> $y$"  # a moderator level (config/tracker text)
WHY = "unit <i>pp</i> | cannot be converted"  # triangulation.csv's why


def _edit_csv(path: Path, column: str, old: str, new: str) -> None:
    import csv

    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    for r in rows:
        r[column] = r[column].replace(old, new)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _outputs(run_dir: Path) -> list[dict]:
    nb = json.loads((run_dir / "report.ipynb").read_text(encoding="utf-8"))
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], Path, list[Path]]:
    base = tmp_path_factory.mktemp("report_full")
    run_dir = make_fake_run(base / "run", moderators=True, study_names=[SCRIPT_NAME, "$x$ \\bad mathtext", "Geo | 3 *"],
                            project_notes=CODE_NOTE, row_note=CODE_NOTE, justification=JUSTIFICATION)
    _edit_csv(run_dir / "moderators.csv", "level", "social", LEVEL)
    _edit_csv(run_dir / "triangulation.csv", "why", "unit percentage_point cannot be converted to the pool's scale", WHY)
    kernel_dirs: list[Path] = []
    real = notebook.tempfile.mkdtemp

    def spy(*args: object, **kwargs: object) -> str:
        path = real(*args, **kwargs)  # type: ignore[arg-type]
        kernel_dirs.append(Path(path))
        return path

    cwd = os.getcwd()
    os.chdir(base)  # a clean working directory to look for 'pwned' in
    notebook.tempfile.mkdtemp = spy  # type: ignore[assignment]
    try:
        warnings = R.write_reports(run_dir)
    finally:
        notebook.tempfile.mkdtemp = real  # type: ignore[assignment]
        os.chdir(cwd)
    return run_dir, warnings, base, kernel_dirs


def test_notebook_executes_without_errors(full_run: tuple[Path, list[str], Path, list[Path]]) -> None:
    run_dir, warnings, _, _ = full_run
    assert warnings == []
    outputs = _outputs(run_dir)
    assert outputs and [o for o in outputs if o["output_type"] == "error"] == []
    assert [o for o in outputs if o["output_type"] == "stream" and o.get("name") == "stderr"] == []
    plots = {((o.get("metadata") or {}).get("marketbayesmeta") or {}).get("plot") for o in outputs}
    expected = {i.name for s in SECTIONS for i in s.items if i.kind == "plot"}
    assert expected <= plots


def test_kernel_files_live_in_the_run_directory_and_are_removed(
        full_run: tuple[Path, list[str], Path, list[Path]]) -> None:
    run_dir, _, _, kernel_dirs = full_run
    assert kernel_dirs and kernel_dirs[0].parent == run_dir.resolve()
    assert kernel_dirs[0].name.startswith(notebook.KERNEL_DIR_PREFIX)
    assert not [p for p in kernel_dirs if p.exists()]
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []


def test_html_is_self_contained_with_summary_first(full_run: tuple[Path, list[str], Path, list[Path]]) -> None:
    run_dir, _, _, _ = full_run
    page = Page(run_dir / "report.html")
    raw = (run_dir / "report.html").read_text(encoding="utf-8")
    assert raw.index('id="mbm-status-banner"') < raw.index('id="mbm-summary"') + 2000
    assert raw.index('class="mbm-forest"') < raw.index(">Caveats and what to check next<")
    assert "finished at 2026-06-03T10:01:00Z" in page.joined
    assert len([s for s in page.images if s.startswith("data:image/png;base64,")]) >= 10
    external = [u for u in page.urls if u.strip().lower().startswith(("http:", "https:", "//"))]
    assert external == []
    assert R.find_external_references(raw) == []


def test_each_table_is_shown_once(full_run: tuple[Path, list[str], Path, list[Path]]) -> None:
    run_dir, _, _, _ = full_run
    counts = Counter(Page(run_dir / "report.html").tables)
    assert counts and max(counts.values()) == 1, counts
    present = {"triangulation", "influence", "cumulative", "moderators", "heterogeneity", "model_comparison",
               "study_effects", "rows", "prior_sensitivity", "uncertainty_sensitivity", "duplicates", "notes"}
    assert present <= set(counts)


def test_user_text_is_shown_not_run(full_run: tuple[Path, list[str], Path, list[Path]]) -> None:
    run_dir, _, base, _ = full_run
    raw = (run_dir / "report.html").read_text(encoding="utf-8")
    page = Page(run_dir / "report.html")
    assert SCRIPT_NAME not in raw and "<img src=x" not in raw and "<b>social" not in raw and "<i>pp" not in raw
    assert SCRIPT_NAME in page.joined  # shown as text
    assert LEVEL in page.joined and WHY in page.joined  # moderators and triangulation text, as text
    assert JUSTIFICATION in page.joined  # in triangulation and notes, as text
    assert "script" not in page.tags
    assert CODE_NOTE in page.joined
    assert "=MMM Q4 refresh" in page.joined  # read back without the CSV's formula guard
    md = (run_dir / "analysis_report.md").read_text(encoding="utf-8")
    assert SCRIPT_NAME not in md and "<img" not in md
    nb_code = "\n".join("".join(c["source"]) for c in
                        json.loads((run_dir / "report.ipynb").read_text(encoding="utf-8"))["cells"]
                        if c["cell_type"] == "code")
    assert "pwned" not in nb_code and "alert" not in nb_code and "fake_report_run" not in nb_code
    assert not list(base.rglob("pwned"))
    assert not (Path.cwd() / "pwned").exists()


@pytest.mark.parametrize("status", ["failed", "blocked"])
def test_unusable_run_is_marked_on_the_page(tmp_path: Path, status: str) -> None:
    run_dir = make_fake_run(tmp_path / "run", status=status)
    assert R.write_reports(run_dir) == []
    for name in REPORT_FILES:
        assert (run_dir / name).is_file(), name
    page = Page(run_dir / "report.html")
    raw = (run_dir / "report.html").read_text(encoding="utf-8")
    assert 'class="mbm-banner mbm-stop"' in raw
    assert f"{status.upper()}:" in page.joined
    assert page.nfu >= len(page.tables)  # every table (and every summary number) carries the marker
    if status == "failed":
        assert "FAILED: not for use" in page.joined
    else:
        assert "only 2 comparable rows" in page.joined and "no pooled result" in page.joined
        assert "posterior.nc is not in the run directory (the run was blocked before this step)" in page.joined
    assert [o for o in _outputs(run_dir) if o["output_type"] == "error"] == []


def test_broken_artefacts_give_notes_not_errors(tmp_path: Path) -> None:
    run_dir = make_fake_run(tmp_path / "run", status="failed", study_names=["{{ 7*7 }}", "a\nb"])
    (run_dir / "posterior.nc").write_bytes(b"not a netcdf file")
    (run_dir / "diagnostics.csv").write_text("fit,unexpected\nmain,1\n", encoding="utf-8")
    (run_dir / "ppc.csv").unlink()
    (run_dir / "plan.json").write_text("[1, 2]", encoding="utf-8")
    assert R.write_reports(run_dir) == []
    assert [o for o in _outputs(run_dir) if o["output_type"] == "error"] == []
    text = Page(run_dir / "report.html").joined
    assert "posterior.nc could not be read" in text and "plan.json: not a JSON object" in text
    md = (run_dir / "analysis_report.md").read_text(encoding="utf-8")
    assert "{{ 7\\*7 }}" in md or "\\{\\{ 7\\*7 \\}\\}" in md


def test_every_figure_says_in_words_what_it_shows(full_run: tuple[Path, list[str], Path, list[Path]]) -> None:
    """Each image of report.html has its plot's alternative text (plots.ALT_TEXT), not nbconvert's
    "No description has been provided" placeholder, and every plot has one."""
    import html as html_lib
    import re

    from marketbayesmeta.report.plots import ALT_TEXT

    assert set(ALT_TEXT) == set(PLOTS)
    run_dir, _, _, _ = full_run
    raw = (run_dir / "report.html").read_text(encoding="utf-8")
    images = re.findall(r"<img\b[^>]*>", raw)
    alts = [html_lib.unescape(m.group(1)) if (m := re.search(r'\balt="([^"]*)"', tag)) else None for tag in images]
    assert len(alts) >= 10 and None not in alts
    assert set(alts) <= set(ALT_TEXT.values())
    shown = {((o.get("metadata") or {}).get("marketbayesmeta") or {}).get("plot") for o in _outputs(run_dir)} - {None}
    assert {ALT_TEXT[name] for name in shown} | {ALT_TEXT["forest"]} == set(alts)
