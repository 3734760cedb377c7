"""runtime/tables.py, the rows of the CSV artefacts, on the example pool and on small hand-made draws:
every column named as docs/outputs.md lists it (outputs.columns), and the values worked out here from
the example tracker (examples/example_tracker.csv) or by hand from the draws."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from marketbayesmeta.api import compile_config
from marketbayesmeta.outputs import columns
from marketbayesmeta.runtime import tables
from marketbayesmeta.runtime.posterior import Draws

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
Z90 = 1.6448536269514722  # standard-normal 0.95 quantile: a 90 % CI spans 2 · Z90 standard errors


@pytest.fixture(scope="module")
def pool():  # noqa: ANN201
    return compile_config(EXAMPLES / "config.yaml").pool()


def test_effect_preparation_rows_from_the_example_tracker(pool) -> None:  # noqa: ANN001
    rows = tables.effect_preparation_rows(pool)
    assert all(tuple(r) == columns("effect_preparation.csv") for r in rows)
    assert [r["row"] for r in rows] == list(range(2, 12))  # spreadsheet rows 2..11, in order
    first = rows[0]
    # geo-2025-01: +4.2 % with a 90 % CI 1.1 .. 7.4 (relative_percent) on log_relative
    assert first == {
        "row": 2, "study_id": "geo-2025-01", "study_name": "Spring TV geo holdout (North)",
        "evidence_type": "geo_test", "metric": "sales", "decision": "included", "reason": "included",
        "reason_message": "included: comparable row with source uncertainty (confidence interval)",
        "transform": "log1p_percent", "transform_formula": "log(1 + x/100)", "source_estimate": 4.2,
        "source_unit": "relative_percent", "source_se": None, "ci_lower": 1.1, "ci_upper": 7.4, "ci_level": 0.9,
        "uncertainty_source": "confidence_interval", "uncertainty_scenario": None,
        "model_estimate": pytest.approx(math.log(1.042), rel=1e-12),
        "model_se": pytest.approx((math.log(1.074) - math.log(1.011)) / (2 * Z90), rel=1e-9),
        "checks": "mixed_designs;non_overlapping_windows"}
    by_id = {r["study_id"]: r for r in rows}
    # geo-2025-02: ratio 1.031 with SE 0.012 on the ratio: log(1.031), SE 0.012 / 1.031 (delta method)
    r = by_id["geo-2025-02"]
    assert (r["source_unit"], r["source_se"], r["transform"], r["transform_formula"], r["uncertainty_source"]) == (
        "ratio", 0.012, "log_ratio", "log(x)", "standard_error")
    assert (r["model_estimate"], r["model_se"]) == pytest.approx((math.log(1.031), 0.012 / 1.031), rel=1e-12)
    assert r["checks"] == "dominant_weight;mixed_designs;non_overlapping_windows"
    # geo-2025-03: no uncertainty, scenario 'medium' (model-scale SE 0.05 in the config)
    r = by_id["geo-2025-03"]
    assert (r["decision"], r["reason"], r["uncertainty_source"], r["uncertainty_scenario"], r["model_se"]) == (
        "scenario", "scenario", "scenario", "medium", 0.05)
    assert r["model_estimate"] == pytest.approx(math.log(1.025), rel=1e-12)
    # geo-2025-05: percentage points cannot go to log_relative
    r = by_id["geo-2025-05"]
    assert (r["decision"], r["reason"], r["transform"], r["transform_formula"], r["model_estimate"], r["model_se"],
            r["checks"]) == ("excluded", "incompatible_unit", "none", "incompatible", None, None, "")
    assert (by_id["bl-2025-01"]["ci_lower"], by_id["bl-2025-01"]["ci_upper"], by_id["bl-2025-01"]["ci_level"]) == (
        0.9, 3.3, 0.95)


def test_readiness_row_of_the_example(pool) -> None:  # noqa: ANN001
    (row,) = tables.readiness_rows(pool)
    assert tuple(row) == columns("readiness.csv")
    # three comparable rows (two with source uncertainty, one scenario); one possible duplicate
    # (geo-2025-01 and its re-analysis geo-2025-01r)
    assert row == {"pool": "geo_test/sales/log_relative", "evidence_types": "geo_test", "metric": "sales",
                   "scale": "log_relative", "eligible": 3, "included": 2, "scenario": 1, "readiness": "directional",
                   "why": "3 comparable rows enter the pool: enough for a directional read (>= 3) but fewer than 4 "
                          "for ready; 1 of them rely on scenario uncertainty",
                   "min_rows_directional": 3, "min_rows_ready": 4, "blocking_duplicates": 0, "possible_duplicates": 1}


def test_readiness_row_joins_evidence_types_and_counts_duplicates_by_kind(pool) -> None:  # noqa: ANN001
    (dup,) = pool.duplicates
    blocking = dup.model_copy(update={"kind": "blocking"})
    other = pool.model_copy(update={"evidence_types": ("geo_test", "holdout"),
                                    "duplicates": (dup, blocking, blocking)})
    (row,) = tables.readiness_rows(other)
    assert (row["evidence_types"], row["blocking_duplicates"], row["possible_duplicates"]) == ("geo_test;holdout", 2, 1)


def _draws(mu, tau, theta, y_rep, shrinkage) -> Draws:  # noqa: ANN001
    a = np.asarray
    return Draws(mu=a(mu, float), tau=a(tau, float), theta=a(theta, float), future=a(mu, float),
                 y_rep=a(y_rep, float), shrinkage=a(shrinkage, float))


def test_summary_rows_with_and_without_the_per_cent_columns() -> None:
    draws = np.log(np.array([[0.9, 1.0, 1.2, 1.5]]))  # lifts −10, 0, +20, +50 %
    row = tables.summary_row("mu", draws, 0.5, True)
    assert list(row) == ["parameter", "mean", "sd", "median", "lower", "upper", "interval_level", "prob_positive",
                         "mean_pct", "median_pct", "lower_pct", "upper_pct"]
    assert row["parameter"] == "mu" and row["prob_positive"] == 0.5  # log(1.0) = 0 is not positive
    assert row["mean_pct"] == pytest.approx(15.0, rel=1e-12)  # mean of the lifts: (−10 + 0 + 20 + 50) / 4
    # median between log 1.0 and log 1.2: exp of it is sqrt(1.2), as a lift 100 (sqrt(1.2) − 1)
    assert row["median_pct"] == pytest.approx(100 * (math.sqrt(1.2) - 1), rel=1e-12)
    row = tables.summary_row("mu", draws, 0.5, False)
    assert "mean_pct" not in row and row["prob_positive"] == 0.5
    row = tables.summary_row("tau", draws, 0.5, True, with_prob=False)
    assert row["prob_positive"] is None and "mean_pct" not in row


def test_pooled_rows_mu_then_tau() -> None:
    mu = np.array([[0.1, 0.3]])
    tau = np.array([[0.2, 0.4]])
    d = _draws(mu, tau, np.zeros((1, 2, 1)), np.zeros((1, 2, 1)), np.zeros((1, 2, 1)))
    mu_row, tau_row = tables.pooled_rows(d, 0.9, True)
    assert (mu_row["parameter"], mu_row["mean"], mu_row["prob_positive"]) == ("mu", pytest.approx(0.2), 1.0)
    assert mu_row["mean_pct"] == pytest.approx(100 * (math.exp(0.1) + math.exp(0.3) - 2) / 2, rel=1e-12)
    assert (tau_row["parameter"], tau_row["mean"], tau_row["prob_positive"]) == ("tau", pytest.approx(0.3), None)
    assert "mean_pct" not in tau_row


def test_study_rows_by_hand(pool) -> None:  # noqa: ANN001
    ids = ["geo-2025-02", "geo-2025-03"]
    theta = np.array([[[0.1, -0.2], [0.3, 0.0], [0.2, 0.4]]])  # 1 chain, 3 draws, 2 studies
    shrink = np.array([[[0.2, 0.5], [0.4, 0.5], [0.6, 0.8]]])
    d = _draws(np.zeros((1, 3)), np.ones((1, 3)), theta, theta, shrink)
    y, se = np.array([0.03, 0.025]), np.array([0.0116, 0.05])
    rows = tables.study_rows(pool, ids, y, se, d, 0.5, False)
    assert [list(r)[:6] for r in rows] == [["study_id", "study_name", "decision", "observed", "se", "shrinkage"]] * 2
    assert "parameter" not in rows[0]
    assert [(r["study_id"], r["study_name"], r["decision"], r["observed"], r["se"]) for r in rows] == [
        ("geo-2025-02", "Summer online video geo test", "included", 0.03, 0.0116),
        ("geo-2025-03", "Autumn radio geo pilot", "scenario", 0.025, 0.05)]
    assert [r["shrinkage"] for r in rows] == [pytest.approx(0.4), pytest.approx(0.6)]  # mean over the draws
    assert [r["mean"] for r in rows] == [pytest.approx(0.2), pytest.approx(0.2 / 3)]
    assert [r["prob_positive"] for r in rows] == [1.0, 1 / 3]
    assert "mean_pct" in tables.study_rows(pool, ids, y, se, d, 0.5, True)[0]


def test_ppc_rows_by_hand() -> None:
    # replicates 1..5 for both studies (one chain): the central 50 % interval is [2, 4]
    rep = np.array([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]])
    d = _draws(np.zeros((1, 5)), np.ones((1, 5)), rep, rep, np.zeros_like(rep))
    rows = tables.ppc_rows(["a", "b", "c"][:2], np.array([4.5, 3.0]), np.array([0.1, 0.2]), d, 0.5)
    assert rows[0] == {"study_id": "a", "observed": 4.5, "se": 0.1, "yrep_mean": 3.0, "lower": 2.0, "upper": 4.0,
                       "interval_level": 0.5,
                       # P(rep >= 4.5) = 1/5, P(rep <= 4.5) = 4/5: two-sided 2 · 1/5
                       "tail_probability": pytest.approx(0.4), "flag": True}
    # at the centre both tails are 3/5: 2 · 3/5 capped at 1
    assert (rows[1]["tail_probability"], rows[1]["flag"]) == (1.0, False)
    low = tables.ppc_rows(["a"], np.array([1.5]), np.array([0.1]), d, 0.5)[0]
    assert (low["tail_probability"], low["flag"]) == (pytest.approx(0.4), True)  # below the interval
    edge = tables.ppc_rows(["a"], np.array([4.0]), np.array([0.1]), d, 0.5)[0]
    assert (edge["tail_probability"], edge["flag"]) == (pytest.approx(0.8), False)  # on its edge: inside
    lower_edge = tables.ppc_rows(["a"], np.array([2.0]), np.array([0.1]), d, 0.5)[0]
    # P(rep >= 2) = 4/5, P(rep <= 2) = 2/5 (the tie counts in both tails): 2 · 2/5, inside
    assert (lower_edge["tail_probability"], lower_edge["flag"]) == (pytest.approx(0.8), False)
