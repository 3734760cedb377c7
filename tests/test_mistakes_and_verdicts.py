"""One verdict everywhere: check-config, compile and execute agree on blocked / not blocked; the
analyst's mistakes (a percent typed as a fraction, model outputs under another name, loosened
settings) are named before a number is reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import row, write_project
from marketbayesmeta.api import compile_config, execute_plan

SMALL = {"sampler": {"chains": 2, "draws": 300, "tune": 300, "random_seed": 7}}

DUPLICATE_CASES: dict[str, list[dict[str, Any]]] = {
    "blocking duplicate": [row("a", 2.0), row("b", 3.0), row("c", 2.5), row("d", 3.1, market="x"),
                           row("d2", 3.1, market="x")],
    "copy not analysis-ready": [row("a", 2.0), row("b", 3.0), row("c", 2.5), row("d", 3.1, market="x"),
                                row("d2", 3.1, market="x", ready="no")],
    "duplicate of another metric": [row("a", 2.0), row("b", 3.0), row("c", 2.5),
                                    row("w1", 1.0, metric="awareness", unit="percentage_point", market="y"),
                                    row("w2", 1.0, metric="awareness", unit="percentage_point", market="y")],
    "possible duplicate": [row("a", 2.0), row("b", 3.0), row("c", 2.5), row("d", 3.1, market="x"),
                           row("d2", 2.7, market="x")],
    "too few rows": [row("a", 2.0), row("b", 3.0)],
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketbayesmeta", *args], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(DUPLICATE_CASES))
def test_check_config_compile_and_execute_agree(tmp_path: Path, case: str) -> None:
    config = write_project(tmp_path, DUPLICATE_CASES[case], **SMALL)
    check = _cli("check-config", str(config))
    compiled = _cli("compile", str(config), "-o", str(tmp_path / "plan.json"))
    assert compiled.returncode == 0, compiled.stderr
    blocked_by_compile = "verdict: blocked" in compiled.stdout
    assert check.returncode == (3 if blocked_by_compile else 0), check.stdout + check.stderr
    assert ("BLOCKED" in check.stdout) == blocked_by_compile
    result = execute_plan(tmp_path / "plan.json", tmp_path / "run", quiet=True, report=False)
    assert (result.exit_code == 3) == blocked_by_compile, (case, result.reasons)
    codes = {r["code"] for r in result.reasons}
    if case == "duplicate of another metric":
        assert "possible_duplicates" not in codes and "blocking_duplicates" not in codes
    expected_blocked = case in ("blocking duplicate", "too few rows")
    assert blocked_by_compile == expected_blocked


ISSUE_CASE = [  # 15 geo tests and brand-lift studies; row 7's geo test was typed as a fraction
    ("g1", 3.1, 1.2, 5.1), ("g2", 2.4, 0.5, 4.3), ("g3", 1.9, -0.2, 4.0), ("g4", 3.6, 1.5, 5.7),
    ("g5", 2.2, 0.4, 4.0), ("g6", 0.038, 0.009, 0.067), ("g7", 2.9, 0.8, 5.0), ("g8", 3.3, 1.4, 5.2),
    ("g9", 2.6, 0.6, 4.6), ("g10", 2.0, 0.1, 3.9), ("g11", 3.8, 1.7, 5.9), ("g12", 2.7, 0.9, 4.5),
]


def _issue_rows() -> list[dict[str, Any]]:
    rows = [row(sid, est, se=None, ci_lower=lo, ci_upper=hi, ci_level=90, market=f"m{i}")
            for i, (sid, est, lo, hi) in enumerate(ISSUE_CASE)]
    rows += [row(f"bl{i}", 1.5 + 0.2 * i, unit="percentage_point", se=0.4, evidence_type="brand_lift",
                 metric="awareness", market=f"b{i}") for i in range(3)]
    return rows


def test_percent_typed_as_fraction_is_named_and_blocks_reportability(tmp_path: Path) -> None:
    config = write_project(tmp_path, _issue_rows(), **SMALL)
    check = _cli("check-config", str(config))
    assert check.returncode == 0  # the run is not blocked: it runs, and is not reportable
    assert "g6" in check.stdout and "relative_fraction" in check.stdout and "NOT REPORTABLE" in check.stdout
    compiled = _cli("compile", str(config), "-o", str(tmp_path / "plan.json"))
    assert "unit_shift" in compiled.stdout and "relative_fraction" in compiled.stdout
    plan = compile_config(config)
    (shift,) = [c for c in plan.pool().checks if c.code == "unit_shift"]
    assert shift.study_ids == ("g6",) and shift.rows == (7,) and shift.suggestion == "relative_fraction"


@pytest.mark.slow
def test_unit_shift_is_not_reportable_until_acknowledged(tmp_path: Path) -> None:
    settings = {**SMALL, "sensitivity": {"prior": True, "uncertainty": False},
                "priors": {"expected_effect": {"lower": -10, "upper": 20, "unit": "relative_percent"},
                           "typical_spread": {"value": 2, "unit": "relative_percent"},
                           "justification": "earlier geo tests"}}
    result = execute_plan(compile_config(write_project(tmp_path / "a", _issue_rows(), **settings)), quiet=True,
                          report=False)
    assert not result.reportable and "plausibility_blocking" in {r["code"] for r in result.reasons}
    ack = {"acknowledge": [{"row": "g6", "check": "unit_shift", "why": "a new measurement vendor, checked"}]}
    result = execute_plan(compile_config(write_project(tmp_path / "b", _issue_rows(), **settings, **ack)),
                          quiet=True, report=False)
    codes = {r["code"] for r in result.reasons}
    assert "plausibility_blocking" not in codes and "plausibility_acknowledged" in codes
    status = json.loads((result.run_dir / "run_status.json").read_text())
    assert any("a new measurement vendor" in r["message"] for r in status["reasons"])


def test_a_stale_acknowledgement_is_an_error(tmp_path: Path) -> None:
    rows = [row("a", 2.0), row("b", 3.0), row("c", 2.5)]
    config = write_project(tmp_path, rows, acknowledge=[{"row": "b", "check": "unit_shift", "why": "checked"}])
    out = _cli("check-config", str(config))
    assert out.returncode == 2 and "acknowledge[0]" in out.stderr


@pytest.mark.parametrize("evidence_type, metric", [
    ("MMM", "sales"), ("marketing_mix_model", "sales"), ("Media Mix Model", "sales"), ("mix-model", "sales"),
    ("geo_test", "ROAS"), ("geo_test", "iROAS"), ("geo_test", "mROI"), ("geo_test", "Return on ad spend"),
    ("geo_test", "cost per acquisition"), ("geo_test", "PA2"),
])
def test_model_outputs_and_efficiency_ratios_are_triangulate_only(tmp_path: Path, evidence_type: str,
                                                                  metric: str) -> None:
    rows = [row("a", 2.0), row("b", 3.0), row("c", 2.5),
            row("x", 3.0, evidence_type=evidence_type, metric=metric, market="z")]
    analysis = {"metric": metric.lower() if metric != "sales" else "sales",
                "evidence_types": ["geo_test", evidence_type.lower()], "scale": "log_relative"}
    plan = compile_config(write_project(tmp_path / "plain", rows, analysis=analysis))
    (x,) = [r for r in plan.pool().rows if r.study_id == "x"]
    assert x.decision == "excluded" and x.reason == "triangulate_only", x.reason_message
    justified = {**analysis, "triangulate_only_justification": "calibrated against geo tests"}
    plan = compile_config(write_project(tmp_path / "justified", rows, analysis=justified))
    (x,) = [r for r in plan.pool().rows if r.study_id == "x"]
    assert x.decision == "included"


def test_config_can_extend_the_triangulate_only_list(tmp_path: Path) -> None:
    rows = [row("a", 2.0), row("b", 3.0), row("c", 2.5), row("x", 3.0, evidence_type="vendor_model", market="z")]
    analysis = {"evidence_types": ["geo_test", "vendor_model"], "triangulate_only": {"evidence_types": ["vendor_model"]}}
    plan = compile_config(write_project(tmp_path, rows, analysis=analysis))
    assert {r.study_id: r.reason for r in plan.pool().rows}["x"] == "triangulate_only"


@pytest.mark.slow
def test_overrides_are_reasons_in_run_status(tmp_path: Path) -> None:
    rows = [row("a", 2.0), row("b", 3.0), row("c", 2.5), row("d", 2.2)]
    config = write_project(tmp_path, rows, **SMALL, readiness={"min_rows_directional": 2, "min_rows_ready": 3},
                           diagnostics={"on_failure": "warn", "max_rhat": 1.05}, priors={"mu_sd": 0.5})
    result = execute_plan(compile_config(config), quiet=True, report=False)
    messages = {r["code"]: r["message"] for r in result.reasons}
    assert any(r["message"] == "readiness.min_rows_ready is 3, looser than the default 4"
               for r in result.reasons if r["code"] == "threshold_loosened")
    loosened = {r["message"].split(" is ")[0] for r in result.reasons if r["code"] == "threshold_loosened"}
    assert {"readiness.min_rows_directional", "readiness.min_rows_ready", "diagnostics.max_rhat",
            "diagnostics.min_ess_bulk", "diagnostics.min_ess_tail"} <= loosened
    assert "diagnostics_downgraded" in messages and "priors_unjustified" in messages


def test_ci_level_written_with_a_percent_sign(tmp_path: Path) -> None:
    rows = [row("a", 2.0, se=None, ci_lower=0.5, ci_upper=3.5, ci_level="90%"),
            row("b", 3.0, se=None, ci_lower=1.0, ci_upper=5.0, ci_level="90 %"),
            row("c", 2.5, se=None, ci_lower=1.0, ci_upper=4.0, ci_level=90)]
    plan = compile_config(write_project(tmp_path, rows))
    assert {r.ci_level for r in plan.pool().rows} == {0.9}
