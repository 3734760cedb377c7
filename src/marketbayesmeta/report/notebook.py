"""The notebook engine: build report.ipynb from the static template, execute it with a private
kernel, check the result, write it. Steps, in order (as papermill's ``execute_notebook``):

1. :func:`build_notebook` - the template's static cells (no run data in any cell);
2. :func:`execute_notebook` - a throwaway kernelspec on this interpreter, its files (connection
   file, IPython and matplotlib dirs) in a private directory *inside the run's (staging)
   directory*, removed afterwards; raises on interrupt (KeyboardInterrupt,
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

from ..interrupts import SignalFreeLoop, stopping
from ..safeio import remove_stale_tempdirs
from .atomic import write_atomic

TEMPLATES = Path(__file__).resolve().parent / "templates"
NOTEBOOK_TEMPLATE = "report_notebook.py"
KERNEL_NAME = "marketbayesmeta-report"
KERNEL_DIR_PREFIX = ".report-kernel-"
META_KEY = "marketbayesmeta"  # output metadata key: {"failure": ...}, {"plot": ...}, {"table": ...}
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
    return env


def _kernel_manager(tmp: Path, ipc_dir: Path) -> Any:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager  # awaitable polls: an interrupt is seen

    kdir = tmp / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True)
    (kdir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "marketbayesmeta report (this interpreter)", "language": "python",
    }), encoding="utf-8")
    ksm = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")], ensure_native_kernel=False)
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    km.connection_file = str(tmp / "connection.json")
    if os.name == "posix":  # unix sockets in a private directory: no TCP port is opened
        km.transport = "ipc"
        km.ip = str(ipc_dir / "k")
    return km


def execute_notebook(nb: Any, run_dir: Path, *, timeout: int = 300) -> None:
    """Execute ``nb`` in place with its working directory at ``run_dir``, on this interpreter.

    The kernel's files live in a private directory inside ``run_dir`` (the run's staging
    directory during execute), removed when done, whatever happens. Kernel output never reaches
    the terminal. Interrupts propagate; cell errors are left in the outputs (see
    :func:`report_warnings`).
    """
    import logging

    from nbclient import NotebookClient

    run_dir = Path(run_dir).resolve()
    tmp = Path(tempfile.mkdtemp(prefix=KERNEL_DIR_PREFIX, dir=run_dir))
    ipc_dir = tmp
    if len(str(tmp / "k")) > MAX_IPC_PREFIX:  # too long for a socket path: a short private dir
        remove_stale_tempdirs("mbm-ipc-")  # left by killed runs (issue 16)
        ipc_dir = Path(tempfile.mkdtemp(prefix=f"mbm-ipc-{os.getpid()}-"))
    km = None
    try:
        km = _kernel_manager(tmp, ipc_dir)
        client = NotebookClient(nb, km=km, kernel_name=KERNEL_NAME, timeout=timeout, startup_timeout=120,
                                allow_errors=True, record_timing=False,
                                resources={"metadata": {"path": str(run_dir)}})
        client.log.setLevel(logging.CRITICAL)
        loop = SignalFreeLoop()  # nbclient's own loop signal handlers would swallow the signal
        try:
            with stopping(lambda: _kill_kernel(km)):
                loop.run_until_complete(client.async_execute(
                    env=_kernel_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        finally:
            if km is not None and km.has_kernel:
                try:
                    loop.run_until_complete(km.shutdown_kernel(now=True))
                except Exception:  # noqa: BLE001 - already gone
                    pass
            loop.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if ipc_dir != tmp:
            shutil.rmtree(ipc_dir, ignore_errors=True)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    raise_for_interrupt(nb)


def _kill_kernel(km: Any) -> None:
    """Kill the kernel's process group (a signal's handler: the wait for the cell then ends)."""
    prov = getattr(km, "provisioner", None)
    pgid, pid = getattr(prov, "pgid", None), getattr(prov, "pid", None)
    if pgid:
        os.killpg(pgid, signal.SIGKILL)
    elif pid:
        os.kill(pid, signal.SIGKILL)


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
