"""The tracker refuses exactly the rows whose model-scale numbers compile (or the fit) could not
use, and takes its unit list and domains from the unit transforms (compiler/units.py)."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketbayesmeta.compiler import tracker as tracker_module
from marketbayesmeta.compiler import units
from marketbayesmeta.compiler.prepare import model_scale_effects
from marketbayesmeta.compiler.tracker import UNITS, parse_tracker
from marketbayesmeta.errors import TrackerError

HEADER = ["study_id", "evidence_type", "metric", "unit", "estimate", "standard_error", "ci_lower",
          "ci_upper", "ci_level", "analysis_ready"]
SCENARIOS = {"low": 0.02, "medium": 0.05, "high": 0.1}


def one_row(**cells: str) -> bytes:
    row = {"study_id": "S1", "evidence_type": "geo_test", "metric": "sales",
           "unit": "relative_percent", "estimate": "5", "standard_error": "1",
           "analysis_ready": "yes", **cells}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    w.writerow([row.get(c, "") for c in HEADER])
    return buf.getvalue().encode()


def refused(data: bytes) -> list:
    with pytest.raises(TrackerError) as info:
        parse_tracker(data, "tracker.csv")
    return info.value.problems


def scale_of(unit: str) -> str:
    return next(scale for (u, scale) in units.TRANSFORMS if u == unit)


def model_values(data: bytes) -> tuple[float, float]:
    frame = parse_tracker(data, "tracker.csv")
    effects = model_scale_effects(frame, scale_of(frame["unit"][0]), SCENARIOS)
    return float(effects["model_estimate"][0]), float(effects["model_se"][0])


# -- the unit list and domains come from units.TRANSFORMS -----------------------------------------

def test_units_and_domains_are_the_transforms():
    assert UNITS == units.UNITS == tuple(dict.fromkeys(u for u, _ in units.TRANSFORMS))
    bounds = {u: t.lower_bound for (u, _), t in units.TRANSFORMS.items()}
    assert tracker_module._DOMAIN == {u: b for u, b in bounds.items() if b is not None}
    assert bounds == {"relative_percent": -100.0, "relative_fraction": -1.0, "ratio": 0.0,
                      "log_relative": None, "percentage_point": None,
                      "proportion_difference": None}
    assert units.transform_for("ratio", "log_relative").domain == "x > 0"
    assert units.transform_for("log_relative", "log_relative").domain == "any finite number"


@pytest.mark.parametrize("unit", [u for (u, _), t in units.TRANSFORMS.items()
                                  if t.lower_bound is not None])
def test_a_value_at_the_lower_bound_is_a_row_error_naming_the_unit(unit):
    bound = units.transform_for(unit, scale_of(unit)).lower_bound
    problems = refused(one_row(unit=unit, estimate=repr(bound)))
    assert [(p.row, p.column) for p in problems] == [(2, "estimate")]
    assert f"'{unit}'" in problems[0].message and f"> {bound:g}" in problems[0].message


@settings(max_examples=300, deadline=None)
@given(unit=st.sampled_from(UNITS),
       estimate=st.floats(allow_nan=False, allow_infinity=False),
       se=st.floats(min_value=0, exclude_min=True, allow_infinity=False))
def test_an_accepted_row_never_gives_a_non_finite_model_value(unit, estimate, se):
    """Whatever the unit (bounded or not), a finite estimate and SE either make a row error or
    give a finite model-scale estimate and a usable SE: never NaN, inf or 0 (the old
    missing-_DOMAIN path to NaN and the assert in Plan.fit_data)."""
    data = one_row(unit=unit, estimate=repr(estimate), standard_error=repr(se))
    try:
        m, s = model_values(data)
    except TrackerError:
        return
    assert math.isfinite(m) and abs(m) <= units.MODEL_ABS_MAX
    assert units.MODEL_SE_RANGE[0] <= s <= units.MODEL_SE_RANGE[1]


@settings(max_examples=300, deadline=None)
@given(unit=st.sampled_from(UNITS),
       lo=st.floats(allow_nan=False, allow_infinity=False),
       width=st.floats(min_value=0, exclude_min=True, allow_infinity=False),
       level=st.one_of(st.floats(0, 1, exclude_min=True, exclude_max=True),
                       st.floats(1, 100, exclude_min=True, exclude_max=True)))
def test_an_accepted_ci_row_gives_a_usable_model_se(unit, lo, width, level):
    hi = lo + width
    if not math.isfinite(hi) or hi <= lo:
        return
    data = one_row(unit=unit, estimate=repr(lo), standard_error="", ci_lower=repr(lo),
                   ci_upper=repr(hi), ci_level=repr(level))
    try:
        m, s = model_values(data)
    except TrackerError:
        return
    assert math.isfinite(m)
    assert units.MODEL_SE_RANGE[0] <= s <= units.MODEL_SE_RANGE[1]


# -- the valid-looking numbers that used to end in "internal error" -------------------------------

@pytest.mark.parametrize(("cells", "column"), [
    ({"ci_level": "99.99999999999999", "ci_lower": "1", "ci_upper": "9", "standard_error": ""},
     "ci_level"),
    ({"ci_level": "1e-17", "ci_lower": "1", "ci_upper": "9", "standard_error": ""}, "ci_level"),
    ({"unit": "ratio", "estimate": "1e-310", "standard_error": "0.5"}, "standard_error"),
    ({"unit": "ratio", "estimate": "1e-310", "standard_error": "1e308"}, "standard_error"),
    ({"unit": "log_relative", "estimate": "0", "standard_error": "", "ci_lower": "-1e308",
      "ci_upper": "1e308", "ci_level": "95"}, "ci_lower"),
    ({"standard_error": "1e-308"}, "standard_error"),
    ({"estimate": "1e300", "standard_error": "1e-300"}, "standard_error"),
    ({"unit": "percentage_point", "estimate": "1e300"}, "estimate"),
])
def test_unusable_model_scale_numbers_are_row_errors(cells, column):
    problems = refused(one_row(**cells))
    assert [(p.row, p.column) for p in problems] == [(2, column)], [p.render() for p in problems]
    assert "usable" in problems[0].message or "finite normal quantile" in problems[0].message


# -- ci_level forms -------------------------------------------------------------------------------

@pytest.mark.parametrize(("level", "expected"), [
    ("90%", 0.9), ("90 %", 0.9), (" 95 % ", 0.95), ("99.9%", 0.999), ("0.5%", 0.005),
    ("90", 0.9), ("0.9", 0.9)])
def test_ci_level_percent_forms(level, expected):
    frame = parse_tracker(one_row(ci_lower="1", ci_upper="9", ci_level=level, standard_error=""),
                          "tracker.csv")
    assert frame["ci_level"].tolist() == [pytest.approx(expected)]


@pytest.mark.parametrize("level", ["0%", "0 %", "100%", "100 %", "150%", "-5%", "90%%", "%",
                                   "90 percent", "% 90"])
def test_ci_level_bad_percent_forms(level):
    problems = refused(one_row(ci_lower="1", ci_upper="9", ci_level=level, standard_error=""))
    assert [(p.row, p.column, p.value) for p in problems] == [(2, "ci_level", level.strip())]


def test_percent_level_gives_the_same_model_se_as_the_number():
    a = model_values(one_row(ci_lower="1", ci_upper="9", ci_level="90%", standard_error=""))
    b = model_values(one_row(ci_lower="1", ci_upper="9", ci_level="0.9", standard_error=""))
    assert a == b
    expected = (np.log1p(0.09) - np.log1p(0.01)) / (2 * 1.6448536269514722)
    assert a[1] == pytest.approx(expected, rel=1e-12)
