"""Figures drawn aside: by a single run's own process while its report kernel executes the notebook.

While the kernel executes a run's notebook (~2 s on the example) the run's process has little to
do (it warms the HTML exporter), and the kernel draws the figures one after another. The last ones
the notebook draws, the MCMC check's trace and rank plots (~0.6 s of the kernel's time), are drawn
meanwhile in a thread of the run's process, from the run directory's files, into the kernel's aside
directory (``plots/cache.py``: PNG and inputs' digests). The kernel uses such a figure only if it
is there when the notebook reaches the plot, its inputs are unchanged and the run is usable;
otherwise it draws the plot itself. The figure is the same PNG either way
(``tests/test_report_aside.py``), because

- it is drawn without pyplot (``common.without_pyplot``: a Figure with an Agg canvas, which is what
  pyplot makes under the kernel's Agg backend), so the process's pyplot state and backend are left
  alone;
- it is drawn only when this process's matplotlib settings are the kernel's: the rc file in use is
  matplotlib's own (the kernel starts in a directory of its own, so a ``matplotlibrc`` in the
  user's current directory would differ) and rcParams have not changed since they were read (a
  notebook user's style); otherwise nothing is drawn aside.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from . import cache
from .common import without_pyplot

ASIDE_PLOTS = ("trace", "rank")  # the notebook's last plots, in its order


def same_settings_as_kernel() -> bool:
    """Whether figures drawn here would be the kernel's: matplotlib's own rc file, rcParams as read."""
    import matplotlib

    rc, orig = matplotlib.rcParams, matplotlib.rcParamsOrig
    get = getattr(type(rc), "_get", None)  # reads without resolving the backend (a side effect)
    if get is None or Path(matplotlib.matplotlib_fname()) != Path(matplotlib.get_data_path()) / "matplotlibrc":
        return False
    try:
        return rc.keys() == orig.keys() and all(bool(get(rc, k) == get(orig, k)) for k in rc if k != "backend")
    except Exception:  # noqa: BLE001 - a value that does not compare: do not draw aside
        return False


def _write(into: Path, name: str, record: dict[str, object], png: bytes) -> None:
    for path, data in ((into / f"{name}.png", png), (into / f"{name}.json", json.dumps(record).encode())):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # the JSON last: an entry is whole when its JSON is there


def draw_aside(run_dir: Path, into: Path, names: tuple[str, ...] = ASIDE_PLOTS,
               stop: Callable[[], bool] = lambda: False) -> list[str]:
    """Draw plots ``names`` of ``run_dir`` into the aside directory ``into`` (emptied of earlier
    entries first), until ``stop()``; returns the names written. Nothing is drawn when this
    process's matplotlib settings are not the kernel's, and a plot that cannot be drawn is left to
    the kernel."""
    into.mkdir(parents=True, exist_ok=True)
    for old in into.iterdir():
        old.unlink(missing_ok=True)
    if not same_settings_as_kernel():
        return []
    from ..prerender import drawn_from_files

    written: list[str] = []
    with without_pyplot():
        for name, reads, files, png in drawn_from_files(run_dir, names, stop):
            record = cache.entry_record(name, run_dir, reads, files, png)
            if record is not None:
                _write(into, name, record, png)
                written.append(name)
    return written


class Aside:
    """:func:`draw_aside` in a daemon thread, then ``then()`` (write_reports: the HTML exporter's
    warm-up, which is needed only after the notebook: the figures get the process's time first);
    :meth:`finish` asks it to stop after the plot it is drawing and waits for both. Whatever fails
    there only means that the kernel draws the plots (and the export warms up itself)."""

    def __init__(self, run_dir: Path, into: Path, then: Callable[[], object] | None = None):
        self._stop = threading.Event()
        self.written: list[str] = []

        def work() -> None:
            with contextlib.suppress(Exception):
                self.written = draw_aside(Path(run_dir), Path(into), stop=self._stop.is_set)
            if then is not None:
                with contextlib.suppress(Exception):
                    then()

        self._thread = threading.Thread(target=work, name="marketbayesmeta-figures-aside", daemon=True)
        self._thread.start()

    def finish(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        return self.written
