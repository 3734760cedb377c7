"""Execute one pool of a plan into a directory: readiness blockers, the fits, every artefact, the
reports and run_status.json. The steps, in order:

1. effect_preparation.csv and readiness.csv (always);
2. blockers from the plan (readiness, blocking duplicates, nothing poolable): a blocked pool stops
   here;
3. sample the fits (:mod:`.fits`) and write the numbers, diagnostics and sensitivity tables;
4. posterior.nc of the main fit; run_status.json; the reports (:mod:`marketbayesmeta.report`).
"""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import environment_message
from ..interrupts import raise_if_received
from ..plan import Plan, Pool
from ..run_status import RunStatus
from . import tables
from .csvio import write_table
from .dispatch import in_task_worker
from .fits import (
    PRECISION_CHECKS,
    FitResult,
    checked_fits,
    default_chain_jobs,
    default_fit_jobs,
    sample_fits,
)
from .numbers import write_exact_numbers, write_numbers
from .status import StatusBook

VERSIONED = ("python", "marketbayesmeta", "pymc", "pytensor", "arviz", "numpy", "scipy", "pandas", "xarray",
             "h5netcdf", "nutpie")


def versions() -> dict[str, str]:
    """The versions of Python and of the packages that make the numbers (run_status.json)."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    """Read once per process: the packages a process has imported do not change under it, and a
    portfolio worker writes two run_status.json per pool (~20 package-metadata lookups)."""
    import platform

    out = {"python": platform.python_version()}
    for name in VERSIONED[1:]:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return tuple(out.items())


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Progress:
    """Progress lines on stderr (nothing with ``quiet``)."""

    def __init__(self, quiet: bool, prefix: str = ""):
        self.quiet, self.prefix = quiet, prefix

    def say(self, text: str) -> None:
        if not self.quiet:
            print(self.prefix + text, file=sys.stderr, flush=True)

    def fit(self, i: int, total: int, res: FitResult) -> None:
        self.say(f"fit {i}/{total} {res.fit.name} … {res.seconds:.1f} s{res.note()}")


@dataclass(frozen=True)
class RunContext:
    """What a pool's run needs to know about the plan and the execute call around it."""

    plan_hash: str
    project_name: str
    package_version: str
    layout: str
    allow_stale: bool = False
    stale_sources: tuple[str, ...] = ()
    plan_reasons: tuple[tuple[str, str], ...] = ()  # (code, message) that apply to every pool
    quiet: bool = True
    report: bool = True
    fit_jobs: int | None = None
    close_fds: tuple[int, ...] = ()

    @classmethod
    def of(cls, plan: Plan, **kwargs: Any) -> RunContext:
        return cls(plan_hash=plan.plan_hash, project_name=plan.project_name,
                   package_version=plan.package_version, layout=plan.layout, **kwargs)


@dataclass
class PoolOutcome:
    name: str
    status: str
    exit_code: int
    reportable: bool
    reasons: list[dict[str, str]]
    pool_hash: str
    headline: dict[str, Any] | None
    reused: bool = False


def _posterior_netcdf(res: FitResult, pool: Pool, plan_hash: str, path: Path) -> None:
    from .libraries import load

    load()
    import arviz as az
    import xarray as xr

    d = res.draws
    chain = np.arange(d.mu.shape[0])
    draw = np.arange(d.mu.shape[1])
    coords = {"chain": chain, "draw": draw, "study": np.array(res.ids, dtype=object)}
    posterior = xr.Dataset({
        "mu": (("chain", "draw"), d.mu), "tau": (("chain", "draw"), d.tau),
        "theta": (("chain", "draw", "study"), d.theta), "future_true_effect": (("chain", "draw"), d.future),
    }, coords=coords, attrs={"fit": res.fit.name, "seed": res.fit.seed, "plan_hash": plan_hash,
                             "scale": pool.scale})
    p = res.fit.priors
    # Wall-clock statistics and timestamps would make the file differ between identical runs.
    stats = res.idata.sample_stats.drop_vars([v for v in res.idata.sample_stats.data_vars
                                              if v.startswith(("perf_counter", "process_time"))])
    stats.attrs = {k: v for k, v in stats.attrs.items() if k not in ("created_at", "sampling_time")}
    idata = az.InferenceData(
        posterior=posterior, sample_stats=stats,
        observed_data=xr.Dataset({"y": (("study",), res.y)}, coords={"study": coords["study"]}),
        constant_data=xr.Dataset({"se": (("study",), res.se), "mu_mean": p.mu_mean, "mu_sd": p.mu_sd,
                                  "tau_scale": p.tau_scale}, coords={"study": coords["study"]},
                                 attrs={"tau_family": p.tau_family}))
    idata.to_netcdf(str(path), engine="h5netcdf")


def _blockers(pool: Pool, book: StatusBook) -> None:
    rv = pool.readiness
    n = rv.included + rv.scenario
    if n == 0:
        book.add("nothing_poolable", f"no tracker row enters the pool {rv.pool}: nothing to pool")
    elif rv.readiness == "not_recommended":
        book.add("readiness_not_recommended", f"readiness not_recommended: {rv.why}")
    for d in pool.duplicates:
        if d.kind == "blocking":
            book.add("blocking_duplicates", f"blocking duplicate: {d.message}")


def _warnings_from_plan(pool: Pool, book: StatusBook) -> None:
    rv = pool.readiness
    if rv.readiness == "directional":
        book.add("readiness_directional", f"readiness directional: {rv.why}")
    if rv.scenario:
        ids = ", ".join(r.study_id for r in pool.rows if r.decision == "scenario")
        book.add("scenario_uncertainty", f"{rv.scenario} pooled row(s) rely on scenario uncertainty, not on "
                                         f"source uncertainty: {ids}")
    for d in pool.duplicates:
        if d.kind == "possible":
            book.add("possible_duplicates", f"possible duplicate: {d.message}")
    if not pool.sensitivity.prior:
        book.add("prior_sensitivity_not_run", "prior sensitivity is disabled, so prior dependence cannot be "
                                              "ruled out")
    for c in pool.checks:
        if c.blocks:
            book.add("plausibility_blocking", f"{c.message} (not reportable until the tracker is corrected or "
                                              f"the check is acknowledged: acknowledge: [{{row: {c.study_ids[0]}, "
                                              f"check: {c.code}, why: ...}}])")
        elif c.acknowledged:
            book.add("plausibility_acknowledged", f"[{c.code}, acknowledged: {c.acknowledgement}] {c.message}")
        else:
            book.add("plausibility_review", f"[{c.code}] {c.message}")
    for o in pool.overrides:
        book.add(o.code, o.message)


def _diagnostics(pool: Pool, results: list[FitResult], book: StatusBook, directory: Path) -> None:
    """diagnostics.csv of the sampled fits, and the reasons their failures give."""
    rows = []
    for res in results:
        rows += res.diagnostics
        rows.append({"fit": res.fit.name, "parameter": "(fit)", "check": "all", "value": None, "threshold": None,
                     "pass": res.passes, "draws": res.draws_used or None})
    write_table(directory, "diagnostics.csv", rows)
    for r in results:
        if not r.ok:
            book.add("sampling_failed", f"the MCMC check of fit {r.fit.name} failed: {r.error}")
    not_passing = [r for r in results if r.ok and not r.passes]
    if not not_passing:
        return
    detail = "; ".join(
        f"{r.fit.name} ({r.draws_used} draws per chain): " + ", ".join(sorted(
            {f"{d['parameter']} {d['check']}={d['value']:.4g} (threshold {d['threshold']:g})"
             for d in r.diagnostics if not d["pass"]})) for r in not_passing)
    precision_only = all(r.failing() <= PRECISION_CHECKS for r in not_passing)
    todo = ("Only Monte Carlo precision fell short, even at sampler.max_draws "
            f"({pool.sampler.draw_limit} draws per chain): raise sampler.max_draws (or draws) and run again. "
            if precision_only else
            "The sampler did not converge or diverged (r-hat, divergences or BFMI): raise sampler.tune and "
            "sampler.target_accept (e.g. 2000 and 0.95) and run again; if it persists, look for a study that "
            "conflicts with the others. ")
    todo += "The reported numbers come from the exact engine; the MCMC check could not confirm them."
    if pool.thresholds.on_failure == "block":
        book.add("diagnostics_failed", f"the MCMC check failed: {detail}. {todo}")
    else:
        book.add("diagnostics_warning", "the MCMC check failed (downgraded to a warning by diagnostics.on_failure: "
                                        f"warn): {detail}. {todo}")


def run_pool(pool: Pool, directory: Path, ctx: RunContext) -> PoolOutcome:
    """Execute ``pool`` into ``directory`` (which exists and is empty); returns its outcome.

    The report's notebook kernel is started first (:func:`_report_kernel`), so that it loads on
    another core while the fits are sampled."""
    kernel = _report_kernel(ctx, directory)
    try:
        return _run_pool(pool, directory, ctx, kernel)
    finally:
        if kernel is not None and ctx.layout == "single":
            kernel.close()


def _report_kernel(ctx: RunContext, directory: Path) -> Any:
    """The kernel the pool's report will run in, started now: the pools of a portfolio share their
    process's kernel (a worker writes many reports: it starts the kernel and imports the report's
    libraries once); a single run's kernel keeps its files inside the run's staging directory.
    None without a report."""
    if not ctx.report:
        return None
    from ..report.notebook import private_kernel, process_kernel

    kernel = process_kernel() if ctx.layout == "portfolio" else private_kernel(directory)
    try:  # a portfolio's kernel warms up at once, for all its pools; a single run's, once its
        return kernel.start(warm_up=ctx.layout == "portfolio")  # exact tables are written (_run_pool)
    except Exception:  # noqa: BLE001 - the report says what went wrong (it tries to start it again)
        return kernel


def _run_pool(pool: Pool, directory: Path, ctx: RunContext, kernel: Any) -> PoolOutcome:
    started = now()
    book = StatusBook()
    for code, message in ctx.plan_reasons:
        book.add(code, message)
    progress = Progress(ctx.quiet, "" if ctx.layout == "single" else f"[{pool.name}] ")
    write_table(directory, "effect_preparation.csv", tables.effect_preparation_rows(pool))
    write_table(directory, "readiness.csv", tables.readiness_rows(pool))
    _blockers(pool, book)
    _warnings_from_plan(pool, book)
    headline = None
    if book.status != "blocked":
        checked = len(checked_fits(pool))
        progress.say(f"{pool.name}: exact numbers for {len(pool.fits)} fit(s); MCMC check of {checked} "
                     f"({pool.sampler.chains} chains × {pool.sampler.draws} draws)")
        written, early_error = None, None
        t0 = time.perf_counter()
        try:  # the exact tables first: the report kernel draws from them while the check samples
            written = write_exact_numbers(pool, directory)
        except Exception as exc:  # noqa: BLE001 - recorded below, where a later failure would be
            raise_if_received()
            if environment_message(exc) is not None:
                raise  # disk full, permissions, ...: the user's to fix (exit 2), not a failed run
            early_error = exc
        early_seconds = time.perf_counter() - t0
        if kernel is not None and ctx.layout == "single":
            # the warm-up draws this run's figures from the exact tables first, before the check
            # samples. Only in a single run, where a core would idle: a portfolio's workers keep
            # both busy, and drawing beside the sampling there cost ~6 % of the run's time (12
            # pools, --jobs 2, interleaved runs); their kernel warms up once, on the canned run.
            kernel.warm_up(directory if written is not None else None)
        jobs = default_fit_jobs(pool) if ctx.fit_jobs is None else max(1, ctx.fit_jobs)
        # cores the fit processes leave idle split a fit's chains (by default only: --fit-jobs 1
        # samples in one process)
        chain_jobs = default_chain_jobs(pool, jobs) if ctx.fit_jobs is None else 1
        if in_task_worker():
            jobs = chain_jobs = 1  # a pool running in a worker samples its fits in that process
        results = sample_fits(pool, lambda i, r: progress.fit(i, checked, r), jobs=jobs, chain_jobs=chain_jobs,
                              close_fds=ctx.close_fds, say=progress.say,
                              progressbar=not ctx.quiet and jobs == 1 and sys.stderr.isatty())
        raise_if_received()  # a signal PyMC or a worker pool swallowed (issue 16)
        sampled = {r.fit.name: r for r in results}
        _diagnostics(pool, results, book, directory)
        try:
            if early_error is not None:
                raise early_error
            t0 = time.perf_counter()
            headline = write_numbers(pool, sampled, book, directory, written)
            progress.say(f"exact numbers … {early_seconds + time.perf_counter() - t0:.1f} s")
            main = sampled.get("main")
            if main is not None and main.ok and main.idata is not None:
                _posterior_netcdf(main, pool, ctx.plan_hash, directory / "posterior.nc")
        except Exception as exc:  # noqa: BLE001 - recorded as a failed run, artefacts so far kept
            raise_if_received()
            if environment_message(exc) is not None:
                raise  # disk full, permissions, ...: the user's to fix (exit 2), not a failed run
            book.add("artefact_failed", f"writing the results failed: {type(exc).__name__}: {exc}")

    def status(finished: str | None) -> RunStatus:
        return RunStatus(
            status=book.status, reportable=book.reportable, reasons=book.reasons, exit_code=book.exit_code,
            plan_hash=ctx.plan_hash, project_name=ctx.project_name, layout=ctx.layout, pool=pool.name,
            pool_hash=pool.pool_hash, engine=None if headline is None else pool.reporting.summaries,
            readiness=pool.readiness.readiness,
            allow_stale=ctx.allow_stale, stale_sources=list(ctx.stale_sources), started_at=started,
            finished_at=finished, package_version=ctx.package_version, versions=versions(), headline=headline)

    status_path = directory / "run_status.json"
    finished = now()  # before the reports, so that they can show it
    status_path.write_text(status(finished).text(), encoding="utf-8")
    if ctx.report:
        # a single run's process draws the notebook's last figures meanwhile (report/plots/aside.py);
        # a portfolio's workers keep both cores busy
        for warning in _reports(directory, progress, kernel, draw_aside=ctx.layout == "single"):
            book.add("report_warning", warning)
    status_path.write_text(status(finished).text(), encoding="utf-8")
    return PoolOutcome(name=pool.name, status=book.status, exit_code=book.exit_code, reportable=book.reportable,
                       reasons=book.reasons, pool_hash=pool.pool_hash, headline=headline)


def _reports(directory: Path, progress: Progress, kernel: Any = None, draw_aside: bool = False) -> list[str]:
    """Markdown, notebook and HTML reports; returns warnings (a report failure does not fail the run).

    An interrupt is never a report failure: Interrupted (a BaseException) is not caught here, and
    a signal whose exception a library swallowed or replaced (nbclient's asyncio loop) is raised
    again from its record (issue 16).
    """
    t0 = time.perf_counter()
    try:
        from ..report import write_reports

        warnings = write_reports(directory, quiet=True, kernel=kernel, draw_aside=draw_aside)
    except Exception as exc:  # noqa: BLE001 - the run's numbers stand without the report
        raise_if_received()
        warnings = [f"report generation failed: {type(exc).__name__}: {exc}"]
    raise_if_received()
    progress.say(f"report … {time.perf_counter() - t0:.1f} s")
    return warnings
