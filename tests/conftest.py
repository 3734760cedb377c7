"""Shared pytest set-up for every test directory.

The ``mutation`` hypothesis profile (``--hypothesis-profile=mutation``, used by ``make mutation``)
turns off the per-example deadline, which the slower mutated code would otherwise trip (a deadline
error would count as a killed mutant), and derandomises the examples so that every mutant is
tested on the same ones.

The tests compile into a PyTensor cache of their own, ``$XDG_CACHE_HOME/marketbayesmeta-tests/...``
(default ``~/.cache/marketbayesmeta-tests/...``), not the runs' ``~/.cache/marketbayesmeta/pytensor``:
the suite compiles 100+ throwaway model designs (regression designs, centred models), and every
run's process reads the key of every module in its cache once (~4 ms a module), so a developer's
runs after the tests would pay ~0.5 s each for them. The subprocesses the tests start inherit the
choice; a compile directory the developer chose (``PYTENSOR_FLAGS``, ``~/.pytensorrc``) wins.
"""

from __future__ import annotations

import os
import sys

from hypothesis import settings

from marketbayesmeta.runtime.compiledir import flags_with_own_compiledir, own_compiledir


def _tests_compile_into_their_own_cache() -> None:
    if "pytensor" in sys.modules:
        return
    cache_home = own_compiledir(os.environ).parent.parent  # $XDG_CACHE_HOME or ~/.cache
    flags = flags_with_own_compiledir({**os.environ, "XDG_CACHE_HOME": str(cache_home / "marketbayesmeta-tests")})
    if flags is not None:
        os.environ["PYTENSOR_FLAGS"] = flags


_tests_compile_into_their_own_cache()

settings.register_profile("mutation", deadline=None, derandomize=True)


# Under `make mutation` (tools/mutation.py sets MARKETBAYESMETA_MUTATION=1) these slow tests run
# after the others: mutmut stops a mutant's tests at the first failure, and a mutant the fast exact
# comparisons catch should not first pay for ~20 s of calibration. The set of tests is unchanged.
SLOW_LAST = ("test_intervals_are_calibrated_under_the_prior", "test_large_k_is_fast_and_accurate")


def pytest_collection_modifyitems(config: object, items: list) -> None:
    if os.environ.get("MARKETBAYESMETA_MUTATION") == "1":
        items.sort(key=lambda item: item.name.split("[")[0] in SLOW_LAST)
