"""Readiness verdict (SPEC §7) from the count of rows entering the pool."""

from __future__ import annotations


def readiness_verdict(n_pooled: int, n_scenario: int, *, min_directional: int, min_ready: int,
                      blocking_duplicates: int) -> tuple[str, str]:
    """(readiness, why) for ``n_pooled`` comparable rows (of which ``n_scenario`` scenario rows)."""
    if n_pooled < min_directional:
        verdict = "not_recommended"
        why = (f"{n_pooled} comparable row(s) enter the pool; at least {min_directional} are needed "
               "for a directional analysis")
    elif n_pooled < min_ready:
        verdict = "directional"
        why = (f"{n_pooled} comparable rows enter the pool: enough for a directional read "
               f"(>= {min_directional}) but fewer than {min_ready} for ready")
    else:
        verdict = "ready"
        why = f"{n_pooled} comparable rows enter the pool (>= {min_ready})"
    if n_scenario:
        why += f"; {n_scenario} of them rely on scenario uncertainty"
    if blocking_duplicates:
        why += f"; {blocking_duplicates} blocking duplicate group(s) must be fixed first"
    return verdict, why
