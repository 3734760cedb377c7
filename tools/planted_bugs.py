"""Planted bugs (``make planted``): does the test suite catch the bugs of issue 17's table?

Each bug below is one small, plausible edit of the code (the exact old text, which must occur
exactly once in its file, and the new text). For each bug the script copies the working tree (src,
tests and the files the tests read; never .git, .venv, build or output) into a scratch directory,
applies that one edit there, and runs the tests that should catch it with the project's Python,
the copy first on PYTHONPATH (the working tree itself is never modified):

* first the bug's ``fast`` tests, a targeted subset of what ``make check`` runs (same marker
  expression, so slow-marked sampled runs included);
* then, only when those all pass, its ``statistical`` tests (``make check-statistical``'s
  marker), one process, stopped at the first failure; a run longer than ``--timeout`` seconds is
  recorded as not run, with the reason.

A bug is *caught* when at least one of its tests fails; the first failing test id and the number of
failing tests are recorded. The ``control`` entry runs every bug's fast tests on the unmodified
copy: they must all pass, otherwise a "caught" would mean nothing.

Results go to docs/validation/planted-bugs.md (a dated table) and planted-bugs.json
(``format: marketbayesmeta.planted/1``); a run of some bugs keeps the earlier results of the
others (each dated, with its commit) unless ``--fresh``.

    python tools/planted_bugs.py                    # the control, then every bug
    python tools/planted_bugs.py --only ppc_flag_and --only dup_no_se
    python tools/planted_bugs.py --fast-only        # skip the statistical fall-back
    python tools/planted_bugs.py --list             # the catalogue
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from mutation import git_commit  # tools/ is the script's directory, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "validation"
FORMAT = "marketbayesmeta.planted/1"
FAST_MARKER = "not statistical and not browser and not exhaustive"  # make check's
STAT_MARKER = "statistical"  # make check-statistical's
TIMEOUT = 600.0  # seconds per statistical run before it is recorded as not run
COPY = ("src", "tests", "examples", "docs", "specs", "pyproject.toml", "README.md", "CHANGELOG.md",
        "Makefile", "constraints.txt")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "build", "output")

VALUES_EXACT = "tests/test_values_end_to_end.py::test_every_table_of_an_exact_run"
VALUES_ALL = "tests/test_values_end_to_end.py"  # with the sampled runs (marked slow, in make check)
MCMC_NUMBERS = "tests/test_numbers.py::test_mcmc_summaries_are_the_draws_summaries"
E2E_CLI = "tests/statistical/test_end_to_end_cli.py"
E2E_DRAWS = f"{E2E_CLI}::test_posterior_draws_match_the_reference"  # posterior.nc's sds and theta quantiles
E2E_CHECK = f"{E2E_CLI}::test_cli_run_passes_its_mcmc_check"  # the run's exact cross-check
CROSSCHECK = "tests/statistical/test_exact_crosscheck.py"
MODEL_VS_EXACT = f"{CROSSCHECK}::test_default_model_matches_exact"
DERIVED_VS_EXACT = f"{CROSSCHECK}::test_derived_quantities_match_exact"  # theta means, future


@dataclass(frozen=True)
class Bug:
    name: str
    issue_row: str  # the bug in issue 17's words
    path: str  # under the repository root
    old: str  # occurs exactly once in path
    new: str
    fast: tuple[str, ...]  # pytest ids (files or nodes) from the fast suite that should catch it
    statistical: tuple[str, ...] = ()  # run only when the fast ones all pass


BUGS: tuple[Bug, ...] = (
    Bug("ci_one_sided_z", "CI → SE with a one-sided z",
        "src/marketbayesmeta/compiler/units.py",
        "nd.inv_cdf(0.5 + p / 2.0)", "nd.inv_cdf(p)",
        ("tests/test_units.py", "tests/test_golden_plan.py", VALUES_EXACT)),
    Bug("relative_fraction_derivative", "delta-method derivative of relative_fraction wrong (1/(1+x)**2)",
        "src/marketbayesmeta/compiler/units.py",
        '"log1p_fraction", "log(1 + x)", np.log1p, lambda x: 1.0 / (1.0 + x), np.expm1',
        '"log1p_fraction", "log(1 + x)", np.log1p, lambda x: 1.0 / (1.0 + x) ** 2, np.expm1',
        ("tests/test_units.py", VALUES_EXACT)),
    Bug("tau_scale_exact", "tau prior scale doubled in the exact engine",
        "src/marketbayesmeta/runtime/exact.py",
        "family(tau_family).log_kernel(tau / scale)", "family(tau_family).log_kernel(tau / (2.0 * scale))",
        ("tests/test_exact.py", "tests/test_exact_tables.py", VALUES_EXACT)),
    Bug("tau_scale_pymc", "tau prior scale doubled in the PyMC model",
        "src/marketbayesmeta/runtime/model.py",
        'fam.build_conditional(scale) if parameterisation == "conditional" else fam.build_centered(scale)',
        'fam.build_conditional(2.0 * scale) if parameterisation == "conditional" '
        'else fam.build_centered(2.0 * scale)',
        (VALUES_ALL,), (MODEL_VS_EXACT, E2E_CHECK)),
    Bug("tau_scale_upstream", "tau prior scale doubled upstream of both engines (the main fit's priors in the plan)",
        "src/marketbayesmeta/compiler/grid.py",
        'fits = [Fit(name="main", kind="main", label="main", priors=main, seed=fit_seed(seed, "main"))]',
        'fits = [Fit(name="main", kind="main", label="main", seed=fit_seed(seed, "main"),\n'
        '                 priors=main.model_copy(update={"tau_scale": 2 * main.tau_scale}))]',
        ("tests/test_priors.py", VALUES_EXACT), (E2E_CLI,)),
    Bug("dup_no_standard_error", "duplicates: standard_error dropped from the number columns",
        "src/marketbayesmeta/compiler/duplicates.py",
        'NUMBER_COLUMNS = ["estimate", "standard_error", "ci_lower"',
        'NUMBER_COLUMNS = ["estimate", "ci_lower"',
        ("tests/test_duplicates.py",)),
    Bug("dup_no_window_start", "duplicates: window_start dropped from the key columns",
        "src/marketbayesmeta/compiler/duplicates.py",
        'KEY_COLUMNS = ["evidence_type", "metric", "brand", "market", "channel", "window_start", "window_end"]',
        'KEY_COLUMNS = ["evidence_type", "metric", "brand", "market", "channel", "window_end"]',
        ("tests/test_duplicates.py",)),
    Bug("study_shrinkage_complement", "study_effects: shrinkage written as 1 − shrinkage (exact tables)",
        "src/marketbayesmeta/runtime/exact_tables.py",
        '"shrinkage": float(shrinkage[i])', '"shrinkage": 1.0 - float(shrinkage[i])',
        ("tests/test_exact_tables.py", VALUES_EXACT)),
    Bug("study_observed_se_swapped", "study_effects: observed / se swapped (exact tables)",
        "src/marketbayesmeta/runtime/exact_tables.py",
        '"observed": float(post.y[i]), "se": float(post.se[i])',
        '"observed": float(post.se[i]), "se": float(post.y[i])',
        ("tests/test_exact_tables.py", VALUES_EXACT)),
    Bug("ppc_flag_and", "ppc flag: or → and (exact tables)",
        "src/marketbayesmeta/runtime/exact_tables.py",
        '"flag": bool(obs < lower or obs > upper)', '"flag": bool(obs < lower and obs > upper)',
        ("tests/test_exact_tables.py", VALUES_EXACT)),
    Bug("theta_conditional_sd", "theta's conditional sd wrong (exact engine: B·Var[mu] for B²·Var[mu])",
        "src/marketbayesmeta/runtime/exact.py",
        "np.asarray(tau)[:, None] ** 2 * b + b**2 * var[:, None]",
        "np.asarray(tau)[:, None] ** 2 * b + b * var[:, None]",
        ("tests/test_exact.py", "tests/test_exact_tables.py", VALUES_EXACT)),
    Bug("theta_weight_inverted", "theta's shrinkage weight inverted (exact engine)",
        "src/marketbayesmeta/runtime/exact.py",
        "return b * mean[:, None] + (1.0 - b) * y,", "return (1.0 - b) * mean[:, None] + b * y,",
        ("tests/test_exact.py", "tests/test_exact_tables.py", VALUES_EXACT)),
    # The same bugs where the MCMC summaries (reporting.summaries: mcmc) and posterior.nc's derived
    # draws are made: release 0.4's reported numbers came from here.
    Bug("mcmc_shrinkage_complement", "study_effects: shrinkage written as 1 − shrinkage (MCMC summaries)",
        "src/marketbayesmeta/runtime/tables.py",
        '"shrinkage": float(d.shrinkage[..., k].mean())', '"shrinkage": 1.0 - float(d.shrinkage[..., k].mean())',
        (MCMC_NUMBERS,)),
    Bug("mcmc_observed_se_swapped", "study_effects: observed / se swapped (MCMC summaries)",
        "src/marketbayesmeta/runtime/tables.py",
        '"observed": float(y[k]), "se": float(se[k]), "shrinkage"',
        '"observed": float(se[k]), "se": float(y[k]), "shrinkage"',
        (MCMC_NUMBERS,)),
    Bug("mcmc_ppc_flag_and", "ppc flag: or → and (MCMC summaries)",
        "src/marketbayesmeta/runtime/tables.py",
        '"flag": bool(y[k] < lo or y[k] > hi)', '"flag": bool(y[k] < lo and y[k] > hi)',
        (MCMC_NUMBERS,)),
    Bug("mcmc_theta_conditional_sd", "theta's conditional sd wrong (derived draws: tau²(1−B) for tau²B)",
        "src/marketbayesmeta/runtime/posterior.py",
        "cond_sd = np.sqrt(s2 * t2 / (s2 + t2))", "cond_sd = np.sqrt(t2 * t2 / (s2 + t2))",
        ("tests/test_derive.py", MCMC_NUMBERS, VALUES_ALL), (E2E_DRAWS,)),
    Bug("mcmc_theta_weight_inverted", "theta's shrinkage weight inverted (derived draws)",
        "src/marketbayesmeta/runtime/posterior.py",
        "cond_mean = shrink * mu3 + (1.0 - shrink) * np.asarray(y, float)",
        "cond_mean = (1.0 - shrink) * mu3 + shrink * np.asarray(y, float)",
        ("tests/test_derive.py", MCMC_NUMBERS, VALUES_ALL), (DERIVED_VS_EXACT, E2E_DRAWS)),
)
BY_NAME = {b.name: b for b in BUGS}
CONTROL = "control"


@dataclass
class Result:
    name: str
    issue_row: str
    where: str  # path:line of the edit
    old: str
    new: str
    caught: bool | None  # None: not run (see note)
    suite: str  # fast / statistical / "" (what caught it)
    caught_by: str  # first failing test id
    failing: int  # failing tests in the run that caught it
    tests_fast: list[str]
    tests_statistical: list[str]
    seconds: float
    note: str
    date: str
    commit: str


# -------------------------------------------------------------------------------- running


def _copy_tree(dest: Path) -> None:
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=SKIP, symlinks=True)
        elif src.exists():
            shutil.copy2(src, dest / name)


def _plant(copy: Path, bug: Bug) -> str:
    """Apply ``bug`` in the copy; returns ``path:line`` of the edit."""
    target = copy / bug.path
    text = target.read_text(encoding="utf-8")
    count = text.count(bug.old)
    if count != 1:
        raise SystemExit(f"{bug.name}: the old text occurs {count} times in {bug.path} (must be exactly once); "
                         "update the catalogue in tools/planted_bugs.py")
    line = text[: text.index(bug.old)].count("\n") + 1
    target.write_text(text.replace(bug.old, bug.new), encoding="utf-8")
    return f"{bug.path}:{line}"


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "src"), str(copy / "tests")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


def _check_import(copy: Path) -> None:
    """The copy's package (not the editable install's) is the one the tests import."""
    got = subprocess.run([sys.executable, "-c", "import marketbayesmeta; print(marketbayesmeta.__file__)"],
                         cwd=copy, env=_env(copy), capture_output=True, text=True, check=True).stdout.strip()
    if not Path(got).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"the tests would import marketbayesmeta from {got}, not from the copy {copy}")


@dataclass
class Run:
    failed: list[str]  # test ids that failed or errored, in report order
    passed: int
    seconds: float
    timed_out: bool
    output: str


def _pytest(copy: Path, tests: tuple[str, ...], marker: str, *, first_failure: bool,
            timeout: float | None) -> Run:
    junit = copy / "junit.xml"
    junit.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "1", "-m", marker,
           "--hypothesis-profile=mutation", f"--junitxml={junit}", *(["-x"] if first_failure else []), *tests]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Run([], 0, time.monotonic() - started, True, out)
    seconds = time.monotonic() - started
    failed, passed = [], 0
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                path = (case.get("classname") or "").replace(".", "/")
                failed.append(f"{path}.py::{case.get('name')}")
            elif case.find("skipped") is None:
                passed += 1
    if proc.returncode not in (0, 1, 5) and not failed:  # pytest itself failed (usage, collection, ...)
        failed = [f"pytest exit {proc.returncode}"]
    return Run(failed, passed, seconds, False, proc.stdout[-4000:] + proc.stderr[-2000:])


def run_bug(bug: Bug, *, timeout: float, fast_only: bool, verbose: bool) -> Result:
    with tempfile.TemporaryDirectory(prefix=f"planted-{bug.name}-") as tmp:
        copy = Path(tmp)
        _copy_tree(copy)
        where = _plant(copy, bug)
        _check_import(copy)
        fast = _pytest(copy, bug.fast, FAST_MARKER, first_failure=False, timeout=None)
        seconds, note = fast.seconds, f"fast: {len(fast.failed)} failed, {fast.passed} passed"
        if verbose:
            print(fast.output)
        caught, suite, failed = bool(fast.failed), "fast" if fast.failed else "", fast.failed
        if not caught and bug.statistical:
            if fast_only:
                caught, note = None, note + "; statistical not run (--fast-only)"
            else:
                stat = _pytest(copy, bug.statistical, STAT_MARKER, first_failure=True, timeout=timeout)
                seconds += stat.seconds
                if verbose:
                    print(stat.output)
                if stat.timed_out:
                    caught, note = None, note + f"; statistical not run: over {timeout:.0f} s"
                else:
                    caught, suite, failed = bool(stat.failed), "statistical" if stat.failed else "", stat.failed
                    note += f"; statistical (stops at the first failure): {len(stat.failed)} failed, {stat.passed} passed"
                    if failed:
                        note += "; " + _statistical_control(failed[0], timeout)
    return Result(bug.name, bug.issue_row, where, bug.old, bug.new, caught, suite, failed[0] if failed else "",
                  len(failed), list(bug.fast), list(bug.statistical), round(seconds, 1), note, _now(), git_commit())


def _statistical_control(test_id: str, timeout: float) -> str:
    """The statistical test that caught a bug, run again on the unmodified code (the fast tests have
    the control run): it must pass there."""
    with tempfile.TemporaryDirectory(prefix="planted-control-") as tmp:
        copy = Path(tmp)
        _copy_tree(copy)
        run = _pytest(copy, (test_id,), STAT_MARKER, first_failure=True, timeout=timeout)
    if run.timed_out:
        return f"control without the bug not run: over {timeout:.0f} s"
    return "passes without the bug" if not run.failed and run.passed else "FAILS WITHOUT THE BUG TOO"


def run_control(*, verbose: bool) -> Result:
    """Every bug's fast tests on the unmodified copy: all must pass."""
    tests = tuple(dict.fromkeys(t for b in BUGS for t in b.fast))
    with tempfile.TemporaryDirectory(prefix="planted-control-") as tmp:
        copy = Path(tmp)
        _copy_tree(copy)
        _check_import(copy)
        run = _pytest(copy, tests, FAST_MARKER, first_failure=False, timeout=None)
    if verbose or run.failed:
        print(run.output)
    return Result(CONTROL, "no bug: every bug's fast tests on the unmodified code must pass", "", "", "",
                  bool(run.failed), "fast" if run.failed else "", run.failed[0] if run.failed else "",
                  len(run.failed), list(tests), [], round(run.seconds, 1),
                  f"{len(run.failed)} failed, {run.passed} passed", _now(), git_commit())


# -------------------------------------------------------------------------------- records


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")



def _load() -> dict[str, dict]:
    path = OUT / "planted-bugs.json"
    if not path.exists():
        return {}
    return {r["name"]: r for r in json.loads(path.read_text(encoding="utf-8")).get("results", [])}


def _verdict(r: dict) -> str:
    if r["name"] == CONTROL:
        return "all pass" if r["caught"] is False else "**FAILS**"
    return {True: f"yes ({r['suite']})", False: "**no**", None: "not run"}[r["caught"]]


def write(results: dict[str, dict]) -> None:
    order = [CONTROL, *BY_NAME]
    rows = [results[n] for n in order if n in results]
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "written": _now(), "fast_marker": FAST_MARKER, "statistical_marker": STAT_MARKER,
           "results": rows}
    (OUT / "planted-bugs.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        "# Planted bugs",
        "",
        f"Written by `make planted` (tools/planted_bugs.py), {doc['written']}. Each bug of issue 17's table is",
        "planted alone in a scratch copy of the code and the tests that should catch it are run: first a",
        "targeted subset of the fast suite (`make check`), then, only if those pass, the statistical tests",
        "(`make check-statistical`). *Caught by* is the first failing test (of *n* failing). The control row",
        "runs every bug's fast tests on the unmodified code. The exact edits are in `planted-bugs.json`.",
        "",
        "| bug | where planted | caught? | caught by | n | seconds | date, commit |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        where = f"`{r['where'].removeprefix('src/marketbayesmeta/')}`" if r["where"] else ""
        by = f"`{r['caught_by']}`" if r["caught_by"] else (r["note"] if r["caught"] is None else "")
        lines.append(f"| {r['name']}: {r['issue_row']} | {where} | {_verdict(r)} | {by} | {r['failing']} | "
                     f"{r['seconds']:.0f} | {r['date'][:10]}, {r['commit']} |")
    missing = [n for n in order if n not in results]
    if missing:
        lines += ["", "Not run yet: " + ", ".join(missing) + "."]
    (OUT / "planted-bugs.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="print the catalogue and exit")
    ap.add_argument("--only", action="append", metavar="NAME", help=f"run only this bug (repeatable; {CONTROL!r}: "
                    "the control run)")
    ap.add_argument("--fast-only", action="store_true", help="do not fall back to the statistical tests")
    ap.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per statistical run (default 600)")
    ap.add_argument("--fresh", action="store_true", help="forget the results of bugs not run this time")
    ap.add_argument("-v", "--verbose", action="store_true", help="print pytest's output")
    args = ap.parse_args(argv)
    if args.list:
        for b in BUGS:
            print(f"{b.name:28} {b.path.removeprefix('src/marketbayesmeta/'):28} {b.issue_row}")
            print(f"{'':28} fast: {', '.join(b.fast)}")
            if b.statistical:
                print(f"{'':28} statistical: {', '.join(b.statistical)}")
        return 0
    names = args.only or [CONTROL, *BY_NAME]
    unknown = [n for n in names if n != CONTROL and n not in BY_NAME]
    if unknown:
        ap.error(f"unknown bug(s) {', '.join(unknown)}; see --list")
    results = {} if args.fresh else _load()
    for name in names:
        print(f"{name} ...", flush=True)
        res = run_control(verbose=args.verbose) if name == CONTROL else run_bug(
            BY_NAME[name], timeout=args.timeout, fast_only=args.fast_only, verbose=args.verbose)
        results[name] = asdict(res)
        print(f"  {_verdict(results[name])} {res.caught_by} ({res.note}; {res.seconds:.0f} s)", flush=True)
        write(results)  # after every bug, so an interrupted run keeps what it has
    control_ok = results.get(CONTROL, {}).get("caught") is False
    uncaught = [n for n in BY_NAME if n in results and results[n]["caught"] is False]
    print(f"written {OUT / 'planted-bugs.md'}")
    if uncaught:
        print("NOT caught: " + ", ".join(uncaught))
    return 1 if uncaught or (CONTROL in results and not control_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
