"""Sensitivity tables and the plan's materiality rule applied to them."""

from __future__ import annotations

from typing import Any

from ..settings import Materiality


def fit_stats(summary: dict[str, float], diagnostics_pass: bool) -> dict[str, Any]:
    return {"mean": summary["mean"], "sd": summary["sd"], "lower": summary["lower"], "upper": summary["upper"],
            "interval_width": summary["upper"] - summary["lower"], "prob_positive": summary["prob_positive"],
            "diagnostics_pass": diagnostics_pass}


def compare(stats: dict[str, Any], ref: dict[str, Any], rule: Materiality) -> dict[str, Any]:
    """Deltas of a fit against the reference fit and whether any crosses the materiality rule."""
    d_mean = stats["mean"] - ref["mean"]
    d_sd = d_mean / ref["sd"] if ref["sd"] > 0 else float("inf")
    d_pp = stats["prob_positive"] - ref["prob_positive"]
    d_w = stats["interval_width"] / ref["interval_width"] - 1.0 if ref["interval_width"] > 0 else float("inf")
    reasons = []
    if abs(d_sd) > rule.mean_shift_sd:
        reasons.append(f"mean moves {d_sd:+.2f} reference sd")
    if abs(d_pp) > rule.prob_positive_shift:
        reasons.append(f"P(mu>0) moves {d_pp:+.3f}")
    if rule.prob_positive_crosses_half and (stats["prob_positive"] - 0.5) * (ref["prob_positive"] - 0.5) < 0:
        reasons.append("P(mu>0) crosses 0.5")
    if abs(d_w) > rule.interval_width_change:
        reasons.append(f"interval width changes {100 * d_w:+.0f} %")
    return {**stats, "delta_mean": d_mean, "delta_mean_sd": d_sd, "delta_prob_positive": d_pp,
            "delta_interval_width_rel": d_w, "material": bool(reasons), "material_reasons": "; ".join(reasons)}
