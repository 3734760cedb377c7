"""A report page read with the stdlib HTML parser: text, tags, URLs, images, tables, markers."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path


class Page(HTMLParser):
    """Text, tags, URL attributes, images and data-table names of an HTML document (stdlib parser)."""

    def __init__(self, path: Path) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.images: list[str] = []
        self.tables: list[str] = []
        self.nfu: int = 0
        self.feed(path.read_text(encoding="utf-8"))
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        for k in ("src", "href"):
            if a.get(k) is not None:
                self.urls.append(str(a[k]))
        if tag == "img" and a.get("src"):
            self.images.append(str(a["src"]))
        if a.get("data-table"):
            self.tables.append(str(a["data-table"]))
        if a.get("class") in ("mbm-nfu", "mbm-nfu-caption"):
            self.nfu += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def joined(self) -> str:
        return " ".join(self.text)
