"""The HTML exporter's warm-up (report/html.py): a process's first export pays nbconvert's imports
and template compilation; write_reports has that done in a thread while the kernel executes the
notebook (this process is idle then), so the export after it is quick. It must not change the
page, must happen while the notebook runs (not after it), once per process, and never fail a report.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from marketbayesmeta import report as R
from marketbayesmeta.report import html
from marketbayesmeta.report.notebook import META_KEY
from report_fixture import make_fake_run

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _executed_like() -> nbformat.NotebookNode:
    cell = v4.new_code_cell("R.show_section('summary', run)", outputs=[
        v4.new_output("display_data", {"text/html": "<table><tr><td>a &lt; b</td></tr></table>"},
                      metadata={META_KEY: {"table": "pooled_summary"}}),
        v4.new_output("display_data", {"text/markdown": "## Pooled *effect*"}),
        v4.new_output("display_data", {"image/png": PNG}, metadata={META_KEY: {"plot": "forest"}}),
    ])
    return v4.new_notebook(cells=[v4.new_markdown_cell("# Report"), cell])


def test_a_warmed_exporter_writes_the_page_a_cold_one_writes() -> None:
    nb = _executed_like()  # export_html works on a copy
    html._exporter.cache_clear()
    cold = html.export_html(nb, title="t")
    html._exporter.cache_clear()
    html.warm_exporter()
    assert html._exporter.cache_info().currsize == 1
    assert html.export_html(nb, title="t") == cold


def test_write_reports_warms_the_exporter_while_the_notebook_executes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = make_fake_run(tmp_path / "run")
    html._exporter.cache_clear()
    seen: list[bool] = []

    def executing(*args: object, **kwargs: object) -> None:  # the kernel's time: the exporter gets made
        deadline = time.monotonic() + 20
        while not html._exporter.cache_info().currsize and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.append(bool(html._exporter.cache_info().currsize))

    monkeypatch.setattr("marketbayesmeta.report.write.execute_notebook", executing)
    R.write_reports(run_dir)
    assert seen == [True]
    assert (run_dir / "report.html").is_file()


def test_the_exporter_is_warmed_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    html._exporter.cache_clear()
    calls: list[int] = []
    monkeypatch.setattr(html, "warm_exporter", lambda: calls.append(1) or html._exporter())
    thread = html.warm_exporter_meanwhile()
    assert thread is not None
    thread.join()
    assert html.warm_exporter_meanwhile() is None
    assert calls == [1]


def test_a_failing_warm_up_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm-up's own failure is no report warning: the real export decides."""
    run_dir = make_fake_run(tmp_path / "run")
    html._exporter.cache_clear()

    def broken() -> None:
        raise RuntimeError("warm-up broke")

    monkeypatch.setattr(html, "warm_exporter", broken)
    monkeypatch.setattr("marketbayesmeta.report.write.execute_notebook", lambda *a, **k: None)
    warnings = R.write_reports(run_dir)
    assert not [w for w in warnings if "warm-up broke" in w]
    assert (run_dir / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def _exported_as_nbconvert_does(nb: nbformat.NotebookNode, title: str) -> str:
    """export_html without its image tokens: nbconvert's page of the notebook, network removed."""
    import copy

    nb = copy.deepcopy(nb)
    nb.metadata["title"] = title
    body, _ = html._exporter().from_notebook_node(nb, resources={"metadata": {"name": title}})
    return html.strip_external_references(body)


def test_images_passed_through_the_export_as_tokens_give_the_same_page() -> None:
    nb = _executed_like()
    big = PNG[:-2] + "A" * 4000 + "=="
    nb.cells[1].outputs.append(v4.new_output("display_data", {"text/html": (
        f'<div><img alt="a" src="data:image/png;base64,{big}"><p>mbm0i0z and data:image/png;base64,</p>'
        f'<img src="data:image/png;base64,{PNG}"></div>')}))
    nb.cells[1].outputs.append(v4.new_output("display_data", {"image/png": big}, metadata={META_KEY: {"plot": "x"}}))
    nb.cells.append(v4.new_markdown_cell("a study named mbm0000000000000000i1z"))
    page = html.export_html(nb, title="t")
    assert page == _exported_as_nbconvert_does(nb, "t")
    assert page.count(big) == 2 and page.count(PNG) == 2 and "mbm0000000000000000i1z" in page
    assert not re.search(r"mbm[0-9a-f]{16}i[0-9]+z", page.replace("mbm0000000000000000i1z", ""))


def test_a_real_report_is_the_same_page_with_image_tokens(tmp_path: Path) -> None:
    run_dir = make_fake_run(tmp_path / "run")
    R.write_reports(run_dir)
    nb = nbformat.read(run_dir / "report.ipynb", as_version=4)
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert html.export_html(nb, title="t") == _exported_as_nbconvert_does(nb, "t")
