"""diff: what changed between two plans or run directories (SPEC §2 ``diff A B [--json]``).

Each side is a plan.json file or a directory holding plan.json. A directory that also holds
run_status.json is a *run directory*: when both sides are run directories their headline results
(from run_status.json's ``status``, ``reportable``, ``readiness``, ``reasons`` and ``headline``;
pooled_summary.csv and future_true_effect_summary.csv fill in when ``headline`` is missing) are
compared too. A directory without run_status.json (compiled, not executed) counts as a plan.

Everything in the plan's hashed content is compared; ``locations`` and ``plan_hash`` are not
(both hashes are shown in the header). Values are compared exactly (the artefacts are
deterministic); numeric changes carry ``delta = b - a``.

JSON output (``DiffResult.to_json()``, schema in ``specs/diff.schema.json``)::

    {"format": "marketbayesmeta.diff/1",
     "a": {"path", "kind": "plan"|"run", "plan_hash", "project_name", "package_version",
           "status", "reportable"},
     "b": {...},
     "identical": bool,             # no change in any group
     "results_compared": bool,      # both sides are run directories
     "groups": [{"group": str,      # only groups with changes, in the order of GROUPS
                 "changes": [{"item": str, "field": str, "kind": "changed"|"added"|"removed",
                              "a": any, "b": any, "delta": number|null}]}]}

``kind`` is ``added``/``removed`` when the whole item (a row, a fit, a prior, a source, a duplicate
group) exists on one side only; then ``a`` (or ``b``) is null and the other side summarises the
item; ``field`` is then ``row``, ``fit``, ``duplicate``, or ``item``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..plan import Plan, load_plan

__all__ = ["DIFF_FORMAT", "GROUPS", "Change", "DiffResult", "Side", "diff_plans", "load_side"]

DIFF_FORMAT = "marketbayesmeta.diff/1"

GROUPS = (
    "project",
    "package",
    "sources",
    "pools",
    "readiness",
    "duplicates",
    "rows",
    "row decisions",
    "row transforms",
    "row source values",
    "priors",
    "uncertainty scenarios",
    "sampler",
    "diagnostic thresholds",
    "sensitivity settings",
    "sensitivity grid",
    "moderators",
    "other",
    "results",
)

_PROJECT_FIELDS = ("project_name", "project_notes", "layout", "format")
_POOL_FIELDS = ("metric", "scale", "evidence_types", "filters", "triangulate_only_justification", "label")
_HANDLED = frozenset(_PROJECT_FIELDS) | {"package_version", "plan_hash", "locations", "sources", "pools"}
_POOL_HANDLED = frozenset(_POOL_FIELDS) | {
    "name", "pool_hash", "readiness", "duplicates", "rows", "priors", "scenario_se", "sampler", "thresholds",
    "sensitivity", "fits", "reporting", "moderators"}
_DECISION_FIELDS = frozenset({"decision", "reason", "reason_message"})
_TRANSFORM_FIELDS = frozenset({"model_estimate", "model_se", "uncertainty_source"})
_SOURCE_VALUE_FIELDS = frozenset({"unit", "source_estimate", "source_se", "ci_lower", "ci_upper",
                                  "ci_level", "uncertainty_scenario", "analysis_ready"})
_RUN_FIELDS = ("status", "reportable", "readiness", "reasons")
_HEADLINE_ORDER = ("mu_mean", "mu_sd", "mu_median", "mu_lower", "mu_upper", "prob_positive",
                   "tau_mean", "tau_median", "tau_lower", "tau_upper", "future_mean",
                   "future_lower", "future_upper", "interval_level", "scale", "mu_mean_pct",
                   "mu_lower_pct", "mu_upper_pct", "future_lower_pct", "future_upper_pct")
_MISSING = object()


# -- sides -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Side:
    """One side of a diff: a plan, and for a run directory its status and headline results."""

    path: Path
    kind: Literal["plan", "run"]
    plan: Plan
    run_status: dict[str, Any] | None = None
    results: dict[str, Any] | None = None  # "run" and "headline" values, flattened (see _results)

    def header(self) -> dict[str, Any]:
        status = self.run_status or {}
        return {"path": str(self.path), "kind": self.kind, "plan_hash": self.plan.plan_hash,
                "project_name": self.plan.project_name,
                "package_version": self.plan.package_version,
                "status": status.get("status") if self.kind == "run" else None,
                "reportable": status.get("reportable") if self.kind == "run" else None}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not readable JSON ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None


def _number(cell: str | None) -> Any:
    if cell is None or cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    """Rows of a summary CSV keyed by its ``parameter`` column ({} when absent or unreadable)."""
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    return {r.get("parameter", ""): r for r in csv.DictReader(io.StringIO(text))}


def _headline_from_csv(run_dir: Path) -> dict[str, Any] | None:
    pooled = _read_csv(run_dir / "pooled_summary.csv")
    future = _read_csv(run_dir / "future_true_effect_summary.csv")
    if not pooled and not future:
        return None
    out: dict[str, Any] = {}
    mu, tau, fut = pooled.get("mu", {}), pooled.get("tau", {}), future.get("future_true_effect", {})
    for col in ("mean", "sd", "median", "lower", "upper", "mean_pct", "lower_pct", "upper_pct"):
        if col in mu:
            out[f"mu_{col}"] = _number(mu[col])
    if "prob_positive" in mu:
        out["prob_positive"] = _number(mu["prob_positive"])
    if "interval_level" in mu:
        out["interval_level"] = _number(mu["interval_level"])
    for col in ("mean", "median", "lower", "upper"):
        if col in tau:
            out[f"tau_{col}"] = _number(tau[col])
    for col in ("mean", "lower", "upper", "lower_pct", "upper_pct"):
        if col in fut:
            out[f"future_{col}"] = _number(fut[col])
    return out


def _results(run_dir: Path, status: dict[str, Any]) -> dict[str, Any]:
    """Flattened comparable results: ``run.<field>`` and ``headline.<field>``."""
    out: dict[str, Any] = {}
    for key in _RUN_FIELDS:
        value = status.get(key)
        if key == "reasons" and isinstance(value, list):
            value = [r.get("code") if isinstance(r, dict) else r for r in value]
        out[f"run.{key}"] = value
    headline = status.get("headline")
    if not isinstance(headline, dict):
        headline = _headline_from_csv(run_dir) or {}
    keys = [k for k in _HEADLINE_ORDER if k in headline]
    keys += sorted(k for k in headline if k not in _HEADLINE_ORDER)
    for key in keys:
        out[f"headline.{key}"] = headline[key]
    for term, row in _moderator_coefficients(run_dir / "moderators.csv").items():
        for fld in ("mean", "lower", "upper", "prob_positive"):
            out[f"moderators.{term}.{fld}"] = _number(row.get(fld))
    return out


def _moderator_coefficients(path: Path) -> dict[str, dict[str, str]]:
    """The coefficient rows of a run's moderators.csv by term ({} when absent or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    return {r.get("term", ""): r for r in csv.DictReader(io.StringIO(text)) if r.get("row_type") == "coefficient"}


def load_side(path: str | Path) -> Side:
    """Load a diff side: a plan.json file, or a (run) directory holding plan.json.

    The plan is integrity-checked (:func:`~marketbayesmeta.plan.load_plan`): an edited plan is a
    PlanError (exit 2).
    """
    path = Path(path)
    if path.is_dir():
        plan_path = path / "plan.json"
        if not plan_path.is_file():
            raise InputError(f"{path}: neither a plan file nor a run directory (no plan.json in it)")
        plan = load_plan(plan_path)
        status_path = path / "run_status.json"
        if not status_path.is_file():
            return Side(path=path, kind="plan", plan=plan)
        status = _read_json(status_path)
        if not isinstance(status, dict):
            raise InputError(f"{status_path}: not a run status (expected a JSON object)")
        return Side(path=path, kind="run", plan=plan, run_status=status,
                    results=_results(path, status))
    if not path.exists():
        raise InputError(f"{path}: no such plan file or run directory")
    return Side(path=path, kind="plan", plan=load_plan(path))


# -- changes ---------------------------------------------------------------------------------------

def _same(a: Any, b: Any) -> bool:
    """Exact equality that tells booleans from numbers (NaN equals NaN)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    return x


@dataclass(frozen=True)
class Change:
    group: str
    item: str
    field: str
    a: Any
    b: Any
    kind: Literal["changed", "added", "removed"] = "changed"

    @property
    def delta(self) -> float | int | None:
        if self.kind == "changed" and _is_number(self.a) and _is_number(self.b):
            d = self.b - self.a
            return d if math.isfinite(d) else None
        return None

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "field": self.field, "kind": self.kind,
                "a": _json_safe(self.a), "b": _json_safe(self.b), "delta": self.delta}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and not value and not prefix:
        return {}
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _ordered_union(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return list(a) + [k for k in b if k not in a]


class _Collector:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def fields(self, group: str | None, item: str, a: dict[str, Any], b: dict[str, Any],
               classify: Any = None) -> None:
        """Field-by-field comparison of two flat dicts (a field missing on one side is None)."""
        for key in _ordered_union(a, b):
            va, vb = a.get(key), b.get(key)
            if not _same(va, vb):
                grp = classify(key) if classify else group
                self.changes.append(Change(grp, item, key, va, vb))

    def keyed(self, group: str, a: dict[str, Any], b: dict[str, Any], presence: str = "item",
              summary: Any = None, classify: Any = None) -> None:
        """Items matched by key; an item on one side only is ``added``/``removed``."""
        for key in _ordered_union(a, b):
            if key in a and key in b:
                self.fields(group, key, _flatten(a[key]), _flatten(b[key]), classify)
            elif key in b:
                val = summary(b[key]) if summary else _flatten(b[key])
                self.changes.append(Change(group, key, presence, None, val, "added"))
            else:
                val = summary(a[key]) if summary else _flatten(a[key])
                self.changes.append(Change(group, key, presence, val, None, "removed"))


def _row_group(key: str) -> str:
    if key in _DECISION_FIELDS:
        return "row decisions"
    if key in _TRANSFORM_FIELDS or key.startswith("transform."):
        return "row transforms"
    if key in _SOURCE_VALUE_FIELDS:
        return "row source values"
    return "rows"


def _row_summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("row", "decision", "reason", "unit", "source_estimate", "model_estimate", "model_se")
    out = {k: row.get(k) for k in keys}
    out["transform"] = (row.get("transform") or {}).get("name")
    return out


def _duplicate_key(d: dict[str, Any]) -> str:
    return f"{d.get('kind')}: {', '.join(str(s) for s in d.get('study_ids', []))}"


# -- the diff --------------------------------------------------------------------------------------

@dataclass
class DiffResult:
    a: Side
    b: Side
    changes: list[Change] = field(default_factory=list)

    @property
    def results_compared(self) -> bool:
        return self.a.kind == "run" and self.b.kind == "run"

    @property
    def has_differences(self) -> bool:
        return bool(self.changes)

    @property
    def exit_code(self) -> int:
        return 1 if self.changes else 0

    def grouped(self) -> list[tuple[str, list[Change]]]:
        return [(g, [c for c in self.changes if c.group == g]) for g in GROUPS
                if any(c.group == g for c in self.changes)]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": DIFF_FORMAT,
            "a": self.a.header(),
            "b": self.b.header(),
            "identical": not self.changes,
            "results_compared": self.results_compared,
            "groups": [{"group": g, "changes": [c.to_json() for c in cs]}
                       for g, cs in self.grouped()],
        }

    def render(self) -> str:
        lines = ["diff"]
        for label, side in (("A", self.a), ("B", self.b)):
            if side.kind == "run":
                st = side.run_status or {}
                what = (f"run directory, status {st.get('status', '?')}, "
                        f"reportable {_fmt(st.get('reportable'))}")
            else:
                what = "plan"
            lines.append(f"  {label}: {side.path} ({what})")
            lines.append(f"     plan_hash {side.plan.plan_hash}")
        if self.a.plan.plan_hash == self.b.plan.plan_hash:
            lines.append("  (same plan_hash)")
        if self.results_compared:
            lines.append("Compared: plans and headline results.")
        else:
            plans = [lbl for lbl, s in (("A", self.a), ("B", self.b)) if s.kind == "plan"]
            lines.append(f"Compared: plans only ({' and '.join(plans)} "
                         f"{'is a plan' if len(plans) == 1 else 'are plans'}, not run directories).")
        if not self.changes:
            lines.append("No differences.")
            return "\n".join(lines)
        grouped = self.grouped()
        lines.append(f"{len(self.changes)} difference(s) in {len(grouped)} group(s).")
        for group, changes in grouped:
            lines.append("")
            lines.append(f"[{group}]")
            table = [("item", "field", "A", "B", "delta")]
            for c in changes:
                a = "(absent)" if c.kind == "added" else _fmt_value(c, c.a)
                b = "(absent)" if c.kind == "removed" else _fmt_value(c, c.b)
                d = c.delta
                table.append((_cut(c.item), c.field, _cut(a), _cut(b),
                              "" if d is None else f"{d:+.6g}"))
            widths = [max(len(r[i]) for r in table) for i in range(5)]
            for r in table:
                lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        return "\n".join(lines)


def _fmt_value(change: Change, x: Any) -> str:
    if change.field == "row" and change.kind != "changed" and isinstance(x, dict):
        est, se = x.get("model_estimate"), x.get("model_se")
        text = f"row {x.get('row')}: {x.get('decision')} ({x.get('reason')}), {x.get('transform')}"
        if _is_number(est):
            text += f", model {est:.6g}" + (f" ± {se:.6g}" if _is_number(se) else "")
        return text
    return _fmt(x)


def _fmt(x: Any) -> str:
    if x is None:
        return "(none)"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return repr(x)
    if isinstance(x, str):
        return x if x else '""'
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    if isinstance(x, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in x.items())
    return str(x)


def _cut(text: str, width: int = 72) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _moderator_summary(m: dict[str, Any] | None) -> dict[str, Any]:
    """A pool's meta-regression as the reviewer compares it: the moderators, the terms of the design
    (reference levels, centring, rows per level) and each coefficient's prior; the design matrix's
    rows themselves change with the pooled rows, which group "rows" shows."""
    if not m:
        return {"moderators": None}
    design = m.get("design") or {}
    out: dict[str, Any] = {
        "moderators": design.get("moderators"),
        "terms": [t.get("name") for t in design.get("terms") or []],
        "exploratory": design.get("exploratory"),
        "min_rows_per_level": design.get("min_rows_per_level"),
        "beta_sd_setting": (m.get("beta_sd_setting") or {}).get("value"),
    }
    for key, name in (("reference_levels", "reference_level"), ("centring", "centring"),
                      ("level_counts", "rows_per_level")):
        if design.get(key):
            out.update(_flatten(design[key], name))
    for term, mean, sd in zip(out["terms"], m.get("beta_mean") or [], m.get("beta_sd") or [], strict=False):
        out[f"prior.{term}"] = f"Normal({mean:.6g}, {sd:.6g})"
    return out


def _pool_summary(q: dict[str, Any]) -> dict[str, Any]:
    return {"metric": q.get("metric"), "scale": q.get("scale"), "filters": q.get("filters"),
            "rows": len(q.get("rows") or []), "readiness": (q.get("readiness") or {}).get("readiness")}


def _pool_pairs(pa: dict[str, Any], pb: dict[str, Any],
                col: _Collector) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Pools compared with each other: the only pools of two single-pool plans; otherwise pools of
    the same name (a pool on one side only is ``added``/``removed`` in group "pools")."""
    pools_a = {q["name"]: q for q in pa.get("pools") or []}
    pools_b = {q["name"]: q for q in pb.get("pools") or []}
    if pa.get("layout") == pb.get("layout") == "single" and len(pools_a) == len(pools_b) == 1:
        return [("", next(iter(pools_a.values())), next(iter(pools_b.values())))]
    for name, q in pools_a.items():
        if name not in pools_b:
            col.changes.append(Change("pools", name, "pool", _pool_summary(q), None, "removed"))
    for name, q in pools_b.items():
        if name not in pools_a:
            col.changes.append(Change("pools", name, "pool", None, _pool_summary(q), "added"))
    return [(f"{name}: ", pools_a[name], pools_b[name]) for name in pools_a if name in pools_b]


def _diff_pool(col: _Collector, prefix: str, pa: dict[str, Any], pb: dict[str, Any]) -> None:
    """Every group of one pool; items are prefixed with ``prefix`` (the pool's name in a portfolio)."""
    def named(d: dict[str, Any]) -> dict[str, Any]:
        return {prefix + k: v for k, v in d.items()}

    item = prefix + "pool" if prefix else "plan"
    col.fields("project", item, {k: pa.get(k) for k in _POOL_FIELDS if k in pa},
               {k: pb.get(k) for k in _POOL_FIELDS if k in pb})
    col.fields("readiness", prefix + "verdict", _flatten(pa.get("readiness") or {}),
               _flatten(pb.get("readiness") or {}))
    col.keyed("duplicates", named({_duplicate_key(d): d for d in pa.get("duplicates") or []}),
              named({_duplicate_key(d): d for d in pb.get("duplicates") or []}), presence="duplicate",
              summary=lambda d: d.get("message"))
    rows_a = named({r["study_id"]: r for r in pa.get("rows") or []})
    rows_b = named({r["study_id"]: r for r in pb.get("rows") or []})
    col.keyed("rows", rows_a, rows_b, presence="row", summary=_row_summary, classify=_row_group)
    col.keyed("priors", named(pa.get("priors") or {}), named(pb.get("priors") or {}), presence="prior")
    col.keyed("uncertainty scenarios", named(pa.get("scenario_se") or {}), named(pb.get("scenario_se") or {}),
              presence="scenario")
    for group, key in (("sampler", "sampler"), ("diagnostic thresholds", "thresholds"),
                       ("sensitivity settings", "sensitivity"), ("project", "reporting")):
        col.fields(group, prefix + key, _flatten(pa.get(key) or {}), _flatten(pb.get(key) or {}))
    fits_a = named({f["name"]: {k: v for k, v in f.items() if k != "name"} for f in pa.get("fits") or []})
    fits_b = named({f["name"]: {k: v for k, v in f.items() if k != "name"} for f in pb.get("fits") or []})
    col.keyed("sensitivity grid", fits_a, fits_b, presence="fit")
    col.fields("moderators", prefix + "meta-regression", _moderator_summary(pa.get("moderators")),
               _moderator_summary(pb.get("moderators")))
    other_a = {k: v for k, v in pa.items() if k not in _POOL_HANDLED}
    other_b = {k: v for k, v in pb.items() if k not in _POOL_HANDLED}
    col.fields("other", item, _flatten(other_a), _flatten(other_b))


def diff_plans(a: Side | str | Path, b: Side | str | Path) -> DiffResult:
    """Compare two sides (Side objects, or paths given to :func:`load_side`)."""
    sa = a if isinstance(a, Side) else load_side(a)
    sb = b if isinstance(b, Side) else load_side(b)
    pa = sa.plan.model_dump(mode="json")
    pb = sb.plan.model_dump(mode="json")
    col = _Collector()

    col.fields("project", "plan", {k: pa.get(k) for k in _PROJECT_FIELDS if k in pa},
               {k: pb.get(k) for k in _PROJECT_FIELDS if k in pb})
    col.fields("package", "plan", {"package_version": pa.get("package_version")},
               {"package_version": pb.get("package_version")})
    col.keyed("sources", pa.get("sources") or {}, pb.get("sources") or {}, presence="source")
    other_a = {k: v for k, v in pa.items() if k not in _HANDLED}
    other_b = {k: v for k, v in pb.items() if k not in _HANDLED}
    col.fields("other", "plan", _flatten(other_a), _flatten(other_b))
    for prefix, qa, qb in _pool_pairs(pa, pb, col):
        _diff_pool(col, prefix, qa, qb)

    if sa.kind == "run" and sb.kind == "run":
        ra, rb = sa.results or {}, sb.results or {}
        for key in _ordered_union(ra, rb):
            va, vb = ra.get(key), rb.get(key)
            if not _same(va, vb):
                item, _, fld = key.partition(".")
                col.changes.append(Change("results", item, fld, va, vb))

    order = {g: i for i, g in enumerate(GROUPS)}
    changes = sorted(col.changes, key=lambda c: order[c.group])  # stable within a group
    return DiffResult(a=sa, b=sb, changes=changes)
