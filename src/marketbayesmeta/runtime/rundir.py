"""Atomic, locked run directories (SPEC §5).

A run writes into ``.<name>.staging-<pid>`` beside the target and, when it ends (any status),
swaps it into place: the previous run directory is moved aside to ``.<name>.previous-<pid>``, the
staging directory renamed to the target, then the previous one removed. An ``flock`` on
``.<name>.lock`` (released by the kernel if the process dies) keeps a second execute out; whoever
holds the lock cleans up staging left by a killed run and restores a previous directory a killed
swap left aside.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from pathlib import Path

from ..errors import InputError, LockError

RUN_MARKERS = ("run_status.json", "manifest.json")


def _looks_replaceable(target: Path) -> bool:
    """An existing target may be replaced if it is empty, holds only plan.json, or is a run dir."""
    try:
        entries = {p.name for p in target.iterdir()}
    except OSError:
        return False
    return not entries or entries <= {"plan.json"} or any(m in entries for m in RUN_MARKERS)


class RunDirectory:
    """Context manager: lock, staging directory, and the final swap."""

    def __init__(self, target: Path):
        self.target = Path(target).absolute()
        self.parent = self.target.parent
        name = self.target.name
        self.lock_path = self.parent / f".{name}.lock"
        self.staging = self.parent / f".{name}.staging-{os.getpid()}"
        self._staging_glob = f".{name}.staging-*"
        self._previous_glob = f".{name}.previous-*"
        self._lock_fd: int | None = None

    # -- checks before anything is written ---------------------------------------------------
    def preflight(self) -> None:
        if self.target.exists() and not self.target.is_dir():
            raise InputError(f"{self.target}: exists and is not a directory; choose another --out")
        if self.target.is_dir() and not _looks_replaceable(self.target):
            raise InputError(f"{self.target}: exists and is not a marketbayesmeta run directory "
                             "(no run_status.json or manifest.json); refusing to replace it. "
                             "Choose an empty or new --out directory.")
        probe = self.parent
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise InputError(f"{self.target}: the output directory cannot be created "
                             f"({probe} is a file, not a directory); choose another --out")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise InputError(f"{self.target}: the output directory cannot be created or written "
                             f"({probe} is not writable)")

    # -- lock -----------------------------------------------------------------------------------
    def acquire(self) -> None:
        self.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown process"
            finally:
                os.close(fd)
            raise LockError(f"{self.target}: another execute is writing this run directory "
                            f"(held by {holder}); wait for it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.write(fd, json.dumps(info).encode())
        self._lock_fd = fd
        self._recover()

    def held_fds(self) -> tuple[int, ...]:
        """File descriptors a forked worker must close (the lock belongs to this process)."""
        return () if self._lock_fd is None else (self._lock_fd,)

    def release(self) -> None:
        if self._lock_fd is not None:
            try:
                os.ftruncate(self._lock_fd, 0)
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _recover(self) -> None:
        """Under the lock: remove staging of dead runs; put back a previous dir a killed swap left."""
        for stale in self.parent.glob(self._staging_glob):
            shutil.rmtree(stale, ignore_errors=True)
        previous = sorted(self.parent.glob(self._previous_glob))
        if previous and not self.target.exists():
            os.replace(previous[-1], self.target)
            previous = previous[:-1]
        for p in previous:
            shutil.rmtree(p, ignore_errors=True)

    # -- staging and swap -----------------------------------------------------------------------
    def start(self) -> Path:
        self.staging.mkdir(parents=True)
        return self.staging

    def commit(self) -> Path:
        """Swap the staging directory into place; the previous run survives until then."""
        aside = self.parent / f".{self.target.name}.previous-{os.getpid()}"
        if self.target.exists():
            os.replace(self.target, aside)
        os.replace(self.staging, self.target)
        if aside.exists():
            shutil.rmtree(aside, ignore_errors=True)
        return self.target

    def abandon(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> RunDirectory:
        self.preflight()
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.staging.exists():
            self.abandon()
        self.release()
