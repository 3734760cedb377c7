"""compiler/plausibility.py: texts word for word where the rules of test_plausibility.py check only
codes and rows, and the mixed-label rule built at test time.

``_RULES`` builds the mixed-design and mixed-population rules once, at import (``_mixed(...)`` returns
a closure); the test below builds them again with ``_mixed`` so that the rule's code is the one under
test, and checks every field of the check it makes against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketbayesmeta.compiler import plausibility as pl
from marketbayesmeta.compiler.plausibility import plausibility_checks
from test_plausibility import pool_frame, text_pool

DESIGNS = ["matched-market holdout", "synthetic control", "Matched market holdout", "", "synthetic_control"]


def test_the_mixed_rule_built_now_word_for_word() -> None:
    p = pl._Pool.of(text_pool(DESIGNS))  # spreadsheet rows 2..6, study ids s1..s5
    (check,) = pl._mixed("design", "mixed_designs", "designs")(p)
    assert (check.code, check.rows, check.study_ids) == ("mixed_designs", (2, 3, 4, 6), ("s1", "s2", "s3", "s5"))
    assert check.message == (
        "the pooled rows mix 2 designs: 'matched-market holdout' (rows 2, 4), 'synthetic control' (rows 3, 6); "
        "1 row(s) give no design: confirm they estimate the same effect, or pool them separately")
    assert check.details == {"groups": [{"design": "matched-market holdout", "rows": [2, 4]},
                                        {"design": "synthetic control", "rows": [3, 6]}],
                             "rows_without": [5]}
    # the same rule through plausibility_checks (built at import) says the same
    assert [c for c in plausibility_checks(text_pool(DESIGNS)) if c.code == "mixed_designs"] == [check]


def test_the_mixed_rule_without_blanks_or_with_one_label() -> None:
    rule = pl._mixed("population", "mixed_populations", "populations")
    p = pl._Pool.of(text_pool(["", "", ""], populations=[" all shoppers", "loyalty members", "new customers "]))
    (check,) = rule(p)
    assert check.message == ("the pooled rows mix 3 populations: 'all shoppers' (row 2), 'loyalty members' (row 3), "
                             "'new customers' (row 4): confirm they estimate the same effect, or pool them separately")
    assert check.details["rows_without"] == [] and check.rows == (2, 3, 4)
    # one label however spelled, or none at all: no check
    assert rule(pl._Pool.of(text_pool(["", "", ""], populations=["All_Shoppers", "all shoppers", ""]))) == []
    assert rule(pl._Pool.of(text_pool(["", ""]))) == []


def _shift_pool(direction: str) -> list[dict]:
    """Four informative peers and a fifth row typed in the other unit's numbers (both informative)."""
    if direction == "smaller":  # fraction numbers under relative_percent
        rows = [{"unit": "relative_percent", "estimate": e, "standard_error": 1.0} for e in (4.1, 5.2, 3.6, 4.8)]
        rows.append({"unit": "relative_percent", "estimate": 0.044, "standard_error": 0.01})
    else:  # percent numbers under relative_fraction
        rows = [{"unit": "relative_fraction", "estimate": e, "standard_error": 0.01} for e in (0.041, 0.052, 0.036,
                                                                                                 0.048)]
        rows.append({"unit": "relative_fraction", "estimate": 4.4, "standard_error": 1.0})
    return rows


def test_the_estimate_factor_of_an_informative_unit_shift_is_named() -> None:
    # smaller: 0.044 against the peers' median |estimate| 4.45 is 0.0099, i.e. 1 / 0.0099 = 101 ≈ 1e+02 smaller
    (shift,) = [c for c in plausibility_checks(pool_frame(_shift_pool("smaller"), "log_relative"))
                if c.code == "unit_shift"]
    assert "(estimate 1e+02× smaller): did you mean relative_fraction?" in shift.message
    # larger: 4.4 against the median 0.0445 is 98.9 ≈ 99 larger
    (shift,) = [c for c in plausibility_checks(pool_frame(_shift_pool("larger"), "log_relative"))
                if c.code == "unit_shift"]
    assert "(estimate 99× larger): did you mean relative_percent?" in shift.message


def _shift(rows: list[dict]) -> list:
    return [c for c in plausibility_checks(pool_frame(rows, "log_relative")) if c.code == "unit_shift"]


def test_unit_shift_text_and_details_when_the_peers_estimates_are_all_zero() -> None:
    """Peers at exactly 0: no estimate factor (0/0), so it is recorded as None (JSON-safe), and the
    rule rests on the SEs alone (100× larger, 100× on the model scale too)."""
    rows = [{"unit": "relative_fraction", "estimate": 0.0, "standard_error": 0.01} for _ in range(4)]
    rows.append({"unit": "relative_fraction", "estimate": 0.0, "standard_error": 1.0})
    (shift,) = _shift(rows)
    assert shift.message == ("row 6 (s5): estimate 0 and SE 1 are about 100× larger than the pool's other "
                             "relative_fraction rows (median estimate 0, median SE 0.01): did you mean relative_percent? "
                             "— correct the tracker, or acknowledge the check with a reason if the numbers are right")
    assert shift.details == {"unit": "relative_fraction", "findings": [{
        "rule": "se_and_estimate_factor", "direction": "larger", "se_factor": 100.0, "estimate_factor": None,
        "estimate_informative": False, "reference_se": 0.01, "reference_estimate": 0.0, "peers": 4}]}


@pytest.mark.parametrize(("row_se", "flagged"), [(0.1, True), (0.0999, False), (20.0, True), (20.01, False)])
def test_unit_shift_factor_bounds_are_inclusive(row_se: float, flagged: bool) -> None:
    """SE factor exactly 10 and exactly 2000 (the rule's bounds) count; just outside does not."""
    rows = [{"unit": "relative_fraction", "estimate": 0.0, "standard_error": 0.01} for _ in range(4)]
    rows.append({"unit": "relative_fraction", "estimate": 0.0, "standard_error": row_se})
    assert bool(_shift(rows)) is flagged


@pytest.mark.parametrize(("row_estimate", "flagged"), [(-84.0, True), (-88.0, False)])
def test_unit_shift_needs_the_model_scale_factor_of_4(row_estimate: float, flagged: bool) -> None:
    """Peers +300 % with SE 100 (model-scale SE 100 / (100 + 300) = 0.25); the row has SE 1, 100× smaller
    on the per-cent scale, but on the model scale 1 / (100 − 84) = 1/16, exactly 4× smaller (flagged),
    or 1 / (100 − 88) = 1/12, 3× smaller (not a slip: off on the linear scale only)."""
    rows = [{"unit": "relative_percent", "estimate": 300.0, "standard_error": 100.0} for _ in range(4)]
    rows.append({"unit": "relative_percent", "estimate": row_estimate, "standard_error": 1.0})
    frame = pool_frame(rows, "log_relative")
    assert list(frame["model_se"]) == pytest.approx([0.25] * 4 + [1 / (100 + row_estimate)], rel=1e-12)
    assert bool(_shift(rows)) is flagged


def _peers(unit: str, estimate: float, se: float) -> list[dict]:
    return [{"unit": unit, "estimate": estimate, "standard_error": se} for _ in range(4)]


@pytest.mark.parametrize(("rows", "note"), [
    # |z| of the row exactly 2 (2.0 / 1.0): informative, so the estimate factor 2 / 0.04 = 50 is named
    (_peers("relative_fraction", 0.04, 0.01) + [{"unit": "relative_fraction", "estimate": 2.0, "standard_error": 1.0}],
     " (estimate 50× larger)"),
    # the peers' median |z| exactly 2 (0.02 / 0.01): informative; 4 / 0.02 = 200
    (_peers("relative_fraction", 0.02, 0.01) + [{"unit": "relative_fraction", "estimate": 4.0, "standard_error": 1.0}],
     " (estimate 2e+02× larger)"),
    # estimate factor exactly 3 (0.75 / 0.25): agrees with a shift to larger
    (_peers("relative_fraction", 0.25, 0.0125) + [{"unit": "relative_fraction", "estimate": 0.75,
                                                    "standard_error": 0.25}], " (estimate 3× larger)"),
    # estimate factor exactly 1/3 (1.5 / 4.5): agrees with a shift to smaller
    (_peers("relative_percent", 4.5, 2.0) + [{"unit": "relative_percent", "estimate": 1.5, "standard_error": 0.1}],
     " (estimate 3× smaller)"),
])
def test_unit_shift_at_the_informative_and_agreement_thresholds(rows: list[dict], note: str) -> None:
    (shift,) = _shift(rows)
    assert note + ": did you mean " in shift.message
    assert shift.details["findings"][-1]["estimate_informative"] is True


def test_an_estimate_half_the_peers_vetoes_a_shift_to_smaller() -> None:
    rows = _peers("relative_percent", 4.5, 2.0) + [{"unit": "relative_percent", "estimate": 2.25, "standard_error": 0.1}]
    assert _shift(rows) == []  # 2.25 / 4.5 = 0.5: not a third or less


def test_unit_shift_of_a_ratio_names_the_peers_median_as_a_ratio() -> None:
    """ratio: linear value x − 1; the median estimate is given back as a ratio (0.04 + 1)."""
    rows = _peers("ratio", 1.04, 0.01) + [{"unit": "ratio", "estimate": 5.0, "standard_error": 1.0}]
    (shift,) = _shift(rows)
    assert shift.message.startswith("row 6 (s5): estimate 5 and SE 1 are about 100× larger than the pool's other ratio "
                                    "rows (median estimate 1.04, median SE 0.01) (estimate 1e+02× larger): did you "
                                    "mean relative_percent?")
    assert shift.details["findings"][0]["reference_estimate"] == pytest.approx(1.04)


def test_unit_shift_against_peers_in_other_units_of_the_family() -> None:
    rows = [{"unit": "log_relative", "estimate": 0.04, "standard_error": 0.01} for _ in range(2)]
    rows += [{"unit": "relative_fraction", "estimate": 0.04, "standard_error": 0.01} for _ in range(2)]
    rows.append({"unit": "relative_fraction", "estimate": 4.0, "standard_error": 1.0})
    (shift,) = _shift(rows)
    assert "than the pool's other relative-effect rows (in relative_fraction) (median estimate 0.04" in shift.message


def test_value_rules_word_for_word() -> None:
    (shift,) = _shift([{"unit": "relative_fraction", "estimate": 1.5, "standard_error": 0.2}])
    assert shift.message == ("row 2 (s1): relative_fraction 1.5 means a lift of +150 %: did you mean relative_percent "
                             "(1.5 %)? — correct the tracker, or acknowledge the check with a reason if the numbers "
                             "are right")
    assert (shift.suggestion, shift.details) == ("relative_percent", {
        "unit": "relative_fraction", "findings": [{"rule": "relative_fraction_at_least_1"}]})
    (shift,) = [c for c in plausibility_checks(pool_frame(
        [{"unit": "proportion_difference", "estimate": -3.0, "standard_error": 0.5}], "percentage_point"))
        if c.code == "unit_shift"]
    assert shift.message.startswith("row 2 (s1): proportion_difference -3 is impossible (a difference of two "
                                    "proportions lies between −1 and 1): did you mean percentage_point (-3 pp)?")
    assert (shift.suggestion, shift.details) == ("percentage_point", {
        "unit": "proportion_difference", "findings": [{"rule": "proportion_difference_beyond_1"}]})


def _log_rows(ses: list[float], estimates: list[float] | None = None) -> list[dict]:
    """log_relative rows: the model-scale estimate and SE are the stated ones."""
    estimates = estimates or [0.05] * len(ses)
    return [{"unit": "log_relative", "estimate": e, "standard_error": s} for e, s in zip(estimates, ses, strict=True)]


def _codes(rows: list[dict], code: str) -> list:
    return [c for c in plausibility_checks(pool_frame(rows, "log_relative")) if c.code == code]


def test_se_outlier_word_for_word_both_ways() -> None:
    (check,) = _codes(_log_rows([0.1, 0.1, 0.1, 1.01]), "se_outlier")
    assert check.message == (
        "row 5 (s4): model-scale SE 1.01 is 10× larger than the pool's median 0.1: check the row's uncertainty (a CI "
        "at the wrong level, a variance typed as an SE, a unit slip); if it is right, this study is far more "
        "uncertain than the others")
    assert check.details == {"model_se": 1.01, "pool_median_se": 0.1, "factor": pytest.approx(10.1),
                             "threshold": 10.0}
    (check,) = _codes(_log_rows([0.1, 0.1, 0.1, 0.005]), "se_outlier")
    assert check.message == (
        "row 5 (s4): model-scale SE 0.005 is 20× smaller than the pool's median 0.1: check the row's uncertainty (a "
        "CI at the wrong level, a variance typed as an SE, a unit slip); if it is right, this study is far more "
        "precise than the others")
    assert check.details["factor"] == pytest.approx(0.05)


def test_se_outlier_bounds() -> None:
    assert _codes(_log_rows([0.1, 0.1, 0.1, 1.0]), "se_outlier") == []  # exactly 10×: not beyond
    assert [c.rows for c in _codes(_log_rows([0.1, 0.1, 5.0]), "se_outlier")] == [(4,)]  # three rows compare
    assert _codes(_log_rows([0.1, 5.0]), "se_outlier") == []  # two do not
    # a zero SE is left out (it has no ratio to the median): the other three are alike
    assert _codes(_log_rows([0.1, 0.1, 0.1, 0.0]), "se_outlier") == []
    assert _codes(_log_rows([0.1, 0.1, 0.0]), "se_outlier") == []  # two rows with an SE: too few


def test_dominant_weight_word_for_word() -> None:
    # weights 1/0.1² = 100, 100 and 1/0.05² = 400: the third row carries 400 / 600 = 67 %
    (check,) = _codes(_log_rows([0.1, 0.1, 0.05]), "dominant_weight")
    assert check.message == ("row 4 (s3) carries 67 % of the fixed-effect weight (1/SE²): the pooled result is mostly "
                             "this one study; check its uncertainty, and read the pooled result as largely that study's")
    assert check.details == {"share": pytest.approx(2 / 3), "threshold": 0.5}
    assert _codes(_log_rows([0.1, 0.1]), "dominant_weight") == []  # an even split: 50 % is not more than half
    assert _codes(_log_rows([0.1, 0.05, 0.0]), "dominant_weight")[0].rows == (3,)  # 80 %; the zero SE left out


def test_outlying_estimate_word_for_word() -> None:
    """The fifth estimate 0.5 against 0.01, 0.02, 0.015, 0.012 (all SE 0.01): others' median 0.0135,
    MAD 0.0025, robust SD 1.4826 · 1.363 · 0.0025; v_m = π/2 · max(SD², median SE²) / 4."""
    rows = _log_rows([0.01] * 5, [0.01, 0.02, 0.015, 0.012, 0.5])
    sd = 1.4826 * 1.363 * 0.0025
    z = (0.5 - 0.0135) / math.sqrt(sd**2 + 0.01**2 + (math.pi / 2) * max(sd**2, 0.01**2) / 4)
    (check,) = _codes(rows, "outlying_estimate")
    assert check.message == (f"row 6 (s5): model-scale estimate 0.5 lies {z:.1f} robust SDs from the other rows' median "
                             "0.0135 (allowing for its SE 0.01 and the others' spread): check the row; if it is right, "
                             "the reviewer should see this outlier")
    assert check.details == {"z": pytest.approx(z, rel=1e-9), "threshold": 3.5, "others_median": pytest.approx(0.0135)}


def test_a_row_with_two_unit_findings_lists_both() -> None:
    rows = _peers("relative_fraction", 0.04, 0.01) + [{"unit": "relative_fraction", "estimate": 2.0, "standard_error": 1.0}]
    (shift,) = _shift(rows)
    assert ("relative_fraction 2 means a lift of +200 %: did you mean relative_percent (2 %)?; estimate 2 and SE 1 are "
            "about 100× larger") in shift.message
    assert shift.suggestion == "relative_percent"


@pytest.mark.parametrize("column", ["model_estimate", "model_se"])
def test_rows_without_a_finite_model_number_are_left_out_of_the_outlier_test(column: str) -> None:
    """The outlier case above plus a row whose model-scale estimate or SE is missing (NaN): it is
    left out, and the outlier is found with the same z."""
    rows = _log_rows([0.01] * 6, [0.01, 0.02, 0.015, 0.012, 0.5, 0.013])
    frame = pool_frame(rows, "log_relative")
    frame.loc[5, column] = math.nan
    sd = 1.4826 * 1.363 * 0.0025
    z = (0.5 - 0.0135) / math.sqrt(sd**2 + 0.01**2 + (math.pi / 2) * max(sd**2, 0.01**2) / 4)
    (check,) = [c for c in plausibility_checks(frame) if c.code == "outlying_estimate"]
    assert check.rows == (6,) and check.details["z"] == pytest.approx(z, rel=1e-9)


def test_windows_in_two_periods_word_for_word() -> None:
    frame = text_pool(["", "", ""], [("2025-01-01", "2025-01-31"), ("2025-06-01", "2025-06-30"),
                                     ("2025-01-15", "2025-02-15")])
    (check,) = [c for c in plausibility_checks(frame) if c.code == "non_overlapping_windows"]
    assert check.message == (
        "the measurement windows of the pooled rows do not overlap in time: row 2 (s1) ends 2025-01-31 before row 3 "
        "(s2) starts 2025-06-01; they fall into 2 separate periods: 2025-01-01 to 2025-02-15 (rows 2, 4); 2025-06-01 "
        "to 2025-06-30 (row 3). The pooled effect averages over time: check that the effect is stable across these "
        "periods")
    assert check.details == {"span": ["2025-01-01", "2025-06-30"],
                             "periods": [{"start": "2025-01-01", "end": "2025-02-15", "rows": [2, 4]},
                                         {"start": "2025-06-01", "end": "2025-06-30", "rows": [3]}],
                             "rows_without_window": []}
    assert (check.rows, check.study_ids) == ((2, 3, 4), ("s1", "s2", "s3"))


def test_windows_in_one_chain_word_for_word() -> None:
    frame = text_pool(["", "", "", ""], [("2025-01-01", "2025-03-31"), ("2025-02-01", "2025-04-30"),
                                         ("2025-04-01T00:00", "2025-06-30T12:00"), ("2025-07-01", "")])
    (check,) = [c for c in plausibility_checks(frame) if c.code == "non_overlapping_windows"]
    assert check.message == (
        "the measurement windows of the pooled rows do not overlap in time: row 2 (s1) ends 2025-03-31 before row 4 "
        "(s3) starts 2025-04-01; they are spread from 2025-01-01 to 2025-06-30 without a period common to all. The "
        "pooled effect averages over time: check that the effect is stable across these periods")
    assert check.details["periods"] == [{"start": "2025-01-01", "end": "2025-06-30", "rows": [2, 3, 4]}]
    assert check.details["rows_without_window"] == [5] and check.rows == (2, 3, 4)


def test_ci_edge_word_for_word_and_a_zero_width_ci() -> None:
    rows = [{"unit": "relative_percent", "estimate": 7.4, "ci_lower": 1.1, "ci_upper": 7.4, "ci_level": 0.9}]
    (check,) = [c for c in plausibility_checks(pool_frame(rows, "log_relative")) if c.code == "estimate_at_ci_edge"]
    assert check.message == ("row 2 (s1): estimate 7.4 sits at the upper bound of its CI 1.1–7.4: was a bound copied "
                             "into the estimate column, or is the interval one-sided? Check the source")
    assert check.details == {"bound": "upper", "gap_fraction_of_width": 0.0, "threshold": 0.01}
    rows = [{"unit": "relative_percent", "estimate": 2.0, "ci_lower": 2.0, "ci_upper": 2.0, "ci_level": 0.9}]
    assert [c for c in plausibility_checks(pool_frame(rows, "log_relative")) if c.code == "estimate_at_ci_edge"] == []


def test_fixed_effect_shares_in_double_precision() -> None:
    se32 = np.array([0.1, 0.3, 0.07], np.float32)
    w = 1 / se32.astype(np.float64) ** 2
    assert pl.fixed_effect_shares(se32).tolist() == (w / w.sum()).tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=5e-324, max_value=1e300, allow_subnormal=True), min_size=1, max_size=12))
def test_fixed_effect_shares_are_finite_and_sum_to_one_for_any_positive_se(se: list[float]) -> None:
    """However small or large an SE (a subnormal typed by mistake makes 1/se² inf; above ~1e154 it
    is 0): finite shares in [0, 1] summing to 1, the largest for the smallest SE; 1/se² / Σ exactly
    where that sum is finite and positive."""
    arr = np.array(se)
    share = pl.fixed_effect_shares(arr)
    assert np.all(np.isfinite(share)) and np.all((share >= 0) & (share <= 1))
    assert abs(share.sum() - 1) < 1e-12
    assert share[np.argmin(arr)] == share.max()
    with np.errstate(over="ignore", divide="ignore"):
        w = 1 / arr**2
        if np.isfinite(w.sum()) and w.sum() > 0:
            assert share.tolist() == (w / w.sum()).tolist()


def test_a_subnormal_se_carries_all_the_weight() -> None:
    assert pl.fixed_effect_shares(np.array([5e-324, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.0]
    assert pl.fixed_effect_shares(np.array([1e-200, 1e-200])).tolist() == [0.5, 0.5]


def test_a_zero_se_row_is_no_unit_shift_peer() -> None:
    rows = _peers("relative_fraction", 0.04, 0.01) + [{"unit": "relative_fraction", "estimate": 4.0, "standard_error": 1.0},
                                                       {"unit": "relative_fraction", "estimate": 0.04, "standard_error": 0.0}]
    assert [c.rows for c in _shift(rows)] == [(6,)]


def test_a_family_with_too_few_measured_rows_does_not_stop_the_next() -> None:
    """Two percentage-point rows (the absolute family, sorted first; no model-scale values on
    log_relative) and a relative family with a slip: the slip is still found."""
    rows = [{"unit": "percentage_point", "estimate": 1.0, "standard_error": 0.5} for _ in range(2)]
    rows += _peers("relative_fraction", 0.04, 0.01) + [{"unit": "relative_fraction", "estimate": 4.0,
                                                        "standard_error": 1.0}]
    assert [c.rows for c in _shift(rows)] == [(8,)]


def test_a_scenario_row_is_no_unit_shift_peer() -> None:
    """A row with scenario uncertainty has a model-scale SE (the configured one) but no source SE:
    it takes no part in the factor rule, and the slip beside it is found."""
    rows = _peers("relative_fraction", 0.04, 0.01) + [{"unit": "relative_fraction", "estimate": 4.0, "standard_error": 1.0},
                                                       {"unit": "relative_fraction", "estimate": 0.04,
                                                        "uncertainty_scenario": "medium"}]
    frame = pool_frame(rows, "log_relative")
    frame.loc[5, "model_se"] = 0.05  # the configured scenario SE (pool_frame is given no scenarios)
    assert math.isnan(frame.loc[5, "standard_error"]) and math.isnan(frame.loc[5, "ci_lower"])
    assert [c.rows for c in plausibility_checks(frame) if c.code == "unit_shift"] == [(6,)]


def test_ci_edge_at_exactly_one_percent_and_on_a_narrow_ci() -> None:
    # gap 1 on a CI 0–100: exactly 1 % of the width, flagged
    rows = [{"unit": "relative_percent", "estimate": 1.0, "ci_lower": 0.0, "ci_upper": 100.0, "ci_level": 0.9}]
    assert [c.details["bound"] for c in plausibility_checks(pool_frame(rows, "log_relative"))
            if c.code == "estimate_at_ci_edge"] == ["lower"]
    # a CI narrower than 1 (fraction units): its upper bound copied into the estimate is found too
    rows = [{"unit": "relative_fraction", "estimate": 0.05, "ci_lower": 0.01, "ci_upper": 0.05, "ci_level": 0.9}]
    assert [c.details["bound"] for c in plausibility_checks(pool_frame(rows, "log_relative"))
            if c.code == "estimate_at_ci_edge"] == ["upper"]


def test_an_outlier_z_of_exactly_3_5_is_not_beyond_the_threshold() -> None:
    """An estimate found (by search) to give a robust z of exactly 3.5 in floating point: the rule
    flags z > 3.5, so not this row; one step further out it does."""
    estimates = [0.0, 0.01, 0.02, 0.0, 0.01, 0.11176298510714548]
    assert pl.robust_outlier_z(np.array(estimates), np.full(6, 0.02))[-1] == 3.5
    assert _codes(_log_rows([0.02] * 6, estimates), "outlying_estimate") == []
    estimates[-1] = 0.1118
    assert [c.rows for c in _codes(_log_rows([0.02] * 6, estimates), "outlying_estimate")] == [(7,)]


def test_windows_that_touch_are_one_period_and_ties_name_the_first_row() -> None:
    # B starts the day A ends: one period with C; the latest start 04-15 is C's
    frame = text_pool(["", "", ""], [("2025-01-01", "2025-03-31"), ("2025-03-31", "2025-05-01"),
                                     ("2025-04-15", "2025-06-30")])
    (check,) = [c for c in plausibility_checks(frame) if c.code == "non_overlapping_windows"]
    assert check.details["periods"] == [{"start": "2025-01-01", "end": "2025-06-30", "rows": [2, 3, 4]}]
    # two rows start last on the same day: the first of them (row 3) is named, whatever its end
    frame = text_pool(["", "", ""], [("2025-01-01", "2025-01-31"), ("2025-06-01", "2025-06-30"),
                                     ("2025-06-01", "2025-07-31")])
    (check,) = [c for c in plausibility_checks(frame) if c.code == "non_overlapping_windows"]
    assert "row 2 (s1) ends 2025-01-31 before row 3 (s2) starts 2025-06-01;" in check.message


def test_dominant_weight_percent_is_rounded_from_the_share() -> None:
    # weights 100 and 400 (the zero SE left out): 400 / 500 = 80 %
    (check,) = _codes(_log_rows([0.1, 0.05, 0.0]), "dominant_weight")
    assert check.message.startswith("row 3 (s2) carries 80 % of the fixed-effect weight")


def test_unit_shift_reference_se_is_in_the_row_s_unit() -> None:
    rows = _peers("relative_percent", 4.5, 2.0) + [{"unit": "relative_percent", "estimate": 1.5, "standard_error": 0.1}]
    (shift,) = _shift(rows)
    finding = shift.details["findings"][-1]
    assert (finding["reference_se"], finding["reference_estimate"]) == (pytest.approx(2.0), pytest.approx(4.5))
    assert "(median estimate 4.5, median SE 2)" in shift.message


def test_ci_edge_gap_is_a_fraction_of_the_width() -> None:
    # estimate 1 on the CI 0–100: 1 from the lower bound, 1 / 100 of the width
    rows = [{"unit": "relative_percent", "estimate": 1.0, "ci_lower": 0.0, "ci_upper": 100.0, "ci_level": 0.9}]
    (check,) = [c for c in plausibility_checks(pool_frame(rows, "log_relative")) if c.code == "estimate_at_ci_edge"]
    assert check.details == {"bound": "lower", "gap_fraction_of_width": 0.01, "threshold": 0.01}


def test_a_family_with_too_few_measured_rows_does_not_stop_the_factor_rule_of_the_next() -> None:
    """As test_a_family_with_too_few_measured_rows_does_not_stop_the_next, with a slip that only the
    factor rule finds: relative_percent 0.044 (SE 0.01) beside peers around 4.4 (SE 1), below 1, so
    no value rule speaks. The two percentage-point rows (the absolute family, sorted first) have no
    model-scale SE on log_relative: that family has no measured row."""
    rows = [{"unit": "percentage_point", "estimate": 1.0, "standard_error": 0.5} for _ in range(2)]
    rows += _shift_pool("smaller")
    (shift,) = _shift(rows)
    assert shift.rows == (8,)
    assert [f["rule"] for f in shift.details["findings"]] == ["se_and_estimate_factor"]


def test_a_scenario_row_is_no_peer_of_the_factor_rule() -> None:
    """As test_a_scenario_row_is_no_unit_shift_peer, with a slip below 1 that only the factor rule
    finds: the scenario row (model-scale SE 0.05, no source SE, so no linear SE) stays out of the
    peers; in them its missing SE would make the peers' median SE NaN and hide the slip."""
    rows = _shift_pool("smaller") + [{"unit": "relative_percent", "estimate": 4.4, "uncertainty_scenario": "medium"}]
    frame = pool_frame(rows, "log_relative")
    frame.loc[5, "model_se"] = 0.05
    (shift,) = [c for c in plausibility_checks(frame) if c.code == "unit_shift"]
    assert shift.rows == (6,)
    assert shift.details["findings"][0]["peers"] == 4  # the four rows with SE 1, not the scenario row


def test_a_row_whose_linear_se_rounds_to_zero_is_no_peer() -> None:
    """percentage_point on the percentage_point scale: SE 1e-323 is the model-scale SE as is (> 0),
    but 0.01 · 1e-323 rounds to 0 on the family's base (proportion difference). Such a row takes no
    part in the factor rule: with one other peer, row 3 (0.03 ± 0.01 beside 3 ± 1) has too few peers;
    with a second real peer it is found (100× smaller: proportion_difference?)."""
    tiny = {"unit": "percentage_point", "estimate": 1.0, "standard_error": 1e-323}
    peer = {"unit": "percentage_point", "estimate": 3.0, "standard_error": 1.0}
    slip = {"unit": "percentage_point", "estimate": 0.03, "standard_error": 0.01}
    frame = pool_frame([peer, slip, tiny], "percentage_point")
    assert frame.loc[2, "model_se"] > 0 and 0.01 * frame.loc[2, "standard_error"] == 0
    with np.errstate(divide="ignore", invalid="ignore"):  # the weight 1 / (1e-323)² is inf
        assert [c for c in plausibility_checks(frame) if c.code == "unit_shift"] == []
    second = {"unit": "percentage_point", "estimate": 2.5, "standard_error": 0.9}
    frame = pool_frame([peer, slip, tiny, second], "percentage_point")
    with np.errstate(divide="ignore", invalid="ignore"):
        assert [(c.rows, c.suggestion) for c in plausibility_checks(frame) if c.code == "unit_shift"] == [
            ((3,), "proportion_difference")]


def test_windows_name_the_row_that_ends_first_not_the_one_that_starts_first() -> None:
    """Row 2 (first position) runs in June; row 3 starts first (January) but ends 03-31; row 4 starts
    02-01 and ends first, 02-10."""
    frame = text_pool(["", "", ""], [("2025-06-01", "2025-06-30"), ("2025-01-01", "2025-03-31"),
                                     ("2025-02-01", "2025-02-10")])
    (check,) = [c for c in plausibility_checks(frame) if c.code == "non_overlapping_windows"]
    assert check.message == (
        "the measurement windows of the pooled rows do not overlap in time: row 4 (s3) ends 2025-02-10 before row 2 "
        "(s1) starts 2025-06-01; they fall into 2 separate periods: 2025-01-01 to 2025-03-31 (rows 3, 4); 2025-06-01 "
        "to 2025-06-30 (row 2). The pooled effect averages over time: check that the effect is stable across these "
        "periods")


def test_robust_outlier_z_in_double_precision() -> None:
    """float32 input (values exact in float32) is computed in float64: the fifth estimate 4 against
    0.25, 0.5, 0.375, 0.3125 (all SE 0.125): others' median 0.34375, MAD 0.0625, b_4 = 1.363."""
    y = np.array([0.25, 0.5, 0.375, 0.3125, 4.0], np.float32)
    se = np.full(5, 0.125, np.float32)
    sd = 1.4826 * 1.363 * 0.0625
    z = (4.0 - 0.34375) / math.sqrt(sd**2 + 0.125**2 + (math.pi / 2) * max(sd**2, 0.125**2) / 4)
    assert pl.robust_outlier_z(y, se)[-1] == pytest.approx(z, rel=1e-13)
    assert pl.robust_outlier_z(y.astype(np.float64), se)[-1] == pytest.approx(z, rel=1e-13)
    assert pl.robust_outlier_z(y, se.astype(np.float64))[-1] == pytest.approx(z, rel=1e-13)


def test_robust_sd_above_nine_values() -> None:
    """n >= 10: b_n = n / (n − 0.8). 0, 1, ..., 11: median 5.5, absolute deviations 0.5, 0.5, 1.5,
    1.5, ..., 5.5, 5.5 with median 3, so 1.4826 · 12/11.2 · 3 = 4.7655; 0, ..., 9: MAD 2.5,
    1.4826 · 10/9.2 · 2.5 = 4.02880..."""
    assert pl.robust_sd(np.arange(12.0)) == pytest.approx(4.7655, rel=1e-12)
    assert pl.robust_sd(np.arange(10.0)) == pytest.approx(3.7065 / 0.92, rel=1e-12)


def test_text_key_and_a_label_of_spaces_only() -> None:
    assert pl.text_key(" Geo_Test-A.b ") == "geo test a b"
    assert pl.text_key(" \t ") == ""
    # a design of spaces only names no design: one design, no check; the row is one without
    assert [c for c in plausibility_checks(text_pool(["synthetic control", "   ", "Synthetic_Control"]))
            if c.code == "mixed_designs"] == []
    (check,) = [c for c in plausibility_checks(text_pool(["synthetic control", "   ", "geo holdout"]))
                if c.code == "mixed_designs"]
    assert check.details["rows_without"] == [3]


def test_unknown_units_are_named_sorted_and_once() -> None:
    frame = pool_frame([{"unit": u, "estimate": 1.0, "standard_error": 0.5}
                        for u in ("pp", "relative_percent", "percent", "pp")], "log_relative")
    with pytest.raises(ValueError) as error:
        plausibility_checks(frame)
    assert str(error.value) == ("unknown unit(s) percent, pp; known: relative_percent, relative_fraction, ratio, "
                                "log_relative, percentage_point, proportion_difference")


def test_missing_columns_are_named_in_the_required_order() -> None:
    frame = pool_frame(_log_rows([0.1, 0.1]), "log_relative").drop(columns=["model_se", "estimate"])
    with pytest.raises(ValueError) as error:
        plausibility_checks(frame)
    assert str(error.value) == "plausibility_checks needs columns estimate, model_se"


def test_numeric_columns_of_none_read_as_missing() -> None:
    """CI columns holding None (an object column, as pandas makes of a column with no values) are
    read as NaN: the rows use their SEs, and the dominant weight (400 / 600 = 67 %) is found."""
    frame = pool_frame(_log_rows([0.1, 0.1, 0.05]), "log_relative")
    for column in ("ci_lower", "ci_upper", "ci_level"):
        frame[column] = None
    assert frame["ci_level"].dtype == object
    assert [(c.code, c.rows) for c in plausibility_checks(frame)] == [("dominant_weight", (4,))]


@pytest.mark.parametrize("partial", [{"ci_lower": 0.01, "ci_level": 0.9}, {"ci_upper": 0.08, "ci_level": 0.9},
                                     {"ci_lower": 0.01, "ci_upper": 0.08}])
def test_an_incomplete_ci_is_no_ci(partial: dict) -> None:
    """The slipped row of _shift_pool('smaller') with two of the three CI fields: its SE (0.01) is
    its uncertainty, and the slip is found as without them."""
    rows = _shift_pool("smaller")
    rows[-1] = {**rows[-1], **partial}
    (shift,) = _shift(rows)
    assert shift.rows == (6,)
    assert shift.message.startswith("row 6 (s5): estimate 0.044 and SE 0.01 are about 100× smaller than the pool's")


def test_infinite_ci_bounds_raise_no_floating_point_error() -> None:
    """Bounds inf and inf are no CI (not finite); the CI width inf − inf computed for every row is an
    invalid operation that must stay silent, even where numpy is told to raise."""
    frame = pool_frame(_log_rows([0.1, 0.1, 0.05]), "log_relative")
    frame.loc[0, ["ci_lower", "ci_upper", "ci_level"]] = [math.inf, math.inf, 0.9]
    with np.errstate(all="raise"):
        found = plausibility_checks(frame)
    assert [(c.code, c.rows) for c in found] == [("dominant_weight", (4,))]


def test_missing_text_cells_are_blank() -> None:
    """NaN in a text column (a missing cell) is no label and no window: row 3's NaN design is a row
    without one, and its NaN window is not read (rows 2 and 4 share January 15-31)."""
    frame = text_pool(["synthetic control", "", "geo holdout"],
                      [("2025-01-01", "2025-01-31"), ("", ""), ("2025-01-15", "2025-02-15")])
    for column in ("design", "population", "window_start", "window_end"):
        frame.loc[1, column] = math.nan
    assert isinstance(frame.loc[1, "design"], float)
    (check,) = plausibility_checks(frame)
    assert check.code == "mixed_designs" and check.rows == (2, 4)
    assert check.details["rows_without"] == [3]
    assert check.message.endswith("'geo holdout' (row 4); 1 row(s) give no design: confirm they estimate the same "
                                  "effect, or pool them separately")


def test_row_numbers_given_as_text_are_read_as_integers() -> None:
    """A row column of text ('10', '9'): read as the integers 10 and 9, so the check lists row 9 first
    (as text, '10' would sort before '9')."""
    frame = text_pool(["synthetic control", "geo holdout"])
    frame["row"] = pd.Series(["10", "9"], dtype=object)
    (check,) = plausibility_checks(frame)
    assert (check.rows, check.study_ids) == ((9, 10), ("s2", "s1"))
    assert check.message.startswith("the pooled rows mix 2 designs: 'synthetic control' (row 10), 'geo holdout' (row 9)")
