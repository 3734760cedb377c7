"""Canonical JSON and hashing: the one rule by which plans and manifests are written and hashed.

Rule: UTF-8, keys sorted, separators ``,`` and ``:``, no insignificant whitespace, floats written as
Python's shortest round-trip ``repr`` (so parse → write is the identity), integers as integers,
NaN and ±Infinity rejected.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any


class CanonicalJSONError(ValueError):
    """A value cannot be written canonically (NaN, Infinity, unsupported type)."""


def _check(value: Any, path: str = "$") -> None:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalJSONError(f"{path}: {value!r} is not allowed in canonical JSON")
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise CanonicalJSONError(f"{path}: key {k!r} is not a string")
            _check(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
    elif value is None or isinstance(value, bool | int | str):
        return
    else:
        raise CanonicalJSONError(f"{path}: {type(value).__name__} is not a JSON type")


def canonical_dumps(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (dicts, lists, str, int, float, bool, None)."""
    _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(value: Any) -> bytes:
    return canonical_dumps(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_hash(value: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``value``."""
    return sha256_hex(canonical_bytes(value))


def _reject_constant(name: str) -> Any:
    raise CanonicalJSONError(f"{name} is not allowed in JSON")


def strict_loads(text: str | bytes) -> Any:
    """Parse JSON, rejecting NaN/Infinity literals."""
    return json.loads(text, parse_constant=_reject_constant)


def pretty_dumps(value: Any) -> str:
    """Readable JSON (indented, sorted) with the same float rule; for files people open."""
    _check(value)
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
