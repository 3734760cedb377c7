"""Execute the pools of a portfolio plan into ``pools/<pool>/`` of the staging directory.

The steps, in order:

1. reuse: a pool whose ``pool_hash`` (and package version) equals that of the previous run in the
   target directory, and whose files there still match the previous manifest, is copied, not run;
2. the other pools run as independent tasks (:func:`pool_task`), in this process, in ``jobs`` local
   worker processes or on a Dask cluster (:mod:`.dispatch`). A task runs its pool in a temporary
   directory and returns the files' bytes; only this process writes into the staging directory, so a
   killed worker never leaves a half-written pool, and the bytes do not depend on where a pool ran;
3. portfolio.csv (one row per pool), the root run_status.json (worst status of the pools) and
   portfolio_report.html.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..canonical import hash_file
from ..plan import Plan, Pool, pool_to_text
from ..run_status import PoolStatus, RunStatus
from .csvio import write_table
from .pool_run import PoolOutcome, Progress, RunContext, now, run_pool, versions
from .status import EXIT_CODES

POOLS_DIR = "pools"
_STATUS_ORDER = ("completed", "completed_with_warnings", "blocked", "failed")  # worst last


@dataclass(frozen=True)
class PoolTask:
    pool: Pool
    ctx: RunContext


@dataclass(frozen=True)
class PoolTaskResult:
    outcome: PoolOutcome
    files: dict[str, bytes]
    seconds: float


def pool_task(task: PoolTask) -> PoolTaskResult:
    """Run one pool in a temporary directory; return its outcome and every file's bytes."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="marketbayesmeta-pool-") as tmp:
        directory = Path(tmp)
        (directory / "pool.json").write_text(pool_to_text(task.pool), encoding="utf-8")
        outcome = run_pool(task.pool, directory, task.ctx)
        files = {p.relative_to(directory).as_posix(): p.read_bytes()
                 for p in sorted(directory.rglob("*")) if p.is_file()}
    return PoolTaskResult(outcome, files, time.perf_counter() - t0)


# -- reuse --------------------------------------------------------------------------------------------

def _previous_files(previous: Path) -> dict[str, tuple[str, int]]:
    """path -> (sha256, size) from the previous run's manifest.json ({} when there is none)."""
    try:
        doc = json.loads((previous / "manifest.json").read_text(encoding="utf-8"))
        return {f["path"]: (f["sha256"], f["size"]) for f in doc["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def reusable(pool: Pool, package_version: str, previous: Path | None,
             listed: dict[str, tuple[str, int]]) -> dict[str, Path] | None:
    """The previous run's files of ``pool`` (name -> path) when they can stand for a new run of it:
    same pool_hash and package version recorded, every file listed in the previous manifest and
    unchanged, no file missing or added. None otherwise."""
    if previous is None or not listed:
        return None
    prefix = f"{POOLS_DIR}/{pool.name}/"
    directory = previous / POOLS_DIR / pool.name
    try:
        status = json.loads((directory / "run_status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if status.get("pool_hash") != pool.pool_hash or status.get("package_version") != package_version:
        return None
    if any(isinstance(r, dict) and r.get("code") == "pool_failed" for r in status.get("reasons") or []):
        return None  # its task died (a killed worker, a lost cluster): run it again
    expected = {path[len(prefix):]: value for path, value in listed.items() if path.startswith(prefix)}
    present = {p.relative_to(directory).as_posix(): p for p in directory.rglob("*") if p.is_file()}
    if set(present) != set(expected):
        return None
    for name, path in present.items():
        if hash_file(path) != expected[name]:
            return None
    return present


def _reused_outcome(pool: Pool, directory: Path) -> PoolOutcome:
    status = json.loads((directory / "run_status.json").read_text(encoding="utf-8"))
    return PoolOutcome(name=pool.name, status=status["status"], exit_code=status["exit_code"],
                       reportable=status["reportable"], reasons=status["reasons"], pool_hash=pool.pool_hash,
                       headline=status.get("headline"), reused=True)


# -- the portfolio ---------------------------------------------------------------------------------------

def run_portfolio(plan: Plan, staging: Path, ctx: RunContext, *, previous: Path | None, jobs: int = 1,
                  dask_address: str | None = None) -> list[PoolOutcome]:
    """Every pool of ``plan`` into ``staging/pools/<pool>/`` (reused or run); outcomes in plan order."""
    from .dispatch import TaskFailure, require_distributed, run_tasks

    progress = Progress(ctx.quiet)
    pools_dir = staging / POOLS_DIR
    pools_dir.mkdir()
    listed = _previous_files(previous) if previous is not None else {}
    outcomes: dict[str, PoolOutcome] = {}
    to_run: list[Pool] = []
    for pool in plan.pools:
        files = reusable(pool, plan.package_version, previous, listed)
        if files is None:
            to_run.append(pool)
            continue
        target = pools_dir / pool.name
        target.mkdir()
        for name, path in files.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / name)
        outcomes[pool.name] = _reused_outcome(pool, target)
    if outcomes:
        progress.say(f"reused {len(outcomes)} unchanged pool(s) from the previous run: {', '.join(outcomes)}")
    progress.say(f"running {len(to_run)} pool(s)" + (f" on {jobs} worker(s)" if jobs > 1 else "")
                 + (f" on the Dask cluster {dask_address}" if dask_address else ""))
    task_ctx = replace(ctx, quiet=True, close_fds=(), fit_jobs=1 if (jobs > 1 or dask_address) else ctx.fit_jobs)
    if dask_address:
        require_distributed()  # a clear exit 2 before anything runs
    done = 0

    def finished(index: int, result: PoolTaskResult) -> None:
        nonlocal done
        done += 1
        pool = to_run[index]
        target = pools_dir / pool.name
        for name, data in result.files.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(data)
        outcomes[pool.name] = result.outcome
        progress.say(f"pool {done}/{len(to_run)} {pool.name} … {result.seconds:.1f} s, {result.outcome.status}")

    def failed(index: int, failure: TaskFailure) -> None:
        nonlocal done
        done += 1
        pool = to_run[index]
        outcomes[pool.name] = _failed_outcome(pool, failure.message)
        progress.say(f"pool {done}/{len(to_run)} {pool.name} … failed: {failure.message}")

    try:
        # each result carries its pool's files (~2.5 MB): written by `finished`, then let go of
        run_tasks([PoolTask(pool, task_ctx) for pool in to_run], pool_task, jobs=jobs, dask_address=dask_address,
                  on_result=finished, on_error=failed, keep_results=False)
    finally:
        _close_report_kernel()  # the one the pools run here shared (workers close theirs when they exit)
    for pool in to_run:
        if not (pools_dir / pool.name / "run_status.json").exists():
            _write_failed_pool(pools_dir / pool.name, pool, ctx, outcomes[pool.name])
    ordered = [outcomes[p.name] for p in plan.pools]
    write_table(staging, "portfolio.csv", [portfolio_row(p, o) for p, o in zip(plan.pools, ordered, strict=True)])
    return ordered


def _close_report_kernel() -> None:
    """Close this process's report kernel, if pools ran here (serially) and started one."""
    notebook = sys.modules.get("marketbayesmeta.report.notebook")
    if notebook is not None:
        notebook.close_process_kernel()


def _failed_outcome(pool: Pool, message: str) -> PoolOutcome:
    return PoolOutcome(name=pool.name, status="failed", exit_code=EXIT_CODES["failed"], reportable=False,
                       reasons=[{"code": "pool_failed", "message": f"the pool's task failed: {message}"}],
                       pool_hash=pool.pool_hash, headline=None)


def _write_failed_pool(directory: Path, pool: Pool, ctx: RunContext, outcome: PoolOutcome) -> None:
    """A pool whose task died: its directory holds pool.json and a run_status.json saying so."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pool.json").write_text(pool_to_text(pool), encoding="utf-8")
    stamp = now()
    (directory / "run_status.json").write_text(RunStatus(
        status="failed", reportable=False, reasons=outcome.reasons, exit_code=4, plan_hash=ctx.plan_hash,
        project_name=ctx.project_name, layout=ctx.layout, pool=pool.name, pool_hash=pool.pool_hash, engine=None,
        readiness=pool.readiness.readiness, allow_stale=ctx.allow_stale, stale_sources=list(ctx.stale_sources),
        started_at=stamp, finished_at=stamp, package_version=ctx.package_version, versions=versions(),
        headline=None).text(), encoding="utf-8")


# -- portfolio.csv and the root run_status.json ------------------------------------------------------------

def _unit(pool: Pool) -> str:
    return "relative_percent" if pool.scale == "log_relative" else "percentage_point"


def portfolio_row(pool: Pool, outcome: PoolOutcome) -> dict[str, Any]:
    h = outcome.headline or {}
    pct = pool.scale == "log_relative"
    counts = {d: sum(r.decision == d for r in pool.rows) for d in ("included", "scenario", "excluded")}
    return {
        "pool": pool.name, "metric": pool.metric, "scale": pool.scale, "evidence_types": ";".join(pool.evidence_types),
        "filters": "; ".join(f"{c}={'|'.join(v)}" for c, v in pool.filters.items()),
        "status": outcome.status, "exit_code": outcome.exit_code, "readiness": pool.readiness.readiness,
        "reportable": outcome.reportable, "unit": _unit(pool),
        "estimate": h.get("mu_mean_pct" if pct else "mu_mean"), "lower": h.get("mu_lower_pct" if pct else "mu_lower"),
        "upper": h.get("mu_upper_pct" if pct else "mu_upper"), "interval_level": h.get("interval_level"),
        "prob_positive": h.get("prob_positive"),
        "typical_spread": h.get("typical_spread"), "i2_median": h.get("i2_median"),
        "rows_in": counts["included"], "rows_scenario": counts["scenario"], "rows_out": counts["excluded"],
        "reused": outcome.reused, "pool_hash": pool.pool_hash,
        "reasons": ";".join(dict.fromkeys(r["code"] for r in outcome.reasons)),
    }


def portfolio_status(plan: Plan, outcomes: list[PoolOutcome], ctx: RunContext, started: str,
                     finished: str | None) -> RunStatus:
    worst = max((o.status for o in outcomes), key=_STATUS_ORDER.index, default="completed")
    reasons = [{"code": r["code"], "message": f"[{o.name}] {r['message']}"} for o in outcomes for r in o.reasons]
    return RunStatus(
        status=worst, reportable=all(o.reportable for o in outcomes), reasons=reasons, exit_code=EXIT_CODES[worst],
        plan_hash=ctx.plan_hash, project_name=ctx.project_name, layout="portfolio", pool=None, pool_hash=None,
        engine=None, readiness=None, allow_stale=ctx.allow_stale, stale_sources=list(ctx.stale_sources),
        started_at=started, finished_at=finished, package_version=ctx.package_version, versions=versions(),
        headline=None, pools=[PoolStatus(name=o.name, status=o.status, exit_code=o.exit_code, reportable=o.reportable,
                                         reused=o.reused, pool_hash=o.pool_hash) for o in outcomes])

