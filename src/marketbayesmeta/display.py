"""User text on a terminal: control characters made visible (issue 16).

A study_id, a note or an archive member name can hold terminal escape sequences (ESC [ ...),
carriage returns, newlines or bidirectional overrides. Printed raw, they recolour or rewrite the
terminal, break a table's lines or forge a line of output ("OK: all files match"). Every such
character is shown as a JSON-style escape (``\\n``, ``\\t``, ``\\r``, ``\\u001b``, ``\\u202e``),
so the text stays readable, and valid inside JSON strings.

* :func:`visible` for one piece of user text (a table cell, a path, a name): every control
  character escaped, newlines included.
* :func:`for_terminal` for a whole message we composed (several lines): the same, except the
  newlines that separate its lines. The CLI passes everything it prints through it.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, line/paragraph separators, bidirectional marks, embeddings,
# overrides and isolates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029"
                                  "\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    return _NAMED.get(ch) or f"\\u{ord(ch):04x}"


def visible(text: object) -> str:
    """``text`` with every control character shown as an escape (one line, always)."""
    return _CONTROL.sub(_escape, str(text))


def for_terminal(text: object) -> str:
    """``text`` with every control character but the newline shown as an escape."""
    return _CONTROL_BUT_NEWLINE.sub(_escape, str(text))
