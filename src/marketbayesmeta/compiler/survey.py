"""The tracker survey behind ``audit``: readiness and tracker-quality checks for every evidence
type × metric × scale group of a parsed tracker (pure; ``api.audit_tracker`` reads the files)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .duplicates import find_duplicates
from .prepare import is_triangulate_only
from .readiness import readiness_verdict
from .units import SCALES, transform_for


def survey_table(frame: pd.DataFrame, *, min_directional: int = 3, min_ready: int = 4) -> list[dict[str, Any]]:
    """One entry per (evidence type, metric, scale) group where some row's unit converts to the scale."""
    groups = []
    for (etype, metric), g in frame.groupby(["evidence_type", "metric"], sort=True):
        for scale in SCALES:
            compatible = g["unit"].map(lambda u, s=scale: transform_for(u, s) is not None).astype(bool)
            if not compatible.any():
                continue
            ready = g["analysis_ready"].astype(bool)
            pooled = ready & compatible
            has_source = g["standard_error"].notna() | g["ci_lower"].notna()
            scenario = pooled & ~has_source & (g["uncertainty_scenario"] != "")
            dups = find_duplicates(g, pooled)
            designs = sorted({d for d in g.loc[pooled, "design"] if d})
            windows = sorted({(s, e) for s, e in zip(g.loc[pooled, "window_start"], g.loc[pooled, "window_end"],
                                                    strict=True) if s or e})
            n_blocking = sum(d.kind == "blocking" for d in dups)
            verdict, why = readiness_verdict(int(pooled.sum()), int(scenario.sum()), min_directional=min_directional,
                                             min_ready=min_ready, blocking_duplicates=n_blocking)
            tri = bool(is_triangulate_only(g["evidence_type"], g["metric"]).any())
            notes = []
            if tri:
                notes.append("triangulate-only evidence: not pooled without a written justification")
            if len(designs) > 1:
                notes.append(f"mixed designs: {', '.join(designs)}")
            if (ready & ~compatible).any():
                notes.append(f"{int((ready & ~compatible).sum())} analysis-ready row(s) in a unit incompatible "
                             f"with {scale}")
            groups.append({
                "evidence_type": etype, "metric": metric, "scale": scale,
                "rows": len(g), "analysis_ready": int(ready.sum()),
                "ready_but_incompatible_unit": int((ready & ~compatible).sum()),
                "poolable": int(pooled.sum()), "scenario": int(scenario.sum()),
                "blocking_duplicates": n_blocking,
                "possible_duplicates": sum(d.kind == "possible" for d in dups),
                "designs": designs, "distinct_windows": len(windows),
                "window_span": [windows[0][0], max(e for _, e in windows)] if windows else None,
                "triangulate_only": tri, "readiness": verdict if not tri else "not_recommended",
                "why": why, "notes": notes,
            })
    return groups


def render_survey(report: dict[str, Any]) -> str:
    lines = [f"audit of {report['tracker']}: {report['rows']} row(s); readiness thresholds "
             f"directional >= {report['min_directional']}, ready >= {report['min_ready']}", ""]
    header = ["evidence_type", "metric", "scale", "rows", "ready", "poolable", "scenario", "dup(b/p)", "readiness"]
    rows = [[g["evidence_type"], g["metric"], g["scale"], str(g["rows"]), str(g["analysis_ready"]), str(g["poolable"]),
             str(g["scenario"]), f"{g['blocking_duplicates']}/{g['possible_duplicates']}", g["readiness"]]
            for g in report["groups"]]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for g in report["groups"]:
        for note in g["notes"]:
            lines.append(f"  {g['evidence_type']}/{g['metric']}/{g['scale']}: {note}")
    return "\n".join(lines)
