"""Unit → model-scale transforms (SPEC §4), vectorised over numpy arrays.

Each transform has a forward map ``f``, its derivative (for the delta method) and its inverse
(for reporting and tests). An SE on the source unit becomes ``|f'(x)| · se``; a CI becomes the
transformed bounds' width divided by ``2 z`` for its level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class UnitTransform:
    name: str
    formula: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array], Array]
    inverse: Callable[[Array], Array]
    domain: str  # human description of the valid source values


IDENTITY = UnitTransform("identity", "x", lambda x: x, np.ones_like, lambda y: y, "any number")
TRANSFORMS: dict[tuple[str, str], UnitTransform] = {
    ("relative_percent", "log_relative"): UnitTransform(
        "log1p_percent", "log(1 + x/100)", lambda x: np.log1p(x / 100.0),
        lambda x: 1.0 / (100.0 + x), lambda y: 100.0 * np.expm1(y), "x > -100"),
    ("relative_fraction", "log_relative"): UnitTransform(
        "log1p_fraction", "log(1 + x)", np.log1p, lambda x: 1.0 / (1.0 + x), np.expm1, "x > -1"),
    ("ratio", "log_relative"): UnitTransform(
        "log_ratio", "log(x)", np.log, lambda x: 1.0 / x, np.exp, "x > 0"),
    ("log_relative", "log_relative"): IDENTITY,
    ("percentage_point", "percentage_point"): IDENTITY,
    ("proportion_difference", "percentage_point"): UnitTransform(
        "times_100", "100 · x", lambda x: 100.0 * x, lambda x: np.full_like(x, 100.0),
        lambda y: y / 100.0, "any number"),
}
UNITS = ("relative_percent", "relative_fraction", "ratio", "log_relative", "percentage_point",
         "proportion_difference")
SCALES = ("log_relative", "percentage_point")


def transform_for(unit: str, scale: str) -> UnitTransform | None:
    """The transform from ``unit`` to ``scale``, or None when they are incompatible."""
    return TRANSFORMS.get((unit, scale))


def z_for_level(level: Array | float) -> Array:
    """Two-sided standard-normal quantile for a central interval of ``level`` (a fraction)."""
    lv = np.asarray(level, dtype=float)
    out = np.full(lv.shape, np.nan)
    ok = (lv > 0) & (lv < 1)
    nd = NormalDist()
    flat = np.vectorize(lambda p: nd.inv_cdf(0.5 + p / 2.0), otypes=[float])
    if ok.any():
        out[ok] = flat(lv[ok])
    return out


def se_from_ci(t: UnitTransform, lower: Array, upper: Array, level: Array) -> Array:
    """Model-scale SE from a source-unit CI: (f(upper) − f(lower)) / (2 z_level)."""
    return (t.forward(np.asarray(upper, float)) - t.forward(np.asarray(lower, float))) / (2.0 * z_for_level(level))


def se_delta(t: UnitTransform, estimate: Array, se: Array) -> Array:
    """Model-scale SE from a source-unit SE by the delta method: |f'(x)| · se."""
    return np.abs(t.derivative(np.asarray(estimate, float))) * np.asarray(se, float)
