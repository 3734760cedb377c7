"""Elementary functions with the same bits on every machine, for what goes into a plan.

numpy chooses its implementation of ``log``, ``exp``, ``log1p``, ``expm1``, ``tan`` ... by the CPU
it runs on (AVX-512 SIMD code on recent Intel and AMD processors), and those differ from the C
library's in the last bit for some inputs: ``np.log1p(0.2)`` is 0.18232155679395465 on an AVX-512
machine and 0.18232155679395462 (the correctly rounded value) elsewhere. A plan compiled from the
same config and tracker would then carry other numbers, and another plan hash, on another machine.
The compiler's unit transforms and prior conversions use these instead: the C library's functions
(:mod:`math`) element by element, with numpy's answers where ``math`` raises (``log1p(-1)`` is
-inf, ``log1p(-2)`` NaN, ``exp(1000)`` inf).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np


def _elementwise(fn: Callable[[float], float], pole: float | None = None) -> Callable[[Any], Any]:
    def one(x: float) -> float:
        try:
            return fn(x)
        except ValueError:  # outside the domain; at the pole the limit
            return -math.inf if pole is not None and x == pole else math.nan
        except OverflowError:  # only upwards: exp and expm1 of a large positive x
            return math.inf

    many = np.vectorize(one, otypes=[float])

    def apply(x: Any) -> Any:
        if np.ndim(x) == 0:
            return one(float(x))
        return many(np.asarray(x, dtype=float))

    apply.__name__ = fn.__name__
    apply.__doc__ = f"math.{fn.__name__} element-wise (see the module)."
    return apply


log = _elementwise(math.log, pole=0.0)
log1p = _elementwise(math.log1p, pole=-1.0)
exp = _elementwise(math.exp)
expm1 = _elementwise(math.expm1)
tan = _elementwise(math.tan)
