"""Row builders for every CSV artefact (SPEC §6; columns in docs/outputs.md)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..plan import Pool
from .posterior import Draws, pct, summarize


def effect_preparation_rows(pool: Pool) -> list[dict[str, Any]]:
    return [{
        "row": r.row, "study_id": r.study_id, "study_name": r.study_name, "evidence_type": r.evidence_type,
        "metric": r.metric, "decision": r.decision, "reason": r.reason, "reason_message": r.reason_message,
        "transform": r.transform.name, "transform_formula": r.transform.formula,
        "source_estimate": r.source_estimate, "source_unit": r.unit, "source_se": r.source_se,
        "ci_lower": r.ci_lower, "ci_upper": r.ci_upper, "ci_level": r.ci_level,
        "uncertainty_source": r.uncertainty_source, "uncertainty_scenario": r.uncertainty_scenario,
        "model_estimate": r.model_estimate, "model_se": r.model_se,
    } for r in pool.rows]


def readiness_rows(pool: Pool) -> list[dict[str, Any]]:
    rv = pool.readiness
    return [{
        "pool": rv.pool, "evidence_types": ";".join(pool.evidence_types), "metric": pool.metric,
        "scale": pool.scale, "eligible": rv.eligible, "included": rv.included, "scenario": rv.scenario,
        "readiness": rv.readiness, "why": rv.why, "min_rows_directional": rv.min_rows_directional,
        "min_rows_ready": rv.min_rows_ready,
        "blocking_duplicates": sum(d.kind == "blocking" for d in pool.duplicates),
        "possible_duplicates": sum(d.kind == "possible" for d in pool.duplicates),
    }]


def summary_row(name: str, draws: np.ndarray, interval: float, log_scale: bool, *,
                with_prob: bool = True) -> dict[str, Any]:
    s = summarize(draws, interval)
    row: dict[str, Any] = {"parameter": name, **s}
    if not with_prob:
        row["prob_positive"] = None
    if log_scale and with_prob:
        row.update(pct(s, draws))
    return row


def pooled_rows(d: Draws, interval: float, log_scale: bool) -> list[dict[str, Any]]:
    return [summary_row("mu", d.mu, interval, log_scale),
            summary_row("tau", d.tau, interval, log_scale, with_prob=False)]


def study_rows(pool: Pool, ids: list[str], y: np.ndarray, se: np.ndarray, d: Draws, interval: float,
               log_scale: bool) -> list[dict[str, Any]]:
    by_id = {r.study_id: r for r in pool.rows}
    out = []
    for k, sid in enumerate(ids):
        row = summary_row(sid, d.theta[..., k], interval, log_scale)
        row.pop("parameter")
        out.append({"study_id": sid, "study_name": by_id[sid].study_name, "decision": by_id[sid].decision,
                    "observed": float(y[k]), "se": float(se[k]), "shrinkage": float(d.shrinkage[..., k].mean()),
                    **row})
    return out


def ppc_rows(ids: list[str], y: np.ndarray, se: np.ndarray, d: Draws, interval: float) -> list[dict[str, Any]]:
    alpha = (1.0 - interval) / 2.0
    out = []
    for k, sid in enumerate(ids):
        rep = d.y_rep[..., k].reshape(-1)
        lo, hi = np.quantile(rep, [alpha, 1.0 - alpha])
        tail = float(min(1.0, 2.0 * min((rep >= y[k]).mean(), (rep <= y[k]).mean())))
        out.append({"study_id": sid, "observed": float(y[k]), "se": float(se[k]), "yrep_mean": float(rep.mean()),
                    "lower": float(lo), "upper": float(hi), "interval_level": interval,
                    "tail_probability": tail, "flag": bool(y[k] < lo or y[k] > hi)})
    return out
