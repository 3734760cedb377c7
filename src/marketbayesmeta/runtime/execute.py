"""Execute a frozen plan into a run directory (SPEC §5, §6, §7). Reads nothing but the plan.

The steps, in order:

1. integrity: the plan's hash (an edited plan is refused) and staleness of its recorded sources;
2. the run directory: lock, staging directory beside the target (:mod:`.rundir`);
3. plan.json into staging;
4. the pools (:mod:`.pool_run`): a single-pool plan writes its files at the staging root; a
   portfolio writes ``pools/<pool>/`` per pool (see :mod:`.portfolio`);
5. manifest.json over everything, then the staging directory replaces the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..canonical import hash_file
from ..errors import PlanError
from ..plan import Plan, load_plan, write_plan
from .pool_run import Progress, RunContext, now, run_pool
from .portfolio import portfolio_status, run_portfolio
from .rundir import RunDirectory


@dataclass
class RunResult:
    """What a run produced: status, exit code, reportability and where it is."""

    status: str
    exit_code: int
    reportable: bool
    reasons: list[dict[str, str]]
    run_dir: Path
    plan_hash: str


def missing_sources(plan: Plan) -> list[str]:
    """Recorded sources (config, tracker) that no longer exist at their recorded location: the
    staleness check cannot be made (``locations`` are not covered by plan_hash)."""
    if plan.locations is None:
        return []
    return [f"{key} {where}" for key, where in (("config", plan.locations.config),
                                                ("tracker", plan.locations.tracker))
            if not Path(where).is_file()]


def _recorded_output(plan: Plan, plan_file: Path) -> str:
    """The plan's recorded output directory, which must lie in the plan file's directory (or be
    it): ``locations`` are outside plan_hash, so an edited one must not send a run elsewhere."""
    if plan.locations is None:
        raise PlanError("the plan records no output directory; pass --out DIR")
    out = Path(plan.locations.output_directory).resolve()
    home = plan_file.resolve().parent
    if out != home and home not in out.parents:
        raise PlanError(f"{plan_file}: the plan's recorded output directory {out} lies outside the "
                        f"plan's own directory ({home}); locations are not covered by plan_hash, so "
                        f"execute writes there only when asked: pass --out {out}")
    return str(out)


def stale_sources(plan: Plan) -> list[str]:
    """Names of sources that still exist at their recorded location with different bytes."""
    if plan.locations is None:
        return []
    stale = []
    for key, where in (("config", plan.locations.config), ("tracker", plan.locations.tracker)):
        p = Path(where)
        if p.is_file() and hash_file(p)[0] != plan.sources[key].sha256:
            stale.append(f"{key} {p}")
    return stale


def _checked(plan: Plan | str | Path) -> tuple[Plan, str]:
    if not isinstance(plan, Plan):
        return load_plan(plan), str(plan)
    if plan.plan_hash != plan.compute_hash():
        raise PlanError("the plan's content does not match its plan_hash: it was changed after compile")
    return plan, "the plan"


def execute_plan(plan: Plan | str | Path, out_dir: str | Path | None = None, *, allow_stale: bool = False,
                 quiet: bool = False, report: bool = True, fit_jobs: int | None = None, jobs: int = 1,
                 dask_address: str | None = None) -> RunResult:
    """Run ``plan`` (a Plan or a plan.json path) into ``out_dir`` (default: the plan's output directory).

    Raises :class:`~marketbayesmeta.errors.InputError` (exit 2) for an edited or stale plan, a
    locked or unwritable output directory. Otherwise returns a :class:`RunResult` whatever the status.
    ``fit_jobs`` worker processes sample a pool's fits (default: one per core, at most 4; the draws do
    not depend on it). ``report=False`` skips the notebook and HTML reports (faster; for scripts).
    A portfolio's pools run in ``jobs`` local worker processes, or on the Dask cluster at
    ``dask_address``; unchanged pools of the previous run in the target directory are reused.
    """
    plan_file = None if isinstance(plan, Plan) else Path(plan)
    plan, source = _checked(plan)
    stale = stale_sources(plan)
    if stale and not allow_stale:
        raise PlanError(f"{source} is stale: " + "; ".join(stale) + " changed since the plan was compiled. "
                        "Recompile it, or pass --allow-stale to run the frozen plan anyway (recorded).")
    if out_dir is None:
        if plan.locations is None:
            raise PlanError("the plan records no output directory; pass --out DIR")
        out_dir = (plan.locations.output_directory if plan_file is None
                   else _recorded_output(plan, plan_file))
    reasons: tuple[tuple[str, str], ...] = ()
    if stale:
        reasons = (("stale_plan", "run with --allow-stale although " + "; ".join(stale) + " changed since compile"),)
    missing = missing_sources(plan)
    if missing:
        reasons += (("missing_source", "; ".join(missing) + " recorded in the plan no longer exist(s) "
                     "there: whether the plan is stale cannot be checked"),)
    with RunDirectory(Path(out_dir)) as rd:
        staging = rd.start()
        ctx = RunContext.of(plan, allow_stale=allow_stale, stale_sources=tuple(stale), plan_reasons=reasons,
                            quiet=quiet, report=report, fit_jobs=fit_jobs, close_fds=rd.held_fds())
        write_plan(plan, staging / "plan.json")
        if plan.layout == "single":
            outcome = run_pool(plan.pool(), staging, ctx)
            status, exit_code, reportable, reasons = (outcome.status, outcome.exit_code, outcome.reportable,
                                                      outcome.reasons)
        else:
            started = now()
            previous = rd.target if (rd.target / "manifest.json").is_file() else None
            outcomes = run_portfolio(plan, staging, ctx, previous=previous, jobs=jobs, dask_address=dask_address)
            doc = portfolio_status(plan, outcomes, ctx, started, now())
            (staging / "run_status.json").write_text(doc.text(), encoding="utf-8")
            if report:
                _portfolio_report(staging, ctx)
            status, exit_code, reportable = doc.status, doc.exit_code, doc.reportable
            reasons = [r.model_dump() for r in doc.reasons]
        from ..audit.manifest import write_manifest

        write_manifest(staging, plan.plan_hash)
        run_dir = rd.commit()
    return RunResult(status=status, exit_code=exit_code, reportable=reportable, reasons=reasons, run_dir=run_dir,
                     plan_hash=plan.plan_hash)


def _portfolio_report(staging: Path, ctx: RunContext) -> None:
    """portfolio_report.html (a failure to draw it is said on stderr; the pools' results stand)."""
    from ..report import write_portfolio_report

    try:
        for warning in write_portfolio_report(staging):
            Progress(ctx.quiet).say(f"portfolio report: {warning}")
    except Exception as exc:  # noqa: BLE001 - the pools' numbers stand without the overview page
        Progress(ctx.quiet).say(f"portfolio report failed: {type(exc).__name__}: {exc}")
