"""Formatting rules of the report: numbers, probabilities, escaping for Markdown and plot labels.

Two number rules, each defined once:

* :func:`format_number`: tables and the appendix, ``digits`` (4) significant digits;
* :func:`effect_triple` (in :mod:`.unit`) for the summary, 2–3 significant figures in the pool's
  business unit, built on :func:`decimals_for` and :func:`signed`.

User text is escaped by :func:`md_escape` (Markdown that may be rendered as HTML) and
:func:`plot_label` (matplotlib, no mathtext); HTML is escaped with :func:`html.escape` where it is
written (tables by pandas ``to_html(escape=True)``).
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

SIG_DIGITS = 4
MINUS = "\u2212"  # typographic minus for the summary numbers
REVIEW_NOTE = "review material, not an automatic decision"


def to_float(value: Any) -> float:
    """``value`` as a float; NaN when it is missing or not a number."""
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def is_num(value: Any) -> bool:
    return math.isfinite(to_float(value)) and not isinstance(value, bool)


def format_number(value: Any, digits: int = SIG_DIGITS) -> str:
    """The table rule: ``digits`` significant digits, plain notation for magnitudes from 1e-4 to
    1e6, scientific otherwise; ``n/a`` for missing values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    v = to_float(value)
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    if v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    r = float(f"{v:.{digits}g}")
    mag = math.floor(math.log10(abs(r)))
    if -4 <= mag < 6:
        return f"{r:.{max(digits - 1 - mag, 0)}f}"
    return f"{r:.{digits - 1}e}"


def _decimals(value: float, sig: int) -> int:
    """Decimals that show ``value`` with ``sig`` significant figures (0 when it is >= 10**(sig-1))."""
    return max(0, sig - 1 - math.floor(math.log10(abs(value)))) if value and math.isfinite(value) else 0


def decimals_for(values: list[float], sig: int = 2) -> int:
    """Shared decimals for an estimate and its interval (``values[0]`` is the estimate): the
    estimate gets ``sig`` significant figures unless that would give the largest value more than
    ``sig + 1``; the largest value always gets at least ``sig``. So ``2.75 [1.28, 4.23]`` reads
    ``2.8 [1.3, 4.2]`` and ``3.53 [-7.13, 14.75]`` reads ``3.5 [-7.1, 14.8]``."""
    finite = [abs(v) for v in values if math.isfinite(v)]
    if not finite:
        return 0
    big = max(finite)
    head = abs(values[0]) if math.isfinite(values[0]) else big
    return max(_decimals(big, sig), min(_decimals(head or big, sig), _decimals(big, sig + 1)))


def signed(value: float, decimals: int, suffix: str = "") -> str:
    """``+2.8 %``, ``−1.3 %``, ``0.0 %``: explicit sign, typographic minus."""
    if not math.isfinite(value):
        return "n/a"
    text = f"{abs(value):.{decimals}f}"
    if float(text) == 0:
        sign = ""
    else:
        sign = "+" if value > 0 else MINUS
    return f"{sign}{text}{suffix}"


def format_probability(p: Any) -> str:
    """A probability in words-friendly per cent: ``97 %``, ``> 99 %``, ``< 1 %``."""
    v = to_float(p)
    if not math.isfinite(v):
        return "n/a"
    pct = 100 * v
    if pct > 99.5:
        return "> 99 %"
    if pct < 0.5:
        return "< 1 %"
    return f"{pct:.0f} %"


def interval_label(level: Any) -> str:
    """``0.95`` -> ``"95 %"``."""
    v = to_float(level)
    return f"{v * 100:g} %" if math.isfinite(v) else "posterior"


class MdSafe(str):
    """Markdown that is already safe (built from escaped parts); never escaped again."""


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|#~$!])")


def md_escape(value: Any) -> MdSafe:
    """Escape text for Markdown that may be rendered as HTML.

    ``&``, ``<`` and ``>`` become entities (no raw HTML can get through), Markdown control
    characters are backslash-escaped, and line breaks collapse to spaces so text stays inline.
    """
    if isinstance(value, MdSafe):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MdSafe("")
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = re.sub(r"\s*[\r\n]+\s*", " ", text)
    return MdSafe(text)


def plot_label(value: Any, width: int = 48) -> str:
    """Text for a matplotlib label: ``$`` escaped (no mathtext), shortened."""
    text = re.sub(r"\s+", " ", "" if value is None else str(value)).strip()
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("$", r"\$")


def truthy(value: Any) -> bool | None:
    """``true``/``false`` cells (or bools) as bool; None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        with contextlib.suppress(Exception):
            return truthy(value.item())
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "pass", "passed"):
        return True
    if text in ("false", "no", "0", "fail", "failed"):
        return False
    return None


def flagged(value: Any) -> bool:
    """A ppc ``flag`` cell: true, or any label other than an empty/negative one."""
    t = truthy(value)
    if t is not None:
        return t
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return str(value).strip().lower() not in ("", "ok", "none", "nan")


def listing(items: list[str], limit: int = 12) -> str:
    """``a, b and 3 more`` (items already escaped)."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def verdict_word(verdict: str) -> str:
    """The short form of a triangulation verdict: ``in the tail (outside the central 90 %)`` -> ``in the tail``."""
    return verdict.split(" (", 1)[0].strip() or "no verdict"
