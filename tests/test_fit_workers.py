"""Forked fit workers (``--fit-jobs N``): a worker that dies mid-fit (killed by the kernel for
memory, a crash in compiled code) must not leave the run waiting forever for its result."""

from __future__ import annotations

import faulthandler
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from helpers import four_rows, write_project
from marketbayesmeta.api import compile_config
from marketbayesmeta.runtime import fits

pytestmark = pytest.mark.slow
REAL_WORKER_FIT = fits._worker_fit


def dies_on_the_second(index: int) -> object:
    """A fit worker that kills its own process on the second fit (runs in the forked worker)."""
    if index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return REAL_WORKER_FIT(index)


def exits_on_the_first(index: int) -> object:
    """A fit worker whose first fit raises SystemExit (runs in the forked worker)."""
    if index == 0:
        raise SystemExit(3)
    return REAL_WORKER_FIT(index)


def kills_itself(_: object) -> None:
    """A chain worker that kills its own process (runs in the forked worker)."""
    os.kill(os.getpid(), signal.SIGKILL)


def _several_fits_pool(tmp_path: Path) -> object:
    """A pool whose checked fits are main and the prior grid's (short chains: the workers matter)."""
    return compile_config(write_project(
        tmp_path / "p", four_rows(), sampler={"chains": 1, "draws": 50, "tune": 50, "random_seed": 7, "check": "all"},
        sensitivity={"prior": True, "uncertainty": False, "leave_one_out": False})).pool()


def test_a_worker_killed_mid_fit_fails_that_fit_and_the_run_goes_on(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pool = _several_fits_pool(tmp_path)
    names = [f.name for f in fits.checked_fits(pool)]
    assert len(names) >= 3
    monkeypatch.setattr(fits, "_worker_fit", dies_on_the_second)
    reported = []
    # a hang here (the main thread stuck in C, where SIGALRM's handler never runs) dumps every
    # thread's stack and ends the test process: a crash pytest reports, not a CI run that times out
    faulthandler.dump_traceback_later(120, exit=True)
    try:
        results = fits.sample_fits(pool, lambda i, r: reported.append((i, r.fit.name)), jobs=2)
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert [r.fit.name for r in results] == names
    lost = results[1]
    assert lost.error == ("WorkerDied: a sampling worker process died (killed by signal 9 (SIGKILL): out of memory, "
                          "or a crash in compiled code) and the fit it was sampling was lost with it; run again, "
                          "with --fit-jobs 1 to sample in one process")
    assert not lost.ok
    # only that fit: the others ran in the surviving worker and in the one started in its place
    assert [r.ok for r in results] == [i != 1 for i in range(len(names))]
    assert sorted(i for i, _ in reported) == list(range(1, len(names) + 1))


def test_a_fit_worker_failing_outside_the_fit_fails_that_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A BaseException in a worker (not a fit's error, which run_fit records) ends that worker: its fit
    is reported failed with what happened, the others still run."""
    pool = _several_fits_pool(tmp_path)
    monkeypatch.setattr(fits, "_worker_fit", exits_on_the_first)
    results = fits.sample_fits(pool, lambda i, r: None, jobs=2)
    assert results[0].error == ("WorkerFailed: a sampling worker process failed (SystemExit: 3); run again, with "
                                "--fit-jobs 1 to sample in one process")
    assert all(r.ok for r in results[1:])


# -- a fit's chains split over processes (the default when one fit is checked on two cores) ------

@pytest.mark.parametrize("chains, jobs, groups", [
    (4, 2, [(0, 2), (2, 2)]), (4, 3, [(0, 2), (2, 1), (3, 1)]), (3, 5, [(0, 1), (1, 1), (2, 1)]),
    (4, 1, [(0, 4)]), (1, 2, [(0, 1)]), (5, 0, [(0, 5)]),
])
def test_chain_groups_are_contiguous_and_even(chains: int, jobs: int, groups: list[tuple[int, int]]) -> None:
    assert fits.chain_groups(chains, jobs) == groups


def test_default_chain_jobs_split_a_fit_sampled_alone_over_the_cores(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    """Chains are split only when the fits run one at a time here (sample_fits ignores chain_jobs
    otherwise, so the default never promises more)."""
    pool = compile_config(write_project(tmp_path / "p", four_rows(), sampler={"chains": 4})).pool()
    for cores, fit_jobs, want in [(2, 1, 2), (2, 2, 1), (8, 1, 4), (8, 2, 1), (1, 1, 1), (3, 2, 1), (3, 1, 3)]:
        monkeypatch.setattr(fits, "_cores", lambda c=cores: c)
        assert fits.default_chain_jobs(pool, fit_jobs) == want, (cores, fit_jobs)


def _one_fit_pool(tmp_path: Path, chains: int = 3) -> object:
    return compile_config(write_project(
        tmp_path / "p", four_rows(), sampler={"chains": chains, "draws": 60, "tune": 60, "random_seed": 11},
        sensitivity={"prior": False, "uncertainty": False, "leave_one_out": False})).pool()


def test_split_chains_draw_what_one_process_draws(tmp_path: Path) -> None:
    """Chains 0-1 here and chain 2 in a forked process (chain_seed) = three chains in one process:
    every draw and every sampler statistic, chains numbered 0.."""
    import numpy as np

    pool = _one_fit_pool(tmp_path)
    (fit,) = fits.checked_fits(pool)
    models = fits.build_models(pool, [fit])
    one = fits.run_fit(pool, models, fit)
    split = fits.run_fit(pool, models, fit, chain_jobs=2)
    assert one.ok and split.ok
    for group in ("posterior", "sample_stats"):
        a, b = getattr(one.idata, group), getattr(split.idata, group)
        assert list(b["chain"].values) == [0, 1, 2] and set(a.data_vars) == set(b.data_vars)
        for name in a.data_vars:
            if name not in ("perf_counter_diff", "perf_counter_start", "process_time_diff"):
                assert np.array_equal(a[name].values, b[name].values, equal_nan=True), (group, name)
    assert one.diagnostics == split.diagnostics


def _split_fit_with_chain_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker: Any) -> Any:
    """One fit whose second chain runs ``worker`` in its forked process instead of sampling."""
    pool = _one_fit_pool(tmp_path, chains=2)
    (fit,) = fits.checked_fits(pool)
    models = fits.build_models(pool, [fit])
    monkeypatch.setattr(fits, "_worker_chains", worker)
    faulthandler.dump_traceback_later(120, exit=True)  # a hang ends the test process (see above)
    try:
        return fits.run_fit(pool, models, fit, chain_jobs=2)
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_a_chain_worker_killed_fails_the_fit_and_does_not_hang(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    res = _split_fit_with_chain_worker(tmp_path, monkeypatch, kills_itself)
    assert not res.ok and res.error is not None and res.error.startswith(
        "WorkerDied: a sampling worker process died (killed by signal 9 (SIGKILL)")


class Unpicklable(ValueError):
    def __init__(self) -> None:
        super().__init__("boom")
        self.callback = lambda: 0  # a lambda does not pickle


def fails_unpicklably(_: object) -> Exception:
    """A chain worker whose sampling fails with an error that cannot be pickled back."""
    return Unpicklable()


def test_a_chain_worker_error_that_does_not_pickle_is_reported_as_that_error(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Not as a worker death ("exited with code 1"): the error's type and text reach the user."""
    res = _split_fit_with_chain_worker(tmp_path, monkeypatch, fails_unpicklably)
    assert res.error == "ChainError: a chain worker failed: Unpicklable: boom"


def test_a_worker_killed_by_a_signal_without_a_name_is_still_reported() -> None:
    rt = signal.SIGRTMIN + 3
    assert fits._died(-rt, "and x was lost").startswith(f"a sampling worker process died (killed by signal {rt}: ")
    assert "(exited with code 3: " in fits._died(3, "and x was lost")


def test_split_chains_keep_the_progress_bar_for_this_processs_chains(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal a fit whose chains are split still shows progress: the bar of the chains
    sampled in this process (the forked ones sample theirs without one)."""
    from marketbayesmeta.runtime import model

    pool = _one_fit_pool(tmp_path)
    calls: list[tuple[int, int, bool]] = []
    real = model.sample_model

    def spy(fm: object, **kw: object) -> object:
        calls.append((int(kw.get("first_chain", 0)), int(kw["chains"]), bool(kw["progressbar"])))
        return real(fm, **kw)

    monkeypatch.setattr(model, "sample_model", spy)
    results = fits.sample_fits(pool, lambda i, r: None, chain_jobs=2, progressbar=True)
    assert results[0].ok
    assert calls == [(0, 2, True)]  # chain 2 was sampled in the forked process (its call is not seen here)
