"""Runtime: run directory contents, statuses and exit codes, determinism, integrity and staleness.

These sample with small settings (marked slow; they run in ``make check``)."""

from __future__ import annotations

import csv
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import four_rows, row, write_project
from marketbayesmeta.api import compile_config, execute_plan
from marketbayesmeta.audit.verify import verify_run
from marketbayesmeta.cli import _dispatch, build_parser
from marketbayesmeta.errors import PlanError
from marketbayesmeta.outputs import REPORT_FILES
from marketbayesmeta.plan import write_plan
from value_cases import (
    HALF_NORMAL_MEDIAN,
    TABLES,
    Z90,
    Z95,
    Case,
    Reference,
    Row,
    check,
    check_diagnostics,
    default_grid,
)

pytestmark = pytest.mark.slow
pytest_plugins = ("example_run",)  # the example, run once per session

SPEC_FILES = {"plan.json", "run_status.json", "analysis_report.md", "effect_preparation.csv", "readiness.csv",
              "pooled_summary.csv", "study_effects.csv", "future_true_effect_summary.csv", "diagnostics.csv",
              "prior_diagnostics.csv", "ppc.csv", "prior_sensitivity.csv", "uncertainty_sensitivity.csv",
              "posterior.nc", "report.ipynb", "report.html", "manifest.json"}


def _cli(*argv: str) -> int:
    return _dispatch(list(argv), build_parser())


# expected_effect −10 % to +20 % with 95 % (mu's 95 % interval is [log 0.9, log 1.2]); typical_spread 3 %
EXAMPLE_PRIORS = {"mu_mean": (math.log(0.9) + math.log(1.2)) / 2, "mu_sd": (math.log(1.2) - math.log(0.9)) / (2 * Z95),
                  "tau_scale": math.log(1.03) / HALF_NORMAL_MEDIAN, "tau_family": "half_normal"}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# The shipped example, worked out by hand from examples/config.yaml and examples/example_tracker.csv:
# three rows enter the pool (two with source uncertainty, one scenario row), the others are excluded.
EXAMPLE = Case(
    name="example", scale="log_relative", interval=0.95,
    rows=(
        # 4.2 % with 90 % CI 1.1 %–7.4 %
        Row(2, "geo-2025-01", "Spring TV geo holdout (North)", "included", "included", "log1p_percent",
            "confidence_interval", math.log(1.042), (math.log(1.074) - math.log(1.011)) / (2 * Z90), "2025-04-27",
            "mixed_designs;non_overlapping_windows"),
        # ratio 1.031 ± 0.012 (its fixed-effect share 1/s² over Σ 1/s² is 0.69: dominant)
        Row(3, "geo-2025-02", "Summer online video geo test", "included", "included", "log_ratio", "standard_error",
            math.log(1.031), 0.012 / 1.031, "2025-07-13", "dominant_weight;mixed_designs;non_overlapping_windows"),
        # fraction 0.025 without uncertainty: the medium scenario, 0.05
        Row(4, "geo-2025-03", "Autumn radio geo pilot", "scenario", "scenario", "log1p_fraction", "scenario",
            math.log(1.025), 0.05, "2025-10-12", "mixed_designs;non_overlapping_windows"),
        Row(5, "geo-2025-04", "Winter social geo test", "excluded", "not_analysis_ready", "identity",
            "standard_error", 0.048, 0.02),
        Row(6, "mmm-2025-q4", "MMM Q4 refresh", "excluded", "triangulate_only", "log1p_percent", "standard_error",
            math.log(1.065), 1.8 / 106.5),
        Row(7, "geo-2025-05", "Search geo test (pp of conversion)", "excluded", "incompatible_unit", "none", "none",
            None, None),
        Row(8, "bl-2025-01", "Brand lift wave 3", "excluded", "other_metric", "none", "none", None, None),
        Row(9, "geo-2025-06", "Search geo test iROAS", "excluded", "other_metric", "log_ratio", "standard_error",
            math.log(2.4), 0.6 / 2.4),
        Row(10, "geo-2024-07", "Holiday TV geo test 2024", "excluded", "not_analysis_ready", "log1p_percent",
            "standard_error", math.log(1.029), 1.4 / 102.9),
        Row(11, "geo-2025-01r", "Spring TV geo holdout (North) - vendor re-analysis", "excluded",
            "not_analysis_ready", "log1p_percent", "standard_error", math.log(1.036), 1.9 / 103.6),
    ),
    # expected_effect −10 % to +20 % with 95 %; typical_spread 3 % is tau's prior median
    priors=EXAMPLE_PRIORS,
    prior_specs=default_grid(EXAMPLE_PRIORS),
    reference_prior="default",
    scenario_se={"low": 0.02, "medium": 0.05, "high": 0.10},
    readiness={"pool": "geo_test/sales/log_relative", "evidence_types": "geo_test", "metric": "sales",
               "scale": "log_relative", "eligible": 3, "included": 2, "scenario": 1, "readiness": "directional",
               "why": "3 comparable rows enter the pool: enough for a directional read (>= 3) but fewer than 4 "
                      "for ready; 1 of them rely on scenario uncertainty",
               "min_rows_directional": 3, "min_rows_ready": 4, "blocking_duplicates": 0,
               # geo-2025-01 and its re-analysis geo-2025-01r share brand, market, channel and window
               "possible_duplicates": 1},
    cumulative_order=("geo-2025-01", "geo-2025-02", "geo-2025-03"),
    conversion_text="effect −10 % to +20 % (95 %); study-to-study spread 3 % typical",
)


@pytest.fixture(scope="module")
def example_ref() -> Reference:
    return Reference(EXAMPLE)


@pytest.mark.parametrize("table", [t for t in TABLES if t != "influence"])
def test_example_reports_the_numbers_worked_out_by_hand(example_run: Path, example_ref: Reference,
                                                         table: str) -> None:
    """Every table of the shipped example against the brute-force grid of the hand-worked numbers
    (leave-one-out is off in the example: no influence.csv)."""
    check(table, example_run, example_ref, sampled=True)
    assert not (example_run / "influence.csv").exists()


def test_example_status_and_reasons(example_run: Path, example_ref: Reference) -> None:
    status = json.loads((example_run / "run_status.json").read_text())
    assert (status["status"], status["exit_code"], status["reportable"]) == ("completed_with_warnings", 0, False)
    assert (status["readiness"], status["engine"], status["layout"]) == ("directional", "exact", "single")
    # geo-2025-01 and its re-analysis geo-2025-01r (not analysis-ready) look alike: a possible duplicate
    expected = {"readiness_directional", "scenario_uncertainty", "plausibility_review", "possible_duplicates"}
    if check("prior_sensitivity", example_run, example_ref, sampled=True):
        expected.add("material_prior_dependence")
    if check("uncertainty_sensitivity", example_run, example_ref, sampled=True):
        expected.add("material_uncertainty_dependence")
    if check("ppc", example_run, example_ref, sampled=True):
        expected.add("ppc_flags")
    if any(r["warning"] == "true" for r in _csv(example_run / "prior_diagnostics.csv")):
        expected.add("prior_diagnostics_warning")
    codes = [r["code"] for r in status["reasons"]]
    assert set(codes) == expected, codes
    # one review reason per plausibility check of the pool, each naming its code
    review = [r["message"] for r in status["reasons"] if r["code"] == "plausibility_review"]
    assert sorted(m.split("]")[0].lstrip("[") for m in review) == ["dominant_weight", "mixed_designs",
                                                                  "non_overlapping_windows"]
    # the plan run is the plan the config compiles to, and the run directory verifies
    assert status["plan_hash"] == compile_config(example_run.parent.parent / "examples" / "config.yaml").plan_hash
    assert SPEC_FILES <= {p.name for p in example_run.iterdir()}
    assert verify_run(example_run).ok


def test_example_diagnostics_cross_check_the_main_fit(example_run: Path, example_ref: Reference) -> None:
    """sampler.check is main: diagnostics.csv holds the main fit's checks, each pass flag its value
    against the example's thresholds, the exact side the grid's posterior, the MCMC side posterior.nc."""
    rows = check_diagnostics(example_run, example_ref, {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400,
                                                        "max_divergences": 0, "max_exact_z": 4.0, "min_bfmi": 0.3})
    assert all(r["pass"] == "true" for r in rows)  # the example's check passes


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.images = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value and value.strip().lower().startswith(("http:", "https:", "//")):
                self.external.append(value)
            if tag == "img" and name == "src" and value and value.startswith("data:image/png;base64,"):
                self.images += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_example_html_headline_matches_pooled_summary(example_run: Path) -> None:
    from marketbayesmeta.report import format_number

    parser = _Collect()
    parser.feed((example_run / "report.html").read_text(encoding="utf-8"))
    text = " ".join(parser.text)
    mu = {r["parameter"]: r for r in _csv(example_run / "pooled_summary.csv")}["mu"]
    for key in ("mean", "lower", "upper"):
        assert format_number(float(mu[key])) in text, key
    assert parser.images >= 5
    assert parser.external == []
    nb = json.loads((example_run / "report.ipynb").read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []


# -- small, fast runs ------------------------------------------------------------------------------

def _small(tmp: Path, rows: list[dict] | None = None, **overrides: object) -> Path:
    return write_project(tmp, rows if rows is not None else four_rows(), **overrides)


def test_the_exact_tables_are_written_and_drawn_from_before_the_check_samples(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report kernel is asked to draw the figures ahead (report/prerender.py) once the exact
    tables are written and before the MCMC check samples (the sensitivity tables, whose check
    columns need it, come after)."""
    from marketbayesmeta.report.notebook import ReportKernel
    from marketbayesmeta.runtime import fits

    seen: dict[str, list[str]] = {}
    real_warm_up, real_sample = ReportKernel.warm_up, fits.sample_chains

    def warm_up(self: ReportKernel, run_dir: Path | None = None) -> None:
        seen.setdefault("asked", []).append(str(run_dir))
        if run_dir is not None:
            seen["prerender"] = sorted(p.name for p in Path(run_dir).iterdir() if p.suffix in (".csv", ".nc"))
        real_warm_up(self, run_dir)

    def sample_chains(*args: object, **kwargs: object) -> object:
        seen.setdefault("sampling", sorted(seen.get("prerender", ["(not asked yet)"])))
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(ReportKernel, "warm_up", warm_up)
    monkeypatch.setattr(fits, "sample_chains", sample_chains)
    result = execute_plan(compile_config(_small(tmp_path)), tmp_path / "run", quiet=True, fit_jobs=1)
    assert result.exit_code == 0
    assert len(seen["asked"]) == 1 and seen["asked"][0] != "None"  # one warm-up: the run's (in its staging dir)
    assert seen["sampling"] == seen["prerender"]  # asked once, with the run, before the check sampled
    assert {"pooled_summary.csv", "study_effects.csv", "ppc.csv", "cumulative.csv", "heterogeneity.csv",
            "model_comparison.csv", "prior_diagnostics.csv"} <= set(seen["prerender"])
    assert not {"diagnostics.csv", "prior_sensitivity.csv", "posterior.nc"} & set(seen["prerender"])
    assert (tmp_path / "run" / "report.html").is_file()


def test_a_failure_writing_the_exact_tables_fails_the_run_after_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A table that cannot be written before the check fails the run as it would after it
    (artefact_failed, exit 4), with the check's own results recorded first."""
    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("forced table failure (test)")

    monkeypatch.setattr("marketbayesmeta.runtime.numbers.write_tables", broken)
    run = tmp_path / "run"
    result = execute_plan(compile_config(_small(tmp_path)), run, quiet=True, report=False, fit_jobs=1)
    assert result.status == "failed" and result.exit_code == 4
    status = json.loads((run / "run_status.json").read_text())
    assert [r["message"] for r in status["reasons"] if r["code"] == "artefact_failed"] == [
        "writing the results failed: ValueError: forced table failure (test)"]
    assert (run / "diagnostics.csv").is_file() and not (run / "posterior.nc").exists()


def test_same_plan_twice_gives_byte_identical_csvs_whatever_the_workers(tmp_path: Path) -> None:
    cfg = _small(tmp_path, sensitivity={"prior": True}, sampler={"draws": 200, "tune": 200})
    plan = compile_config(cfg)
    a = execute_plan(plan, tmp_path / "run_a", quiet=True, report=False, fit_jobs=1)
    b = execute_plan(plan, tmp_path / "run_b", quiet=True, report=False, fit_jobs=2)  # forked workers
    assert a.exit_code == b.exit_code
    names = sorted(p.name for p in a.run_dir.glob("*.csv"))
    assert "pooled_summary.csv" in names and "prior_sensitivity.csv" in names
    for name in names:
        assert (a.run_dir / name).read_bytes() == (b.run_dir / name).read_bytes(), name


def test_edited_plan_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _small(tmp_path)
    assert _cli("compile", str(cfg), "-o", str(tmp_path / "plan.json"), "-q") == 0
    path = tmp_path / "plan.json"
    path.write_text(path.read_text().replace('"draws": 300', '"draws": 301'))
    assert _cli("execute", str(path), "--out", str(tmp_path / "run")) == 2
    assert "edited" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_stale_plan_exits_2_and_allow_stale_is_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Staleness does not depend on the fit: the diagnostics are made to fail on every fit (an
    # impossible ESS) and downgraded to a warning, so the run completes whatever the sampler does.
    cfg = _small(tmp_path, diagnostics={"min_ess_bulk": 1e9, "on_failure": "warn"})
    assert _cli("compile", str(cfg), "-o", str(tmp_path / "plan.json"), "-q") == 0
    with (tmp_path / "tracker.csv").open("a") as f:
        f.write("s5,geo_test,sales,relative_percent,2.5,1.0,,,,,yes,,m5,,,,,,\n")
    assert _cli("execute", str(tmp_path / "plan.json"), "--out", str(tmp_path / "run")) == 2
    assert "stale" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    code = _cli("execute", str(tmp_path / "plan.json"), "--out", str(tmp_path / "run"), "--allow-stale", "-q")
    assert code == 0
    status = json.loads((tmp_path / "run" / "run_status.json").read_text())
    assert status["allow_stale"] is True and status["stale_sources"]
    assert {"stale_plan", "diagnostics_warning"} <= {r["code"] for r in status["reasons"]}
    assert status["status"] == "completed_with_warnings" and status["reportable"] is False


def _four_rows_case() -> Case:
    """helpers.four_rows() by hand: relative_percent 2.0 ± 1, 3.5 ± 1.2, 1.0 ± 0.8, 4.0 ± 1.5 become
    log(1 + x/100) with SE se / (100 + x); the log_relative default priors N(0, 1), half-normal(0.5)."""
    est = {"s1": (2.0, 1.0), "s2": (3.5, 1.2), "s3": (1.0, 0.8), "s4": (4.0, 1.5)}
    rows = tuple(Row(i + 2, sid, "", "included", "included", "log1p_percent", "standard_error",
                     math.log1p(x / 100), se / (100 + x)) for i, (sid, (x, se)) in enumerate(est.items()))
    return Case(name="four", scale="log_relative", interval=0.95, rows=rows,
                priors={"mu_mean": 0.0, "mu_sd": 1.0, "tau_scale": 0.5, "tau_family": "half_normal"})


def test_blocked_plan_exits_3_with_artefacts(tmp_path: Path) -> None:
    cfg = _small(tmp_path, [row("a", 1.0), row("b", 2.0)])
    assert _cli("run", str(cfg), "-q") == 3
    run = tmp_path / "out"
    status = json.loads((run / "run_status.json").read_text())
    assert (status["status"], status["exit_code"], status["reportable"]) == ("blocked", 3, False)
    assert status["engine"] is None and status["headline"] is None and status["readiness"] == "not_recommended"
    # the reasons: readiness; b's fixed-effect share 102² / (101² + 102²) = 0.505 is more than half
    # (dominant_weight); helpers.base_config turns prior sensitivity off and loosens the two ESS thresholds
    assert sorted(r["code"] for r in status["reasons"]) == [
        "plausibility_review", "prior_sensitivity_not_run", "readiness_not_recommended", "threshold_loosened",
        "threshold_loosened"]
    # a blocked pool stops after effect preparation and readiness: no number is computed
    assert {p.name for p in run.iterdir()} == {"plan.json", "run_status.json", "effect_preparation.csv",
                                               "readiness.csv", "manifest.json", *REPORT_FILES}
    two = Case(name="two", scale="log_relative", interval=0.95, priors={}, rows=(
        Row(2, "a", "", "included", "included", "log1p_percent", "standard_error", math.log(1.01), 1 / 101),
        Row(3, "b", "", "included", "included", "log1p_percent", "standard_error", math.log(1.02), 1 / 102,
            checks="dominant_weight")),
        readiness={"pool": "geo_test/sales/log_relative", "evidence_types": "geo_test", "metric": "sales",
                   "scale": "log_relative", "eligible": 2, "included": 2, "scenario": 0,
                   "readiness": "not_recommended",
                   "why": "2 comparable row(s) enter the pool; at least 3 are needed for a directional analysis",
                   "min_rows_directional": 3, "min_rows_ready": 4, "blocking_duplicates": 0,
                   "possible_duplicates": 0})
    check("effect_preparation", run, Reference(two), sampled=False)
    check("readiness", run, Reference(two), sampled=False)
    assert verify_run(run).ok


def test_blocking_duplicates_block(tmp_path: Path) -> None:
    rows = [*four_rows(), row("d1", 3.0, market="x", se=0.5), row("d2", 3.0, market="x", se=0.5)]
    result = execute_plan(compile_config(_small(tmp_path, rows)), quiet=True, report=False)
    assert result.exit_code == 3 and "blocking_duplicates" in {r["code"] for r in result.reasons}


def test_forced_sampling_failure_exits_4_with_artefacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The MCMC check cannot run: the run fails (exit 4), but the exact numbers it could not confirm
    are written, and are the right ones."""
    def broken_sampler(*args: object, **kwargs: object) -> object:
        raise RuntimeError("forced sampling failure (test)")

    monkeypatch.setattr("marketbayesmeta.runtime.model.sample_model", broken_sampler)
    plan = compile_config(_small(tmp_path))
    result = execute_plan(plan, tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    assert result.status == "failed" and result.exit_code == 4 and not result.reportable
    status = json.loads((run / "run_status.json").read_text())
    assert status["exit_code"] == 4 and status["engine"] == "exact"
    failed = [r["message"] for r in status["reasons"] if r["code"] == "sampling_failed"]
    assert failed == ["the MCMC check of fit main failed: RuntimeError: forced sampling failure (test)"]
    assert _csv(run / "diagnostics.csv") == [{"fit": "main", "parameter": "(fit)", "check": "all", "value": "",
                                              "threshold": "", "pass": "false", "mcmc": "", "exact": "", "mcse": "",
                                              "draws": ""}]
    assert not (run / "posterior.nc").exists()
    ref = Reference(_four_rows_case())
    for table in ("pooled_summary", "study_effects", "headline"):
        check(table, run, ref, sampled=False)
    assert (run / "effect_preparation.csv").exists() and (run / "analysis_report.md").exists()


def test_diagnostic_failure_blocks_or_warns(tmp_path: Path) -> None:
    # an impossible ESS threshold fails diagnostics deterministically
    cfg = _small(tmp_path / "block", diagnostics={"min_ess_bulk": 1e9})
    r = execute_plan(compile_config(cfg), quiet=True, report=False)
    assert r.exit_code == 4 and "diagnostics_failed" in {x["code"] for x in r.reasons}
    cfg = _small(tmp_path / "warn", diagnostics={"min_ess_bulk": 1e9, "on_failure": "warn"})
    r = execute_plan(compile_config(cfg), quiet=True, report=False)
    assert r.exit_code == 0 and r.status == "completed_with_warnings" and not r.reportable
    assert "diagnostics_warning" in {x["code"] for x in r.reasons}


def test_ready_consistent_evidence_is_reportable_and_scenario_rows_are_not(tmp_path: Path) -> None:
    """Eight consistent, precise geo tests with a matching tau prior: every SPEC §7 condition holds.
    Adding one scenario-uncertainty row (and nothing else) must make the same analysis not reportable."""
    rows = [row(f"s{i}", est, se=1.0, market=f"m{i}")
            for i, est in enumerate([3.1, 2.4, 4.0, 2.9, 3.6, 2.2, 3.3, 2.7])]
    settings = {"sensitivity": {"prior": True}, "sampler": {"draws": 1000, "tune": 1000, "chains": 4},
                "diagnostics": {"min_ess_bulk": 400, "min_ess_tail": 400}, "priors": {"tau_scale": 0.05}}
    r = execute_plan(compile_config(_small(tmp_path / "ready", rows, **settings)), quiet=True, report=False)
    assert r.exit_code == 0 and r.reportable is True, r.reasons
    scenario = row("sc", 0.03, unit="log_relative", se=None, uncertainty_scenario="low", market="sc")
    r = execute_plan(compile_config(_small(tmp_path / "scenario", [*rows, scenario], **settings)), quiet=True,
                     report=False)
    assert r.exit_code == 0 and r.reportable is False
    assert "scenario_uncertainty" in {x["code"] for x in r.reasons}


def test_previous_run_survives_until_new_one_is_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from marketbayesmeta.runtime.rundir import RunDirectory

    plan = compile_config(_small(tmp_path))
    first = execute_plan(plan, tmp_path / "run", quiet=True, report=False)
    before = (first.run_dir / "manifest.json").read_bytes()
    seen: dict[str, bool] = {}

    start = RunDirectory.start

    def check(self: RunDirectory) -> Path:
        start(self)
        seen["previous_intact"] = (tmp_path / "run" / "manifest.json").read_bytes() == before
        raise KeyboardInterrupt

    monkeypatch.setattr(RunDirectory, "start", check)
    with pytest.raises(KeyboardInterrupt):
        execute_plan(plan, tmp_path / "run", quiet=True, report=False)
    assert seen["previous_intact"]
    assert (tmp_path / "run" / "manifest.json").read_bytes() == before
    assert not list(tmp_path.glob(".run.staging-*"))


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    plan = compile_config(_small(tmp_path))
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    from marketbayesmeta.errors import InputError

    with pytest.raises(InputError, match="not a marketbayesmeta run directory"):
        execute_plan(plan, foreign, quiet=True)
    assert (foreign / "thesis.txt").read_text() == "precious"


def test_plan_written_elsewhere_needs_an_explicit_out(tmp_path: Path) -> None:
    """locations are outside plan_hash: without --out, a plan runs only into its own directory
    tree (README "Decisions"); its recorded output directory is named in the refusal."""
    plan = compile_config(_small(tmp_path))
    path = write_plan(plan, tmp_path / "plans" / "p.json")
    with pytest.raises(PlanError, match=r"outside the plan's own directory.*--out .*out"):
        execute_plan(path, quiet=True, report=False)
    assert not (tmp_path / "out").exists()
    result = execute_plan(path, tmp_path / "out", quiet=True, report=False)
    assert result.run_dir == (tmp_path / "out").resolve()


def test_quiet_run_at_the_widest_interval_prints_nothing_on_stderr(tmp_path: Path) -> None:
    """-q means nothing on stderr: no numpy RuntimeWarning either (issue 16), at the widest
    interval the config allows (0.999; 0.9999999999999999 is refused)."""
    import subprocess
    import sys

    cfg = _small(tmp_path, reporting={"interval": 0.999}, sensitivity={"prior": True})
    proc = subprocess.run([sys.executable, "-m", "marketbayesmeta", "run", str(cfg), "-q"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 4), proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr
    summary = _csv(tmp_path / "out" / "pooled_summary.csv")
    assert {r["interval_level"] for r in summary} == {"0.999"}
