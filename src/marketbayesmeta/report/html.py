"""report.html: the executed notebook as one offline page.

nbconvert's ``lab`` template with everything it would fetch from the network removed
(``templates/report_offline.html.j2``: no require.js, MathJax, Mermaid or widget scripts), input
cells hidden, images inline, and :func:`strip_external_references` as a last guard; the page's
own stylesheet (in the template) keeps wide tables scrolling inside their box.
"""

from __future__ import annotations

import copy
import functools
import html
import re
import secrets
import threading
from typing import Any

from .notebook import META_KEY, TEMPLATES

HTML_TEMPLATE = "report_offline.html.j2"

_EXTERNAL = re.compile(r"^\s*(https?:|//)", re.I)
_TAG = re.compile(r"<(?P<name>[a-zA-Z][a-zA-Z0-9-]*)\b(?P<attrs>[^<>]*)>")
_URL_ATTR = re.compile(r"""\s(?P<attr>src|href|data|poster|action|srcset)\s*=\s*(?P<q>["']?)(?P<val>[^"'\s>]*)(?P=q)""", re.I)
_SCRIPT_EXT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?\s*(https?:|//)[^>]*>\s*</script\s*>", re.I)


def find_external_references(html_text: str) -> list[str]:
    """Attributes (src, href, ...) that point to the network, found with the stdlib HTML parser,
    and network loads inside ``<style>``/``<script>`` blocks (CSS url()/@import, JS import)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class _P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for k, v in attrs:
                if k in ("src", "href", "data", "poster", "action", "srcset") and v and _EXTERNAL.match(v):
                    found.append(f"<{tag} {k}={v!r}>")

        handle_startendtag = handle_starttag

    p = _P(convert_charrefs=True)
    p.feed(html_text)
    p.close()
    for block in re.findall(r"<(style|script)\b[^>]*>(.*?)</\1\s*>", html_text, re.I | re.S):
        for m in re.finditer(r"""(?:import\s*(?:[^'";]*from\s*)?|url\(\s*)["']?(https?:|//)[^"')\s]*""",
                             block[1], re.I):
            found.append(m.group(0)[:120])
    return found


def strip_external_references(html_text: str) -> str:
    """Remove scripts loaded from the network and neutralise any other network URL attribute."""
    html_text = _SCRIPT_EXT.sub("", html_text)

    def fix_tag(m: re.Match[str]) -> str:
        def fix_attr(a: re.Match[str]) -> str:
            if _EXTERNAL.match(html.unescape(a.group("val"))):
                return f' data-removed-{a.group("attr").lower()}=""'
            return a.group(0)

        return f"<{m.group('name')}{_URL_ATTR.sub(fix_attr, m.group('attrs'))}>"

    return _TAG.sub(fix_tag, html_text)


@functools.lru_cache(maxsize=1)
def _exporter() -> Any:
    """The HTML exporter, made once per process: it compiles its Jinja templates on first use (a
    quarter of a second), and a portfolio worker exports many reports."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_template_paths=[str(TEMPLATES)],
                            template_file=HTML_TEMPLATE)
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.sanitize_html = False  # bleach mangles tables; every cell is escaped by us instead
    return exporter


def export_html(nb: Any, title: str = "marketbayesmeta run report") -> str:
    """Self-contained HTML of an executed notebook: code hidden, images inline, nothing fetched.

    The figures' base64 PNG data (most of the page's megabyte) go through the export as short
    tokens and are put back at the end (:class:`_Images`): nbconvert parses and re-serialises the
    whole page with BeautifulSoup, which treats both as opaque attribute text, so the page is the
    same bytes (tested), ~15 % sooner (the rest of that pass is the page's ~1,600 tags)."""
    nb = copy.deepcopy(nb)
    nb.metadata["title"] = title  # escaped by the template
    images = _Images()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            if isinstance(data.get("image/png"), str):
                data["image/png"] = images.token(data["image/png"])
            if isinstance(data.get("text/html"), str):
                data["text/html"] = images.stash(data["text/html"])
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": title}})
    return images.restore(strip_external_references(body))


class _Images:
    """Base64 PNG data swapped for tokens that no text of the page can contain (a random nonce),
    and back."""

    _DATA = re.compile(r"(?<=data:image/png;base64,)[A-Za-z0-9+/=]+")

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(8)
        self.data: dict[str, str] = {}
        self._token = re.compile(f"mbm{self.nonce}i[0-9]+z")

    def token(self, data: str) -> str:
        key = f"mbm{self.nonce}i{len(self.data)}z"
        self.data[key] = data
        return key

    def stash(self, text: str) -> str:
        return self._DATA.sub(lambda m: self.token(m.group(0)), text)

    def restore(self, text: str) -> str:
        return self._token.sub(lambda m: self.data[m.group(0)], text) if self.data else text


def warm_exporter() -> None:
    """Make the exporter and export a one-cell notebook with it, discarding the page: a process's
    first export costs ~0.8 s more than the next (nbconvert's imports, its Jinja templates and CSS
    selectors compiled, its preprocessors checked). Nothing is written."""
    from nbformat import v4

    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    cell = v4.new_code_cell("", outputs=[
        v4.new_output("display_data", {"text/html": "<p>warm-up</p>"}, metadata={META_KEY: {"table": "x"}}),
        v4.new_output("display_data", {"text/markdown": "*warm-up*"}),
        v4.new_output("display_data", {"image/png": png}, metadata={META_KEY: {"plot": "x"}}),
    ])
    export_html(v4.new_notebook(cells=[v4.new_markdown_cell("# warm-up"), cell]), title="warm-up")


def warm_exporter_if_cold() -> None:
    """:func:`warm_exporter` unless this process has made its exporter already; a failure there is
    left to the real export to report."""
    if _exporter.cache_info().currsize:
        return
    try:
        warm_exporter()
    except Exception:  # noqa: BLE001, S110 - the real export says what is wrong
        pass


def warm_exporter_meanwhile() -> threading.Thread | None:
    """Start :func:`warm_exporter` in a daemon thread when this process has not exported yet, and
    return it (join it before exporting: the exporter is made once). write_reports calls this while
    the kernel executes the notebook, when this process has nothing else to do; a failure there is
    left to the real export to report."""
    if _exporter.cache_info().currsize:
        return None
    thread = threading.Thread(target=warm_exporter_if_cold, name="mbm-warm-html-exporter", daemon=True)
    thread.start()
    return thread


def fallback_html(error: str, markdown_text: str) -> str:
    """A minimal page when the notebook could not be exported: the error and the Markdown report."""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>marketbayesmeta run report"
            f"</title></head><body><h1>marketbayesmeta run report</h1><p>The HTML report could not be built "
            f"({html.escape(error)}). The Markdown report follows.</p><pre style=\"white-space: pre-wrap\">"
            f"{html.escape(markdown_text)}</pre></body></html>\n")
