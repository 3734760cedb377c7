"""The forest plot, as metafor's ``forest.rma`` and bayesmeta's ``forestplot`` draw it.

Per pooled study: the observed estimate (square sized by its weight) with its interval and the
shrunken estimate (the study's true effect after partial pooling, circle); then the pooled
average (diamond), the prediction interval (the true effect of a new comparable study) and the
triangulate-only rows (triangles; never pooled). Beside the plot: weight % and
"estimate [interval]" in the pool's unit. Studies are ordered by ``reporting.forest_order``
(window_end by default: oldest first, blank last, ties by tracker row; or effect; or tracker).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

from ..fmt import format_number, interval_label, plot_label, to_float, truthy, verdict_word
from ..load import MissingInput, RunData
from .common import COLORS, num, plt, unit_axis


def _order_keys(run: RunData) -> dict[str, tuple[Any, ...]]:
    """study_id -> sort key for the configured order (window_end / tracker; effect is done later)."""
    info: dict[str, dict[str, Any]] = {}
    for r in run.plan.rows():
        info[str(r.get("study_id"))] = {"row": to_float(r.get("row")), "window_end": str(r.get("window_end") or "")}
    cum = run.table("cumulative.csv")
    if cum is not None and {"study_id", "window_end"} <= set(cum.columns):
        for sid, we in zip(cum["study_id"], cum["window_end"], strict=True):
            info.setdefault(str(sid), {"row": math.inf, "window_end": ""})
            if not info[str(sid)]["window_end"]:
                info[str(sid)]["window_end"] = str(we or "")
    ep = run.table("effect_preparation.csv")
    if ep is not None and {"study_id", "row"} <= set(ep.columns):
        for sid, row in zip(ep["study_id"], ep["row"], strict=True):
            info.setdefault(str(sid), {"row": to_float(row), "window_end": ""})
    order = run.plan.reporting()["forest_order"]
    keys = {}
    for sid, i in info.items():
        row = i["row"] if math.isfinite(i["row"]) else math.inf
        keys[sid] = (row,) if order == "tracker" else (i["window_end"] == "", i["window_end"], row)
    return keys


def study_rows(run: RunData) -> list[dict[str, Any]]:
    """study_effects.csv rows in the forest order."""
    se_df = run.require("study_effects.csv")
    rows = [dict(r) for _, r in se_df.iterrows()]
    order = run.plan.reporting()["forest_order"]
    if order == "effect":
        return sorted(rows, key=lambda r: (-num(r.get("observed")) if math.isfinite(num(r.get("observed"))) else math.inf))
    keys = _order_keys(run)
    return sorted(rows, key=lambda r: keys.get(str(r.get("study_id")), (True, "", math.inf)))


def _weight_text(r: dict[str, Any]) -> str:
    w = num(r.get("weight"))
    return f"{100 * w:.0f} %" if math.isfinite(w) else "–"


def plot_forest(run: RunData) -> Any:
    rows = study_rows(run)
    unit, lvl = run.unit, run.interval_level
    z = NormalDist().inv_cdf(0.5 + lvl / 2)
    mu = run.summary_row("pooled_summary.csv", "mu")
    fut = run.summary_row("future_true_effect_summary.csv", "future_true_effect")
    tri = run.table("triangulation.csv")
    tri_rows = [dict(r) for _, r in tri.iterrows()] if tri is not None else []
    n = len(rows) + (2 if mu else 0) + (1 if fut else 0) + (len(tri_rows) + 1 if tri_rows else 0)
    if not rows:
        raise MissingInput("study_effects.csv lists no pooled study")
    pyplot = plt()
    fig, (ax, tax) = pyplot.subplots(1, 2, figsize=(7.8, 1.55 + 0.3 * n), sharey=True, layout="constrained",
                                     gridspec_kw={"width_ratios": [2.0, 1.5]})
    fig.get_layout_engine().set(wspace=0.0, w_pad=0.02)
    labels: list[str] = []
    ys: list[float] = []
    texts: list[tuple[float, str, str, str]] = []  # y, weight, estimate text, colour
    weights = [num(r.get("weight")) for r in rows]
    wmax = max([w for w in weights if math.isfinite(w)], default=math.nan)
    y = 0.0
    for i, r in enumerate(rows):
        obs, s = num(r.get("observed")), num(r.get("se"))
        size = 5 + 9 * math.sqrt(weights[i] / wmax) if math.isfinite(weights[i]) and wmax > 0 else 7
        ax.errorbar([obs], [y + 0.14], xerr=[[z * s], [z * s]], fmt="s", ms=size, color=COLORS["observed"],
                    mfc=COLORS["observed"], capsize=0, lw=1.2, label="observed estimate" if i == 0 else None)
        m, lo, hi = num(r.get("mean")), num(r.get("lower")), num(r.get("upper"))
        ax.errorbar([m], [y - 0.18], xerr=[[m - lo], [hi - m]], fmt="o", ms=4, color=COLORS["theta"], lw=1,
                    capsize=0, label="study's true effect after pooling" if i == 0 else None)
        labels.append(plot_label(str(r.get("study_name") or r.get("study_id")), 30)
                      + (" (scenario SE)" if r.get("decision") == "scenario" else ""))
        ys.append(y)
        o_lo, o_hi = unit.from_model(obs - z * s), unit.from_model(obs + z * s)
        texts.append((y, _weight_text(r), unit.bracket(unit.from_model(obs), o_lo, o_hi), "black"))
        y -= 1
    if mu:
        y -= 0.4
        m, lo, hi = num(mu.get("mean")), num(mu.get("lower")), num(mu.get("upper"))
        ax.fill([lo, m, hi, m], [y, y + 0.32, y, y - 0.32], color=COLORS["pooled"], label="pooled average (mu)")
        labels.append("Pooled average")
        ys.append(y)
        wsum = sum(w for w in weights if math.isfinite(w))
        texts.append((y, f"{100 * wsum:.0f} %" if wsum else "", unit.bracket(*unit.triple(mu)), COLORS["pooled"]))
        y -= 1
    if fut:
        m, lo, hi = num(fut.get("mean")), num(fut.get("lower")), num(fut.get("upper"))
        ax.errorbar([m], [y], xerr=[[m - lo], [hi - m]], fmt="none", color=COLORS["prediction"], lw=2.2, capsize=4,
                    label="prediction: a new study's true effect")
        labels.append("Prediction (new study)")
        ys.append(y)
        texts.append((y, "", unit.bracket(*unit.triple(fut)), COLORS["prediction"]))
        y -= 1
    if tri_rows:
        y -= 0.5
        for j, r in enumerate(tri_rows):
            est, s = num(r.get("model_estimate")), num(r.get("model_se"))
            text = "not comparable"
            if truthy(r.get("comparable")) is not False and math.isfinite(est):
                s = s if math.isfinite(s) else 0.0
                ax.errorbar([est], [y], xerr=[[z * s], [z * s]], fmt="^", ms=8, mfc="white", mew=1.6,
                            color=COLORS["triangulation"], capsize=0, lw=1,
                            label="triangulated, not pooled" if j == 0 else None)
                text = unit.bracket(unit.from_model(est), unit.from_model(est - z * s), unit.from_model(est + z * s))
            verdict = verdict_word(str(r.get("verdict") or ""))
            labels.append(plot_label(str(r.get("study_name") or r.get("study_id")), 24) + f" ({verdict})")
            ys.append(y)
            texts.append((y, "–", text, COLORS["triangulation"]))
            y -= 1
    ax.axvline(0, color="0.6", lw=0.8, ls="--")
    if mu:
        ax.axvline(num(mu.get("mean")), color=COLORS["pooled"], lw=0.6, ls=":")
    ax.set_yticks(ys, labels)
    ax.set_ylim(y + 0.4, 0.8)
    ax.grid(axis="x", color="0.92")
    unit_axis(ax, unit, nbins=5)
    tax.set_axis_off()
    head_y = 0.75
    tax.text(0.0, head_y, "weight", fontsize=8, weight="bold", va="center")
    tax.text(1.0, head_y, f"{unit.suffix.strip() or run.scale} [{interval_label(lvl)}]", fontsize=8,
             weight="bold", va="center", ha="right")
    for ty, wtext, etext, color in texts:
        tax.text(0.0, ty, wtext, fontsize=8.5, va="center", color=color)
        tax.text(1.0, ty, etext, fontsize=8.5, va="center", ha="right", color=color, family="monospace")
    order = run.plan.reporting()["forest_order"]
    ax.set_title(f"Studies by {'window end' if order == 'window_end' else order}; {interval_label(lvl)} intervals",
                 fontsize=9, loc="left")
    fig.legend(loc="outside lower center", ncol=3, fontsize=7.5, frameon=False)
    return fig


def forest_caption(run: RunData) -> str:
    """The forest plot's key in words (shown under it)."""
    unit = run.unit
    w = "share of the pooled average's weight (weights and the prior's share add up to 100 %)"
    se_df = run.table("study_effects.csv")
    if se_df is not None and "weight" not in se_df.columns:
        w = "not available (study_effects.csv has no weight column)"
    return (f"Grey squares: each study's observed estimate (size by weight) with its interval; blue circles: the "
            f"study's true effect after partial pooling; red diamond: the pooled average; purple: where the "
            f"true effect of a new comparable study would fall; orange triangles: triangulate-only evidence, "
            f"compared but never pooled. Weight: {w}. Numbers in {unit.name}"
            + ("" if not unit.relative else " (model positions are log ratios; ticks show the lift in %)")
            + f"; {format_number(len(se_df) if se_df is not None else 0)} pooled studies.")
