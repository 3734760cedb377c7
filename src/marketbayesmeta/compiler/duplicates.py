"""Duplicate detection (SPEC §4): blocking duplicates and possible duplicates."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

KEY_COLUMNS = ["evidence_type", "metric", "brand", "market", "channel", "window_start", "window_end"]
DESCRIPTIVE_KEYS = ["brand", "market", "channel", "window_start", "window_end"]
NUMBER_COLUMNS = ["estimate", "standard_error", "ci_lower", "ci_upper", "ci_level", "uncertainty_scenario", "unit"]


@dataclass(frozen=True)
class Duplicate:
    kind: str  # "blocking" | "possible"
    index: list[int]  # frame index labels, in tracker order
    message: str


def _row_key(frame: pd.DataFrame) -> pd.Series:
    """One string per row standing for its KEY_COLUMNS values (vectorised)."""
    first, *rest = (frame[c].astype(str) for c in KEY_COLUMNS)
    return first.str.cat(rest, sep="\x1f")


def _number_key(frame: pd.DataFrame) -> pd.Series:
    """One string per row standing for its reported numbers (NaN == NaN)."""
    parts = [frame[c].map(repr) if frame[c].dtype != object else frame[c] for c in NUMBER_COLUMNS]
    key = parts[0].astype(str)
    for p in parts[1:]:
        key = key + "\x1f" + p.astype(str)
    return key


def _group_positions(keys: list[str]) -> list[list[int]]:
    """Positions of equal keys, grouped; groups and members in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key, []).append(position)
    return list(groups.values())


def find_duplicates(frame: pd.DataFrame, comparable: pd.Series) -> list[Duplicate]:
    """Blocking: same keys and same numbers, at least two of them comparable (entering the pool).

    Possible: same keys (with at least one of brand/market/channel/window filled in, so that blank
    descriptive columns do not make every row of a metric look alike) but different numbers.

    The keys are compared in bulk; only rows sharing their keys with another row (the candidates)
    are looked at one by one.
    """
    if frame.empty:
        return []
    keyed = _row_key(frame)
    shared = keyed.duplicated(keep=False).to_numpy()
    if not shared.any():
        return []
    cand = frame[shared]
    labels = cand.index.tolist()
    rows = cand["row"].tolist()
    ids = cand["study_id"].tolist()
    numbers = _number_key(cand).tolist()
    is_comparable = comparable.loc[cand.index].tolist()
    descriptive = [any(str(v) for v in values) for values in zip(*(cand[c].tolist() for c in DESCRIPTIVE_KEYS),
                                                                 strict=True)]

    def message(members: list[int], tail: str) -> str:
        return (f"rows {', '.join(str(rows[p]) for p in members)} ({', '.join(ids[p] for p in members)}) "
                f"share evidence type, metric, brand, market, channel and window {tail}")

    out: list[tuple[int, Duplicate]] = []  # (first member's position, duplicate)
    for group in _group_positions(keyed[shared].tolist()):
        same_numbers = [[group[p] for p in same] for same in _group_positions([numbers[m] for m in group])]
        for same in same_numbers:
            members = [p for p in same if is_comparable[p]]
            if len(same) > 1 and len(members) > 1:
                out.append((members[0], Duplicate("blocking", [labels[p] for p in members], message(
                    members, "and report the same estimate and uncertainty"))))
        if descriptive[group[0]] and len(same_numbers) > 1:
            out.append((group[0], Duplicate("possible", [labels[p] for p in group], message(
                group, "but report different numbers: overlapping evidence? Check before pooling"))))
    out.sort(key=lambda item: (rows[item[0]], item[1].kind))
    return [d for _, d in out]
