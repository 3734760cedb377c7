"""CLI-level behaviour of compile, diff, audit, archive and verify on real compiled plans."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import EXAMPLES
from marketbayesmeta.cli import _dispatch, build_parser


def _cli(*argv: str) -> int:
    return _dispatch(list(argv), build_parser())


@pytest.fixture()
def examples(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path / "examples"


def _compile(config: Path, out: Path) -> Path:
    assert _cli("compile", str(config), "-o", str(out), "-q") == 0
    return out


def test_compile_prints_summary(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("compile", str(examples / "config.yaml")) == 0
    out = capsys.readouterr().out
    assert "geo-2025-01" in out and "triangulate_only" in out and "plan_hash:" in out and "directional" in out
    assert (examples.parent / "output" / "example_geo_sales_uplift" / "plan.json").exists()


def test_diff_same_plan_exit_0(examples: Path, tmp_path: Path) -> None:
    plan = _compile(examples / "config.yaml", tmp_path / "a.json")
    assert _cli("diff", str(plan), str(plan)) == 0


def test_diff_changed_prior_exit_1(examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _compile(examples / "config.yaml", tmp_path / "a.json")
    cfg = yaml.safe_load((examples / "config.yaml").read_text())
    cfg["priors"]["typical_spread"]["value"] = 6  # twice the spread: twice tau's prior scale
    (examples / "changed.yaml").write_text(yaml.safe_dump(cfg))
    b = _compile(examples / "changed.yaml", tmp_path / "b.json")
    capsys.readouterr()
    assert _cli("diff", str(a), str(b)) == 1
    out = capsys.readouterr().out
    assert "tau_scale" in out and "0.04382394577968208" in out and "0.08638" in out
    assert _cli("diff", str(a), str(b), "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert any(g["group"] == "priors" for g in doc["groups"])


def test_diff_names_changed_row(examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _compile(examples / "config.yaml", tmp_path / "a.json")
    tracker = examples / "example_tracker.csv"
    tracker.write_text(tracker.read_text().replace("ratio,1.031,", "ratio,1.045,"))
    b = _compile(examples / "config.yaml", tmp_path / "b.json")
    capsys.readouterr()
    assert _cli("diff", str(a), str(b)) == 1
    out = capsys.readouterr().out
    assert "geo-2025-02" in out and "1.031" in out and "1.045" in out


def test_audit_runs_on_tracker_and_config(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("audit", str(examples / "example_tracker.csv")) == 0
    assert "geo_test" in capsys.readouterr().out


def test_audit_json_groups(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("audit", str(examples / "config.yaml"), "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    group = next(g for g in doc["groups"] if (g["evidence_type"], g["metric"], g["scale"]) ==
                 ("geo_test", "sales", "log_relative"))
    assert group["readiness"] == "directional" and group["scenario"] == 1
    assert group["ready_but_incompatible_unit"] == 1 and group["possible_duplicates"] == 1


def test_audit_bad_input_exit_2(tmp_path: Path) -> None:
    assert _cli("audit", str(tmp_path / "missing.csv")) == 2


def test_unknown_command_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        _cli("frobnicate")
    assert exc.value.code == 2
