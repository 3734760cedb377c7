"""The verdict rules on their own, with numbers and texts worked out by hand: readiness (SPEC §7),
the materiality rule of the sensitivity tables, and run status / exit code / reportability.

The code lists (which reasons block, fail, or stop a result from being reportable) are written out
here from SPEC §2/§7, not imported, so that a code dropped from the module's sets fails.
"""

from __future__ import annotations

import math

import pytest

from marketbayesmeta.compiler.readiness import readiness_verdict
from marketbayesmeta.plan import Materiality
from marketbayesmeta.runtime.sensitivity import compare, fit_stats
from marketbayesmeta.runtime.status import StatusBook

# -- readiness ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "verdict"), [(0, "not_recommended"), (2, "not_recommended"), (3, "directional"),
                                            (4, "directional"), (5, "ready"), (9, "ready")])
def test_readiness_thresholds(n: int, verdict: str) -> None:
    # thresholds other than the defaults (2 / 4), so that a hard-coded default fails
    assert readiness_verdict(n, 0, min_directional=3, min_ready=5, blocking_duplicates=0)[0] == verdict


def test_readiness_reasons_in_words() -> None:
    kw = {"min_directional": 3, "min_ready": 5}
    assert readiness_verdict(2, 0, blocking_duplicates=0, **kw) == (
        "not_recommended", "2 comparable row(s) enter the pool; at least 3 are needed for a directional analysis")
    assert readiness_verdict(4, 0, blocking_duplicates=0, **kw) == (
        "directional", "4 comparable rows enter the pool: enough for a directional read (>= 3) but fewer than 5 "
                       "for ready")
    assert readiness_verdict(6, 0, blocking_duplicates=0, **kw) == ("ready", "6 comparable rows enter the pool (>= 5)")
    assert readiness_verdict(6, 2, blocking_duplicates=1, **kw) == (
        "ready", "6 comparable rows enter the pool (>= 5); 2 of them rely on scenario uncertainty; "
                 "1 blocking duplicate group(s) must be fixed first")
    assert readiness_verdict(6, 0, blocking_duplicates=3, **kw)[1] == (
        "6 comparable rows enter the pool (>= 5); 3 blocking duplicate group(s) must be fixed first")
    assert readiness_verdict(1, 1, blocking_duplicates=0, **kw)[1].endswith(
        "needed for a directional analysis; 1 of them rely on scenario uncertainty")


# -- sensitivity: deltas and materiality ------------------------------------------------------------

# binary-exact numbers, so that the boundaries (strict ">") are tested exactly
REF = {"mean": 0.5, "sd": 0.25, "lower": 0.0, "upper": 1.0, "interval_width": 1.0, "prob_positive": 0.75,
       "diagnostics_pass": True}
RULE = Materiality(mean_shift_sd=0.5, prob_positive_shift=0.125, prob_positive_crosses_half=True,
                   interval_width_change=0.25, rule="hand-written rule")


def _stats(**change: float) -> dict:
    s = {**REF, **change}
    s["interval_width"] = s["upper"] - s["lower"]
    return s


def test_fit_stats_copies_the_summary_and_adds_the_width() -> None:
    summary = {"mean": 0.1, "sd": 0.2, "median": 0.3, "lower": -0.25, "upper": 0.5, "interval_level": 0.9,
               "prob_positive": 0.7}
    assert fit_stats(summary, False) == {"mean": 0.1, "sd": 0.2, "lower": -0.25, "upper": 0.5,
                                         "interval_width": 0.75, "prob_positive": 0.7, "diagnostics_pass": False}
    assert fit_stats(summary, True)["diagnostics_pass"] is True


def test_identical_fit_is_not_material() -> None:
    out = compare(_stats(), REF, RULE)
    assert out == {**REF, "delta_mean": 0.0, "delta_mean_sd": 0.0, "delta_prob_positive": 0.0,
                   "delta_interval_width_rel": 0.0, "material": False, "material_reasons": ""}


@pytest.mark.parametrize(("change", "deltas", "reasons"), [
    # mean: (0.625 - 0.5) / 0.25 = 0.5, on the boundary: not material; 0.6875 -> 0.75
    ({"mean": 0.625}, {"delta_mean": 0.125, "delta_mean_sd": 0.5}, ""),
    ({"mean": 0.6875}, {"delta_mean": 0.1875, "delta_mean_sd": 0.75}, "mean moves +0.75 reference sd"),
    ({"mean": 0.375}, {"delta_mean": -0.125, "delta_mean_sd": -0.5}, ""),
    ({"mean": 0.3125}, {"delta_mean": -0.1875, "delta_mean_sd": -0.75}, "mean moves -0.75 reference sd"),
    # P(mu > 0): 0.875 - 0.75 = 0.125, on the boundary; 0.9375 -> +0.1875
    ({"prob_positive": 0.875}, {"delta_prob_positive": 0.125}, ""),
    ({"prob_positive": 0.9375}, {"delta_prob_positive": 0.1875}, "P(mu>0) moves +0.188"),
    ({"prob_positive": 0.625}, {"delta_prob_positive": -0.125}, ""),
    ({"prob_positive": 0.5625}, {"delta_prob_positive": -0.1875}, "P(mu>0) moves -0.188"),
    # interval width: 1.25 / 1 - 1 = 0.25, on the boundary; 1.5 -> +50 %; 0.5 -> -50 %
    ({"upper": 1.25}, {"delta_interval_width_rel": 0.25}, ""),
    ({"upper": 1.5}, {"delta_interval_width_rel": 0.5}, "interval width changes +50 %"),
    ({"upper": 0.75}, {"delta_interval_width_rel": -0.25}, ""),
    ({"lower": 0.5}, {"delta_interval_width_rel": -0.5}, "interval width changes -50 %"),
    # everything at once, reasons in the rule's order
    ({"mean": 0.0, "prob_positive": 0.25, "upper": 3.0},
     {"delta_mean": -0.5, "delta_mean_sd": -2.0, "delta_prob_positive": -0.5, "delta_interval_width_rel": 2.0},
     "mean moves -2.00 reference sd; P(mu>0) moves -0.500; P(mu>0) crosses 0.5; interval width changes +200 %"),
])
def test_materiality_rule_by_hand(change: dict, deltas: dict, reasons: str) -> None:
    out = compare(_stats(**change), REF, RULE)
    zero = {"delta_mean": 0.0, "delta_mean_sd": 0.0, "delta_prob_positive": 0.0, "delta_interval_width_rel": 0.0}
    assert {k: out[k] for k in zero} == {**zero, **deltas}
    assert out["material_reasons"] == reasons
    assert out["material"] is bool(reasons)
    for key, value in _stats(**change).items():  # the fit's own numbers are kept
        assert out[key] == value


def test_crossing_one_half_is_material_on_its_own_and_only_when_the_rule_says_so() -> None:
    ref = {**REF, "prob_positive": 0.5625}
    below = _stats(prob_positive=0.4375)  # a move of -0.125: not material by size
    out = compare(below, ref, RULE)
    assert (out["material"], out["material_reasons"]) == (True, "P(mu>0) crosses 0.5")
    assert compare(ref, below, RULE)["material_reasons"] == "P(mu>0) crosses 0.5"
    no_cross = RULE.model_copy(update={"prob_positive_crosses_half": False})
    assert compare(below, ref, no_cross)["material"] is False
    # reaching 0.5 exactly, or leaving it, is not crossing it
    assert compare(_stats(prob_positive=0.5), ref, RULE)["material"] is False
    assert compare(below, {**ref, "prob_positive": 0.5}, RULE)["material"] is False


def test_width_change_is_relative_to_the_reference_width() -> None:
    ref = {**REF, "upper": 0.5, "interval_width": 0.5}
    out = compare(_stats(upper=0.75), ref, RULE)  # 0.75 / 0.5 - 1 = +50 %
    assert out["delta_interval_width_rel"] == 0.5
    assert out["material_reasons"] == "interval width changes +50 %"


def test_degenerate_reference_gives_infinite_relative_changes() -> None:
    ref = {**REF, "sd": 0.0, "lower": 0.5, "upper": 0.5, "interval_width": 0.0}
    out = compare(_stats(), ref, RULE)
    assert out["delta_mean_sd"] == math.inf and out["delta_interval_width_rel"] == math.inf
    assert out["material"] is True
    assert out["material_reasons"] == "mean moves +inf reference sd; interval width changes +inf %"


# -- run status, exit code, reportability ---------------------------------------------------------

FAILING = {"sampling_failed", "diagnostics_failed", "artefact_failed"}
BLOCKING = {"readiness_not_recommended", "blocking_duplicates", "nothing_poolable"}
NOT_REPORTABLE_WARNINGS = {"readiness_directional", "diagnostics_warning", "material_prior_dependence",
                           "prior_sensitivity_not_run", "scenario_uncertainty", "material_uncertainty_dependence",
                           "stale_plan"}
HARMLESS_WARNINGS = {"possible_duplicates", "prior_diagnostics_warning", "ppc_flags", "report_warning"}


def _book(*codes: str) -> StatusBook:
    book = StatusBook()
    for code in codes:
        book.add(code, f"message for {code}")
    return book


def test_clean_run() -> None:
    book = StatusBook()
    assert (book.status, book.exit_code, book.reportable) == ("completed", 0, True)
    assert book.codes() == set()


@pytest.mark.parametrize("code", sorted(HARMLESS_WARNINGS))
def test_warnings_that_leave_the_result_reportable(code: str) -> None:
    book = _book(code)
    assert (book.status, book.exit_code, book.reportable) == ("completed_with_warnings", 0, True)


@pytest.mark.parametrize("code", sorted(NOT_REPORTABLE_WARNINGS))
def test_warnings_that_make_the_result_not_reportable(code: str) -> None:
    book = _book(code)
    assert (book.status, book.exit_code, book.reportable) == ("completed_with_warnings", 0, False)
    assert _book("ppc_flags", code).reportable is False


@pytest.mark.parametrize("code", sorted(BLOCKING))
def test_blocking_reasons(code: str) -> None:
    book = _book("ppc_flags", code)
    assert (book.status, book.exit_code, book.reportable) == ("blocked", 3, False)


@pytest.mark.parametrize("code", sorted(FAILING))
def test_failing_reasons_win_over_blocking_ones(code: str) -> None:
    book = _book(code)
    assert (book.status, book.exit_code, book.reportable) == ("failed", 4, False)
    book = _book("blocking_duplicates", code, "readiness_directional")
    assert (book.status, book.exit_code) == ("failed", 4)


def test_reasons_are_kept_once_each_in_order() -> None:
    book = StatusBook()
    book.add("ppc_flags", "one")
    book.add("stale_plan", "two")
    book.add("ppc_flags", "one")
    book.add("ppc_flags", "three")
    assert book.reasons == [{"code": "ppc_flags", "message": "one"}, {"code": "stale_plan", "message": "two"},
                            {"code": "ppc_flags", "message": "three"}]
    assert book.codes() == {"ppc_flags", "stale_plan"}
    book.add("stale_plan", "one")  # same message, other code: a new reason
    assert len(book.reasons) == 4
