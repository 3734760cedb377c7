"""Canonical JSON: round trip, float rule, NaN rejection, hashing."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbayesmeta.canonical import (
    CanonicalJSONError,
    canonical_dumps,
    canonical_hash,
    strict_loads,
)

finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | finite | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)


@given(json_values)
def test_round_trip_is_identity(value: object) -> None:
    text = canonical_dumps(value)
    assert canonical_dumps(strict_loads(text)) == text


@given(finite)
def test_floats_round_trip_exactly(x: float) -> None:
    assert strict_loads(canonical_dumps(x)) == x
    assert canonical_dumps(x) == repr(x) if x == x else True


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=8))
def test_key_order_does_not_matter(d: dict[str, int]) -> None:
    reordered = dict(reversed(list(d.items())))
    assert canonical_hash(d) == canonical_hash(reordered)


def test_no_insignificant_whitespace_and_sorted() -> None:
    assert canonical_dumps({"b": 1, "a": [1.5, "x"]}) == '{"a":[1.5,"x"],"b":1}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"a": [math.nan]}])
def test_non_finite_rejected(bad: object) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_dumps(bad)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}'])
def test_non_finite_literals_rejected_on_parse(text: str) -> None:
    with pytest.raises(CanonicalJSONError):
        strict_loads(text)


def test_hash_is_sha256_of_canonical_bytes() -> None:
    import hashlib

    value = {"x": 0.1, "y": [1, 2]}
    assert canonical_hash(value) == hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"))
                                                   .encode()).hexdigest()
