#!/usr/bin/env python
"""marketbayesmeta performance benchmarks (``make bench``); see benchmarks/README.md.

Prints a table (section, figure, value, target, result) and writes a JSON file with the figures,
the raw timings and machine information. Every section is independent: a section that raises is
reported as FAIL with the reason and the run goes on.

    .venv/bin/python benchmarks/run.py                  # full run (~10 min) -> benchmarks/results.json
    .venv/bin/python benchmarks/run.py --quick          # smoke run (smaller sizes, fewer draws)
    .venv/bin/python benchmarks/run.py --only overhead,grid
    .venv/bin/python benchmarks/run.py --only profile   # where the time goes (cProfile, phase splits)

Scratch files (configs, trackers, run directories, profiles) go to benchmarks/.work/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
WORK = BENCH / ".work"
EXAMPLE_CONFIG = ROOT / "examples" / "config.yaml"
PY = sys.executable
MARKER = "@@BENCH@@"
GEN_VERSION = 3  # bump when the synthetic tracker generator changes
LIBRARIES = ("marketbayesmeta", "pymc", "pytensor", "nutpie", "numba", "arviz", "numpy", "scipy",
             "pandas", "xarray", "h5netcdf", "pydantic", "matplotlib", "nbclient", "nbconvert", "psutil")
# progress lines of runtime/pool_run.py and runtime/fits.py (stderr), in the order a pool prints them
START_LINE = re.compile(r"^(?:\[\S+\] )?(\S+): exact numbers for (\d+) fit\(s\); MCMC check of (\d+)")
MODEL_LINE = re.compile(r"^(?:\[\S+\] )?model built \((.*)\) \u2026 ([0-9.]+) s; sampling (\d+) fit")
FIT_LINE = re.compile(r"^fit (\d+)/(\d+) (\S+) \u2026 ([0-9.]+) s")
NUMBERS_LINE = re.compile(r"^exact numbers \u2026 ([0-9.]+) s")
REPORT_LINE = re.compile(r"^report \u2026 ([0-9.]+) s")
POOL_LINE = re.compile(r"^pool (\d+)/(\d+) (\S+) \u2026 ([0-9.]+) s, (\S+)")
MiB = 1024 * 1024


# -- results ----------------------------------------------------------------------------------------

@dataclass
class Figure:
    section: str
    name: str
    value: Any
    unit: str = ""
    target: str | None = None
    ok: bool | None = None  # None: information only
    note: str = ""

    def shown(self) -> str:
        v = self.value
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            text = f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        else:
            text = str(v)
        return f"{text} {self.unit}".strip() if self.unit not in ("x",) else f"{text}\u00d7"

    @property
    def result(self) -> str:
        return "info" if self.ok is None else ("PASS" if self.ok else "FAIL")


@dataclass
class Context:
    quick: bool
    repeats: int
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    section: str = ""

    def fig(self, name: str, value: Any, unit: str = "", target: str | None = None, ok: bool | None = None,
            note: str = "") -> Figure:
        f = Figure(self.section, name, value, unit, target, ok, note)
        self.figures.append(f)
        line = f"  {name}: {f.shown()}" + (f"  [target {target}: {f.result}]" if target else "")
        print(line + (f"  ({note})" if note else ""), flush=True)
        return f

    @property
    def detail(self) -> dict[str, Any]:
        return self.details.setdefault(self.section, {})


# -- helpers ----------------------------------------------------------------------------------------

def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="pymc")
    for name in ("pymc", "pytensor", "numba", "nutpie"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _cli() -> list[str]:
    script = Path(PY).parent / "marketbayesmeta"
    return [str(script)] if script.exists() else [PY, "-m", "marketbayesmeta"]


def _best(xs: list[float]) -> float:
    return min(xs)


def _mib(kb: int | float) -> float:
    return kb / 1024.0  # ru_maxrss is in KiB on Linux


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git() -> dict[str, Any]:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        return {"commit": head, "modified_files": [x[3:] for x in dirty if x.strip()]}
    except Exception as exc:  # noqa: BLE001 - information only
        return {"error": str(exc)}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
        "python": sys.version.split()[0], "python_executable": PY,
        "cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": _versions(), "git": _git(),
    }
    try:
        import psutil

        info["memory_total_gib"] = round(psutil.virtual_memory().total / 2**30, 2)
        freq = psutil.cpu_freq()
        info["cpu_freq_mhz"] = round(freq.max or freq.current) if freq else None
    except Exception:  # noqa: BLE001
        pass
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    return info


@dataclass
class ChildRun:
    wall: float
    returncode: int
    maxrss_mib: float  # peak RSS of the largest single process of the tree (wait4; see measure_rss)
    tree_peak_mib: float  # peak of the summed RSS of the process tree (sampled every 50 ms)
    lines: list[tuple[float, str, str]]  # (seconds since start, "out"/"err", text)
    timed_out: bool = False
    cpu_s: float = 0.0  # user + system CPU of the command and every descendant it waited for
    load: tuple[list[float], list[float]] | None = None  # load average at start and end

    @property
    def stdout(self) -> str:
        return "\n".join(t for _, s, t in self.lines if s == "out")

    @property
    def stderr(self) -> str:
        return "\n".join(t for _, s, t in self.lines if s == "err")

    def marker(self) -> dict[str, Any]:
        for _, _, text in reversed(self.lines):
            if text.startswith(MARKER):
                return json.loads(text[len(MARKER):])
        raise RuntimeError(f"child printed no result (exit {self.returncode}): {self.stderr[-800:]}")


# On Linux a child's ru_maxrss starts at its parent's RSS (it is carried over fork and exec), so a
# command started from this (large, once pymc is loaded) process would report our size as its peak.
# With measure_rss the command is started from a small launcher that reports the command's rusage.
_LAUNCHER = r"""
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, ru = os.wait4(p.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"maxrss_kib": ru.ru_maxrss, "cpu_s": ru.ru_utime + ru.ru_stime}, f)
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def run_child(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600,
              cwd: Path = ROOT, measure_rss: bool = False, also: Callable[[], list[Any]] | None = None) -> ChildRun:
    """Run ``cmd``; wall time, per-line output timestamps, CPU time, peak RSS (sampled tree sum and,
    with ``measure_rss``, the exact peak of the largest process from a launcher's wait4). ``also``
    returns more psutil processes (with their trees) to add to the sampled sum, e.g. a Dask cluster's."""
    import psutil

    lines: list[tuple[float, str, str]] = []
    load0 = list(os.getloadavg())
    rss_file = WORK / f".rss-{os.getpid()}-{threading.get_ident()}.json"
    rss_file.unlink(missing_ok=True)
    if measure_rss:
        cmd = [PY, "-c", _LAUNCHER, str(rss_file), *cmd]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         encoding="utf-8", errors="replace", start_new_session=True)
    done = threading.Event()
    peak = [0]

    def reader(stream: Any, name: str) -> None:
        for raw in stream:
            lines.append((time.perf_counter() - t0, name, raw.rstrip("\n")))

    def sampler() -> None:
        try:
            proc = psutil.Process(p.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                procs = {proc, *proc.children(recursive=True)}
                for extra in (also() if also else []):
                    with contextlib.suppress(psutil.Error):
                        procs |= {extra, *extra.children(recursive=True)}
                total = 0
                for c in procs:
                    with contextlib.suppress(psutil.Error):
                        total += c.memory_info().rss
                peak[0] = max(peak[0], total)
            except psutil.Error:
                return
            done.wait(0.05)

    threads = [threading.Thread(target=reader, args=(p.stdout, "out"), daemon=True),
               threading.Thread(target=reader, args=(p.stderr, "err"), daemon=True),
               threading.Thread(target=sampler, daemon=True)]
    for t in threads:
        t.start()
    timed_out = [False]

    def kill() -> None:
        timed_out[0] = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, 9)  # the child's own process group (start_new_session): only what we started

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - t0
    done.set()
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in threads[:2]:
        t.join(timeout=10)
    maxrss = _mib(usage.ru_maxrss)  # includes this process's size (see _LAUNCHER) unless measure_rss
    if measure_rss and rss_file.exists():
        maxrss = _mib(json.loads(rss_file.read_text())["maxrss_kib"])
        rss_file.unlink()
    return ChildRun(wall=wall, returncode=p.returncode, maxrss_mib=maxrss,
                    tree_peak_mib=peak[0] / MiB, lines=sorted(lines), timed_out=timed_out[0],
                    cpu_s=usage.ru_utime + usage.ru_stime, load=(load0, list(os.getloadavg())))


# -- configs ----------------------------------------------------------------------------------------

def write_config(name: str, *, quick: bool, prior: bool = True, uncertainty: bool = True,
                 nuts_sampler: str | None = None, tracker: Path | None = None,
                 overrides: dict[str, Any] | None = None) -> Path:
    """A copy of examples/config.yaml (and its tracker) under benchmarks/.work/configs/<name>/."""
    import yaml

    d = WORK / "configs" / name
    d.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    src_tracker = tracker or (EXAMPLE_CONFIG.parent / cfg["data"]["tracker"])
    shutil.copyfile(src_tracker, d / src_tracker.name)
    cfg["data"]["tracker"] = src_tracker.name
    cfg["outputs"]["directory"] = "plan_out"
    cfg["sensitivity"]["prior"] = prior
    cfg["sensitivity"]["uncertainty"] = uncertainty
    if nuts_sampler:
        cfg["sampler"]["nuts_sampler"] = nuts_sampler
    if quick:
        cfg["sampler"].update(draws=500, tune=500)
    for key, value in (overrides or {}).items():
        cfg[key] = value
    path = d / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _run_dir(name: str) -> Path:
    d = WORK / "runs"
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def execute(plan: Any, name: str, *, report: bool = False, capture: bool = False) -> tuple[float, Any, str]:
    """execute_plan in this process: (seconds, RunResult, captured stderr)."""
    from marketbayesmeta.runtime.execute import execute_plan

    buf = io.StringIO()
    t0 = time.perf_counter()
    if capture:  # quiet=False prints per-fit timings; stderr is not a tty, so no progress bar
        with contextlib.redirect_stderr(buf):
            res = execute_plan(plan, _run_dir(name), quiet=False, report=report)
    else:
        res = execute_plan(plan, _run_dir(name), quiet=True, report=report)
    seconds = time.perf_counter() - t0
    if res.status == "failed":
        raise RuntimeError(f"execute_plan failed: {res.reasons}")
    return seconds, res, buf.getvalue()


def fit_times(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        m = FIT_LINE.match(line.strip())
        if m:
            out.append({"fit": m.group(3), "seconds": float(m.group(4))})
    return out


def read_draws(run_dir: Path) -> dict[str, Any]:
    import xarray as xr

    with xr.open_dataset(run_dir / "posterior.nc", group="posterior", engine="h5netcdf") as ds:
        return {"mu": ds["mu"].values.copy(), "tau": ds["tau"].values.copy()}


def same_draws(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import numpy as np

    return all(np.array_equal(a[k], b[k]) for k in ("mu", "tau"))


def exact_check(run_dir: Path) -> dict[str, Any]:
    """The exact cross-check rows (check exact_z_*) of diagnostics.csv."""
    import csv

    rows = [r for r in csv.DictReader((run_dir / "diagnostics.csv").open(encoding="utf-8"))
            if r["check"].startswith("exact_z_")]
    bad = [f"{r['fit']} {r['parameter']} {r['check']}={float(r['value']):.3g}" for r in rows
           if r["pass"].strip().lower() not in ("true", "1", "yes")]
    zs = [abs(float(r["value"])) for r in rows]
    return {"rows": len(rows), "failed": bad, "max_abs_z": max(zs) if zs else None, "pass": bool(rows) and not bad}


# -- 1. overhead ------------------------------------------------------------------------------------

def sec_overhead(ctx: Context) -> None:
    """One-fit plan through execute_plan versus a bare pm.sample of the same model, warm."""
    _quiet_libraries()
    import numpy as np
    import pymc as pm

    from marketbayesmeta.api import compile_config
    from marketbayesmeta.runtime.model import build_model

    _quiet_libraries()  # pymc sets its logger level on import
    plan = compile_config(write_config("one", quick=ctx.quick, prior=False, uncertainty=False))
    if len(plan.pool().fits) != 1:
        raise RuntimeError(f"expected a one-fit plan, got {len(plan.pool().fits)} fits")
    fit = plan.pool().fits[0]
    _, y, se = plan.pool().fit_data(fit)
    s, p = plan.pool().sampler, fit.priors

    def bare() -> float:
        t0 = time.perf_counter()
        fm = build_model(np.asarray(y, float), np.asarray(se, float), mu_mean=p.mu_mean, mu_sd=p.mu_sd,
                         tau_scale=p.tau_scale, family=p.tau_family, target_accept=s.target_accept)
        with fm.model:
            pm.sample(draws=s.draws, tune=s.tune, chains=s.chains, cores=1, random_seed=fit.seed,
                      target_accept=s.target_accept, progressbar=False, compute_convergence_checks=False)
        return time.perf_counter() - t0

    bare()  # warm: imports, PyTensor cache, first-call costs
    execute(plan, "one")
    t_bare, t_exec, draws = [], [], []
    for _ in range(ctx.repeats):
        t_bare.append(bare())
        t_exec.append(execute(plan, "one")[0])
        draws.append(read_draws(_run_dir("one")))
    ratio = _best(t_exec) / _best(t_bare)
    ctx.state["one_fit_seconds"] = _best(t_exec)
    ctx.fig("bare pm.sample (build_model + pm.sample, best)", _best(t_bare), "s")
    ctx.fig("execute_plan one fit, report=False (best)", _best(t_exec), "s")
    ctx.fig("overhead ratio execute / bare", ratio, "x", "<= 1.3", ratio <= 1.3)
    repeat_same = all(same_draws(draws[0], d) for d in draws[1:])
    ctx.fig("pymc path: repeated runs give identical draws", repeat_same)
    t_rep = []
    for _ in range(1 if ctx.quick else 2):
        t_rep.append(execute(plan, "one_report", report=True)[0])
    ctx.fig("execute_plan one fit, report=True (best)", _best(t_rep), "s")
    ctx.fig("overhead ratio with report=True / bare", _best(t_rep) / _best(t_bare), "x",
            note="information, no target")
    ctx.detail.update({"bare_seconds": t_bare, "execute_seconds": t_exec, "execute_report_seconds": t_rep,
                       "ratio_best": ratio, "ratio_median": statistics.median(t_exec) / statistics.median(t_bare),
                       "draws": s.draws, "tune": s.tune, "chains": s.chains,
                       "bare_call": "build_model(...) + pm.sample(draws, tune, chains, cores=1, random_seed, "
                                    "target_accept, progressbar=False, compute_convergence_checks=False)"})


# -- 2. grid ----------------------------------------------------------------------------------------

def exact_numbers_seconds(text: str) -> float | None:
    """The ``exact numbers … X s`` progress line's seconds (None if absent)."""
    for line in text.splitlines():
        m = NUMBERS_LINE.match(line.strip())
        if m:
            return float(m.group(1))
    return None


# Runs of ~1 s on a host whose speed drifts by 30 % within minutes: the ratio is the median of the
# ratios of adjacent (grid, one-fit) pairs, not best / best (three pairs of one run gave 0.96, 1.14
# and 1.24 best / best; ten pairs, median 1.03).
GRID_PAIRS = 9


def sec_grid(ctx: Context) -> None:
    """The example's sensitivity grid (7 fits) is exact since 0.5 (only main is sampled, as a check):
    its execute_plan versus the one-fit plan's, report=False, same process, interleaved pairs;
    and the exact numbers step (every table of every fit) from its progress line."""
    _quiet_libraries()
    from marketbayesmeta.api import compile_config

    one = compile_config(write_config("one", quick=ctx.quick, prior=False, uncertainty=False))
    grid = compile_config(write_config("grid", quick=ctx.quick))
    execute(one, "one", capture=True)  # warm
    t_grid, t_one, x_grid, x_one, fits_grid = [], [], [], [], []
    for _ in range(GRID_PAIRS if not ctx.quick else ctx.repeats):
        sec, _, err = execute(grid, "grid", capture=True)
        t_grid.append(sec)
        x_grid.append(exact_numbers_seconds(err))
        fits_grid.append(fit_times(err))
        sec, _, err = execute(one, "one", capture=True)
        t_one.append(sec)
        x_one.append(exact_numbers_seconds(err))
    pairs = [g / o for g, o in zip(t_grid, t_one, strict=True)]
    ratio = statistics.median(pairs)
    sampled = len(fits_grid[0])
    ctx.fig(f"execute_plan grid ({len(grid.pool().fits)} fits, {sampled} sampled; best)", _best(t_grid), "s")
    ctx.fig("execute_plan one fit (best)", _best(t_one), "s")
    ctx.fig(f"exact grid ratio grid / one fit (median of {len(pairs)} adjacent pairs)", ratio, "x", "<= 1.2",
            ratio <= 1.2, note=f"pairs {min(pairs):.2f}-{max(pairs):.2f}; best / best {_best(t_grid) / _best(t_one):.2f}; "
                               "was <= 4 when every grid fit was sampled (0.4)")
    if all(x is not None for x in x_grid + x_one):
        ctx.fig("exact numbers step, grid (every table of every fit)", 1000 * _best(x_grid), "ms",
                note=f"one-fit plan {1000 * _best(x_one):.0f} ms; progress line rounds to 0.1 s")
    same = same_draws(read_draws(_run_dir("grid")), read_draws(_run_dir("one")))
    ctx.fig("main fit draws identical in grid and one-fit runs", same)
    ctx.detail.update({"grid_seconds": t_grid, "one_seconds": t_one, "grid_exact_numbers_seconds": x_grid,
                       "one_exact_numbers_seconds": x_one, "grid_fit_seconds": fits_grid, "ratio": ratio,
                       "pair_ratios": pairs,
                       "n_fits": len(grid.pool().fits), "sampled_fits": sampled,
                       "fits_exact_check": exact_check(_run_dir("grid"))})
    ctx.state["grid_seconds"] = _best(t_grid)


# -- 3. end to end ----------------------------------------------------------------------------------

def _phases(run: ChildRun) -> dict[str, Any]:
    """Phase split of a single-pool ``marketbayesmeta run`` from the arrival times of its progress
    lines on stderr (runtime/pool_run.py, runtime/fits.py): the pool's first line, ``model built``,
    the ``fit i/n`` lines, ``exact numbers … X s`` and ``report … X s``."""
    def first(rx: re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
        return next(((t, m) for t, s_, x in run.lines if s_ == "err" and (m := rx.match(x))), None)

    start, model, numbers, report = first(START_LINE), first(MODEL_LINE), first(NUMBERS_LINE), first(REPORT_LINE)
    fits = [(t, m) for t, s_, x in run.lines if s_ == "err" and (m := FIT_LINE.match(x))]
    if start is None or model is None or not fits or numbers is None or report is None:
        return {"error": "progress lines not found (see _phases in benchmarks/run.py)",
                "stderr_tail": run.stderr[-800:]}
    t_fit = max(t for t, _ in fits)  # fits may finish out of order (parallel workers)
    t_report, rsec = report[0], float(report[1].group(1))
    return {
        "CLI start + compile (imports, config + tracker -> plan, run directory)": start[0],
        "imports + model build (pymc, NUTS compile)": model[0] - start[0],
        "MCMC check (sampling, diagnostics, exact cross-check)": t_fit - model[0],
        "exact numbers after the check (sensitivity tables; the other exact tables are written before it)":
            numbers[0] - t_fit,
        "artefacts (posterior.nc, run_status.json)": (t_report - rsec) - numbers[0],
        "report (markdown, notebook kernel start + execution, HTML)": rsec,
        "finalize (manifest, commit, interpreter exit)": run.wall - t_report,
        "fits": [{"fit": m.group(3), "seconds": float(m.group(4))} for _, m in fits],
        "model_build_seconds (own line)": float(model[1].group(2)),
        "exact_numbers_seconds (own line)": float(numbers[1].group(1)),
    }


E2E_TARGET = 8.0  # seconds, warm PyTensor cache, 2 cores (issue 14)


def _pytensor_modules(compiledir: Path) -> int:
    """How many compiled modules a PyTensor compile directory (or base directory) holds."""
    return sum(1 for _ in compiledir.glob("**/key.pkl")) if compiledir.exists() else 0


def sec_end_to_end(ctx: Context) -> None:
    """``marketbayesmeta run`` of the example as a subprocess, cold and warm PyTensor cache.

    Cold and warm runs compile into a PyTensor compile directory of their own: empty for the cold
    run, then holding what the example compiled, which is a user's cache after a first run. The
    development machine's default cache also holds the test suite's and the benchmarks' other
    modules, and PyTensor reads the key of every module in it once per process (~4 ms a module):
    one more run on that cache is reported beside, for information, with its module count."""
    cfg = write_config("e2e", quick=ctx.quick)
    out = _run_dir("e2e")
    base = [*_cli(), "run", str(cfg), "--out", str(out)]
    runs: dict[str, ChildRun] = {}
    compiledir = WORK / "e2e-compiledir"
    shutil.rmtree(compiledir, ignore_errors=True)
    env = dict(os.environ)
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("compiledir=")]
    env["PYTENSOR_FLAGS"] = ",".join([*flags, f"compiledir={compiledir}"])
    if ctx.quick:
        print("  (cold run skipped with --quick: the warm-up run fills the cache)", flush=True)
    else:
        runs["cold"] = run_child(base, env=env, timeout=900, measure_rss=True)
    runs["warm-1"] = run_child(base, env=env, timeout=600, measure_rss=True)
    warm = [run_child(base, env=env, timeout=600, measure_rss=True) for _ in range(1 if ctx.quick else 3)]
    runs["warm"] = min(warm, key=lambda r: r.wall)
    own_modules = _pytensor_modules(compiledir)
    from marketbayesmeta.runtime.compiledir import own_compiledir

    default_modules = _pytensor_modules(own_compiledir(os.environ))
    runs["default-cache"] = run_child(base, timeout=600, measure_rss=True)
    for name, r in runs.items():
        if r.returncode != 0 or r.timed_out:
            raise RuntimeError(f"{name} run exited {r.returncode}{' (timed out)' if r.timed_out else ''}: "
                               f"{r.stderr[-600:]}")
    for name, r in runs.items():
        ph = _phases(r)
        load = f"load {r.load[0][0]:.1f} -> {r.load[1][0]:.1f}" if r.load else ""
        if name == "warm-1":
            ctx.fig("warm-up run (first run on the warm cache)", r.wall, "s", note=load)
        elif name == "warm":
            ctx.fig(f"end to end warm (best of {len(warm)} after a warm-up run): wall", r.wall, "s",
                    f"<= {E2E_TARGET:g} s", r.wall <= E2E_TARGET,
                    note=f"CPU {r.cpu_s:.1f} s (all processes); PyTensor cache of {own_modules} modules, "
                         f"the example's; {load}")
        elif name == "default-cache":
            ctx.fig("end to end on this machine's default PyTensor cache (information)", r.wall, "s",
                    note=f"{default_modules} modules in ~/.cache/marketbayesmeta/pytensor; CPU {r.cpu_s:.1f} s; {load}")
        else:
            ctx.fig(f"end to end {name}: wall", r.wall, "s", note=f"fresh PyTensor compiledir; CPU {r.cpu_s:.1f} s")
        if name not in ("warm-1", "default-cache"):
            ctx.fig(f"end to end {name}: peak RSS (largest process)", r.maxrss_mib, "MiB",
                    note=f"process tree peak {r.tree_peak_mib:.0f} MiB (sampled)")
            for phase, sec in ph.items():
                if isinstance(sec, float) and "(own line)" not in phase:
                    ctx.fig(f"  {name} phase: {phase}", sec, "s")
            if "error" in ph:
                ctx.fig(f"  {name} phases", None, ok=False, note=ph["error"])
        ctx.detail[name] = {"wall": r.wall, "cpu_s": r.cpu_s, "load": r.load, "maxrss_mib": r.maxrss_mib,
                            "tree_peak_mib": r.tree_peak_mib, "phases": ph, "returncode": r.returncode}
    ctx.detail["warm_walls"] = [r.wall for r in warm]
    ctx.detail["warm_cpu_s"] = [r.cpu_s for r in warm]


# -- 3b. portfolio ---------------------------------------------------------------------------------

PORTFOLIO_POOL_TARGET = 3.0  # seconds per pool, end to end incl. its executed report, 2 cores (issue 19)
PORTFOLIO_MEMORY_TARGET = 2048  # MiB, whole process tree
DASK_RATIO_TARGET = 1.2  # Dask with two local workers / --jobs 2
RERUN_RATIO_TARGET = 0.10  # re-run after one pool's rows changed / first run


def _portfolio_data(ctx: Context) -> Any:
    sys.path.insert(0, str(BENCH))
    from portfolio_data import CHANNEL_LIFT, make_portfolio

    return make_portfolio(channels=tuple(CHANNEL_LIFT)[:1] if ctx.quick else tuple(CHANNEL_LIFT))


def write_portfolio(ctx: Context, data: Any) -> Path:
    """The synthetic tracker and a config whose ``pools`` x ``analysis.split_by`` yield one pool per
    metric x channel x market (100 with the defaults), in benchmarks/.work/portfolio/."""
    import yaml

    d = WORK / "portfolio"
    d.mkdir(parents=True, exist_ok=True)
    data.write_csv(d / "tracker.csv")
    cfg: dict[str, Any] = {
        "version": 1, "project": {"name": "bench_portfolio"}, "data": {"tracker": "tracker.csv"},
        "analysis": {"split_by": ["channel", "market"]},
        "pools": [{"name": "sales", "metric": "sales", "scale": "log_relative", "evidence_types": ["geo_test"]},
                  {"name": "awareness", "metric": "awareness", "scale": "log_relative",
                   "evidence_types": ["brand_lift"]}],
        "outputs": {"directory": "out"},
    }
    if ctx.quick:
        cfg["sampler"] = {"draws": 500, "tune": 500}
    path = d / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _pool_name(pool: Any) -> str:
    """The plan's name of a generated pool (compiler/pools.py: <pool>__<column>-<value>...)."""
    return f"{pool.metric}__channel-{pool.channel}__market-{pool.market}"


def _pool_lines(run: ChildRun) -> list[dict[str, Any]]:
    return [{"pool": m.group(3), "seconds": float(m.group(4)), "status": m.group(5), "at": t}
            for t, s_, x in run.lines if s_ == "err" and (m := POOL_LINE.match(x))]


def _run_status(out: Path) -> dict[str, Any]:
    return json.loads((out / "run_status.json").read_text(encoding="utf-8"))


def _statuses(out: Path) -> str:
    counts: dict[str, int] = {}
    for pool in _run_status(out)["pools"]:
        counts[pool["status"]] = counts.get(pool["status"], 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def _same_csvs(a: Path, b: Path) -> tuple[int, list[str]]:
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.csv"))
    differ = [n for n in names if not (b / n).is_file() or (a / n).read_bytes() != (b / n).read_bytes()]
    return len(names), differ


def _portfolio_run(name: str, cmd: list[str], out: Path, n_pools: int, *, also: Any = None,
                   timeout: float = 3600) -> ChildRun:
    print(f"  {name}: {' '.join(cmd[1:3])} ... {' '.join(cmd[3:])}", flush=True)
    r = run_child(cmd, timeout=timeout, measure_rss=True, also=also)
    if r.timed_out or not (out / "run_status.json").is_file():  # exit 4 (a pool failed) is a result
        raise RuntimeError(f"{name} exited {r.returncode}{' (timed out)' if r.timed_out else ''}: {r.stderr[-800:]}")
    status = _run_status(out)
    if len(status.get("pools") or []) != n_pools:
        raise RuntimeError(f"{name}: {len(status.get('pools') or [])} pools in run_status.json, expected {n_pools}")
    return r


POOL_PHASES_SCRIPT = """
import sys, time
from marketbayesmeta.api import compile_config
from marketbayesmeta.runtime.pool_run import RunContext
from marketbayesmeta.runtime.portfolio import PoolTask, pool_task
plan = compile_config(sys.argv[1])
ctx = RunContext.of(plan, quiet=False, report=True)
for pool in plan.pools[: int(sys.argv[2])]:
    r = pool_task(PoolTask(pool, ctx))
    print(f"TASK {pool.name} {r.seconds:.3f}", file=sys.stderr, flush=True)
"""
PHASE_LINE = re.compile(r"^\[(\S+)\] (model built|fit 1/1 main|exact numbers|report) .*?\u2026 ([0-9.]+) s")


def _pool_phases(cfg: Path, k: int = 5) -> dict[str, Any]:
    """Where a pool's time goes: ``k`` pools run one after another in one process, as a worker runs
    them (its report kernel kept), from the pools' own progress lines; the first pool (imports,
    model compile, kernel start) is reported apart."""
    proc = subprocess.run([PY, "-c", POOL_PHASES_SCRIPT, str(cfg), str(k)], capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"pool phases: exit {proc.returncode}: {proc.stderr[-1000:]}")
    tasks: list[tuple[str, float]] = []
    phases: dict[str, dict[str, float]] = {}
    for line in proc.stderr.splitlines():
        if line.startswith("TASK "):
            _, name, secs = line.split()
            tasks.append((name, float(secs)))
        elif m := PHASE_LINE.match(line):
            phases.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3))
    return {"tasks": tasks, "phases": phases}


def sec_portfolio(ctx: Context) -> None:
    """A synthetic tracker of 100 pools x 8 studies (benchmarks/portfolio_data.py) through
    ``marketbayesmeta run --jobs 2``, on a Dask LocalCluster of two one-thread workers, and again with
    --jobs 2 after one pool's rows changed (the other pools are reused)."""
    data = _portfolio_data(ctx)
    n = len(data.pools)
    cfg = write_portfolio(ctx, data)
    out_jobs, out_dask = WORK / "portfolio" / "out_jobs", WORK / "portfolio" / "out_dask"
    for d in (out_jobs, out_dask):
        shutil.rmtree(d, ignore_errors=True)
    first = _portfolio_run("--jobs 2", [*_cli(), "run", str(cfg), "--jobs", "2", "--out", str(out_jobs)],
                           out_jobs, n)
    first_statuses = _statuses(out_jobs)
    # Dask: a LocalCluster started here (two worker processes, one thread each), cold like --jobs 2's workers
    import psutil
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        nannies = psutil.Process().children()  # the cluster's processes (with their workers below them)
        dask = _portfolio_run("--dask", [*_cli(), "run", str(cfg), "--dask", cluster.scheduler_address,
                                         "--out", str(out_dask)], out_dask, n, also=lambda: nannies)
    n_csv, differ = _same_csvs(out_jobs, out_dask)
    # re-run after one pool's rows changed: its first study's estimate moves by 0.5 percentage points
    changed = data.pools[0]
    row = next(r for r in data.rows if r["study_id"] == changed.study_ids[0])
    row["estimate"] = f"{float(row['estimate']) + 0.5:.2f}"
    write_portfolio(ctx, data)
    rerun = _portfolio_run("re-run, one pool changed", [*_cli(), "run", str(cfg), "--jobs", "2", "--out",
                                                         str(out_jobs)], out_jobs, n)
    pools = _run_status(out_jobs)["pools"]
    ran = sorted(p["name"] for p in pools if not p["reused"])

    per_pool = first.wall / n
    ctx.fig(f"{n} pools x 8 studies, --jobs 2: wall", first.wall, "s", f"<= {PORTFOLIO_POOL_TARGET * n:g} s",
            first.wall <= PORTFOLIO_POOL_TARGET * n,
            note=f"CPU {first.cpu_s:.0f} s (all processes); load {first.load[0][0]:.1f} -> {first.load[1][0]:.1f}")
    ctx.fig("  per pool (wall / pools; incl. its executed report)", per_pool, "s", f"<= {PORTFOLIO_POOL_TARGET:g} s",
            per_pool <= PORTFOLIO_POOL_TARGET, note=f"CPU per pool {first.cpu_s / n:.2f} s")
    ctx.fig("  peak memory, whole process tree (sampled every 50 ms)", first.tree_peak_mib, "MiB",
            f"<= {PORTFOLIO_MEMORY_TARGET} MiB", first.tree_peak_mib <= PORTFOLIO_MEMORY_TARGET,
            note=f"largest process {first.maxrss_mib:.0f} MiB")
    ctx.fig("  pool statuses", first_statuses)
    tasks = _pool_lines(first)
    if tasks:
        secs = sorted(t["seconds"] for t in tasks)
        ctx.fig("  pool task seconds in a worker (median; first of a worker; max)", statistics.median(secs), "s",
                note=f"first {tasks[0]['seconds']:.1f} s, max {secs[-1]:.1f} s; two workers run at once")
        t_first_pool, t_last_pool = min(t["at"] for t in tasks), max(t["at"] for t in tasks)
        ctx.fig("  before the first pool ends (CLI start, compile, worker start, first pools)", t_first_pool, "s")
        ctx.fig("  after the last pool (portfolio.csv, portfolio report, manifest, commit)", first.wall - t_last_pool,
                "s")
    split = _pool_phases(cfg)
    later = [name for name, _ in split["tasks"][1:]]
    if later:
        def mean(key: str) -> float:
            return statistics.mean(split["phases"].get(name, {}).get(key, 0.0) for name in later)

        task_mean = statistics.mean(secs for _, secs in split["tasks"][1:])
        sampling, report = mean("fit 1/1 main"), mean("report")
        ctx.fig("  one worker's pool, after its first (serial, one process): task", task_mean, "s",
                note=f"sampling (MCMC check of main, 4 chains) {sampling:.1f} s, report (markdown, notebook in "
                     f"the worker's kernel, HTML) {report:.1f} s, the rest (model data swap, exact numbers, "
                     f"CSVs, posterior.nc, file collection) {task_mean - sampling - report:.1f} s; "
                     f"first pool {split['tasks'][0][1]:.1f} s (imports, model compile, kernel start)")
    ctx.detail["pool_phases"] = split
    ratio = dask.wall / first.wall
    ctx.fig("Dask LocalCluster (2 workers x 1 thread): wall", dask.wall, "s",
            note=f"CPU of the CLI tree {dask.cpu_s:.0f} s (the workers' CPU is not in it); "
                 f"load {dask.load[0][0]:.1f} -> {dask.load[1][0]:.1f}")
    ctx.fig("  Dask / --jobs 2", ratio, "x", f"<= {DASK_RATIO_TARGET:g}", ratio <= DASK_RATIO_TARGET)
    ctx.fig("  peak memory, CLI tree + cluster processes", dask.tree_peak_mib, "MiB")
    ctx.fig("  every CSV identical to the --jobs 2 run", not differ, note=f"{n_csv} CSVs" + (
        f"; differ: {', '.join(differ[:3])}" if differ else ""))
    ctx.fig("  pool statuses (Dask run)", _statuses(out_dask))
    rratio = rerun.wall / first.wall
    ctx.fig("re-run after one pool's rows changed (--jobs 2): wall", rerun.wall, "s",
            note=f"ran: {', '.join(ran) or 'none'}; CPU {rerun.cpu_s:.0f} s")
    ctx.fig("  re-run / first run", rratio, "x", f"<= {RERUN_RATIO_TARGET:g}", rratio <= RERUN_RATIO_TARGET)
    ctx.fig(f"  re-run reused {n - 1} of {n} pools and ran the changed one", ran == [_pool_name(changed)],
            note=f"reused {n - len(ran)}")
    # the same portfolio with nutpie as the MCMC check's NUTS (information: the default is PyMC's)
    nut_dir = WORK / "portfolio_nutpie"
    shutil.rmtree(nut_dir, ignore_errors=True)
    nut_dir.mkdir(parents=True)
    import yaml

    nut_cfg = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    nut_cfg["data"]["tracker"] = str(cfg.parent / nut_cfg["data"]["tracker"])
    nut_cfg["sampler"] = {**(nut_cfg.get("sampler") or {}), "nuts_sampler": "nutpie"}
    (nut_dir / "config.yaml").write_text(yaml.safe_dump(nut_cfg, sort_keys=False), encoding="utf-8")
    nut = _portfolio_run("--jobs 2, nutpie", [*_cli(), "run", str(nut_dir / "config.yaml"), "--jobs", "2", "--out",
                                              str(nut_dir / "out")], nut_dir / "out", n)
    n_csv_nut, differ_nut = _same_csvs(out_jobs, nut_dir / "out")
    reported = [d for d in differ_nut if not d.endswith(("diagnostics.csv", "prior_sensitivity.csv",
                                                          "uncertainty_sensitivity.csv", "portfolio.csv"))]
    ctx.fig("the same with sampler.nuts_sampler: nutpie, --jobs 2: wall", nut.wall, "s",
            note=f"{nut.wall / n:.2f} s per pool (information: the default check sampler is PyMC's NUTS); "
                 f"CPU {nut.cpu_s:.0f} s; {len(differ_nut)} of {n_csv_nut} CSVs differ from the PyMC run"
                 f" ({len(reported)} outside diagnostics, portfolio.csv's pool_hash and the sensitivity tables'"
                 f" check columns{': ' + ', '.join(reported[:3]) if reported else ''})")
    for name, r in (("jobs2", first), ("dask", dask), ("rerun", rerun), ("nutpie", nut)):
        ctx.detail[name] = {"wall": r.wall, "cpu_s": r.cpu_s, "load": r.load, "maxrss_mib": r.maxrss_mib,
                            "tree_peak_mib": r.tree_peak_mib, "pool_tasks": _pool_lines(r),
                            "stderr_tail": r.stderr[-2000:]}
    ctx.detail.update({"pools": n, "csv_compared": n_csv, "csv_differ": differ, "rerun_ran": ran,
                       "changed_pool": _pool_name(changed)})


# -- 4. compile scale -------------------------------------------------------------------------------

def gen_tracker(n: int, path: Path, seed: int = 12345) -> None:
    """A synthetic tracker of ``n`` rows: every unit, SE / CI / scenario uncertainty, excluded rows
    (other metrics, evidence types, triangulate-only, not analysis-ready, incompatible units), a few
    re-entered studies (possible duplicates), commas and non-ASCII text in quoted fields."""
    import csv

    import numpy as np

    rng = np.random.default_rng(seed)
    units = ["relative_percent", "relative_fraction", "ratio", "log_relative", "percentage_point",
             "proportion_difference"]
    unit = rng.choice(units, n, p=[0.35, 0.2, 0.2, 0.1, 0.1, 0.05])
    evidence = rng.choice(["geo_test", "lift_test", "mmm", "brand_lift"], n, p=[0.6, 0.2, 0.15, 0.05])
    metric = rng.choice(["sales", "conversions", "iroas", "awareness"], n, p=[0.7, 0.15, 0.1, 0.05])
    kind = rng.choice(["se", "ci", "scenario"], n, p=[0.6, 0.3, 0.1])
    ready = rng.random(n) < 0.85
    lift = rng.normal(0.03, 0.04, n)
    sd = np.abs(rng.normal(0.02, 0.008, n)) + 0.003
    start = np.datetime64("2015-01-01") + rng.integers(0, 4000, n)
    length = rng.integers(14, 90, n)
    brand, market, channel = rng.integers(0, 40, n), rng.integers(0, 60, n), rng.integers(0, 7, n)
    channels = ["tv", "search", "social", "radio", "online_video", "display", "ooh"]
    forward = {
        "relative_percent": lambda x: 100 * np.expm1(x), "relative_fraction": np.expm1, "ratio": np.exp,
        "log_relative": lambda x: x, "percentage_point": lambda x: 20 * x, "proportion_difference": lambda x: 0.2 * x,
    }
    levels = [(90, 1.6448536), (95, 1.959964), (0.8, 1.2815516)]
    header = ["study_id", "study_name", "evidence_type", "metric", "unit", "estimate", "standard_error",
              "ci_lower", "ci_upper", "ci_level", "uncertainty_scenario", "analysis_ready", "brand", "market",
              "channel", "population", "window_start", "window_end", "design", "source", "notes"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        prev = None
        for i in range(n):
            f_ = forward[unit[i]]
            est = f_(lift[i])
            se = lo = hi = lvl = scn = ""
            if kind[i] == "se":
                se = f"{abs(f_(lift[i] + sd[i]) - est):.5g}"
            elif kind[i] == "ci":
                lvl, z = levels[i % 3]
                lo, hi = f"{f_(lift[i] - z * sd[i]):.6g}", f"{f_(lift[i] + z * sd[i]):.6g}"
            else:
                scn = ("low", "medium", "high")[i % 3]
            keys = [f"brand{brand[i]}", f"market-{market[i]}", channels[channel[i]], "all shoppers",
                    str(start[i]), str(start[i] + length[i])]
            ev, me, rd = evidence[i], metric[i], "yes" if ready[i] else "no"
            if prev is not None and i % 200 == 0:  # a vendor re-analysis of the previous study
                ev, me, keys, rd = prev[0], prev[1], prev[2], "no"
            w.writerow([f"S{i:07d}", f"Study {i} \u2014 {ev} of {me}", ev, me, unit[i], f"{est:.6g}", se, lo, hi,
                        lvl, scn, rd, *keys[:4], keys[4], keys[5], "matched-market holdout", "vendor",
                        "see deck, p. 3" if i % 5 == 0 else ""])
            prev = (ev, me, keys)
    os.replace(tmp, path)


_HWM = r"""
def hwm_kib():  # peak RSS of this process image (VmHWM; ru_maxrss would include the parent's size)
    import resource
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

_COMPILE_CHILD = _HWM + r"""
import json, sys, time
t0 = time.perf_counter()
from marketbayesmeta.api import compile_config
compile_config(sys.argv[2])  # the example: loads the lazily imported modules (pandas, ...)
t1 = time.perf_counter()
rss0 = hwm_kib()
plan = compile_config(sys.argv[1])
t2 = time.perf_counter()
rss1 = hwm_kib()
dec = [r.decision for r in plan.pool().rows]
print("@@BENCH@@" + json.dumps({"import_s": t1 - t0, "compile_s": t2 - t1, "maxrss_after_warmup_kib": rss0,
      "maxrss_kib": rss1, "rows": len(plan.pool().rows), "included": dec.count("included"),
      "scenario": dec.count("scenario"), "excluded": dec.count("excluded"),
      "duplicates": len(plan.pool().duplicates), "readiness": plan.pool().readiness.readiness}))
"""


def _scale_config(n: int) -> Path:
    d = WORK / "scale"
    tracker = d / f"tracker_{n}_v{GEN_VERSION}.csv"
    if not tracker.exists():
        t0 = time.perf_counter()
        gen_tracker(n, tracker)
        print(f"  generated {tracker.name} ({tracker.stat().st_size / MiB:.1f} MiB, "
              f"{time.perf_counter() - t0:.1f} s)", flush=True)
    cfg = d / f"config_{n}.yaml"
    cfg.write_text(
        "version: 1\n"
        f"project: {{name: bench_scale_{n}}}\n"
        f"data: {{tracker: {tracker.name}}}\n"
        "analysis: {metric: sales, scale: log_relative, evidence_types: [geo_test, lift_test]}\n"
        "outputs: {directory: plan_out}\n", encoding="utf-8")
    return cfg


def sec_compile_scale(ctx: Context) -> None:
    """compile_config on synthetic trackers, each in a fresh subprocess (time and peak RSS).

    The child first compiles the example config, so the time excludes one-off lazy imports (they are
    in the startup figures); the peak RSS is the whole process's (VmHWM), imports included."""
    sizes = [1_000, 5_000] if ctx.quick else [1_000, 10_000, 100_000]
    largest = sizes[-1]
    for n in sizes:
        cfg = _scale_config(n)
        r = run_child([PY, "-c", _COMPILE_CHILD, str(cfg), str(EXAMPLE_CONFIG)], timeout=900)
        if r.timed_out:
            ctx.fig(f"compile {n:,} rows: time", None, target="<= 10 s" if n == 100_000 else None, ok=False,
                    note="timed out after 900 s")
            continue
        res = r.marker()
        rss = _mib(res["maxrss_kib"])
        ctx.detail[str(n)] = {**res, "child_wall_s": r.wall, "maxrss_mib": rss,
                              "tracker_bytes": (cfg.parent / f"tracker_{n}_v{GEN_VERSION}.csv").stat().st_size}
        big = n == 100_000
        ctx.fig(f"compile {n:,} rows: compile_config time", res["compile_s"], "s",
                "<= 10 s" if big else None, res["compile_s"] <= 10 if big else None,
                note=f"{res['included']} included, {res['scenario']} scenario, {res['excluded']} excluded, "
                     f"{res['duplicates']} duplicate groups")
        ctx.fig(f"compile {n:,} rows: peak RSS", rss, "MiB", "<= 1024 MiB" if big else None,
                rss <= 1024 if big else None,
                note=f"{_mib(res['maxrss_after_warmup_kib']):.0f} MiB before (imports + example compiled)")
    if len(sizes) >= 2:
        a, b = ctx.detail.get(str(sizes[-2])), ctx.detail.get(str(largest))
        if a and b:
            ctx.fig(f"compile time ratio {largest:,} / {sizes[-2]:,} rows", b["compile_s"] / a["compile_s"], "x",
                    note=f"{largest // sizes[-2]}x the rows")


# -- 5. exact engine --------------------------------------------------------------------------------

def sec_exact(ctx: Context) -> None:
    import numpy as np

    from marketbayesmeta.runtime.exact import exact_posterior

    sizes = [10, 1_000, 10_000] if ctx.quick else [10, 1_000, 100_000]
    for k in sizes:
        rng = np.random.default_rng(k)
        y = rng.normal(0.03, 0.05, k)
        se = rng.uniform(0.01, 0.08, k)

        def once(y: Any = y, se: Any = se) -> float:
            t0 = time.perf_counter()
            exact_posterior(y, se, mu_mean=0.0, mu_sd=1.0, tau_scale=0.5, tau_family="half_normal",
                            interval=0.95)
            return time.perf_counter() - t0

        if k <= 1000:
            once()  # warm-up (the first, smallest size also warms the module)
        times = [once() for _ in range(5 if k <= 1000 else 1)]
        ctx.detail[str(k)] = times
        note = "target: milliseconds (report)" if k == 1000 else ""
        best = _best(times)
        ctx.fig(f"exact_posterior K={k:,}", 1000 * best if best < 1 else best, "ms" if best < 1 else "s", note=note)
    ctx.fig("exact_posterior K=1,000 runs in milliseconds (< 1 s)", 1000 * _best(ctx.detail["1000"]) < 1000)


def sec_exact_tables(ctx: Context) -> None:
    import numpy as np

    from marketbayesmeta.plan import MaterialityRule, PriorSet
    from marketbayesmeta.runtime import exact_tables as et
    from marketbayesmeta.runtime.exact import exact_posterior

    priors = PriorSet(mu_mean=0.0, mu_sd=1.0, tau_scale=0.5, tau_family="half_normal")
    rule = MaterialityRule(mean_shift_sd=0.5, prob_positive_shift=0.1, prob_positive_crosses_half=True,
                       interval_width_change=0.25, rule="benchmark")
    rng = np.random.default_rng(15)
    y, se = rng.normal(0.03, 0.05, 15), rng.uniform(0.01, 0.08, 15)
    ids = [f"s{i}" for i in range(15)]

    def builders(k: int = 10) -> float:  # every single-posterior table of a K-study pool
        post = exact_posterior(y[:k], se[:k], **priors.model_dump())
        t0 = time.perf_counter()
        et.pooled_rows(post, True), et.future_row(post, True), et.fit_stats(post)
        et.study_rows(post, ids[:k], ids[:k], ["included"] * k, y[:k], se[:k], True)
        et.ppc_rows(post, ids[:k], y[:k], se[:k], 0.95)
        et.heterogeneity_rows(post, y[:k], se[:k], "log_relative"), et.model_comparison_rows(post, priors)
        return time.perf_counter() - t0

    def refits(k: int = 15) -> float:  # leave-one-out and cumulative: 2K + 1 engine runs
        t0 = time.perf_counter()
        et.influence_rows(y[:k], se[:k], ids[:k], ids[:k], priors, 0.95, rule, True)
        et.cumulative_rows(y[:k], se[:k], ids[:k], ids[:k], [""] * k, list(range(k)), priors, 0.95, True)
        return time.perf_counter() - t0

    builders(), refits()  # warm-up
    ctx.detail["builders_k10"] = [builders() for _ in range(5)]
    ctx.detail["influence_cumulative_k15"] = [refits() for _ in range(3)]
    b, r = _best(ctx.detail["builders_k10"]), _best(ctx.detail["influence_cumulative_k15"])
    ctx.fig("exact table builders K=10 (pooled, future, studies, ppc, heterogeneity, Bayes factors)", 1000 * b,
            "ms", target="< 100 ms", ok=b < 0.1)
    ctx.fig("influence + cumulative K=15 (31 exact posteriors)", 1000 * r, "ms", target="< 1000 ms", ok=r < 1.0)


# -- 6. startup -------------------------------------------------------------------------------------

_STARTUP_CHILD = r"""
import contextlib, io, json, sys
from marketbayesmeta.cli import _dispatch, build_parser
with contextlib.redirect_stdout(io.StringIO()):
    try:
        rc = _dispatch(sys.argv[1:], build_parser())
    except SystemExit as exc:  # --help exits from argparse
        rc = exc.code
heavy = ["pymc", "pytensor", "arviz", "nutpie", "numba", "xarray", "matplotlib", "scipy", "pandas", "numpy",
         "pydantic", "yaml"]
print("@@BENCH@@" + json.dumps({"rc": rc, "imported": [m for m in heavy if m in sys.modules]}))
"""


def sec_startup(ctx: Context) -> None:
    out = WORK / "startup"
    out.mkdir(parents=True, exist_ok=True)
    commands = {
        "--help": ["--help"],
        "check-config examples/config.yaml": ["check-config", str(EXAMPLE_CONFIG)],
        "compile examples/config.yaml -o <tmp>": ["compile", str(EXAMPLE_CONFIG), "-o", str(out / "plan.json")],
    }
    for label, args in commands.items():
        walls = []
        for _ in range(3):
            r = run_child([*_cli(), *args], timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"{label} exited {r.returncode}: {r.stderr[-400:]}")
            walls.append(r.wall)
        probe = run_child([PY, "-c", _STARTUP_CHILD, *args], timeout=120).marker()
        pymc = "pymc" in probe["imported"]
        ok = _best(walls) < 1 and not pymc
        ctx.fig(f"{label}: wall (best of 3)", _best(walls), "s", "< 1 s, no pymc", ok,
                note=f"pymc imported: {'yes' if pymc else 'no'}; also imports {', '.join(probe['imported']) or 'none'}")
        ctx.detail[label] = {"walls": walls, "imported": probe["imported"], "rc": probe["rc"]}
    r = run_child([PY, "-X", "importtime", "-m", "marketbayesmeta", "--help"], timeout=120)
    imported = [x.split("|")[-1].strip() for x in r.stderr.splitlines() if x.startswith("import time:")]
    ctx.detail["importtime_help_modules"] = len(imported)
    ctx.fig("-X importtime -m marketbayesmeta --help: pymc imported", "pymc" in imported,
            target="no", ok="pymc" not in imported)


# -- 7. nutpie --------------------------------------------------------------------------------------

def sec_nutpie(ctx: Context) -> None:
    _quiet_libraries()
    try:
        import nutpie  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"nutpie is not installed ({exc})") from None
    from marketbayesmeta.api import compile_config

    one = compile_config(write_config("one_nutpie", quick=ctx.quick, prior=False, uncertainty=False,
                                      nuts_sampler="nutpie"))
    times, draws, checks, per_fit = [], [], [], []
    for _ in range(2):
        sec, _, err = execute(one, "one_nutpie", capture=True)
        times.append(sec)
        per_fit.append(fit_times(err))
        draws.append(read_draws(_run_dir("one_nutpie")))
        checks.append(exact_check(_run_dir("one_nutpie")))
    same = same_draws(draws[0], draws[1])
    ctx.fig("nutpie one fit: first run (includes nutpie/numba imports)", times[0], "s")
    ctx.fig("nutpie one fit: second run", times[1], "s")
    if "one_fit_seconds" in ctx.state:
        ctx.fig("nutpie / pymc one-fit time", times[1] / ctx.state["one_fit_seconds"], "x")
    ctx.fig("nutpie: two runs with the same seed give identical draws", same)
    ctx.fig("nutpie one fit: exact cross-check passes", all(c["pass"] for c in checks),
            note=f"max |z| {max(c['max_abs_z'] or 0 for c in checks):.2f}")
    ctx.detail["one_fit"] = {"seconds": times, "fits": per_fit, "identical_draws": same, "exact": checks}
    if ctx.quick:
        print("  (nutpie grid skipped with --quick)", flush=True)
        return
    grid = compile_config(write_config("grid_nutpie", quick=ctx.quick, nuts_sampler="nutpie"))
    sec, _, err = execute(grid, "grid_nutpie", capture=True)
    fits = fit_times(err)
    check = exact_check(_run_dir("grid_nutpie"))
    same_main = same_draws(read_draws(_run_dir("grid_nutpie")), draws[1])
    ctx.fig(f"nutpie grid ({len(grid.pool().fits)} fits)", sec, "s",
            note=f"per fit {min(f['seconds'] for f in fits):.1f}-{max(f['seconds'] for f in fits):.1f} s")
    ctx.fig("nutpie grid / nutpie one fit", sec / times[1], "x")
    if "grid_seconds" in ctx.state:
        ctx.fig("nutpie grid / pymc grid", sec / ctx.state["grid_seconds"], "x")
    ctx.fig("nutpie grid: exact cross-check passes (all fits)", check["pass"],
            note=f"max |z| {check['max_abs_z'] or 0:.2f}" + (f"; failed: {check['failed']}" if check["failed"] else ""))
    ctx.fig("nutpie: main draws identical in grid and one-fit runs", same_main)
    ctx.detail["grid"] = {"seconds": sec, "fits": fits, "exact": check, "main_identical_to_one_fit": same_main}


# -- profile (opt-in) -------------------------------------------------------------------------------

def _cum(stats: Any, path_part: str, func: str) -> float:
    total = 0.0
    for (filename, _, name), (_, _, _, ct, _) in stats.stats.items():
        if name == func and path_part in filename.replace("\\", "/"):
            total += ct
    return total


def _tot(stats: Any, path_part: str, func: str) -> float:
    return sum(tt for (fn, _, name), (_, _, tt, _, _) in stats.stats.items()
               if name == func and path_part in fn.replace("\\", "/"))


def _top(stats: Any, key: str, n: int, only: str | None = None) -> list[str]:
    buf = io.StringIO()
    stats.stream = buf
    stats.sort_stats(key)
    if only:
        stats.print_stats(only, n)
    else:
        stats.print_stats(n)
    return [ln for ln in buf.getvalue().splitlines() if re.match(r"\s+\d", ln)]


_COMPILE_PHASES_CHILD = _HWM + r"""
import json, sys, time
import psutil
from marketbayesmeta.api import compile_config
from marketbayesmeta.compiler import build, tracker
from marketbayesmeta import plan as plan_mod
proc = psutil.Process()
log = []
def timed(name, fn):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            log.append({"phase": name, "seconds": time.perf_counter() - t0,
                        "rss_mib": proc.memory_info().rss / 2**20,
                        "peak_mib": hwm_kib() / 1024})
    return wrapper
for mod, names in ((tracker, ["parse_tracker"]), (build, ["comparable_mask", "model_scale_effects",
        "find_duplicates", "_reason_messages", "readiness_verdict", "build_fits"])):
    for n in names:
        if hasattr(mod, n):
            setattr(mod, n, timed(n, getattr(mod, n)))
P = plan_mod.Plan
_validate = P.model_validate
P.model_validate = classmethod(lambda cls, *a, **k: timed("Plan.model_validate", _validate)(*a, **k))
_hash = P.compute_hash
P.compute_hash = lambda self: timed("Plan.compute_hash (canonical JSON + sha256)", _hash)(self)
t0 = time.perf_counter()
p = compile_config(sys.argv[1])
total = time.perf_counter() - t0
text_t = time.perf_counter(); text = plan_mod.plan_to_text(p); text_s = time.perf_counter() - text_t
print("@@BENCH@@" + json.dumps({"total": total, "phases": log, "plan_json_mib": len(text.encode()) / 2**20,
      "plan_to_text_s": text_s, "peak_mib": hwm_kib() / 1024}))
"""

_COMPILE_CPROFILE_CHILD = r"""
import cProfile, sys
from marketbayesmeta.api import compile_config
cProfile.run("compile_config(sys.argv[1])", sys.argv[2])
print("@@BENCH@@{}")
"""


def sec_profile(ctx: Context) -> None:
    """Where the time goes: execute vs bare pm.sample (cProfile), compile at scale (phase split and
    cProfile), the report phase (per notebook cell), and import costs. Writes benchmarks/.work/profiles/."""
    import cProfile
    import pstats

    _quiet_libraries()
    prof_dir = WORK / "profiles"
    prof_dir.mkdir(parents=True, exist_ok=True)
    # (a) execute vs bare
    import numpy as np
    import pymc as pm

    from marketbayesmeta.api import compile_config
    from marketbayesmeta.runtime.model import build_model

    _quiet_libraries()  # pymc sets its logger level on import
    plan = compile_config(write_config("one", quick=ctx.quick, prior=False, uncertainty=False))
    fit = plan.pool().fits[0]
    _, y, se = plan.pool().fit_data(fit)
    s, p = plan.pool().sampler, fit.priors

    def bare() -> None:
        fm = build_model(np.asarray(y, float), np.asarray(se, float), mu_mean=p.mu_mean, mu_sd=p.mu_sd,
                         tau_scale=p.tau_scale, family=p.tau_family, target_accept=s.target_accept)
        with fm.model:
            pm.sample(draws=s.draws, tune=s.tune, chains=s.chains, cores=1, random_seed=fit.seed,
                      target_accept=s.target_accept, progressbar=False, compute_convergence_checks=False)

    bare()
    execute(plan, "one")
    pr = cProfile.Profile()
    pr.runcall(bare)
    sb = pstats.Stats(pr)
    sb.dump_stats(str(prof_dir / "bare.prof"))
    pr = cProfile.Profile()
    pr.runcall(execute, plan, "one")
    se_ = pstats.Stats(pr)
    se_.dump_stats(str(prof_dir / "execute.prof"))
    mc = "pymc/sampling/mcmc.py"
    buckets_exec = {
        "total execute_plan": _cum(se_, "runtime/execute.py", "execute_plan"),
        "pm.sample": _cum(se_, mc, "sample"),
        "  NUTS iterations (_sample_many)": _cum(se_, mc, "_sample_many"),
        "  of which Python-mode Elemwise.perform (ops without C code)": _cum(se_, "tensor/elemwise.py", "perform"),
        "  of which PyTensor Function.__call__ (self)": _tot(se_, "compile/function/types.py", "__call__"),
        "  init_traces (trace point function compile)": _cum(se_, "pymc/backends/__init__.py", "init_traces"),
        "NUTS step construction (FitModel.step: logp/dlogp compile)": _cum(se_, "runtime/model.py", "step"),
        "build_model": _cum(se_, "runtime/model.py", "build_model"),
        "diagnostics (r-hat, ESS, exact z)": _cum(se_, "runtime/diagnostics.py", "sampler_checks")
        + _cum(se_, "runtime/diagnostics.py", "exact_checks"),
        "exact_posterior": _cum(se_, "runtime/exact.py", "exact_posterior"),
        "derive (theta, future, y_rep draws)": _cum(se_, "runtime/posterior.py", "derive"),
        "_write_results (CSV, sensitivity, posterior.nc)": _cum(se_, "runtime/execute.py", "_write_results"),
        "  of which posterior.nc": _cum(se_, "runtime/execute.py", "_posterior_netcdf"),
        "versions() (importlib.metadata, twice)": _cum(se_, "runtime/execute.py", "versions"),
        "write_manifest": _cum(se_, "audit/manifest.py", "write_manifest"),
    }
    buckets_bare = {
        "total build_model + pm.sample": _cum(sb, "benchmarks/run.py", "bare"),
        "pm.sample": _cum(sb, mc, "sample"),
        "  NUTS iterations (_sample_many)": _cum(sb, mc, "_sample_many"),
        "  init_nuts (NUTS step construction, jitter init)": _cum(sb, mc, "init_nuts"),
        "  init_traces": _cum(sb, "pymc/backends/__init__.py", "init_traces"),
        "build_model": _cum(sb, "runtime/model.py", "build_model"),
    }
    print("  execute_plan (one fit, cProfile):", flush=True)
    for k, v in buckets_exec.items():
        print(f"    {k:60s} {v:7.3f} s", flush=True)
    print("  bare pm.sample (cProfile):", flush=True)
    for k, v in buckets_bare.items():
        print(f"    {k:60s} {v:7.3f} s", flush=True)
    ctx.detail["execute_vs_bare"] = {"execute": buckets_exec, "bare": buckets_bare,
                                     "execute_top_cumulative": _top(se_, "cumulative", 25)}
    # (b) compile at scale: instrumented phase split (real time) and cProfile
    n = 5_000 if ctx.quick else 100_000
    cfg = _scale_config(n)
    r = run_child([PY, "-c", _COMPILE_PHASES_CHILD, str(cfg)], timeout=900)
    res = r.marker()
    known = sum(x["seconds"] for x in res["phases"])  # the instrumented phases do not nest
    print(f"  compile_config {n:,} rows: {res['total']:.2f} s, peak {res['peak_mib']:.0f} MiB, "
          f"plan.json {res['plan_json_mib']:.0f} MiB", flush=True)
    for x in res["phases"]:
        print(f"    {x['phase']:50s} {x['seconds']:7.2f} s  rss {x['rss_mib']:6.0f} MiB  peak {x['peak_mib']:6.0f} MiB",
              flush=True)
    print(f"    {'(rest: row dicts, to_dict, Row objects)':50s} {res['total'] - known:7.2f} s", flush=True)
    ctx.detail["compile_phases"] = {"rows": n, **res, "unattributed_s": res["total"] - known}
    pfile = prof_dir / f"compile_{n}.prof"
    r = run_child([PY, "-c", _COMPILE_CPROFILE_CHILD, str(cfg), str(pfile)], timeout=1200)
    r.marker()
    sc = pstats.Stats(str(pfile))
    ctx.detail["compile_cprofile_top_tottime"] = _top(sc, "tottime", 20)
    ctx.detail["compile_cprofile_top_cumulative_marketbayesmeta"] = _top(sc, "cumulative", 25, "marketbayesmeta")
    print("  compile cProfile, top by own time:", flush=True)
    for ln in ctx.detail["compile_cprofile_top_tottime"][:12]:
        print("   " + ln[:150], flush=True)
    # (c) report phase per cell
    ctx.detail["report"] = _profile_report(ctx)
    # (d) import costs (fresh interpreters)
    base = _best([run_child([PY, "-c", "pass"]).wall for _ in range(3)])
    imports = {}
    for mod in ("pymc", "arviz", "nutpie", "matplotlib.pyplot", "pandas", "marketbayesmeta.report",
                "marketbayesmeta.api"):
        imports[mod] = _best([run_child([PY, "-W", "ignore", "-c", f"import {mod}"]).wall for _ in range(2)]) - base
        print(f"  import {mod:40s} {imports[mod]:6.2f} s", flush=True)
    ctx.detail["import_seconds"] = {"python_startup": base, **imports}


def _profile_report(ctx: Context) -> dict[str, Any]:
    import nbclient
    import nbformat

    from marketbayesmeta import report as R
    from marketbayesmeta.api import compile_config
    from marketbayesmeta.report import html as report_html
    from marketbayesmeta.report import notebook as report_notebook
    from marketbayesmeta.report.write import write_markdown

    grid = compile_config(write_config("grid", quick=ctx.quick))
    execute(grid, "report_src")
    rd = _run_dir("report_profile")
    shutil.rmtree(rd, ignore_errors=True)
    shutil.copytree(_run_dir("report_src"), rd)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    R.write_reports(rd)
    out["write_reports_total_first"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_markdown(R.load_run(rd))
    out["markdown"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    nb = R.build_notebook()
    out["build_notebook"] = time.perf_counter() - t0
    orig = nbclient.NotebookClient.__init__

    def init(self: Any, *a: Any, **k: Any) -> None:
        k["record_timing"] = True
        orig(self, *a, **k)

    nbclient.NotebookClient.__init__ = init  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        report_notebook.execute_notebook(nb, rd)
        out["execute_notebook"] = time.perf_counter() - t0
    finally:
        nbclient.NotebookClient.__init__ = orig  # type: ignore[method-assign]
    cells = []
    for i, cell in enumerate(nb.cells):
        ex = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in ex and "shell.execute_reply" in ex:
            a = datetime.fromisoformat(ex["iopub.execute_input"].replace("Z", "+00:00"))
            b = datetime.fromisoformat(ex["shell.execute_reply"].replace("Z", "+00:00"))
            cells.append({"cell": i, "seconds": (b - a).total_seconds(),
                          "source": " | ".join(cell.source.splitlines())[:90]})
    out["cells"] = cells
    out["cells_total"] = sum(c["seconds"] for c in cells)
    trivial = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    t0 = time.perf_counter()
    report_notebook.execute_notebook(trivial, rd)
    out["kernel_start_stop (trivial notebook)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    html_text = report_html.export_html(nb)
    out["export_html"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    R.find_external_references(html_text)
    out["find_external_references"] = time.perf_counter() - t0
    print("  report phase:", flush=True)
    for k, v in out.items():
        if isinstance(v, float):
            print(f"    {k:50s} {v:6.2f} s", flush=True)
    for c in sorted(cells, key=lambda c: -c["seconds"])[:6]:
        print(f"    cell {c['cell']:2d} {c['seconds']:6.2f} s  {c['source'][:70]}", flush=True)
    return out


# -- main -------------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Context], None]] = {
    "overhead": sec_overhead,
    "grid": sec_grid,
    "end_to_end": sec_end_to_end,
    "portfolio": sec_portfolio,
    "compile_scale": sec_compile_scale,
    "exact": sec_exact,
    "exact_tables": sec_exact_tables,
    "startup": sec_startup,
    "nutpie": sec_nutpie,
    "profile": sec_profile,
}
DEFAULT = [s for s in SECTIONS if s != "profile"]


def print_table(figures: list[Figure]) -> None:
    rows = [("section", "figure", "value", "target", "result", "note")]
    rows += [(f.section, f.name, f.shown(), f.target or "", f.result, f.note) for f in figures]
    limits = (14, 72, 10, 16, 6, 80)
    widths = [min(max(len(r[i]) for r in rows), limits[i]) for i in range(6)]

    def cut(text: str, w: int) -> str:
        return text if len(text) <= w else text[: w - 1] + "\u2026"

    print()
    for j, r in enumerate(rows):
        print("  ".join(cut(c, w).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer draws (smoke run)")
    ap.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--profile", action="store_true", help="also run the profile section")
    ap.add_argument("--json", type=Path, help="results file (default benchmarks/results.json for a full "
                    "run, benchmarks/.work/results-partial.json with --quick or --only)")
    args = ap.parse_args(argv)
    names = DEFAULT + (["profile"] if args.profile else [])
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SECTIONS]
        if unknown:
            ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    partial = args.quick or bool(args.only)
    out_json = args.json or (WORK / "results-partial.json" if partial else BENCH / "results.json")
    WORK.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=args.quick, repeats=2 if args.quick else 3)
    info = machine()
    print(f"marketbayesmeta benchmarks: {', '.join(names)}{' (quick)' if args.quick else ''}")
    print(f"{info.get('cpu_model', info['processor'])}, {info['cpu_count']} CPU(s), {info['platform']}, "
          f"load {info.get('load_average_at_start')}", flush=True)
    status: dict[str, Any] = {}
    t_all = time.perf_counter()
    for name in names:
        ctx.section = name
        print(f"\n== {name} ==", flush=True)
        t0 = time.perf_counter()
        try:
            SECTIONS[name](ctx)
            status[name] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - a failing section is reported and the run goes on
            reason = f"{type(exc).__name__}: {exc}".strip()
            print(f"  FAIL: {reason}", flush=True)
            ctx.figures.append(Figure(name, "section failed", None, ok=False, note=reason[:300]))
            status[name] = {"ok": False, "error": reason, "traceback": traceback.format_exc()}
        status[name]["seconds"] = time.perf_counter() - t0
        print(f"  ({status[name]['seconds']:.0f} s)", flush=True)
    total = time.perf_counter() - t_all
    info["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    print_table(ctx.figures)
    failed = [f for f in ctx.figures if f.ok is False]
    print(f"\n{len([f for f in ctx.figures if f.ok])} passed, {len(failed)} failed, total {total:.0f} s")
    doc = {
        "machine": info, "quick": args.quick, "sections_run": names, "total_seconds": total,
        "sections": status,
        "figures": [{"section": f.section, "figure": f.name, "value": f.value, "unit": f.unit,
                     "target": f.target, "result": f.result, "note": f.note} for f in ctx.figures],
        "details": ctx.details,
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(doc, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    print(f"wrote {out_json.relative_to(ROOT) if out_json.is_relative_to(ROOT) else out_json}")
    return 1 if failed else 0


def _jsonable(x: Any) -> Any:
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:
        pass
    return str(x)


if __name__ == "__main__":
    sys.exit(main())
