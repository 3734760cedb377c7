"""The notebook engine: build report.ipynb from the static template, execute it with a private
kernel, check the result, write it. Steps, in order (as papermill's ``execute_notebook``):

1. :func:`build_notebook` - the template's static cells (no run data in any cell);
2. :func:`execute_notebook` - in a :class:`ReportKernel`: a kernelspec on this interpreter, its
   files (connection file, IPython and matplotlib dirs) in a private directory (a single run's
   *inside the run's (staging) directory*), removed afterwards; raises on interrupt (KeyboardInterrupt,
   ``interrupts.Interrupted``), never turns one into a warning: the kernel runs on a loop nbclient
   cannot install its own signal handlers on (they swallowed SIGINT/SIGTERM), and a signal kills
   the kernel so that the wait ends at once;
3. :func:`raise_for_interrupt` - a cell interrupted inside the kernel re-raises here;
4. :func:`clean_outputs` - library warnings printed by the kernel (stderr) never reach the page;
5. :func:`report_warnings` - notes recorded as failures and error outputs become run warnings;
6. :func:`write_notebook`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..collector import KERNEL_STATEMENT
from ..interrupts import SignalFreeLoop, stopping
from ..safeio import remove_stale_tempdirs
from .atomic import write_atomic

TEMPLATES = Path(__file__).resolve().parent / "templates"
NOTEBOOK_TEMPLATE = "report_notebook.py"
KERNEL_NAME = "marketbayesmeta-report"
KERNEL_DIR_PREFIX = ".report-kernel-"
# The directory, in a kernel's home, of the figures its run's process draws aside (plots/aside.py),
# and the environment variable that tells the kernel where it is (plots/cache.py reads it).
ASIDE_DIR = "figures-aside"
ASIDE_ENV = "MARKETBAYESMETA_FIGURES_ASIDE"
META_KEY = "marketbayesmeta"  # output metadata key: {"failure": ...}, {"plot": ..., "alt": ...}, {"table": ...}
MAX_IPC_PREFIX = 90  # AF_UNIX socket paths are limited to ~107 bytes; the kernel appends "-<n>"


def build_notebook() -> Any:
    """The report notebook from ``templates/report_notebook.py`` (percent format, static cells)."""
    import nbformat
    from nbformat import v4

    source = (TEMPLATES / NOTEBOOK_TEMPLATE).read_text(encoding="utf-8")
    cells = []
    chunks = re.split(r"^# %%(.*)$", source, flags=re.M)
    for header, body in zip(chunks[1::2], chunks[2::2], strict=True):
        header = header.strip()
        tags = re.findall(r'"([^"]+)"', header.split("tags=", 1)[1]) if "tags=" in header else []
        if header.startswith("[markdown]"):
            lines = [re.sub(r"^# ?", "", ln) for ln in body.strip("\n").splitlines()]
            cell = v4.new_markdown_cell("\n".join(lines).strip())
        else:
            cell = v4.new_code_cell(body.strip("\n"))
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["title"] = "marketbayesmeta run report"
    for i, cell in enumerate(nb.cells):  # stable ids, so two reports of a run diff cleanly
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    return nb


def _kernel_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])  # the directory holding marketbayesmeta/
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MPLBACKEND"] = "Agg"
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env["MPLCONFIGDIR"] = env.get("MPLCONFIGDIR") or str(tmp / "matplotlib")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    env[ASIDE_ENV] = str(tmp / ASIDE_DIR)
    return env


def _kernel_manager(tmp: Path, ipc_dir: Path) -> Any:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager  # awaitable polls: an interrupt is seen

    kdir = tmp / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True)
    (kdir / "kernel.json").write_text(json.dumps({
        # no input history in SQLite: a report's cells are in its notebook, and the kernel's history
        # thread wrote every cell of every notebook to a database nobody reads
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--HistoryManager.enabled=False"],
        "display_name": "marketbayesmeta report (this interpreter)", "language": "python",
    }), encoding="utf-8")
    ksm = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")], ensure_native_kernel=False)
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    km.connection_file = str(tmp / "connection.json")
    if os.name == "posix":  # unix sockets in a private directory: no TCP port is opened
        km.transport = "ipc"
        km.ip = str(ipc_dir / "k")
    return km


# Sent to a new kernel as soon as it starts (static code, binding no name): the collector's
# thresholds (collector.py) and the report's libraries (report/warm_up.py), loaded while the caller
# still compiles or samples.
IMPORTS = KERNEL_STATEMENT + """
__import__("warnings").filterwarnings("ignore")
__import__("matplotlib").use("Agg")
__import__("marketbayesmeta.report.warm_up", fromlist=["load_libraries"]).load_libraries()
"""

# Sent once per kernel by ReportKernel.warm_up: the warm-up (report/warm_up.py; with a run
# directory, that run's figures drawn ahead first), then an empty namespace, as _LEAVE leaves it.
WARM_UP = """
try:
    __import__("marketbayesmeta.report.warm_up", fromlist=["warm_up"]).warm_up({run_dir!r})
finally:
    get_ipython().reset(new_session=False)
    __import__("gc").freeze()
"""

# The kernel's namespace is empty (modules stay loaded) before each notebook: the warm-up and every
# notebook end by emptying it (_LEAVE), once per notebook. A reset runs a full garbage collection,
# which took ~0.1 s a notebook over the ~200,000 objects of the loaded libraries: the warm-up ends
# by freezing what survives its reset (gc.freeze: the libraries and their caches, left to
# reference counting), so that a notebook's collection looks only at what came after. Before a
# notebook the working directory becomes the run directory, as a fresh kernel started there would
# have; after it, back to the kernel's own home.
_ENTER = "import os as _os\n_os.chdir({path!r})\ndel _os\n"
_LEAVE = ("import os as _os\n_os.chdir({path!r})\ndel _os\nget_ipython().reset(new_session=False)\n"
          "import matplotlib.pyplot as _plt\n_plt.close('all')\ndel _plt\n")


class ReportKernel:
    """A kernel on this interpreter that executes report notebooks, one after another.

    Starting a kernel and importing the report's libraries into it costs seconds of CPU: a process
    that writes many reports (a portfolio worker) keeps one ReportKernel for all of them
    (:func:`process_kernel`), and a single run starts its kernel (:meth:`start`) before sampling,
    so that the kernel loads on the other core meanwhile (:func:`private_kernel`) and then draws
    the run's figures ahead (:meth:`warm_up`). The kernel's namespace is emptied after the
    warm-up and after each notebook, and its working directory set to the run directory before
    each, so a notebook sees what a fresh kernel would (modules stay imported; the same notebook
    bytes, tests/test_report_kernel.py).

    The kernel's files (kernelspec, connection file, IPython and matplotlib directories, sockets)
    live in ``home``, removed by :meth:`close`. Waits happen on a :class:`SignalFreeLoop` under
    :func:`~marketbayesmeta.interrupts.stopping`: SIGINT/SIGTERM kill the kernel, the wait ends and
    :class:`~marketbayesmeta.interrupts.Interrupted` propagates. Anything raised while a notebook
    runs (an interrupt, a timeout, a dead kernel) closes the kernel; the next :meth:`execute`
    starts a new one.
    """

    def __init__(self, home: Path, ipc_prefix: str = "mbm-ipc-"):
        self.home = Path(home).resolve()
        self.ipc_prefix = ipc_prefix
        self.loop: Any = None
        self.km: Any = None
        self.kc: Any = None
        self.ready = False
        self.warmed = False
        self.ipc_dir: Path | None = None

    @property
    def aside_dir(self) -> Path:
        """Where this kernel finds the figures its run's process draws aside (plots/aside.py)."""
        return self.home / ASIDE_DIR

    def __enter__(self) -> ReportKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def started(self) -> bool:
        return self.km is not None

    def _wait(self, coro: Any) -> Any:
        with stopping(lambda: _kill_kernel(self.km)):
            return self.loop.run_until_complete(coro)

    def start(self, *, warm_up: bool = True) -> ReportKernel:
        """Launch the kernel and send it the imports, and the warm-up unless ``warm_up`` is False
        (returns without waiting for them; idempotent: a started kernel is left as it is)."""
        if self.started:
            return self
        self.home.mkdir(parents=True, exist_ok=True)
        self.ipc_dir = self.home
        if len(str(self.home / "k")) > MAX_IPC_PREFIX:  # too long for a socket path: a short private dir
            remove_stale_tempdirs(self.ipc_prefix)  # left by killed runs (issue 16)
            self.ipc_dir = Path(tempfile.mkdtemp(prefix=f"{self.ipc_prefix}{os.getpid()}-"))
        try:
            self.loop = SignalFreeLoop()  # nbclient's own loop signal handlers would swallow the signal
            self.km = _kernel_manager(self.home, self.ipc_dir)
            self._wait(self.km.start_kernel(env=_kernel_env(self.home), cwd=str(self.home),
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.kc = self.km.client()
            self.kc.allow_stdin = False
            self.kc.start_channels()
            self.kc.execute(IMPORTS, silent=True, store_history=False)
        except BaseException:
            self.close()
            raise
        if warm_up:
            self.warm_up()
        return self

    def warm_up(self, run_dir: Path | None = None) -> None:
        """Ask the kernel, once, to warm up (report/warm_up.py) and return at once; it does so after
        the imports and before the next notebook, binding no name in its namespace. With
        ``run_dir`` (a single run whose exact tables are written and whose MCMC check is about to
        sample) it first draws that run's figures ahead, which the notebook then reuses, and skips
        those plots in the warm-up. Nothing happens if the kernel is not running or has been asked
        already; whatever goes wrong there only means that the notebook does the work itself."""
        if self.kc is None or self.warmed:
            return
        path = None if run_dir is None else str(Path(run_dir).resolve())
        self.kc.execute(WARM_UP.format(run_dir=path), silent=True, store_history=False)
        self.warmed = True

    def execute(self, nb: Any, run_dir: Path, *, timeout: int = 300) -> None:
        """Execute ``nb`` in place with its working directory at ``run_dir`` (see the class)."""
        import logging

        from nbclient import NotebookClient

        if self.started and not self._wait(self.km.is_alive()):
            self.close()  # died since the last notebook: start again
        self.start(warm_up=False)  # a warm-up now would only delay this notebook
        try:
            if not self.ready:
                self._wait(self.kc.wait_for_ready(timeout=120))
                self.ready = True
            self._run(_ENTER.format(path=str(Path(run_dir).resolve())), timeout)
            client = NotebookClient(nb, km=self.km, kernel_name=KERNEL_NAME, timeout=timeout, startup_timeout=120,
                                    allow_errors=True, record_timing=False)
            client.kc = self.kc  # ours: nbclient neither starts nor stops the kernel or its channels
            client.log.setLevel(logging.CRITICAL)
            self._wait(client.async_execute())
            self._run(_LEAVE.format(path=str(self.home)), timeout)
        except BaseException:
            self.close()
            raise

    def _run(self, code: str, timeout: float) -> None:
        """Run ``code`` silently in the kernel and wait for it; raise unless it succeeded, and at
        once (not after ``timeout``) if the kernel dies meanwhile (the code waits behind the
        warm-up, several seconds of work)."""
        import asyncio
        import queue

        async def run() -> dict[str, Any]:
            msg_id = self.kc.execute(code, silent=True, store_history=False)
            while True:
                try:
                    reply = await self.kc.get_shell_msg(timeout=1)
                except queue.Empty:
                    if not await self.km.is_alive():
                        raise RuntimeError("the report kernel died before the notebook could start") from None
                    continue
                if reply["parent_header"].get("msg_id") == msg_id:
                    return reply["content"]

        content = self._wait(asyncio.wait_for(run(), timeout))
        if content.get("status") != "ok":
            raise RuntimeError(f"the report kernel could not be prepared: {content.get('ename')}: "
                               f"{content.get('evalue')}")

    def close(self) -> None:
        """Stop the kernel (at once) and remove its files; safe to call twice, and from a signal's
        aftermath (the kernel is killed first if a wait was cut short)."""
        import asyncio

        try:
            if self.km is not None and self.loop is not None and not self.loop.is_closed():
                pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
                if pending:  # an interrupted wait: stop the kernel, then let nbclient's tasks end
                    _kill_kernel(self.km)
                    for task in pending:
                        task.cancel()
                    self.loop.run_until_complete(asyncio.wait(pending, timeout=5))
                    for task in pending:
                        if task.done() and not task.cancelled():
                            task.exception()  # retrieved: no "exception never retrieved" on stderr
                if self.kc is not None:
                    self.kc.stop_channels()
                if self.km.has_kernel:
                    self.loop.run_until_complete(self.km.shutdown_kernel(now=True))
        except Exception:  # noqa: BLE001 - already gone, or the loop is unusable: kill it
            _kill_kernel(self.km)
        finally:
            if self.loop is not None and not self.loop.is_closed():
                self.loop.close()
            self.loop = self.km = self.kc = None
            self.ready = self.warmed = False
            shutil.rmtree(self.home, ignore_errors=True)
            if self.ipc_dir is not None and self.ipc_dir != self.home:
                shutil.rmtree(self.ipc_dir, ignore_errors=True)
            self.ipc_dir = None


def private_kernel(run_dir: Path) -> ReportKernel:
    """A kernel for one run's report, its files in a private directory inside ``run_dir`` (the
    run's staging directory during execute)."""
    return ReportKernel(Path(tempfile.mkdtemp(prefix=KERNEL_DIR_PREFIX, dir=Path(run_dir).resolve())))


PROCESS_KERNEL_PREFIX = "mbm-report-kernel-"
_PROCESS_KERNEL: list[ReportKernel] = []


def process_kernel() -> ReportKernel:
    """This process's kernel for many reports (a portfolio worker's, or the CLI's when it runs a
    portfolio's pools itself): created on first use, its files in
    ``<tmp>/mbm-report-kernel-<pid>-*`` (those of dead processes are removed first), closed when
    the process exits or by :func:`close_process_kernel`."""
    if not _PROCESS_KERNEL:
        import atexit

        remove_stale_tempdirs(PROCESS_KERNEL_PREFIX)
        home = Path(tempfile.mkdtemp(prefix=f"{PROCESS_KERNEL_PREFIX}{os.getpid()}-"))
        _PROCESS_KERNEL.append(ReportKernel(home))
        atexit.register(close_process_kernel)
    return _PROCESS_KERNEL[0]


def close_process_kernel() -> None:
    while _PROCESS_KERNEL:
        _PROCESS_KERNEL.pop().close()


def execute_notebook(nb: Any, run_dir: Path, *, timeout: int = 300, kernel: ReportKernel | None = None) -> None:
    """Execute ``nb`` in place with its working directory at ``run_dir``, on this interpreter.

    With ``kernel`` (a :class:`ReportKernel`, possibly started already) the notebook runs there;
    else in a throwaway kernel whose files live in a private directory inside ``run_dir``, removed
    when done, whatever happens. Kernel output never reaches the terminal. Interrupts propagate;
    cell errors are left in the outputs (see :func:`report_warnings`).
    """
    if kernel is None:
        with private_kernel(run_dir) as own:
            own.execute(nb, run_dir, timeout=timeout)
    else:
        kernel.execute(nb, run_dir, timeout=timeout)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    raise_for_interrupt(nb)


def _kill_kernel(km: Any) -> None:
    """Kill the kernel's process group (a signal's handler: the wait for the cell then ends)."""
    prov = getattr(km, "provisioner", None)
    pgid, pid = getattr(prov, "pgid", None), getattr(prov, "pid", None)
    try:
        if pgid:
            os.killpg(pgid, signal.SIGKILL)
        elif pid:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def raise_for_interrupt(nb: Any) -> None:
    """A cell interrupted inside the kernel is an interrupt of the report, not a report warning."""
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error" and o.get("ename") == "KeyboardInterrupt":
                raise KeyboardInterrupt("the report notebook was interrupted")


def clean_outputs(nb: Any) -> int:
    """Drop what the kernel printed to stderr (library warning banners); returns how many."""
    dropped = 0
    for cell in nb.cells:
        outs = cell.get("outputs")
        if not outs:
            continue
        keep = [o for o in outs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        dropped += len(outs) - len(keep)
        cell["outputs"] = keep
    return dropped


def report_warnings(nb: Any) -> list[str]:
    out = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                out.append(f"report notebook execution failed: cell {i} raised {o.get('ename')}: {o.get('evalue')}")
            meta = (o.get("metadata") or {}).get(META_KEY) or {}
            if meta.get("failure"):
                out.append(f"report notebook: {meta['failure']}")
    return out


def write_notebook(nb: Any, path: Path) -> None:
    import nbformat

    write_atomic(path, nbformat.writes(nb) + "\n")
