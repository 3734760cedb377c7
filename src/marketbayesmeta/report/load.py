"""Reading a run directory: the one :class:`RunData` a report is built from.

Everything the report knows comes from the files of one run directory (docs/outputs.md):
``run_status.json``, the plan, the CSV artefacts of the output catalogue and ``posterior.nc``.
Any of them may be missing or unreadable (a blocked or failed run, a damaged copy): they are left
out and listed in ``problems``, and :meth:`RunData.missing_reason` says why, in words, from the
catalogue's ``when``.

:class:`PlanView` is the only code that reads the plan. It understands plan format 1 (today's
``plan.json``: one pool at the top level), format 2 (``pools``: a single-pool plan's one pool)
and a portfolio pool's ``pool.json``; every other module asks it through named accessors.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from ..outputs import CSV_FILES, FILES
from .fmt import to_float
from .unit import Unit

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FOREST_ORDERS = ("window_end", "effect", "tracker")
UNUSABLE_STATUSES = {"failed": "FAILED", "blocked": "BLOCKED"}


class MissingInput(Exception):
    """A file (or a part of one) that a report section needs is not in the run directory."""


def _unprefix(value: str) -> str:
    """Undo the CSV writer's formula neutralisation (a leading ``'`` before =, +, -, @, tab, CR)."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_PREFIXES:
        return value[1:]
    return value


def read_csv(path: Path) -> pd.DataFrame:
    """A run-directory CSV: columns whose every cell is a number (or empty) become floats, every
    other column stays text (with the writer's formula prefix removed). Independent of the
    catalogue's column lists, so a file with more (newer) columns than the catalogue still reads.

    A report reads a dozen small files twice (the run's process, the kernel): a file as the run
    writes it (a header of distinct names, every row as long, cells a plain number, empty or text)
    is read with the csv module (:func:`_read_plain`; pandas' per-column calls cost ~0.1 s a run);
    any other file (a damaged one, a cell such as ``inf`` or `` 1``) as before, by pandas."""
    frame = _read_plain(path)
    return frame if frame is not None else _read_pandas(path)


# A number as the run's CSV writer writes one (and pandas parses the same way); other cells that
# Python's float() accepts (inf, nan, 1_0, spaces, other digits) are left to pandas.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _read_plain(path: Path) -> pd.DataFrame | None:
    """:func:`read_csv`'s result by the csv module, or None when the file is not plain."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith("\ufeff") or "\r" in text:
        return None
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows or any(len(r) == 1 and not r[0].strip() for r in rows):  # pandas skips such lines
        return None
    header = rows[0]  # pandas renames blank and repeated names
    if len(set(header)) != len(header) or not all(h.strip() for h in header) or any(len(r) != len(header) for r in rows):
        return None
    out: dict[str, Any] = {}
    index = pd.RangeIndex(len(rows) - 1)
    for j, col in enumerate(header):
        cells = [r[j] for r in rows[1:]]
        numeric = any(cells)
        for v in cells:
            if v and not _PLAIN_NUMBER.fullmatch(v):
                try:
                    float(v)
                except ValueError:  # not a number to pandas either: a text column
                    numeric = False
                    break
                return None  # a number pandas may read otherwise: pandas decides
        out[col] = (pd.Series([float(v) if v else math.nan for v in cells], index=index, dtype=float) if numeric
                    else pd.Series([_unprefix(v) for v in cells], index=index, dtype=object))
    return pd.DataFrame(out, columns=header)


def _read_pandas(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    out = {}
    for col in raw.columns:
        cells = raw[col]
        nonempty = cells[cells != ""]
        numbers = pd.to_numeric(nonempty, errors="coerce")
        if len(nonempty) and numbers.notna().all():
            out[col] = pd.to_numeric(cells.replace("", None), errors="coerce").astype(float)
        else:
            out[col] = pd.Series([_unprefix(v) for v in cells], index=raw.index, dtype=object)
    return pd.DataFrame(out, columns=raw.columns)


class PlanView:
    """Named read access to the plan (the one place that knows plan.json's layout)."""

    def __init__(self, doc: dict[str, Any] | None, pool_doc: dict[str, Any] | None = None):
        self.doc = doc or {}
        self.from_pool_json = pool_doc is not None
        if pool_doc is not None:  # a portfolio pool directory: pool.json holds the pool
            self.pool = pool_doc
        elif str(self.doc.get("format", "")).endswith("/2") and isinstance(self.doc.get("pools"), list):
            pools = [p for p in self.doc["pools"] if isinstance(p, dict)]
            self.pool = pools[0] if len(pools) == 1 else {}
        else:  # format 1: the plan is the pool
            self.pool = self.doc
        self.present = bool(self.doc) or pool_doc is not None

    def _get(self, key: str, default: Any = None) -> Any:
        for src in (self.pool, self.doc):
            if key in src and src[key] is not None:
                return src[key]
        return default

    # -- identity -------------------------------------------------------------------------------
    @property
    def project_name(self) -> str | None:
        v = self.doc.get("project_name")
        return v if isinstance(v, str) and v else None

    @property
    def project_notes(self) -> str:
        return str(self.doc.get("project_notes") or "")

    @property
    def plan_hash(self) -> str | None:
        return self.doc.get("plan_hash") or None

    @property
    def pool_name(self) -> str | None:
        """The pool's name when it is one of several (a portfolio's pool.json)."""
        v = self.pool.get("name") if self.from_pool_json else None
        return str(v) if v else None

    @property
    def pool_label(self) -> str | None:
        v = self.pool.get("label") if self.pool is not self.doc else None
        return str(v) if v else None

    @property
    def package_version(self) -> str | None:
        return self.doc.get("package_version") or None

    def sources(self) -> dict[str, dict[str, Any]]:
        src = self.doc.get("sources") or {}
        return {k: v for k, v in src.items() if isinstance(v, dict)}

    @property
    def scale(self) -> str | None:
        v = self._get("scale")
        return v if isinstance(v, str) else None

    @property
    def metric(self) -> str | None:
        v = self._get("metric")
        return v if isinstance(v, str) else None

    # -- settings -------------------------------------------------------------------------------
    def priors(self) -> dict[str, dict[str, Any]]:
        """``{name: {"value": ..., "provenance": ...}}`` (mu_mean, mu_sd, tau_scale, tau_family, ...)."""
        priors = self._get("priors")
        if not isinstance(priors, dict):
            return {}
        return {k: (dict(v) if isinstance(v, dict) else {"value": v, "provenance": ""}) for k, v in priors.items()}

    def priors_in_words(self) -> dict[str, str]:
        """What the priors say in the pool's own unit and why they were chosen (plan 2; empty before)."""
        return {k: str(self._get(k) or "") for k in ("priors_implied", "priors_justification")}

    def reporting(self) -> dict[str, Any]:
        """``interval`` (float or None) and ``forest_order`` (window_end, effect or tracker)."""
        rep = self._get("reporting")
        rep = rep if isinstance(rep, dict) else {}
        interval = rep.get("interval", self._get("reporting_interval"))
        order = rep.get("forest_order")
        return {"interval": to_float(interval) if interval is not None else None,
                "forest_order": order if order in FOREST_ORDERS else FOREST_ORDERS[0]}

    def sensitivity(self) -> dict[str, Any]:
        s = self._get("sensitivity")
        s = s if isinstance(s, dict) else {}
        mat = s.get("materiality") if isinstance(s.get("materiality"), dict) else {}
        return {"prior": s.get("prior"), "uncertainty_status": s.get("uncertainty_status"),
                "leave_one_out": s.get("leave_one_out"), "materiality_rule": mat.get("rule")}

    def triangulate_justification(self) -> str:
        for src in (self.pool, self.doc):
            v = src.get("triangulate_only_justification")
            if v:
                return str(v)
            analysis = src.get("analysis")
            if isinstance(analysis, dict) and analysis.get("triangulate_only_justification"):
                return str(analysis["triangulate_only_justification"])
        return ""

    def readiness(self) -> dict[str, Any]:
        r = self._get("readiness")
        return dict(r) if isinstance(r, dict) else {}

    # -- rows -----------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """The pool's tracker rows as recorded in the plan (row, study_id, study_name, decision,
        window_end, notes, ... and the moderator values when the plan records them)."""
        return [r for r in self._get("rows", []) if isinstance(r, dict)]

    @staticmethod
    def row_value(row: dict[str, Any], name: str) -> Any:
        """A row's value of ``name``: its own field, or its ``moderators`` entry."""
        mods = row.get("moderators")
        if isinstance(mods, dict) and name in mods:
            return mods[name]
        return row.get(name)

    def moderator_values(self, name: str) -> tuple[dict[str, float], float]:
        """({study_id: value of numeric moderator ``name``}, the centre subtracted in the design) from
        the meta-regression's design matrix in the plan ({} and 0 when the plan records none)."""
        mods = self._get("moderators")
        design = mods.get("design") if isinstance(mods, dict) else None
        if not isinstance(design, dict):
            return {}, 0.0
        names = [t.get("name") for t in design.get("terms", []) if isinstance(t, dict)]
        if name not in names:
            return {}, 0.0
        j = names.index(name)
        centre = float((design.get("centring") or {}).get(name, 0.0))
        values = {str(sid): float(row[j]) + centre
                  for sid, row in zip(design.get("study_ids", []), design.get("matrix", []), strict=False)}
        return values, centre

    def duplicates(self) -> list[dict[str, Any]]:
        return [d for d in self._get("duplicates", []) if isinstance(d, dict)]

    def notes(self) -> list[dict[str, str]]:
        """Free text recorded in the plan: project notes, the triangulate-only justification, row notes."""
        out = []
        if self.project_notes:
            out.append({"where": "project notes", "study_id": "", "text": self.project_notes})
        just = self.triangulate_justification()
        if just:
            out.append({"where": "triangulate-only justification", "study_id": "", "text": just})
        for r in self.rows():
            if r.get("notes"):
                out.append({"where": f"tracker row {r.get('row', '')}", "study_id": str(r.get("study_id", "")),
                            "text": str(r["notes"])})
        return out


def read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name}: cannot be read ({exc})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}: not a JSON object")
        return None
    return data


@dataclass
class RunData:
    """Everything the report reads from a run directory (missing parts are None)."""

    run_dir: Path
    status: dict[str, Any] | None = None
    plan: PlanView = field(default_factory=lambda: PlanView(None))
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    _posterior: Any = None
    # the files read since track() (None: not tracking): a drawn figure is reused only while they
    # are unchanged (plots/cache.py)
    _reads: set[str] | None = field(default=None, repr=False)

    def track(self) -> set[str]:
        """Start recording which files of the run directory are read and return the set that fills
        up (the plan files are not recorded: every view of a run reads them, and plots/cache.py
        counts them always)."""
        self._reads = set()
        return self._reads

    def _read(self, name: str) -> None:
        if self._reads is not None:
            self._reads.add(name)

    def _status_doc(self) -> dict[str, Any]:
        self._read("run_status.json")
        return self.status or {}

    # -- raw access ---------------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame | None:
        self._read(name)
        return self.tables.get(name)

    def require(self, name: str) -> pd.DataFrame:
        df = self.table(name)
        if df is None:
            raise MissingInput(self.missing_reason(name))
        return df

    def problem(self, name: str) -> str:
        return next((p for p in self.problems if p.startswith(name + ":")), "")

    def missing_reason(self, name: str) -> str:
        problem = self.problem(name)
        if problem:
            return f"{name} could not be read ({problem[len(name) + 1:].strip()})"
        why = f"{name} is not in the run directory"
        st = self.status_name
        when = FILES[name].when if name in FILES else "always"
        if st == "blocked" and when != "always":
            why += " (the run was blocked before this step)"
        elif st == "failed" and when != "always":
            why += " (the run failed before this step)"
        elif when != "always":
            why += f" (it is written {when})"
        return why

    def row(self, name: str, key: str, value: str) -> dict[str, Any] | None:
        """The first row of CSV ``name`` whose column ``key`` equals ``value``."""
        df = self.table(name)
        if df is None or key not in df.columns:
            return None
        sel = df[df[key] == value]
        return None if sel.empty else sel.iloc[0].to_dict()

    def summary_row(self, name: str, parameter: str) -> dict[str, Any] | None:
        return self.row(name, "parameter", parameter)

    def posterior(self) -> Any:
        """The main fit's posterior group from posterior.nc, as ``.posterior`` (MissingInput if absent)."""
        self._read("posterior.nc")
        if self._posterior is None:
            path = self.run_dir / "posterior.nc"
            if not path.is_file():
                raise MissingInput(self.missing_reason("posterior.nc"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import xarray as xr  # lighter than arviz: only the posterior group is needed

                try:
                    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as ds:
                        self._posterior = SimpleNamespace(posterior=ds.load())
                except Exception as exc:  # unreadable file: a note, not a crash
                    raise MissingInput(f"posterior.nc could not be read ({type(exc).__name__}: {exc})") from None
        return self._posterior

    # -- status ---------------------------------------------------------------------------------
    @property
    def status_name(self) -> str:
        st = self._status_doc().get("status")
        return st if isinstance(st, str) and st else "unknown"

    @property
    def reportable(self) -> bool | None:
        v = self._status_doc().get("reportable")
        return v if isinstance(v, bool) else None

    @property
    def unusable(self) -> str:
        """``FAILED``/``BLOCKED``/``STATUS UNKNOWN`` when no number of this run is for use, else ``""``."""
        st = self.status_name
        if st in UNUSABLE_STATUSES:
            return UNUSABLE_STATUSES[st]
        return "" if st in ("completed", "completed_with_warnings") else "STATUS UNKNOWN"

    @property
    def reasons(self) -> list[dict[str, str]]:
        out = []
        for r in self._status_doc().get("reasons") or []:
            if isinstance(r, dict):
                out.append({"code": str(r.get("code", "")), "message": str(r.get("message", ""))})
            else:
                out.append({"code": "", "message": str(r)})
        return out

    def status_value(self, key: str) -> Any:
        return self._status_doc().get(key)

    # -- identity and scale ---------------------------------------------------------------------
    @property
    def scale(self) -> str:
        if self.plan.scale:
            return self.plan.scale
        head = self.status_value("headline")
        if isinstance(head, dict) and isinstance(head.get("scale"), str):
            return head["scale"]
        rd = self.table("readiness.csv")
        if rd is not None and "scale" in rd.columns and len(rd):
            return str(rd["scale"].iloc[0])
        return "model"

    @property
    def unit(self) -> Unit:
        return Unit(self.scale)

    @property
    def project_name(self) -> str:
        name = self.plan.project_name or self.status_value("project_name")
        return name if isinstance(name, str) and name else self.run_dir.resolve().name

    @property
    def pool_label(self) -> str:
        """The pool's name in a portfolio run, else its label (evidence types/metric/scale)."""
        return self.plan.pool_name or self.plan.pool_label or str(self.readiness().get("pool") or "")

    @property
    def interval_level(self) -> float:
        ps = self.table("pooled_summary.csv")
        if ps is not None and "interval_level" in ps.columns and len(ps):
            v = to_float(ps["interval_level"].iloc[0])
            if math.isfinite(v):
                return v
        v = self.plan.reporting()["interval"]
        return v if v is not None and math.isfinite(v) else 0.95

    # -- evidence -------------------------------------------------------------------------------
    def _ids_with(self, decisions: tuple[str, ...]) -> list[str]:
        ep = self.table("effect_preparation.csv")
        if ep is not None and {"decision", "study_id"} <= set(ep.columns):
            return [str(s) for s, d in zip(ep["study_id"], ep["decision"], strict=True) if d in decisions]
        return [str(r.get("study_id")) for r in self.plan.rows() if r.get("decision") in decisions]

    def pooled_study_ids(self) -> list[str]:
        return self._ids_with(("included", "scenario"))

    def scenario_study_ids(self) -> list[str]:
        return self._ids_with(("scenario",))

    def readiness(self) -> dict[str, Any]:
        rd = self.table("readiness.csv")
        if rd is not None and len(rd):
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rd.iloc[0].to_dict().items()}
        r = self.plan.readiness()
        if r:
            return r
        v = self.status_value("readiness")
        return {"readiness": v} if isinstance(v, str) else {}

    def has_result(self) -> bool:
        return self.summary_row("pooled_summary.csv", "mu") is not None

    def priors(self) -> dict[str, dict[str, Any]]:
        """The plan's priors (MissingInput, saying why, when there are none)."""
        priors = self.plan.priors()
        if not priors:
            raise MissingInput("the plan records no priors" if self.plan.present else self.missing_reason("plan.json"))
        return priors

    def prior_values(self) -> dict[str, Any]:
        """``{name: value}`` of the plan's priors (MissingInput when there are none)."""
        return {k: v.get("value") for k, v in self.priors().items()}


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory once. Never raises for missing or unreadable files: they are left out
    and listed in ``problems``."""
    run = RunData(run_dir=Path(run_dir))
    run.status = read_json(run.run_dir / "run_status.json", run.problems)
    plan_doc = read_json(run.run_dir / "plan.json", run.problems)
    pool_doc = read_json(run.run_dir / "pool.json", run.problems)
    if pool_doc is not None and plan_doc is None:  # pools/<pool>/ of a portfolio: the plan is two levels up
        plan_doc = read_json(run.run_dir.parent.parent / "plan.json", [])
    run.plan = PlanView(plan_doc, pool_doc)
    for name in CSV_FILES:
        path = run.run_dir / name
        if not path.is_file():
            continue
        try:
            run.tables[name] = read_csv(path)
        except Exception as exc:  # a broken artefact must not stop the report
            run.problems.append(f"{name}: cannot be read ({type(exc).__name__}: {exc})")
    return run

