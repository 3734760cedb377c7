"""How the runtime loads PyTensor, ArviZ and PyMC: once per process, in one order, quietly.

``load()`` is called wherever the runtime first needs the libraries (``fits``, ``model``,
``diagnostics``, the fit and portfolio workers); it does, in order:

1. chooses marketbayesmeta's own PyTensor compile directory (:mod:`.compiledir`; before PyTensor's
   first import, which reads its configuration);
2. imports ArviZ **without Numba**, then PyMC **without zarr** when zarr is 3 or later (PyMC's
   Zarr backend needs zarr 2: :func:`_pymc_zarr_unusable`), and silences their INFO chatter and
   PyTensor's BLAS warning (progress is ours to print).

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


@contextlib.contextmanager
def _hidden(*names: str) -> Iterator[None]:
    """``import name`` raises ImportError for each of ``names`` inside the block (unless already
    imported: a loaded module is left as it is), as on an installation without them; the import
    system is put back after, so later imports find them."""
    missing = object()
    saved = {name: sys.modules.get(name, missing) for name in names}
    for name, module in saved.items():
        if module is missing:
            sys.modules[name] = None  # type: ignore[assignment] - 'import name' now raises ImportError
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is missing:
                sys.modules.pop(name, None)


def _import_arviz_without_numba() -> Any:
    if "arviz" in sys.modules:
        return sys.modules["arviz"]
    with _hidden("numba"):
        import arviz
    return arviz


def _pymc_zarr_unusable() -> bool:
    """PyMC 5's Zarr trace backend needs the zarr 2 API (``zarr.storage.BaseStore``, ``zarr.sync``):
    with zarr 3 (installed for nutpie) ``import pymc`` imports zarr and numcodecs (~0.25 s) only to
    find them unusable. True when the installed zarr is 3 or later (read from its metadata, without
    importing it)."""
    from importlib import metadata

    try:
        return int(metadata.version("zarr").split(".")[0]) >= 3
    except (metadata.PackageNotFoundError, ValueError):
        return False


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
    with _hidden(*(("zarr", "numcodecs") if "pymc" not in sys.modules and _pymc_zarr_unusable() else ())):
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
