"""The meta-regression's design matrix (compiler/moderators.py), built from trackers read by the
real tracker reader (extra columns arrive as raw strings)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from marketbayesmeta.compiler.moderators import (
    DesignMatrix,
    ModeratorError,
    ModeratorsConfig,
    beta_priors,
    build_design,
    resolve_beta_sd,
)
from marketbayesmeta.compiler.tracker import parse_tracker


def frame(**columns):
    """A parsed tracker with one row per value of the given columns (study_id S1, S2, ...)."""
    k = len(next(iter(columns.values())))
    header = ["study_id", "evidence_type", "metric", "unit", "estimate", "standard_error", "analysis_ready",
              *columns]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for i in range(k):
        writer.writerow([f"S{i + 1}", "geo_test", "sales", "relative_percent", str(1.0 + i), "1.0", "yes",
                         *(str(v[i]) for v in columns.values())])
    return parse_tracker(buf.getvalue().encode(), "tracker.csv")


def design(rows, *moderators, **config) -> DesignMatrix:
    return build_design(rows, ModeratorsConfig(moderators=list(moderators), **config))


def errors(rows, *moderators, **config):
    with pytest.raises(ModeratorError) as info:
        design(rows, *moderators, **config)
    return info.value


CHANNELS = ["tv", "search", "social", "tv", "search", "social", "tv"]


def test_numeric_moderator_is_centred_and_its_prior_is_per_sd():
    spend = [100, " 250 ", 50, 400, 75, 300]
    d = design(frame(spend=spend), "spend")
    values = np.array([100, 250, 50, 400, 75, 300], float)
    assert d.term_names == ["intercept", "spend"]
    assert [t.kind for t in d.terms] == ["intercept", "numeric"]
    x = d.array()
    np.testing.assert_array_equal(x[:, 0], 1.0)
    np.testing.assert_allclose(x[:, 1], values - values.mean())
    assert d.centring == {"spend": pytest.approx(values.mean())}
    assert d.spread == {"spend": pytest.approx(values.std(ddof=1))}
    assert d.rows == [2, 3, 4, 5, 6, 7] and d.study_ids == [f"S{i}" for i in range(1, 7)]
    assert not d.exploratory and d.problems == [] and d.subgroups == []
    means, sds = beta_priors(d, mu_mean=0.1, mu_sd=1.0, beta_sd=0.5)
    assert means == [0.1, 0.0]
    assert sds == [1.0, pytest.approx(0.5 / values.std(ddof=1))]


def test_categorical_moderator_dummy_codes_against_the_first_sorted_level():
    d = design(frame(channel=CHANNELS), "channel")
    assert d.reference_levels == {"channel": "search"}
    assert d.term_names == ["intercept", "channel[social]", "channel[tv]"]
    assert [t.level for t in d.terms] == [None, "social", "tv"]
    x = d.array()
    np.testing.assert_array_equal(x[:, 1], [c == "social" for c in CHANNELS])
    np.testing.assert_array_equal(x[:, 2], [c == "tv" for c in CHANNELS])
    assert d.level_counts == {"channel": {"search": 2, "social": 2, "tv": 3}}
    # With one moderator, each row's covariates are its level's subgroup contrast.
    contrast = {s.level: s.contrast for s in d.subgroups}
    assert {s.level for s in d.subgroups if s.reference} == {"search"}
    for row, level in zip(x.tolist(), CHANNELS, strict=True):
        assert row == contrast[level]
    assert [s.n_rows for s in d.subgroups] == [2, 2, 3]


def test_configured_reference_level():
    d = design(frame(channel=CHANNELS), "channel", reference_levels={"Channel": "tv"})
    assert d.reference_levels == {"channel": "tv"}
    assert d.term_names == ["intercept", "channel[search]", "channel[social]"]
    means, sds = beta_priors(d, mu_mean=0.0, mu_sd=1.0, beta_sd=0.3)
    assert means == [0.0, 0.0, 0.0] and sds == [1.0, 0.3, 0.3]


def test_duration_days_from_the_window_dates():
    rows = frame(window_start=["2024-01-01", "2024-02-01", "2024-03-01", "2024-01-15", "2024-05-01"],
                 window_end=["2024-01-28", "2024-02-29", "2024-03-01", "2024-03-14", "2024-05-10"])
    d = design(rows, "duration_days")
    days = np.array([28, 29, 1, 60, 10], float)  # inclusive: a one-day test lasts 1 day (2024 is leap)
    np.testing.assert_allclose(d.array()[:, 1] + d.centring["duration_days"], days)
    assert d.terms[1].kind == "numeric"


def test_numbers_listed_as_categorical_are_levels():
    d = design(frame(region=[1, 2, 3, 1, 2, 3]), "region", categorical=["region"])
    assert d.term_names == ["intercept", "region[2]", "region[3]"]
    assert design(frame(region=[1, 2, 3, 1, 2, 3]), "region").terms[1].kind == "numeric"


def test_numeric_and_two_categoricals_subgroups_average_the_others():
    designs = ["rct", "quasi", "rct", "rct", "quasi", "rct", "quasi", "rct", "rct"]
    channel = ["tv", "tv", "search", "search", "tv", "search", "search", "tv", "search"]
    spend = [1, 5, 2, 8, 3, 4, 6, 7, 9]
    d = design(frame(design=designs, channel=channel, spend=spend), "channel", "design", "spend")
    assert d.term_names == ["intercept", "channel[tv]", "design[rct]", "spend"]
    share_rct = designs.count("rct") / 9
    by = {(s.moderator, s.level): s.contrast for s in d.subgroups}
    assert by[("channel", "search")] == [1.0, 0.0, pytest.approx(share_rct), 0.0]
    assert by[("channel", "tv")] == [1.0, 1.0, pytest.approx(share_rct), 0.0]
    share_tv = channel.count("tv") / 9
    assert by[("design", "quasi")] == [1.0, pytest.approx(share_tv), 0.0, 0.0]
    assert by[("design", "rct")] == [1.0, pytest.approx(share_tv), 1.0, 0.0]


def test_a_level_with_too_few_rows_is_exploratory_not_an_error():
    channel = ["tv", "search", "tv", "search", "tv", "social", "search"]
    d = design(frame(channel=channel), "channel")
    assert d.exploratory
    (problem,) = d.problems
    assert problem.code == "few_rows_per_level" and problem.severity == "exploratory"
    assert problem.rows == [7] and problem.study_ids == ["S6"]
    assert "'social'" in problem.message and "exploratory" in problem.message
    flags = {t.name: t.exploratory for t in d.terms}
    assert flags == {"intercept": False, "channel[social]": True, "channel[tv]": False}
    assert {s.level: s.exploratory for s in d.subgroups} == {"search": False, "social": True, "tv": False}
    relaxed = design(frame(channel=channel), "channel", min_rows_per_level=1)
    assert not relaxed.exploratory and relaxed.problems == []
    # A small reference level makes every comparison against it exploratory.
    d = design(frame(channel=channel), "channel", reference_levels={"channel": "social"})
    assert all(t.exploratory for t in d.terms[1:])


def test_unknown_column_suggests_the_closest():
    err = errors(frame(channel=CHANNELS), "chanel")
    (detail,) = err.details
    assert detail.code == "unknown_moderator" and "did you mean 'channel'?" in detail.message
    assert "config.yaml, column 'analysis.moderators'" in err.render()
    assert errors(frame(channel=CHANNELS), "duration").details[0].message.endswith("did you mean 'duration_days'?")


def test_reserved_columns_are_not_moderators():
    for name in ("estimate", "study_id", "window_start", "notes"):
        assert errors(frame(channel=CHANNELS), name).details[0].code == "reserved_column"


def test_missing_values_name_the_rows():
    err = errors(frame(channel=["tv", "", "search", "tv", " ", "search"]), "channel")
    (detail,) = err.details
    assert detail.code == "missing_values" and detail.rows == [3, 6] and detail.study_ids == ["S2", "S5"]
    assert "row 3 (S2), row 6 (S5)" in detail.message
    rendered = err.render()
    assert "tracker.csv, row 3, column 'channel'" in rendered and "tracker.csv, row 6, column 'channel'" in rendered
    rows = frame(window_start=["2024-01-01", "", "2024-03-01", "2024-01-01", "2024-01-01"],
                 window_end=["2024-01-28", "2024-02-29", "2024-03-01", "", "2024-02-01"])
    detail = errors(rows, "duration_days").details[0]
    assert detail.code == "missing_values" and detail.rows == [3, 5]
    assert "window_start and window_end empty" in detail.message


def test_numbers_with_a_few_text_cells_are_an_error_naming_the_rows():
    err = errors(frame(spend=[100, "1,000", 250, 400, "n/a", 300]), "spend")
    (detail,) = err.details
    assert detail.code == "mixed_numeric" and detail.rows == [3, 6]
    assert "tracker.csv, row 3, column 'spend'" in err.render()
    labels = [100, 100, "1,000", 250, 250, 100, "1,000", 250]
    assert errors(frame(spend=labels), "spend").details[0].code == "mixed_numeric"
    d = design(frame(spend=labels), "spend", categorical=["spend"])
    assert d.term_names == ["intercept", "spend[100]", "spend[250]"]  # reference: "1,000" sorts first


def test_constant_moderators_are_errors():
    assert errors(frame(spend=[5] * 6), "spend").details[0].code == "constant_moderator"
    assert errors(frame(channel=["tv"] * 6), "channel").details[0].code == "constant_moderator"


def test_too_many_coefficients_names_the_counts():
    detail = errors(frame(channel=["tv", "search", "social", "tv", "radio"]), "channel").details[0]
    assert detail.code == "too_many_coefficients"
    assert "need 4 coefficients" in detail.message and "has 5 row(s)" in detail.message
    assert "at least 6 rows" in detail.message
    design(frame(channel=["tv", "search", "social", "tv", "radio", "tv"]), "channel")  # 4 terms, 6 rows: ok


def test_collinear_moderators_are_errors():
    designs = ["rct" if c == "tv" else "quasi" for c in CHANNELS]
    detail = errors(frame(channel=CHANNELS, design=designs), "channel", "design").details[0]
    assert detail.code == "collinear_moderators" and detail.moderator == "design"
    assert "'design[rct]'" in detail.message


def test_reference_level_problems():
    detail = errors(frame(channel=CHANNELS), "channel", reference_levels={"channel": "tvv"}).details[0]
    assert detail.code == "unknown_reference_level" and "did you mean 'tv'?" in detail.message
    detail = errors(frame(spend=[1, 2, 3, 4, 5, 6]), "spend", reference_levels={"spend": "1"}).details[0]
    assert detail.code == "reference_for_numeric"


def test_levels_differing_only_in_case():
    detail = errors(frame(channel=["TV", "tv", "search", "search", "tv", "TV"]), "channel").details[0]
    assert detail.code == "levels_differ_by_case" and "'TV' / 'tv'" in detail.message


def test_a_tracker_column_named_duration_days_is_ambiguous():
    assert errors(frame(duration_days=[1, 2, 3, 4, 5]), "duration_days").details[0].code == "ambiguous_moderator"


def test_every_error_is_reported_at_once():
    err = errors(frame(channel=["tv", "", "search", "tv", "search", "tv"], spend=[3] * 6), "chanel", "channel",
                 "spend", "estimate")
    assert [d.code for d in err.details] == ["unknown_moderator", "missing_values", "constant_moderator",
                                             "reserved_column"]
    assert str(err) == "4 problem(s) with analysis.moderators" and err.exit_code == 2


def test_config_model():
    cfg = ModeratorsConfig(moderators=[" Channel ", "spend"], reference_levels={"CHANNEL": " tv "})
    assert cfg.moderators == ["channel", "spend"] and cfg.reference_levels == {"channel": "tv"}
    assert cfg.min_rows_per_level == 2 and cfg.beta_sd is None
    for bad in ({"moderators": ["a"], "extra": 1}, {"moderators": ["a", "A"]},
                {"moderators": ["a"], "reference_levels": {"b": "x"}}, {"moderators": ["a"], "categorical": ["b"]},
                {"moderators": ["a"], "min_rows_per_level": 0}, {"moderators": ["a"], "beta_sd": 0},
                {"moderators": ["a"], "beta_sd": float("inf")}):
        with pytest.raises(ValidationError):
            ModeratorsConfig(**bad)
    assert resolve_beta_sd(cfg, "log_relative").model_dump() == {"value": 1.0, "provenance": "default"}
    assert resolve_beta_sd(cfg, "percentage_point").value == 10.0
    assert resolve_beta_sd(ModeratorsConfig(beta_sd=0.2), "log_relative").model_dump() == {
        "value": 0.2, "provenance": "config"}


def test_design_is_frozen_and_round_trips():
    d = design(frame(channel=CHANNELS, spend=[1, 2, 3, 4, 5, 6, 9]), "channel", "spend")
    assert DesignMatrix.model_validate_json(d.model_dump_json()) == d
    with pytest.raises(ValidationError):
        d.model_copy(update={}).__class__.model_validate({**d.model_dump(), "surprise": 1})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=6, max_size=15),
       st.lists(st.integers(-1000, 1000), min_size=15, max_size=15))
def test_design_properties(levels, numbers):
    """Counts, dummies and centring agree with the rows for any pool the checks let through."""
    k = len(levels)
    values = numbers[:k]
    try:
        d = design(frame(group=levels, size=values), "group", "size")
    except ModeratorError as err:
        codes = {detail.code for detail in err.details}
        assert codes <= {"constant_moderator", "too_many_coefficients", "collinear_moderators"}
        return
    x = d.array()
    assert x.shape == (k, len(d.terms)) and np.linalg.matrix_rank(x) == len(d.terms) <= k - 2
    assert abs(x[:, -1].sum()) <= 1e-9 * max(1.0, np.abs(values).sum())
    counts = d.level_counts["group"]
    assert sum(counts.values()) == k
    for j, term in enumerate(d.terms):
        if term.kind == "categorical":
            assert x[:, j].sum() == counts[term.level]
    assert d.exploratory == any(n < 2 for n in counts.values())
