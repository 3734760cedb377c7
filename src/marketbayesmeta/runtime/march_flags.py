"""g++'s ``-march=native`` flags for PyTensor, found once per machine instead of once per process.

The first time a process links compiled C code (loading the NUTS step's module from the cache
included), PyTensor asks g++ what ``-march=native`` stands for on this CPU and then compiles, links
and runs a test program with those flags: 0.2-0.3 s of every run's and every portfolio worker's
critical path on 2 cores, with the same answer each time. The answer (``GCC_compiler.march_flags``)
is kept in ``<PyTensor compiledir>/marketbayesmeta-functions/march-<key>.json`` and given back to
PyTensor before it would look (PyTensor skips its detection when the flags are set).

The key is a SHA-256 of what the answer depends on: the compiler (its path, size and modification
time), PyTensor's C++ flags setting, the CPU (model name and feature flags from ``/proc/cpuinfo``)
and PyTensor's version. A compile directory shared by machines with other CPUs or compilers keeps
one answer per machine kind. Without ``/proc/cpuinfo`` (not Linux), without g++, or with a
``-march`` of the user's own in the C++ flags, nothing is kept and PyTensor detects as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .function_cache import directory

_CPU_FIELDS = ("model name", "flags")


def _cpu() -> str | None:
    """The CPU's model name and feature flags (first processor), or None when unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name in _CPU_FIELDS and name not in found:
            found[name] = " ".join(value.split())
    return "\n".join(f"{k}={found[k]}" for k in _CPU_FIELDS) if "flags" in found else None


def key() -> str | None:
    """What the detected flags depend on, digested; None when they cannot be kept."""
    import pytensor

    config = pytensor.config
    cxx = config.cxx
    cpu = _cpu()
    if not cxx or "g++" not in cxx or cpu is None or "-march" in config.gcc__cxxflags:
        return None
    path = shutil.which(cxx) or cxx
    try:
        st = os.stat(os.path.realpath(path))
    except OSError:
        return None
    text = "\n".join([f"cxx={os.path.realpath(path)} {st.st_size} {st.st_mtime_ns}",
                      f"cxxflags={config.gcc__cxxflags}", f"pytensor={pytensor.__version__}", cpu])
    return hashlib.sha256(text.encode()).hexdigest()


def _path() -> Path | None:
    where, k = directory(), key()
    return None if where is None or k is None else where / f"march-{k}.json"


def _compiler() -> Any:
    from pytensor.link.c.cmodule import GCC_compiler

    return GCC_compiler


def restore() -> bool:
    """Give PyTensor the flags kept for this machine (before it detects them); True when done."""
    compiler = _compiler()
    if compiler.march_flags is not None:
        return False  # detected (or given) already in this process
    path = _path()
    if path is None:
        return False
    try:
        flags = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        return False
    compiler.march_flags = flags
    return True


def remember() -> None:
    """Keep the flags PyTensor detected in this process (atomically; nothing when there are none
    yet or they cannot be written)."""
    flags = _compiler().march_flags
    path = _path()
    if flags is None or path is None or path.is_file():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(list(flags), f)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return
