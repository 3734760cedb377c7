"""Every reported table, end to end, against numbers worked out from the config's and tracker's literals.

config text → compile → execute → the CSVs, for one dataset per scale (tests/value_cases.py: the
configs, the trackers, every row's model-scale estimate and SE and the priors by hand, and the
brute-force grid reference). Two executions per dataset:

* ``exact``: the run with the MCMC check left out (``sample_fits`` returns no fit), so the whole
  path from config to CSV runs in a second or two (and under ``make mutation``);
* ``sampled`` (slow): the real thing, a small sampler (2 chains × 300 draws), report=False; its
  diagnostics.csv and posterior.nc are checked too.

A bug anywhere upstream of the engine (units, business priors, the plan, the fit data) or in it
(the exact posterior, the table builders, the writers) moves a number here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from marketbayesmeta.api import compile_config, execute_plan
from value_cases import (
    CASES,
    TABLES,
    check,
    check_diagnostics,
    flag,
    read_csv,
    reference,
)

SMALL_SAMPLER = "{chains: 2, draws: 300, tune: 300, random_seed: 11}"
SMALL_DIAGNOSTICS = "{min_ess_bulk: 100, min_ess_tail: 100, on_failure: warn}"
MODES = ("exact", pytest.param("sampled", marks=pytest.mark.slow))


def execute_case(directory: Path, case: str, mode: str) -> Path:
    """Compile and execute ``case`` into ``directory`` (``exact``: without the MCMC check)."""
    plan = compile_config(CASES[case].write(directory, SMALL_SAMPLER, SMALL_DIAGNOSTICS))
    with pytest.MonkeyPatch.context() as mp:
        if mode == "exact":
            mp.setattr("marketbayesmeta.runtime.pool_run.sample_fits", lambda *a, **k: [])
        result = execute_plan(plan, quiet=True, report=False, fit_jobs=1)
    assert result.status != "failed", result.reasons
    return result.run_dir


class Runs:
    """Sampled runs, made once per case for the module."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.runs = tmp, {}

    def run(self, case: str) -> Path:
        if case not in self.runs:
            self.runs[case] = execute_case(self.tmp / case, case, "sampled")
        return self.runs[case]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("values"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_table_of_an_exact_run(tmp_path: Path, case: str) -> None:
    """Each test makes its own run (so that ``make mutation`` maps the code a run calls to this test);
    every table is checked and the failing ones listed together."""
    run = execute_case(tmp_path, case, "exact")
    failures = {}
    for table in TABLES:
        try:
            check(table, run, reference(case), sampled=False)
        except AssertionError as exc:
            failures[table] = exc
    assert not failures, "tables off the reference:\n" + "\n".join(f"{t}: {e}" for t, e in failures.items())


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("table", TABLES)
def test_table_values_of_a_sampled_run(runs: Runs, case: str, table: str) -> None:
    check(table, runs.run(case), reference(case), sampled=True)


@pytest.mark.parametrize("mode", MODES)
def test_the_cases_exercise_every_verdict(tmp_path: Path, runs: Runs, mode: str) -> None:
    """The datasets are built so that the checks above see both sides of each verdict: a flagged
    study in the ppc, material and immaterial prior dependence, a scenario row, an outlying study."""
    def run_of(case: str) -> Path:
        return execute_case(tmp_path / case, case, mode) if mode == "exact" else runs.run(case)

    ref = reference("log")
    run = run_of("log")
    assert check("ppc", run, ref, sampled=False) == ["g5"]
    assert check("prior_sensitivity", run, ref, sampled=mode == "sampled") == ["regularising", "weak"]
    assert check("uncertainty_sensitivity", run, ref, sampled=mode == "sampled") == []
    influence = {r["left_out"]: flag(r["material"]) for r in read_csv(run / "influence.csv")}
    assert influence["g5"] and not influence["g1"]
    status = check("headline", run, ref, sampled=False)
    codes = {r["code"] for r in status["reasons"]}
    assert {"ppc_flags", "material_prior_dependence", "scenario_uncertainty", "plausibility_review"} <= codes
    assert status["reportable"] is False
    pp = run_of("pp")
    assert not (pp / "uncertainty_sensitivity.csv").exists()  # no scenario row: not applicable


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_sampled_run_checks_the_main_fit_against_the_same_numbers(runs: Runs, case: str) -> None:
    """diagnostics.csv and posterior.nc of a sampled run (value_cases.check_diagnostics)."""
    check_diagnostics(runs.run(case), reference(case),
                      {"max_rhat": 1.01, "min_ess_bulk": 100, "min_ess_tail": 100, "max_divergences": 0,
                       "max_exact_z": 4.0, "min_bfmi": 0.3})
