"""Recognition of triangulate-only evidence (compiler/triangulate.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from marketbayesmeta.compiler.triangulate import (
    TriangulateOnlyExtension,
    looks_like_model_output,
    model_output_checks,
    model_output_hints,
    normalise,
    triangulate_only,
    triangulate_only_reasons,
)

MODEL_EVIDENCE = [
    "mmm", "MMM", "Mmm", " MMM ", "MMMs", "mmm_model", "Bayesian MMM", "marketing_mix_model",
    "Marketing Mix Model", "marketing-mix-model", "marketing.mix.model", "Marketing Mix Models",
    "marketing mix modelling", "Marketing-Mix Modeling", "marketing  mix   model", "media mix model",
    "Media_Mix_Modelling", "media mix modeling", "Media-Mix-Models", "market mix model", "mix model",
    "mix-modelling", "Marketing Mix Model (MMM)", "MMM (marketing mix model)", "econometric model",
    "Econometric Models", "econometrics", "Econometric modelling", "Robyn", "Meridian", "LightweightMMM",
    "lightweight_mmm", "PyMC-Marketing", "multi-touch attribution", "Multi Touch Attribution", "MTA",
    "attribution model", "Attribution Models", "data-driven attribution",
]
EFFICIENCY_METRICS = [
    "roi", "ROI", "R.O.I.", "Roi", "mROI", "m_roi", "iROI", "ROMI", "return on investment",
    "Return-On-Investment", "return_on_investment", "Return on Marketing Investment", "ROAS", "roas", "iROAS",
    "i-ROAS", "IROAS", "incremental ROAS", "incremental_roas", "mROAS", "return on ad spend",
    "Return on Advertising Spend", "return on ads spend", "Return on Ad Spend (ROAS)", "CPA", "C.P.A.",
    "cpa", "CPAs", "cost per acquisition", "Cost-Per-Acquisition", "cost per incremental acquisition",
    "iCPA", "CPO", "cost per order", "cost_per_order", "Cost per Orders", "PA2", "pa2",
]
POOLABLE_EVIDENCE = ["geo_test", "Geo Test", "brand_lift", "brand lift survey", "geo holdout", "conversion lift study",
                     "matched market test", "synthetic control", "RCT", "randomised experiment"]
POOLABLE_METRICS = ["sales", "Sales", "revenue", "awareness", "conversion rate", "consideration", "returns",
                    "return rate", "store visits", "sign-ups"]


@pytest.mark.parametrize("label", MODEL_EVIDENCE)
def test_model_output_evidence_types_are_triangulate_only(label: str) -> None:
    reason = triangulate_only(label, "sales")
    assert reason is not None and reason.startswith(f"evidence type '{label}' is ")
    assert looks_like_model_output(label, "sales") is None  # recognised: no hint needed


@pytest.mark.parametrize("label", EFFICIENCY_METRICS)
def test_efficiency_metrics_are_triangulate_only(label: str) -> None:
    reason = triangulate_only("geo_test", label)
    assert reason is not None and reason.startswith(f"metric '{label}' is ")
    assert "(efficiency ratio)" in reason or "pa2" in reason
    assert looks_like_model_output("geo_test", label) is None


@pytest.mark.parametrize("evidence", POOLABLE_EVIDENCE)
@pytest.mark.parametrize("metric", POOLABLE_METRICS)
def test_experiments_and_lifts_are_not_triangulate_only(evidence: str, metric: str) -> None:
    assert triangulate_only(evidence, metric) is None
    assert looks_like_model_output(evidence, metric) is None


def test_both_reasons_are_given() -> None:
    assert triangulate_only("Marketing-Mix Model", "ROAS") == (
        "evidence type 'Marketing-Mix Model' is a marketing mix model; metric 'ROAS' is a return on ad spend "
        "(efficiency ratio)")


# release 0.4's lists (compiler/prepare.py), written out: every one stays triangulate-only
@pytest.mark.parametrize("label", ["mmm"])
def test_the_0_4_evidence_list_is_still_recognised(label: str) -> None:
    assert triangulate_only(label, "sales")


@pytest.mark.parametrize("label", ["cpa", "cpo", "iroas", "pa2", "roi"])
def test_the_0_4_metric_list_is_still_recognised(label: str) -> None:
    assert triangulate_only("geo_test", label)


@pytest.mark.parametrize(("raw", "normal"), [
    ("Marketing-Mix Models", "marketing mix model"), ("media_mix_modelling", "media mix model"),
    ("R.O.I.", "roi"), ("iROAS", "iroas"), ("ROAS", "roas"), ("Return on Advertising Spend", "return on ad spend"),
    ("Cost-Per-Acquisitions", "cost per acquisition"), ("A&B", "a and b"), ("Agencies", "agency"),
    ("glass", "glass"), ("  ", ""),
])
def test_normalise(raw: str, normal: str) -> None:
    assert normalise(raw) == normal


@pytest.mark.parametrize(("evidence", "metric", "words"), [
    ("MMM Q4 refresh", "sales", ["'mmm'"]),
    ("marketing mix model v2", "sales", ["'marketing mix model'"]),
    ("regression model", "sales", ["'model'", "'regression'"]),
    ("synthetic control model", "sales", ["'model'"]),
    ("vendor attribution readout", "sales", ["'attribution'"]),
    ("geo_test", "revenue per dollar", ["'per'"]),
    ("geo_test", "cost per click", ["'cost'", "'per'"]),
    ("geo_test", "CPM", ["'cpm'"]),
    ("geo_test", "cpc", ["'cpc'"]),
    ("geo_test", "roas_7d", ["'roas'"]),
    ("geo_test", "ROI 90 days", ["'roi'"]),
    ("geo_test", "roi90d", ["'roi90d'"]),
    ("geo_test", "incremental revenue to spend", ["'spend'"]),
    ("geo_test", "ratio of spend", ["'spend'"]),
    ("geo_test", "return on marketing spend", ["'return on'", "'spend'"]),
    ("geo_test", "payback period", ["'payback'"]),
])
def test_unknown_labels_that_look_like_model_outputs_get_a_hint(evidence: str, metric: str, words: list[str]) -> None:
    assert triangulate_only(evidence, metric) is None
    hint = looks_like_model_output(evidence, metric)
    assert hint is not None
    label = evidence if evidence != "geo_test" else metric
    assert f"'{label}' looks like" in hint
    assert all(w in hint for w in words), hint
    key = "evidence_types" if evidence != "geo_test" else "metrics"
    assert f"analysis.triangulate_only.{key}" in hint


def test_extension_recognises_more_labels_spelled_any_way() -> None:
    ext = TriangulateOnlyExtension(evidence_types=["Vendor Model X"], metrics=["profit per visit"])
    assert triangulate_only("vendor_model_x", "sales", ext.evidence_types, ext.metrics) == (
        "evidence type 'vendor_model_x' is listed in analysis.triangulate_only")
    assert triangulate_only("geo_test", "Profit-Per-Visits", ext.evidence_types, ext.metrics) == (
        "metric 'Profit-Per-Visits' is listed in analysis.triangulate_only")
    # listed labels are no longer hints; without the extension they are
    assert looks_like_model_output("vendor_model_x", "profit per visit") is not None
    assert looks_like_model_output("vendor_model_x", "profit per visit", ext.evidence_types, ext.metrics) is None


@pytest.mark.parametrize("payload", [
    {"evidence_types": ["mmm"], "metrics": [], "extra": 1},
    {"evidence_types": ["  "]},
    {"metrics": ["--"]},
    {"metrics": "roas"},
])
def test_extension_validation(payload: dict) -> None:
    with pytest.raises(ValidationError):
        TriangulateOnlyExtension(**payload)


def test_extension_is_frozen_and_defaults_empty() -> None:
    ext = TriangulateOnlyExtension()
    assert ext.evidence_types == [] and ext.metrics == []
    with pytest.raises(ValidationError):
        ext.metrics = ["x"]  # type: ignore[misc]


def test_vectorised_variants_agree_with_the_scalar_functions() -> None:
    evidence = pd.Series(["geo_test", "Marketing Mix Model", "geo_test", "MMM Q4", "geo_test", "vendor model x"],
                         index=[10, 11, 12, 13, 14, 15])
    metric = pd.Series(["sales", "sales", "ROAS", "sales", "cost per click", "sales"], index=evidence.index)
    ext = TriangulateOnlyExtension(evidence_types=["vendor model x"])
    reasons = triangulate_only_reasons(evidence, metric, ext)
    hints = model_output_hints(evidence, metric, ext)
    assert list(reasons.index) == list(evidence.index) == list(hints.index)
    for e, m, r, h in zip(evidence, metric, reasons, hints, strict=True):
        assert r == (triangulate_only(e, m, ext.evidence_types) or "")
        assert h == (looks_like_model_output(e, m, ext.evidence_types) or "")
    assert [bool(r) for r in reasons] == [False, True, True, False, False, True]
    assert [bool(h) for h in hints] == [False, False, False, True, True, False]


def test_model_output_checks_group_rows_by_hint() -> None:
    rows = pd.DataFrame({"row": [2, 3, 4, 5], "study_id": ["a", "b", "c", "d"],
                         "evidence_type": ["MMM Q4", "geo_test", "mmm q4", "geo_test"],
                         "metric": ["sales", "sales", "sales", "sales"]})
    checks = model_output_checks(rows)
    assert [c.rows for c in checks] == [(2,), (4,)]  # two spellings, two hints (each names its label)
    assert all(c.code == "possible_model_output" and c.severity == "review" for c in checks)
    same = rows.assign(evidence_type=["MMM Q4", "geo_test", "MMM Q4", "geo_test"])
    (check,) = model_output_checks(same)
    assert check.rows == (2, 4) and check.study_ids == ("a", "c") and check.message.startswith("rows 2, 4: ")
