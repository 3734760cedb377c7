"""Influence and history: leave-one-out (influence.csv) and cumulative (cumulative.csv), in the
pool's unit."""

from __future__ import annotations

from typing import Any

from ..fmt import format_number, interval_label, truthy
from ..load import RunData
from .common import COLORS, interval_plot, num


def plot_influence(run: RunData) -> Any:
    inf = run.require("influence.csv")
    mu = run.summary_row("pooled_summary.csv", "mu")
    rows = []
    for _, r in inf.iterrows():
        flips = bool(truthy(r.get("changes_conclusion")))
        name = str(r.get("study_name") or "").strip()
        label = f"without {r.get('left_out')}" + (f" ({name})" if name and name != r.get("left_out") else "")
        rows.append({"label": label + (" (changes the conclusion)" if flips else ""),
                     "mean": r.get("mu_mean"), "lower": r.get("mu_lower"), "upper": r.get("mu_upper"),
                     "color": COLORS["flag"] if flips else COLORS["theta"],
                     "hollow": bool(truthy(r.get("material")))})
    return interval_plot(run, rows, reference=num((mu or {}).get("mean")),
                         title=f"Leave-one-out: the pooled average with each study left out "
                               f"({interval_label(run.interval_level)})")


def plot_cumulative(run: RunData) -> Any:
    cum = run.require("cumulative.csv")
    rows = []
    for _, r in cum.iterrows():
        name = str(r.get("study_name") or r.get("study_id") or "")
        when = str(r.get("window_end") or "").strip() or "no window_end"
        rows.append({"label": f"+ {name} ({when}), k = {format_number(r.get('k'))}",
                     "mean": r.get("mu_mean"), "lower": r.get("mu_lower"), "upper": r.get("mu_upper")})
    mu = run.summary_row("pooled_summary.csv", "mu")
    return interval_plot(run, rows, reference=num((mu or {}).get("mean")),
                         title=f"Cumulative: the pooled average as studies were added by window end "
                               f"({interval_label(run.interval_level)})")
