"""Running independent tasks (the pools of a portfolio run) in one of three places, with the same
results: serially in this process, in ``jobs`` local worker processes, or on an existing Dask
distributed cluster.

``run_tasks(tasks, fn, ...)`` calls the module-level function ``fn(task)`` once per task and returns
the results in task order, whatever the order in which they finish. Tasks and results cross process
boundaries by pickle, so both should be plain data (a pool's section of the plan in; file name ->
bytes and a small status dict out): the caller writes the files, so a worker that dies can never
leave a half-written pool behind, and identical bytes in all three modes follow from ``fn`` being
deterministic.

Failures are per task: an exception in ``fn``, a worker process that dies (``os._exit``, SIGKILL,
out of memory) or a Dask worker lost while running the task becomes ``TaskFailure(index, message)``
in that task's place and the other tasks carry on. An interrupt of the caller (KeyboardInterrupt,
or any BaseException such as the CLI's SIGTERM exception) stops every local worker at once and
propagates; local workers also die with their parent if it is killed outright (Linux), so none is
left behind.

Inside a worker, local or Dask, ``in_task_worker()`` is true (the ``MARKETBAYESMETA_TASK_WORKER``
environment variable, inherited by the worker's own children): a pool task must then sample its
fits in-process rather than fork fit workers of its own.

Local workers are started with ``spawn`` (a fresh interpreter: nothing is inherited from the
parent's threads, open files or run-directory lock); each imports ``fn``'s module once and then runs
task after task. ``start_method="fork"`` (the fits of one pool, which share models compiled in the
parent) inherits the parent's memory instead: ``fn`` and the tasks need not pickle, only results do.
A worker that finds no task left is told to exit at once (its exit, a second or two with PyMC
loaded, overlaps the tasks still running elsewhere). Workers ignore SIGINT: a Ctrl-C at the
terminal is the parent's to handle. Plain processes with a
pipe each, not a ``multiprocessing.Pool``: a pool whose worker was killed forgets the task it was
running and can deadlock when it is terminated.

Dask: ``distributed`` is an optional dependency (``pip install 'marketbayesmeta[dask]'``),
imported only here and only when a cluster address is given. Workers must run the same
marketbayesmeta version as the caller (checked for every worker present when the run starts and
again by every task, for workers that join later). Tasks are submitted with ``pure=False`` under
keys ``marketbayesmeta-<fn name>-<run token>-<index>``, no retries on exceptions (``fn`` is
deterministic: it would fail again). At most one task per worker is in flight (the next is
submitted as one ends) and a worker runs one task of ours at a time whatever its ``--nthreads``
(PyMC, PyTensor and matplotlib are not thread-safe; start one worker process per core with
``--nthreads 1``; workers that are threads of one process would take turns), so the death of a
worker concerns only the task it was running. The scheduler re-runs that task on
another worker until ``distributed.scheduler.allowed-failures`` + 1 workers have died running it
(a scheduler setting, default 3: a worker lost to a restart or a preempted machine costs a re-run,
a task that kills every worker it lands on fails after four), and then it is a ``TaskFailure``
(``KilledWorker: ...``). Set ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0`` for the scheduler
to fail a task on its first lost worker. On interrupt the caller cancels its tasks; one already
running on a worker finishes there and its result is discarded (Python cannot stop a thread).
While a task of ours runs, the worker's statistical profiler (``distributed.worker.profile``,
which walks the task thread's stack every 10 ms) is paused, and resumed when the task ends; the
dashboard's profile has no samples of our tasks. Measured on 2 cores, 12 pools, interleaved runs:
with the profiler disabled by configuration the workers used 59.7 s of CPU against 70.5 s
(medians of 3 pairs, each pair lower); with this pause, 66.7 against 69.8 s (means of 3 pairs,
each pair lower, within this host's noise).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from ..collector import tune_collector
from ..errors import InputError

T = TypeVar("T")
R = TypeVar("R")

WORKER_ENV = "MARKETBAYESMETA_TASK_WORKER"
DASK_INSTALL = "pip install 'marketbayesmeta[dask]'"
DASK_CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler
DASK_WORKER_WAIT = 60.0  # seconds to wait for a first worker to join
STOP_GRACE = 5.0  # seconds a finished worker gets to exit before it is killed


@dataclass(frozen=True)
class TaskFailure:
    """A task that produced no result: ``message`` for a person, ``detail`` the traceback if any."""

    index: int
    message: str
    detail: str = ""
    exitcode: int | None = None  # a local worker that died: its exit code (negative: the signal)

    def __str__(self) -> str:
        return f"task {self.index} failed: {self.message}"


class ClusterError(InputError):
    """The Dask cluster cannot be used: package missing, unreachable, no workers, wrong version."""


def in_task_worker() -> bool:
    """True inside a worker of ``run_tasks`` (local process or Dask): do not start nested workers."""
    return os.environ.get(WORKER_ENV) == "1"


def die_with_parent(parent_pid: int | None = None) -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies (PR_SET_PDEATHSIG).

    With ``parent_pid``, exit at once if that parent is already gone (it died before the call)."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def how_it_ended(exitcode: int) -> str:
    """A process's end in words, from ``multiprocessing``'s exit code (negative: the signal):
    ``killed by signal 9 (SIGKILL)``, ``killed by signal 40`` (no name), ``exited with code 3``."""
    if exitcode >= 0:
        return f"exited with code {exitcode}"
    try:
        return f"killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
    except ValueError:  # a signal without a name (real-time)
        return f"killed by signal {-exitcode}"


def require_distributed() -> Any:
    """The ``distributed`` module, or a ClusterError (exit 2) saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(f"running on a Dask cluster needs the optional package 'distributed' "
                           f"({exc}): {DASK_INSTALL}") from None
    return distributed


def run_tasks(tasks: Sequence[T], fn: Callable[[T], R], *, jobs: int = 1, dask_address: str | None = None,
              on_result: Callable[[int, R], None] | None = None,
              on_error: Callable[[int, TaskFailure], None] | None = None,
              start_method: str = "spawn", keep_results: bool = True) -> list[R | TaskFailure | None]:
    """``[fn(task) for task in tasks]``, a failed task as ``TaskFailure`` in its place.

    ``dask_address`` ("tcp://host:port") runs the tasks on that Dask cluster (``jobs`` is then
    ignored); else ``jobs`` > 1 runs them in that many local worker processes; else here, one after
    another. ``on_result(index, result)`` / ``on_error(index, failure)`` are called in this process as
    each task ends (in order of completion); an exception they raise stops the run and propagates.
    ``start_method`` ("spawn" or "fork") starts the local worker processes.

    ``keep_results=False``: a result is handed to ``on_result`` and then let go of (``None`` in its
    place in the returned list; failures are kept). For results that carry files' bytes (a
    portfolio's pools): kept, every result of a long run would stay in this process's memory.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    results = _Results(len(tasks), on_result, on_error, keep=keep_results)
    if dask_address is not None:
        _run_dask(tasks, fn, dask_address, results)
    elif jobs > 1 and len(tasks) > 1:
        _run_local(tasks, fn, min(jobs, len(tasks)), results, start_method)
    else:
        for i, task in enumerate(tasks):
            results.done(i, _call(fn, task, i))
    return results.values


class _Results:
    """Outcomes in task order (results only if ``keep``); the caller's callbacks as each arrives."""

    def __init__(self, n: int, on_result: Callable[[int, Any], None] | None,
                 on_error: Callable[[int, TaskFailure], None] | None, *, keep: bool = True):
        self.values: list[Any] = [None] * n
        self.remaining = n
        self.on_result, self.on_error = on_result, on_error
        self.keep = keep

    def done(self, index: int, value: Any) -> None:
        if self.keep or isinstance(value, TaskFailure):
            self.values[index] = value
        self.remaining -= 1
        if isinstance(value, TaskFailure):
            if self.on_error is not None:
                self.on_error(index, value)
        elif self.on_result is not None:
            self.on_result(index, value)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call(fn: Callable[[T], R], task: T, index: int) -> R | TaskFailure:
    """``fn(task)``; an Exception becomes a TaskFailure, anything else (an interrupt) propagates."""
    try:
        return fn(task)
    except Exception as exc:  # noqa: BLE001 - recorded per task
        return TaskFailure(index, _describe(exc), traceback.format_exc())


# -- local worker processes ------------------------------------------------------------------------

def _worker_main(conn: Connection, fn: Callable[[Any], Any], parent_pid: int) -> None:
    """A local worker: receive (index, task) until None; answer each with (outcome, ending)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent_pid)
    os.environ[WORKER_ENV] = "1"
    tune_collector()  # a process of ours (spawned: not inherited from the CLI)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, task = message
        try:
            outcome: Any = fn(task)
        except BaseException as exc:  # noqa: BLE001 - reported; SystemExit etc. also end the worker
            ending = not isinstance(exc, Exception)
            conn.send((TaskFailure(index, _describe(exc), traceback.format_exc()), ending))
            if ending:
                return
            continue
        try:
            conn.send((outcome, False))
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result (pickled before writing)
            conn.send((TaskFailure(index, f"the result could not be sent back: {_describe(exc)}"), False))


class _Worker:
    """One local worker process and our end of its pipe; ``index`` is the task it is running."""

    def __init__(self, ctx: Any, fn: Callable[[Any], Any], number: int):
        self.conn, self._child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(self._child, fn, os.getpid()),
                                name=f"marketbayesmeta-task-worker-{number}")
        self.index: int | None = None
        self.retired = False

    def start(self) -> None:
        try:
            self.proc.start()
        finally:
            self._child.close()

    def answer(self) -> tuple[Any, bool]:
        """(outcome, ending) of the task just finished; a death is a TaskFailure naming it."""
        assert self.index is not None
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        self.proc.join(STOP_GRACE)
        code = self.proc.exitcode
        if code is None:
            return TaskFailure(self.index, "the worker process stopped answering"), True
        death = f"was {how_it_ended(code)}" if code < 0 else how_it_ended(code)
        return TaskFailure(self.index, f"the worker process {death}", exitcode=code), True

    def retire(self) -> None:
        """Ask the worker to exit (it has run its last task); it does so while the others work on."""
        if self.retired or self.proc.pid is None:
            return
        self.retired = True
        try:
            self.conn.send(None)
        except OSError:
            pass

    def stop(self, *, kill: bool) -> None:
        if self.proc.pid is None:  # never started
            self.conn.close()
            return
        if not kill and self.proc.is_alive():
            self.retire()
            self.proc.join(STOP_GRACE)
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()
        self.proc.close()


def _run_local(tasks: Sequence[Any], fn: Callable[[Any], Any], jobs: int, results: _Results,
               start_method: str) -> None:
    ctx = multiprocessing.get_context(start_method)
    pending = deque(range(len(tasks)))
    workers: list[_Worker] = []

    def feed(worker: _Worker) -> None:
        """Give ``worker`` the next task that can be sent (one that cannot is a failure)."""
        while pending:
            index = pending.popleft()
            try:
                worker.conn.send((index, tasks[index]))
            except OSError:  # the worker is already dead: its death is reported for this task
                pass
            except Exception as exc:  # noqa: BLE001 - the task cannot be pickled
                results.done(index, TaskFailure(index, f"the task could not be sent to a worker: "
                                                       f"{_describe(exc)}"))
                continue
            worker.index = index
            return
        worker.retire()  # nothing left for it: it exits (a second or two with PyMC loaded) meanwhile

    def start_worker() -> None:
        worker = _Worker(ctx, fn, len(workers) + 1)
        workers.append(worker)  # before it starts: whatever happens next, the finally stops it
        worker.start()
        feed(worker)

    clean = False
    try:
        for _ in range(jobs):
            start_worker()
        while results.remaining:
            busy = [w for w in workers if w.index is not None]
            if not busy:  # cannot happen: a task not done is pending (then fed) or running
                raise RuntimeError(f"internal error: {results.remaining} task(s) left and no worker busy")
            ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
            for worker in busy:
                if worker.conn not in ready and worker.proc.sentinel not in ready:
                    continue
                index = worker.index
                outcome, ending = worker.answer()
                worker.index = None
                if ending:  # replace it while tasks are left
                    workers.remove(worker)
                    worker.stop(kill=True)
                    if pending:
                        start_worker()
                else:
                    feed(worker)  # the next task runs while the caller handles this outcome
                results.done(index, outcome)
        clean = True
    finally:
        if clean:
            for worker in workers:  # all at once: each exits while the next is waited for
                worker.retire()
        for worker in workers:
            worker.stop(kill=not clean)


# -- Dask ------------------------------------------------------------------------------------------

_DASK_TASK_LOCK = threading.Lock()


def _package_version() -> str:
    from .. import __version__

    return __version__


def _on_dask_worker(fn: Callable[[Any], Any], task: Any, client_version: str) -> Any:
    """Runs on a Dask worker: same package version as the client, one of our tasks at a time."""
    version = _package_version()
    if version != client_version:
        raise RuntimeError(f"this Dask worker has marketbayesmeta {version}, the client {client_version}; "
                           "install the same version on every worker")
    os.environ[WORKER_ENV] = "1"
    with _DASK_TASK_LOCK, _profiler_paused():
        return fn(task)


PROFILER_CALLBACKS = ("profile", "profile-cycle")  # distributed.Worker.periodic_callbacks


def _on_worker_loop(worker: Any, action: Callable[[], None]) -> None:
    """Run ``action`` on the worker's event loop (where its periodic callbacks live) and wait."""
    done = threading.Event()

    def run() -> None:
        try:
            action()
        finally:
            done.set()

    worker.loop.add_callback(run)
    done.wait(timeout=10)


@contextlib.contextmanager
def _profiler_paused() -> Iterator[None]:
    """Pause this Dask worker's statistical profiler for the task's duration (see the module
    docstring); a worker without one (disabled by its configuration) is left as it is."""
    from distributed import get_worker

    worker = get_worker()
    running = [pc for name in PROFILER_CALLBACKS
               if (pc := worker.periodic_callbacks.get(name)) is not None and pc.is_running()]
    def switch(method: str) -> None:
        for pc in running:
            getattr(pc, method)()

    if running:
        _on_worker_loop(worker, lambda: switch("stop"))
    try:
        yield
    finally:
        if running:
            _on_worker_loop(worker, lambda: switch("start"))


def _check_workers(client: Any, address: str) -> None:
    """Wait for a first worker, then refuse workers without the caller's marketbayesmeta version."""
    try:
        client.wait_for_workers(1, timeout=DASK_WORKER_WAIT)
    except TimeoutError:
        raise ClusterError(f"the Dask cluster at {address} has no workers (none joined within "
                           f"{DASK_WORKER_WAIT:g} s)") from None
    mine = _package_version()
    workers = client.get_versions(packages=["marketbayesmeta"]).get("workers", {})
    wrong = {addr: ((info or {}).get("packages") or {}).get("marketbayesmeta")
             for addr, info in workers.items()}
    wrong = {addr: v for addr, v in wrong.items() if v != mine}
    if wrong:
        listed = ", ".join(f"{addr} has {v or 'no marketbayesmeta'}" for addr, v in sorted(wrong.items()))
        raise ClusterError(f"Dask workers at {address} must run marketbayesmeta {mine} like this process: "
                           f"{listed}")


def _run_dask(tasks: Sequence[Any], fn: Callable[[Any], Any], address: str, results: _Results) -> None:
    """Submit as many tasks as the cluster has workers, the next one as each ends (so no two of ours
    share a worker: the death of one worker takes only its own task with it)."""
    distributed = require_distributed()
    try:
        client = distributed.Client(address, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, bad address
        raise ClusterError(f"cannot connect to the Dask scheduler at {address}: {_describe(exc)}") from None
    submitted: dict[str, int] = {}
    in_flight: list[Any] = []
    clean = False
    try:
        _check_workers(client, address)
        token = uuid.uuid4().hex[:8]
        name = getattr(fn, "__name__", "task")
        version = _package_version()
        pending = deque(range(len(tasks)))
        completed = distributed.as_completed(loop=client.loop)

        def top_up() -> None:
            workers = len(client.nthreads()) if pending else 0
            while pending and len(in_flight) < max(1, workers):
                i = pending.popleft()
                future = client.submit(_on_dask_worker, fn, tasks[i], version, pure=False,
                                       key=f"marketbayesmeta-{name}-{token}-{i}")
                submitted[future.key] = i
                in_flight.append(future)
                completed.add(future)

        top_up()
        for future in completed:
            i = submitted[future.key]
            outcome = _dask_outcome(future, i)
            in_flight.remove(future)
            future.release()
            top_up()
            results.done(i, outcome)
        clean = True
    finally:
        if not clean and in_flight:
            try:
                client.cancel(in_flight, force=True)
            except Exception:  # noqa: BLE001 - best effort while propagating the interrupt
                pass
        client.close(timeout=STOP_GRACE)


def _dask_outcome(future: Any, index: int) -> Any:
    """A finished future's result, or a TaskFailure for an erred, lost or cancelled one."""
    try:
        if future.status == "finished":
            return future.result()
        exc = future.exception()
    except Exception as raised:  # noqa: BLE001 - cancelled, or the result cannot be unpickled here
        exc = raised
    try:
        detail = "".join(traceback.format_tb(future.traceback())) if future.status == "error" else ""
    except Exception:  # noqa: BLE001 - the traceback is a convenience
        detail = ""
    return TaskFailure(index, _describe(exc), detail)
