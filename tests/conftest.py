"""Shared pytest set-up for every test directory.

The ``mutation`` hypothesis profile (``--hypothesis-profile=mutation``, used by ``make mutation``)
turns off the per-example deadline, which the slower mutated code would otherwise trip (a deadline
error would count as a killed mutant), and derandomises the examples so that every mutant is
tested on the same ones.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True)
