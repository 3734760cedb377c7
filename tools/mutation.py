"""Mutation testing (``make mutation``): mutmut on the modules that produce numbers or verdicts.

Each module is mutated on its own, in a scratch copy of the project (build/mutation/<module>/),
with only the fast tests that cover it, so that a run takes minutes rather than hours. mutmut
then runs, for each mutant, only the tests among those that call the mutated function.

The summary (killed / survived / no tests / timeout per module, and the score) is printed and
written to docs/validation/mutation.txt and docs/validation/mutation.json, for the validation
snapshot; a run of some modules keeps the earlier results of the others (each dated, with its
commit) unless --fresh. Survivors listed in tests/mutation-notes.md (as equivalent, with the reason) are
counted as accounted for; any other survivor is printed and makes the command fail, as does a
module below the target score.

    python tools/mutation.py                       # every module below
    python tools/mutation.py units duplicates      # some of them (names as in MODULES)
    python tools/mutation.py --list                # the modules and their tests
    python tools/mutation.py --retest numbers      # only the survivors of its last run, current tests
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
OUT = ROOT / "docs" / "validation"
NOTES = ROOT / "tests" / "mutation-notes.md"
SRC = ROOT / "src" / "marketbayesmeta"
MUTMUT = Path(sys.executable).with_name("mutmut")
TARGET = 0.90  # share of mutants killed (timeouts count as killed), per module
FAST = "not statistical and not slow"
FORMAT = "marketbayesmeta.mutation/1"
SHOW = 12  # unexplained survivors named per module in the printed summary (all are in the .json)


@dataclass(frozen=True)
class Module:
    path: str  # under src/marketbayesmeta/
    tests: tuple[str, ...]  # test files (under tests/) that cover it and run fast
    marker: str = FAST
    # mutmut stops a mutant's tests after (their time + 1 s) x this x 2 CPU seconds and counts it as a
    # timeout (killed: the mutant made the code that much slower). mutmut's default 15 gives a grid
    # mutant of exact.py, whose tests take ~40 s, 20 minutes per mutant that loops.
    timeout_multiplier: float = 15.0


MODULES: dict[str, Module] = {
    "units": Module("compiler/units.py", ("test_units.py", "test_compiler.py")),
    "prepare": Module("compiler/prepare.py", ("test_prepare.py", "test_compiler.py")),
    "duplicates": Module("compiler/duplicates.py", ("test_duplicates.py", "test_compiler.py")),
    "readiness": Module("compiler/readiness.py", ("test_verdicts.py", "test_compiler.py")),
    "exact": Module("runtime/exact.py", ("test_exact.py",), timeout_multiplier=3.0),
    "posterior": Module("runtime/posterior.py", ("test_derive.py", "test_numbers.py",
                                                  "test_posterior_summaries.py")),
    "tables": Module("runtime/tables.py", ("test_csv_safety.py", "test_numbers.py", "test_tables.py")),
    "sensitivity": Module("runtime/sensitivity.py", ("test_verdicts.py",)),
    "status": Module("runtime/status.py", ("test_verdicts.py",)),
    "verify": Module("audit/verify.py", ("test_archive_verify.py", "test_cli.py", "test_verify_behaviour.py",
                                        "test_verify_limits.py")),
    "exact_tables": Module("runtime/exact_tables.py", ("test_exact_tables.py", "test_values_end_to_end.py")),
    "numbers": Module("runtime/numbers.py", ("test_values_end_to_end.py", "test_numbers.py")),
    "plausibility": Module("compiler/plausibility.py", ("test_plausibility.py", "test_plausibility_text.py")),
    "business_priors": Module("compiler/business_priors.py", ("test_business_priors.py", "test_business_priors_text.py",
                                                              "test_priors.py")),
    "triangulate": Module("compiler/triangulate.py", ("test_triangulate.py", "test_triangulate_rules.py",
                                                      "test_plausibility.py")),
    "pools": Module("compiler/pools.py", ("test_pools.py", "test_portfolio.py")),
    "priors": Module("compiler/priors.py", ("test_priors.py", "test_business_priors.py", "test_compiler.py",
                                            "test_values_end_to_end.py")),
    "overrides": Module("compiler/overrides.py", ("test_overrides.py", "test_compiler.py")),
}

# mutmut's exit-code classes (mutmut.stats.status_by_exit_code), folded into the summary's columns
KILLED, SURVIVED, NO_TESTS, TIMEOUT, OTHER = "killed", "survived", "no tests", "timeout", "other"


def _status(code: int | None) -> str:
    if code in (1, 3):
        return KILLED
    if code == 0:
        return SURVIVED
    if code in (5, 33):
        return NO_TESTS
    if code in (36, -24, 24, 152, 255):
        return TIMEOUT
    return OTHER


def equivalent_mutants(notes: Path = NOTES) -> set[str]:
    """Mutant names listed in the notes: lines starting ``- `name` ``."""
    if not notes.exists():
        return set()
    return set(re.findall(r"^\s*[-*]\s+`([\w.]+__mutmut_\d+)`", notes.read_text(encoding="utf-8"), re.M))


def _pyproject(module: Module) -> str:
    tests = ", ".join(f'"tests/{t}"' for t in module.tests)
    return f"""[tool.pytest.ini_options]
testpaths = ["tests"]
markers = ["statistical: sampling-based", "slow: end-to-end runs that sample"]

[tool.mutmut]
source_paths = ["src"]
only_mutate = ["src/marketbayesmeta/{module.path}"]
also_copy = ["examples", "specs", "docs"]
pytest_add_cli_args = ["-m", "{module.marker}", "-p", "no:cacheprovider", "--hypothesis-profile=mutation"]
pytest_add_cli_args_test_selection = [{tests}]
use_git_change_detection = false
timeout_multiplier = {module.timeout_multiplier}
"""


def _prepare(name: str, module: Module) -> Path:
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for sub in ("src", "tests", "examples", "specs", "docs"):
        _copy(sub, work)
    (work / "pyproject.toml").write_text(_pyproject(module), encoding="utf-8")
    return work


def _meta(name: str) -> Path:
    """mutmut's record of every mutant of module ``name`` (exit code per mutant; None: not run yet)."""
    return WORK / name / "mutants" / "src" / "marketbayesmeta" / (MODULES[name].path + ".meta")


def _copy(sub: str, work: Path) -> None:
    shutil.copytree(ROOT / sub, work / sub, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis"))


def _mutmut_env() -> dict[str, str]:
    # MARKETBAYESMETA_WARM_REFERENCES: tests/value_cases.py builds its grids once, in mutmut's fork server
    # MARKETBAYESMETA_MUTATION: tests/conftest.py runs the slowest tests last (the first failure ends a mutant)
    return {**os.environ, "PYTHONHASHSEED": "0", "MARKETBAYESMETA_WARM_REFERENCES": "1", "MARKETBAYESMETA_MUTATION": "1"}


def run_module(name: str, module: Module, children: int) -> dict:
    work = _prepare(name, module)
    log = work / "mutmut.log"
    started = dt.datetime.now()
    with log.open("w", encoding="utf-8") as f:
        proc = subprocess.run([str(MUTMUT), "run", "--max-children", str(children)], cwd=work, stdout=f,
                              stderr=subprocess.STDOUT, env=_mutmut_env())
    seconds = (dt.datetime.now() - started).total_seconds()
    meta = _meta(work.name)
    if proc.returncode != 0 or not meta.exists():
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])
        raise SystemExit(f"mutmut failed on {module.path} (exit {proc.returncode}); see {log}\n{tail}")
    result = _result(work, module, seconds=seconds)
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _result(work: Path, module: Module, *, seconds: float) -> dict:
    """The module's result from mutmut's record of every mutant (and the diffs of those not killed)."""
    meta = _meta(work.name)
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    by_status: dict[str, list[str]] = {s: [] for s in (KILLED, SURVIVED, NO_TESTS, TIMEOUT, OTHER)}
    for key, code in sorted(codes.items()):
        by_status[_status(code)].append(key)
    _write_survivor_diffs(work, by_status[SURVIVED] + by_status[NO_TESTS] + by_status[OTHER])
    result = {"module": f"src/marketbayesmeta/{module.path}", "tests": list(module.tests),
              "marker": module.marker, "date": _now(), "commit": git_commit(), "seconds": round(seconds, 1),
              "total": len(codes), **{s.replace(" ", "_"): len(v) for s, v in by_status.items()},
              "not_killed": by_status[SURVIVED] + by_status[NO_TESTS] + by_status[OTHER]}
    return result


def retest_module(name: str, module: Module, children: int, *, unexplained_only: bool = False) -> dict:
    """Finish and re-test a module's last run with the current tests (``--retest``): mutants it did
    not get to (an interrupted run) are run, then those not killed are run again (after tests were
    added for its survivors). Killed mutants stay killed: the module's source has not changed since
    (checked; a changed source needs a full run)."""
    work = WORK / name
    meta = _meta(work.name)
    if not meta.exists():
        raise SystemExit(f"--retest {name}: no run in {work}; run `make mutation MODULES={name}` first")
    if (work / "src" / "marketbayesmeta" / module.path).read_bytes() != (SRC / module.path).read_bytes():
        raise SystemExit(f"--retest {name}: src/marketbayesmeta/{module.path} changed since its run; "
                         f"the mutants are stale: run `make mutation MODULES={name}`")
    done = work / "result.json"
    previous = json.loads(done.read_text(encoding="utf-8")) if done.exists() else {}
    shutil.rmtree(work / "tests")
    _copy("tests", work)
    (work / "pyproject.toml").write_text(_pyproject(module), encoding="utf-8")  # today's settings (timeouts)
    started = dt.datetime.now()
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    pending = [key for key, code in codes.items() if code is None]
    not_killed = sorted(k for k, c in codes.items() if c is not None and _status(c) not in (KILLED, TIMEOUT))
    if unexplained_only:  # the survivors listed in tests/mutation-notes.md keep their verdict
        listed = equivalent_mutants()
        not_killed = [k for k in not_killed if k not in listed]
    runs = ([[]] if pending else []) + ([not_killed] if not_killed else [])  # [] = the mutants not run yet
    with (work / "mutmut-retest.log").open("w", encoding="utf-8") as f:
        for names in runs:
            proc = subprocess.run([str(MUTMUT), "run", "--max-children", str(children), *names],
                                  cwd=work, stdout=f, stderr=subprocess.STDOUT, env=_mutmut_env())
            if proc.returncode != 0:
                raise SystemExit(f"mutmut failed re-testing {module.path} (exit {proc.returncode}); see "
                                 f"{work / 'mutmut-retest.log'}")
    seconds = previous.get("seconds", 0.0) + (dt.datetime.now() - started).total_seconds()
    result = _result(work, module, seconds=seconds)
    result["retested"] = {"date": _now(), "commit": git_commit(), "pending_run": len(pending),
                          "full_run": {k: previous[k] for k in ("date", "commit") if k in previous}}
    done.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _write_survivor_diffs(work: Path, keys: list[str]) -> None:
    """The diff of every mutant not killed, in build/mutation/<module>/survivors.diff."""
    with (work / "survivors.diff").open("w", encoding="utf-8") as f:
        for key in keys:
            shown = subprocess.run([str(MUTMUT), "show", key], cwd=work, capture_output=True, text=True)
            f.write(shown.stdout + "\n")


def summarise(results: dict[str, dict], equivalent: set[str]) -> tuple[str, dict, bool]:
    lines = [f"{'module':12s} {'mutants':>7s} {'killed':>6s} {'survived':>8s} {'no tests':>8s} {'timeout':>7s} "
             f"{'other':>5s} {'score':>6s} {'equiv.':>6s} {'unexpl.':>7s} {'time':>6s}"]
    ok = True
    tot = {"total": 0, "killed": 0, "timeout": 0}
    for name, r in results.items():
        score = (r["killed"] + r["timeout"]) / r["total"] if r["total"] else 1.0
        r["score"] = round(score, 4)
        r["equivalent"] = sorted(k for k in r["not_killed"] if k in equivalent)
        r["unexplained"] = sorted(k for k in r["not_killed"] if k not in equivalent)
        ok &= score >= TARGET and not r["unexplained"]
        for k in tot:
            tot[k] += r[k]
        lines.append(f"{name:12s} {r['total']:7d} {r['killed']:6d} {r['survived']:8d} {r['no_tests']:8d} "
                     f"{r['timeout']:7d} {r['other']:5d} {100 * score:5.1f}% {len(r['equivalent']):6d} "
                     f"{len(r['unexplained']):7d} {r['seconds']:5.0f}s")
    overall = (tot["killed"] + tot["timeout"]) / tot["total"] if tot["total"] else 1.0
    lines.append(f"{'overall':12s} {tot['total']:7d} {tot['killed']:6d} {'':8s} {'':8s} {tot['timeout']:7d} "
                 f"{'':5s} {100 * overall:5.1f}%")
    for name, r in results.items():
        if r["unexplained"]:
            shown = r["unexplained"][:SHOW]
            more = len(r["unexplained"]) - len(shown)
            lines.append(f"{name}: {len(r['unexplained'])} not killed and not in tests/mutation-notes.md "
                         f"(diffs in build/mutation/{name}/survivors.diff): " + ", ".join(shown)
                         + (f", ... and {more} more" if more else ""))
    missing = [name for name in MODULES if name not in results]
    for name in missing:
        meta = _meta(name)
        try:
            codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
            where = (f"an unfinished run in build/mutation/{name} decided {sum(c is not None for c in codes.values())} "
                     f"of {len(codes)} mutants (make mutation MODULES={name} RETEST=1 finishes it)")
        except (OSError, ValueError, KeyError):
            where = f"not run (make mutation MODULES={name})"
        lines.append(f"{name}: no result yet: {where}")
    data = {"format": FORMAT, "target": TARGET, "overall_score": round(overall, 4),
            "modules": results, "no_result": missing}
    return "\n".join(lines), data, ok


def git_commit() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def previous_results() -> dict[str, dict]:
    """Per-module results of earlier runs (docs/validation/mutation.json), kept for the modules
    not run this time."""
    path = OUT / "mutation.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if data.get("format") != FORMAT:
        return {}
    return {name: r for name, r in data.get("modules", {}).items() if name in MODULES}


def write_summary(table: str, data: dict, names: list[str]) -> None:
    from importlib.metadata import version

    dates = sorted({r.get("date", "?")[:10] + " @" + r.get("commit", "?") for r in data["modules"].values()})
    head = (f"make mutation: mutmut {version('mutmut')}, written {_now()}; results from {', '.join(dates)} "
            f"(this run: {' '.join(names)})\n"
            f"score = (killed + timeout) / mutants; target {TARGET:.0%} per module; equivalent survivors "
            f"listed in tests/mutation-notes.md\n\n")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "mutation.txt").write_text(head + table + "\n", encoding="utf-8")
    data = {"written": _now(), "mutmut": version("mutmut"), **data}
    (OUT / "mutation.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help=f"some of: {', '.join(MODULES)} (default: all)")
    parser.add_argument("--children", type=int, default=2, help="parallel mutant runs (default 2)")
    parser.add_argument("--fresh", action="store_true",
                        help="forget the results of modules not run now (default: keep them in the summary)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument("--retest", action="store_true",
                        help="re-run only the mutants the last run of each module did not kill, with the current "
                             "tests (its source must be unchanged)")
    parser.add_argument("--unexplained", action="store_true",
                        help="with --retest: re-run only the survivors not listed in tests/mutation-notes.md")
    args = parser.parse_args(argv)
    if args.unexplained and not args.retest:
        parser.error("--unexplained goes with --retest (it narrows which survivors are re-run)")
    if args.list:
        for name, m in MODULES.items():
            print(f"{name:12s} src/marketbayesmeta/{m.path:28s} {' '.join(m.tests)}  [-m {m.marker}]")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    names = args.modules or list(MODULES)
    results = {} if args.fresh else previous_results()
    for name in names:
        print(f"mutation: {name} ({MODULES[name].path}) ...", flush=True)
        if args.retest:
            results[name] = retest_module(name, MODULES[name], args.children, unexplained_only=args.unexplained)
        else:
            results[name] = run_module(name, MODULES[name], args.children)
    results = {name: results[name] for name in MODULES if name in results}
    table, data, ok = summarise(results, equivalent_mutants())
    write_summary(table, data, names)
    print(table)
    print(f"written: {(OUT / 'mutation.txt').relative_to(ROOT)}, {(OUT / 'mutation.json').relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
