"""Run reports: ``analysis_report.md``, ``report.ipynb`` (executed) and ``report.html``.

The report is built from the files of a run directory only (docs/outputs.md): run_status.json,
plan.json (read as plain JSON), the CSV artefacts and posterior.nc. Any of them may be missing, as
after a blocked or failed run; the report then says so and shows what exists.

Safety rules:

* user text (study names, notes, reasons) reaches the notebook as *data only*: every notebook cell
  is static code from ``templates/report_notebook.py`` that reads the files in its working
  directory; nothing from the run is ever pasted into code;
* user text shown as HTML goes through pandas ``to_html(escape=True)`` or :func:`md_escape`
  (which entity-escapes ``<``, ``>`` and ``&``); matplotlib labels have ``$`` escaped;
* report.html loads nothing from the network: the template drops the CDN scripts of nbconvert's
  ``lab`` template and :func:`strip_external_references` removes anything left.

All numbers in the report are formatted by one rule, :func:`format_number`.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from types import SimpleNamespace
from typing import Any

import pandas as pd

from ..outputs import CSV_FILES, FILES, text_columns

FILES_WHEN = {name: f.when for name, f in FILES.items() if f.when != "always"}

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
NOTEBOOK_TEMPLATE = "report_notebook.py"
MARKDOWN_TEMPLATE = "analysis_report.md.j2"
HTML_TEMPLATE = "report_offline.html.j2"
KERNEL_NAME = "marketbayesmeta-report"
SIG_DIGITS = 4
REVIEW_NOTE = "review material, not an automatic decision"

STATUS_MEANINGS = {
    "completed": "the plan ran to the end without warnings",
    "completed_with_warnings": "the plan ran to the end; the warnings below limit how the result may be used",
    "blocked": "the run stopped before pooling (readiness not enough, blocking duplicates or nothing "
               "poolable); there is no pooled result",
    "failed": "sampling or pooling failed, or a diagnostic failure blocked the result; do not use any "
              "number from this run",
}


class MissingInput(Exception):
    """A file (or a part of one) that a report section needs is not in the run directory."""


# -- formatting -----------------------------------------------------------------------------------

def format_number(value: Any, digits: int = SIG_DIGITS) -> str:
    """The report's one number rule: ``digits`` significant digits, plain notation for
    magnitudes from 1e-4 to 1e6, scientific otherwise; ``n/a`` for missing values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    if v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    r = float(f"{v:.{digits}g}")
    mag = math.floor(math.log10(abs(r)))
    if -4 <= mag < 6:
        return f"{r:.{max(digits - 1 - mag, 0)}f}"
    return f"{r:.{digits - 1}e}"


def format_pct(value: Any) -> str:
    """A relative lift in per cent (already multiplied by 100)."""
    text = format_number(value)
    return text if text == "n/a" else f"{text} %"


def interval_label(level: Any) -> str:
    """``0.95`` -> ``"95 %"``."""
    try:
        v = float(level)
    except (TypeError, ValueError):
        return "posterior"
    return f"{v * 100:g} %" if math.isfinite(v) else "posterior"


class MdSafe(str):
    """Markdown that is already safe (built from escaped parts); never escaped again."""


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|#~$!])")


def md_escape(value: Any) -> MdSafe:
    """Escape text for Markdown that may be rendered as HTML.

    ``&``, ``<`` and ``>`` become entities (no raw HTML can get through), Markdown control
    characters are backslash-escaped, and line breaks collapse to spaces so text stays inline.
    """
    if isinstance(value, MdSafe):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MdSafe("")
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = re.sub(r"\s*[\r\n]+\s*", " ", text)
    return MdSafe(text)


def plot_label(value: Any, width: int = 48) -> str:
    """Text for a matplotlib label: ``$`` escaped (no mathtext), shortened."""
    text = re.sub(r"\s+", " ", "" if value is None else str(value)).strip()
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("$", r"\$")


def _unprefix(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1] in "=+-@\t\r":
        return value[1:]
    return value


def truthy(value: Any) -> bool | None:
    """``true``/``false`` cells (or bools) as bool; None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        with contextlib.suppress(Exception):
            return truthy(value.item())
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "pass", "passed"):
        return True
    if text in ("false", "no", "0", "fail", "failed"):
        return False
    return None


def flagged(value: Any) -> bool:
    """A ppc ``flag`` cell: true, or any label other than an empty/negative one."""
    t = truthy(value)
    if t is not None:
        return t
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return str(value).strip().lower() not in ("", "ok", "none", "nan")


# -- reading a run directory ----------------------------------------------------------------------

def _read_csv(path: Path, name: str) -> pd.DataFrame:
    text_cols = text_columns(name)
    df = pd.read_csv(path, dtype={c: str for c in text_cols}, keep_default_na=False,
                     na_values=[""], encoding="utf-8")
    for c in text_cols:
        if c in df.columns:
            df[c] = pd.Series([("" if pd.isna(v) else _unprefix(str(v))) for v in df[c]],
                              index=df.index, dtype=object)
    return df


@dataclass
class RunData:
    """Everything the report reads from a run directory (missing parts are None)."""

    run_dir: Path
    status: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    _posterior: Any = None

    # -- raw access ---------------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)

    def require(self, name: str) -> pd.DataFrame:
        df = self.tables.get(name)
        if df is None:
            raise MissingInput(self.missing_reason(name))
        return df

    def missing_reason(self, name: str) -> str:
        problem = next((p for p in self.problems if p.startswith(name + ":")), None)
        if problem:
            return f"{name} could not be read ({problem[len(name) + 1:].strip()})"
        why = f"{name} is not in the run directory"
        st = self.status_name
        if st == "blocked":
            why += " (the run was blocked before this step)"
        elif st == "failed":
            why += " (the run failed before this step)"
        elif name in FILES_WHEN:
            why += f" (written {FILES_WHEN[name]})"
        return why

    def posterior(self) -> Any:
        """The main fit's posterior group from posterior.nc, as ``.posterior`` (MissingInput if absent)."""
        if self._posterior is None:
            path = self.run_dir / "posterior.nc"
            if not path.is_file():
                raise MissingInput(self.missing_reason("posterior.nc"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import xarray as xr  # lighter than arviz: the kernel only needs the posterior group

                try:
                    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as ds:
                        self._posterior = SimpleNamespace(posterior=ds.load())
                except Exception as exc:  # unreadable file: a note, not a crash
                    raise MissingInput(f"posterior.nc could not be read ({type(exc).__name__}: {exc})") from None
        return self._posterior

    # -- derived facts ------------------------------------------------------------------------
    @property
    def status_name(self) -> str:
        st = (self.status or {}).get("status")
        return st if isinstance(st, str) and st else "unknown"

    @property
    def reportable(self) -> bool | None:
        v = (self.status or {}).get("reportable")
        return v if isinstance(v, bool) else None

    @property
    def reasons(self) -> list[dict[str, str]]:
        out = []
        for r in (self.status or {}).get("reasons") or []:
            if isinstance(r, dict):
                out.append({"code": str(r.get("code", "")), "message": str(r.get("message", ""))})
            else:
                out.append({"code": "", "message": str(r)})
        return out

    @property
    def scale(self) -> str:
        for src in (self.plan or {}, ((self.status or {}).get("headline") or {})):
            if isinstance(src, dict) and isinstance(src.get("scale"), str):
                return src["scale"]
        rd = self.table("readiness.csv")
        if rd is not None and "scale" in rd.columns and len(rd):
            return str(rd["scale"].iloc[0])
        return "model"

    @property
    def is_log_relative(self) -> bool:
        return self.scale == "log_relative"

    @property
    def project_name(self) -> str:
        for src in (self.plan or {}, self.status or {}):
            name = src.get("project_name")
            if isinstance(name, str) and name:
                return name
        return self.run_dir.name

    @property
    def interval_level(self) -> float:
        ps = self.table("pooled_summary.csv")
        if ps is not None and "interval_level" in ps.columns and len(ps):
            with contextlib.suppress(TypeError, ValueError):
                v = float(ps["interval_level"].iloc[0])
                if math.isfinite(v):
                    return v
        v = (self.plan or {}).get("reporting_interval")
        return float(v) if isinstance(v, int | float) else 0.95

    def summary_row(self, name: str, parameter: str) -> dict[str, Any] | None:
        df = self.table(name)
        if df is None or "parameter" not in df.columns:
            return None
        sel = df[df["parameter"] == parameter]
        return None if sel.empty else sel.iloc[0].to_dict()

    def prior_values(self) -> dict[str, Any]:
        priors = (self.plan or {}).get("priors")
        if not isinstance(priors, dict):
            raise MissingInput("plan.json has no priors" if self.plan else self.missing_reason("plan.json"))
        out: dict[str, Any] = {}
        for key in ("mu_mean", "mu_sd", "tau_scale", "tau_family"):
            entry = priors.get(key)
            out[key] = entry.get("value") if isinstance(entry, dict) else entry
        return out

    def pooled_study_ids(self) -> list[str]:
        ep = self.table("effect_preparation.csv")
        if ep is not None and {"decision", "study_id"} <= set(ep.columns):
            return [str(s) for s in ep.loc[ep["decision"] != "excluded", "study_id"]]
        return [str(r.get("study_id")) for r in (self.plan or {}).get("rows") or []
                if isinstance(r, dict) and r.get("decision") != "excluded"]

    def scenario_study_ids(self) -> list[str]:
        ep = self.table("effect_preparation.csv")
        if ep is not None and {"decision", "study_id"} <= set(ep.columns):
            return [str(s) for s in ep.loc[ep["decision"] == "scenario", "study_id"]]
        return [str(r.get("study_id")) for r in (self.plan or {}).get("rows") or []
                if isinstance(r, dict) and r.get("decision") == "scenario"]

    def duplicates(self) -> list[dict[str, Any]]:
        return [d for d in (self.plan or {}).get("duplicates") or [] if isinstance(d, dict)]

    def readiness(self) -> dict[str, Any]:
        rd = self.table("readiness.csv")
        if rd is not None and len(rd):
            return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in rd.iloc[0].to_dict().items()}
        r = (self.plan or {}).get("readiness")
        if isinstance(r, dict):
            return dict(r)
        v = (self.status or {}).get("readiness")
        return {"readiness": v} if isinstance(v, str) else {}


def _pool_view(plan: dict[str, Any], pool: dict[str, Any] | None) -> dict[str, Any]:
    """The pool's section of a plan (v2) with the plan's project fields: what the report reads."""
    if pool is None:
        pools = plan.get("pools")
        pool = pools[0] if isinstance(pools, list) and len(pools) == 1 and isinstance(pools[0], dict) else {}
    view = {k: v for k, v in plan.items() if k != "pools"}
    view.update(pool)
    reporting = pool.get("reporting")
    if isinstance(reporting, dict):
        view["reporting_interval"] = reporting.get("interval")
    return view


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory. Never raises for missing or unreadable files: they are left out
    and listed in ``problems``."""
    run = RunData(run_dir=Path(run_dir))
    pool_doc = None
    for name, attr in (("run_status.json", "status"), ("plan.json", "plan"), ("pool.json", "pool")):
        path = run.run_dir / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            run.problems.append(f"{name}: cannot be read ({exc})")
            continue
        if not isinstance(data, dict):
            run.problems.append(f"{name}: not a JSON object")
        elif attr == "pool":
            pool_doc = data
        else:
            setattr(run, attr, data)
    if pool_doc is not None or (run.plan is not None and "pools" in run.plan):
        run.plan = _pool_view(run.plan or {"project_name": (run.status or {}).get("project_name")}, pool_doc)
    for name in CSV_FILES:
        path = run.run_dir / name
        if not path.is_file():
            continue
        try:
            run.tables[name] = _read_csv(path, name)
        except Exception as exc:  # a broken artefact must not stop the report
            run.problems.append(f"{name}: cannot be read ({type(exc).__name__}: {exc})")
    return run


# -- tables ---------------------------------------------------------------------------------------

def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def _select(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return df[[c for c in columns if c in df.columns]].copy()


def _main_diag(run: RunData) -> pd.DataFrame | None:
    dg = run.table("diagnostics.csv")
    if dg is None or "fit" not in dg.columns:
        return None
    return dg[dg["fit"] == "main"]


def fit_verdicts(run: RunData) -> dict[str, bool | None]:
    """Per fit: did all its diagnostics pass (from the ``(fit)``/``all`` rows)."""
    dg = run.table("diagnostics.csv")
    out: dict[str, bool | None] = {}
    if dg is None or not {"fit", "check", "pass"} <= set(dg.columns):
        return out
    for _, r in dg[dg["check"] == "all"].iterrows():
        out[str(r["fit"])] = truthy(r["pass"])
    if not out:  # no summary rows: derive from the checks
        for fit, grp in dg.groupby("fit", sort=False):
            vals = [truthy(v) for v in grp["pass"]]
            out[str(fit)] = all(v is not False for v in vals)
    return out


def failed_checks(run: RunData) -> pd.DataFrame | None:
    dg = run.table("diagnostics.csv")
    if dg is None or not {"check", "pass"} <= set(dg.columns):
        return None
    mask = [truthy(v) is False for v in dg["pass"]]
    out = dg[mask]
    return out[out["check"] != "all"]


def exact_rows(run: RunData) -> pd.DataFrame | None:
    dg = run.table("diagnostics.csv")
    if dg is None or "check" not in dg.columns:
        return None
    return dg[dg["check"].astype(str).str.startswith("exact_z")]


def reportable_checklist(run: RunData) -> pd.DataFrame:
    """SPEC §7's conditions as the artefacts show them (run_status.json stays authoritative)."""
    rows: list[dict[str, Any]] = []

    def add(criterion: str, observed: str, met: bool | None) -> None:
        rows.append({"criterion": criterion, "observed": observed,
                     "met": "unknown" if met is None else ("yes" if met else "no")})

    st = run.status_name
    add("run completed (warnings must not touch the result)", st,
        None if st == "unknown" else st in ("completed", "completed_with_warnings"))
    rd = run.readiness().get("readiness")
    add("readiness is ready", str(rd) if rd else "unknown", None if not rd else rd == "ready")
    verdicts = fit_verdicts(run)
    failing = [f for f, ok in verdicts.items() if ok is False]
    if not verdicts:
        add("diagnostics pass for every fit", "no diagnostics.csv" if run.table("diagnostics.csv") is None
            else "no per-fit verdicts", None)
    else:
        add("diagnostics pass for every fit", f"failing: {', '.join(failing)}" if failing
            else f"all {len(verdicts)} fit(s) pass", not failing)
    blocking = [d for d in run.duplicates() if d.get("kind") == "blocking"]
    if run.plan is not None:
        add("no blocking duplicates", f"{len(blocking)} blocking group(s)", not blocking)
    else:
        add("no blocking duplicates", "plan.json missing", None)
    ps = run.table("prior_sensitivity.csv")
    if ps is not None and "material" in ps.columns:
        mat = [str(s) for s, m in zip(ps.get("spec", ps.index), ps["material"], strict=False) if truthy(m)]
        add("no material prior dependence", ", ".join(mat) if mat else "none material", not mat)
    else:
        add("no material prior dependence", "prior sensitivity not available", None)
    scen = run.scenario_study_ids()
    add("no scenario-uncertainty rows", f"{len(scen)} scenario row(s)",
        not scen if (run.table("effect_preparation.csv") is not None or run.plan) else None)
    return pd.DataFrame(rows)


def rows_table(run: RunData) -> pd.DataFrame:
    ep = run.require("effect_preparation.csv")
    return _select(ep, ["row", "study_id", "study_name", "evidence_type", "metric", "decision",
                        "reason", "reason_message", "transform", "source_estimate", "source_unit",
                        "uncertainty_source", "uncertainty_scenario", "model_estimate", "model_se"])


def priors_table(run: RunData) -> pd.DataFrame:
    priors = (run.plan or {}).get("priors")
    if not isinstance(priors, dict):
        raise MissingInput(run.missing_reason("plan.json"))
    rows = []
    for k, v in priors.items():
        v = v if isinstance(v, dict) else {"value": v}
        rows.append({"prior": k, "value": v.get("value"), "provenance": v.get("provenance", "")})
    return pd.DataFrame(rows)


def duplicates_table(run: RunData) -> pd.DataFrame:
    dups = run.duplicates()
    if not dups:
        raise MissingInput("no duplicate or possible-duplicate rows were recorded in plan.json"
                           if run.plan else run.missing_reason("plan.json"))
    return pd.DataFrame([{"kind": d.get("kind", ""), "study_ids": ", ".join(map(str, d.get("study_ids") or [])),
                          "rows": ", ".join(map(str, d.get("rows") or [])), "message": d.get("message", "")}
                         for d in dups])


def reasons_table(run: RunData) -> pd.DataFrame:
    if run.status is None:
        raise MissingInput(run.missing_reason("run_status.json"))
    if not run.reasons:
        raise MissingInput("run_status.json lists no reasons")
    return pd.DataFrame(run.reasons, columns=["code", "message"])


def notes_table(run: RunData) -> pd.DataFrame:
    rows = []
    notes = (run.plan or {}).get("project_notes")
    if notes:
        rows.append({"where": "project notes", "study_id": "", "text": str(notes)})
    just = (run.plan or {}).get("triangulate_only_justification")
    if just:
        rows.append({"where": "triangulate-only justification", "study_id": "", "text": str(just)})
    for r in (run.plan or {}).get("rows") or []:
        if isinstance(r, dict) and r.get("notes"):
            rows.append({"where": f"tracker row {r.get('row', '')}", "study_id": str(r.get("study_id", "")),
                         "text": str(r["notes"])})
    if not rows:
        raise MissingInput("no notes recorded in plan.json" if run.plan else run.missing_reason("plan.json"))
    return pd.DataFrame(rows)


def provenance_table(run: RunData) -> pd.DataFrame:
    st, plan = run.status or {}, run.plan or {}
    rows = [
        ("project", run.project_name), ("status", run.status_name),
        ("exit code", st.get("exit_code")), ("plan hash", st.get("plan_hash") or plan.get("plan_hash")),
        ("package version", st.get("package_version") or plan.get("package_version")),
        ("started at", st.get("started_at")), ("finished at", st.get("finished_at")),
        ("executed with --allow-stale", st.get("allow_stale")),
        ("stale sources", ", ".join(map(str, st.get("stale_sources") or [])) or "none"),
    ]
    for name, src in (plan.get("sources") or {}).items():
        if isinstance(src, dict):
            rows.append((f"{name} source", f"{src.get('name', '')} (sha256 {str(src.get('sha256', ''))[:12]}…)"))
    for lib, ver in (st.get("versions") or {}).items():
        rows.append((f"{lib} version", ver))
    return pd.DataFrame([{"item": k, "value": "" if v is None else v} for k, v in rows])


def files_table(run: RunData) -> pd.DataFrame:
    names = ["run_status.json", "plan.json", *CSV_FILES, "posterior.nc"]
    rows = []
    for n in names:
        present = (run.run_dir / n).is_file()
        problem = next((p for p in run.problems if p.startswith(n + ":")), "")
        rows.append({"file": n, "present": "yes" if present else "no", "problem": problem})
    return pd.DataFrame(rows)


TABLES: dict[str, Callable[[RunData], pd.DataFrame]] = {
    "reasons": reasons_table,
    "reportable_checklist": reportable_checklist,
    "readiness": lambda run: run.require("readiness.csv"),
    "rows": rows_table,
    "duplicates": duplicates_table,
    "pooled_summary": lambda run: run.require("pooled_summary.csv"),
    "future_true_effect": lambda run: run.require("future_true_effect_summary.csv"),
    "study_effects": lambda run: run.require("study_effects.csv"),
    "priors": priors_table,
    "diagnostics_fits": lambda run: _require_nonempty(
        pd.DataFrame([{"fit": f, "all checks pass": "unknown" if v is None else format_number(v)}
                      for f, v in fit_verdicts(run).items()]),
        run.missing_reason("diagnostics.csv") if run.table("diagnostics.csv") is None
        else "diagnostics.csv has no per-fit verdicts"),
    "diagnostics_main": lambda run: _require_nonempty(_main_diag(run), run.missing_reason("diagnostics.csv")),
    "exact_cross_check": lambda run: _require_nonempty(exact_rows(run), "no exact cross-check rows"),
    "failed_checks": lambda run: _require_nonempty(failed_checks(run), "no diagnostic check failed"),
    "prior_diagnostics": lambda run: run.require("prior_diagnostics.csv"),
    "ppc": lambda run: run.require("ppc.csv"),
    "prior_sensitivity": lambda run: run.require("prior_sensitivity.csv"),
    "uncertainty_sensitivity": lambda run: run.require("uncertainty_sensitivity.csv"),
    "influence": lambda run: run.require("influence.csv"),
    "notes": notes_table,
    "provenance": provenance_table,
    "files": files_table,
}


def _require_nonempty(df: pd.DataFrame | None, why: str) -> pd.DataFrame:
    if df is None or df.empty:
        raise MissingInput(why)
    return df


def _display_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype == bool or any(isinstance(v, bool) for v in col):
            out[c] = ["" if v is None or (isinstance(v, float) and math.isnan(v))
                      else format_number(v) if isinstance(v, bool) else v for v in col]
    return out


def frame_html(df: pd.DataFrame) -> str:
    """A DataFrame as an HTML table: every cell escaped, floats by :func:`format_number`."""
    with pd.option_context("display.max_colwidth", 300):
        return _display_frame(df).to_html(escape=True, index=False, na_rep="", border=0,
                                          float_format=format_number, render_links=False)


def md_table(df: pd.DataFrame | None, columns: Sequence[str] | None = None) -> MdSafe:
    """A DataFrame as a Markdown table with every cell escaped."""
    if df is None or df.empty:
        return MdSafe("")
    if columns is not None:
        df = _select(df, columns)
    df = _display_frame(df)

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, float):
            return format_number(v)
        return md_escape(v)

    lines = ["| " + " | ".join(md_escape(c) for c in df.columns) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(cell(v) for v in r) + " |")
    return MdSafe("\n".join(lines))


# -- reporting language ----------------------------------------------------------------------------

def _lvl(run: RunData) -> str:
    return interval_label(run.interval_level)


def _interval(row: dict[str, Any], lo: str = "lower", hi: str = "upper") -> str:
    return f"{format_number(row.get(lo))} to {format_number(row.get(hi))}"


def _pct_interval(row: dict[str, Any]) -> str:
    return f"{format_pct(row.get('lower_pct'))} to {format_pct(row.get('upper_pct'))}"


def _has_pct(row: dict[str, Any] | None) -> bool:
    return bool(row) and format_number(row.get("mean_pct")) != "n/a"


def _ids(ids: Iterable[str], limit: int = 12) -> str:
    ids = list(ids)
    shown = ", ".join(md_escape(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def status_markdown(run: RunData) -> MdSafe:
    st = run.status_name
    meaning = STATUS_MEANINGS.get(st, "run_status.json is missing or has no status")
    rep = run.reportable
    rep_text = ("**yes**: the run meets every reportability condition; still review it before use"
                if rep else "**no**: do not present the result without the analyst review the reasons ask for"
                if rep is False else "**unknown** (run_status.json is missing or incomplete)")
    lines = [f"- **Status:** {md_escape(st)}: {meaning}.",
             f"- **Reportable:** {rep_text}."]
    if run.reasons:
        lines.append("- **Reasons:**")
        lines += [f"  - {md_escape(r['code'])}: {md_escape(r['message'])}" if r["code"]
                  else f"  - {md_escape(r['message'])}" for r in run.reasons]
    elif run.status is not None:
        lines.append("- **Reasons:** none recorded.")
    if (run.status or {}).get("allow_stale"):
        stale = (run.status or {}).get("stale_sources") or []
        lines.append("- **Stale plan:** executed with --allow-stale although its sources changed"
                     + (f" ({_ids(map(str, stale))})" if stale else "") + ".")
    for p in run.problems:
        lines.append(f"- **Unreadable file:** {md_escape(p)}")
    lines.append(f"\nThis report is {REVIEW_NOTE}.")
    return MdSafe("\n".join(lines))


def _sens_range(df: pd.DataFrame, label_col: str) -> str:
    means = pd.to_numeric(df.get("mean"), errors="coerce")
    probs = pd.to_numeric(df.get("prob_positive"), errors="coerce")
    text = (f"the posterior mean of mu ranges from {format_number(means.min())} to "
            f"{format_number(means.max())}")
    if probs is not None and probs.notna().any():
        text += f" and P(mu > 0) from {format_number(probs.min())} to {format_number(probs.max())}"
    return text


def _material(df: pd.DataFrame, label_col: str) -> list[str]:
    if "material" not in df.columns:
        return []
    out = []
    for _, r in df.iterrows():
        if truthy(r["material"]):
            why = str(r.get("material_reasons") or "").strip()
            out.append(md_escape(r.get(label_col, "")) + (f" ({md_escape(why)})" if why else ""))
    return out


def scenario_markdown(run: RunData) -> MdSafe:
    scen = run.scenario_study_ids()
    pooled = run.pooled_study_ids()
    if not scen:
        return MdSafe("No pooled row relies on scenario uncertainty: every pooled row carries an "
                      "uncertainty from its source, so no uncertainty-scenario sensitivity applies.")
    text = (f"{len(scen)} of {len(pooled)} pooled rows ({_ids(scen)}) report no uncertainty of their "
            "own and use the configured scenario standard error, so the result depends on that "
            "assumption and is not reportable on its own.")
    us = run.table("uncertainty_sensitivity.csv")
    if us is not None and len(us):
        text += f" Across the scenario levels ({_ids(map(str, us.get('level', [])))}), {_sens_range(us, 'level')}."
        mat = _material(us, "level")
        text += (f" Material changes: {'; '.join(mat)}." if mat
                 else " No level changes the result materially under the materiality rule.")
    else:
        text += " Uncertainty sensitivity results are not available (uncertainty_sensitivity.csv is missing)."
    return MdSafe(text)


def prior_markdown(run: RunData) -> MdSafe:
    ps = run.table("prior_sensitivity.csv")
    rule = ((run.plan or {}).get("sensitivity") or {}).get("materiality") or {}
    rule_text = rule.get("rule") if isinstance(rule, dict) else None
    if ps is None or not len(ps):
        text = "Prior sensitivity results are not available (prior_sensitivity.csv is missing), so prior dependence is unchecked."
    else:
        specs = _ids(map(str, ps.get("spec", ps.get("fit", []))))
        text = f"Across the prior grid ({specs}), {_sens_range(ps, 'spec')}."
        mat = _material(ps, "spec")
        text += (f" **Material prior dependence:** {'; '.join(mat)}." if mat
                 else " No prior spec changes the result materially.")
        if rule_text:
            text += f" Rule: {md_escape(rule_text)}."
    pdg = run.table("prior_diagnostics.csv")
    if pdg is not None and "warning" in pdg.columns:
        n = sum(bool(truthy(v)) for v in pdg["warning"])
        text += (f" Prior diagnostics raise {n} warning(s) (see prior_diagnostics.csv)." if n
                 else " Prior diagnostics raise no warning.")
    return MdSafe(text)


def diagnostics_markdown(run: RunData) -> MdSafe:
    parts = []
    verdicts = fit_verdicts(run)
    if not verdicts and run.table("diagnostics.csv") is None:
        parts.append("Sampler diagnostics are not available (diagnostics.csv is missing).")
    else:
        main = verdicts.get("main")
        parts.append("The main fit passes every sampler diagnostic and the exact cross-check."
                     if main else "**The main fit fails its diagnostics.**" if main is False
                     else "The main fit has no diagnostics verdict.")
        others = [f for f, ok in verdicts.items() if f != "main" and ok is False]
        if others:
            parts.append(f"Sensitivity fits failing their diagnostics: {_ids(others)}.")
        fc = failed_checks(run)
        if fc is not None and len(fc):
            items = [f"{md_escape(r.get('fit'))} {md_escape(r.get('parameter'))} {md_escape(r.get('check'))} = "
                     f"{format_number(r.get('value'))} (threshold {format_number(r.get('threshold'))})"
                     for _, r in fc.head(8).iterrows()]
            parts.append("Failed checks: " + "; ".join(items) + ("; …" if len(fc) > 8 else "") + ".")
        ex = exact_rows(run)
        if ex is not None and len(ex):
            mex = ex[ex["fit"] == "main"] if "fit" in ex.columns else ex
            if len(mex):
                z = pd.to_numeric(mex["value"], errors="coerce").abs().max()
                thr = pd.to_numeric(mex.get("threshold"), errors="coerce").max()
                parts.append(f"Exact cross-check (quadrature over tau): the largest MCMC-versus-exact "
                             f"difference for the main fit is {format_number(z)} Monte Carlo standard "
                             f"errors (bound {format_number(thr)}).")
    rd = run.readiness()
    if rd.get("readiness"):
        parts.append(f"Readiness is **{md_escape(rd.get('readiness'))}**"
                     + (f": {md_escape(rd.get('why'))}" if rd.get("why") else "") + ".")
    return MdSafe(" ".join(parts))


def headline_markdown(run: RunData) -> MdSafe:
    """The headline in reporting language; the same numbers as pooled_summary.csv."""
    lvl = _lvl(run)
    mu = run.summary_row("pooled_summary.csv", "mu")
    out: list[str] = []
    if mu is None:
        why = {"blocked": "the run was blocked before pooling (see the reasons above)",
               "failed": "the run failed (see the reasons above)"}.get(
            run.status_name, "pooled_summary.csv is not in the run directory")
        out.append(f"**No pooled result is available:** {why}. Nothing in this report is a pooled estimate.")
    else:
        text = (f"**Pooled posterior for comparable evidence.** The posterior mean of mu (the average "
                f"true effect across the pooled studies, {md_escape(run.scale)} scale) is "
                f"**{format_number(mu.get('mean'))}**, {lvl} interval **{_interval(mu)}** "
                f"(posterior sd {format_number(mu.get('sd'))}).")
        if _has_pct(mu):
            text += (f" As a relative lift: **{format_pct(mu.get('mean_pct'))}**, {lvl} interval "
                     f"{_pct_interval(mu)}.")
        text += f" P(mu > 0) = **{format_number(mu.get('prob_positive'))}**."
        if run.status_name == "failed":
            text += " The run failed: these numbers must not be used."
        out.append(text)
        tau = run.summary_row("pooled_summary.csv", "tau")
        if tau:
            out.append(f"**Between-study heterogeneity.** tau has posterior mean {format_number(tau.get('mean'))} "
                       f"({lvl} interval {_interval(tau)}).")
        fut = run.summary_row("future_true_effect_summary.csv", "future_true_effect")
        if fut:
            text = (f"**Latent true effect of a future comparable study.** Mean {format_number(fut.get('mean'))}, "
                    f"{lvl} interval {_interval(fut)}")
            if _has_pct(fut):
                text += f" ({_pct_interval(fut)} as a relative lift)"
            if format_number(fut.get("prob_positive")) != "n/a":
                text += f"; probability above zero {format_number(fut.get('prob_positive'))}"
            text += (". It adds the between-study spread (tau) to the uncertainty about mu but no "
                     "measurement error: it is **not a prediction of the next observed estimate**, "
                     "which would be more uncertain still.")
            out.append(text)
    out.append(f"**Uncertainty-scenario dependence.** {scenario_markdown(run)}")
    out.append(f"**Prior dependence.** {prior_markdown(run)}")
    out.append(f"**Diagnostics and readiness.** {diagnostics_markdown(run)}")
    rep = run.reportable
    out.append("**Reportable:** " + ("yes" if rep else "no" if rep is False else "unknown")
               + f". This is {REVIEW_NOTE}.")
    return MdSafe("\n\n".join(out))


def review_points(run: RunData) -> tuple[list[MdSafe], list[MdSafe]]:
    """(caveats, what to check next) as escaped Markdown bullet texts."""
    caveats: list[str] = []
    nxt: list[str] = []
    st = run.status_name
    rd = run.readiness()
    k = len(run.pooled_study_ids())
    if st in ("blocked", "failed"):
        caveats.append(f"The run {'was blocked' if st == 'blocked' else 'failed'}: there is no usable pooled result.")
        nxt.append("Resolve the reasons listed under run status, then recompile and rerun the plan.")
    has_result = run.summary_row("pooled_summary.csv", "mu") is not None
    if k and has_result:
        caveats.append(f"Only {k} pooled row(s): with few studies, the posterior interval and the "
                       "sensitivity results say more than the point estimate, and tau is weakly identified.")
    readiness = rd.get("readiness")
    if readiness == "directional":
        caveats.append("Readiness is directional: treat the result as a direction, not a size.")
        nxt.append("Add comparable studies before reporting a pooled size.")
    elif readiness == "not_recommended":
        caveats.append("Readiness is not_recommended: too few comparable rows to pool.")
    scen = run.scenario_study_ids()
    if scen:
        caveats.append(f"Row(s) {_ids(scen)} use scenario uncertainty, not uncertainty from their source.")
        nxt.append(f"Find a standard error or confidence interval for {_ids(scen)} in the source studies.")
    ps = run.table("prior_sensitivity.csv")
    if ps is not None:
        mat = _material(ps, "spec")
        if mat:
            caveats.append(f"Material prior dependence: {'; '.join(mat)}.")
            nxt.append("Justify the priors from external information (not from this result) and record it in the config.")
    elif st not in ("blocked", "failed", "unknown"):
        if ((run.plan or {}).get("sensitivity") or {}).get("prior") is False:
            nxt.append("Enable prior sensitivity (sensitivity.prior: true) to see how much the priors matter.")
        else:
            caveats.append("Prior sensitivity results are missing, so prior dependence is unchecked.")
    verdicts = fit_verdicts(run)
    if verdicts.get("main") is False:
        caveats.append("The main fit failed its diagnostics; its numbers are not reliable.")
        nxt.append("Inspect the trace and rank plots and diagnostics.csv; rerun with more tuning/draws or a "
                   "higher target_accept, and check the evidence for outliers.")
    pdg = run.table("prior_diagnostics.csv")
    if pdg is not None and {"warning", "message"} <= set(pdg.columns):
        for _, r in pdg.iterrows():
            if truthy(r["warning"]):
                caveats.append(f"Prior diagnostic: {md_escape(r['message'])}")
    ppc = run.table("ppc.csv")
    if ppc is not None and "flag" in ppc.columns:
        fl = [str(r["study_id"]) for _, r in ppc.iterrows() if flagged(r["flag"])]
        if fl:
            caveats.append(f"In-sample posterior predictive check flags {_ids(fl)}.")
            nxt.append(f"Review whether {_ids(fl)} measure the same estimand as the other studies.")
    possible = [d for d in run.duplicates() if d.get("kind") == "possible"]
    blocking = [d for d in run.duplicates() if d.get("kind") == "blocking"]
    if blocking:
        caveats.append(f"{len(blocking)} blocking duplicate group(s): the same study entered twice.")
        nxt.append("Remove the repeated tracker rows listed under duplicates.")
    if possible:
        caveats.append(f"{len(possible)} possible duplicate group(s): overlapping evidence may be counted twice.")
        nxt.append("Confirm that possible duplicates are distinct studies (different samples or windows).")
    just = (run.plan or {}).get("triangulate_only_justification")
    if just:
        caveats.append(f"Triangulate-only evidence was let into the pool on this justification: {md_escape(just)}")
    if (run.status or {}).get("allow_stale"):
        caveats.append("The plan was executed with --allow-stale: its tracker or config changed after compile.")
        nxt.append("Recompile the plan from the current config and tracker.")
    if has_result:
        caveats.append("The future true effect excludes measurement error; it is not a prediction of the "
                       "next observed study estimate.")
    if ppc is not None:
        caveats.append("The posterior predictive check is in-sample, not leave-one-out validation.")
    nxt.append("Confirm the studies answer the same question: population, measurement window, design and "
               "estimand. The tracker checks units and metrics, not comparability.")
    ep = run.table("effect_preparation.csv")
    if ep is not None and "decision" in ep.columns and (ep["decision"] == "excluded").any():
        nxt.append(f"Check that the {int((ep['decision'] == 'excluded').sum())} excluded row(s) in "
                   "effect_preparation.csv are meant to be excluded.")
    if run.problems:
        caveats.append("Some artefacts could not be read: " + md_escape("; ".join(run.problems)))
    return [MdSafe(c) for c in caveats], [MdSafe(n) for n in nxt]


def caveats_markdown(run: RunData) -> MdSafe:
    caveats, nxt = review_points(run)
    return MdSafe("**Caveats**\n\n" + "\n".join(f"- {c}" for c in caveats)
                  + "\n\n**What to check next**\n\n" + "\n".join(f"- {n}" for n in nxt))


# -- plots ----------------------------------------------------------------------------------------

def _plt() -> Any:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _study_label(sid: Any, name: Any) -> str:
    sid, name = str(sid or ""), str(name or "")
    return plot_label(f"{name} ({sid})" if name and name != sid else sid)


def _pct_axis(ax: Any, run: RunData) -> None:
    if not run.is_log_relative:
        return
    import numpy as np

    def fwd(x: Any) -> Any:
        return 100 * np.expm1(np.clip(x, -50, 50))

    def inv(p: Any) -> Any:
        return np.log1p(np.clip(np.asarray(p, dtype=float) / 100, -0.999999, None))

    sec = ax.secondary_xaxis("top", functions=(fwd, inv))
    sec.set_xlabel("relative lift (%)")


def plot_forest(run: RunData) -> Any:
    """Observed estimate ± interval, shrunken theta_i, pooled mu and the future true effect."""
    se_df = run.require("study_effects.csv")
    plt = _plt()
    lvl = run.interval_level
    z = NormalDist().inv_cdf(0.5 + lvl / 2)
    n = len(se_df)
    fig, ax = plt.subplots(figsize=(9, 2.0 + 0.42 * (n + 3)), layout="constrained")
    labels, ys = [], []
    for i, (_, r) in enumerate(se_df.iterrows()):
        y = -i
        obs, s = _num(r.get("observed")), _num(r.get("se"))
        ax.errorbar([obs], [y + 0.15], xerr=[[z * s], [z * s]], fmt="s", color="0.45", mfc="white",
                    capsize=2, label="observed ± interval" if i == 0 else None)
        m, lo, hi = _num(r.get("mean")), _num(r.get("lower")), _num(r.get("upper"))
        ax.errorbar([m], [y - 0.15], xerr=[[m - lo], [hi - m]], fmt="o", color="tab:blue", capsize=2,
                    label="study true effect theta (posterior)" if i == 0 else None)
        labels.append(_study_label(r.get("study_id"), r.get("study_name")) +
                      (" [scenario SE]" if r.get("decision") == "scenario" else ""))
        ys.append(y)
    for j, (fname, param, label, color) in enumerate((
            ("pooled_summary.csv", "mu", "pooled mu", "tab:red"),
            ("future_true_effect_summary.csv", "future_true_effect", "future true effect", "tab:purple"))):
        row = run.summary_row(fname, param)
        if row is None:
            continue
        y = -(n + 0.5 + j)
        m, lo, hi = _num(row.get("mean")), _num(row.get("lower")), _num(row.get("upper"))
        ax.errorbar([m], [y], xerr=[[m - lo], [hi - m]], fmt="D", color=color, ms=7, capsize=3, label=label)
        labels.append(label)
        ys.append(y)
    ax.axvline(0, color="0.6", lw=0.8, ls="--")
    ax.set_yticks(ys, labels)
    ax.set_xlabel(f"effect on the {plot_label(run.scale)} scale")
    ax.set_title(f"Forest plot ({interval_label(lvl)} intervals)")
    fig.legend(loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    _pct_axis(ax, run)
    return fig


def _prior_pdf(x: Any, family: str, scale: float) -> Any:
    from ..families import family as family_of

    return family_of(family).pdf(x, scale)


def plot_prior_posterior(run: RunData) -> Any:
    """Prior (from plan.json) versus posterior (posterior.nc) densities of mu and tau."""
    import numpy as np

    idata = run.posterior()
    pri = run.prior_values()
    post = idata.posterior
    if "mu" not in post or "tau" not in post:
        raise MissingInput("posterior.nc has no mu or tau")
    mu = np.asarray(post["mu"].values, dtype=float).ravel()
    tau = np.asarray(post["tau"].values, dtype=float).ravel()
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    m0, s0 = _num(pri.get("mu_mean")), _num(pri.get("mu_sd"))
    lo, hi = (float(q) for q in np.quantile(mu, [0.005, 0.995]))
    pad = 0.5 * (hi - lo) + 1e-12
    x = np.linspace(lo - pad, hi + pad, 400)
    axes[0].hist(mu, bins=60, range=(lo, hi), density=True, histtype="stepfilled", alpha=0.35,
                 color="tab:blue", label="posterior (central 99 %)")
    axes[0].set_xlim(x[0], x[-1])
    if math.isfinite(m0) and math.isfinite(s0) and s0 > 0:
        axes[0].plot(x, np.exp(-0.5 * ((x - m0) / s0) ** 2) / (s0 * math.sqrt(2 * math.pi)), color="tab:orange",
                     lw=2, label=f"prior Normal({format_number(m0)}, {format_number(s0)})")
    axes[0].set_xlabel("mu")
    axes[0].set_ylabel("density")
    axes[0].set_title("mu: prior vs posterior")
    axes[0].legend(fontsize=8)
    fam = str(pri.get("tau_family") or "half_normal")
    ts = _num(pri.get("tau_scale"))
    t99 = float(np.quantile(tau, 0.99)) + 1e-12
    thi = t99 * 1.3
    xt = np.linspace(0, thi, 400)
    axes[1].hist(tau, bins=60, range=(0, t99), density=True, histtype="stepfilled", alpha=0.35,
                 color="tab:blue", label="posterior (lower 99 %)")
    if math.isfinite(ts) and ts > 0:
        axes[1].plot(xt, _prior_pdf(xt, fam, ts), color="tab:orange", lw=2,
                     label=f"prior {plot_label(fam)}({format_number(ts)})")
    axes[1].set_xlim(0, thi)
    axes[1].set_xlabel("tau")
    axes[1].set_title("tau: prior vs posterior")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _chains(run: RunData, name: str) -> Any:
    """(chain, draw) array of ``name`` from the main fit's posterior."""
    import numpy as np

    post = run.posterior().posterior
    if name not in post:
        raise MissingInput(f"posterior.nc has no {name}")
    return np.asarray(post[name].transpose("chain", "draw").values, dtype=float)


def plot_trace(run: RunData) -> Any:
    """Per-chain posterior densities and traces of mu and tau."""
    import numpy as np

    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 5), gridspec_kw={"width_ratios": [1, 2]})
    for row, name in enumerate(("mu", "tau")):
        x = _chains(run, name)
        lo, hi = np.quantile(x, [0.001, 0.999])
        bins = np.linspace(lo, hi, 60)
        for c in range(x.shape[0]):
            axes[row, 0].hist(x[c], bins=bins, histtype="step", density=True, lw=1.2, label=f"chain {c}")
            axes[row, 1].plot(x[c], lw=0.4, alpha=0.8)
        axes[row, 0].set_title(name)
        axes[row, 1].set_title(f"{name} trace")
        axes[row, 1].set_xlabel("draw")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Per-chain densities (left) and traces (right)")
    fig.tight_layout()
    return fig


def plot_rank(run: RunData) -> Any:
    """Rank plots of mu and tau: roughly uniform bars in every chain indicate good mixing."""
    import numpy as np

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, name in zip(axes, ("mu", "tau"), strict=True):
        x = _chains(run, name)
        n_chain, n_draw = x.shape
        ranks = x.ravel().argsort(kind="stable").argsort(kind="stable").reshape(x.shape)
        bins = np.linspace(0, x.size, 21)
        for c in range(n_chain):
            counts, _ = np.histogram(ranks[c], bins=bins)
            ax.bar(bins[:-1], counts / n_draw * len(counts) * 0.8, width=bins[1] - bins[0], bottom=c,
                   align="edge", alpha=0.8)
            ax.axhline(c + 0.8, color="k", ls="--", lw=0.6)
        ax.set_yticks(np.arange(n_chain) + 0.4, [f"chain {c}" for c in range(n_chain)])
        ax.set_xlabel("rank of draw (all chains pooled)")
        ax.set_title(name)
    fig.suptitle("Rank plots per chain (roughly uniform bars: chains agree)")
    fig.tight_layout()
    return fig


def _sensitivity_rows(run: RunData) -> list[dict[str, Any]]:
    rows = []
    mu = run.summary_row("pooled_summary.csv", "mu")
    ps = run.table("prior_sensitivity.csv")
    main_in_grid = ps is not None and "fit" in ps.columns and (ps["fit"] == "main").any()
    if mu and not main_in_grid:
        rows.append({"label": "main fit", "mean": _num(mu.get("mean")), "lower": _num(mu.get("lower")),
                     "upper": _num(mu.get("upper")), "material": False, "group": "main"})
    for fname, col, group in (("prior_sensitivity.csv", "spec", "prior"),
                              ("uncertainty_sensitivity.csv", "level", "uncertainty")):
        df = run.table(fname)
        if df is None:
            continue
        for _, r in df.iterrows():
            is_main = r.get("fit") == "main"
            rows.append({"label": f"{group}: {plot_label(r.get(col, r.get('fit', '')))}"
                                  + (" (main fit)" if is_main else ""),
                         "mean": _num(r.get("mean")), "lower": _num(r.get("lower")),
                         "upper": _num(r.get("upper")), "material": bool(truthy(r.get("material"))),
                         "group": "main" if is_main else group})
    return rows


def plot_sensitivity(run: RunData) -> Any:
    """Dot plot: posterior mean and interval of mu per sensitivity fit."""
    rows = _sensitivity_rows(run)
    if not rows or (run.table("prior_sensitivity.csv") is None
                    and run.table("uncertainty_sensitivity.csv") is None):
        raise MissingInput("neither prior_sensitivity.csv nor uncertainty_sensitivity.csv is in the run directory"
                           + (" (the run was blocked)" if run.status_name == "blocked" else ""))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.42 * len(rows)))
    colors = {"main": "tab:red", "prior": "tab:blue", "uncertainty": "tab:green"}
    for i, r in enumerate(rows):
        y = -i
        c = "black" if r["material"] else colors[r["group"]]
        ax.plot([r["lower"], r["upper"]], [y, y], color=c, lw=2)
        ax.plot([r["mean"]], [y], "o", color=c, ms=7, mfc="white" if r["material"] else c)
    ax.set_yticks([-i for i in range(len(rows))], [r["label"] + (" (material)" if r["material"] else "")
                                                   for r in rows])
    main_mean = next((r["mean"] for r in rows if r["group"] == "main"), math.nan)
    if math.isfinite(main_mean):
        ax.axvline(main_mean, color="tab:red", lw=0.8, ls=":")
    ax.axvline(0, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel(f"mu ({plot_label(run.scale)} scale), {interval_label(run.interval_level)} interval")
    ax.set_title("Sensitivity of the pooled mean (hollow black: material change)")
    _pct_axis(ax, run)
    fig.tight_layout()
    return fig


def plot_ppc(run: RunData) -> Any:
    """In-sample posterior predictive interval per study with the observed estimate."""
    ppc = run.require("ppc.csv")
    plt = _plt()
    names = {}
    se_df = run.table("study_effects.csv")
    if se_df is not None and {"study_id", "study_name"} <= set(se_df.columns):
        names = dict(zip(se_df["study_id"], se_df["study_name"], strict=False))
    n = len(ppc)
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.42 * n))
    for i, (_, r) in enumerate(ppc.iterrows()):
        y = -i
        bad = flagged(r.get("flag"))
        c = "tab:red" if bad else "tab:blue"
        ax.plot([_num(r.get("lower")), _num(r.get("upper"))], [y, y], color=c, lw=3, alpha=0.6,
                label=("predictive interval" if i == 0 else None))
        ax.plot([_num(r.get("observed"))], [y], "kx", ms=8, label=("observed" if i == 0 else None))
    ax.set_yticks([-i for i in range(n)], [_study_label(sid, names.get(sid, "")) +
                                           (" (flagged)" if flagged(f) else "")
                                           for sid, f in zip(ppc["study_id"], ppc.get("flag", [None] * n),
                                                             strict=False)])
    ax.set_xlabel(f"estimate ({plot_label(run.scale)} scale)")
    ax.set_title(f"In-sample posterior predictive check ({interval_label(run.interval_level)} intervals)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_influence(run: RunData) -> Any:
    """Leave-one-out: pooled mu with each study left out."""
    inf = run.require("influence.csv")
    plt = _plt()
    n = len(inf)
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.42 * (n + 1)))
    mu = run.summary_row("pooled_summary.csv", "mu")
    for i, (_, r) in enumerate(inf.iterrows()):
        m, lo, hi = _num(r.get("mu_mean")), _num(r.get("mu_lower")), _num(r.get("mu_upper"))
        ax.errorbar([m], [-i], xerr=[[m - lo], [hi - m]], fmt="o", color="tab:blue", capsize=2)
    if mu and math.isfinite(_num(mu.get("mean"))):
        ax.axvline(_num(mu.get("mean")), color="tab:red", lw=0.8, ls=":", label="all studies")
        ax.legend(fontsize=8)
    ax.axvline(0, color="0.6", lw=0.8, ls="--")
    ax.set_yticks([-i for i in range(n)], [f"without {plot_label(s)}" for s in inf["left_out"]])
    ax.set_xlabel(f"mu ({plot_label(run.scale)} scale)")
    ax.set_title("Leave-one-out influence on the pooled mean")
    fig.tight_layout()
    return fig


PLOTS: dict[str, Callable[[RunData], Any]] = {
    "forest": plot_forest,
    "prior_posterior": plot_prior_posterior,
    "trace": plot_trace,
    "rank": plot_rank,
    "sensitivity": plot_sensitivity,
    "ppc": plot_ppc,
    "influence": plot_influence,
}


def figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


# -- notebook-side display helpers ------------------------------------------------------------------

_META_KEY = "marketbayesmeta"


def _note(text: str, failure: str | None = None) -> None:
    from IPython.display import Markdown, display

    meta = {_META_KEY: {"failure": failure}} if failure else None
    display(Markdown(f"*{md_escape(text)}*"), metadata=meta)


def show_plot(name: str, run: RunData) -> None:
    """Draw plot ``name`` and display it as PNG, or a note saying why it is not shown."""
    from IPython.display import Image, display

    try:
        fig = PLOTS[name](run)
        png = figure_png(fig)
    except MissingInput as exc:
        _note(f"Not shown: {exc}.")
        return
    except Exception as exc:  # a plotting problem becomes a note (and a warning), never an error output
        _plt().close("all")
        _note(f"The {name} plot could not be drawn ({type(exc).__name__}: {exc}).",
              failure=f"plot {name}: {type(exc).__name__}: {exc}")
        return
    display(Image(data=png, format="png"), metadata={_META_KEY: {"plot": name}})


def show_table(name: str, run: RunData) -> None:
    """Display table ``name`` as escaped HTML, or a note saying why it is not shown."""
    from IPython.display import HTML, display

    try:
        df = TABLES[name](run)
        html_text = frame_html(df)
    except MissingInput as exc:
        _note(f"Not shown: {exc}.")
        return
    except Exception as exc:
        _note(f"The {name} table could not be built ({type(exc).__name__}: {exc}).",
              failure=f"table {name}: {type(exc).__name__}: {exc}")
        return
    display(HTML(html_text))


def show_markdown(name: str, run: RunData) -> None:
    """Display one of the reporting-language blocks (already escaped Markdown)."""
    from IPython.display import Markdown, display

    builders: dict[str, Callable[[RunData], str]] = {
        "status": status_markdown, "headline": headline_markdown, "caveats": caveats_markdown,
        "scenario": scenario_markdown, "prior": prior_markdown, "diagnostics": diagnostics_markdown,
    }
    try:
        text = builders[name](run)
    except Exception as exc:
        _note(f"The {name} text could not be built ({type(exc).__name__}: {exc}).",
              failure=f"text {name}: {type(exc).__name__}: {exc}")
        return
    display(Markdown(text))


# -- analysis_report.md ------------------------------------------------------------------------------

def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, MdSafe):
        return value
    if isinstance(value, float):
        return format_number(value)
    return md_escape(value)


def _jinja_env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=False, undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, finalize=_finalize,
    )
    env.filters.update(md=md_escape, num=format_number, pct=format_pct, md_table=md_table)
    return env


def markdown_context(run: RunData) -> dict[str, Any]:
    caveats, nxt = review_points(run)
    rd = run.readiness()
    ep = run.table("effect_preparation.csv")
    counts = {}
    if ep is not None and "decision" in ep.columns:
        counts = {d: int((ep["decision"] == d).sum()) for d in ("included", "scenario", "excluded")}
    ps, us, inf = (run.table(n) for n in ("prior_sensitivity.csv", "uncertainty_sensitivity.csv", "influence.csv"))
    sens_cols = ["mean", "lower", "upper", "interval_width", "prob_positive", "diagnostics_pass",
                 "delta_mean_sd", "delta_prob_positive", "delta_interval_width_rel", "material", "material_reasons"]
    verdicts = fit_verdicts(run)
    return {
        "project_name": run.project_name,
        "run_dir_name": run.run_dir.resolve().name,
        "status": status_markdown(run),
        "checklist": md_table(reportable_checklist(run)),
        "readiness": rd,
        "counts": counts,
        "rows_table": md_table(rows_table(run), ["row", "study_id", "study_name", "decision", "reason",
                                                 "transform", "model_estimate", "model_se", "uncertainty_source"])
        if ep is not None else None,
        "duplicates": run.duplicates(),
        "headline": headline_markdown(run),
        "has_pooled": run.summary_row("pooled_summary.csv", "mu") is not None,
        "prior_table": md_table(ps, ["spec", "mu_sd", "tau_scale", "tau_family", *sens_cols]) if ps is not None else None,
        "uncertainty_table": md_table(us, ["level", "scenario_se", *sens_cols]) if us is not None else None,
        "uncertainty_status": ((run.plan or {}).get("sensitivity") or {}).get("uncertainty_status"),
        "influence_table": md_table(inf) if inf is not None else None,
        "diagnostics": diagnostics_markdown(run),
        "fit_verdicts": md_table(pd.DataFrame([{"fit": f, "all checks pass": format_number(v) if v is not None else "unknown"}
                                               for f, v in verdicts.items()])) if verdicts else None,
        "caveats": caveats,
        "next_steps": nxt,
        "review_note": REVIEW_NOTE,
        "files": files_table(run),
    }


def render_markdown(run_dir: str | Path) -> str:
    run = load_run(run_dir)
    return _jinja_env().get_template(MARKDOWN_TEMPLATE).render(**markdown_context(run))


def _write_atomic(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def _fallback_markdown(run_dir: Path, error: str) -> str:
    run = load_run(run_dir)
    lines = [f"# Analysis report: {md_escape(run.project_name)}", "",
             f"The full report could not be written ({md_escape(error)}).", "",
             f"- Status: {md_escape(run.status_name)}",
             f"- Reportable: {md_escape(run.reportable)}"]
    lines += [f"- Reason: {md_escape(r['code'])}: {md_escape(r['message'])}" for r in run.reasons]
    lines += ["", f"This report is {REVIEW_NOTE}.", ""]
    return "\n".join(lines)


def write_markdown_report(run_dir: str | Path) -> list[str]:
    """Write ``analysis_report.md`` into ``run_dir``; returns warnings, never raises for a partial run."""
    run_dir = Path(run_dir)
    try:
        text = render_markdown(run_dir)
    except Exception as exc:  # keep the run's record even if the template has a bug
        error = f"{type(exc).__name__}: {exc}"
        try:
            _write_atomic(run_dir / "analysis_report.md", _fallback_markdown(run_dir, error))
        except Exception as exc2:
            return [f"analysis_report.md could not be written: {error}; {type(exc2).__name__}: {exc2}"]
        return [f"analysis_report.md is a short fallback: {error}"]
    try:
        _write_atomic(run_dir / "analysis_report.md", text)
    except OSError as exc:
        return [f"analysis_report.md could not be written: {exc}"]
    return []


# -- report.ipynb ---------------------------------------------------------------------------------------

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


def execute_notebook(nb: Any, run_dir: Path, *, timeout: int = 300, quiet: bool = True) -> list[str]:
    """Execute ``nb`` in place with its working directory at ``run_dir``, on this interpreter.

    A throwaway kernelspec pointing at ``sys.executable`` is written to a temporary directory, so no
    installed kernel is needed (or used). Returns warnings.
    """
    import logging

    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mbm-report-kernel-") as tmpname:
        tmp = Path(tmpname)
        kdir = tmp / "kernels" / KERNEL_NAME
        kdir.mkdir(parents=True)
        (kdir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "marketbayesmeta report (this interpreter)", "language": "python",
        }), encoding="utf-8")
        ksm = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")], ensure_native_kernel=False)
        km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
        km.connection_file = str(tmp / "connection.json")
        if os.name == "posix":  # unix sockets in the private temp dir: no TCP port is opened
            km.transport = "ipc"
            km.ip = str(tmp / "ipc")
        client = NotebookClient(
            nb, km=km, kernel_name=KERNEL_NAME, timeout=timeout, startup_timeout=120,
            allow_errors=True, record_timing=False,
            resources={"metadata": {"path": str(run_dir.resolve())}},
        )
        if quiet:
            client.log.setLevel(logging.ERROR)
        kwargs: dict[str, Any] = {"env": _kernel_env(tmp)}
        if quiet:
            import subprocess

            kwargs.update(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client.execute(**kwargs)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                out.append(f"report notebook execution failed: cell {i} raised {o.get('ename')}: {o.get('evalue')}")
            meta = (o.get("metadata") or {}).get(_META_KEY) or {}
            if meta.get("failure"):
                out.append(f"report notebook: {meta['failure']}")
    return out


# -- report.html ------------------------------------------------------------------------------------------

_EXTERNAL = re.compile(r"^\s*(https?:|//)", re.I)
_TAG = re.compile(r"<(?P<name>[a-zA-Z][a-zA-Z0-9-]*)\b(?P<attrs>[^<>]*)>")
_URL_ATTR = re.compile(r"""\s(?P<attr>src|href|data|poster|action|srcset)\s*=\s*(?P<q>["']?)(?P<val>[^"'\s>]*)(?P=q)""", re.I)
_SCRIPT_EXT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?\s*(https?:|//)[^>]*>\s*</script\s*>", re.I)


def find_external_references(html_text: str) -> list[str]:
    """Attributes (src, href, ...) that point to the network, found with the stdlib HTML parser."""
    from html.parser import HTMLParser

    found: list[str] = []

    class _P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for k, v in attrs:
                if k in ("src", "href", "data", "poster", "action", "srcset") and v and _EXTERNAL.match(v):
                    found.append(f"<{tag} {k}={v!r}>")

        handle_startendtag = handle_starttag

    p = _P(convert_charrefs=True)
    p.feed(html_text)
    p.close()
    # network loads written inside <style>/<script> blocks (CSS url()/@import, JS import)
    for block in re.findall(r"<(style|script)\b[^>]*>(.*?)</\1\s*>", html_text, re.I | re.S):
        for m in re.finditer(r"""(?:import\s*(?:[^'";]*from\s*)?|url\(\s*)["']?(https?:|//)[^"')\s]*""",
                             block[1], re.I):
            found.append(m.group(0)[:120])
    return found


def strip_external_references(html_text: str) -> str:
    """Remove scripts loaded from the network and neutralise any other network URL attribute."""
    html_text = _SCRIPT_EXT.sub("", html_text)

    def fix_tag(m: re.Match[str]) -> str:
        def fix_attr(a: re.Match[str]) -> str:
            if _EXTERNAL.match(html.unescape(a.group("val"))):
                return f' data-removed-{a.group("attr").lower()}=""'
            return a.group(0)

        return f"<{m.group('name')}{_URL_ATTR.sub(fix_attr, m.group('attrs'))}>"

    return _TAG.sub(fix_tag, html_text)


def export_html(nb: Any, title: str = "marketbayesmeta run report") -> str:
    """Self-contained HTML of an executed notebook: code hidden, images inline, nothing fetched."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_template_paths=[str(TEMPLATES)],
                            template_file=HTML_TEMPLATE)
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.sanitize_html = False  # bleach mangles tables; every cell is escaped by us instead
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return strip_external_references(body)


def _fallback_html(run_dir: Path, error: str) -> str:
    md = run_dir / "analysis_report.md"
    text = md.read_text(encoding="utf-8") if md.is_file() else ""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>marketbayesmeta run report"
            f"</title></head><body><h1>marketbayesmeta run report</h1><p>The HTML report could not be built "
            f"({html.escape(error)}). The Markdown report follows.</p><pre>{html.escape(text)}</pre></body></html>\n")


def write_reports(run_dir: str | Path, *, quiet: bool = True, timeout: int = 300) -> list[str]:
    """Write analysis_report.md, report.ipynb (executed) and report.html into ``run_dir``.

    Reads only files already in ``run_dir``. Returns a list of warnings (for run_status.json);
    does not raise for a missing or partial run.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return [f"report not written: {run_dir} is not a directory"]

    def say(msg: str) -> None:
        if not quiet:
            print(f"marketbayesmeta report: {msg}", file=sys.stderr)

    out = write_markdown_report(run_dir)
    say("analysis_report.md written")
    nb = None
    try:
        nb = build_notebook()
    except Exception as exc:
        out.append(f"report notebook could not be built: {type(exc).__name__}: {exc}")
    if nb is not None:
        try:
            out += execute_notebook(nb, run_dir, timeout=timeout, quiet=quiet)
            say("report.ipynb executed")
        except Exception as exc:
            out.append(f"report notebook execution failed: {type(exc).__name__}: {exc}")
        try:
            import nbformat

            _write_atomic(run_dir / "report.ipynb", nbformat.writes(nb) + "\n")
        except Exception as exc:
            out.append(f"report.ipynb could not be written: {type(exc).__name__}: {exc}")
    html_text = None
    if nb is not None:
        try:
            html_text = export_html(nb, title=f"marketbayesmeta report: {load_run(run_dir).project_name}")
        except Exception as exc:
            out.append(f"report.html export failed: {type(exc).__name__}: {exc}")
    try:
        if html_text is None:
            html_text = _fallback_html(run_dir, out[-1] if out else "no notebook")
        left = find_external_references(html_text)
        if left:
            out.append(f"report.html still references the network: {', '.join(left[:3])}")
        _write_atomic(run_dir / "report.html", html_text)
        say("report.html written")
    except Exception as exc:
        out.append(f"report.html could not be written: {type(exc).__name__}: {exc}")
    return out
