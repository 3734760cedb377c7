"""Execute one pool of a plan into a directory: readiness blockers, the fits, every artefact, the
reports and run_status.json. The steps, in order:

1. effect_preparation.csv and readiness.csv (always);
2. blockers from the plan (readiness, blocking duplicates, nothing poolable): a blocked pool stops
   here;
3. sample the fits (:mod:`.fits`) and write the numbers, diagnostics and sensitivity tables;
4. posterior.nc of the main fit; run_status.json; the reports (:mod:`marketbayesmeta.report`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ..plan import Plan, Pool
from ..run_status import RunStatus
from . import tables
from .csvio import write_table
from .fits import FitResult, default_fit_jobs, sample_fits
from .status import StatusBook

VERSIONED = ("python", "marketbayesmeta", "pymc", "pytensor", "arviz", "numpy", "scipy", "pandas", "xarray",
             "h5netcdf", "nutpie")


def versions() -> dict[str, str]:
    import platform

    out = {"python": platform.python_version()}
    for name in VERSIONED[1:]:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


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
    idata = az.InferenceData(
        posterior=posterior, sample_stats=res.idata.sample_stats,
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


def _sensitivity(pool: Pool, results: dict[str, FitResult], book: StatusBook,
                 staging: Path) -> None:
    from .posterior import summarize
    from .sensitivity import compare, fit_stats

    rule = pool.sensitivity.materiality
    interval = pool.reporting.interval

    def compare_grid(kind: str, ref: FitResult | None,
                     describe: Callable[[FitResult], dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """Rows of the ``kind`` fits against ``ref`` and the material findings among them."""
        if ref is None or not ref.ok:
            return [], []
        ref_stats = fit_stats(summarize(ref.draws.mu, interval), ref.passes)
        rows, material = [], []
        for res in results.values():
            if res.fit.kind == kind and res.ok:
                row = compare(fit_stats(summarize(res.draws.mu, interval), res.passes), ref_stats, rule)
                rows.append({"fit": res.fit.name, **describe(res), **row})
                if row["material"]:
                    material.append(f"{res.fit.label}: {row['material_reasons']}")
        return rows, material

    if pool.sensitivity.prior:
        ref = pool.sensitivity.reference_prior
        rows, material = compare_grid("prior", results.get("main" if ref == "main" else f"prior:{ref}"),
                                      lambda r: {"spec": r.fit.label, **r.fit.priors.model_dump()})
        write_table(staging, "prior_sensitivity.csv", rows)
        if material:
            book.add("material_prior_dependence", "material prior dependence (" + rule.rule + "): "
                     + "; ".join(material))
    if pool.sensitivity.uncertainty_status == "applicable":
        rows, material = compare_grid("uncertainty", results.get("main"), lambda r: {
            "level": r.fit.label, "scenario_se": float(pool.scenario_se[r.fit.label].value)})
        write_table(staging, "uncertainty_sensitivity.csv", rows)
        if material:
            book.add("material_uncertainty_dependence", "the result depends materially on the scenario "
                     "uncertainty level: " + "; ".join(material))
    if pool.sensitivity.leave_one_out:
        main = results.get("main")
        rows = []
        for res in results.values():
            if res.fit.kind != "leave_one_out" or not res.ok or main is None or not main.ok:
                continue
            m = summarize(res.draws.mu, interval)
            t = float(res.draws.tau.mean())
            rows.append({"left_out": res.fit.leave_out, "mu_mean": m["mean"], "mu_lower": m["lower"],
                         "mu_upper": m["upper"], "tau_mean": t,
                         "delta_mu_mean": m["mean"] - float(main.draws.mu.mean()),
                         "delta_tau_mean": t - float(main.draws.tau.mean()), "diagnostics_pass": res.passes})
        write_table(staging, "influence.csv", rows)


def _headline(pool: Pool, mu: dict[str, Any], tau: dict[str, Any], future: dict[str, Any]) -> dict[str, Any]:
    """run_status.json's headline, taken from the pooled_summary and future_true_effect rows."""
    h: dict[str, Any] = {"scale": pool.scale, "interval_level": pool.reporting.interval}
    h.update({f"mu_{k}": mu[k] for k in ("mean", "sd", "median", "lower", "upper")})
    h["prob_positive"] = mu["prob_positive"]
    h.update({f"tau_{k}": tau[k] for k in ("mean", "median", "lower", "upper")})
    h.update({f"future_{k}": future[k] for k in ("mean", "lower", "upper")})
    if pool.scale == "log_relative":
        h.update({"mu_mean_pct": mu["mean_pct"], "mu_lower_pct": mu["lower_pct"], "mu_upper_pct": mu["upper_pct"],
                  "future_lower_pct": future["lower_pct"], "future_upper_pct": future["upper_pct"]})
    return h


def _write_results(pool: Pool, plan_hash: str, results: list[FitResult], book: StatusBook,
                   staging: Path) -> dict[str, Any] | None:
    """Write the sampling artefacts; returns the headline (None without a main posterior)."""
    from .prior_checks import prior_diagnostic_rows

    by_name = {r.fit.name: r for r in results}
    main = by_name["main"]
    log_scale = pool.scale == "log_relative"
    diag_rows = []
    for res in results:
        diag_rows += res.diagnostics
        diag_rows.append({"fit": res.fit.name, "parameter": "(fit)", "check": "all", "value": None,
                          "threshold": None, "pass": res.passes})
    write_table(staging, "diagnostics.csv", diag_rows)
    failed = [r for r in results if not r.ok]
    for r in failed:
        book.add("sampling_failed", f"fit {r.fit.name} failed: {r.error}")
    not_passing = [r for r in results if r.ok and not r.passes]
    if not_passing:
        detail = "; ".join(
            f"{r.fit.name}: " + ", ".join(sorted({f"{d['parameter']} {d['check']}={d['value']:.4g} "
                                                   f"(threshold {d['threshold']:g})"
                                                   for d in r.diagnostics if not d["pass"]}))
            for r in not_passing)
        if pool.thresholds.on_failure == "block":
            book.add("diagnostics_failed", f"sampler diagnostics or the exact cross-check failed: {detail}")
        else:
            book.add("diagnostics_warning", "sampler diagnostics or the exact cross-check failed (downgraded to a "
                                            f"warning by diagnostics.on_failure: warn): {detail}")
    if not main.ok:
        return None
    prior_rows = prior_diagnostic_rows(main.fit.priors, main.y, main.se, main.fit.seed)
    write_table(staging, "prior_diagnostics.csv", prior_rows)
    if any(r["warning"] for r in prior_rows):
        book.add("prior_diagnostics_warning", "prior diagnostics warn: " +
                 "; ".join(r["message"] for r in prior_rows if r["warning"]))
    iv = pool.reporting.interval
    d = main.draws
    mu_row, tau_row = tables.pooled_rows(d, iv, log_scale)
    future_row = tables.summary_row("future_true_effect", d.future, iv, log_scale)
    write_table(staging, "pooled_summary.csv", [mu_row, tau_row])
    write_table(staging, "future_true_effect_summary.csv", [future_row])
    write_table(staging, "study_effects.csv",
              tables.study_rows(pool, main.ids, main.y, main.se, d, iv, log_scale))
    ppc = tables.ppc_rows(main.ids, main.y, main.se, d, iv)
    write_table(staging, "ppc.csv", ppc)
    flagged = [r["study_id"] for r in ppc if r["flag"]]
    if flagged:
        book.add("ppc_flags", f"{len(flagged)} study(ies) outside their in-sample {100 * iv:g} % posterior "
                              f"predictive interval: {', '.join(flagged)}")
    _sensitivity(pool, by_name, book, staging)
    _posterior_netcdf(main, pool, plan_hash, staging / "posterior.nc")
    return _headline(pool, mu_row, tau_row, future_row)


def run_pool(pool: Pool, directory: Path, ctx: RunContext) -> PoolOutcome:
    """Execute ``pool`` into ``directory`` (which exists and is empty); returns its outcome."""
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
        progress.say(f"sampling {len(pool.fits)} fit(s) of {pool.name} "
                     f"({pool.sampler.chains} chains × {pool.sampler.draws} draws)")
        jobs = default_fit_jobs(pool) if ctx.fit_jobs is None else max(1, ctx.fit_jobs)
        results = sample_fits(pool, lambda i, r: progress.fit(i, len(pool.fits), r), jobs=jobs,
                              close_fds=ctx.close_fds, say=progress.say,
                              progressbar=not ctx.quiet and jobs == 1 and sys.stderr.isatty())
        try:
            headline = _write_results(pool, ctx.plan_hash, results, book, directory)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed run, artefacts so far kept
            book.add("artefact_failed", f"writing the results failed: {type(exc).__name__}: {exc}")

    def status(finished: str | None) -> RunStatus:
        return RunStatus(
            status=book.status, reportable=book.reportable, reasons=book.reasons, exit_code=book.exit_code,
            plan_hash=ctx.plan_hash, project_name=ctx.project_name, layout=ctx.layout, pool=pool.name,
            pool_hash=pool.pool_hash, engine="mcmc", readiness=pool.readiness.readiness,
            allow_stale=ctx.allow_stale, stale_sources=list(ctx.stale_sources), started_at=started,
            finished_at=finished, package_version=ctx.package_version, versions=versions(), headline=headline)

    status_path = directory / "run_status.json"
    status_path.write_text(status(None).text(), encoding="utf-8")
    if ctx.report:
        for warning in _reports(directory, progress):
            book.add("report_warning", warning)
    status_path.write_text(status(now()).text(), encoding="utf-8")
    return PoolOutcome(name=pool.name, status=book.status, exit_code=book.exit_code, reportable=book.reportable,
                       reasons=book.reasons, pool_hash=pool.pool_hash, headline=headline)


def _reports(directory: Path, progress: Progress) -> list[str]:
    """Markdown, notebook and HTML reports; returns warnings (a report failure does not fail the run)."""
    t0 = time.perf_counter()
    try:
        from .report import write_reports

        warnings = write_reports(directory, quiet=True)
    except Exception as exc:  # noqa: BLE001 - the run's numbers stand without the report
        warnings = [f"report generation failed: {type(exc).__name__}: {exc}"]
    progress.say(f"report … {time.perf_counter() - t0:.1f} s")
    return warnings
