"""Forked fit workers (``--fit-jobs N``): a worker that dies mid-fit (killed by the kernel for
memory, a crash in compiled code) must not leave the run waiting forever for its result."""

from __future__ import annotations

import os
import signal
from pathlib import Path

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


def test_a_worker_killed_mid_fit_fails_that_fit_and_the_run_goes_on(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pool = compile_config(write_project(
        tmp_path / "p", four_rows(), sampler={"chains": 1, "draws": 50, "tune": 50, "random_seed": 7, "check": "all"},
        sensitivity={"prior": True, "uncertainty": False, "leave_one_out": False})).pool()
    names = [f.name for f in fits.checked_fits(pool)]
    assert len(names) >= 3
    monkeypatch.setattr(fits, "_worker_fit", dies_on_the_second)
    reported = []

    def hung(*_: object) -> None:
        raise TimeoutError("sample_fits still waits for the dead worker's fit")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        results = fits.sample_fits(pool, lambda i, r: reported.append((i, r.fit.name)), jobs=2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [r.fit.name for r in results] == names
    lost = results[1]
    assert lost.error == ("WorkerDied: a sampling worker process died (killed by signal 9 (SIGKILL): out of memory, "
                          "or a crash in compiled code) and the fits not finished yet were lost with it; run again, "
                          "with --fit-jobs 1 to sample in one process")
    assert not lost.ok
    assert all(r.ok or r.error == lost.error for r in results)  # each fit either came back or is reported lost
    assert sorted(i for i, _ in reported) == list(range(1, len(names) + 1))
