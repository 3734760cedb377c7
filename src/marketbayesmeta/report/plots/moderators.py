"""Meta-regression plots (moderators.csv): a bubble plot per numeric moderator (each study's
observed estimate against its moderator value, bubble area by weight, the fitted line when the
intercept is in the file) and a subgroup forest plot of the categorical moderators' levels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..fmt import interval_label, plot_label, to_float, truthy
from ..load import MissingInput, RunData
from .common import COLORS, interval_plot, num, plt, unit_axis

INTERCEPT = ("intercept", "(intercept)")


def _rows(run: RunData) -> list[dict[str, Any]]:
    return [dict(r) for _, r in run.require("moderators.csv").iterrows()]


def categorical(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(r.get("moderator")) for r in rows if r.get("row_type") == "subgroup_mean"))


def numeric(rows: list[dict[str, Any]]) -> list[str]:
    cats = set(categorical(rows))
    return list(dict.fromkeys(
        str(r.get("moderator")) for r in rows
        if r.get("row_type") == "coefficient" and str(r.get("moderator") or "").strip()
        and str(r.get("moderator")) not in cats and str(r.get("term", "")).lower() not in INTERCEPT))


def plot_moderator_bubbles(run: RunData) -> Any:
    rows = _rows(run)
    names = numeric(rows)
    if not names:
        raise MissingInput("moderators.csv has no numeric moderator")
    se_df = run.require("study_effects.csv")
    intercept = next((r for r in rows if r.get("row_type") == "coefficient"
                      and str(r.get("term", "")).lower() in INTERCEPT), None)
    pyplot = plt()
    fig, axes = pyplot.subplots(1, len(names), figsize=(5.2 * len(names), 3.8), layout="constrained", squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        values, centre = run.plan.moderator_values(name)
        xs, ys, ws = [], [], []
        for _, s in se_df.iterrows():
            x = to_float(values.get(str(s["study_id"])))
            if math.isfinite(x):
                xs.append(x)
                ys.append(num(s.get("observed")))
                ws.append(num(s.get("weight")))
        if not xs:
            ax.text(0.5, 0.5, f"no study records a value of {plot_label(name)}", ha="center", transform=ax.transAxes)
            continue
        w = np.array([v if math.isfinite(v) else 1.0 for v in ws])
        ax.scatter(xs, ys, s=60 + 900 * w / w.max(), alpha=0.5, color=COLORS["observed"], edgecolor="black")
        coef = next(r for r in rows if r.get("row_type") == "coefficient" and str(r.get("moderator")) == name)
        if intercept is not None:
            grid = np.linspace(min(xs), max(xs), 50)
            # numeric moderators are centred in the design: the intercept is the effect at the centre
            ax.plot(grid, num(intercept.get("mean")) + num(coef.get("mean")) * (grid - centre), color=COLORS["pooled"],
                    label="fitted line (posterior means, other moderators at their reference or mean)")
            ax.legend(fontsize=8)
        ax.axhline(0, color="0.6", lw=0.8, ls="--")
        unit_axis(ax, run.unit, axis="y", label=f"observed estimate, {run.unit.axis_label}")
        ax.set_xlabel(plot_label(name))
        flag = " (exploratory)" if truthy(coef.get("exploratory")) else ""
        ax.set_title(f"{plot_label(name)}{flag}: bubble area by weight", fontsize=10, loc="left")
    return fig


def plot_moderator_subgroups(run: RunData) -> Any:
    rows = _rows(run)
    cats = categorical(rows)
    if not cats:
        raise MissingInput("moderators.csv has no categorical moderator")
    out = []
    for name in cats:
        for r in rows:
            if r.get("row_type") == "subgroup_mean" and str(r.get("moderator")) == name:
                n = to_float(r.get("n_rows"))
                out.append({"label": f"{name} = {r.get('level')}" + (f" ({n:.0f} rows)" if math.isfinite(n) else "")
                            + (" (exploratory)" if truthy(r.get("exploratory")) else ""),
                            "mean": r.get("mean"), "lower": r.get("lower"), "upper": r.get("upper"),
                            "hollow": bool(truthy(r.get("exploratory")))})
    mu = run.summary_row("pooled_summary.csv", "mu")
    return interval_plot(run, out, reference=num((mu or {}).get("mean")), reference_label="pooled average",
                         title=f"Subgroup averages by moderator ({interval_label(run.interval_level)}; "
                               "hollow: exploratory)")
