"""One dataset per scale end to end through the command line, with the default sampler.

``python -m marketbayesmeta run CONFIG`` on the cases of tests/value_cases.py (config and tracker
text; every model-scale number and the brute-force grid reference worked out from their literals in
the test). The run must pass its MCMC check (4 chains × 1,000 draws, the default thresholds), every
reported table must match the reference, and the draws in posterior.nc must agree with it too: the
posterior sds of mu and tau, and every theta_i's sd and quantiles, within 4 Monte Carlo standard
errors (asserted, not logged). A bug upstream of both engines (units, priors, the plan, the fit
data) moves the reported numbers away from the reference; a bug in the sampled model or in the
derived draws (theta's conditional sd) moves posterior.nc away from it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stat_support import Z_BOUND, log, mcse_quantile, mcse_sd

from value_cases import CASES, TABLES, check, flag, read_csv, reference

pytestmark = pytest.mark.statistical

SECTION = "end to end through the CLI (default sampler)"
SEEDS = {"log": 20260603, "pp": 4242}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, case in CASES.items():
        config = case.write(tmp_path_factory.mktemp(name), f"{{random_seed: {SEEDS[name]}}}")
        proc = subprocess.run([sys.executable, "-m", "marketbayesmeta", "run", str(config), "--quiet",
                               "--fit-jobs", "1"], capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
        out[name] = config.parent / "out"
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_run_passes_its_mcmc_check(cli_runs: dict[str, Path], case: str) -> None:
    run = cli_runs[case]
    rows = read_csv(run / "diagnostics.csv")
    assert {r["fit"] for r in rows} == {"main"}
    failing = [(r["parameter"], r["check"], r["value"]) for r in rows if not flag(r["pass"])]
    assert not failing, failing
    draws = {int(r["draws"]) for r in rows}
    log(SECTION, f"{case}: MCMC check passed at {sorted(draws)} draws per chain; max |z| "
                 f"{max(abs(float(r['value'])) for r in rows if r['check'].startswith('exact_z')):.2f}")
    status = check("headline", run, reference(case), sampled=True)
    assert not {r["code"] for r in status["reasons"]} & {"diagnostics_failed", "diagnostics_warning",
                                                          "sampling_failed"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_run_reports_the_reference_numbers(cli_runs: dict[str, Path], case: str) -> None:
    ref = reference(case)
    for table in TABLES:
        check(table, cli_runs[case], ref, sampled=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_posterior_draws_match_the_reference(cli_runs: dict[str, Path], case: str) -> None:
    """sd(mu), sd(tau) and every theta_i's sd, median and interval ends from posterior.nc, against
    the reference (theta's quantiles: the reported ones, which match the grid's CDF)."""
    import arviz as az

    run, c = cli_runs[case], CASES[case]
    ref = reference(case)
    g = ref.grid
    idata = az.from_netcdf(run / "posterior.nc")
    post = idata.posterior
    z: dict[str, float] = {}
    for p, values in (("mu", g.MU), ("tau", g.TAU)):
        x = post[p].values
        z[f"sd({p})"] = (float(x.std(ddof=1)) - g.mean_sd(values)[1]) / mcse_sd(x)
    studies = read_csv(run / "study_effects.csv")
    assert list(post["study"].values) == [r["study_id"] for r in studies]
    a = (1 - c.interval) / 2
    for i, row in enumerate(studies):
        x = post["theta"].values[..., i]
        z[f"sd(theta[{row['study_id']}])"] = (float(x.std(ddof=1)) - float(row["sd"])) / mcse_sd(x)
        for key, q in (("lower", a), ("median", 0.5), ("upper", 1 - a)):
            mc = float(np.quantile(x.reshape(-1), q))
            z[f"theta[{row['study_id']}].{key}"] = (mc - float(row[key])) / mcse_quantile(x, q)
    worst = max(z, key=lambda k: abs(z[k]))
    log(SECTION, f"{case}: {len(z)} z-scores of sds and theta quantiles, max |z| {abs(z[worst]):.2f} ({worst})")
    bad = {k: round(v, 2) for k, v in z.items() if not (np.isfinite(v) and abs(v) <= Z_BOUND)}
    assert not bad, f"{case}: posterior draws disagree with the reference beyond {Z_BOUND} MCSE: {bad}"
