"""The readable summary printed by ``compile``: one section per pool (a portfolio adds one line per
pool first)."""

from __future__ import annotations

from ..plan import Plan, Pool


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def _counts(pool: Pool) -> dict[str, int]:
    return {d: sum(r.decision == d for r in pool.rows) for d in ("included", "scenario", "excluded")}


def verdict(pool: Pool) -> str:
    """What the pool's run would conclude from the plan alone: blocked, or its readiness."""
    rv = pool.readiness
    if rv.included + rv.scenario == 0 or rv.readiness == "not_recommended" or pool.has_blocking_duplicates:
        return "blocked"
    return rv.readiness


def pool_summary(pool: Pool, *, max_rows: int = 200) -> list[str]:
    """Each row's decision/reason/transform, priors, grid and readiness of one pool."""
    counts = _counts(pool)
    lines = [f"pool {pool.name}: {pool.metric} on the {pool.scale} scale, evidence {', '.join(pool.evidence_types)}"
             + "".join(f"; {k} in {', '.join(v)}" for k, v in pool.filters.items()),
             f"rows: {len(pool.rows)} ({counts['included']} included, {counts['scenario']} scenario, "
             f"{counts['excluded']} excluded)", ""]
    rows = [[str(r.row), r.study_id, r.decision, r.reason, r.transform.formula, _fmt(r.model_estimate),
             _fmt(r.model_se), r.uncertainty_source] for r in pool.rows[:max_rows]]
    lines += _table(["row", "study_id", "decision", "reason", "transform", "estimate", "se", "uncertainty"], rows)
    if len(pool.rows) > max_rows:
        lines.append(f"... {len(pool.rows) - max_rows} more rows in plan.json")
    for d in pool.duplicates:
        lines.append(f"{d.kind} duplicate: {d.message}")
    lines += ["", "priors: " + ", ".join(f"{k}={v.value} ({v.provenance})" for k, v in pool.priors.items())]
    lines.append("fits: " + ", ".join(f.name for f in pool.fits))
    lines.append(f"uncertainty sensitivity: {pool.sensitivity.uncertainty_status}")
    rv = pool.readiness
    lines.append(f"readiness: {rv.readiness} ({rv.why})")
    if verdict(pool) == "blocked":
        lines.append("verdict: blocked — a run of this plan stops before pooling (see the readiness and duplicates)")
    return lines


def render_summary(plan: Plan, *, max_rows: int = 200) -> str:
    """The compile summary: per pool, counts, rows, priors, grid, readiness and verdict; the hash."""
    lines = [f"plan for {plan.project_name}: {len(plan.pools)} pool(s), layout {plan.layout}"]
    if plan.layout == "portfolio":
        rows = [[p.name, p.metric, p.scale, str(_counts(p)["included"] + _counts(p)["scenario"]),
                 str(_counts(p)["excluded"]), verdict(p)] for p in plan.pools]
        lines += ["", *_table(["pool", "metric", "scale", "rows in", "rows out", "verdict"], rows)]
    for pool in plan.pools:
        lines += ["", *pool_summary(pool, max_rows=max_rows if plan.layout == "single" else 20)]
    lines += ["", f"plan_hash: {plan.plan_hash}"]
    return "\n".join(lines)
