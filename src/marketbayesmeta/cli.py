"""Command line: a thin layer over :mod:`marketbayesmeta.api`. No PyMC import unless sampling."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__
from .collector import tune_collector
from .display import for_terminal, visible
from .errors import InputError, MarketBayesMetaError, environment_message
from .interrupts import Interrupted, handled

EPILOG = """exit codes: 0 success (completed / completed_with_warnings, no difference, verified),
1 diff found differences or verify found a mismatch, 2 invalid input, 3 run blocked, 4 run failed"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default exits 2 too; keep our wording
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


FIT_JOBS_HELP = ("worker processes for the fits of one plan (default: one per core, at most 4, and a fit alone "
                 "on two or more cores splits its chains between them; 1: everything in one process; results "
                 "do not depend on it)")


def _out(text: str) -> None:
    print(for_terminal(text), flush=True)  # user text inside: no escape sequences reach the terminal


def _err(text: str) -> None:
    print(for_terminal(text), file=sys.stderr, flush=True)


# -- commands ------------------------------------------------------------------------------------

def cmd_check_config(args: argparse.Namespace) -> int:
    from .api import compile_config
    from .compiler.summary import render_verdicts

    plan = compile_config(args.config)  # in memory: nothing is written
    tracker = plan.locations.tracker if plan.locations else "(tracker)"
    rows = len(plan.pools[0].rows) if plan.layout == "single" else None
    _out(f"{args.config}: config valid; tracker {tracker}: "
         + (f"{rows} row(s) valid" if rows is not None else "valid")
         + f"; outputs -> {plan.locations.output_directory if plan.locations else '(none)'}")
    text, blocked = render_verdicts(plan)
    _out(text)
    return 3 if blocked else 0


def _compile_one(config: str, output: str | None, quiet: bool) -> tuple[Path, object]:
    from .api import compile_config

    plan = compile_config(config)
    return _write_compiled(plan, output, quiet), plan


def default_plan_path(output_directory: str | Path) -> Path:
    """Where compile writes a plan by default: ``<outputs.directory>.plan.json``, a file beside
    the run directory (never inside it, where it would change a completed run)."""
    directory = Path(output_directory)
    return directory.with_name(directory.name + ".plan.json")


def _write_compiled(plan: object, output: str | None, quiet: bool) -> Path:
    from .compiler.summary import render_summary
    from .plan import write_plan
    from .runtime.rundir import is_run_directory

    target = Path(output) if output else default_plan_path(plan.locations.output_directory)
    if target.is_dir():
        target = target / "plan.json"
    if is_run_directory(target.parent):
        raise InputError(f"{target}: is inside a completed run directory ({target.parent}); writing "
                         "there would change that run (verify and archive would then fail). "
                         "Choose a plan path outside it")
    try:
        write_plan(plan, target)
    except OSError as exc:
        blocker = next((p for p in target.parents if p.exists()), None)
        why = (f"{blocker} is a file, not a directory" if blocker is not None and not blocker.is_dir()
               else exc.strerror)
        raise InputError(f"{target}: cannot write the plan ({why})") from None
    if not quiet:
        _out(render_summary(plan))
    _out(f"wrote {target}")
    return target


class _CompileOne:
    def __init__(self, output: str | None, quiet: bool):
        self.output, self.quiet = output, quiet

    def __call__(self, config: str) -> int:
        _compile_one(config, self.output, self.quiet)
        return 0


def cmd_compile(args: argparse.Namespace) -> int:
    if args.output and len(args.configs) > 1:
        raise InputError("-o/--output takes one config; with several, each plan goes to its outputs.directory")
    return _parallel(args.configs, args.jobs, _CompileOne(args.output, args.quiet))


def _execute_one(plan_path: str, out: str | None, allow_stale: bool, quiet: bool,
                 fit_jobs: int | None = None, jobs: int = 1, dask: str | None = None) -> int:
    from .api import execute_plan

    result = execute_plan(plan_path, out, allow_stale=allow_stale, quiet=quiet, fit_jobs=fit_jobs, jobs=jobs,
                          dask_address=dask)
    _report_result(result)
    return result.exit_code


def _report_result(result: object) -> None:
    r = result  # RunResult
    _out(f"{r.status} (exit {r.exit_code}), reportable: {str(r.reportable).lower()} -> "
         f"{visible(r.run_dir)}")
    for reason in r.reasons:
        _out(f"  - [{reason['code']}] {visible(reason['message'])}")


def _parallel(items: Sequence[str], jobs: int, fn: Callable[[str], int]) -> int:
    """Run ``fn`` over items, ``jobs`` at a time in subprocess workers; the worst exit code wins."""
    if jobs <= 1 or len(items) <= 1:
        codes = []
        for item in items:
            try:
                codes.append(fn(item))
            except MarketBayesMetaError as exc:
                _err(exc.render())
                codes.append(exc.exit_code)
        return max(codes, default=0)
    from concurrent.futures import ProcessPoolExecutor

    codes = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for item, code in zip(items, pool.map(_worker, [(fn, i) for i in items]), strict=True):
            codes.append(code)
            if code not in (0,):
                _err(f"{item}: exit {code}")
    return max(codes, default=0)


def _worker(arg: tuple[Callable[[str], int], str]) -> int:
    fn, item = arg
    try:
        return fn(item)
    except MarketBayesMetaError as exc:
        _err(exc.render())
        return exc.exit_code


class _ExecuteOne:
    def __init__(self, out: str | None, allow_stale: bool, quiet: bool, fit_jobs: int | None):
        self.out, self.allow_stale, self.quiet, self.fit_jobs = out, allow_stale, quiet, fit_jobs

    def __call__(self, plan: str) -> int:
        return _execute_one(plan, self.out, self.allow_stale, self.quiet, self.fit_jobs)


def cmd_execute(args: argparse.Namespace) -> int:
    if args.out and len(args.plans) > 1:
        raise InputError("--out takes one plan; with several, each runs into its own output directory")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1 (got {args.jobs})")
    if len(args.plans) == 1:  # one plan: --jobs runs its pools in parallel (a portfolio)
        return _execute_one(args.plans[0], args.out, args.allow_stale, args.quiet, args.fit_jobs, args.jobs,
                            args.dask)
    if args.dask:
        raise InputError("--dask takes one plan (its pools run on the cluster)")
    return _parallel(args.plans, args.jobs, _ExecuteOne(args.out, args.allow_stale, args.quiet,
                                                        1 if args.jobs > 1 else args.fit_jobs))


def cmd_run(args: argparse.Namespace) -> int:
    from .api import compile_config, execute_plan

    # The plan is not written to <outputs.directory>/plan.json first: that is the previous run's
    # plan.json, and overwriting it would break that run's manifest before the new run is complete
    # (or for good, if the new run is interrupted or refused). The run directory gets plan.json.
    plan = compile_config(args.config)
    result = execute_plan(plan, args.out, allow_stale=False, quiet=args.quiet, fit_jobs=args.fit_jobs,
                          jobs=args.jobs, dask_address=args.dask)
    _report_result(result)
    return result.exit_code


def cmd_diff(args: argparse.Namespace) -> int:
    from .audit.diff import diff_plans, load_side

    result = diff_plans(load_side(args.a), load_side(args.b))
    if args.json:
        _out(json.dumps(result.to_json(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        _out(result.render())
    return 1 if result.has_differences else 0


def cmd_archive(args: argparse.Namespace) -> int:
    from .audit.archive import archive_run

    path = archive_run(Path(args.run_dir), Path(args.output) if args.output else None,
                       force=args.force)
    _out(f"wrote {path}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .audit.verify import verify_run

    result = verify_run(Path(args.path))
    _out(result.render())
    return 0 if result.ok else 1


def cmd_audit(args: argparse.Namespace) -> int:
    from .api import audit_tracker
    from .compiler.survey import render_survey

    report = audit_tracker(args.path)
    _out(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) if args.json else render_survey(report))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .schemas import schema_text

    sys.stdout.write(schema_text(args.which))
    return 0


# -- parser -----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="marketbayesmeta", description="Audit-oriented Bayesian random-effects meta-analysis of "
                "marketing measurement evidence: config -> plan.json -> run directory -> review bundle.",
                epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"marketbayesmeta {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("check-config", help="validate a config and its tracker; writes nothing")
    s.add_argument("config")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("compile", help="compile configs into frozen, hashed plan.json files")
    s.add_argument("configs", nargs="+", metavar="CONFIG")
    s.add_argument("-o", "--output", help="plan file (default <outputs.directory>.plan.json, beside "
                   "the run directory)")
    s.add_argument("-q", "--quiet", action="store_true", help="print only where the plan went")
    s.add_argument("--jobs", type=int, default=1, help="configs to compile at once")
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("execute", help="execute plans into run directories")
    s.add_argument("plans", nargs="+", metavar="PLAN")
    s.add_argument("--out", help="run directory (default: the plan's outputs.directory)")
    s.add_argument("--allow-stale", action="store_true", help="run even if the config or tracker changed "
                   "since compile (recorded in run_status.json; never reportable)")
    s.add_argument("--jobs", type=int, default=1, help="worker processes: for one plan, its pools run this many "
                   "at a time; for several plans, the plans do")
    s.add_argument("--dask", metavar="ADDRESS", help="run the plan's pools on an existing Dask distributed cluster "
                   "(e.g. tcp://scheduler:8786; needs the [dask] extra); same bytes as a local run")
    s.add_argument("--fit-jobs", type=int, default=None, metavar="N",
                   help=FIT_JOBS_HELP)
    s.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(func=cmd_execute)

    s = sub.add_parser("run", help="compile and execute one config")
    s.add_argument("config")
    s.add_argument("--jobs", type=int, default=1, help="pools to run at once (portfolio configs)")
    s.add_argument("--dask", metavar="ADDRESS", help="run the pools on an existing Dask distributed cluster")
    s.add_argument("--fit-jobs", type=int, default=None, metavar="N",
                   help=FIT_JOBS_HELP)
    s.add_argument("--out", help="run directory (default: outputs.directory)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("diff", help="compare two plans or run directories (exit 1 when they differ)")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("--json", action="store_true", help="machine-readable output (specs/diff.schema.json)")
    s.set_defaults(func=cmd_diff)

    s = sub.add_parser("archive", help="write a deterministic review bundle (.zip or .tar.gz) of a run")
    s.add_argument("run_dir")
    s.add_argument("-o", "--output", help="archive path (.zip, .tar.gz or .tgz; default <run_dir>.tar.gz)")
    s.add_argument("--force", action="store_true", help="replace an existing archive file")
    s.set_defaults(func=cmd_archive)

    s = sub.add_parser("verify", help="re-hash a run directory or archive against its manifest")
    s.add_argument("path", metavar="RUN_DIR_OR_ARCHIVE")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("audit", help="readiness and quality checks for every group in a tracker")
    s.add_argument("path", metavar="TRACKER_OR_CONFIG")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("schema", help="print the JSON Schema of the config")
    s.add_argument("which", nargs="?", default="config", choices=["config", "plan", "run_status"])
    s.set_defaults(func=cmd_schema)
    return p


def quiet_library_banners() -> None:
    """Library notices that are not about the user's run (ArviZ's daily FutureWarning banner) never
    reach the terminal: here and in worker processes (PYTHONWARNINGS is inherited)."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    if "ignore::FutureWarning:arviz" not in os.environ.get("PYTHONWARNINGS", ""):
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                                "ignore::FutureWarning:arviz"]))


def _dispatch(argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> int:
    quiet_library_banners()
    with handled():
        try:
            args = parser.parse_args(argv)
            return int(args.func(args))
        except MarketBayesMetaError as exc:
            _err(exc.render())
            return exc.exit_code
        except (KeyboardInterrupt, Interrupted) as exc:
            completed = getattr(exc, "completed", None)
            if completed is not None:  # the signal came while the finished run was swapped in
                _err(f"interrupted: the new run was already complete and is in {visible(completed)}")
            else:
                _err("interrupted: nothing was replaced; the previous run directory (if any) is "
                     "untouched")
            return 128 + getattr(exc, "signum", signal.SIGINT)
        except BrokenPipeError:
            return 0
        except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback for users
            message = environment_message(exc)
            if message is not None:
                _err(message)
                return 2
            if os.environ.get("MARKETBAYESMETA_DEBUG"):
                raise
            _err(f"internal error: {type(exc).__name__}: {exc}\n(set MARKETBAYESMETA_DEBUG=1 for a "
                 "traceback and please report it)")
            return 4


def _end(code: int, *, process: bool) -> NoReturn:
    """Exit with ``code``. As the process's own command (``process``: the console scripts, called
    without argv) the interpreter is not torn down: with PyMC loaded that alone takes one to two
    seconds after the run is committed. The exit handlers still run (the multiprocessing, logging
    and report-kernel clean-ups) and the standard streams are flushed first. Called with argv (a
    test, a notebook user) it is a plain ``sys.exit``."""
    if not process:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the process is ours (the console script): see collector.py
        tune_collector()
    _end(_dispatch(argv, build_parser()), process=argv is None)


def _single(command: str, argv: Sequence[str] | None) -> int:
    process = argv is None
    if process:
        tune_collector()
    argv = list(sys.argv[1:] if argv is None else argv)
    _end(_dispatch([command, *argv], build_parser()), process=process)


def check_config_main(argv: Sequence[str] | None = None) -> int:
    return _single("check-config", argv)


def run_main(argv: Sequence[str] | None = None) -> int:
    return _single("run", argv)
