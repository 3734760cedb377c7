"""Unit → model-scale transforms (SPEC §4), vectorised over numpy arrays.

The logarithms and exponentials are the C library's (:mod:`marketbayesmeta.libm`), not numpy's,
whose results depend on the CPU in the last bit: the same tracker gives the same plan everywhere.

Each transform has a forward map ``f``, its derivative (for the delta method) and its inverse
(for reporting and tests). An SE on the source unit becomes ``|f'(x)| · se``; a CI becomes the
transformed bounds' width divided by ``2 z`` for its level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .. import libm

Array = np.ndarray


@dataclass(frozen=True)
class UnitTransform:
    name: str
    formula: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array], Array]
    inverse: Callable[[Array], Array]
    # Exclusive lower bound of the source values the transform accepts (None: every finite
    # number). The tracker refuses values at or below it, naming the unit (SPEC §4).
    lower_bound: float | None

    @property
    def domain(self) -> str:
        """The valid source values in words, e.g. ``x > -100``."""
        return "any finite number" if self.lower_bound is None else f"x > {self.lower_bound:g}"


IDENTITY = UnitTransform("identity", "x", lambda x: x, np.ones_like, lambda y: y, None)
TRANSFORMS: dict[tuple[str, str], UnitTransform] = {
    ("relative_percent", "log_relative"): UnitTransform(
        "log1p_percent", "log(1 + x/100)", lambda x: libm.log1p(x / 100.0),
        lambda x: 1.0 / (100.0 + x), lambda y: 100.0 * libm.expm1(y), -100.0),
    ("relative_fraction", "log_relative"): UnitTransform(
        "log1p_fraction", "log(1 + x)", libm.log1p, lambda x: 1.0 / (1.0 + x), libm.expm1, -1.0),
    ("ratio", "log_relative"): UnitTransform(
        "log_ratio", "log(x)", libm.log, lambda x: 1.0 / x, libm.exp, 0.0),
    ("log_relative", "log_relative"): IDENTITY,
    ("percentage_point", "percentage_point"): IDENTITY,
    ("proportion_difference", "percentage_point"): UnitTransform(
        "times_100", "100 · x", lambda x: 100.0 * x, lambda x: np.full_like(x, 100.0),
        lambda y: y / 100.0, None),
}
# The model scale's usable numbers: a model-scale estimate within ±MODEL_ABS_MAX and a
# model-scale SE within MODEL_SE_RANGE. Squares, reciprocals and products of such numbers stay
# finite and non-zero in the fit; rows (and configured scenario SEs) outside are input errors.
MODEL_ABS_MAX = 1e6
MODEL_SE_RANGE = (1e-6, 1e6)
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
    with np.errstate(invalid="ignore"):
        # 0.5 + p/2 rounds to 1 for p within 1e-16 of 1 (no finite quantile) and to 0.5 for p
        # below 1e-16 (a zero quantile cannot scale a width): both are NaN, never an exception.
        ok = (lv > 0) & (lv < 1) & (0.5 + lv / 2.0 < 1.0) & (0.5 + lv / 2.0 > 0.5)
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
