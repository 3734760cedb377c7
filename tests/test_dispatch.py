"""runtime/dispatch.py: the same results serially, in local worker processes and on Dask (a
LocalCluster, and a scheduler plus two workers started as separate processes); per-task failures
(exception, a worker process that dies, a lost Dask worker) do not lose the other tasks; an
interrupted caller leaves no worker process behind.

The toy task functions live at module level so that workers can import them (this module is on the
workers' path: spawn passes sys.path on, the separate Dask processes get PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from marketbayesmeta.runtime import dispatch
from marketbayesmeta.runtime.dispatch import ClusterError, TaskFailure, in_task_worker, run_tasks

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
TIMEOUT = 60


# -- toy tasks --------------------------------------------------------------------------------------

def make_files(task: dict) -> dict:
    """Deterministic "pool files" from the task's seed: what a pool task returns, in miniature."""
    rng = np.random.default_rng(task["seed"])
    draws = rng.normal(task["mu"], 1.0, size=task["n"])
    summary = f"{task['name']},{draws.mean():.17g},{draws.std():.17g}\n".encode()
    time.sleep(task.get("sleep", 0.0))
    if "wait_for" in task:  # finish only after another task (in another worker) has finished
        deadline = time.monotonic() + TIMEOUT
        while not Path(task["wait_for"]).exists():
            assert time.monotonic() < deadline, f"{task['wait_for']} never appeared: were the tasks run serially?"
            time.sleep(0.01)
    if "done_flag" in task:
        Path(task["done_flag"]).touch()
    return {"files": {"draws.bin": draws.tobytes(), "summary.csv": summary},
            "status": {"name": task["name"], "exit_code": 0}}


def behave(task: tuple) -> object:
    """("ok", x) -> x; ("raise", text); ("exit", code) = os._exit; ("kill", [directory]) = SIGKILL
    itself (leaving a file per attempt in directory); ("sysexit",) = SystemExit; ("sleep", seconds, x);
    ("none",) -> None."""
    what = task[0]
    if what == "ok":
        return task[1]
    if what == "raise":
        raise ValueError(task[1])
    if what == "exit":
        os._exit(task[1])
    if what == "kill":
        if len(task) > 1:
            Path(task[1], f"attempt-{os.getpid()}").touch()
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
    if what == "sysexit":
        sys.exit(3)
    if what == "sleep":
        time.sleep(task[1])
        return task[2]
    if what == "none":
        return None
    raise AssertionError(task)


def whoami(_task: object) -> tuple[bool, int]:
    return in_task_worker(), os.getpid()


def collector_thresholds(_task: object) -> tuple[int, ...]:
    import gc

    return gc.get_threshold()


def unpicklable_result(_task: object) -> object:
    return lambda: None


def sleep_whoami(seconds: float) -> tuple[bool, int]:
    time.sleep(seconds)
    return in_task_worker(), os.getpid()


class Payload:
    """A result that can be watched with a weak reference (bytes cannot)."""

    def __init__(self, index: int):
        self.index = index
        self.data = bytes(1000)


def payload(index: int) -> Payload:
    return Payload(index)


def _results_let_go_of(**where: Any) -> None:
    """keep_results=False: once ``on_result`` has handled a result, nothing in run_tasks holds it
    (a portfolio's results carry their pools' files; kept, a long run would hold them all)."""
    import gc
    import weakref

    handled: list[weakref.ref] = []

    def on_result(index: int, result: Payload) -> None:
        gc.collect()
        assert [ref() for ref in handled] == [None] * len(handled), "an earlier result is still held"
        assert result.index == index
        handled.append(weakref.ref(result))

    results = run_tasks([0, 1, 2], payload, on_result=on_result, keep_results=False, **where)
    assert results == [None, None, None] and len(handled) == 3
    failed = run_tasks([("ok", 1), ("raise", "bad")], behave, keep_results=False, **where)
    assert failed[0] is None and failed[1].message == "ValueError: bad"  # failures are kept


TASKS = [{"name": f"pool_{i}", "seed": 1000 + i, "mu": 0.1 * i, "n": 2000} for i in range(6)]


@pytest.fixture(scope="module")
def serial_results() -> list:
    results = run_tasks(TASKS, make_files)
    assert [r["status"]["name"] for r in results] == [t["name"] for t in TASKS]
    return results


def _workers_left() -> list[psutil.Process]:
    """Children of this process other than multiprocessing's resource tracker (spawn starts one,
    which lives as long as this process and ends when it does)."""
    return [p for p in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())]


# -- serial and local processes ---------------------------------------------------------------------

@pytest.mark.parametrize("jobs", [1, 2])
def test_results_are_let_go_of_once_handled(jobs):
    _results_let_go_of(jobs=jobs)


def test_a_worker_with_nothing_left_to_do_exits_while_the_others_work():
    """The last tasks run on: a worker that finds no task left is told to exit at once, so its exit
    (a second or two with PyMC loaded) is not added to the end of the run."""
    pids: dict[int, int] = {}

    def on_result(index: int, result: tuple[bool, int]) -> None:
        pids[index] = result[1]
        if index == 1:  # the slow task: the other worker ran the quick one and found nothing left
            other = pids[0]
            assert other != result[1]
            deadline = time.monotonic() + 1.5  # the slow task took 2 s; a toy worker exits in well under that
            while psutil.pid_exists(other) and psutil.Process(other).status() != psutil.STATUS_ZOMBIE:
                assert time.monotonic() < deadline, "the idle worker was still alive when the last task ended"
                time.sleep(0.05)

    run_tasks([0.0, 2.0], sleep_whoami, jobs=2, on_result=on_result)
    assert set(pids) == {0, 1}
    assert _workers_left() == []


def test_serial_calls_back_in_order_and_records_failures():
    seen: list[tuple[str, int, object]] = []
    tasks = [("ok", "a"), ("raise", "boom"), ("none",), ("ok", "d")]
    results = run_tasks(tasks, behave, on_result=lambda i, r: seen.append(("ok", i, r)),
                        on_error=lambda i, f: seen.append(("error", i, f.message)))
    assert results[0] == "a" and results[2] is None and results[3] == "d"
    assert results[1] == TaskFailure(1, "ValueError: boom", results[1].detail)
    assert "raise ValueError" in results[1].detail  # the traceback
    assert seen == [("ok", 0, "a"), ("error", 1, "ValueError: boom"), ("ok", 2, None), ("ok", 3, "d")]


def test_arguments():
    assert run_tasks([], behave, jobs=4) == []
    assert run_tasks([("ok", 1)], behave, jobs=8) == [1]  # one task: no worker started
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        run_tasks([("ok", 1)], behave, jobs=0)


def test_serial_interrupt_propagates():
    def interrupted(task):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tasks([1, 2], interrupted)


def test_jobs_gives_the_same_bytes_in_task_order(serial_results, tmp_path):
    # task 1 finishes before task 0 (task 0 waits for it, in the other worker; whatever the load,
    # not by timing): results must still come back in task order
    flag = str(tmp_path / "task-1-done")
    tasks = [dict(t) for t in TASKS]
    tasks[0]["wait_for"], tasks[1]["done_flag"] = flag, flag
    order: list[int] = []
    results = run_tasks(tasks, make_files, jobs=2, on_result=lambda i, r: order.append(i))
    assert results == serial_results
    assert sorted(order) == list(range(len(TASKS)))
    assert order != sorted(order)  # completion order differed, task order kept


_INHERITED: list[Any] = []


def call_inherited(k: int) -> int:
    return _INHERITED[0]() + k


def test_worker_flag_is_set_in_workers_only():
    here = run_tasks([0], whoami)
    assert here == [(False, os.getpid())]
    there = run_tasks(list(range(4)), whoami, jobs=2)
    assert all(flag for flag, _ in there)
    pids = {pid for _, pid in there}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # two persistent workers at most


def test_local_workers_use_the_packages_collector_thresholds():
    """A local worker is a process of ours (collector.py); the caller's own thresholds stay as
    they were: run_tasks is library code a notebook user calls."""
    import gc

    from marketbayesmeta.collector import THRESHOLDS

    before = gc.get_threshold()
    assert before != THRESHOLDS  # pytest's process keeps CPython's defaults
    assert run_tasks([0, 1], collector_thresholds, jobs=2) == [THRESHOLDS, THRESHOLDS]
    assert gc.get_threshold() == before


def test_jobs_failures_do_not_lose_the_others():
    tasks = [("ok", 0), ("raise", "bad pool"), ("exit", 7), ("ok", 3), ("kill",), ("sysexit",), ("none",),
             ("ok", 7)]
    errors: dict[int, str] = {}
    results = run_tasks(tasks, behave, jobs=2, on_error=lambda i, f: errors.setdefault(i, f.message))
    assert results[0] == 0 and results[3] == 3 and results[6] is None and results[7] == 7
    assert results[1].message == "ValueError: bad pool"
    assert results[2].message == "the worker process exited with code 7"
    assert results[4].message == "the worker process was killed by signal 9 (SIGKILL)"
    assert results[5].message == "SystemExit: 3"
    assert [results[i].exitcode for i in (1, 2, 4, 5)] == [None, 7, -signal.SIGKILL, None]  # deaths only
    assert sorted(errors) == [1, 2, 4, 5]
    assert all(isinstance(results[i], TaskFailure) and results[i].index == i for i in errors)
    assert not _workers_left()  # every worker stopped and reaped


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_a_worker_death_is_reported_with_its_exit_code_however_workers_start(start_method: str) -> None:
    tasks = [("ok", 0), ("kill",), ("ok", 2), ("ok", 3)]
    results = run_tasks(tasks, behave, jobs=2, start_method=start_method)
    assert results[0] == 0 and results[2] == 2 and results[3] == 3
    assert (results[1].message, results[1].exitcode) == ("the worker process was killed by signal 9 (SIGKILL)",
                                                          -signal.SIGKILL)
    assert not _workers_left()


def test_forked_workers_run_what_does_not_pickle() -> None:
    """start_method="fork" (a pool's fits, which share compiled models): the function's state comes
    through the fork, not pickle."""
    _INHERITED.append(lambda: 41)  # a lambda: only a forked worker can call it
    try:
        assert run_tasks([0, 1], call_inherited, jobs=2, start_method="fork") == [41, 42]
    finally:
        _INHERITED.clear()


def test_unsendable_task_and_result_are_task_failures():
    results = run_tasks([("ok", 1), ("ok", lambda: 0), ("ok", 2)], behave, jobs=2)
    assert results[0] == 1 and results[2] == 2
    assert results[1].message.startswith("the task could not be sent to a worker")
    results = run_tasks([0, 1], unpicklable_result, jobs=2)
    assert all(r.message.startswith("the result could not be sent back") for r in results)


def test_a_failing_callback_stops_the_run_and_the_workers():
    def on_result(i, r):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_tasks([("sleep", 0.2, i) for i in range(6)], behave, jobs=2, on_result=on_result)
    assert not _workers_left()


# -- interrupts (a parent in a subprocess) ----------------------------------------------------------

PARENT = textwrap.dedent("""
    import os, signal, sys, time
    sys.path[:0] = [{tests!r}, {src!r}]
    from marketbayesmeta.runtime.dispatch import run_tasks
    from test_dispatch import mark_and_sleep

    class Interrupted(BaseException):
        pass

    if sys.argv[2] == "handler":  # like the CLI: SIGTERM raises
        def _raise(signum, frame):
            raise Interrupted(signum)
        signal.signal(signal.SIGTERM, _raise)
    try:
        run_tasks([(sys.argv[1], i) for i in range(8)], mark_and_sleep, jobs=2)
    except (KeyboardInterrupt, Interrupted) as exc:
        print("interrupted", type(exc).__name__, flush=True)
        sys.exit(130)
    print("completed")
""")


def mark_and_sleep(task: tuple[str, int]) -> int:
    """Tell the test which worker started (a marker file named by pid), then take long."""
    directory, i = task
    Path(directory, f"{os.getpid()}.started").write_text(str(i))
    time.sleep(120)
    return i


def _sigint_default() -> None:
    """In the child before exec: SIGINT at its default disposition, so that Python turns it into
    KeyboardInterrupt as in a terminal. A disposition of "ignore" is inherited through exec: a test
    run started in the background by a non-interactive shell (nohup make check &) ignores SIGINT, and
    so would the child, which then never sees the interrupt this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_parent(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, list[psutil.Process]]:
    code = PARENT.format(tests=str(HERE), src=str(SRC))
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)
    deadline = time.monotonic() + TIMEOUT
    while len(list(tmp_path.glob("*.started"))) < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"workers did not start: {proc.communicate()}")
        time.sleep(0.05)
    workers = [psutil.Process(int(p.stem)) for p in tmp_path.glob("*.started")]
    assert {w.ppid() for w in workers} == {proc.pid}
    return proc, workers


def _gone(workers: list[psutil.Process], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(not w.is_running() or w.status() == psutil.STATUS_ZOMBIE for w in workers):
            return True
        time.sleep(0.05)
    return False


def _kill_leftovers(workers: list[psutil.Process]) -> None:
    """Test hygiene when a test fails: no sleeping worker outlives it."""
    for w in workers:
        try:
            w.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.mark.parametrize(("signum", "mode"), [(signal.SIGINT, "default"), (signal.SIGTERM, "handler")])
def test_interrupted_parent_stops_its_workers_and_propagates(tmp_path, signum, mode):
    proc, workers = _start_parent(tmp_path, mode)
    try:
        proc.send_signal(signum)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the interrupted parent did not end within 10 s")
        assert _gone(workers, 1.0), "worker processes outlived the interrupted parent"
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 130, err
        assert out.startswith("interrupted"), out + err
    finally:
        _kill_leftovers(workers)


def test_killed_parent_takes_its_workers_along(tmp_path):
    proc, workers = _start_parent(tmp_path, "default")
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
        assert _gone(workers, 10.0), "worker processes outlived a SIGKILLed parent"
    finally:
        _kill_leftovers(workers)
        proc.communicate(timeout=TIMEOUT)


# -- Dask -------------------------------------------------------------------------------------------

def test_missing_distributed_is_a_clear_input_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ClusterError) as info:
        run_tasks([("ok", 1)], behave, dask_address="tcp://127.0.0.1:1")
    assert info.value.exit_code == 2
    assert "pip install 'marketbayesmeta[dask]'" in str(info.value)


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(dispatch, "DASK_CONNECT_TIMEOUT", 1.0)
    with pytest.raises(ClusterError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9"):
        run_tasks([("ok", 1)], behave, dask_address="tcp://127.0.0.1:9")


def test_dask_task_refuses_another_package_version():
    with pytest.raises(RuntimeError, match="this Dask worker has marketbayesmeta .* the client 0.0.0-other"):
        dispatch._on_dask_worker(behave, ("ok", 1), "0.0.0-other")


@pytest.fixture(scope="module")
def local_cluster():
    distributed = pytest.importorskip("distributed")
    import dask

    # fail a task on the first worker it kills; one task per worker thread (no innocent bystander)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.scheduler.worker-saturation": 1.0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def test_dask_local_cluster_gives_the_same_bytes(local_cluster, serial_results):
    order: list[int] = []
    tasks = [dict(t, sleep=0.05 * (len(TASKS) - i)) for i, t in enumerate(TASKS)]
    results = run_tasks(tasks, make_files, dask_address=local_cluster, on_result=lambda i, r: order.append(i))
    assert results == serial_results
    assert sorted(order) == list(range(len(TASKS)))
    flags = run_tasks(list(range(3)), whoami, dask_address=local_cluster)
    assert all(flag for flag, _ in flags) and os.getpid() not in {pid for _, pid in flags}
    _results_let_go_of(dask_address=local_cluster)


def test_dask_failures_and_a_lost_worker_do_not_lose_the_others(local_cluster):
    tasks = [("ok", 0), ("raise", "bad pool"), ("sleep", 0.5, 2), ("kill",), ("none",), ("ok", 5)]
    errors: list[int] = []
    results = run_tasks(tasks, behave, dask_address=local_cluster, on_error=lambda i, f: errors.append(i))
    assert results[0] == 0 and results[2] == 2 and results[4] is None and results[5] == 5
    assert results[1].message == "ValueError: bad pool"
    assert "raise ValueError" in results[1].detail
    assert results[3].message.startswith("KilledWorker"), results[3]
    assert sorted(errors) == [1, 3]


def test_dask_keeps_one_task_per_worker_in_flight(local_cluster):
    """So that a dying worker takes only its own task: the next task is submitted as one ends."""
    import distributed

    with distributed.Client(local_cluster, set_as_default=False) as client:
        def ours_on_scheduler() -> int:
            return client.run_on_scheduler(
                lambda dask_scheduler: sum(str(k).startswith("marketbayesmeta-") for k in dask_scheduler.tasks))

        seen: list[int] = []
        results = run_tasks([("sleep", 0.2, i) for i in range(6)], behave, dask_address=local_cluster,
                            on_result=lambda i, r: seen.append(ours_on_scheduler()))
    assert results == list(range(6))
    assert len(seen) == 6 and max(seen) <= 2, seen


def profiler_running(task: object) -> bool:
    """Whether the statistical profiler of the Dask worker running this task is on."""
    from distributed import get_worker

    callbacks = get_worker().periodic_callbacks
    return any(callbacks[name].is_running() for name in dispatch.PROFILER_CALLBACKS if name in callbacks)


def test_dask_workers_profiler_is_paused_while_our_task_runs_and_resumed_after(local_cluster):
    """It samples the task thread's stack every 10 ms (dispatch's docstring has what it costs)."""
    import distributed

    with distributed.Client(local_cluster, set_as_default=False) as client:
        def profilers() -> dict[str, list[bool]]:
            return client.run(lambda dask_worker: [dask_worker.periodic_callbacks[name].is_running()
                                                   for name in dispatch.PROFILER_CALLBACKS])

        before = profilers()
        assert len(before) == 2 and all(all(on) for on in before.values())  # on by default
        assert run_tasks([0, 1, 2], profiler_running, dask_address=local_cluster) == [False, False, False]
        assert profilers() == before  # resumed after each task


def test_dask_refuses_workers_of_another_version(local_cluster, monkeypatch):
    monkeypatch.setattr(dispatch, "_package_version", lambda: "0.0.0-other")
    with pytest.raises(ClusterError, match=r"must run marketbayesmeta 0.0.0-other like this process: "
                                           r"tcp://127.0.0.1:\d+ has \S+"):
        run_tasks([("ok", 1)], behave, dask_address=local_cluster)


def _dask_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(SRC)]), **extra)
    env.pop(dispatch.WORKER_ENV, None)
    return env


SEPARATE_ALLOWED_FAILURES = 1
separate = pytest.mark.slow  # a scheduler and two workers as processes: ~20 s together


@pytest.fixture(scope="module")
def separate_cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes, as a user would start them."""
    pytest.importorskip("distributed")
    dask_cli = str(Path(sys.executable).with_name("dask"))
    root = tmp_path_factory.mktemp("dask")
    scheduler_file = root / "scheduler.json"
    env = _dask_env(DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=str(SEPARATE_ALLOWED_FAILURES))
    procs = [subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(scheduler_file)], env=env, cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + TIMEOUT
        while not scheduler_file.exists() or not scheduler_file.read_text():
            assert time.monotonic() < deadline and procs[0].poll() is None, "the scheduler did not start"
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for n in range(2):
            procs.append(subprocess.Popen([dask_cli, "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                                           "--no-dashboard", "--name", f"w{n}", "--local-directory", str(root)],
                                          env=env, cwd=root, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@separate
def test_dask_separate_processes_give_the_same_bytes(separate_cluster, serial_results):
    import distributed

    with distributed.Client(separate_cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=TIMEOUT)
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert sorted(w["name"] for w in workers.values()) == ["w0", "w1"]
    results = run_tasks(TASKS, make_files, dask_address=separate_cluster)
    assert results == serial_results
    worker_pids = {pid for _, pid in run_tasks(list(range(4)), whoami, dask_address=separate_cluster)}
    assert os.getpid() not in worker_pids


@separate
def test_dask_reruns_a_lost_workers_task_as_configured_then_fails_it(separate_cluster, tmp_path):
    tasks = [("ok", 0), ("kill", str(tmp_path)), ("sleep", 0.3, 2), ("ok", 3)]
    results = run_tasks(tasks, behave, dask_address=separate_cluster)
    assert results[0] == 0 and results[2] == 2 and results[3] == 3
    assert results[1].message.startswith("KilledWorker"), results[1]
    # run on allowed-failures + 1 workers, each killed by it, then given up
    assert len(list(tmp_path.glob("attempt-*"))) == SEPARATE_ALLOWED_FAILURES + 1


DASK_PARENT = textwrap.dedent("""
    import sys
    sys.path[:0] = [{tests!r}, {src!r}]
    from marketbayesmeta.runtime.dispatch import run_tasks
    from test_dispatch import behave
    try:
        run_tasks([("sleep", 1.5, i) for i in range(12)], behave, dask_address=sys.argv[1],
                  on_result=lambda i, r: print("done", i, flush=True))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
""")


@separate
def test_interrupted_dask_client_cancels_its_tasks(separate_cluster):
    import distributed

    code = DASK_PARENT.format(tests=str(HERE), src=str(SRC))
    proc = subprocess.Popen([sys.executable, "-c", code, separate_cluster], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_dask_env(), preexec_fn=_sigint_default)
    with distributed.Client(separate_cluster, set_as_default=False) as client:
        def tasks_on_scheduler() -> int:
            return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("done ")  # running, one task per worker in flight
        assert tasks_on_scheduler() <= 2
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
        assert time.monotonic() - t0 < 10, "the interrupt was not prompt"
        assert proc.returncode == 130 and "interrupted" in out, out + err
        assert out.count("done") < 11
        # the scheduler forgets every task of the interrupted run (running ones end on their own)
        deadline = time.monotonic() + 10
        while tasks_on_scheduler():
            assert time.monotonic() < deadline, "tasks of the interrupted client stayed on the cluster"
            time.sleep(0.1)
