"""Sampling the fits of a pool: one compiled model (and NUTS step) per tau family, built once in
this process; the fits then run here one after another or in forked worker processes that inherit
the compiled model. Each fit has its own seed and the step is re-initialised by every
``pm.sample``, so a fit's draws do not depend on which worker ran it or in what order.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..plan import Fit, Pool
from .dispatch import TaskFailure, die_with_parent, how_it_ended, run_tasks
from .libraries import load as load_libraries


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
    draws_used: int = 0  # draws per chain of the sample the diagnostics describe
    extensions: int = 0  # times the draws were doubled because only Monte Carlo precision was short

    @property
    def ok(self) -> bool:
        """Sampling produced a posterior: draws of mu and tau (intercept-only fits) or the
        trace itself (the moderators fit keeps no derived draws)."""
        return self.error is None and (self.draws is not None or self.idata is not None)

    @property
    def passes(self) -> bool:
        return self.ok and all(r["pass"] for r in self.diagnostics)

    def note(self) -> str:
        """Suffix for the progress line."""
        if not self.ok:
            return f" (failed: {self.error})"
        extended = f" ({self.draws_used} draws per chain after {self.extensions} extension(s))" if self.extensions else ""
        if not self.passes:
            bad = sorted({f"{r['parameter']} {r['check']}" for r in self.diagnostics if not r["pass"]})
            return f"{extended} (diagnostics failed: {', '.join(bad)})"
        return extended

    def failing(self) -> set[str]:
        return {r["check"] for r in self.diagnostics if not r["pass"]}

    def worst_exact_z(self) -> float:
        """The largest |z| among the failing exact cross-checks (0 when none fails)."""
        return max((abs(r["value"]) for r in self.diagnostics
                    if not r["pass"] and r["check"].startswith("exact_z")), default=0.0)


# Checks that only measure Monte Carlo precision: when these alone fail (r-hat, divergences and BFMI
# pass), more draws are the remedy, so the fit is sampled again with twice the draws.
PRECISION_CHECKS = frozenset({"ess_bulk", "ess_tail", "exact_z_mean", "exact_z_q025", "exact_z_q975"})


def extension_seed(seed: int, k: int) -> int:
    """The seed of a fit's ``k``-th extension: a deterministic stream from the fit's own seed."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0]) % (2**31)


ALWAYS_CHECKED = ("main", "moderators")


def checked_fits(pool: Pool) -> list[Fit]:
    """The fits PyMC samples as a check: main (and the meta-regression), or every distinct fit with
    ``sampler.check: all``."""
    return [f for f in pool.fits if f.same_as is None and (f.kind in ALWAYS_CHECKED or pool.sampler.check == "all")]


# Compiled models kept for the life of the process: building and compiling one costs seconds, and a
# model only holds data as pm.Data inputs that every fit swaps (set_inputs), so the fits of every
# pool of a portfolio, and every run of a long-lived process, reuse it. The NUTS step is
# re-initialised by each pm.sample, so draws do not depend on what the model sampled before.
_MODELS: dict[tuple[Any, ...], Any] = {}


def _model_key(pool: Pool, fit: Fit) -> tuple[Any, ...]:
    key = (fit.priors.tau_family, pool.sampler.target_accept, pool.sampler.nuts_sampler)
    if fit.kind == "moderators" and pool.moderators is not None:
        return ("regression", tuple(pool.moderators.design.term_names), *key)
    return key


def _compile(fm: Any, pool: Pool) -> Any:
    if pool.sampler.nuts_sampler == "pymc":
        fm.step()  # compile logp/dlogp now, once, before any fork
        fm.trace()  # and the trace's point function
    else:
        fm.nutpie_model()  # numba compile, once per process
    return fm


def build_models(pool: Pool, fits: list[Fit]) -> dict[tuple[Any, ...], Any]:
    """One compiled model with its NUTS step per tau family (and per meta-regression design) used by
    ``fits``, cached per process."""
    from .model import build_model, build_regression_model

    for fit in fits:
        key = _model_key(pool, fit)
        if key in _MODELS:
            continue
        p = fit.priors
        _, y, se = pool.fit_data(fit)
        if key[0] == "regression":
            m = pool.moderators
            fm = build_regression_model(np.asarray(y, float), np.asarray(se, float), m.design.array(),
                                        beta_mean=np.asarray(m.beta_mean), beta_sd=np.asarray(m.beta_sd),
                                        tau_scale=p.tau_scale, family=p.tau_family,
                                        target_accept=pool.sampler.target_accept, terms=m.design.term_names)
        else:
            fm = build_model(np.asarray(y, float), np.asarray(se, float), mu_mean=p.mu_mean, mu_sd=p.mu_sd,
                             tau_scale=p.tau_scale, family=p.tau_family, target_accept=pool.sampler.target_accept)
        _MODELS[key] = _compile(fm, pool)
    return {_model_key(pool, fit): _MODELS[_model_key(pool, fit)] for fit in fits}


def _prepare(pool: Pool, fit: Fit, fm: Any, y: np.ndarray, se: np.ndarray) -> Any:
    """Swap the fit's data and priors into its model; return the exact posterior it is checked against
    (an ExactPosterior, or the meta-regression's coefficients and tau by name)."""
    from .exact import exact_posterior
    from .exact_regression import exact_regression
    from .model import set_regression_inputs

    p = fit.priors
    if fit.kind == "moderators" and pool.moderators is not None:
        m = pool.moderators
        set_regression_inputs(fm, y, se, m.design.array(), np.asarray(m.beta_mean), np.asarray(m.beta_sd),
                              p.tau_scale)
        post = exact_regression(y, se, m.design.array(), beta_mean=m.beta_mean, beta_sd=m.beta_sd,
                                tau_scale=p.tau_scale, tau_family=p.tau_family, interval=pool.reporting.interval,
                                terms=m.design.term_names)
        return {**{f"beta[{t}]": post.coefficient(t) for t in m.design.term_names}, "tau": post.tau}
    fm.set_inputs(y, se, p.mu_mean, p.mu_sd, p.tau_scale)
    return exact_posterior(y, se, mu_mean=p.mu_mean, mu_sd=p.mu_sd, tau_scale=p.tau_scale,
                           tau_family=p.tau_family, interval=pool.reporting.interval)


# What forked workers inherit from the parent (set just before the fork: compiled models do not pickle)
_STATE: dict[str, Any] = {}


class WorkerDied(RuntimeError):
    """A forked sampling process died (killed, out of memory, a crash in compiled code)."""


def chain_groups(chains: int, jobs: int) -> list[tuple[int, int]]:
    """``chains`` split into at most ``jobs`` contiguous groups ``(first, count)``, as even as possible
    (the larger groups first)."""
    jobs = max(1, min(jobs, chains))
    size, extra = divmod(chains, jobs)
    groups, first = [], 0
    for j in range(jobs):
        count = size + (j < extra)
        groups.append((first, count))
        first += count
    return groups


def _chain_split(pool: Pool, chain_jobs: int) -> list[tuple[int, int]]:
    """The chain groups a fit of ``pool`` is sampled in: one group unless its chains can be split
    (PyMC's NUTS, fork available, and not a daemonic process, which may not start children)."""
    s = pool.sampler
    if (s.nuts_sampler != "pymc" or "fork" not in multiprocessing.get_all_start_methods()
            or multiprocessing.current_process().daemon):
        return [(0, s.chains)]
    return chain_groups(s.chains, chain_jobs)


def _concat_chains(parts: list[Any]) -> Any:
    """One InferenceData from chain groups sampled apart: posterior and sample_stats concatenated
    along ``chain`` (renumbered 0..), the other groups (data) from the first part."""
    import xarray as xr

    idata = parts[0]
    if len(parts) == 1:
        return idata
    for group in ("posterior", "sample_stats"):
        if group in idata.groups():
            joined = xr.concat([getattr(p, group) for p in parts], dim="chain", combine_attrs="override")
            setattr(idata, group, joined.assign_coords(chain=np.arange(joined.sizes["chain"])))
    return idata


def _worker_chains(group: tuple[int, int]) -> Any:
    """Sample one group ``(first, count)`` of a fit's chains in a forked chain worker; an error or an
    interrupt comes back as a value (see :func:`sample_chains`)."""
    from .model import sample_model

    fm, draws, tune, seed = _STATE["chains"]  # inherited through the fork: a compiled model does not pickle
    first, count = group
    try:
        return sample_model(fm, draws=draws, tune=tune, chains=count, seed=seed, progressbar=False,
                            first_chain=first)
    except BaseException as exc:  # noqa: BLE001 - an interrupt or error must reach the parent as a value
        return exc if isinstance(exc, Exception) else _WorkerInterrupted()


class ChainError(RuntimeError):
    """A chain worker's error that could not be sent back whole (it does not pickle): its text."""


def _chain_worker_main(send: Any, group: tuple[int, int], close_fds: tuple[int, ...]) -> None:
    _worker_init(close_fds)
    result = _worker_chains(group)
    try:
        send.send(result)  # pickled before anything is written: a failure sends nothing
    except Exception as exc:  # noqa: BLE001 - an error that does not pickle must not look like a death
        what = f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else \
            f"its result could not be sent back ({type(exc).__name__}: {exc})"
        send.send(ChainError(f"a chain worker failed: {what}"))
    send.close()


def _chain_result(proc: Any, recv: Any) -> Any:
    """The chain worker's result; WorkerDied if it ended without one (killed, out of memory, ...)."""
    while True:
        if recv.poll(0.5):
            try:
                return recv.recv()
            except EOFError:
                break
        if proc.exitcode is not None and not recv.poll(0):
            break
    proc.join()
    raise WorkerDied(_died(int(proc.exitcode), "and the fit's chains it was sampling were lost with it"))


def sample_chains(fm: Any, pool: Pool, *, draws: int, seed: int, progressbar: bool = False, chain_jobs: int = 1,
                  close_fds: tuple[int, ...] = ()) -> Any:
    """Sample one fit's chains, here or (``chain_jobs`` > 1, PyMC's NUTS, fork available) split
    over this process and ``chain_jobs - 1`` forked ones that inherit the compiled model: the same
    draws either way (:func:`~.model.chain_seed`), in about half the time on two idle cores. A fit
    alone in a run would otherwise sample its four chains one after another on one core.

    Each forked process samples one group and sends it back through a pipe, then exits (plain
    processes, not a multiprocessing pool: a pool whose worker was killed can deadlock when it is
    terminated); one that dies without sending fails the fit with WorkerDied, and an interrupt kills
    them all."""
    from .model import sample_model

    s = pool.sampler
    groups = _chain_split(pool, chain_jobs)
    if len(groups) == 1:
        return sample_model(fm, draws=draws, tune=s.tune, chains=s.chains, seed=seed, progressbar=progressbar,
                            nuts_sampler=s.nuts_sampler)
    ctx = multiprocessing.get_context("fork")
    workers: list[tuple[Any, Any]] = []
    _STATE["chains"] = (fm, draws, s.tune, seed)
    try:
        for group in groups[1:]:
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_chain_worker_main, args=(send, group, close_fds), daemon=True)
            workers.append((proc, recv))
            try:
                proc.start()
            finally:
                send.close()
        first, count = groups[0]
        # the progress bar (a terminal only) follows this process's chains; the others keep pace
        parts = [sample_model(fm, draws=draws, tune=s.tune, chains=count, seed=seed, progressbar=progressbar,
                              first_chain=first)]
        for proc, recv in workers:
            part = _chain_result(proc, recv)
            if isinstance(part, _WorkerInterrupted):
                raise KeyboardInterrupt("a chain worker was interrupted")
            if isinstance(part, Exception):
                raise part
            parts.append(part)
    finally:
        del _STATE["chains"]
        for proc, recv in workers:
            if proc.pid is not None:
                if proc.exitcode is None:
                    proc.kill()
                proc.join()
            recv.close()
    return _concat_chains(parts)


def run_fit(pool: Pool, models: dict[tuple[Any, ...], Any], fit: Fit, *, progressbar: bool = False,
            chain_jobs: int = 1, close_fds: tuple[int, ...] = ()) -> FitResult:
    """Sample one fit and derive its draws, sampler diagnostics and exact cross-check.

    A failure is recorded in the result (the run goes on to report it); an interrupt propagates."""
    from .diagnostics import exact_checks, sampler_checks
    from .posterior import derive

    ids, y, se = pool.fit_data(fit)
    res = FitResult(fit=fit, ids=ids, y=np.asarray(y, float), se=np.asarray(se, float))
    t0 = time.perf_counter()
    s = pool.sampler
    try:
        fm = models[_model_key(pool, fit)]
        exact = _prepare(pool, fit, fm, res.y, res.se)
        draws, limit, worst = s.draws, s.draw_limit, 0.0
        while True:
            seed = fit.seed if res.extensions == 0 else extension_seed(fit.seed, res.extensions)
            res.idata = sample_chains(fm, pool, draws=draws, seed=seed, progressbar=progressbar,
                                      chain_jobs=chain_jobs, close_fds=close_fds)
            res.draws_used = draws
            res.diagnostics = (sampler_checks(fit.name, res.idata, pool.thresholds)
                               + exact_checks(fit.name, res.idata, exact, pool.thresholds))
            for row in res.diagnostics:
                row["draws"] = draws
            failing = res.failing()
            previous, worst = worst, res.worst_exact_z()
            if (not failing or not failing <= PRECISION_CHECKS or draws >= limit
                    or (res.extensions and worst > previous > 0)):
                # Stop: passed; a failure more draws cannot fix (r-hat, divergences, BFMI); the
                # limit; or an exact disagreement that grew with the draws (Monte Carlo noise shrinks
                # when the draws double, a real difference between the posteriors grows like their root).
                break
            draws = min(2 * draws, limit)
            res.extensions += 1
        if fit.kind != "moderators":
            res.draws = derive(res.idata.posterior["mu"].values, res.idata.posterior["tau"].values, res.y,
                               res.se, fit.seed)
    except Exception as exc:  # noqa: BLE001 - recorded; KeyboardInterrupt is not an Exception
        res.error = f"{type(exc).__name__}: {exc}"
    res.seconds = time.perf_counter() - t0
    return res


# -- forked workers -------------------------------------------------------------------------------


class _WorkerInterrupted:
    """Sent back by a chain worker that was interrupted (the parent then raises KeyboardInterrupt)."""


def _let_go_of(close_fds: tuple[int, ...]) -> None:
    """In a forked worker: close the parent's files in ``close_fds`` (the run-directory lock stays
    with the parent alone)."""
    for fd in close_fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _worker_init(close_fds: tuple[int, ...]) -> None:
    _let_go_of(close_fds)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()  # Linux: no orphan keeps sampling after a SIGKILL
    load_libraries()


def _worker_fit(index: int) -> FitResult:
    """Fit number ``index`` of the pool in a forked fit worker (pool, models and fits inherited)."""
    return run_fit(_STATE["pool"], _STATE["models"], _STATE["fits"][index])


def _fit_task(index: int) -> FitResult:
    """A fit worker's task: the first one also lets go of the parent's files and quiets the libraries
    (the worker already ignores SIGINT and dies with its parent: :mod:`.dispatch`)."""
    if not _STATE.get("worker_ready"):
        _let_go_of(_STATE["close_fds"])
        load_libraries()
        _STATE["worker_ready"] = True
    return _worker_fit(index)


def _lost_fit(fit: Fit, failure: TaskFailure) -> FitResult:
    """The result of a fit whose worker process died (or failed outside the fit) while sampling it."""
    if failure.exitcode is not None:
        error = "WorkerDied: " + _died(failure.exitcode, "and the fit it was sampling was lost with it")
    else:
        error = (f"WorkerFailed: a sampling worker process failed ({failure.message}); run again, with --fit-jobs 1 "
                 "to sample in one process")
    return FitResult(fit=fit, ids=[], y=np.array([]), se=np.array([]), error=error)


def _died(code: int, lost: str) -> str:
    """What to tell the user when a sampling process ended with exit code ``code``."""
    return (f"a sampling worker process died ({how_it_ended(code)}: out of memory, or a crash in compiled code) {lost}; "
            "run again, with --fit-jobs 1 to sample in one process")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_fit_jobs(pool: Pool) -> int:
    """Worker processes for the checked fits: one per core, at most 4, at most one per fit."""
    return max(1, min(_cores(), 4, len(checked_fits(pool))))


def default_chain_jobs(pool: Pool, fit_jobs: int) -> int:
    """Processes one fit's chains are split over. Only fits sampled one at a time in this process
    are split (``fit_jobs`` 1, as when a run checks one fit; :func:`sample_fits`): over the cores,
    at most one per chain. With ``fit_jobs`` > 1 the fit processes use the cores: 1."""
    return 1 if fit_jobs > 1 else max(1, min(_cores(), pool.sampler.chains))


def sample_fits(pool: Pool, report: Callable[[int, FitResult], None], *, jobs: int = 1, chain_jobs: int = 1,
                progressbar: bool = False, close_fds: tuple[int, ...] = (),
                say: Callable[[str], None] = lambda text: None) -> list[FitResult]:
    """Run every fit of ``pool`` (``jobs`` at a time); ``report(i, result)`` is called as each ends.
    When the fits run here one after another (``jobs`` 1), each splits its chains over
    ``chain_jobs`` processes (:func:`sample_chains`).

    Results come back in pool order whatever the order of completion."""
    t0 = time.perf_counter()
    load_libraries()
    fits = checked_fits(pool)
    models = build_models(pool, fits)
    n = len(fits)
    if pool.sampler.nuts_sampler != "pymc" or "fork" not in multiprocessing.get_all_start_methods():
        jobs = 1  # nutpie parallelises chains itself and samples a fit in a fraction of a second
    jobs = max(1, min(jobs, n))
    chain_jobs = len(_chain_split(pool, chain_jobs)) if jobs == 1 else 1
    how = f"{jobs} process(es)" if chain_jobs == 1 else f"{chain_jobs} processes (its chains split between them)"
    say(f"model built ({', '.join(str(k[0]) for k in models)}) … {time.perf_counter() - t0:.1f} s; sampling {n} fit(s) "
        f"in {how}")
    results: list[FitResult | None] = [None] * n
    if jobs == 1:
        for i, fit in enumerate(fits):
            results[i] = run_fit(pool, models, fit, progressbar=progressbar, chain_jobs=chain_jobs,
                                 close_fds=close_fds)
            report(i + 1, results[i])
        return [r for r in results if r is not None]
    # forked worker processes (dispatch.run_tasks) inherit the compiled models; a worker that dies
    # fails the fit it was sampling and is replaced for the others
    def done(i: int, res: FitResult) -> None:
        results[i] = res
        report(i + 1, res)

    _STATE.update(pool=pool, models=models, fits=fits, close_fds=close_fds)
    try:
        run_tasks(range(n), _fit_task, jobs=jobs, start_method="fork", on_result=done,
                  on_error=lambda i, failure: done(i, _lost_fit(fits[i], failure)))
    finally:
        _STATE.clear()
    return [r for r in results if r is not None]
