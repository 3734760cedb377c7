"""Meta-regression through config -> plan -> moderators.csv (the engine itself: test_exact_regression.py;
the design matrix: test_moderators.py)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from helpers import EXAMPLES, row, write_project
from marketbayesmeta.api import compile_config, execute_plan
from marketbayesmeta.audit import diff_plans
from marketbayesmeta.errors import ConfigError
from marketbayesmeta.plan import write_plan
from marketbayesmeta.runtime.exact import exact_posterior
from marketbayesmeta.runtime.exact_regression import exact_regression
from marketbayesmeta.runtime.moderator_tables import moderator_rows
from marketbayesmeta.runtime.numbers import PoolData


def _rows() -> list[dict[str, Any]]:
    out = []
    for i, (channel, est) in enumerate([("tv", 3.0), ("tv", 3.4), ("tv", 2.6), ("search", 5.1), ("search", 4.4),
                                        ("search", 5.6), ("radio", 1.1), ("radio", 1.9)]):
        out.append(row(f"s{i}", est, se=0.8 + 0.1 * i, channel=channel, market=f"m{i}",
                       window_start="2025-01-06", window_end=f"2025-0{2 + i % 7}-0{1 + i % 3}"))
    return out


def _plan(tmp: Path, **analysis: Any) -> Any:
    return compile_config(write_project(tmp, _rows(), analysis={"moderators": ["channel"], **analysis},
                                        sensitivity={"prior": True, "uncertainty": False}))


def test_the_plan_records_the_design_and_the_priors(tmp_path: Path) -> None:
    pool = _plan(tmp_path, reference_levels={"channel": "tv"}).pool()
    m = pool.moderators
    assert m.design.term_names == ["intercept", "channel[radio]", "channel[search]"]
    assert m.design.reference_levels == {"channel": "tv"}
    main = pool.fit("main").priors
    assert m.beta_mean == [main.mu_mean, 0.0, 0.0]
    assert m.beta_sd == [main.mu_sd, main.mu_sd, main.mu_sd]  # beta_sd defaults to mu's prior sd
    assert m.beta_sd_setting.provenance == "default"
    assert "moderators" in [f.name for f in pool.fits]
    custom = compile_config(write_project(tmp_path / "b", _rows(), analysis={"moderators": ["channel"]},
                                          priors={"beta_sd": 0.05})).pool().moderators
    assert custom.beta_sd[1:] == [0.05, 0.05] and custom.beta_sd_setting.provenance == "config"


@pytest.mark.parametrize("analysis, fragment", [
    ({"moderators": ["chanel"]}, "did you mean 'channel'"),
    ({"moderators": ["channel"], "reference_levels": {"channel": "cinema"}}, "cinema"),
])
def test_moderator_errors_name_the_problem(tmp_path: Path, analysis: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        compile_config(write_project(tmp_path, _rows(), analysis=analysis))
    assert fragment in err.value.render()


def test_moderators_csv_rows_against_the_engine_and_identities(tmp_path: Path) -> None:
    pool = _plan(tmp_path, reference_levels={"channel": "tv"}).pool()
    data = PoolData.of(pool)
    p = pool.fit("main").priors
    without = exact_posterior(data.y, data.se, mu_mean=p.mu_mean, mu_sd=p.mu_sd, tau_scale=p.tau_scale,
                              tau_family=p.tau_family, interval=pool.reporting.interval)
    rows, material = moderator_rows(pool, data.y, data.se, without)
    by = {(r["row_type"], r["term"]): r for r in rows}
    m = pool.moderators
    engine = exact_regression(data.y, data.se, m.design.array(), beta_mean=m.beta_mean, beta_sd=m.beta_sd,
                              tau_scale=p.tau_scale, tau_family=p.tau_family, terms=m.design.term_names)
    for j, term in enumerate(m.design.term_names):
        assert by[("coefficient", term)]["mean"] == pytest.approx(engine.beta[j].mean, rel=1e-12)
    # a subgroup mean minus the reference subgroup's is that level's coefficient (linearity)
    ref = by[("subgroup_mean", "channel=tv")]["mean"]
    for level in ("radio", "search"):
        diff = by[("subgroup_mean", f"channel={level}")]["mean"] - ref
        assert diff == pytest.approx(by[("coefficient", f"channel[{level}]")]["mean"], rel=1e-9, abs=1e-12)
    assert by[("subgroup_mean", "channel=tv")]["n_rows"] == 3
    # heterogeneity explained: 1 - E[tau² | moderators] / E[tau² | none], from the quadrature rules
    e_with = float(engine.tau_weights @ engine.tau_nodes**2)
    e_without = float(without.tau_weights @ without.tau_nodes**2)
    explained = by[("heterogeneity", "heterogeneity_explained")]["mean"]
    assert explained == pytest.approx(max(0.0, 1 - e_with / e_without), rel=1e-6)
    assert 0.0 <= explained <= 1.0
    # prior sensitivity: the weak spec doubles mu's sd, so the coefficients' sds double too
    weak = pool.fit("prior:weak").priors
    doubled = exact_regression(data.y, data.se, m.design.array(), beta_mean=[weak.mu_mean, 0, 0],
                               beta_sd=[weak.mu_sd, 2 * m.beta_sd[1], 2 * m.beta_sd[2]], tau_scale=weak.tau_scale,
                               tau_family=weak.tau_family, terms=m.design.term_names)
    weak_rows = [r for r in rows if r["row_type"] == "prior_sensitivity" and r["note"].startswith("prior spec weak")]
    assert [r["mean"] for r in weak_rows] == pytest.approx([doubled.beta[1].mean, doubled.beta[2].mean], rel=1e-10)
    assert isinstance(material, list)


def test_diff_reports_a_changed_moderator(tmp_path: Path) -> None:
    a = write_plan(_plan(tmp_path / "a", reference_levels={"channel": "tv"}), tmp_path / "a.json")
    b = write_plan(_plan(tmp_path / "b", reference_levels={"channel": "search"}), tmp_path / "b.json")
    changes = diff_plans(a, b).changes
    (change,) = [c for c in changes if c.group == "moderators" and c.field == "reference_level.channel"]
    assert (change.item, change.a, change.b) == ("meta-regression", "tv", "search")


@pytest.mark.slow
def test_the_example_meta_regression_runs_and_checks_the_regression_with_mcmc(tmp_path: Path) -> None:
    for name in ("moderators.yaml", "portfolio_tracker.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    cfg = yaml.safe_load((tmp_path / "moderators.yaml").read_text())
    cfg["sampler"] = {"chains": 4, "draws": 1000, "tune": 1000, "random_seed": 11}  # the default sampler
    cfg["outputs"] = {"directory": "out"}
    (tmp_path / "moderators.yaml").write_text(yaml.safe_dump(cfg))
    result = execute_plan(compile_config(tmp_path / "moderators.yaml"), quiet=True, report=False)
    with (result.run_dir / "diagnostics.csv").open() as f:
        diag = [r for r in csv.DictReader(f) if r["fit"] == "moderators"]
    assert {r["parameter"] for r in diag} >= {"beta[intercept]", "beta[channel[search]]", "tau"}
    assert all(r["pass"] == "true" for r in diag), [r for r in diag if r["pass"] != "true"]
    with (result.run_dir / "moderators.csv").open() as f:
        table = list(csv.DictReader(f))
    assert {r["row_type"] for r in table} == {"coefficient", "subgroup_mean", "heterogeneity", "prior_sensitivity"}
    assert np.isfinite(float(next(r["bayes_factor_01"] for r in table if r["term"] == "channel[search]")))
