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


def _number_key(frame: pd.DataFrame) -> pd.Series:
    """One string per row standing for its reported numbers (NaN == NaN)."""
    parts = [frame[c].map(repr) if frame[c].dtype != object else frame[c] for c in NUMBER_COLUMNS]
    key = parts[0].astype(str)
    for p in parts[1:]:
        key = key + "\x1f" + p.astype(str)
    return key


def find_duplicates(frame: pd.DataFrame, comparable: pd.Series) -> list[Duplicate]:
    """Blocking: same keys and same numbers, at least two of them comparable (entering the pool).

    Possible: same keys (with at least one of brand/market/channel/window filled in, so that blank
    descriptive columns do not make every row of a metric look alike) but different numbers.
    """
    if frame.empty:
        return []
    keyed = frame[KEY_COLUMNS].astype(str).agg("\x1f".join, axis=1)
    sizes = keyed.map(keyed.value_counts())
    cand = frame.index[sizes > 1]
    if len(cand) == 0:
        return []
    numbers = _number_key(frame.loc[cand])
    out: list[Duplicate] = []
    sub = pd.DataFrame({"key": keyed.loc[cand], "num": numbers, "comparable": comparable.loc[cand]})
    for _, group in sub.groupby("key", sort=False):
        blocking_members: list[int] = []
        for _, same in group.groupby("num", sort=False):
            if len(same) > 1 and same["comparable"].sum() > 1:
                members = list(same.index[same["comparable"]])
                blocking_members += members
                ids = ", ".join(frame.loc[members, "study_id"])
                out.append(Duplicate("blocking", members,
                                     f"rows {', '.join(str(frame.at[i, 'row']) for i in members)} ({ids}) "
                                     "share evidence type, metric, brand, market, channel and window "
                                     "and report the same estimate and uncertainty"))
        first = group.index[0]
        descriptive = any(str(frame.at[first, c]) for c in DESCRIPTIVE_KEYS)
        if descriptive and group["num"].nunique() > 1:
            members = list(group.index)
            ids = ", ".join(frame.loc[members, "study_id"])
            out.append(Duplicate("possible", members,
                                 f"rows {', '.join(str(frame.at[i, 'row']) for i in members)} ({ids}) "
                                 "share evidence type, metric, brand, market, channel and window but "
                                 "report different numbers: overlapping evidence? Check before pooling"))
    out.sort(key=lambda d: (frame.at[d.index[0], "row"], d.kind))
    return out
