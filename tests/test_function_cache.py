"""runtime.function_cache keeps the NUTS step's compiled log-density across runs. It is a speed-up
only: a loaded function reads the model's current data, gives the values and the draws of a fresh
compile, holds no study's numbers, and a bad, foreign or unwritable cache only means compiling."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

Y = np.array([0.0512345678901, 0.0123456789012, 0.0934567890123, 0.0345678901234])
SE = np.array([0.0211111111111, 0.0322222222222, 0.0253333333333, 0.0414444444444])


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The cache in ``tmp_path``, with the misses (compiles that store) counted."""
    from marketbayesmeta.runtime import function_cache

    logging.getLogger("pymc").setLevel(logging.ERROR)
    seen: dict[str, object] = {"stored": 0, "dir": tmp_path / "functions"}
    monkeypatch.setattr(function_cache, "directory", lambda: seen["dir"])
    store = function_cache._store

    def counting(*args: object, **kwargs: object) -> None:
        seen["stored"] = int(seen["stored"]) + 1  # type: ignore[call-overload]
        store(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(function_cache, "_store", counting)
    return seen


def _model(y: np.ndarray = Y, se: np.ndarray = SE, **kwargs: object):  # noqa: ANN202
    from marketbayesmeta.runtime.model import build_model

    return build_model(y, se, mu_mean=0.0, mu_sd=0.5, tau_scale=0.1, **kwargs)  # type: ignore[arg-type]


def _files(cache: dict[str, object]) -> list[Path]:
    return sorted(Path(str(cache["dir"])).glob("*.pkl"))


def _fn(fm):  # noqa: ANN001, ANN202
    return fm.step()._logp_dlogp_func._pytensor_function


def test_a_loaded_function_reads_the_models_data_and_stores_none(cache: dict[str, object]) -> None:
    first = _model()
    _fn(first)
    assert cache["stored"] == 1 and len(_files(cache)) == 1
    raw = _files(cache)[0].read_bytes()
    for value in (*Y, *SE):  # the data are references by name, not values
        assert np.float64(value).tobytes() not in raw

    loaded, fresh = _model(), _model()
    f_loaded = _fn(loaded)
    assert cache["stored"] == 1  # loaded, not compiled
    cache["dir"] = None  # the fresh model compiles (no cache)
    f_fresh = _fn(fresh)
    assert f_loaded is not f_fresh
    bound = f_loaded.get_shared()
    assert bound and all(any(v is d for d in loaded.model.data_vars) for v in bound)
    rng = np.random.default_rng(1)
    points = rng.normal(size=(5, 2))
    # other data, other sizes: the loaded function follows set_inputs as the fresh one does
    for y, se in ((Y, SE), (Y * 1.5 - 0.01, SE * 0.7), (Y[:3] * 2, SE[:3]), (np.r_[Y, -0.2, 0.4], np.r_[SE, 0.1, 0.05])):
        for fm in (loaded, fresh):
            fm.set_inputs(y, se, 0.01, 0.3, 0.2)
        for q in points:
            a, b = f_loaded(q), f_fresh(q)
            assert float(a[0]) == float(b[0])
            np.testing.assert_array_equal(a[1], b[1])


def test_draws_from_a_loaded_function_are_those_of_a_fresh_compile(cache: dict[str, object]) -> None:
    from marketbayesmeta.runtime.model import sample_model

    _fn(_model(family="half_cauchy"))  # stores it
    loaded = _model(family="half_cauchy")
    _fn(loaded)
    assert cache["stored"] == 1
    cache["dir"] = None
    fresh = _model(family="half_cauchy")
    a = sample_model(loaded, draws=120, tune=120, chains=2, seed=11, progressbar=False)
    b = sample_model(fresh, draws=120, tune=120, chains=2, seed=11, progressbar=False)
    for name in ("mu", "tau"):
        np.testing.assert_array_equal(a.posterior[name].values, b.posterior[name].values)


def test_each_graph_has_its_own_function(cache: dict[str, object]) -> None:
    """Another tau family or parameterisation is another graph: another key, never another model's
    function. A graph the canonical form cannot write out (the meta-regression's, with an operation
    holding an inner graph) is compiled each time and gives a fresh compile's values."""
    from marketbayesmeta.runtime.model import build_regression_model

    for family in ("half_normal", "half_cauchy"):
        _fn(_model(family=family))
    _fn(_model(parameterisation="centered"))
    assert cache["stored"] == 3 and len(_files(cache)) == 3
    for family in ("half_normal", "half_cauchy"):  # loaded again, each its own
        f = _fn(_model(family=family))
        stored = int(cache["stored"])  # type: ignore[call-overload]
        cache["dir"], directory = None, cache["dir"]
        q = np.array([0.4, 0.1])
        np.testing.assert_array_equal(f(q)[1], _fn(_model(family=family))(q)[1])
        cache["dir"] = directory
        assert cache["stored"] == stored == 3

    X = np.c_[np.ones(4), [0.0, 1.0, 0.0, 1.0]]

    def regression():  # noqa: ANN202
        return build_regression_model(Y, SE, X, beta_mean=np.zeros(2), beta_sd=np.ones(2), tau_scale=0.1,
                                      terms=["intercept", "tv"])

    f = _fn(regression())
    assert len(_files(cache)) == int(cache["stored"])  # type: ignore[call-overload]
    cache["dir"] = None
    q = np.array([0.1, -0.3, 0.2])
    np.testing.assert_array_equal(f(q)[1], _fn(regression())(q)[1])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign key", "other graph"])
def test_a_bad_file_is_a_miss_and_is_replaced(cache: dict[str, object], damage: str) -> None:
    import pickle

    _fn(_model())
    (path,) = _files(cache)
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a pickle")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "foreign key":
        path.write_bytes(pickle.dumps({"key": "0" * 64, "function": None}))
    else:  # the file of another model's graph under this key
        other = _model(family="half_cauchy")
        _fn(other)
        (other_path,) = [p for p in _files(cache) if p != path]
        path.write_bytes(other_path.read_bytes())
    stored = int(cache["stored"])  # type: ignore[call-overload]
    fm = _model()
    f = _fn(fm)
    assert cache["stored"] == stored + 1  # compiled again and written again
    assert path.read_bytes() != b"not a pickle" and len(path.read_bytes()) > 1000
    fresh = _model()
    cache["dir"] = None
    q = np.array([0.3, -0.2])
    np.testing.assert_array_equal(f(q)[1], _fn(fresh)(q)[1])


def test_an_unwritable_cache_only_means_compiling(cache: dict[str, object], tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    cache["dir"] = blocker / "functions"  # cannot be created
    fm = _model()
    assert np.isfinite(float(_fn(fm)(np.array([0.1, 0.2]))[0]))
    assert not (blocker / "functions").exists()


def test_the_key_is_the_same_in_every_process(tmp_path: Path) -> None:
    """The canonical text does not depend on hash randomisation or memory addresses: processes
    with different hash seeds find the same key (else every run would miss)."""
    script = tmp_path / "key.py"
    script.write_text(
        "import numpy as np\n"
        "from marketbayesmeta.runtime import function_cache as fc\n"
        "from marketbayesmeta.runtime.model import build_model\n"
        "keys = []\n"
        "def spy(inputs, outputs, mode=None, **kw):\n"
        "    import hashlib\n"
        "    from pymc.model import modelcontext\n"
        "    text, _ = fc.describe(list(inputs), list(outputs), mode, modelcontext(None).check_bounds)\n"
        "    keys.append(hashlib.sha256(text.encode()).hexdigest())\n"
        "    assert ' at 0x' not in text\n"
        "    return orig(inputs, outputs, mode=mode, **kw)\n"
        "import pymc.model.core as core\n"
        "orig = core.compile\n"
        "core.compile = spy\n"
        "fm = build_model(np.array([.1, .2, .3]), np.array([.1, .1, .2]), mu_mean=0, mu_sd=1, tau_scale=.5)\n"
        "with fm.model:\n"
        "    import pymc as pm\n"
        "    pm.NUTS()\n"
        "print(keys[-1])\n", encoding="utf-8")
    keys = set()
    for seed in ("1", "2", "random"):
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, "PYTHONHASHSEED": seed})
        keys.add(out.stdout.strip().splitlines()[-1])
    assert len(keys) == 1 and len(keys.pop()) == 64


def test_what_cannot_be_written_out_is_compiled_and_not_kept(cache: dict[str, object]) -> None:
    import pymc as pm
    import pytensor.tensor as pt

    from marketbayesmeta.runtime import function_cache

    x = pt.dvector("x")
    rng = pm.Normal.dist(0, 1)  # a random generator in the graph
    with pm.Model():
        f = function_cache.compile_cached(pm.pytensorf.compile, [x], [x.sum() + rng])
        y = pt.dvector("y")
        g = function_cache.compile_cached(pm.pytensorf.compile, [x], [x.sum() + y.sum()], givens=[(y, pt.ones(2))])
    assert f(np.ones(2)) is not None and float(g(np.zeros(2))[0]) == 2.0
    assert cache["stored"] == 0 and not _files(cache)
    with pytest.raises(function_cache.Uncacheable):
        function_cache.text(object())


def test_the_model_step_compiles_through_the_cache(cache: dict[str, object]) -> None:
    """PyMC compiles the NUTS step's log-density through ``pymc.model.core.compile``, which
    ``cached_compiles`` replaces: a PyMC upgrade that moved it would silently lose the speed-up."""
    import pymc.model.core as core
    import pymc.pytensorf as pf

    assert core.compile is pf.compile
    _fn(_model())
    assert len(_files(cache)) == 1
    assert core.compile is pf.compile  # put back


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5))


@settings(max_examples=200, deadline=None)
@given(a=st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.tuples(c, c), max_leaves=8),
       b=st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.tuples(c, c), max_leaves=8))
def test_canonical_text_tells_values_apart(a: object, b: object) -> None:
    from marketbayesmeta.runtime.function_cache import text

    def same(x: object, y: object) -> bool:
        if isinstance(x, list | tuple) and type(x) is type(y):
            return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y, strict=True))
        return type(x) is type(y) and x == y and (not isinstance(x, float) or repr(x) == repr(y))

    assert (text(a) == text(b)) == same(a, b)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=6), st.integers(0, 5))
def test_canonical_text_of_arrays_sees_every_element(values: list[float], i: int) -> None:
    from marketbayesmeta.runtime.function_cache import text

    a = np.array(values)
    b = a.copy()
    b[i % a.size] = np.nextafter(b[i % a.size], np.inf)
    assert text(a) == text(a.copy()) and text(a) != text(b)
    assert text(a) != text(a.view(np.int64))  # the same bytes as another dtype
    assert text(a) != text(a.reshape(1, -1))


def test_the_key_sees_constants_operation_parameters_inputs_and_mode() -> None:
    """Graphs that differ only in a constant, an operation's parameter, an input's type, a shared
    variable's name or the compile mode have different canonical texts; the same graph built twice
    has the same."""
    import pytensor
    import pytensor.tensor as pt

    from marketbayesmeta.runtime.function_cache import describe

    def graph(const: float = 2.0, axis: int = 0, dtype: str = "float64", name: str = "s",
              mode: object = None, check_bounds: bool = True) -> str:
        x = pt.matrix("x", dtype=dtype)
        s = pytensor.shared(np.ones(3), name=name)
        return describe([x], [(x * const).sum(axis=axis) + s.sum()], mode, check_bounds)[0]

    base = graph()
    assert graph() == base
    others = [graph(const=3.0), graph(axis=1), graph(dtype="float32"), graph(name="t"),
              graph(mode="FAST_COMPILE"), graph(check_bounds=False)]
    assert all(o != base for o in others) and len(set(others)) == len(others)


def test_a_file_that_does_not_bind_the_data_is_a_miss(cache: dict[str, object]) -> None:
    """A file whose function would read its own copy of the data (written by a version of the
    cache that did not keep the storage cells as references) is not used: the model's data would
    change under it unseen, one pool after another in a portfolio worker."""
    from marketbayesmeta.runtime import function_cache

    class WithoutStorage(function_cache._Pickler):
        def __init__(self, file: object, shared: dict[str, object]) -> None:
            super().__init__(file, shared)
            self._refs = {k: v for k, v in self._refs.items() if v[0] != "storage"}

    _fn(_model())
    (path,) = _files(cache)
    payload = function_cache._Unpickler(__import__("io").BytesIO(path.read_bytes()),
                                        {v.name: v for v in _model().model.data_vars})
    stale = payload.load()
    stale_shared = {v.name: v for v in stale["function"].get_shared()}
    buffer = __import__("io").BytesIO()
    WithoutStorage(buffer, stale_shared).dump(stale)
    path.write_bytes(buffer.getvalue())
    stored = int(cache["stored"])  # type: ignore[call-overload]
    loaded, fresh = _model(), _model()
    f = _fn(loaded)
    assert cache["stored"] == stored + 1  # not used: compiled and written again
    cache["dir"] = None
    g = _fn(fresh)
    q = np.array([0.2, 0.1])
    for fm in (loaded, fresh):
        fm.set_inputs(Y * 1.5, SE * 0.7, 0.01, 0.3, 0.2)  # the same number of studies
    assert float(f(q)[0]) == float(g(q)[0])
