"""Runtime: run directory contents, statuses and exit codes, determinism, integrity and staleness.

These sample with small settings (marked slow; they run in ``make check``)."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import four_rows, row, write_project
from marketbayesmeta.api import compile_config, execute_plan
from marketbayesmeta.audit.verify import verify_run
from marketbayesmeta.cli import _dispatch, build_parser
from marketbayesmeta.errors import PlanError
from marketbayesmeta.plan import write_plan

pytestmark = pytest.mark.slow
pytest_plugins = ("example_run",)  # the example, run once per session

SPEC_FILES = {"plan.json", "run_status.json", "analysis_report.md", "effect_preparation.csv", "readiness.csv",
              "pooled_summary.csv", "study_effects.csv", "future_true_effect_summary.csv", "diagnostics.csv",
              "prior_diagnostics.csv", "ppc.csv", "prior_sensitivity.csv", "uncertainty_sensitivity.csv",
              "posterior.nc", "report.ipynb", "report.html", "manifest.json"}


def _cli(*argv: str) -> int:
    return _dispatch(list(argv), build_parser())


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_example_writes_every_spec_file(example_run: Path) -> None:
    assert SPEC_FILES <= {p.name for p in example_run.iterdir()}
    status = json.loads((example_run / "run_status.json").read_text())
    assert status["status"] in ("completed", "completed_with_warnings")
    assert status["reportable"] is False
    assert status["readiness"] == "directional"
    codes = {r["code"] for r in status["reasons"]}
    assert {"readiness_directional", "scenario_uncertainty"} <= codes
    assert verify_run(example_run).ok


def test_example_diagnostics_have_exact_cross_check_for_every_fit(example_run: Path) -> None:
    rows = _csv(example_run / "diagnostics.csv")
    fits = {r["fit"] for r in rows}
    assert fits == {"main", "prior:regularising", "prior:default", "prior:weak", "uncertainty:low",
                    "uncertainty:medium", "uncertainty:high"}
    for fit in fits:
        checks = {(r["parameter"], r["check"]) for r in rows if r["fit"] == fit}
        for p in ("mu", "tau"):
            assert {(p, "exact_z_mean"), (p, "exact_z_q025"), (p, "exact_z_q975"), (p, "r_hat")} <= checks


def test_pooled_summary_has_pct_equivalents(example_run: Path) -> None:
    import math

    mu = {r["parameter"]: r for r in _csv(example_run / "pooled_summary.csv")}["mu"]
    assert float(mu["lower_pct"]) == pytest.approx(100 * math.expm1(float(mu["lower"])), rel=1e-8)
    assert 0 <= float(mu["prob_positive"]) <= 1


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


def test_blocked_plan_exits_3_with_artefacts(tmp_path: Path) -> None:
    cfg = _small(tmp_path, [row("a", 1.0), row("b", 2.0)])
    assert _cli("run", str(cfg), "-q") == 3
    run = tmp_path / "out"
    status = json.loads((run / "run_status.json").read_text())
    assert status["status"] == "blocked" and status["exit_code"] == 3 and status["reportable"] is False
    assert "readiness_not_recommended" in {r["code"] for r in status["reasons"]}
    for name in ("effect_preparation.csv", "readiness.csv", "analysis_report.md", "report.html", "manifest.json"):
        assert (run / name).exists(), name
    assert not (run / "pooled_summary.csv").exists()
    assert verify_run(run).ok


def test_blocking_duplicates_block(tmp_path: Path) -> None:
    rows = [*four_rows(), row("d1", 3.0, market="x", se=0.5), row("d2", 3.0, market="x", se=0.5)]
    result = execute_plan(compile_config(_small(tmp_path, rows)), quiet=True, report=False)
    assert result.exit_code == 3 and "blocking_duplicates" in {r["code"] for r in result.reasons}


def test_forced_sampling_failure_exits_4_with_artefacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_sampler(*args: object, **kwargs: object) -> object:
        raise RuntimeError("forced sampling failure (test)")

    monkeypatch.setattr("marketbayesmeta.runtime.model.sample_model", broken_sampler)
    plan = compile_config(_small(tmp_path))
    result = execute_plan(plan, tmp_path / "run", quiet=True)
    assert result.status == "failed" and result.exit_code == 4
    status = json.loads((tmp_path / "run" / "run_status.json").read_text())
    assert status["exit_code"] == 4 and "sampling_failed" in {r["code"] for r in status["reasons"]}
    assert (tmp_path / "run" / "effect_preparation.csv").exists()
    assert (tmp_path / "run" / "analysis_report.md").exists()


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
