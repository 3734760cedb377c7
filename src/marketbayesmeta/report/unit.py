"""The pool's business unit: how a model-scale number is shown to a stakeholder.

* ``log_relative``: a relative lift in per cent, ``100·(exp(x) − 1)``; the CSVs carry it in the
  ``<column>_pct`` columns, which are preferred (they are exact for means of mixtures);
* ``percentage_point``: the model scale is already the business unit (pp).

Summary numbers have 2–3 significant figures with the decimals shared across an estimate and its
interval (:func:`~.fmt.decimals_for`), e.g. ``+2.8 % (95 %: +1.3 % to +4.2 %)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .fmt import decimals_for, interval_label, signed, to_float


class Unit:
    def __init__(self, scale: str):
        self.scale = scale
        self.relative = scale == "log_relative"
        self.points = scale == "percentage_point"
        self.suffix = " %" if self.relative else " pp" if self.points else ""
        self.name = ("relative lift" if self.relative else "percentage points" if self.points
                     else f"{scale} scale")
        self.axis_label = ("lift (%)" if self.relative else "effect (percentage points)" if self.points
                           else f"effect ({scale} scale)")

    # -- conversions --------------------------------------------------------------------------
    def from_model(self, x: Any) -> Any:
        """Model scale -> business unit (array or float)."""
        if not self.relative:
            return x
        arr = np.asarray(x, dtype=float)
        out = 100 * np.expm1(np.clip(arr, -50, 50))
        return float(out) if out.ndim == 0 else out

    def to_model(self, p: Any) -> Any:
        if not self.relative:
            return p
        arr = np.clip(np.asarray(p, dtype=float) / 100, -0.999999, None)
        out = np.log1p(arr)
        return float(out) if out.ndim == 0 else out

    def value(self, row: Any, column: str) -> float:
        """``row[column]`` in the business unit: its ``_pct`` column when the CSV has one
        (``row``: a dict or a pandas row)."""
        if row is None:
            return math.nan
        if self.relative:
            pct = to_float(row.get(f"{column}_pct"))
            if math.isfinite(pct):
                return pct
        v = to_float(row.get(column))
        return self.from_model(v) if math.isfinite(v) else math.nan

    def triple(self, row: Any, prefix: str = "") -> tuple[float, float, float]:
        """(mean, lower, upper) of ``row`` in the unit; ``prefix`` e.g. ``mu_`` for influence.csv."""
        return (self.value(row, f"{prefix}mean"), self.value(row, f"{prefix}lower"),
                self.value(row, f"{prefix}upper"))

    # -- text ---------------------------------------------------------------------------------
    def text(self, value: float, decimals: int | None = None) -> str:
        d = decimals_for([value]) if decimals is None else decimals
        return signed(value, d, self.suffix)

    def estimate(self, mean: float, lower: float, upper: float, level: Any,
                 approx: bool = True) -> str:
        """``≈ +2.8 % (95 %: +1.3 % to +4.2 %)``."""
        d = decimals_for([mean, lower, upper])
        head = ("≈ " if approx else "") + self.text(mean, d)
        if not (math.isfinite(lower) and math.isfinite(upper)):
            return head
        return f"{head} ({interval_label(level)}: {self.text(lower, d)} to {self.text(upper, d)})"

    def bracket(self, mean: float, lower: float, upper: float) -> str:
        """``+2.8 [+1.3, +4.2]`` (forest plot text column; the unit is in the column header)."""
        d = decimals_for([mean, lower, upper])
        return f"{signed(mean, d)} [{signed(lower, d)}, {signed(upper, d)}]"

    def spread(self, tau_value: float) -> str:
        """A typical spread (always positive), 2 significant figures: ``±1.2 %``."""
        if not math.isfinite(tau_value):
            return "n/a"
        return f"±{abs(tau_value):.{decimals_for([tau_value])}f}{self.suffix}"
