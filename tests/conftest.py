"""Shared pytest set-up for every test directory.

The ``mutation`` hypothesis profile (``--hypothesis-profile=mutation``, used by ``make mutation``)
turns off the per-example deadline, which the slower mutated code would otherwise trip (a deadline
error would count as a killed mutant), and derandomises the examples so that every mutant is
tested on the same ones.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True)


# Under `make mutation` (tools/mutation.py sets MARKETBAYESMETA_MUTATION=1) these slow tests run
# after the others: mutmut stops a mutant's tests at the first failure, and a mutant the fast exact
# comparisons catch should not first pay for ~20 s of calibration. The set of tests is unchanged.
SLOW_LAST = ("test_intervals_are_calibrated_under_the_prior", "test_large_k_is_fast_and_accurate")


def pytest_collection_modifyitems(config: object, items: list) -> None:
    import os

    if os.environ.get("MARKETBAYESMETA_MUTATION") == "1":
        items.sort(key=lambda item: item.name.split("[")[0] in SLOW_LAST)
