"""The NUTS step's compiled log-density function, kept across runs.

PyTensor keeps the C code it compiles (its compile directory), but not the graph rewriting that
comes before: building a model's NUTS step rewrites the same ~300-node log-density-and-gradient
graph in every run and every portfolio worker, ~1 s of one core on 2 cores, the largest part of a
warm run's model build. A compiled PyTensor function pickles with its rewritten graph, and an
unpickled one is linked again (from the C cache) without rewriting (PyTensor's own
``reoptimize_unpickled_function`` is off by default), so the function is kept on disk after its
first compile: ``<PyTensor compiledir>/marketbayesmeta-functions/<key>.pkl``, beside the C modules
it links to (removing the compile directory removes both; PyTensor leaves a directory without a
``key.pkl`` alone).

- **The key** is a SHA-256 digest of everything the compile is given, written out canonically
  (:func:`describe`): every operation with all its parameters, every constant's bytes, every input's
  type and name, the outputs; the compile mode; the model's ``check_bounds``; PyTensor's whole
  configuration; the versions of Python, NumPy, PyTensor and PyMC; this module's own code. Anything the canonical form
  cannot write out exactly (an operation it does not know how to describe, a random generator, a
  ``givens`` or ``updates`` argument, an operation with an inner graph such as the
  meta-regression's ``AllocDiag``) leaves that compile uncached. A change to the model's code
  changes the graph, hence the key: a stale function is never loaded.
- **No data are stored.** The graph's shared variables (``pm.Data``: y, se, the prior parameters)
  are written as references by name (pickle's persistent IDs) and bound, when the function is
  loaded, to the variables of the model being built: a loaded function reads the model's data
  exactly as a freshly compiled one does (checked on every load: each input read from the
  variable's own storage cell, where ``set_value`` writes), and the cache holds no study's numbers.
- **It can only fail towards compiling.** A missing, unreadable, corrupt or foreign file is a miss:
  the function is compiled as before and written again (atomically: a temporary file, then
  ``os.replace``; two processes writing the same key write the same function). A cache that cannot
  be written is skipped.

The same rewritten graph links to the same C module, so the draws do not depend on whether the
function came from the cache (``tests/test_function_cache.py``).

Where it applies: :func:`cached_compiles` around ``pm.NUTS(...)`` in
:meth:`.model.FitModel.step`; PyMC compiles the step's log-density through the ``compile`` of
``pymc.model.core`` (``ValueGradFunction``), which the context replaces for its duration.
"""

from __future__ import annotations

import contextlib
import copyreg
import hashlib
import io
import os
import pickle
import sys
import tempfile
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

DIRECTORY = "marketbayesmeta-functions"
# This module's own code is part of the key (it stands for the files' format): a file written by
# another version of it (which may bind the data otherwise) is never loaded.
_OWN_CODE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


class Uncacheable(Exception):
    """The compile's arguments cannot be written out exactly: compile it, keep nothing."""


# ----------------------------------------------------------------------------- canonical text


def text(value: Any, depth: int = 0) -> str:
    """``value`` written out so that two values with the same text are the same for PyTensor:
    numbers and strings by ``repr``, arrays by dtype, shape and a digest of their bytes, classes
    and functions by qualified name, operations and types by their ``__props__`` (what PyTensor
    compares them by), other objects by class and attributes. Raises :class:`Uncacheable` for
    anything else (the compile then goes uncached)."""
    if depth > 24:
        raise Uncacheable("nested too deeply")
    if value is None or isinstance(value, bool | int | float | complex | str):
        return repr(value)
    if isinstance(value, np.ndarray | np.generic):
        a = np.ascontiguousarray(value)
        return f"array({a.dtype.str},{a.shape},{hashlib.sha256(a.tobytes()).hexdigest()})"
    if isinstance(value, np.dtype):
        return f"dtype({value.str})"
    if isinstance(value, tuple):
        return "(" + ",".join(text(v, depth + 1) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ",".join(text(v, depth + 1) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(sorted(f"{text(k, depth + 1)}:{text(v, depth + 1)}" for k, v in value.items())) + "}"
    if isinstance(value, set | frozenset):
        return "{" + ",".join(sorted(text(v, depth + 1) for v in value)) + "}"
    if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType):
        return f"<{value.__module__}.{value.__qualname__}>"
    if isinstance(value, slice):
        return f"slice({text(value.start, depth + 1)},{text(value.stop, depth + 1)},{text(value.step, depth + 1)})"
    cls = type(value)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if hasattr(value, "fgraph") and not hasattr(cls, "__props__"):
        raise Uncacheable(f"a {name} with an inner graph")  # e.g. OpFromGraph (AllocDiag)
    props = getattr(cls, "__props__", None)
    if props is not None:
        return f"{name}(" + ",".join(f"{p}={text(getattr(value, p), depth + 1)}" for p in props) + ")"
    attributes = getattr(value, "__dict__", None)
    if attributes is not None:  # e.g. a scalar operation (compared by class and attributes)
        return f"{name}{text(attributes, depth + 1)}"
    raise Uncacheable(f"cannot describe a {name}")


def _mode_text(mode: Any) -> str:
    from pytensor.compile.mode import get_mode

    mode = get_mode(mode)
    query = mode.provided_optimizer
    parts = [type(mode).__name__, f"{type(mode.linker).__module__}.{type(mode.linker).__qualname__}"]
    if hasattr(mode.linker, "allow_gc"):
        parts.append(f"allow_gc={mode.linker.allow_gc}")
    for attr in ("include", "exclude", "require"):
        parts.append(f"{attr}=" + ",".join(sorted(getattr(query, attr, ()))))
    if getattr(query, "subquery", None) or getattr(query, "extra_rewrites", None):
        raise Uncacheable("a rewrite query with subqueries or extra rewrites")
    parts.append(f"cutoff={getattr(query, 'position_cutoff', None)!r}")
    return "|".join(parts)


def _environment_text() -> str:
    import pymc
    import pytensor

    config = pytensor.config
    return "\n".join([f"cache code {_OWN_CODE}", f"python {sys.version}", f"numpy {np.__version__}",
                      f"pytensor {pytensor.__version__}", f"pymc {pymc.__version__}",
                      *(f"{name}={_setting(config, name, param)}"
                        for name, param in sorted(config._config_var_dict.items()))])


def _setting(config: Any, name: str, param: Any) -> str:
    """A PyTensor setting as the user gave it (flags, configuration file), else its default. A
    default PyTensor detects (e.g. ``blas__ldflags``, ~0.3 s to find) is written as detected, not
    detected here: the installed libraries it depends on are those of this machine, whose compile
    directory holds the cache."""
    if callable(param.default):
        try:
            return repr(config.fetch_val_for_key(name))
        except KeyError:
            return "<detected>"
    return repr(getattr(config, name))


def describe(inputs: list[Any], outputs: list[Any], mode: Any, check_bounds: bool) -> tuple[str, dict[str, Any]]:
    """The canonical text of a compile of ``outputs`` from ``inputs`` and the shared variables it
    reads (by name). Raises :class:`Uncacheable` when it cannot be written out exactly."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant, Variable
    from pytensor.graph.traversal import graph_inputs, io_toposort
    from pytensor.tensor.sharedvar import TensorSharedVariable

    if not all(isinstance(v, Variable) for v in [*inputs, *outputs]):
        raise Uncacheable("inputs or outputs that are not plain variables")
    roots = list(graph_inputs(outputs))
    names: dict[Any, str] = {}
    lines = [_environment_text(), f"mode {_mode_text(mode)}", f"check_bounds {bool(check_bounds)}"]
    shared: dict[str, Any] = {}
    for i, v in enumerate(inputs):
        if v.owner is not None:
            raise Uncacheable("an input computed from others")
        names[v] = f"i{i}"
        lines.append(f"i{i} input {text(v.type)}")
    for v in roots:
        if v in names:
            continue
        if isinstance(v, SharedVariable):
            if type(v) is not TensorSharedVariable or not v.name or v.name in shared:
                raise Uncacheable("a shared variable that is not a uniquely named tensor")
            shared[v.name] = v
            names[v] = f"s:{v.name}"
            lines.append(f"s:{v.name} shared {text(v.type)}")
        elif isinstance(v, Constant):
            names[v] = f"c{len(names)}"
            lines.append(f"{names[v]} constant {text(v.type)} {text(v.data)}")
        else:
            raise Uncacheable(f"an input {v} not given")
    for n, node in enumerate(io_toposort(roots, outputs)):
        ins = ",".join(names[v] for v in node.inputs)
        for k, out in enumerate(node.outputs):
            names[out] = f"n{n}.{k}"
        lines.append(f"n{n} {text(node.op)}({ins}) -> " + ",".join(text(o.type) for o in node.outputs))
    lines.append("outputs " + ",".join(names[v] for v in outputs))
    return "\n".join(lines), shared


# ----------------------------------------------------------------------------- the files


def _params(params_type: Any, values: dict[str, Any]) -> Any:
    """A PyTensor ``Params`` (an immutable dict, which pickle cannot rebuild item by item)."""
    from pytensor.link.c.params_type import Params

    return Params(params_type, **values)


class _Pickler(pickle.Pickler):
    """Writes a compiled function with its shared variables, their containers, the storage cells
    the function reads them from and their values as references by name."""

    def __init__(self, file: Any, shared: dict[str, Any]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        from pytensor.link.c.params_type import Params

        self.dispatch_table = {**copyreg.dispatch_table, Params: lambda p: (_params, (p.__params_type__, dict(p)))}
        self._refs: dict[int, tuple[str, str]] = {}
        for name, var in shared.items():
            self._refs[id(var)] = ("variable", name)
            self._refs[id(var.container)] = ("container", name)
            # the one-item list a function reads the value from (its own containers wrap it)
            self._refs[id(var.container.storage)] = ("storage", name)
            self._refs[id(var.container.data)] = ("value", name)

    def persistent_id(self, obj: Any) -> Any:
        return self._refs.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, shared: dict[str, Any]):
        super().__init__(file)
        self._shared = shared

    def persistent_load(self, pid: Any) -> Any:
        kind, name = pid
        var = self._shared[name]  # KeyError: a file for another graph (a miss)
        return {"variable": var, "container": var.container, "storage": var.container.storage,
                "value": var.container.data}[kind]


def directory() -> Path | None:
    """Where the functions are kept: inside PyTensor's compile directory (None without one)."""
    import pytensor

    compiledir = getattr(pytensor.config, "compiledir", None)
    return Path(compiledir) / DIRECTORY if compiledir else None


def _load(path: Path, key: str, shared: dict[str, Any]) -> Any:
    """The function kept at ``path`` bound to ``shared``, or None (a miss: absent, unreadable, or
    not the function of this key)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        payload = _Unpickler(io.BytesIO(data), shared).load()
        fn = payload["function"] if payload.get("key") == key else None
        return fn if fn is not None and _bound(fn, shared) else None
    except Exception:  # noqa: BLE001 - a corrupt or foreign file is a miss: compile instead
        return None


def _bound(fn: Any, shared: dict[str, Any]) -> bool:
    """Whether ``fn`` reads exactly ``shared``, each from the variable's own storage cell (where
    ``set_value`` writes), as a freshly compiled function does."""
    reads = {i.variable.name: (i.variable, c) for i, c in zip(fn.maker.inputs, fn.input_storage, strict=True)
             if i.implicit}
    return reads.keys() == shared.keys() and all(
        var is shared[name] and container.storage is var.container.storage for name, (var, container) in reads.items())


def _store(path: Path, key: str, fn: Any, shared: dict[str, Any]) -> None:
    """Keep ``fn`` at ``path`` (atomically); a cache that cannot be written is skipped."""
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, shared).dump({"key": key, "function": fn})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buffer.getvalue())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except Exception:  # noqa: BLE001 - no cache is only slower (read-only or full disk, ...)
        return


def compile_cached(original: Callable[..., Any], inputs: list[Any], outputs: Any, random_seed: Any = None,
                   mode: Any = None, **kwargs: Any) -> Any:
    """PyMC's ``compile(inputs, outputs, random_seed, mode, **kwargs)`` (``original``), with the
    function kept in :func:`directory` and loaded from there when it holds this compile's."""
    def compiled() -> Any:
        return original(inputs, outputs, random_seed=random_seed, mode=mode, **kwargs)

    where = directory()
    if (where is None or random_seed is not None or kwargs.get("givens") or set(kwargs) - {"givens"}
            or not isinstance(outputs, list | tuple)):
        return compiled()
    from pymc.model import modelcontext

    try:
        check_bounds = modelcontext(None).check_bounds
    except TypeError:  # no model on the context stack
        check_bounds = True
    try:
        description, shared = describe(list(inputs), list(outputs), mode, check_bounds)
    except Uncacheable:
        return compiled()
    key = hashlib.sha256(description.encode()).hexdigest()
    path = where / f"{key}.pkl"
    fn = _load(path, key, shared)
    if fn is None:
        fn = compiled()
        _store(path, key, fn, shared)
    return fn


@contextlib.contextmanager
def cached_compiles() -> Iterator[None]:
    """Inside the block, PyMC's model code compiles through :func:`compile_cached` (the NUTS
    step's log-density and gradient: ``ValueGradFunction``)."""
    import pymc.model.core as core

    original = core.compile
    core.compile = lambda *args, **kwargs: compile_cached(original, *args, **kwargs)
    try:
        yield
    finally:
        core.compile = original
