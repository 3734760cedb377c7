"""Sensitivity dot plot and the in-sample posterior predictive check, in the pool's unit."""

from __future__ import annotations

from typing import Any

from ..fmt import flagged, interval_label, truthy
from ..load import MissingInput, RunData
from .common import COLORS, interval_plot, num, study_label


def sensitivity_rows(run: RunData) -> list[dict[str, Any]]:
    rows = []
    mu = run.summary_row("pooled_summary.csv", "mu")
    ps = run.table("prior_sensitivity.csv")
    main_in_grid = ps is not None and "fit" in ps.columns and (ps["fit"] == "main").any()
    if mu and not main_in_grid:
        rows.append({"label": "main fit", "mean": mu.get("mean"), "lower": mu.get("lower"),
                     "upper": mu.get("upper"), "color": COLORS["pooled"]})
    for fname, col, group, color in (("prior_sensitivity.csv", "spec", "prior", "tab:blue"),
                                     ("uncertainty_sensitivity.csv", "level", "assumed uncertainty", "tab:green")):
        df = run.table(fname)
        if df is None:
            continue
        for _, r in df.iterrows():
            is_main = r.get("fit") == "main"
            mat = bool(truthy(r.get("material")))
            same = str(r.get("same_as") or "").strip()
            rows.append({"label": f"{group}: {r.get(col, r.get('fit', ''))}" + (" (main fit)" if is_main else "")
                                  + (f" (= {same})" if same else "") + (" (material)" if mat else ""),
                         "mean": r.get("mean"), "lower": r.get("lower"), "upper": r.get("upper"),
                         "color": COLORS["material"] if mat else (COLORS["pooled"] if is_main else color),
                         "hollow": mat})
    return rows


def plot_sensitivity(run: RunData) -> Any:
    if run.table("prior_sensitivity.csv") is None and run.table("uncertainty_sensitivity.csv") is None:
        raise MissingInput("neither prior_sensitivity.csv nor uncertainty_sensitivity.csv is in the run directory"
                           + (" (the run was blocked)" if run.status_name == "blocked" else ""))
    mu = run.summary_row("pooled_summary.csv", "mu")
    return interval_plot(run, sensitivity_rows(run), reference=num((mu or {}).get("mean")), reference_label="main fit",
                         title=f"The pooled average under each prior and assumed uncertainty "
                               f"({interval_label(run.interval_level)}; hollow black: material change)")


def plot_ppc(run: RunData) -> Any:
    ppc = run.require("ppc.csv")
    names: dict[str, str] = {}
    se_df = run.table("study_effects.csv")
    if se_df is not None and {"study_id", "study_name"} <= set(se_df.columns):
        names = dict(zip(se_df["study_id"], se_df["study_name"], strict=False))
    rows = []
    for _, r in ppc.iterrows():
        bad = flagged(r.get("flag"))
        rows.append({"label": study_label(r.get("study_id"), names.get(r.get("study_id"), "")) + (" (flagged)" if bad else ""),
                     "mean": r.get("yrep_mean"), "lower": r.get("lower"), "upper": r.get("upper"),
                     "point": r.get("observed"), "color": COLORS["flag"] if bad else COLORS["theta"], "hollow": bad})
    return interval_plot(run, rows, title=f"In-sample posterior predictive check: predicted range "
                                          f"({interval_label(run.interval_level)}) and observed estimate (x)")
