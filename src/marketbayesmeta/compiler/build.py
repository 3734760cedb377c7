"""Config + tracker table → :class:`~marketbayesmeta.plan.Plan` (pure: no I/O, clock or randomness)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..plan import (
    DuplicateGroup,
    Materiality,
    Plan,
    PriorSet,
    ReadinessVerdict,
    Sampler,
    SensitivityPlan,
    Source,
    Thresholds,
)
from .config import Config
from .duplicates import find_duplicates
from .grid import build_fits, resolve_priors, resolve_scenarios
from .prepare import (
    REASONS,
    TRIANGULATE_ONLY_EVIDENCE,
    TRIANGULATE_ONLY_METRICS,
    comparable_mask,
    is_triangulate_only,
    model_scale_effects,
)
from .readiness import readiness_verdict

ROW_TEXT = ["study_name", "brand", "market", "channel", "population", "window_start", "window_end",
            "design", "source", "notes"]


def _materiality(config: Config) -> Materiality:
    m = config.sensitivity.materiality
    rule = (f"prior dependence is material when, across the prior grid, the posterior mean of mu moves "
            f"by more than {m.mean_shift_sd:g} of the reference fit's posterior sd, or P(mu > 0) moves by "
            f"more than {m.prob_positive_shift:g}"
            + (" or crosses 0.5" if m.prob_positive_crosses_half else "")
            + f", or the interval width changes by more than {100 * m.interval_width_change:g} %")
    return Materiality(mean_shift_sd=m.mean_shift_sd, prob_positive_shift=m.prob_positive_shift,
                       prob_positive_crosses_half=m.prob_positive_crosses_half,
                       interval_width_change=m.interval_width_change, rule=rule)


def _opt(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _transform_parameters(method: str, rec: dict) -> dict[str, float | str]:
    if method == "ci_width":
        return {"ci_level": float(rec["ci_level"])}
    if method == "scenario":
        return {"scenario": rec["uncertainty_scenario"]}
    return {}


def _reason_messages(frame: pd.DataFrame, prep: pd.DataFrame, reason: pd.Series, config: Config,
                     dup_of: dict[int, str]) -> list[str]:
    a = config.analysis
    tri = is_triangulate_only(frame["evidence_type"], frame["metric"])
    msgs = []
    for i in frame.index:
        code = reason.at[i]
        why = []
        if tri.at[i]:
            if frame.at[i, "evidence_type"] in TRIANGULATE_ONLY_EVIDENCE:
                why.append(f"evidence type {frame.at[i, 'evidence_type']}")
            if frame.at[i, "metric"] in TRIANGULATE_ONLY_METRICS:
                why.append(f"metric {frame.at[i, 'metric']}")
        msgs.append(REASONS[code].format(
            uncertainty_source=prep.at[i, "uncertainty_source"].replace("_", " "),
            uncertainty_scenario=frame.at[i, "uncertainty_scenario"],
            model_se=prep.at[i, "model_se"], metric=frame.at[i, "metric"], cfg_metric=a.metric,
            evidence_type=frame.at[i, "evidence_type"], cfg_evidence=", ".join(a.evidence_types),
            why="; ".join(why), unit=frame.at[i, "unit"], cfg_scale=a.scale, dup_of=dup_of.get(i, "")))
    return msgs


def compile_plan(config: Config, tracker: pd.DataFrame, *, sources: dict[str, Source],
                 package_version: str) -> Plan:
    """Compile a validated config and tracker table into a hashed plan."""
    a = config.analysis
    scenarios = resolve_scenarios(config)
    scenario_se = {k: float(v.value) for k, v in scenarios.items()}
    reason, comparable = comparable_mask(
        tracker, metric=a.metric.strip().lower(), scale=a.scale,
        evidence_types=[e.strip().lower() for e in a.evidence_types],
        justified=a.triangulate_only_justification is not None)
    prep = model_scale_effects(tracker, a.scale, scenario_se)

    dups = find_duplicates(tracker, comparable)
    dup_of: dict[int, str] = {}
    for d in dups:
        if d.kind == "blocking":
            first = d.index[0]
            for i in d.index[1:]:
                reason.at[i] = "blocking_duplicate"
                dup_of[i] = f"{tracker.at[first, 'study_id']} (row {tracker.at[first, 'row']})"
    is_scenario = prep["uncertainty_source"] == "scenario"
    reason = reason.mask(reason == "", np.where(is_scenario, "scenario", "included"))
    decision = reason.map(lambda c: c if c in ("included", "scenario") else "excluded")
    messages = _reason_messages(tracker, prep, reason, config, dup_of)

    rows = []
    records = tracker.to_dict("records")
    prep_records = prep.to_dict("records")
    for rec, p, code, dec, msg in zip(records, prep_records, reason, decision, messages, strict=True):
        rows.append({
            "row": int(rec["row"]), "study_id": rec["study_id"],
            "evidence_type": rec["evidence_type"], "metric": rec["metric"], "unit": rec["unit"],
            "source_estimate": float(rec["estimate"]), "source_se": _opt(rec["standard_error"]),
            "ci_lower": _opt(rec["ci_lower"]), "ci_upper": _opt(rec["ci_upper"]),
            "ci_level": _opt(rec["ci_level"]),
            "uncertainty_scenario": rec["uncertainty_scenario"] or None,
            "analysis_ready": bool(rec["analysis_ready"]),
            **{k: str(rec.get(k, "") or "") for k in ROW_TEXT},
            "decision": dec, "reason": code, "reason_message": msg,
            "transform": {"name": p["transform"], "formula": p["transform_formula"],
                          "uncertainty_method": p["uncertainty_method"],
                          "parameters": _transform_parameters(p["uncertainty_method"], rec)},
            "model_estimate": _opt(p["model_estimate"]), "model_se": _opt(p["model_se"]),
            "uncertainty_source": p["uncertainty_source"],
        })

    pooled_ids = [r["study_id"] for r in rows if r["decision"] != "excluded"]
    n_scenario = sum(r["decision"] == "scenario" for r in rows)
    n_blocking = sum(d.kind == "blocking" for d in dups)
    r = config.readiness
    verdict, why = readiness_verdict(len(pooled_ids), n_scenario, min_directional=r.min_rows_directional,
                                     min_ready=r.min_rows_ready, blocking_duplicates=n_blocking)
    eligible = int(comparable.sum())
    pool = f"{'+'.join(a.evidence_types)}/{a.metric}/{a.scale}"

    priors = resolve_priors(config)
    main = PriorSet(mu_mean=float(priors["mu_mean"].value), mu_sd=float(priors["mu_sd"].value),
                    tau_scale=float(priors["tau_scale"].value), tau_family=str(priors["tau_family"].value))
    fits, unc_status, reference = build_fits(config, main, has_scenarios=n_scenario > 0, pooled_ids=pooled_ids)
    s, d = config.sampler, config.diagnostics
    plan_data = {
        "package_version": package_version,
        "project_name": config.project.name,
        "project_notes": config.project.notes,
        "metric": a.metric, "scale": a.scale, "evidence_types": list(a.evidence_types),
        "triangulate_only_justification": a.triangulate_only_justification,
        "sources": sources,
        "rows": rows,
        "duplicates": [DuplicateGroup(kind=x.kind, study_ids=list(tracker.loc[x.index, "study_id"]),
                                      rows=[int(v) for v in tracker.loc[x.index, "row"]], message=x.message)
                       for x in dups],
        "readiness": ReadinessVerdict(pool=pool, eligible=eligible, included=len(pooled_ids) - n_scenario,
                                      scenario=n_scenario, readiness=verdict, why=why,
                                      min_rows_directional=r.min_rows_directional,
                                      min_rows_ready=r.min_rows_ready),
        "priors": priors,
        "scenario_se": scenarios,
        "sampler": Sampler(**s.model_dump()),
        "thresholds": Thresholds(**d.model_dump()),
        "sensitivity": SensitivityPlan(prior=config.sensitivity.prior, uncertainty=config.sensitivity.uncertainty,
                                       uncertainty_status=unc_status,
                                       leave_one_out=config.sensitivity.leave_one_out,
                                       reference_prior=reference, materiality=_materiality(config)),
        "fits": fits,
        "reporting_interval": config.reporting.interval,
    }
    plan = Plan.model_validate({k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in plan_data.items()})
    return plan.with_hash()
