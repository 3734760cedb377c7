"""Run independent tasks serially (placeholder until the local-process and Dask dispatcher lands)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskFailure:
    index: int
    message: str


def run_tasks(tasks: Sequence[Any], fn: Callable[[Any], Any], *, jobs: int = 1, dask_address: str | None = None,
              on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    results: list[Any] = []
    for i, task in enumerate(tasks):
        try:
            result = fn(task)
        except Exception as exc:  # noqa: BLE001 - a failing task is reported, the others go on
            result = TaskFailure(i, f"{type(exc).__name__}: {exc}")
        if on_result is not None:
            on_result(i, result)
        results.append(result)
    return results
