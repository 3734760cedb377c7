"""benchmarks/portfolio_data.py: the synthetic portfolio tracker is what its docstring says — the
package's own tracker parser and compiler accept it, and the numbers it writes follow the stated
random-effects model (checked through the compiler's conversion back to the log scale, not through
the generator's own algebra)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from marketbayesmeta.api import compile_config, load_tracker
from marketbayesmeta.runtime.exact import exact_posterior

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from portfolio_data import make_portfolio  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return make_portfolio()


def test_shape(data):
    assert len(data.pools) == 100
    assert Counter(p.metric for p in data.pools) == {"sales": 50, "awareness": 50}
    assert len({p.name for p in data.pools}) == 100 and data.pools[0].name == "sales_tv_north"
    assert all(len(p.study_ids) == 8 for p in data.pools)
    ids = [r["study_id"] for r in data.rows]
    assert len(ids) == len(set(ids)) == 810
    assert len(data.mmm_rows) == 10 and {r["market"] for r in data.mmm_rows} == {"north"}
    assert {r["unit"] for r in data.rows} == {"relative_percent"}
    with_ci = [r for r in data.rows if r["ci_level"]]
    assert 0.2 < len(with_ci) / len(data.rows) < 0.45
    assert all(not r["standard_error"] for r in with_ci)
    assert all(float(r["ci_lower"]) < float(r["estimate"]) < float(r["ci_upper"]) for r in with_ci)


def test_same_seed_same_bytes(tmp_path, data):
    a = data.write_csv(tmp_path / "a.csv").read_bytes()
    b = make_portfolio().write_csv(tmp_path / "b.csv").read_bytes()
    c = make_portfolio(seed=1).write_csv(tmp_path / "c.csv").read_bytes()
    assert a == b != c
    assert a.count(b"\n") == 811 and b"\r" not in a


def _compile(tmp_path: Path, data, metric: str, evidence_type: str):
    tracker = data.write_csv(tmp_path / "tracker.csv")
    assert len(load_tracker(tracker)) == len(data.rows)  # the tracker parser accepts every row
    config = {"version": 1, "project": {"name": f"portfolio_{metric}"}, "data": {"tracker": "tracker.csv"},
              "analysis": {"metric": metric, "scale": "log_relative", "evidence_types": [evidence_type]},
              "outputs": {"directory": "out"}}
    path = tmp_path / f"{metric}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return compile_config(path)


def test_compiled_rows_follow_the_generating_model(tmp_path, data):
    """Through the compiler (CI -> SE, percent -> log): each included study's standardised error
    against its true effect is N(0, 1) and its SE is the true SE; pool means are recovered."""
    z, se_ratio, covered = [], [], 0
    for metric, evidence_type in (("sales", "geo_test"), ("awareness", "brand_lift")):
        plan = _compile(tmp_path, data, metric, evidence_type)
        rows = {r.study_id: r for r in plan.pool().rows}
        if metric == "sales":
            assert {rows[r["study_id"]].reason for r in data.mmm_rows} == {"triangulate_only"}
        assert not plan.pool().duplicates  # every study has its own window
        for pool in (p for p in data.pools if p.metric == metric):
            got = [rows[i] for i in pool.study_ids]
            assert {r.decision for r in got} == {"included"}
            y = np.array([r.model_estimate for r in got])
            s = np.array([r.model_se for r in got])
            z.extend((y - np.array(pool.theta)) / s)
            se_ratio.extend(s / np.array(pool.se))
            post = exact_posterior(y, s, mu_mean=0.0, mu_sd=1.0, tau_scale=0.5)
            covered += post.mu.lower <= pool.mu <= post.mu.upper
    z = np.array(z)
    assert len(z) == 800
    assert abs(z.mean()) < 0.15  # 4 standard errors of a mean of 800 N(0, 1)
    assert 0.9 < z.std() < 1.1  # about 4 standard errors of the SD
    assert np.allclose(se_ratio, 1.0, atol=0.01)  # only the 2-decimal rounding of the cells
    # 95 % intervals for the true pool mean: 100 pools, at least 88 covered (binomial, p = 0.95:
    # P(X < 88) < 0.1 %); wider-than-nominal intervals (a vague tau prior) may cover all 100
    assert covered >= 88, covered
