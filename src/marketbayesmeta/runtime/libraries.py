"""How the runtime loads PyTensor, ArviZ and PyMC: once per process, in one order, quietly.

``load()`` is called wherever the runtime first needs the libraries (``fits``, ``model``,
``diagnostics``, the fit and portfolio workers); it does, in order:

1. chooses marketbayesmeta's own PyTensor compile directory (:mod:`.compiledir`; before PyTensor's
   first import, which reads its configuration);
2. imports ArviZ **without Numba**, then PyMC, and silences their INFO chatter and PyTensor's BLAS
   warning (progress is ours to print).

Why ArviZ without Numba. PyTensor requires Numba, so it is always installed, and ArviZ 0.x then
(a) imports Numba and compiles a Numba ufunc while ``arviz.stats.ecdf_utils`` is imported, and
(b) JIT-compiles its Numba kernels the first time ``rhat``/``ess``/``mcse`` run: about 0.7 s and
0.5 s of one core in every process (measured on 2 cores), for diagnostics of a few thousand draws
that NumPy computes in milliseconds. Numba is an optional extra of ArviZ; without it ArviZ takes
its NumPy paths, which give the same diagnostics (``tests/test_runtime_libraries.py``).

- When ArviZ is not imported yet, it is imported while ``numba`` is hidden from the import system
  (``sys.modules["numba"] = None``, put back right after), so ArviZ sees Numba as absent, exactly
  as on an installation without it. Only ArviZ and what it imports for the first time are loaded
  then; PyTensor and xarray are imported before, so they see Numba as it is (PyTensor's Numba
  backend, used by ``nuts_sampler: nutpie``, is unaffected). In such a process ArviZ stays
  Numba-free for the process's life, which is ArviZ's own supported configuration.
- When a notebook user imported ArviZ first, it is left as it is: the diagnostics switch ArviZ's
  Numba flag off only while they compute (:func:`arviz_without_numba`), and put it back.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any

_LOADED = False


def _import_arviz_without_numba() -> Any:
    if "arviz" in sys.modules:
        return sys.modules["arviz"]
    missing = object()
    numba = sys.modules.get("numba", missing)
    sys.modules["numba"] = None  # type: ignore[assignment] - 'import numba' now raises ImportError
    try:
        import arviz
    finally:
        if numba is missing:
            sys.modules.pop("numba", None)
        else:
            sys.modules["numba"] = numba  # type: ignore[assignment]
    return arviz


def load() -> None:
    """Load PyTensor, ArviZ and PyMC for the runtime (idempotent; see the module's docstring)."""
    global _LOADED
    if _LOADED:
        return
    from .compiledir import use_own_compiledir

    use_own_compiledir()  # before PyTensor's first import: its configuration is read then
    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    import pytensor  # noqa: F401 - sees Numba as installed
    import xarray  # noqa: F401 - ditto: only ArviZ's own first imports happen with Numba hidden

    _import_arviz_without_numba()
    import pymc  # noqa: F401 - sets its logger's level on import: silence it after

    logging.getLogger("pymc").setLevel(logging.ERROR)
    logging.getLogger("pytensor").setLevel(logging.ERROR)
    _LOADED = True


@contextlib.contextmanager
def arviz_without_numba() -> Iterator[Any]:
    """ArviZ with its Numba flag off for the duration (put back after); yields the module."""
    load()
    import arviz

    flag = arviz.Numba.numba_flag
    arviz.Numba.numba_flag = False
    try:
        yield arviz
    finally:
        arviz.Numba.numba_flag = flag
