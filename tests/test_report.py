"""Fast tests of marketbayesmeta.report (no notebook kernel): formatting, loading, the outline,
the Markdown report and the plots, against fake 0.5 run directories (tests/report_fixture.py)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from marketbayesmeta import report as R
from marketbayesmeta.outputs import FILES
from marketbayesmeta.report import load, notebook, sections, summary
from marketbayesmeta.report.fmt import decimals_for, format_probability
from marketbayesmeta.report.markdown import render_markdown
from marketbayesmeta.report.plots import PLOTS, common, render
from marketbayesmeta.report.plots.forest import study_rows
from marketbayesmeta.report.tables import TABLES, table_title
from marketbayesmeta.report.unit import Unit
from marketbayesmeta.report.write import write_markdown
from report_fixture import make_fake_portfolio, make_fake_run

SCRIPT_NAME = "<script>alert(1)</script>"
CODE_NOTE = '"); import os; os.system("touch pwned") #'


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def pooled(run_dir: Path) -> dict[str, dict[str, str]]:
    return {r["parameter"]: r for r in _csv(run_dir / "pooled_summary.csv")}


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fake_run(tmp_path_factory.mktemp("rich") / "run", moderators=True,
                         study_names=[SCRIPT_NAME, "$x$ \\bad mathtext", "Geo | 3 *"], project_notes=CODE_NOTE,
                         row_note=CODE_NOTE, justification="MMM <b>calibrated</b> against 2024 geo tests")


# -- formatting -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (0.0340975, "0.03410"), (-0.0120001, "-0.01200"), (3.480486038, "3.480"), (0.98625, "0.9862"),
    (1234.5678, "1235"), (0, "0"), (1e-7, "1.000e-07"), (None, "n/a"), ("", "n/a"),
    (float("nan"), "n/a"), (9.99996, "10.00"),
])
def test_format_number(value: object, text: str) -> None:
    assert R.format_number(value) == text


@pytest.mark.parametrize(("scale", "values", "text"), [
    ("log_relative", (2.75, 1.28, 4.23), "≈ +2.8 % (95 %: +1.3 % to +4.2 %)"),
    ("log_relative", (3.533, -7.134, 14.75), "≈ +3.5 % (95 %: −7.1 % to +14.8 %)"),
    ("log_relative", (-0.27, -5.0, 5.0), "≈ −0.27 % (95 %: −5.00 % to +5.00 %)"),
    ("percentage_point", (1.94, 0.71, 3.2), "≈ +1.9 pp (95 %: +0.7 pp to +3.2 pp)"),
    ("percentage_point", (152.0, 31.0, 402.0), "≈ +152 pp (95 %: +31 pp to +402 pp)"),
])
def test_headline_numbers_have_two_to_three_significant_figures(scale: str, values: tuple, text: str) -> None:
    assert Unit(scale).estimate(*values, 0.95) == text


def test_decimals_keep_a_bound_near_zero_visible() -> None:
    d = decimals_for([3.0, -0.04, 8.0])
    assert d == 1  # 3.0 [-0.0 ...] would hide the sign: the unit shows −0.0 only if it rounds away
    assert Unit("log_relative").text(-0.04, d) == "0.0 %"  # rounds to zero: no sign, never "-0.0"


def test_probability_words() -> None:
    assert [format_probability(p) for p in (0.893, 0.9987, 0.001, None)] == ["89 %", "> 99 %", "< 1 %", "n/a"]


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


# -- loading --------------------------------------------------------------------------------------

def test_read_csv_keeps_newer_columns_and_removes_formula_prefix(rich: Path) -> None:
    run = R.load_run(rich)
    ep = run.table("effect_preparation.csv")
    assert "checks" in ep.columns  # a 0.5 column, whether or not the catalogue lists it yet
    assert "=MMM Q4 refresh" in list(ep["study_name"])  # written as '=MMM…, read back as typed
    assert ep["model_estimate"].dtype == float and ep["study_id"].dtype == object
    se = run.table("study_effects.csv")
    assert abs(se["weight"].sum() - 1) < 0.1  # the prior's share is the rest


def test_plan_view_reads_v1_v2_and_pool_json(rich: Path, tmp_path: Path) -> None:
    doc = json.loads((rich / "plan.json").read_text())
    v1 = load.PlanView(doc)
    assert v1.scale == "log_relative" and v1.reporting() == {"interval": 0.95, "forest_order": "window_end"}
    assert v1.priors()["tau_family"] == {"value": "half_normal", "provenance": "default"}
    assert v1.triangulate_justification().startswith("MMM <b>")
    pool = {k: v for k, v in doc.items() if k not in ("project_name", "project_notes", "sources", "format")}
    pool["reporting"] = {"interval": 0.9, "forest_order": "effect"}
    v2 = load.PlanView({"format": "marketbayesmeta.plan/2", "project_name": "p", "pools": [pool]})
    assert v2.project_name == "p" and v2.scale == "log_relative" and len(v2.rows()) == len(v1.rows())
    assert v2.reporting() == {"interval": 0.9, "forest_order": "effect"}
    assert load.PlanView(None, {"name": "geo", **pool}).pool_name == "geo"
    row = v1.rows()[0]
    assert load.PlanView.row_value(row, "spend_index") == 1.2 and load.PlanView.row_value(row, "study_id") == "S1"
    bad = load.PlanView({"reporting": {"forest_order": "alphabetical"}})
    assert bad.reporting()["forest_order"] == "window_end"  # unknown order: the default


def test_missing_files_are_explained_from_the_catalogue(tmp_path: Path) -> None:
    run_dir = make_fake_run(tmp_path / "run", triangulate=False, leave_one_out=False)
    for name in ("heterogeneity.csv", "model_comparison.csv", "cumulative.csv"):
        (run_dir / name).unlink()
    run = R.load_run(run_dir)
    for name in ("heterogeneity.csv", "model_comparison.csv", "cumulative.csv", "influence.csv", "moderators.csv"):
        assert FILES[name].when in run.missing_reason(name), name
    md = render_markdown(run)
    for name in ("heterogeneity.csv", "model_comparison.csv", "cumulative.csv", "influence.csv", "moderators.csv"):
        assert R.md_escape(f"{name} is not in the run directory (it is written {FILES[name].when})") in md, name
    assert "no triangulate-only rows" in md


# -- the outline and the notebook -----------------------------------------------------------------

def test_notebook_template_is_static_and_shows_every_section() -> None:
    nb = notebook.build_notebook()
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    shown = [m for c in code for m in re.findall(r'^R\.show_section\("([a-z_]+)", run\)$', c, re.M)]
    assert shown == list(sections.SECTION_KEYS)
    assert "R.load_run(RUN_DIR)" in "\n".join(code)
    assert [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    compile("\n".join(code), "report_notebook", "exec")


def test_every_table_is_in_the_outline_once() -> None:
    names = [i.name for s in sections.SECTIONS for i in s.items if i.kind == "table"]
    assert len(names) == len(set(names))
    assert set(names) == set(TABLES)
    plots = [i.name for s in sections.SECTIONS for i in s.items if i.kind == "plot"]
    assert set(plots) | {"forest"} == set(PLOTS) and "forest" not in plots  # forest: in the summary


def test_interrupt_in_the_kernel_is_not_a_warning() -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb.cells[0]["outputs"] = [nbformat.v4.new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[])]
    with pytest.raises(KeyboardInterrupt):
        notebook.raise_for_interrupt(nb)


def test_write_reports_propagates_an_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = make_fake_run(tmp_path / "run", status="blocked")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("marketbayesmeta.report.write.execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        R.write_reports(run_dir)


def test_write_reports_missing_directory(tmp_path: Path) -> None:
    assert R.write_reports(tmp_path / "nope")  # a warning, no exception


# -- the Markdown report --------------------------------------------------------------------------

def test_markdown_follows_the_outline_with_the_summary_first(rich: Path) -> None:
    md = render_markdown(R.load_run(rich))
    heads = re.findall(r"^## (.+)$", md, re.M)
    assert heads == [s.title for s in sections.SECTIONS if s.title]
    mu = pooled(rich)["mu"]
    unit = Unit("log_relative")
    head = unit.estimate(float(mu["mean_pct"]), float(mu["lower_pct"]), float(mu["upper_pct"]), 0.95)
    assert md.index(head) < md.index("## Caveats")
    assert "finished at 2026-06-03T10:01:00Z" in md
    for name in TABLES:
        title = R.md_escape(table_title(name))
        assert md.count(f"**{title}**") <= 1, name


def test_markdown_escapes_user_text_everywhere(rich: Path) -> None:
    md = render_markdown(R.load_run(rich))
    assert SCRIPT_NAME not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "<b>" not in md and "&lt;b&gt;calibrated&lt;/b&gt;" in md  # the justification, in triangulation
    assert "\\$x\\$" in md


def test_markdown_percentage_point_has_no_lift(tmp_path: Path) -> None:
    run_dir = make_fake_run(tmp_path / "run", scale="percentage_point", moderators=True)
    md = render_markdown(R.load_run(run_dir))
    mu = pooled(run_dir)["mu"]
    assert Unit("percentage_point").estimate(float(mu["mean"]), float(mu["lower"]), float(mu["upper"]), 0.95) in md
    assert "relative lift" not in md and " pp" in md


def test_markdown_of_empty_or_broken_directory(tmp_path: Path) -> None:
    assert write_markdown(R.load_run(tmp_path)) == []
    md = (tmp_path / "analysis_report.md").read_text(encoding="utf-8")
    assert "no pooled result" in md and "STATUS UNKNOWN" in md
    (tmp_path / "run_status.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "pooled_summary.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert write_markdown(R.load_run(tmp_path)) == []
    md = (tmp_path / "analysis_report.md").read_text(encoding="utf-8")
    assert "run\\_status.json: cannot be read" in md


@pytest.mark.parametrize("status", ["failed", "blocked"])
def test_unusable_runs_mark_every_number(tmp_path: Path, status: str) -> None:
    run = R.load_run(make_fake_run(tmp_path / "run", status=status))
    label = status.upper()
    s = summary.build_summary(run)
    assert s.level == "stop" and s.banner.startswith(label) and s.marker == f"{label}: not for use"
    html_text = summary.summary_html(s, None, "no plot")
    numeric = [f for f in s.facts if f.numeric]
    assert html_text.count('class="mbm-nfu"') == len(numeric)
    md = render_markdown(run)
    tables = [t for t in re.split(r"\n\n(?=\*\*)", md) if t.startswith("**") and "\n| " in t
              and ".csv:" in t.splitlines()[0]]  # the run's numbers (provenance lists versions and hashes)
    assert tables
    number = re.compile(r"-?\d+(\.\d+)?(e[+-]\d+)?")
    for t in tables:
        rows = [ln for ln in t.splitlines() if ln.startswith("| ")][1:]  # body rows
        cells = [c for ln in rows for c in ln.strip("| ").split(" | ")]
        assert not [c for c in cells if number.fullmatch(c)], t[:200]  # a bare number: not marked
    assert md.count(" ⚠ |") >= 5  # the numbers are there, marked
    if status == "failed":
        assert numeric and "⚠" in md.split("## Caveats")[0]


# -- plots ----------------------------------------------------------------------------------------

def _figure(monkeypatch: pytest.MonkeyPatch, name: str, run: load.RunData):
    figs = []
    monkeypatch.setattr("marketbayesmeta.report.plots.figure_png", lambda fig: figs.append(fig) or b"png")
    assert render(name, run) == b"png"
    return figs[0]


def test_forest_plot_carries_weights_interval_column_prediction_and_triangulation(
        rich: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = R.load_run(rich)
    fig = _figure(monkeypatch, "forest", run)
    text = [t.get_text() for ax in fig.axes for t in ax.texts]
    for r in _csv(rich / "study_effects.csv"):
        assert f"{100 * float(r['weight']):.0f} %" in text
    mu = pooled(rich)["mu"]
    unit = Unit("log_relative")
    assert unit.bracket(float(mu["mean_pct"]), float(mu["lower_pct"]), float(mu["upper_pct"])) in text
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "Pooled average" in labels and "Prediction (new study)" in labels
    assert any(lbl.endswith("(consistent)") for lbl in labels) and any("(not comparable)" in lbl for lbl in labels)
    assert any("%" in t.get_text() for t in fig.axes[0].get_xticklabels())  # the pool's unit
    markers = {line.get_marker() for line in fig.axes[0].get_lines()}
    assert {"s", "o", "^"} <= markers


@pytest.mark.parametrize(("order", "expected"), [
    ("window_end", ["S5", "S2", "S1", "S4", "S6", "S3"]),  # oldest first, blank window_end last
    ("effect", ["S4", "S2", "S5", "S1", "S6", "S3"]),
    ("tracker", ["S1", "S2", "S3", "S4", "S5", "S6"]),
])
def test_forest_order(tmp_path: Path, order: str, expected: list[str]) -> None:
    run = R.load_run(make_fake_run(tmp_path / "run", forest_order=order))
    assert [r["study_id"] for r in study_rows(run)] == expected


def test_prior_is_visible_next_to_the_posterior(rich: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = _figure(monkeypatch, "prior_posterior", R.load_run(rich))
    priors = [(ax, line) for ax in fig.axes for line in ax.get_lines() if line.get_label().startswith("prior")]
    assert len(priors) == 2  # mu and tau
    for ax, line in priors:
        y = line.get_ydata()
        lo, hi = ax.get_ylim()
        assert max(y) / hi > 0.5, "the prior must reach at least half of its axis height"
    posteriors = [ax for ax in fig.axes if ax.patches]  # the histograms
    assert len(posteriors) == 2
    for ax in posteriors:
        top = max(float(p.get_xy()[:, 1].max()) for p in ax.patches)
        assert 0.5 < top / ax.get_ylim()[1] <= 1, "the posterior must fill its axis without being cut off"
    assert all(len(ax.get_yticks()) == 0 for ax in fig.axes), "densities on their own scales carry no numbers"


def test_trace_plot_densities_carry_no_numbers_and_traces_do(rich: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = _figure(monkeypatch, "trace", R.load_run(rich))
    densities, traces = fig.axes[0::2], fig.axes[1::2]  # rows mu, tau: density left, trace right
    assert [len(ax.get_yticks()) for ax in densities] == [0, 0]
    assert all(len(ax.get_yticks()) > 0 for ax in traces)
    common.plt().close(fig)


def test_every_plot_of_an_unusable_run_is_watermarked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = R.load_run(make_fake_run(tmp_path / "run", status="failed", moderators=True))
    for name in PLOTS:
        fig = _figure(monkeypatch, name, run)
        assert any("FAILED: NOT FOR USE" in t.get_text() for t in fig.texts), name
        common.plt().close(fig)


@pytest.mark.parametrize("name", ["influence", "cumulative", "sensitivity", "moderator_subgroups", "ppc"])
def test_plots_are_in_the_pools_unit(rich: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    fig = _figure(monkeypatch, name, R.load_run(rich))
    assert all(t.get_text().endswith(" %") for t in fig.axes[0].get_xticklabels() if t.get_text())


def test_moderator_bubbles_use_the_plan_values_and_weights(rich: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = _figure(monkeypatch, "moderator_bubbles", R.load_run(rich))
    offsets = fig.axes[0].collections[0].get_offsets()
    assert sorted(float(x) for x in offsets[:, 0]) == pytest.approx(sorted([1.2, 0.4, 2.0, 0.8, 1.5, 0.6]))
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("fitted line (posterior means")]
    # the design centres spend_index at its pooled mean: the line passes (mean, intercept)
    rows = _csv(rich / "moderators.csv")
    intercept = next(float(r["mean"]) for r in rows if r["term"] == "intercept")
    slope = next(float(r["mean"]) for r in rows if r["term"] == "spend_index")
    xs, ys = line.get_data()
    centre = sum([1.2, 0.4, 2.0, 0.8, 1.5, 0.6]) / 6
    assert ys == pytest.approx(intercept + slope * (xs - centre))


# -- portfolio ------------------------------------------------------------------------------------

def test_portfolio_report(tmp_path: Path) -> None:
    root = make_fake_portfolio(tmp_path / "portfolio", pool_names=["geo_sales", "<b>brand</b>", "search"])
    (root / "pools" / "geo_sales" / "report.html").write_text("<html></html>", encoding="utf-8")
    assert R.write_portfolio_report(root) == []
    page = (root / "portfolio_report.html").read_text(encoding="utf-8")
    assert "<b>brand</b>" not in page and "&lt;b&gt;brand&lt;/b&gt;" in page
    assert 'href="pools/geo_sales/report.html"' in page
    assert "data:image/png;base64," in page and 'id="mbm-status-banner"' in page
    assert "FAILED: not for use" in page and "no pooled result" in page
    assert R.find_external_references(page) == []
    rows = _csv(root / "portfolio.csv")
    geo = next(r for r in rows if r["pool"] == "geo_sales")
    assert Unit("log_relative").estimate(float(geo["estimate"]), float(geo["lower"]), float(geo["upper"]), 0.95) in page
    assert R.write_portfolio_report(tmp_path)  # no portfolio.csv: a warning, no exception


def test_pool_directory_of_a_portfolio_reads_pool_json(tmp_path: Path) -> None:
    root = make_fake_portfolio(tmp_path / "portfolio")
    run = R.load_run(root / "pools" / "geo_sales")
    assert run.plan.pool_name == "geo_sales" and run.project_name == "fake_portfolio"
    assert run.pool_label == "geo_sales" and run.plan.rows()


def test_no_library_banner_reaches_the_terminal(tmp_path: Path) -> None:
    """ArviZ prints a FutureWarning banner on its first import of the day; the CLI silences it, in
    its own process and in the processes it starts."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    plain = subprocess.run([sys.executable, "-c", "import arviz"], env={**env, "XDG_CACHE_HOME": str(tmp_path / "a")},
                           capture_output=True, text=True, timeout=120)
    assert "ArviZ is undergoing" in plain.stderr  # the banner this guards against exists
    code = ("import os, subprocess, sys\n"
            "from marketbayesmeta.cli import quiet_library_banners\n"
            "quiet_library_banners()\n"
            f"subprocess.run([sys.executable, '-c', 'import arviz'], check=True, "
            f"env={{**os.environ, 'XDG_CACHE_HOME': {str(tmp_path / 'c')!r}}})\n"
            "import arviz\n")
    quiet = subprocess.run([sys.executable, "-c", code], env={**env, "XDG_CACHE_HOME": str(tmp_path / "b")},
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert "ArviZ" not in quiet.stderr and "Warning" not in quiet.stderr


# -- the package ----------------------------------------------------------------------------------

REPORT_PKG = Path(R.__file__).resolve().parent
REPORT_MODULES = sorted(REPORT_PKG.rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in REPORT_MODULES if p.parent.name != "templates"],
                         ids=lambda p: str(p.relative_to(REPORT_PKG)))
def test_report_package_reads_only_a_run_directory(path: Path) -> None:
    """No module of the report package imports the compiler, the runtime, the CLI or the API, and
    none is over 500 lines."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {("." * n.level) + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    bad = {n for n in names if any(part in n.split(".") for part in ("compiler", "runtime", "cli", "api"))}
    assert not bad, f"{path.name} imports {bad}"
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 500


def test_report_package_opens_with_its_steps() -> None:
    doc = R.__doc__ or ""
    steps = re.findall(r"^\d\. \*\*(\w+)\*\*", doc, re.M)
    assert steps == ["load", "markdown", "build", "execute", "check", "html"]


def test_rank_plot_shows_where_each_chains_draws_rank(tmp_path: Path) -> None:
    """Chain c holding the c-th quarter of the pooled draws: its outline rises above its baseline
    in the c-th quarter of the rank axis only (height 0.8 · bins per quarter there, 0 elsewhere)."""
    from types import SimpleNamespace

    import numpy as np
    import xarray as xr

    from marketbayesmeta.report.plots.sampler import plot_rank

    draws = np.arange(400, dtype=float).reshape(4, 100)  # chain c: the values 100c .. 100c + 99
    post = xr.Dataset({"mu": (("chain", "draw"), draws), "tau": (("chain", "draw"), draws[::-1].copy())})
    run = load.RunData(run_dir=tmp_path, _posterior=SimpleNamespace(posterior=post))
    fig = plot_rank(run)
    try:
        for ax, order in zip(fig.axes, (range(4), range(3, -1, -1)), strict=True):
            outlines = list(ax.patches)
            assert len(outlines) == 4  # one filled outline per chain
            for c, (patch, quarter) in enumerate(zip(outlines, order, strict=True)):
                values, edges, baseline = patch.get_data()
                assert baseline == c and len(edges) == 21 and edges[-1] == 400
                expected = np.where(np.arange(20) // 5 == quarter, c + 0.8 * 4, c)  # 100 draws in 5 of 20 bins
                np.testing.assert_allclose(values, expected)
    finally:
        common.plt().close(fig)
