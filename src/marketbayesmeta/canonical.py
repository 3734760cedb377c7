"""Canonical JSON and hashing: the one rule by which plans and manifests are written and hashed.

Rule: UTF-8, keys sorted, separators ``,`` and ``:``, no insignificant whitespace, floats written as
Python's shortest round-trip ``repr`` (so parse → write is the identity), integers as integers,
NaN and ±Infinity rejected, object keys strings.

Large documents (a plan of 100,000 rows) need not be held in memory as one dict or one string: a
:class:`StreamedArray` stands for a JSON array whose items are produced batch by batch while the
document is hashed or written (:func:`canonical_hash`, :func:`iter_canonical`, :func:`iter_pretty`).
The text is the same as that of the equivalent plain document.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from itertools import compress, repeat
from typing import Any, BinaryIO

_CONTAINERS = (dict, list, tuple)
_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_INDENT = "  "
CHUNK = 1 << 20  # bytes read at a time when a file is hashed or copied


class CanonicalJSONError(ValueError):
    """A value cannot be written canonically (NaN, Infinity, unsupported type)."""


class StreamedArray:
    """A JSON array whose items are produced on demand, in batches (lists of JSON values).

    ``batches`` is called each time the array is written or hashed, so a document holding a
    streamed array never holds all of its items at once. Set ``string_keys`` when every dict key in
    the items is a ``str`` by construction (e.g. pydantic ``model_dump`` of models whose dicts are
    ``dict[str, ...]``): it skips the scan that enforces that part of the rule.
    """

    def __init__(self, batches: Callable[[], Iterable[list[Any]]], *, string_keys: bool = False) -> None:
        self.batches = batches
        self.string_keys = string_keys


# -- checking -----------------------------------------------------------------------------------------

def _check(value: Any, path: str = "$") -> None:
    """Raise :class:`CanonicalJSONError` naming the path of the first value the rule rejects.

    Slow (a Python call per value): it only runs once writing has failed, to say where.
    """
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
    elif isinstance(value, StreamedArray):
        i = 0
        for batch in value.batches():
            for v in batch:
                _check(v, f"{path}[{i}]")
                i += 1
    elif value is None or isinstance(value, bool | int | str):
        return
    else:
        raise CanonicalJSONError(f"{path}: {type(value).__name__} is not a JSON type")


def _has_only_string_keys(value: Any) -> bool:
    """Whether every dict key in ``value`` is a ``str``.

    :mod:`json` accepts int, float, bool and None keys and writes them as strings (``{10: a, 9: b}``
    as ``{"9":…,"10":…}``, not sorted as text), so this part of the rule is checked apart from
    writing. Only containers are visited; their members are scanned at C speed.
    """
    stack = [value] if isinstance(value, _CONTAINERS) else []
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(map(isinstance, item, repeat(str))):
                return False
            item = item.values()
        stack.extend(compress(item, map(isinstance, item, repeat(_CONTAINERS))))
    return True


def _dump(value: Any, *, string_keys: bool = False) -> str:
    """Compact canonical text of ``value`` (json itself rejects NaN, ±Infinity and other types)."""
    text = _COMPACT.encode(value)
    if not string_keys and not _has_only_string_keys(value):
        raise CanonicalJSONError("object keys must be strings")
    return text


def _string_keys_sorted(obj: dict) -> list[str]:
    if not all(map(isinstance, obj, repeat(str))):
        raise CanonicalJSONError("object keys must be strings")
    return sorted(obj)


def _holds_stream(value: Any) -> bool:
    """Whether ``value`` is a dict or list with a :class:`StreamedArray` among its members (or theirs)."""
    members = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else ()
    return any(isinstance(v, StreamedArray) or _holds_stream(v) for v in members)


def _located(pieces: Iterator[str], value: Any) -> Iterator[str]:
    """``pieces``, with a failure re-raised as :class:`CanonicalJSONError` naming the bad value."""
    try:
        yield from pieces
    except (ValueError, TypeError):
        _check(value)
        raise


# -- compact (hashed) form ----------------------------------------------------------------------------

def _compact_stream(array: StreamedArray) -> Iterator[str]:
    """``[item,item,…]``: one piece per batch."""
    yield "["
    written = False
    for batch in array.batches():
        if batch:
            yield ("," if written else "") + _dump(batch, string_keys=array.string_keys)[1:-1]
            written = True
    yield "]"


def _compact(value: Any) -> Iterator[str]:
    if isinstance(value, StreamedArray):
        yield from _compact_stream(value)
    elif _holds_stream(value) and isinstance(value, dict):
        yield "{"
        for n, key in enumerate(_string_keys_sorted(value)):
            yield ("," if n else "") + _COMPACT.encode(key) + ":"
            yield from _compact(value[key])
        yield "}"
    elif _holds_stream(value):
        yield "["
        for n, item in enumerate(value):
            yield "," if n else ""
            yield from _compact(item)
        yield "]"
    else:
        yield _dump(value)


def iter_canonical(value: Any) -> Iterator[str]:
    """The canonical JSON text of ``value`` in pieces (joined, they are :func:`canonical_dumps`).

    A :class:`StreamedArray` may be ``value`` itself or a member of its dicts and lists; it is
    written one batch per piece.
    """
    return _located(_compact(value), value)


def canonical_dumps(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (dicts, lists, str, int, float, bool, None)."""
    return "".join(iter_canonical(value))


def canonical_bytes(value: Any) -> bytes:
    return canonical_dumps(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_stream(stream: BinaryIO, chunk: int = CHUNK) -> tuple[str, int]:
    """(sha256 hex, size) of everything readable from ``stream``."""
    digest = hashlib.sha256()
    size = 0
    while block := stream.read(chunk):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in chunks."""
    with open(path, "rb") as fh:
        return hash_stream(fh)


def canonical_hash(value: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``value``: ``sha256_hex(canonical_bytes(value))``,
    computed piece by piece so that the whole text is never in memory.

    A string that cannot be UTF-8 encoded (a lone surrogate) raises :class:`UnicodeEncodeError`.
    """
    digest = hashlib.sha256()
    for piece in iter_canonical(value):
        digest.update(piece.encode("utf-8"))
    return digest.hexdigest()


def _reject_constant(name: str) -> Any:
    raise CanonicalJSONError(f"{name} is not allowed in JSON")


def strict_loads(text: str | bytes) -> Any:
    """Parse JSON, rejecting NaN/Infinity literals."""
    return json.loads(text, parse_constant=_reject_constant)


def load_versioned(text: str | bytes, source: str, what: str, fmt: str, error: type[Exception],
                   hint: str = "") -> dict[str, Any]:
    """A JSON object whose ``format`` key is ``fmt`` (one of our versioned artefacts: plan, manifest),
    or ``error`` naming ``source``, what is wrong and (``hint``) what to do."""
    try:
        data = strict_loads(text)
    except (ValueError, CanonicalJSONError, UnicodeDecodeError) as exc:
        raise error(f"{source}: not a readable {what} (invalid JSON: {exc}){hint}") from None
    except RecursionError:
        raise error(f"{source}: not a readable {what} (JSON nested too deeply){hint}") from None
    if not isinstance(data, dict):
        raise error(f"{source}: not a {what} (expected a JSON object)")
    found = data.get("format")
    if found != fmt:
        raise error(f"{source}: unsupported {what} format {found!r}; this version reads {fmt!r}{hint}")
    return data


# -- readable form ------------------------------------------------------------------------------------
#
# The same text as ``json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)``, whose
# indenting encoder is pure Python (seconds for a plan of 100,000 rows). Here containers are
# walked in Python, but each run of consecutive simple members (scalars and empty containers) is
# written by one call of the C encoder.

@functools.cache
def _run_encoder(level: int) -> json.JSONEncoder:
    """Writes simple members at nesting ``level`` as the indenting encoder does: none of them spans
    lines, so ``",\n" + indent`` between members lays them out. Keys arrive sorted, and a run
    holds no non-empty container (so no cycle to look for)."""
    return json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False,
                            separators=(",\n" + _INDENT * level, ": "))


def _members_text(keys: list[str] | None, values: list[Any], level: int) -> str:
    """The members of an object (``keys`` given) or array at ``level``, one per line."""
    lead = "\n" + _INDENT * level
    encoder = _run_encoder(level)
    containers = compress(range(len(values)), map(isinstance, values, repeat(_CONTAINERS)))
    nested = [i for i in containers if values[i]]  # empty containers are simple members
    parts = []
    start = 0
    for stop in [*nested, len(values)]:
        if stop > start:  # the simple members values[start:stop]
            run = values[start:stop] if keys is None else dict(zip(keys[start:stop], values[start:stop], strict=True))
            parts.append(encoder.encode(run)[1:-1])
        if stop < len(values):
            text = _pretty_text(values[stop], level)
            parts.append(text if keys is None else _COMPACT.encode(keys[stop]) + ": " + text)
        start = stop + 1
    return lead + ("," + lead).join(parts)


def _pretty_text(value: Any, level: int) -> str:
    """The indented text of ``value`` (no :class:`StreamedArray` in it) at nesting ``level``."""
    close = "\n" + _INDENT * level
    if isinstance(value, dict) and value:
        keys = _string_keys_sorted(value)
        return "{" + _members_text(keys, list(map(value.__getitem__, keys)), level + 1) + close + "}"
    if isinstance(value, list | tuple) and value:
        return "[" + _members_text(None, list(value), level + 1) + close + "]"
    return _COMPACT.encode(value)


def _pretty(value: Any, level: int) -> Iterator[str]:
    """:func:`_pretty_text` in pieces: a :class:`StreamedArray` is written one batch per piece."""
    lead, close = "\n" + _INDENT * (level + 1), "\n" + _INDENT * level
    if isinstance(value, StreamedArray):
        opened = False
        for batch in value.batches():
            if batch:
                yield ("," if opened else "[") + lead + ("," + lead).join(
                    _pretty_text(item, level + 1) for item in batch)
                opened = True
        yield (close + "]") if opened else "[]"
    elif _holds_stream(value) and isinstance(value, dict):
        yield "{"
        for n, key in enumerate(_string_keys_sorted(value)):
            yield ("," if n else "") + lead + _COMPACT.encode(key) + ": "
            yield from _pretty(value[key], level + 1)
        yield close + "}"
    elif _holds_stream(value):
        yield "["
        for n, item in enumerate(value):
            yield ("," if n else "") + lead
            yield from _pretty(item, level + 1)
        yield close + "]"
    else:
        yield _pretty_text(value, level)


def iter_pretty(value: Any) -> Iterator[str]:
    """:func:`pretty_dumps` in pieces (a :class:`StreamedArray` is written one batch per piece)."""
    yield from _located(_pretty(value, 0), value)
    yield "\n"


def pretty_dumps(value: Any) -> str:
    """Readable JSON (indented, sorted) with the same float rule; for files people open."""
    return "".join(iter_pretty(value))
