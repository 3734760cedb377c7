"""Tests of marketbayesmeta.runtime.report against fake run directories (tests/report_fixture.py)."""

from __future__ import annotations

import csv
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from marketbayesmeta.outputs import REPORT_FILES
from marketbayesmeta.runtime import report as R
from report_fixture import make_fake_run

SCRIPT_NAME = "<script>alert(1)</script>"
CODE_NOTE = '"); import os; os.system("touch pwned") #'


class _Html(HTMLParser):
    """Text, tags and URL-bearing attributes of an HTML document (stdlib parser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.urls.append(v)
                if tag == "img" and k == "src":
                    self.images.append(v)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(path: Path) -> _Html:
    p = _Html()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


def pooled(run_dir: Path) -> dict[str, dict[str, str]]:
    with (run_dir / "pooled_summary.csv").open(encoding="utf-8") as fh:
        return {r["parameter"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], Path]:
    base = tmp_path_factory.mktemp("report_full")
    run_dir = make_fake_run(base / "run", study_names=[SCRIPT_NAME, "$x$ \\bad mathtext", "Geo | 3 *"],
                            project_notes=CODE_NOTE, row_note=CODE_NOTE)
    cwd = os.getcwd()
    os.chdir(base)  # a clean working directory to look for 'pwned' in
    try:
        warnings = R.write_reports(run_dir)
    finally:
        os.chdir(cwd)
    return run_dir, warnings, base


@pytest.fixture(scope="module")
def blocked_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    run_dir = make_fake_run(tmp_path_factory.mktemp("report_blocked") / "run", status="blocked")
    return run_dir, R.write_reports(run_dir)


# -- fast tests -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (0.0340975, "0.03410"), (-0.0120001, "-0.01200"), (3.480486038, "3.480"), (0.98625, "0.9862"),
    (1234.5678, "1235"), (0, "0"), (1e-7, "1.000e-07"), (None, "n/a"), ("", "n/a"),
    (float("nan"), "n/a"), (9.99996, "10.00"),
])
def test_format_number(value: object, text: str) -> None:
    assert R.format_number(value) == text


def test_md_escape_neutralises_html_and_markdown() -> None:
    out = R.md_escape("<b>x</b> | *y* _z_ [a](http://e) `c` & \\\nnext")
    assert "<" not in out and ">" not in out
    assert "&lt;b&gt;" in out and "&amp;" in out
    assert "\\|" in out and "\\*y\\*" in out and "\\[a\\]" in out and "\\`c\\`" in out
    assert "\n" not in out
    assert R.md_escape(out) == out  # already safe: not escaped twice


def test_strip_external_references() -> None:
    page = ('<html><head><script src="https://cdn.example/x.js"></script>'
            '<link rel="stylesheet" href="//cdn.example/y.css"><script>var a = 1;</script></head>'
            '<body><img src="data:image/png;base64,AAAA"><a href="#s">ok</a>'
            '<a href="http://example.com">out</a></body></html>')
    assert len(R.find_external_references(page)) == 3
    css = '<style>@import url("https://fonts.example/f.css");</style><p>url(https://text.only)</p>'
    assert len(R.find_external_references(css)) == 1  # text that merely mentions a URL is fine
    clean = R.strip_external_references(page)
    assert R.find_external_references(clean) == []
    assert "var a = 1;" in clean and 'href="#s"' in clean and "data:image/png;base64,AAAA" in clean


def test_notebook_template_is_static() -> None:
    nb = R.build_notebook()
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "R.load_run(RUN_DIR)" in code
    assert [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    compile(code, "report_notebook", "exec")


def test_markdown_report_headline(tmp_path: Path) -> None:
    run_dir = make_fake_run(tmp_path / "run", study_names=[SCRIPT_NAME], project_notes=CODE_NOTE)
    assert R.write_markdown_report(run_dir) == []
    md = (run_dir / "analysis_report.md").read_text(encoding="utf-8")
    mu = pooled(run_dir)["mu"]
    for key in ("mean", "lower", "upper", "prob_positive"):
        assert R.format_number(mu[key]) in md
    for key in ("mean_pct", "lower_pct", "upper_pct"):
        assert R.format_pct(mu[key]) in md
    assert "not a prediction of the next observed estimate" in md
    assert "review material, not an automatic decision" in md.lower()
    assert SCRIPT_NAME not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "**Reportable:** **no**" in md


def test_markdown_report_percentage_point_has_no_lift(tmp_path: Path) -> None:
    run_dir = make_fake_run(tmp_path / "run", scale="percentage_point")
    assert R.write_markdown_report(run_dir) == []
    md = (run_dir / "analysis_report.md").read_text(encoding="utf-8")
    assert R.format_number(pooled(run_dir)["mu"]["mean"]) in md
    assert "relative lift" not in md


def test_markdown_report_of_empty_or_broken_directory(tmp_path: Path) -> None:
    assert R.write_markdown_report(tmp_path) == []
    md = (tmp_path / "analysis_report.md").read_text(encoding="utf-8")
    assert "No pooled result is available" in md and "unknown" in md
    (tmp_path / "run_status.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "pooled_summary.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert R.write_markdown_report(tmp_path) == []
    md = (tmp_path / "analysis_report.md").read_text(encoding="utf-8")
    assert "run\\_status.json: cannot be read" in md


def test_write_reports_missing_directory(tmp_path: Path) -> None:
    assert R.write_reports(tmp_path / "nope")  # a warning, no exception


# -- notebook execution (slow) -------------------------------------------------------------------

@pytest.mark.slow
def test_notebook_executes_without_errors(full_run: tuple[Path, list[str], Path]) -> None:
    run_dir, warnings, _ = full_run
    assert warnings == []
    nb = json.loads((run_dir / "report.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert outputs
    assert [o for o in outputs if o["output_type"] == "error"] == []
    assert all(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code")
    plots = {((o.get("metadata") or {}).get("marketbayesmeta") or {}).get("plot") for o in outputs}
    assert {"forest", "prior_posterior", "trace", "rank", "sensitivity", "ppc"} <= plots


@pytest.mark.slow
def test_html_is_self_contained_with_headline(full_run: tuple[Path, list[str], Path]) -> None:
    run_dir, _, _ = full_run
    page = parse_html(run_dir / "report.html")
    text = " ".join(page.text)
    mu = pooled(run_dir)["mu"]
    for key in ("mean", "lower", "upper", "prob_positive"):
        assert R.format_number(mu[key]) in text, key
    assert R.format_pct(mu["mean_pct"]) in text
    assert "not a prediction of the next observed estimate" in text
    assert len([s for s in page.images if s.startswith("data:image/png;base64,")]) >= 5
    external = [u for u in page.urls if u.strip().lower().startswith(("http:", "https:", "//"))]
    assert external == []
    assert R.find_external_references((run_dir / "report.html").read_text(encoding="utf-8")) == []


@pytest.mark.slow
def test_user_text_is_shown_not_run(full_run: tuple[Path, list[str], Path]) -> None:
    run_dir, _, base = full_run
    raw = (run_dir / "report.html").read_text(encoding="utf-8")
    page = parse_html(run_dir / "report.html")
    text = " ".join(page.text)
    assert SCRIPT_NAME not in raw
    assert SCRIPT_NAME in text  # shown as text
    assert "script" not in page.tags
    assert CODE_NOTE in text
    md = (run_dir / "analysis_report.md").read_text(encoding="utf-8")
    assert SCRIPT_NAME not in md
    nb_code = "\n".join("".join(c["source"]) for c in
                        json.loads((run_dir / "report.ipynb").read_text(encoding="utf-8"))["cells"]
                        if c["cell_type"] == "code")
    assert "pwned" not in nb_code and "alert" not in nb_code
    assert not list(base.rglob("pwned"))
    assert not (Path.cwd() / "pwned").exists()
    assert not (run_dir / "pwned").exists()


@pytest.mark.slow
def test_blocked_run_gets_all_reports(blocked_run: tuple[Path, list[str]]) -> None:
    run_dir, warnings = blocked_run
    assert warnings == []
    for name in REPORT_FILES:
        assert (run_dir / name).is_file(), name
    md = (run_dir / "analysis_report.md").read_text(encoding="utf-8")
    assert "blocked" in md and "only 2 comparable rows" in md and "No pooled result is available" in md
    nb = json.loads((run_dir / "report.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert [o for o in outputs if o["output_type"] == "error"] == []
    text = " ".join(parse_html(run_dir / "report.html").text)
    assert "only 2 comparable rows" in text
    assert "posterior.nc is not in the run directory (the run was blocked before this step)" in text


@pytest.mark.slow
def test_broken_artefacts_give_notes_not_errors(tmp_path: Path) -> None:
    run_dir = make_fake_run(tmp_path / "run", status="failed", study_names=["{{ 7*7 }}", "a\nb"])
    (run_dir / "posterior.nc").write_bytes(b"not a netcdf file")
    (run_dir / "diagnostics.csv").write_text("fit,unexpected\nmain,1\n", encoding="utf-8")
    (run_dir / "ppc.csv").unlink()
    (run_dir / "plan.json").write_text("[1, 2]", encoding="utf-8")
    assert R.write_reports(run_dir) == []
    nb = json.loads((run_dir / "report.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert [o for o in outputs if o["output_type"] == "error"] == []
    text = " ".join(parse_html(run_dir / "report.html").text)
    assert "posterior.nc could not be read" in text and "plan.json could not be read" in text
    md = (run_dir / "analysis_report.md").read_text(encoding="utf-8")
    assert "{{ 7\\*7 }}" in md or "\\{\\{ 7\\*7 \\}\\}" in md
