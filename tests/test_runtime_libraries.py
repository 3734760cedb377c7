"""How the runtime loads its libraries (runtime/libraries.py): ArviZ without Numba, the same numbers.

Each case runs in a fresh interpreter: what is imported first is the point."""

from __future__ import annotations

import json
import subprocess
import sys

# Draws of several shapes and tails: a well-mixed chain set, an autocorrelated one, a heavy tail.
_DRAWS = """
import numpy as np
rng = np.random.default_rng(7)
ar = np.zeros((4, 1500))
for t in range(1, 1500):
    ar[:, t] = 0.9 * ar[:, t - 1] + rng.normal(size=4)
DRAWS = [rng.normal(size=(4, 1000)), ar, rng.standard_t(2, size=(4, 2000)) + np.arange(4)[:, None] * 0.05]
"""

_DIAGNOSE = """
def one(x):
    return float(np.asarray(x).reshape(-1)[0])


def diagnose(az):
    out = []
    for d in DRAWS:
        out.append([one(az.rhat(d)), one(az.ess(d, method="bulk")), one(az.ess(d, method="tail")),
                    one(az.mcse(d, method="mean")), one(az.mcse(d, method="quantile", prob=0.025)),
                    one(az.mcse(d, method="quantile", prob=0.975))])
    return out
"""


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_runtime_never_imports_numba_and_numba_stays_importable():
    got = _run(
        "import sys, json, importlib.util\n"
        "from marketbayesmeta.runtime import libraries, model, diagnostics, fits, pool_run  # noqa\n"
        "libraries.load()\n"
        "import arviz\n"
        "before = 'numba' in sys.modules\n"
        "spec = importlib.util.find_spec('numba') is not None\n"
        "import numba\n"
        "print(json.dumps({'numba_imported': before, 'flag': bool(arviz.Numba.numba_flag), 'findable': spec,\n"
        "                  'numba_module': numba.__name__}))\n")
    assert got == {"numba_imported": False, "flag": False, "findable": True, "numba_module": "numba"}


def test_arviz_without_numba_gives_the_diagnostics_arviz_with_numba_gives():
    with_numba = _run(_DRAWS + _DIAGNOSE + (
        "import json, sys, arviz as az\n"
        "assert az.Numba.numba_flag and 'numba' in sys.modules\n"
        "print(json.dumps(diagnose(az)))\n"))
    without = _run(_DRAWS + _DIAGNOSE + (
        "import json\n"
        "from marketbayesmeta.runtime.libraries import arviz_without_numba\n"
        "with arviz_without_numba() as az:\n"
        "    print(json.dumps(diagnose(az)))\n"))
    assert len(with_numba) == len(without) == 3
    for a, b in zip(with_numba, without, strict=True):
        for x, y in zip(a, b, strict=True):
            assert abs(x - y) <= 1e-12 * max(1.0, abs(x)), (a, b)


def test_a_users_arviz_keeps_its_numba_flag_outside_our_diagnostics():
    """A notebook user who imported ArviZ first keeps Numba in ArviZ; only our diagnostics run
    without it (checked inside az.rhat and az.mcse while the runtime computes them)."""
    got = _run(_DRAWS + (
        "import json, arviz as az\n"
        "from types import SimpleNamespace\n"
        "import xarray as xr\n"
        "from marketbayesmeta.runtime import diagnostics\n"
        "from marketbayesmeta.settings import Diagnostics\n"
        "seen = []\n"
        "for name in ('rhat', 'mcse'):\n"
        "    real = getattr(az, name)\n"
        "    def spy(*a, _real=real, **k):\n"
        "        seen.append(bool(az.Numba.numba_flag))\n"
        "        return _real(*a, **k)\n"
        "    setattr(az, name, spy)\n"
        "d = DRAWS[0]\n"
        "post = xr.Dataset({'mu': (('chain', 'draw'), d), 'tau': (('chain', 'draw'), abs(d))})\n"
        "stats = xr.Dataset({'diverging': (('chain', 'draw'), d > 9)})\n"
        "idata = SimpleNamespace(posterior=post, sample_stats=stats)\n"
        "diagnostics.sampler_checks('main', idata, Diagnostics())\n"
        "ex = SimpleNamespace(mean=0.0, quantiles=lambda qs: [-1.96, 1.96])\n"
        "diagnostics.exact_z_scores(idata, {'mu': ex, 'tau': ex})\n"
        "print(json.dumps({'seen': seen, 'after': bool(az.Numba.numba_flag)}))\n"))
    assert got["after"] is True
    assert got["seen"] and not any(got["seen"])


def test_pymc_is_imported_without_the_zarr_its_backend_cannot_use_and_zarr_stays_importable():
    """PyMC's Zarr trace backend needs zarr 2; with zarr 3 installed PyMC imported zarr and numcodecs
    only to find them unusable. The runtime hides them while PyMC loads: PyMC's backend is as
    (un)available as PyMC finds it alone, and zarr is importable after (nutpie uses it)."""
    alone = _run(
        "import json, pymc.backends.zarr as z\n"
        "print(json.dumps({'available': z._zarr_available}))\n")
    ours = _run(
        "import sys, json\n"
        "from importlib import metadata\n"
        "from marketbayesmeta.runtime import libraries\n"
        "libraries.load()\n"
        "import pymc.backends.zarr as z\n"
        "loaded = 'zarr' in sys.modules or 'numcodecs' in sys.modules\n"
        "import zarr\n"
        "print(json.dumps({'available': z._zarr_available, 'loaded': loaded, 'major': int(zarr.__version__.split('.')[0]),\n"
        "                  'unusable': libraries._pymc_zarr_unusable()}))\n")
    assert ours["available"] == alone["available"]
    if ours["major"] >= 3:
        assert ours == {"available": False, "loaded": False, "major": ours["major"], "unusable": True}


def test_hidden_modules_come_back_and_loaded_ones_are_left_alone():
    got = _run(
        "import sys, json, json as already\n"
        "from marketbayesmeta.runtime.libraries import _hidden\n"
        "with _hidden('json', 'colorsys'):\n"
        "    try:\n"
        "        import colorsys\n"
        "        hidden = False\n"
        "    except ImportError:\n"
        "        hidden = True\n"
        "    import json as inside\n"
        "import colorsys\n"
        "print(json.dumps({'hidden': hidden, 'kept': inside is already, 'back': colorsys.__name__}))\n")
    assert got == {"hidden": True, "kept": True, "back": "colorsys"}
