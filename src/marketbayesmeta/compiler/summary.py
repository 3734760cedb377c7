"""The readable summary printed by ``compile``."""

from __future__ import annotations

from ..display import visible
from ..plan import Plan


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    rows = [[visible(c) for c in r] for r in rows]  # user text: one line, no escape sequences
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def render_summary(plan: Plan, *, max_rows: int = 200) -> str:
    """Counts, each row's decision/reason/transform, priors, grid, readiness and the hash."""
    counts = {d: sum(r.decision == d for r in plan.rows) for d in ("included", "scenario", "excluded")}
    lines = [f"plan for {plan.project_name}: {visible(plan.metric)} on the {plan.scale} scale, "
             f"evidence {visible(', '.join(plan.evidence_types))}",
             f"rows: {len(plan.rows)} ({counts['included']} included, {counts['scenario']} scenario, "
             f"{counts['excluded']} excluded)", ""]
    rows = [[str(r.row), r.study_id, r.decision, r.reason, r.transform.formula, _fmt(r.model_estimate),
             _fmt(r.model_se), r.uncertainty_source] for r in plan.rows[:max_rows]]
    lines += _table(["row", "study_id", "decision", "reason", "transform", "estimate", "se", "uncertainty"], rows)
    if len(plan.rows) > max_rows:
        lines.append(f"... {len(plan.rows) - max_rows} more rows in plan.json")
    for d in plan.duplicates:
        lines.append(f"{d.kind} duplicate: {visible(d.message)}")
    lines += ["", "priors: " + ", ".join(f"{k}={v.value} ({v.provenance})" for k, v in plan.priors.items())]
    lines.append("fits: " + ", ".join(f.name for f in plan.fits))
    lines.append(f"uncertainty sensitivity: {plan.sensitivity.uncertainty_status}")
    rv = plan.readiness
    lines.append(f"readiness: {rv.readiness} ({rv.why})")
    lines.append(f"plan_hash: {plan.plan_hash}")
    return "\n".join(lines)
