"""User-facing errors: each carries an exit code and a message meant for a person, not a traceback."""

from __future__ import annotations

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
