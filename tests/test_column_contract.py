"""The output catalogue (marketbayesmeta/outputs.py) as a contract on real runs.

The shipped example (examples/config.yaml) and the example portfolio (examples/portfolio.yaml, with a
small sampler and two study names that a spreadsheet would read as formulas) are run with
report=False. In every run directory and pool directory:

* every CSV has exactly the catalogue's columns, in order;
* every catalogue file whose ``when`` condition holds for that pool is there, and a file whose
  condition does not hold is not (the conditions are read from the plan and the pool's status);
* text columns are neutralised against spreadsheet formulas, and every other column holds numbers,
  true/false or nothing (a text column missing from ``text_columns`` would fail here);
* nothing is written that the catalogue does not list, at the scope it lists it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import EXAMPLES
from marketbayesmeta import outputs
from marketbayesmeta.api import compile_config, execute_plan
from marketbayesmeta.plan import Plan, Pool, load_plan
from marketbayesmeta.runtime.csvio import FORMULA_PREFIXES

pytestmark = pytest.mark.slow

# Catalogue files a run with report=False leaves out (they are written with the reports).
REPORTS = {"analysis_report.md", "report.ipynb", "report.html", "portfolio_report.html"}
# Files the catalogue lists before the feature that writes them has landed: each must be absent, so
# that when it lands this test fails and the entry goes.
NOT_YET_WRITTEN: dict[str, str] = {}  # catalogue entries whose writer has not landed (file: why)
FORMULA_NAMES = ('=HYPERLINK("http://example.invalid","click")', "-2 % dip, north", "@SUM(A1:A9)")


class PoolView:
    """What the ``when`` conditions of the catalogue read: the pool in the plan and its run status."""

    def __init__(self, plan: Plan, pool: Pool, directory: Path) -> None:
        self.plan, self.pool, self.directory = plan, pool, directory
        self.status = json.loads((directory / "run_status.json").read_text(encoding="utf-8"))

    @property
    def blocked(self) -> bool:
        return self.status["status"] == "blocked"

    @property
    def pooled(self) -> int:
        return sum(r.decision != "excluded" for r in self.pool.rows)

    @property
    def main_sampled(self) -> bool:
        path = self.directory / "diagnostics.csv"
        return path.exists() and any(r["fit"] == "main" and r["check"] == "all" and r["draws"]
                                     for r in _rows(path))


# The catalogue's `when` texts, each as a condition on a pool. A new text fails the test until it is
# given its condition here.
WHEN: dict[str, Callable[[PoolView], bool]] = {
    outputs.ALWAYS: lambda v: True,
    outputs.AFTER_POOLING: lambda v: not v.blocked and v.status["headline"] is not None,
    "in each pool directory of a portfolio run": lambda v: v.plan.layout == "portfolio",
    "when the pool was not blocked (the MCMC check ran)": lambda v: not v.blocked,
    "when sensitivity.prior is true and the pool was not blocked":
        lambda v: v.pool.sensitivity.prior and not v.blocked,
    # a blocked pool stops after effect_preparation.csv and readiness.csv (runtime/pool_run.py)
    "when sensitivity.uncertainty is true and pooled rows use scenario uncertainty":
        lambda v: v.pool.sensitivity.uncertainty and any(r.decision == "scenario" for r in v.pool.rows)
        and not v.blocked,
    "when sensitivity.leave_one_out is true and at least 3 studies are pooled":
        lambda v: v.pool.sensitivity.leave_one_out and v.pooled >= 3 and not v.blocked,
    "when the pool's scope holds triangulate-only rows of its metric and the pool was not blocked":
        lambda v: any(r.reason == "triangulate_only" and r.metric == v.pool.metric for r in v.pool.rows)
        and not v.blocked,
    "when analysis.moderators is set and the pool was not blocked":
        lambda v: bool(getattr(v.pool, "moderators", None)) and not v.blocked,
    "when the main fit was sampled": lambda v: v.main_sampled,
}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _is_value(cell: str) -> bool:
    if cell in ("", "true", "false"):
        return True
    try:
        float(cell)
    except ValueError:
        return False
    return True


def check_csv(path: Path) -> list[dict[str, str]]:
    spec = outputs.output(path.name)
    with path.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header) == spec.columns, path
    rows = _rows(path)
    for row in rows:
        for column, cell in row.items():
            if column in spec.text_columns:
                assert not cell.startswith(FORMULA_PREFIXES), (path, column, cell)
            else:
                assert _is_value(cell), (path, column, cell)
    return rows


def check_pool_directory(view: PoolView, expected_extra: frozenset[str] = frozenset()) -> set[str]:
    """The pool-scope files of one pool directory; returns the names present."""
    present = {p.name for p in view.directory.iterdir()}
    pool_files = {f.name: f for f in outputs.CATALOGUE if f.scope == "pool"}
    for name, spec in pool_files.items():
        assert spec.when in WHEN, f"catalogue condition with no test condition: {spec.when!r}"
        if name in REPORTS:
            assert name not in present, name
        elif name in NOT_YET_WRITTEN:
            assert name not in present, f"{name} is written now: drop it from NOT_YET_WRITTEN"
        elif name == "pool.json" and view.plan.layout == "single":
            assert name not in present  # a single-pool plan: plan.json at the root holds it
        else:
            assert (name in present) == WHEN[spec.when](view), (view.pool.name, name, spec.when)
    unlisted = present - set(pool_files) - expected_extra
    assert not unlisted, (view.directory, unlisted)
    for name in sorted(present):
        if name.endswith(".csv"):
            check_csv(view.directory / name)
    return present


def _run(root: Path, config: Path, **kwargs: object) -> Path:
    result = execute_plan(compile_config(config), root / "run", quiet=True, report=False, **kwargs)
    assert result.exit_code in (0, 3), result.reasons
    return result.run_dir


def test_example_matches_the_catalogue(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    run = _run(tmp_path, tmp_path / "examples" / "config.yaml")
    plan = load_plan(run / "plan.json")
    assert plan.layout == "single"
    run_files = {f.name for f in outputs.CATALOGUE if f.scope == "run"}
    present = check_pool_directory(PoolView(plan, plan.pool(), run), frozenset(run_files))
    assert run_files <= present
    assert not any(f.scope == "portfolio" and f.name in present for f in outputs.CATALOGUE)
    # the example's conditions, spelled out: pooled, sampled, both sensitivity grids, no leave-one-out
    assert {"pooled_summary.csv", "posterior.nc", "prior_sensitivity.csv", "uncertainty_sensitivity.csv",
            "cumulative.csv"} <= present
    assert "influence.csv" not in present  # sensitivity.leave_one_out: false in the example
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert {f["path"] for f in manifest["files"]} == present - {"manifest.json"}


def test_portfolio_matches_the_catalogue(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    config = tmp_path / "examples" / "portfolio.yaml"
    text = config.read_text(encoding="utf-8")
    old = "sampler: {chains: 4, draws: 1000, tune: 1000, random_seed: 20260603}"
    assert old in text
    config.write_text(text.replace(old, "sampler: {chains: 2, draws: 200, tune: 200, random_seed: 5}\n"
                                        "diagnostics: {min_ess_bulk: 50, min_ess_tail: 50, on_failure: warn}"),
                      encoding="utf-8")
    tracker = tmp_path / "examples" / "portfolio_tracker.csv"
    lines = tracker.read_text(encoding="utf-8").splitlines(keepends=True)
    for i, name in zip((1, 2, 7), FORMULA_NAMES, strict=True):  # pooled rows of two pools
        fields = next(csv.reader([lines[i]]))
        fields[1] = name
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(fields)
        lines[i] = buf.getvalue()
    # one geo test of a channel of its own: a pool of one study, blocked by readiness
    lines.append("geo-radio-01,Radio geo test,geo_test,sales,relative_percent,1.2,0.9,,,,,yes,acme,north,radio,"
                 "all shoppers,2025-01-06,2025-02-17,matched-market holdout,Geo team,\n")
    tracker.write_text("".join(lines), encoding="utf-8")

    run = _run(tmp_path, config, fit_jobs=1)
    plan = load_plan(run / "plan.json")
    assert plan.layout == "portfolio" and len(plan.pools) > 1
    top = {p.name for p in run.iterdir()}
    expected_top = {f.name for f in outputs.CATALOGUE if f.scope in ("run", "portfolio")} - REPORTS
    # the root's run_status.json sums the pools up (worst status, `pools`); the catalogue lists
    # run_status.json once, at pool scope
    assert top == expected_top | {"pools", "run_status.json"}
    assert [p["name"] for p in json.loads((run / "run_status.json").read_text())["pools"]] == [
        p.name for p in plan.pools]
    assert {p.name for p in (run / "pools").iterdir()} == {p.name for p in plan.pools}
    statuses = set()
    for pool in plan.pools:
        view = PoolView(plan, pool, run / "pools" / pool.name)
        statuses.add(view.status["status"])
        check_pool_directory(view)
    assert "blocked" in statuses and statuses - {"blocked"}  # both sides of the pooling conditions
    rows = check_csv(run / "portfolio.csv")
    assert [r["pool"] for r in rows] == [p.name for p in plan.pools]
    # the formula-like names are written neutralised (with a leading apostrophe), wherever they appear
    seen = set()
    for pool in plan.pools:
        for name in ("effect_preparation.csv", "study_effects.csv", "cumulative.csv", "influence.csv"):
            path = run / "pools" / pool.name / name
            if path.exists():
                seen |= {r["study_name"] for r in _rows(path)}
    assert {"'" + n for n in FORMULA_NAMES} <= seen
    assert not seen & set(FORMULA_NAMES)
