"""SIGINT / SIGTERM: one exception for both, a record that survives code that swallows it, and a
way to hold signals back while a run directory is swapped into place.

The CLI installs :func:`on_signal` for SIGINT and SIGTERM (:func:`handled`). It raises
:class:`Interrupted` in the main thread *and* records the signal, because some libraries catch or
replace exceptions raised inside their loops (PyMC's sampler swallows KeyboardInterrupt; nbclient's
asyncio loop turned the exception into an AssertionError and carried on). Code that calls such a
library checks :func:`raise_if_received` afterwards, or waits in it under :func:`stopping` (on a
:class:`SignalFreeLoop` if the library runs an asyncio loop).
:func:`deferred` holds signals back for a few system calls that must not be cut in half (the swap
of the run directory).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []


class Interrupted(BaseException):
    """SIGINT/SIGTERM. Not a KeyboardInterrupt: PyMC swallows KeyboardInterrupt while sampling and
    carries on with truncated chains, which would let an interrupted run complete and look fine."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.completed: object = None  # the run directory, when the signal came after its swap

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def on_signal(signum: int, frame: Any) -> None:
    """Signal handler: record the signal, then raise :class:`Interrupted`."""
    _received.append(signum)
    raise Interrupted(signum)


def received() -> int | None:
    """The first signal recorded since :func:`handled` was entered (None if none)."""
    return _received[0] if _received else None


def raise_if_received() -> None:
    """Raise :class:`Interrupted` if a signal arrived, even if its exception was swallowed."""
    if _received:
        raise Interrupted(_received[0])


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def handled() -> Iterator[None]:
    """Install :func:`on_signal` for SIGINT and SIGTERM (main thread only); restore on exit."""
    if not _in_main_thread():
        yield
        return
    _received.clear()
    previous = {s: signal.signal(s, on_signal) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _received.clear()


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the duration; deliver the first one afterwards.

    Python signal handlers run in the main thread between bytecodes, so swapping the handlers
    is reliable where blocking the signal (per thread) is not. Outside the main thread: no-op.
    """
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda n, f: pending.append(n)) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if pending:
            signum = pending[0]
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


@contextmanager
def stopping(stop: Callable[[], None]) -> Iterator[None]:
    """For a block that waits inside a library's event loop (which would lose an exception raised
    there): SIGINT/SIGTERM record the signal and call ``stop`` (which must make the block end
    soon, e.g. kill the child it waits for) instead of raising; the block's end then raises
    :class:`Interrupted`, whatever the block raised. Outside the main thread: no-op."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        _received.append(signum)
        pending.append(signum)
        try:
            stop()
        except Exception:  # noqa: BLE001, S110 - best effort: the record above is what counts
            pass

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    except Exception:
        if pending:
            raise Interrupted(pending[0]) from None
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if pending:
        raise Interrupted(pending[0])


class SignalFreeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on which libraries cannot install signal handlers. nbclient installs loop
    handlers for SIGINT and SIGTERM that only shut its kernel down: the signal is then lost (the
    run carried on and completed with an empty report). Run such code on this loop, under
    :func:`stopping`, and the signals stay with us."""

    def add_signal_handler(self, sig: int, callback: Any, *args: Any) -> None:
        raise RuntimeError("SIGINT and SIGTERM are handled by marketbayesmeta")

    def remove_signal_handler(self, sig: int) -> bool:
        return False
