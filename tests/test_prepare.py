"""Effect preparation (compiler/prepare.py) on its own: every column of ``model_scale_effects`` for
every path (CI, SE, scenario, none, incompatible unit), with the numbers worked out by hand, and
the order of the reasons in ``comparable_mask``."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from helpers import row, tracker_csv
from marketbayesmeta.compiler.prepare import comparable_mask, model_scale_effects
from marketbayesmeta.compiler.tracker import parse_tracker
from marketbayesmeta.compiler.triangulate import triangulate_only_reasons

COLUMNS = ["transform", "transform_formula", "uncertainty_method", "uncertainty_source", "model_estimate",
           "model_se"]
SCENARIO_SE = {"low": 0.011, "medium": 0.05, "high": 0.1}


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = parse_tracker(tracker_csv(rows).encode(), "tracker.csv")
    frame.index = frame.index + 10  # labels that are not positions: the output must carry them
    return frame


ROWS = [
    # relative_percent 25 +- 5 (SE): log(1.25) = 0.2231435513; SE 5 / (100 + 25) = 0.04
    row("pct_se", 25.0, se=5.0),
    # ratio 1.0 with a 95 % CI [0.8, 1.25] and an SE: the CI wins; log(1) = 0;
    # SE (log 1.25 - log 0.8) / (2 * 1.9599639845) = 0.4462871026 / 3.9199279690 = 0.1138508427
    row("ratio_ci", 1.0, unit="ratio", se=0.3, ci_lower=0.8, ci_upper=1.25, ci_level=0.95),
    # relative_fraction 0.25 +- 0.1 (SE) and a scenario: the SE wins; 0.1 / 1.25 = 0.08
    row("frac_se_scn", 0.25, unit="relative_fraction", se=0.1, uncertainty_scenario="high"),
    # log_relative 0.03 with only a scenario: identity, the scenario's SE
    row("scn", 0.03, unit="log_relative", se=None, uncertainty_scenario="low"),
    # percentage points cannot go to the log-relative scale
    row("incompat", 1.3, unit="percentage_point", se=0.4),
]
EXPECTED = [
    ["log1p_percent", "log(1 + x/100)", "delta_method", "standard_error", math.log(1.25), 0.04],
    ["log_ratio", "log(x)", "ci_width", "confidence_interval", 0.0, 0.11385084270646688],
    ["log1p_fraction", "log(1 + x)", "delta_method", "standard_error", math.log(1.25), 0.08],
    ["identity", "x", "scenario", "scenario", 0.03, 0.011],
    ["none", "incompatible", "none", "none", math.nan, math.nan],
]


def _check(out: pd.DataFrame, expected: list[list], index: pd.Index) -> None:
    assert list(out.columns) == COLUMNS
    assert out.index.equals(index)
    assert out["model_estimate"].dtype == np.float64 and out["model_se"].dtype == np.float64
    for (label, got), want in zip(out.iterrows(), expected, strict=True):
        assert [got[c] for c in COLUMNS[:4]] == want[:4], label
        for c, w in zip(COLUMNS[4:], want[4:], strict=True):
            if math.isnan(w):
                assert math.isnan(got[c]), (label, c)
            else:
                assert got[c] == pytest.approx(w, rel=1e-12, abs=1e-15), (label, c)


def test_every_path_by_hand() -> None:
    frame = _frame(ROWS)
    _check(model_scale_effects(frame, "log_relative", SCENARIO_SE), EXPECTED, frame.index)


def test_percentage_point_scale() -> None:
    frame = _frame([row("pp", 1.3, unit="percentage_point", se=0.4),
                    row("pd", 0.004, unit="proportion_difference", se=None, ci_lower=-0.002, ci_upper=0.011,
                        ci_level=0.99),
                    row("rel", 5.0)])
    # 0.004 -> 0.4 pp; CI [-0.2, 1.1] pp at 99 %: 1.3 / (2 * 2.5758293035) = 0.2523459140
    _check(model_scale_effects(frame, "percentage_point", SCENARIO_SE), [
        ["identity", "x", "delta_method", "standard_error", 1.3, 0.4],
        ["times_100", "100 · x", "ci_width", "confidence_interval", 0.4, 0.25234591403415185],
        ["none", "incompatible", "none", "none", math.nan, math.nan],
    ], frame.index)


def test_a_ci_counts_only_when_complete_and_no_uncertainty_means_none() -> None:
    """Preference order of the docstring: a *complete* CI, else the SE, else the scenario. The
    tracker never lets a partial CI or a row without uncertainty through, but the function must
    not depend on that."""
    frame = _frame([row(f"r{i}", 25.0, se=5.0, ci_lower=20.0, ci_upper=30.0, ci_level=0.9) for i in range(4)])
    labels = frame.index
    frame.loc[labels[0], "ci_level"] = np.nan
    frame.loc[labels[1], "ci_lower"] = np.nan
    frame.loc[labels[2], "ci_upper"] = np.nan
    frame.loc[labels[3], ["ci_lower", "ci_upper", "ci_level", "standard_error"]] = np.nan
    out = model_scale_effects(frame, "log_relative", SCENARIO_SE)
    delta = ["log1p_percent", "log(1 + x/100)", "delta_method", "standard_error", math.log(1.25), 0.04]
    _check(out, [delta, delta, delta,
                 ["log1p_percent", "log(1 + x/100)", "none", "none", math.log(1.25), math.nan]], labels)


def test_numbers_in_object_columns() -> None:
    """Columns that reach the function as object dtype are used as numbers."""
    frame = _frame(ROWS)
    numeric = ["estimate", "standard_error", "ci_lower", "ci_upper", "ci_level"]
    frame[numeric] = frame[numeric].astype(object)
    _check(model_scale_effects(frame, "log_relative", SCENARIO_SE), EXPECTED, frame.index)


def test_values_outside_the_domain_are_quiet() -> None:
    """log(0) and log of a negative give -inf / NaN without numpy warnings (the tracker reports
    those values to the user; preparation must not add noise)."""
    frame = _frame([row("z", 1.0, unit="ratio", se=0.1), row("n", 1.0, unit="ratio", se=0.1)])
    frame["estimate"] = [0.0, -1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = model_scale_effects(frame, "log_relative", SCENARIO_SE)
    assert out["model_estimate"].iloc[0] == -math.inf and math.isnan(out["model_estimate"].iloc[1])


def test_reasons_in_order_first_applicable_wins() -> None:
    rows = [
        row("ok", 1.0),
        row("metric_and_more", 1.0, metric="awareness", evidence_type="mmm", ready="no", unit="percentage_point"),
        row("tri_and_more", 1.0, evidence_type="mmm", ready="no", unit="percentage_point"),
        row("pool_and_more", 1.0, evidence_type="brand_lift", ready="no", unit="percentage_point"),
        row("ready_and_unit", 1.0, ready="no", unit="percentage_point"),
        row("unit", 1.0, unit="percentage_point"),
        row("tri_metric", 1.0, metric="roi", unit="ratio"),
    ]
    frame = _frame(rows)
    why = triangulate_only_reasons(frame["evidence_type"], frame["metric"])
    reason, ok = comparable_mask(frame, metric="sales", scale="log_relative", evidence_types=["geo_test", "mmm"],
                                 justified=False, triangulate_why=why)
    assert reason.tolist() == ["", "other_metric", "triangulate_only", "evidence_type_not_in_pool",
                               "not_analysis_ready", "incompatible_unit", "other_metric"]
    assert ok.tolist() == [True] + [False] * 6
    assert reason.index.equals(frame.index) and ok.index.equals(frame.index)
    # justified: MMM rows are no longer held back; the next applicable reason shows
    reason, ok = comparable_mask(frame, metric="sales", scale="log_relative", evidence_types=["geo_test", "mmm"],
                                 justified=True, triangulate_why=why)
    assert reason.tolist()[:3] == ["", "other_metric", "not_analysis_ready"]
    # an ROI row is triangulate-only when ROI is the analysed metric
    reason, _ = comparable_mask(frame, metric="roi", scale="log_relative", evidence_types=["geo_test"],
                                justified=False, triangulate_why=why)
    assert reason.tolist()[-1] == "triangulate_only"
