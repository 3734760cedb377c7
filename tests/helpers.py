"""Shared test helpers: write small configs and trackers into a temp dir."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HEADER = ["study_id", "evidence_type", "metric", "unit", "estimate", "standard_error", "ci_lower", "ci_upper",
          "ci_level", "uncertainty_scenario", "analysis_ready", "brand", "market", "channel", "window_start",
          "window_end", "study_name", "notes", "design"]


def row(study_id: str, estimate: float | str = 2.0, *, unit: str = "relative_percent", se: Any = 1.0,
        evidence_type: str = "geo_test", metric: str = "sales", ready: str = "yes", **extra: Any) -> dict[str, Any]:
    r = {"study_id": study_id, "evidence_type": evidence_type, "metric": metric, "unit": unit,
         "estimate": estimate, "standard_error": se, "analysis_ready": ready, "market": study_id}
    r.update(extra)
    return r


def tracker_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADER, lineterminator="\n", extrasaction="raise")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def base_config(**overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "version": 1,
        "project": {"name": "test_project", "notes": "test"},
        "data": {"tracker": "tracker.csv"},
        "analysis": {"metric": "sales", "scale": "log_relative", "evidence_types": ["geo_test"]},
        "sampler": {"chains": 2, "draws": 300, "tune": 300, "random_seed": 7},
        "sensitivity": {"prior": False, "uncertainty": False},
        "diagnostics": {"min_ess_bulk": 100, "min_ess_tail": 100},
        "outputs": {"directory": "out"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def write_project(tmp: Path, rows: list[dict[str, Any]], **overrides: Any) -> Path:
    """Write tracker.csv and config.yaml into ``tmp``; returns the config path."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "tracker.csv").write_text(tracker_csv(rows), encoding="utf-8")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(base_config(**overrides), sort_keys=False), encoding="utf-8")
    return path


def four_rows() -> list[dict[str, Any]]:
    return [row("s1", 2.0), row("s2", 3.5, se=1.2), row("s3", 1.0, se=0.8), row("s4", 4.0, se=1.5)]


def with_pool(plan: Any, **update: Any) -> Any:
    """``plan`` with its only pool's fields replaced (unhashed: call ``.with_hash()`` to re-hash)."""
    return plan.model_copy(update={"pools": [plan.pool().model_copy(update=update)]})
