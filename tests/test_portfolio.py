"""Portfolio plans: pools from `pools` and `analysis.split_by`, per-pool hashes, incremental runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import row, tracker_csv
from marketbayesmeta.api import compile_config, execute_plan
from marketbayesmeta.audit import diff_plans, verify_run
from marketbayesmeta.errors import ConfigError

SAMPLER = {"chains": 2, "draws": 200, "tune": 200, "random_seed": 3}


def _rows() -> list[dict[str, Any]]:
    rows = []
    for channel, base in (("tv", 3.0), ("radio", 1.5)):
        for i, shift in enumerate((0.0, 0.8, -0.6, 0.3)):
            rows.append(row(f"{channel}-{i}", base + shift, se=1.0, channel=channel, market=f"m{i}"))
    rows.append(row("aw-1", 2.0, unit="percentage_point", se=0.5, metric="awareness", evidence_type="brand_lift",
                    channel="tv", market="m1"))
    rows.append(row("aw-2", 1.0, unit="percentage_point", se=0.5, metric="awareness", evidence_type="brand_lift",
                    channel="tv", market="m2"))
    rows.append(row("blank-1", 2.0, se=1.0, channel="", market="m9"))
    return rows


def _project(tmp: Path, rows: list[dict[str, Any]] | None = None, **config: Any) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "tracker.csv").write_text(tracker_csv(_rows() if rows is None else rows), encoding="utf-8")
    doc = {"version": 1, "project": {"name": "portfolio_test"}, "data": {"tracker": "tracker.csv"},
           "analysis": {"metric": "sales", "scale": "log_relative", "evidence_types": ["geo_test"]},
           "sampler": SAMPLER, "diagnostics": {"min_ess_bulk": 50, "min_ess_tail": 50, "max_rhat": 1.1},
           "sensitivity": {"prior": True, "uncertainty": False}, "outputs": {"directory": "out"}}
    for key, value in config.items():
        doc[key] = {**doc[key], **value} if isinstance(value, dict) and isinstance(doc.get(key), dict) else value
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_split_by_gives_one_pool_per_value_with_only_its_rows(tmp_path: Path) -> None:
    plan = compile_config(_project(tmp_path, analysis={"split_by": ["channel"]}))
    assert plan.layout == "portfolio"
    names = [p.name for p in plan.pools]
    assert names == ["sales__channel-radio", "sales__channel-tv", "sales__channel-unspecified"]
    tv = plan.pool("sales__channel-tv")
    assert tv.filters == {"channel": ["tv"]}
    assert {r.study_id for r in tv.rows} == {f"tv-{i}" for i in range(4)}  # no awareness row, no radio row
    assert tv.readiness.readiness == "ready"
    blank = plan.pool("sales__channel-unspecified")
    assert [r.study_id for r in blank.rows] == ["blank-1"]
    assert blank.readiness.readiness == "not_recommended"  # listed as not poolable, not dropped


def test_named_pools_inherit_and_override(tmp_path: Path) -> None:
    pools = [{"name": "sales_tv", "filters": {"channel": ["TV"]}},
             {"name": "awareness", "metric": "awareness", "scale": "percentage_point",
              "evidence_types": ["brand_lift"], "priors": {"tau_scale": 2.0}}]
    plan = compile_config(_project(tmp_path, pools=pools, priors={"mu_sd": 0.8}))
    tv, aw = plan.pool("sales_tv"), plan.pool("awareness")
    assert {r.study_id for r in tv.rows} == {f"tv-{i}" for i in range(4)}
    assert tv.priors["mu_sd"].value == 0.8 and tv.priors["mu_sd"].provenance == "config"
    assert aw.scale == "percentage_point" and aw.priors["tau_scale"].value == 2.0
    assert aw.priors["mu_sd"].value == 0.8  # the top-level priors apply key by key
    assert [r.study_id for r in aw.rows] == ["aw-1", "aw-2"]


@pytest.mark.parametrize("config, fragment", [
    ({"analysis": {"split_by": ["colour"]}}, "split_by"),
    ({"pools": [{"name": "x", "filters": {"channel": ["tvv"]}}]}, "'tvv' not found"),
    ({"pools": [{"name": "x", "metric": "sales_typo"}]}, "did you mean 'sales'"),
    ({"pools": [{"name": "x"}, {"name": "x"}]}, "pool names must be unique"),
])
def test_pool_errors_name_the_problem(tmp_path: Path, config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        compile_config(_project(tmp_path, **config))
    assert fragment in err.value.render()


def test_pool_hash_ignores_other_pools(tmp_path: Path) -> None:
    cfg = {"analysis": {"split_by": ["channel"]}}
    a = compile_config(_project(tmp_path / "a", **cfg))
    rows = _rows()
    rows[0] = {**rows[0], "estimate": 9.9}  # a tv row changes
    rows[-2] = {**rows[-2], "estimate": 1.7}  # an awareness row (another metric) changes
    b = compile_config(_project(tmp_path / "b", rows, **cfg))
    assert a.plan_hash != b.plan_hash
    hashes_a = {p.name: p.pool_hash for p in a.pools}
    hashes_b = {p.name: p.pool_hash for p in b.pools}
    assert hashes_a["sales__channel-radio"] == hashes_b["sales__channel-radio"]
    assert hashes_a["sales__channel-tv"] != hashes_b["sales__channel-tv"]
    changed = {c.item.split(": ")[0] for c in diff_plans_of(tmp_path, a, b) if c.group.startswith("row")}
    assert changed == {"sales__channel-tv"}


def diff_plans_of(tmp: Path, a: Any, b: Any) -> list[Any]:
    from marketbayesmeta.plan import write_plan

    return diff_plans(write_plan(a, tmp / "a.json"), write_plan(b, tmp / "b.json")).changes


def _portfolio_csv(run: Path) -> dict[str, dict[str, str]]:
    with (run / "portfolio.csv").open(encoding="utf-8") as f:
        return {r["pool"]: r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_incremental_runs_reuse_unchanged_pools(tmp_path: Path) -> None:
    cfg = {"analysis": {"split_by": ["channel"]}}
    first = execute_plan(compile_config(_project(tmp_path, **cfg)), quiet=True, report=False)
    run = first.run_dir
    assert first.exit_code == 3  # the blank-channel pool is blocked: the worst pool's exit code
    table = _portfolio_csv(run)
    assert {r["reused"] for r in table.values()} == {"false"}
    assert table["sales__channel-tv"]["status"] in ("completed", "completed_with_warnings")
    tv_bytes = (run / "pools" / "sales__channel-tv" / "pooled_summary.csv").read_bytes()
    assert verify_run(run).ok

    again = execute_plan(compile_config(_project(tmp_path, **cfg)), quiet=True, report=False)
    table = _portfolio_csv(again.run_dir)
    assert {r["reused"] for r in table.values()} == {"true"}
    status = json.loads((again.run_dir / "run_status.json").read_text())
    assert all(p["reused"] for p in status["pools"])
    assert verify_run(again.run_dir).ok

    rows = _rows()
    rows[4] = {**rows[4], "estimate": 2.6}  # a radio row
    third = execute_plan(compile_config(_project(tmp_path, rows, **cfg)), quiet=True, report=False)
    table = _portfolio_csv(third.run_dir)
    assert table["sales__channel-radio"]["reused"] == "false"
    assert table["sales__channel-tv"]["reused"] == "true"
    assert (third.run_dir / "pools" / "sales__channel-tv" / "pooled_summary.csv").read_bytes() == tv_bytes

    fourth = execute_plan(compile_config(_project(tmp_path, rows, priors={"mu_sd": 0.7}, **cfg)), quiet=True,
                          report=False)
    assert {r["reused"] for r in _portfolio_csv(fourth.run_dir).values()} == {"false"}  # priors changed everywhere


@pytest.mark.slow
def test_a_portfolios_pools_draw_no_figures_ahead(tmp_path: Path, monkeypatch) -> None:
    """Drawing the figures ahead (report/prerender.py) is for a single run, whose kernel would idle
    while it samples; a portfolio's workers keep every core busy."""
    from marketbayesmeta.report.notebook import ReportKernel

    asked: list[Path | None] = []
    real = ReportKernel.warm_up

    def warm_up(self: ReportKernel, run_dir: Path | None = None) -> None:
        asked.append(run_dir)
        real(self, run_dir)

    monkeypatch.setattr(ReportKernel, "warm_up", warm_up)
    cfg = {"analysis": {"split_by": ["channel"]}}
    rows = [r for r in _rows() if r["channel"] == "tv" and r["metric"] != "awareness"]
    result = execute_plan(compile_config(_project(tmp_path, rows, **cfg)), quiet=True)
    assert result.exit_code == 0 and (result.run_dir / "pools" / "sales__channel-tv" / "report.html").is_file()
    assert asked and set(asked) == {None}  # the worker's kernel warms up on the canned run only


def test_a_tampered_previous_pool_is_run_again(tmp_path: Path) -> None:
    cfg = {"analysis": {"split_by": ["channel"]}}
    first = execute_plan(compile_config(_project(tmp_path, **cfg)), quiet=True, report=False)
    target = first.run_dir / "pools" / "sales__channel-tv" / "pooled_summary.csv"
    target.write_bytes(target.read_bytes().replace(b"mu,", b"mu,9"))
    again = execute_plan(compile_config(_project(tmp_path, **cfg)), quiet=True, report=False)
    table = _portfolio_csv(again.run_dir)
    assert table["sales__channel-tv"]["reused"] == "false" and table["sales__channel-radio"]["reused"] == "true"
    assert verify_run(again.run_dir).ok


def _files(run: Path) -> dict[str, Any]:
    """Every file of a run: bytes for the deterministic ones; for posterior.nc its content (the draws
    are identical, but HDF5 does not lay a file out byte-identically twice); not run_status.json,
    the manifest or the reports, which carry timestamps."""
    import xarray as xr

    skip = {"run_status.json", "manifest.json", "report.ipynb", "report.html", "portfolio_report.html"}
    out: dict[str, Any] = {}
    for p in sorted(run.rglob("*")):
        name = p.relative_to(run).as_posix()
        if not p.is_file() or p.name in skip:
            continue
        if p.name == "posterior.nc":
            out[name] = _Content({g: xr.load_dataset(p, group=g, engine="h5netcdf")
                                  for g in ("posterior", "sample_stats", "observed_data", "constant_data")})
        else:
            out[name] = p.read_bytes()
    return out


class _Content:
    """posterior.nc's groups, equal when xarray finds them identical (values, NaNs, attributes)."""

    def __init__(self, groups: dict[str, Any]) -> None:
        self.groups = groups

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Content) and self.groups.keys() == other.groups.keys() and all(
            self.groups[g].identical(other.groups[g]) for g in self.groups)

    def __repr__(self) -> str:
        return f"posterior.nc content ({', '.join(self.groups)})"


@pytest.mark.slow
def test_serial_jobs_and_dask_give_the_same_bytes(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    plan = compile_config(_project(tmp_path, analysis={"split_by": ["channel"]}))
    serial = _files(execute_plan(plan, tmp_path / "serial", quiet=True, report=False).run_dir)
    assert any(name.endswith("posterior.nc") for name in serial)
    jobs = _files(execute_plan(plan, tmp_path / "jobs", quiet=True, report=False, jobs=2).run_dir)
    assert jobs == serial
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        dask = _files(execute_plan(plan, tmp_path / "dask", quiet=True, report=False,
                                   dask_address=cluster.scheduler_address).run_dir)
    assert dask == serial


@pytest.mark.slow
def test_a_killed_worker_fails_its_pool_only(tmp_path: Path) -> None:
    """SIGKILL one local worker mid-run: its pool is failed (its directory holds only pool.json and
    run_status.json), the other pools complete, and the run directory verifies."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = _project(tmp_path, analysis={"split_by": ["channel"]})
    proc = subprocess.Popen([sys.executable, "-m", "marketbayesmeta", "run", str(config), "--jobs", "2", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        children = _children(proc.pid)
        workers = [pid for pid in children if b"spawn_main" in _cmdline(pid)]
        if len(workers) >= 2:
            time.sleep(3.0)  # both workers are in a pool's sampling by now (each takes several seconds)
            victim = workers[0]
        time.sleep(0.2)
    assert victim is not None, "no worker process appeared"
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 4, (out, err)
    status = json.loads((tmp_path / "out" / "run_status.json").read_text())
    failed = [p for p in status["pools"] if p["status"] == "failed"]
    assert len(failed) == 1 and "SIGKILL" in " ".join(r["message"] for r in status["reasons"])
    assert {p.name for p in (tmp_path / "out" / "pools" / failed[0]["name"]).iterdir()} == {"pool.json",
                                                                                          "run_status.json"}
    assert sum(p["status"] != "failed" for p in status["pools"]) == len(status["pools"]) - 1
    assert verify_run(tmp_path / "out").ok


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                out.append(int(entry.name))
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.slow
def test_a_pool_result_is_let_go_of_once_its_files_are_written(tmp_path: Path, monkeypatch) -> None:
    """Each pool's result carries its files' bytes: the portfolio writes them and lets the result go
    (kept until the end, a 100-pool run held ~250 MB of them in the CLI process)."""
    import gc
    import weakref

    from marketbayesmeta.runtime import portfolio

    real = portfolio.pool_task
    earlier: list[weakref.ref] = []

    def watched(task: Any) -> Any:
        gc.collect()
        assert [ref() for ref in earlier] == [None] * len(earlier), "an earlier pool's result is still held"
        result = real(task)
        earlier.append(weakref.ref(result))
        return result

    monkeypatch.setattr(portfolio, "pool_task", watched)
    done = execute_plan(compile_config(_project(tmp_path, analysis={"split_by": ["channel"]})), quiet=True,
                        report=False)
    assert len(earlier) == 3 and (done.run_dir / "pools" / "sales__channel-tv" / "pooled_summary.csv").is_file()
