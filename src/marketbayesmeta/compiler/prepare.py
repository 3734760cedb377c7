"""Effect preparation: every tracker row gets a decision, a reason and its model-scale effect.

Vectorised over the tracker DataFrame (see :mod:`.tracker`). The order of the checks is the order
of the reasons below: the first that applies is the row's reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .units import TRANSFORMS, UNITS, se_delta, se_from_ci, transform_for

# reason code → message template ({...} filled from the row and the config)
REASONS: dict[str, str] = {
    "included": "included: comparable row with source uncertainty ({uncertainty_source})",
    "scenario": "included with scenario uncertainty '{uncertainty_scenario}' (no source uncertainty; "
                "configured model-scale SE {model_se:.6g})",
    "other_metric": "metric '{metric}' is not the analysed metric '{cfg_metric}'",
    "evidence_type_not_in_pool": "evidence type '{evidence_type}' is not in the pool ({cfg_evidence})",
    "triangulate_only": "triangulate-only evidence ({why}): triangulated against the pooled result, not "
                        "pooled without analysis.triangulate_only_justification",
    "not_analysis_ready": "marked not analysis-ready in the tracker",
    "incompatible_unit": "unit '{unit}' cannot be converted to the {cfg_scale} scale",
    "blocking_duplicate": "same study entered twice (identical keys and numbers as {dup_of}); "
                          "blocks the run until the tracker is fixed",
}


def comparable_mask(frame: pd.DataFrame, *, metric: str, scale: str, evidence_types: list[str],
                    justified: bool, triangulate_why: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(reason code per row or '', comparable mask) before duplicate handling. ``triangulate_why``:
    per row, why it is triangulate-only ("" when it is not; :func:`.triangulate.triangulate_only_reasons`)."""
    reason = pd.Series("", index=frame.index, dtype=object)
    compatible = frame["unit"].map(lambda u: (u, scale) in TRANSFORMS).astype(bool)
    tri = triangulate_why != ""
    checks = [
        ("other_metric", frame["metric"] != metric),
        ("triangulate_only", tri & (not justified)),
        ("evidence_type_not_in_pool", ~frame["evidence_type"].isin(evidence_types)),
        ("not_analysis_ready", ~frame["analysis_ready"].astype(bool)),
        ("incompatible_unit", ~compatible),
    ]
    for code, mask in checks:
        reason = reason.mask((reason == "") & mask, code)
    return reason, reason == ""


def model_scale_effects(frame: pd.DataFrame, scale: str, scenario_se: dict[str, float]) -> pd.DataFrame:
    """Model-scale estimate and SE for every row whose unit converts to ``scale``.

    Preference: a complete CI (transformed bounds: exact for the monotone transforms), else a
    reported SE (delta method), else the scenario's configured model-scale SE.
    """
    n = len(frame)
    out = pd.DataFrame({
        "transform": np.full(n, "none", dtype=object),
        "transform_formula": np.full(n, "incompatible", dtype=object),
        "uncertainty_method": np.full(n, "none", dtype=object),
        "uncertainty_source": np.full(n, "none", dtype=object),
        "model_estimate": np.full(n, np.nan),
        "model_se": np.full(n, np.nan),
    }, index=frame.index)
    has_ci = frame["ci_lower"].notna() & frame["ci_upper"].notna() & frame["ci_level"].notna()
    has_se = frame["standard_error"].notna() & ~has_ci
    has_scn = (frame["uncertainty_scenario"] != "") & ~has_ci & ~has_se
    for unit in UNITS:
        t = transform_for(unit, scale)
        rows = frame["unit"] == unit
        if t is None or not rows.any():
            continue
        est = frame.loc[rows, "estimate"].to_numpy(float)
        out.loc[rows, "transform"] = t.name
        out.loc[rows, "transform_formula"] = t.formula
        with np.errstate(all="ignore"):
            out.loc[rows, "model_estimate"] = t.forward(est)
            ci = rows & has_ci
            if ci.any():
                out.loc[ci, "model_se"] = se_from_ci(t, frame.loc[ci, "ci_lower"], frame.loc[ci, "ci_upper"],
                                                     frame.loc[ci, "ci_level"])
                out.loc[ci, "uncertainty_method"] = "ci_width"
                out.loc[ci, "uncertainty_source"] = "confidence_interval"
            se = rows & has_se
            if se.any():
                out.loc[se, "model_se"] = se_delta(t, frame.loc[se, "estimate"], frame.loc[se, "standard_error"])
                out.loc[se, "uncertainty_method"] = "delta_method"
                out.loc[se, "uncertainty_source"] = "standard_error"
        scn = rows & has_scn
        if scn.any():
            out.loc[scn, "model_se"] = frame.loc[scn, "uncertainty_scenario"].map(scenario_se).astype(float)
            out.loc[scn, "uncertainty_method"] = "scenario"
            out.loc[scn, "uncertainty_source"] = "scenario"
    return out
