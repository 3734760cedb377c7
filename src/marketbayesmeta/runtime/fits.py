"""Sampling the fits of a pool: one compiled model (and NUTS step) per tau family, built once in
this process; the fits then run here one after another or in forked worker processes that inherit
the compiled model. Each fit has its own seed and the step is re-initialised by every
``pm.sample``, so a fit's draws do not depend on which worker ran it or in what order.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..plan import Fit, Pool


@dataclass
class FitResult:
    fit: Fit
    ids: list[str]
    y: np.ndarray
    se: np.ndarray
    idata: Any = None
    draws: Any = None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.draws is not None

    @property
    def passes(self) -> bool:
        return self.ok and all(r["pass"] for r in self.diagnostics)

    def note(self) -> str:
        """Suffix for the progress line."""
        if not self.ok:
            return f" (failed: {self.error})"
        if not self.passes:
            bad = sorted({f"{r['parameter']} {r['check']}" for r in self.diagnostics if not r["pass"]})
            return f" (diagnostics failed: {', '.join(bad)})"
        return ""


def _quiet_libraries() -> None:
    """Silence PyMC's INFO chatter and PyTensor's BLAS warning (progress is ours to print).

    PyMC sets its logger level on import, so import it first."""
    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    import pymc  # noqa: F401
    logging.getLogger("pymc").setLevel(logging.ERROR)
    logging.getLogger("pytensor").setLevel(logging.ERROR)


def build_models(pool: Pool) -> dict[str, Any]:
    """One compiled model with its NUTS step per tau family used by the pool's fits."""
    from .model import build_model

    models: dict[str, Any] = {}
    for fit in pool.fits:
        p = fit.priors
        if p.tau_family in models:
            continue
        _, y, se = pool.fit_data(fit)
        fm = build_model(np.asarray(y, float), np.asarray(se, float), mu_mean=p.mu_mean, mu_sd=p.mu_sd,
                         tau_scale=p.tau_scale, family=p.tau_family, target_accept=pool.sampler.target_accept)
        if pool.sampler.nuts_sampler == "pymc":
            fm.step()  # compile logp/dlogp now, once, before any fork
        else:
            fm.nutpie_model()  # numba compile, once per plan
        models[p.tau_family] = fm
    return models


def run_fit(pool: Pool, models: dict[str, Any], fit: Fit, *, progressbar: bool = False) -> FitResult:
    """Sample one fit and derive its draws, sampler diagnostics and exact cross-check.

    A failure is recorded in the result (the run goes on to report it); an interrupt propagates."""
    from .diagnostics import exact_checks, sampler_checks
    from .exact import exact_posterior
    from .model import sample_model
    from .posterior import derive

    ids, y, se = pool.fit_data(fit)
    res = FitResult(fit=fit, ids=ids, y=np.asarray(y, float), se=np.asarray(se, float))
    t0 = time.perf_counter()
    s, p = pool.sampler, fit.priors
    try:
        fm = models[p.tau_family]
        fm.set_inputs(res.y, res.se, p.mu_mean, p.mu_sd, p.tau_scale)
        res.idata = sample_model(fm, draws=s.draws, tune=s.tune, chains=s.chains, seed=fit.seed,
                                 progressbar=progressbar, nuts_sampler=s.nuts_sampler)
        res.draws = derive(res.idata.posterior["mu"].values, res.idata.posterior["tau"].values, res.y, res.se,
                           fit.seed)
        exact = exact_posterior(res.y, res.se, mu_mean=p.mu_mean, mu_sd=p.mu_sd, tau_scale=p.tau_scale,
                                tau_family=p.tau_family, interval=pool.reporting.interval)
        res.diagnostics = (sampler_checks(fit.name, res.idata, pool.thresholds)
                           + exact_checks(fit.name, res.idata, exact, pool.thresholds))
    except Exception as exc:  # noqa: BLE001 - recorded; KeyboardInterrupt is not an Exception
        res.error = f"{type(exc).__name__}: {exc}"
    res.seconds = time.perf_counter() - t0
    return res


# -- forked workers -------------------------------------------------------------------------------
_STATE: dict[str, Any] = {}


class _WorkerInterrupted:
    """Returned by a worker that was interrupted (a BaseException would kill a pool worker)."""


def _worker_init(close_fds: tuple[int, ...]) -> None:
    for fd in close_fds:  # the run-directory lock stays with the parent alone
        try:
            os.close(fd)
        except OSError:
            pass
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:  # die with the parent (Linux): no orphan keeps sampling after a SIGKILL
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    _quiet_libraries()


def _worker_fit(index: int) -> tuple[int, FitResult | _WorkerInterrupted]:
    pool: Pool = _STATE["pool"]
    try:
        return index, run_fit(pool, _STATE["models"], pool.fits[index])
    except BaseException:  # noqa: BLE001 - KeyboardInterrupt / SystemExit in a worker
        return index, _WorkerInterrupted()


def default_fit_jobs(pool: Pool) -> int:
    """Worker processes for the grid: one per core, at most 4, at most one per fit."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4, len(pool.fits)))


def sample_fits(pool: Pool, report: Callable[[int, FitResult], None], *, jobs: int = 1,
                progressbar: bool = False, close_fds: tuple[int, ...] = (),
                say: Callable[[str], None] = lambda text: None) -> list[FitResult]:
    """Run every fit of ``pool`` (``jobs`` at a time); ``report(i, result)`` is called as each ends.

    Results come back in pool order whatever the order of completion."""
    t0 = time.perf_counter()
    _quiet_libraries()
    models = build_models(pool)
    n = len(pool.fits)
    if pool.sampler.nuts_sampler != "pymc" or "fork" not in multiprocessing.get_all_start_methods():
        jobs = 1  # nutpie parallelises chains itself and samples a fit in a fraction of a second
    jobs = max(1, min(jobs, n))
    say(f"model built ({', '.join(models)}) … {time.perf_counter() - t0:.1f} s; sampling {n} fit(s) "
        f"in {jobs} process(es)")
    results: list[FitResult | None] = [None] * n
    if jobs == 1:
        for i, fit in enumerate(pool.fits):
            results[i] = run_fit(pool, models, fit, progressbar=progressbar)
            report(i + 1, results[i])
        return [r for r in results if r is not None]
    _STATE.update(pool=pool, models=models)
    workers = multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_init, initargs=(close_fds,))
    try:
        for i, res in workers.imap_unordered(_worker_fit, range(n)):
            if isinstance(res, _WorkerInterrupted):
                raise KeyboardInterrupt("a fit worker was interrupted")
            results[i] = res
            report(i + 1, res)
        workers.close()
    except BaseException:
        workers.terminate()
        raise
    finally:
        workers.join()
        _STATE.clear()
    return [r for r in results if r is not None]
