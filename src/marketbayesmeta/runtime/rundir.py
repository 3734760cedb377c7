"""Atomic, locked run directories (SPEC §5).

A run writes into ``.<name>.staging-<pid>`` beside the target and, when it ends (any status),
swaps it into place: the previous run directory is moved aside to ``.<name>.previous-<pid>``, the
staging directory renamed to the target, then the previous one removed. An ``flock`` on
``.<name>.lock`` (released by the kernel if the process dies) keeps a second execute out; whoever
holds the lock cleans up staging left by a killed run and restores a previous directory a killed
swap left aside.

The target is the *real* path (symlinks resolved first), so ``--out out`` and ``--out link-to-out``
share one lock and a symlinked run directory is replaced where it really is.

An existing target is replaced only if it is empty or recognised as one of our runs by its own
content (:func:`foreign_entries`): a ``manifest.json`` in our format with a plan hash, and nothing
but the files a run writes (at the top, or in ``pools/<name>/`` for portfolio runs). Anything else
is refused, naming what is not ours; it is checked again under the lock just before the swap.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import stat
import time
from pathlib import Path

from ..audit.manifest import MANIFEST_NAME, MAX_METADATA_BYTES, read_manifest
from ..errors import InputError, LockError
from ..interrupts import Interrupted, deferred
from ..outputs import CATALOGUE, FILES
from ..safeio import open_lock

# Every file a run can write, from the output catalogue: any of them at the top (a single-pool run
# writes its pool's files there), and the per-pool files in pools/<pool>/ of a portfolio run.
RUN_FILES = frozenset(FILES)
POOL_FILES = frozenset(f.name for f in CATALOGUE if f.scope == "pool")
POOLS_DIR = "pools"
_POOL_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # PoolName in compiler/config.py
_PLAN_HASH = re.compile(r"^[0-9a-f]{64}$")
_SHOWN = 8  # foreign entries named in a refusal


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file"


def _entries(directory: Path, allowed: frozenset[str], prefix: str = "") -> list[str]:
    """What in ``directory`` a run does not write (recursively into ``pools/<name>/``)."""
    foreign = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        rel = prefix + entry.name
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISREG(mode) and entry.name in allowed:
            continue
        if stat.S_ISDIR(mode) and not prefix and entry.name == POOLS_DIR:
            for pool in sorted(os.scandir(entry.path), key=lambda e: e.name):
                pmode = pool.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(pmode) and _POOL_NAME.match(pool.name):
                    foreign += _entries(Path(pool.path), POOL_FILES, f"{rel}/{pool.name}/")
                else:
                    foreign.append(f"{rel}/{pool.name} ({_kind(pmode)}, not a pool directory)")
            continue
        foreign.append(f"{rel}{'/' if stat.S_ISDIR(mode) else ''} ({_kind(mode)} a run does not "
                       "write)")
    return foreign


def _manifest_problem(target: Path) -> str | None:
    """Why ``target/manifest.json`` is not a manifest of ours with a plan hash (None if it is)."""
    path = target / MANIFEST_NAME
    try:
        st = path.lstat()
    except FileNotFoundError:
        return "no manifest.json"
    if not stat.S_ISREG(st.st_mode):
        return "manifest.json is not a regular file"
    if st.st_size > MAX_METADATA_BYTES:
        return "manifest.json is too large to be a run's manifest"
    try:
        manifest = read_manifest(path.read_bytes(), str(path))
    except InputError as exc:
        return f"manifest.json is not a marketbayesmeta manifest ({exc})"
    if not _PLAN_HASH.match(manifest["plan_hash"]):
        return "manifest.json records no plan hash"
    return None


def foreign_entries(target: Path, *, require_manifest: bool = True) -> list[str]:
    """Why an existing directory is not one of our runs: what a run does not write, and any
    problem with its manifest. Empty when it may be replaced (an empty directory included)."""
    try:
        foreign = _entries(target, RUN_FILES)
        empty = not any(os.scandir(target))
    except OSError as exc:
        return [f"cannot be read ({exc.strerror})"]
    if empty or not require_manifest:
        return foreign
    problem = _manifest_problem(target)
    return foreign + ([problem] if problem else [])


def is_run_directory(path: Path) -> bool:
    """Whether ``path`` is a directory holding a manifest.json of ours (a completed run)."""
    return Path(path).is_dir() and _manifest_problem(Path(path)) is None


class RunDirectory:
    """Context manager: lock, staging directory, and the final swap."""

    def __init__(self, target: Path):
        try:
            self.target = Path(target).resolve()  # the real path: symlinks resolved
        except (OSError, RuntimeError) as exc:
            raise InputError(f"{target}: the output directory cannot be resolved ({exc})") from None
        self.parent = self.target.parent
        name = self.target.name
        self.lock_path = self.parent / f".{name}.lock"
        self.staging = self.parent / f".{name}.staging-{os.getpid()}"
        self._staging_name = re.compile(re.escape(f".{name}.staging-") + r"[0-9]+")
        self._previous_name = re.compile(re.escape(f".{name}.previous-") + r"[0-9]+")
        self._lock_fd: int | None = None

    # -- checks before anything is written ---------------------------------------------------
    def _refuse_unless_replaceable(self) -> None:
        if not self.target.is_dir():
            return
        foreign = foreign_entries(self.target)
        if foreign:
            shown = "; ".join(foreign[:_SHOWN]) + (f"; and {len(foreign) - _SHOWN} more"
                                                   if len(foreign) > _SHOWN else "")
            raise InputError(f"{self.target}: exists and is not a marketbayesmeta run directory "
                             f"({shown}); refusing to replace it: nothing was changed. Choose an "
                             "empty or new --out directory (or outputs.directory).")

    def preflight(self) -> None:
        if self.target.exists() and not self.target.is_dir():
            raise InputError(f"{self.target}: exists and is not a directory; choose another --out")
        self._refuse_unless_replaceable()
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
        fd = open_lock(self.lock_path)  # O_NOFOLLOW, regular file with one link only
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

    def _ours(self, pattern: re.Pattern[str]) -> list[Path]:
        """Real directories named like our staging/previous directories; symlinks or files with
        such a name (never written by a run) are removed, not followed."""
        found = []
        for p in sorted(q for q in self.parent.iterdir() if pattern.fullmatch(q.name)):
            if p.is_symlink() or not p.is_dir():
                p.unlink(missing_ok=True)
            else:
                found.append(p)
        return found

    def _recover(self) -> None:
        """Under the lock: remove staging of dead runs; put back a previous dir a killed swap left."""
        for stale in self._ours(self._staging_name):
            shutil.rmtree(stale, ignore_errors=True)
        previous = [p for p in self._ours(self._previous_name)
                    if not foreign_entries(p, require_manifest=False)]
        if previous and not self.target.exists() and not foreign_entries(previous[-1]):
            os.replace(previous[-1], self.target)
            previous = previous[:-1]
        for p in previous:
            shutil.rmtree(p, ignore_errors=True)

    # -- staging and swap -----------------------------------------------------------------------
    def start(self) -> Path:
        self.staging.mkdir(parents=True)
        return self.staging

    def commit(self) -> Path:
        """Swap the staging directory into place; the previous run survives until then.

        Under the lock, the target is checked again (it may have changed since preflight), and
        SIGINT/SIGTERM are held back until the swap is over: an interrupt then ends the process
        with the new run complete, never with the target missing.
        """
        aside = self.parent / f".{self.target.name}.previous-{os.getpid()}"
        swapped = False
        try:
            with deferred():
                self._refuse_unless_replaceable()
                if self.target.exists():
                    os.replace(self.target, aside)
                os.replace(self.staging, self.target)
                swapped = True
                if aside.exists():
                    shutil.rmtree(aside, ignore_errors=True)
        except Interrupted as exc:
            exc.completed = self.target if swapped else None  # for the CLI's message
            raise
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
