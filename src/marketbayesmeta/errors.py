"""User-facing errors: each carries an exit code and a message meant for a person, not a traceback."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file (a tracker row, a config key, ...)."""

    file: str
    message: str
    row: int | None = None  # spreadsheet row: header = 1
    column: str | None = None
    value: str | None = None
    accepted: str | None = None

    def render(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        text = f"{where}: {self.message}"
        if self.value is not None:
            text += f" (got {self.value!r})"
        if self.accepted:
            text += f"; accepted: {self.accepted}"
        return text


class MarketBayesMetaError(Exception):
    """Base error; ``exit_code`` is what the CLI returns."""

    exit_code = 2

    def __init__(self, message: str, problems: list[Problem] | None = None):
        self.problems = list(problems or [])
        super().__init__(message)

    def render(self) -> str:
        lines = [str(self)]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)


class InputError(MarketBayesMetaError):
    """Bad config, tracker, plan or arguments (exit 2)."""

    exit_code = 2


class ConfigError(InputError):
    """The YAML config is invalid."""


class TrackerError(InputError):
    """The evidence tracker is invalid; ``problems`` lists every row error found."""


class PlanError(InputError):
    """plan.json is unreadable, edited, stale or of an unknown version."""


class LockError(InputError):
    """Another execute holds the run directory."""


# OSError numbers that say something about the user's machine or paths, not about our code: what
# to do about each. Any other OSError is still an internal error (exit 4), as it may be a bug.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "the disk is full: free some space, or write somewhere else",
    errno.EDQUOT: "the disk quota is exceeded: free some space, or write somewhere else",
    errno.EROFS: "the file system is read-only: choose a writable location",
    errno.EACCES: "permission denied: choose a location you can write to (or fix its permissions)",
    errno.EPERM: "operation not permitted: choose a location you can write to",
    errno.ENAMETOOLONG: "a file name is too long: choose a shorter path (outputs.directory, -o or "
                        "--out)",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or use fewer --jobs",
    errno.ENFILE: "too many open files on the system: try again later",
    errno.EFBIG: "a file would exceed the file system's size limit: write somewhere else",
    errno.ELOOP: "too many levels of symbolic links in a path: check the path",
}


def environment_message(exc: BaseException) -> str | None:
    """What to tell the user for an OSError caused by their machine or paths (None otherwise)."""
    if not isinstance(exc, OSError) or exc.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{os.strerror(exc.errno)} ({ENVIRONMENT_ERRNOS[exc.errno]})"
