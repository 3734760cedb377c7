"""Execute a frozen plan into a run directory (SPEC §5, §6, §7).

Reads nothing but the plan. Every fit of the sensitivity grid reuses one compiled model per tau
family; every fit is cross-checked against the exact posterior.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ..canonical import pretty_dumps
from ..errors import PlanError
from ..plan import Plan, load_plan, write_plan
from . import tables
from .csvio import write_table
from .fits import FitResult, default_fit_jobs, sample_fits
from .rundir import RunDirectory
from .status import StatusBook

VERSIONED = ("python", "marketbayesmeta", "pymc", "pytensor", "arviz", "numpy", "scipy", "pandas", "xarray",
             "h5netcdf", "nutpie")


@dataclass
class RunResult:
    """What a run produced: status, exit code, reportability and where it is."""

    status: str
    exit_code: int
    reportable: bool
    reasons: list[dict[str, str]]
    run_dir: Path
    plan_hash: str


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED[1:]:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(path: Path) -> str:
    from ..audit.manifest import hash_stream

    with path.open("rb") as f:
        return hash_stream(f)[0]


def stale_sources(plan: Plan) -> list[str]:
    """Names of sources that still exist at their recorded location with different bytes."""
    if plan.locations is None:
        return []
    stale = []
    for key, where in (("config", plan.locations.config), ("tracker", plan.locations.tracker)):
        p = Path(where)
        if p.is_file() and _sha256(p) != plan.sources[key].sha256:
            stale.append(f"{key} {p}")
    return stale


class _Progress:
    def __init__(self, quiet: bool, total: int):
        self.quiet, self.total = quiet, total

    def fit(self, i: int, name: str, seconds: float, note: str = "") -> None:
        if not self.quiet:
            print(f"fit {i}/{self.total} {name} … {seconds:.1f} s{note}", file=sys.stderr, flush=True)

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


def _posterior_netcdf(res: FitResult, plan: Plan, path: Path) -> None:
    import arviz as az
    import xarray as xr

    d = res.draws
    chain = np.arange(d.mu.shape[0])
    draw = np.arange(d.mu.shape[1])
    coords = {"chain": chain, "draw": draw, "study": np.array(res.ids, dtype=object)}
    posterior = xr.Dataset({
        "mu": (("chain", "draw"), d.mu), "tau": (("chain", "draw"), d.tau),
        "theta": (("chain", "draw", "study"), d.theta), "future_true_effect": (("chain", "draw"), d.future),
    }, coords=coords, attrs={"fit": res.fit.name, "seed": res.fit.seed, "plan_hash": plan.plan_hash,
                             "scale": plan.scale})
    p = res.fit.priors
    idata = az.InferenceData(
        posterior=posterior, sample_stats=res.idata.sample_stats,
        observed_data=xr.Dataset({"y": (("study",), res.y)}, coords={"study": coords["study"]}),
        constant_data=xr.Dataset({"se": (("study",), res.se), "mu_mean": p.mu_mean, "mu_sd": p.mu_sd,
                                  "tau_scale": p.tau_scale}, coords={"study": coords["study"]},
                                 attrs={"tau_family": p.tau_family}))
    idata.to_netcdf(str(path), engine="h5netcdf")


def _blockers(plan: Plan, book: StatusBook) -> None:
    rv = plan.readiness
    n = rv.included + rv.scenario
    if n == 0:
        book.add("nothing_poolable", f"no tracker row enters the pool {rv.pool}: nothing to pool")
    elif rv.readiness == "not_recommended":
        book.add("readiness_not_recommended", f"readiness not_recommended: {rv.why}")
    for d in plan.duplicates:
        if d.kind == "blocking":
            book.add("blocking_duplicates", f"blocking duplicate: {d.message}")


def _warnings_from_plan(plan: Plan, book: StatusBook) -> None:
    rv = plan.readiness
    if rv.readiness == "directional":
        book.add("readiness_directional", f"readiness directional: {rv.why}")
    if rv.scenario:
        ids = ", ".join(r.study_id for r in plan.rows if r.decision == "scenario")
        book.add("scenario_uncertainty", f"{rv.scenario} pooled row(s) rely on scenario uncertainty, not on "
                                         f"source uncertainty: {ids}")
    for d in plan.duplicates:
        if d.kind == "possible":
            book.add("possible_duplicates", f"possible duplicate: {d.message}")
    if not plan.sensitivity.prior:
        book.add("prior_sensitivity_not_run", "prior sensitivity is disabled, so prior dependence cannot be "
                                              "ruled out")


def _sensitivity(plan: Plan, results: dict[str, FitResult], book: StatusBook,
                 staging: Path) -> None:
    from .posterior import summarize
    from .sensitivity import compare, fit_stats

    rule = plan.sensitivity.materiality
    interval = plan.reporting_interval

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

    if plan.sensitivity.prior:
        ref = plan.sensitivity.reference_prior
        rows, material = compare_grid("prior", results.get("main" if ref == "main" else f"prior:{ref}"),
                                      lambda r: {"spec": r.fit.label, **r.fit.priors.model_dump()})
        write_table(staging, "prior_sensitivity.csv", rows)
        if material:
            book.add("material_prior_dependence", "material prior dependence (" + rule.rule + "): "
                     + "; ".join(material))
    if plan.sensitivity.uncertainty_status == "applicable":
        rows, material = compare_grid("uncertainty", results.get("main"), lambda r: {
            "level": r.fit.label, "scenario_se": float(plan.scenario_se[r.fit.label].value)})
        write_table(staging, "uncertainty_sensitivity.csv", rows)
        if material:
            book.add("material_uncertainty_dependence", "the result depends materially on the scenario "
                     "uncertainty level: " + "; ".join(material))
    if plan.sensitivity.leave_one_out:
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


def _headline(plan: Plan, mu: dict[str, Any], tau: dict[str, Any], future: dict[str, Any]) -> dict[str, Any]:
    """run_status.json's headline, taken from the pooled_summary and future_true_effect rows."""
    h: dict[str, Any] = {"scale": plan.scale, "interval_level": plan.reporting_interval}
    h.update({f"mu_{k}": mu[k] for k in ("mean", "sd", "median", "lower", "upper")})
    h["prob_positive"] = mu["prob_positive"]
    h.update({f"tau_{k}": tau[k] for k in ("mean", "median", "lower", "upper")})
    h.update({f"future_{k}": future[k] for k in ("mean", "lower", "upper")})
    if plan.scale == "log_relative":
        h.update({"mu_mean_pct": mu["mean_pct"], "mu_lower_pct": mu["lower_pct"], "mu_upper_pct": mu["upper_pct"],
                  "future_lower_pct": future["lower_pct"], "future_upper_pct": future["upper_pct"]})
    return h


def _write_results(plan: Plan, results: list[FitResult], book: StatusBook, staging: Path) -> dict[str, Any] | None:
    """Write the sampling artefacts; returns the headline (None without a main posterior)."""
    from .prior_checks import prior_diagnostic_rows

    by_name = {r.fit.name: r for r in results}
    main = by_name["main"]
    log_scale = plan.scale == "log_relative"
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
        if plan.thresholds.on_failure == "block":
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
    iv = plan.reporting_interval
    d = main.draws
    mu_row, tau_row = tables.pooled_rows(d, iv, log_scale)
    future_row = tables.summary_row("future_true_effect", d.future, iv, log_scale)
    write_table(staging, "pooled_summary.csv", [mu_row, tau_row])
    write_table(staging, "future_true_effect_summary.csv", [future_row])
    write_table(staging, "study_effects.csv",
              tables.study_rows(plan, main.ids, main.y, main.se, d, iv, log_scale))
    ppc = tables.ppc_rows(main.ids, main.y, main.se, d, iv)
    write_table(staging, "ppc.csv", ppc)
    flagged = [r["study_id"] for r in ppc if r["flag"]]
    if flagged:
        book.add("ppc_flags", f"{len(flagged)} study(ies) outside their in-sample {100 * iv:g} % posterior "
                              f"predictive interval: {', '.join(flagged)}")
    _sensitivity(plan, by_name, book, staging)
    _posterior_netcdf(main, plan, staging / "posterior.nc")
    return _headline(plan, mu_row, tau_row, future_row)


def execute_plan(plan: Plan | str | Path, out_dir: str | Path | None = None, *, allow_stale: bool = False,
                 quiet: bool = False, report: bool = True, fit_jobs: int | None = None,
                 fail_fit: str | None = None,
                 on_staging: Callable[[Path], None] | None = None) -> RunResult:
    """Run ``plan`` (a Plan or a plan.json path) into ``out_dir`` (default: the plan's output directory).

    Raises :class:`~marketbayesmeta.errors.InputError` (exit 2) for an edited or stale plan, a
    locked or unwritable output directory. Otherwise returns a :class:`RunResult` whatever the status.
    ``fit_jobs`` worker processes sample the grid (default: one per core, at most 4; the draws do
    not depend on it). ``fail_fit`` forces one fit to fail (tests); ``on_staging`` is called with
    the staging directory.
    """
    source = "the plan"
    if not isinstance(plan, Plan):
        source = str(plan)
        plan = load_plan(plan)
    elif plan.plan_hash != plan.compute_hash():
        raise PlanError("the plan's content does not match its plan_hash: it was changed after compile")
    stale = stale_sources(plan)
    if stale and not allow_stale:
        raise PlanError(f"{source} is stale: " + "; ".join(stale) + " changed since the plan was compiled. "
                        "Recompile it, or pass --allow-stale to run the frozen plan anyway (recorded).")
    if out_dir is None:
        if plan.locations is None:
            raise PlanError("the plan records no output directory; pass --out DIR")
        out_dir = plan.locations.output_directory
    started = _now()
    book = StatusBook()
    if stale:
        book.add("stale_plan", "run with --allow-stale although " + "; ".join(stale) + " changed since compile")
    progress = _Progress(quiet, len(plan.fits))
    with RunDirectory(Path(out_dir)) as rd:
        staging = rd.start()
        if on_staging is not None:
            on_staging(staging)
        write_plan(plan, staging / "plan.json")
        write_table(staging, "effect_preparation.csv",
                  tables.effect_preparation_rows(plan))
        write_table(staging, "readiness.csv", tables.readiness_rows(plan))
        _blockers(plan, book)
        _warnings_from_plan(plan, book)
        headline = None
        if book.status != "blocked":
            progress.say(f"sampling {len(plan.fits)} fit(s) of {plan.project_name} "
                         f"({plan.sampler.chains} chains × {plan.sampler.draws} draws)")
            jobs = default_fit_jobs(plan) if fit_jobs is None else max(1, fit_jobs)
            results = sample_fits(plan, lambda i, r: progress.fit(i, r.fit.name, r.seconds, r.note()),
                                  jobs=jobs, fail_fit=fail_fit, close_fds=rd.held_fds(), say=progress.say,
                                  progressbar=not quiet and jobs == 1 and sys.stderr.isatty())
            try:
                headline = _write_results(plan, results, book, staging)
            except Exception as exc:  # noqa: BLE001 - recorded as a failed run, artefacts so far kept
                book.add("artefact_failed", f"writing the results failed: {type(exc).__name__}: {exc}")
        def status_doc(finished: str | None) -> dict[str, Any]:
            return {
                "status": book.status, "reportable": book.reportable, "reasons": book.reasons,
                "exit_code": book.exit_code, "plan_hash": plan.plan_hash, "project_name": plan.project_name,
                "readiness": plan.readiness.readiness, "allow_stale": allow_stale, "stale_sources": stale,
                "started_at": started, "finished_at": finished, "package_version": plan.package_version,
                "versions": versions(), "headline": headline,
            }

        status_path = staging / "run_status.json"
        finished = _now()  # before the reports, so that they can show it
        status_path.write_text(pretty_dumps(status_doc(finished)), encoding="utf-8")
        if report:
            for warning in _reports(staging, progress):
                book.add("report_warning", warning)
        status_path.write_text(pretty_dumps(status_doc(finished)), encoding="utf-8")
        from ..audit.manifest import write_manifest

        write_manifest(staging, plan.plan_hash)
        run_dir = rd.commit()
    return RunResult(status=book.status, exit_code=book.exit_code, reportable=book.reportable,
                     reasons=book.reasons, run_dir=run_dir, plan_hash=plan.plan_hash)


def _reports(staging: Path, progress: _Progress) -> list[str]:
    """Markdown, notebook and HTML reports; returns warnings (a report failure does not fail the run)."""
    t0 = time.perf_counter()
    try:
        from ..report import write_reports

        warnings = write_reports(staging, quiet=True)
    except Exception as exc:  # noqa: BLE001 - the run's numbers stand without the report
        warnings = [f"report generation failed: {type(exc).__name__}: {exc}"]
    progress.say(f"report … {time.perf_counter() - t0:.1f} s")
    return warnings
