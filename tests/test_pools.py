"""Which pools a config asks for and which rows each one considers (compiler/pools.py), rule by rule,
through compile: names, filters, scopes, inheritance of analysis / priors / sensitivity, the order
of split pools, and the errors that name what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers import row
from marketbayesmeta.api import compile_config, load_config
from marketbayesmeta.compiler.pools import describe_filters, pool_specs, slug
from marketbayesmeta.errors import ConfigError
from test_portfolio import _project, _rows


@pytest.mark.parametrize("value, expected", [
    ("TV", "tv"), (" Online Video ", "online-video"), ("a/b & c", "a-b-c"), ("north_east", "north_east"),
    ("x--y", "x--y"), ("--", "unspecified"), ("", "unspecified"), ("Région 1", "r-gion-1"), ("A.B", "a-b"),
])
def test_slug(value: str, expected: str) -> None:
    assert slug(value) == expected


def test_describe_filters() -> None:
    assert describe_filters({}) == ""
    assert describe_filters({"channel": ("tv",)}) == "channel in tv"
    assert describe_filters({"channel": ("tv", "radio"), "market": ("",)}) == "channel in tv, radio; market in (blank)"


def test_one_pool_without_pools_or_split(tmp_path: Path) -> None:
    plan = compile_config(_project(tmp_path))
    assert plan.layout == "single"
    (pool,) = plan.pools
    assert pool.name == "portfolio_test" and pool.filters == {}
    # a single pool's scope is the whole tracker: every row gets a decision
    assert len(pool.rows) == len(_rows())
    assert {r.reason for r in pool.rows if r.metric == "awareness"} == {"other_metric"}
    assert pool.label == "geo_test/sales/log_relative"


def test_split_without_pools_is_named_after_the_metric_and_ordered_blank_last(tmp_path: Path) -> None:
    rows = [row(f"s{i}", 2.0, channel=ch, market=mk, metric="Sales Lift") for i, (ch, mk) in
            enumerate([("TV", "b"), ("radio", "a"), ("tv", "a"), ("", "b"), ("Radio", "")])]
    plan = compile_config(_project(tmp_path, rows, analysis={"metric": "Sales Lift", "split_by": ["channel", "market"]}))
    assert [p.name for p in plan.pools] == [
        "sales-lift__channel-radio__market-a", "sales-lift__channel-radio__market-unspecified",
        "sales-lift__channel-tv__market-a", "sales-lift__channel-tv__market-b",
        "sales-lift__channel-unspecified__market-b"]
    assert [p.filters for p in plan.pools] == [
        {"channel": ["radio"], "market": ["a"]}, {"channel": ["radio"], "market": [""]},
        {"channel": ["tv"], "market": ["a"]}, {"channel": ["tv"], "market": ["b"]},
        {"channel": [""], "market": ["b"]}]
    tv_a = plan.pool("sales-lift__channel-tv__market-a")
    assert [r.study_id for r in tv_a.rows] == ["s2"]
    assert tv_a.label == "geo_test/Sales Lift/log_relative (channel in tv; market in a)"
    assert [r.study_id for r in plan.pool("sales-lift__channel-radio__market-unspecified").rows] == ["s4"]


def test_named_pools_with_filters_and_a_split(tmp_path: Path) -> None:
    pools = [{"name": "sales_m", "filters": {"market": ["M0", " m1 "]}},
             {"name": "aware", "metric": "awareness", "scale": "percentage_point", "evidence_types": ["brand_lift"]}]
    plan = compile_config(_project(tmp_path, pools=pools, analysis={"split_by": ["channel"]}))
    assert [p.name for p in plan.pools] == ["sales_m__channel-radio", "sales_m__channel-tv", "aware__channel-tv"]
    assert plan.pool("sales_m__channel-tv").filters == {"market": ["m0", "m1"], "channel": ["tv"]}
    assert {r.study_id for r in plan.pool("sales_m__channel-tv").rows} == {"tv-0", "tv-1"}
    assert {r.study_id for r in plan.pool("sales_m__channel-radio").rows} == {"radio-0", "radio-1"}
    aware = plan.pool("aware__channel-tv")
    assert (aware.metric, aware.scale, aware.evidence_types) == ("awareness", "percentage_point", ["brand_lift"])
    assert [r.study_id for r in aware.rows] == ["aw-1", "aw-2"]


def test_a_pool_takes_analysis_settings_it_does_not_set(tmp_path: Path) -> None:
    pools = [{"name": "plain"},
             {"name": "justified", "triangulate_only_justification": "the MMM is calibrated on our geo tests"}]
    plan = compile_config(_project(tmp_path, pools=pools, analysis={
        "triangulate_only_justification": "top level", "triangulate_only": {"evidence_types": ["vendor model"]}}))
    plain, justified = plan.pool("plain"), plan.pool("justified")
    assert (plain.metric, plain.scale, plain.evidence_types) == ("sales", "log_relative", ["geo_test"])
    assert plain.triangulate_only_justification == "top level"
    assert justified.triangulate_only_justification == "the MMM is calibrated on our geo tests"


def test_the_extension_reaches_every_pool(tmp_path: Path) -> None:
    rows = [*_rows(), row("vm", 2.0, evidence_type="vendor model", channel="tv", market="v")]
    plan = compile_config(_project(tmp_path, rows, pools=[{"name": "p", "evidence_types": ["geo_test",
                                                                                         "vendor model"]}],
                                   analysis={"triangulate_only": {"evidence_types": ["Vendor Model"]}}))
    vm = next(r for r in plan.pool("p").rows if r.study_id == "vm")
    assert vm.reason == "triangulate_only"


@pytest.mark.parametrize("top, pool, expected", [
    # model-scale keys, key by key
    ({"mu_sd": 0.8}, {"tau_scale": 0.2}, {"mu_mean": 0.0, "mu_sd": 0.8, "tau_scale": 0.2}),
    # a business form on the pool replaces the model-scale keys it stands for, and the reverse
    ({"mu_mean": 0.3, "mu_sd": 0.8}, {"expected_effect": {"lower": 0, "upper": 10, "unit": "relative_percent"}},
     # (log 1.1 − log 1) / (2 · 1.96) = 0.02431
     {"mu_sd": pytest.approx(0.02431, rel=1e-3), "tau_scale": 0.5}),
    ({"expected_effect": {"lower": 0, "upper": 10, "unit": "relative_percent"}}, {"mu_sd": 0.9},
     {"mu_mean": 0.0, "mu_sd": 0.9}),
    ({"typical_spread": {"value": 3, "unit": "relative_percent"}}, {"tau_scale": 0.3}, {"tau_scale": 0.3}),
    ({"tau_scale": 0.3}, {"typical_spread": {"value": 3, "unit": "relative_percent"}},
     {"tau_scale": pytest.approx(0.04382, rel=1e-3)}),
    ({"mu_mean": 0.1, "tau_family": "half_cauchy"}, {"mu_mean": 0.2}, {"mu_mean": 0.2, "tau_family": "half_cauchy"}),
    ({"mu_mean": 0.1}, None, {"mu_mean": 0.1, "mu_sd": 1.0}),
    # one model-scale key on the pool: the other stays the top level's (mu_mean was once reset to 0)
    ({"mu_mean": 0.1, "mu_sd": 0.8}, {"mu_sd": 0.5}, {"mu_mean": 0.1, "mu_sd": 0.5}),
    ({"mu_mean": 0.1, "mu_sd": 0.8}, {"mu_mean": -0.2}, {"mu_mean": -0.2, "mu_sd": 0.8}),
    # tau's family on the pool, the spread stated on top: log(1.03) / log(2) = 0.04265 for exponential
    ({"typical_spread": {"value": 3, "unit": "relative_percent"}}, {"tau_family": "exponential"},
     {"tau_scale": pytest.approx(0.04265, rel=1e-3), "tau_family": "exponential"}),
])
def test_pool_priors_merge_with_the_top_level(tmp_path: Path, top: dict[str, Any], pool: dict[str, Any] | None,
                                              expected: dict[str, Any]) -> None:
    entry = {"name": "p"} if pool is None else {"name": "p", "priors": pool}
    plan = compile_config(_project(tmp_path, pools=[entry], priors={**top, "justification": "j"}))
    values = {k: v.value for k, v in plan.pool("p").priors.items()}
    assert {k: values[k] for k in expected} == expected


def test_pool_sensitivity_replaces_the_whole_block(tmp_path: Path) -> None:
    plan = compile_config(_project(tmp_path, pools=[{"name": "own", "sensitivity": {"prior": False}}, {"name": "top"}],
                                   sensitivity={"prior": True, "leave_one_out": False}))
    own, top = plan.pool("own").sensitivity, plan.pool("top").sensitivity
    assert (own.prior, own.leave_one_out) == (False, True)  # the block's defaults, not the top level's
    assert (top.prior, top.leave_one_out) == (True, False)


@pytest.mark.parametrize("pools, words", [
    ([{"name": "x", "metric": "sales_typo"}],
     "pool 'x': no tracker row has metric 'sales_typo' (did you mean 'sales'?)"),
    ([{"name": "x", "metric": "zzz"}], "pool 'x': no tracker row has metric 'zzz'"),
    ([{"name": "x", "filters": {"channel": ["tvv", "tv"]}, "metric": "awareness"}],
     None),  # awareness has a tv row: tvv is ignored as long as some row matches
    ([{"name": "x", "filters": {"channel": ["tvv"]}}],
     "pool 'x': channel 'tvv' not found among rows of metric 'sales' (present: radio, tv)"),
    ([{"name": "x", "filters": {"channel": ["tv"], "market": ["m1", "zz"]}}], None),
    ([{"name": "x", "metric": "awareness", "filters": {"channel": ["radio"]}}],
     "pool 'x': channel 'radio' not found among rows of metric 'awareness' (present: tv)"),
])
def test_a_pool_without_rows_is_an_error_that_says_why(tmp_path: Path, pools: list[dict[str, Any]],
                                                        words: str | None) -> None:
    path = _project(tmp_path, pools=pools)
    if words is None:
        assert compile_config(path).pool("x").rows
        return
    with pytest.raises(ConfigError) as err:
        compile_config(path)
    assert str(err.value) == "config.yaml: pool 'x' matches no tracker row"
    (problem,) = err.value.problems
    assert (problem.file, problem.message) == ("config.yaml", words)
    assert problem.accepted == "filters naming values present in the tracker"


def test_filters_that_match_no_row_together(tmp_path: Path) -> None:
    """Each filter value exists, but no row has both: the message says the filters match no row."""
    with pytest.raises(ConfigError) as err:
        compile_config(_project(tmp_path, pools=[{"name": "x", "filters": {"channel": ["radio"], "market": ["m9"]}}]))
    assert err.value.problems[0].message == "pool 'x': its filters match no row"


def test_split_names_that_clash_are_an_error(tmp_path: Path) -> None:
    rows = [row("a", 2.0, channel="TV ads", market="x"), row("b", 2.0, channel="tv-ads", market="y")]
    with pytest.raises(ConfigError) as err:
        compile_config(_project(tmp_path, rows, analysis={"split_by": ["channel"]}))
    assert str(err.value) == ("config.yaml: two pools would share a name (sales__channel-tv-ads); values that differ "
                              "only in case or punctuation cannot be split apart: rename them in the tracker or use "
                              "`pools`")


EFFECT = {"lower": 0, "upper": 10, "unit": "relative_percent", "level": 0.95}
SPREAD = {"value": 3, "unit": "relative_percent"}


@pytest.mark.parametrize("top, pool, expected", [
    ({"expected_effect": EFFECT}, {"mu_mean": 0.2}, {"expected_effect": None, "mu_mean": 0.2, "mu_sd": None}),
    ({"expected_effect": EFFECT}, {"mu_sd": 0.9}, {"expected_effect": None, "mu_mean": None, "mu_sd": 0.9}),
    ({"mu_mean": 0.3, "mu_sd": 0.8}, {"expected_effect": EFFECT},
     {"expected_effect": EFFECT, "mu_mean": None, "mu_sd": None}),
    ({"mu_mean": 0.3}, {"expected_effect": EFFECT}, {"expected_effect": EFFECT, "mu_mean": None, "mu_sd": None}),
    ({"mu_sd": 0.8}, {"expected_effect": EFFECT}, {"expected_effect": EFFECT, "mu_mean": None, "mu_sd": None}),
    ({"typical_spread": SPREAD}, {"tau_scale": 0.3}, {"typical_spread": None, "tau_scale": 0.3}),
    ({"tau_scale": 0.3}, {"typical_spread": SPREAD}, {"typical_spread": SPREAD, "tau_scale": None}),
    ({"tau_scale": 0.3, "mu_mean": 0.1}, {"mu_sd": 0.4},
     {"tau_scale": 0.3, "mu_mean": 0.1, "mu_sd": 0.4, "expected_effect": None, "typical_spread": None}),
])
def test_a_pool_s_own_config_never_mixes_the_two_forms_of_a_prior(tmp_path: Path, top: dict[str, Any],
                                                                  pool: dict[str, Any],
                                                                  expected: dict[str, Any]) -> None:
    """pool_specs' configs, key by key: a business form replaces the model-scale keys it stands for
    and the reverse; nothing else of the top level is dropped; a pool's config lists no pools."""
    config = load_config(_project(tmp_path, pools=[{"name": "p", "priors": pool}], priors={**top, "justification": "j"}))
    _, (spec,) = pool_specs(config, pd.DataFrame({"metric": ["sales"], "channel": ["tv"]}))
    priors = spec.config.priors.model_dump()
    assert {k: priors[k] for k in expected} == expected
    assert priors["justification"] == "j" and spec.config.pools is None


@pytest.mark.parametrize("pools, words", [
    ([{"name": "x", "filters": {"channel": ["tvv", "rad"]}}],
     "pool 'x': channel 'tvv', 'rad' not found among rows of metric 'sales' (present: radio, tv)"),
    ([{"name": "x", "metric": "awareness", "filters": {"market": ["m9"]}}],
     "pool 'x': market 'm9' not found among rows of metric 'awareness' (present: m1, m2)"),
    ([{"name": "x", "metric": "zzz", "filters": {"channel": ["tv"]}}],
     "pool 'x': no tracker row has metric 'zzz'; channel 'tv' not found among rows of metric 'zzz' (present: none)"),
])
def test_every_reason_a_pool_has_no_rows_is_given(tmp_path: Path, pools: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        compile_config(_project(tmp_path, pools=pools))
    assert err.value.problems[0].message == words


def test_pool_specs_names_the_config_file_it_is_given_or_config(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path, pools=[{"name": "x", "metric": "zzz"}]))
    tracker = pd.DataFrame({"metric": ["sales"], "channel": ["tv"]})
    with pytest.raises(ConfigError) as err:
        pool_specs(config, tracker)
    assert str(err.value) == "config: pool 'x' matches no tracker row"
    assert err.value.problems[0].file == "config"
    with pytest.raises(ConfigError) as err:
        pool_specs(config, tracker, config_file="mine.yaml")
    assert str(err.value) == "mine.yaml: pool 'x' matches no tracker row"


def test_every_clashing_split_name_is_listed(tmp_path: Path) -> None:
    rows = [row("a", 2.0, channel="TV ads"), row("b", 2.0, channel="tv-ads"),
            row("c", 2.0, channel="Radio!"), row("d", 2.0, channel="radio")]
    with pytest.raises(ConfigError) as err:
        compile_config(_project(tmp_path, rows, analysis={"split_by": ["channel"]}))
    assert str(err.value).startswith("config.yaml: two pools would share a name (sales__channel-radio, "
                                     "sales__channel-tv-ads); values that differ")
