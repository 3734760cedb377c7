"""Facts derived from the run's files, shared by prose, tables and plots (each computed once here).

Nothing here decides anything: run_status.json is authoritative; these restate what the other
files show (per-fit diagnostic verdicts, the reportability checklist, material sensitivity rows).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from .fmt import to_float, truthy
from .load import RunData

STATUS_MEANINGS = {
    "completed": "the plan ran to the end without warnings",
    "completed_with_warnings": "the plan ran to the end; the warnings below limit how the result may be used",
    "blocked": "the run stopped before pooling (readiness not enough, blocking duplicates or nothing "
               "poolable); there is no pooled result",
    "failed": "sampling or pooling failed, or a diagnostic failure blocked the result; do not use any "
              "number from this run",
}

# Reason codes of run_status.json in a few words (the full message is shown beside them).
REASON_WORDS = {
    "readiness_directional": "too few studies for a firm size (directional only)",
    "readiness_not_recommended": "too few comparable studies to pool",
    "nothing_poolable": "no row can be pooled",
    "scenario_uncertainty": "a pooled study has no uncertainty of its own",
    "possible_duplicates": "possible duplicate studies",
    "blocking_duplicates": "the same study entered twice",
    "prior_diagnostics_warning": "the priors look implausible for these data",
    "prior_sensitivity_not_run": "prior dependence was not checked",
    "material_prior_dependence": "the result depends on the prior",
    "material_uncertainty_dependence": "the result depends on the assumed uncertainty",
    "influential_study": "one study changes the conclusion",
    "ppc_flags": "a study is out of line with the model",
    "plausibility_review": "plausibility checks to review",
    "plausibility_blocking": "a plausibility check blocks the pool",
    "plausibility_acknowledged": "acknowledged plausibility checks",
    "diagnostics_failed": "the sampler's checks failed",
    "diagnostics_warning": "the sampler's checks failed (downgraded to a warning)",
    "diagnostics_downgraded": "diagnostic failures only warn (on_failure: warn)",
    "threshold_loosened": "a diagnostic threshold was loosened",
    "priors_unjustified": "priors set without a written justification",
    "sampling_failed": "sampling failed",
    "artefact_failed": "writing the results failed",
    "report_warning": "the report had a problem",
    "stale_plan": "run from a stale plan",
    "pool_failed": "a pool failed",
}
_CHECK = re.compile(r"^\[([a-z_]+)\]")


def reason_words(code: str, message: str) -> str:
    """A reason in a few words; a plausibility check names itself (``[dominant_weight] ...``)."""
    words = REASON_WORDS.get(code) or (code.replace("_", " ") if code else message)
    check = _CHECK.match(message or "")
    if code.startswith("plausibility") and check:
        words += f" ({check.group(1).replace('_', ' ')})"
    return words


def reasons_in_words(reasons: list[dict[str, str]]) -> list[str]:
    """The reasons in words, each once, in order."""
    return list(dict.fromkeys(reason_words(r["code"], r["message"]) for r in reasons))


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
    out = dg[[truthy(v) is False for v in dg["pass"]]]
    return out[out["check"] != "all"]


def exact_rows(run: RunData) -> pd.DataFrame | None:
    dg = run.table("diagnostics.csv")
    if dg is None or "check" not in dg.columns:
        return None
    return dg[dg["check"].astype(str).str.startswith("exact_z")]


def max_exact_z(run: RunData, fit: str = "main") -> tuple[float, float]:
    """(largest |MCMC − exact| in MCSE, its bound) for ``fit``."""
    ex = exact_rows(run)
    if ex is None or ex.empty:
        return float("nan"), float("nan")
    if "fit" in ex.columns:
        ex = ex[ex["fit"] == fit]
    z = pd.to_numeric(ex["value"], errors="coerce").abs().max()
    thr = pd.to_numeric(ex.get("threshold"), errors="coerce").max() if "threshold" in ex.columns else float("nan")
    return float(z), float(thr)


def material(run: RunData, name: str, label_col: str) -> list[tuple[str, str]]:
    """(label, why) of the material rows of a sensitivity CSV."""
    df = run.table(name)
    if df is None or "material" not in df.columns:
        return []
    return [(str(r.get(label_col, r.get("fit", ""))), str(r.get("material_reasons") or "").strip())
            for _, r in df.iterrows() if truthy(r["material"])]


def decision_counts(run: RunData) -> dict[str, int]:
    ep = run.table("effect_preparation.csv")
    if ep is None or "decision" not in ep.columns:
        return {}
    return {d: int((ep["decision"] == d).sum()) for d in ("included", "scenario", "excluded")}


def excluded_reasons(run: RunData) -> list[tuple[str, int, str]]:
    """(reason code, rows, an example message) of the excluded rows, most frequent first."""
    ep = run.table("effect_preparation.csv")
    if ep is None or not {"decision", "reason"} <= set(ep.columns):
        return []
    ex = ep[ep["decision"] == "excluded"]
    out = []
    for reason, grp in ex.groupby("reason", sort=False):
        msg = str(grp["reason_message"].iloc[0]) if "reason_message" in grp.columns else ""
        out.append((str(reason), len(grp), msg))
    return sorted(out, key=lambda t: -t[1])


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
    blocking = [d for d in run.plan.duplicates() if d.get("kind") == "blocking"]
    if run.plan.present:
        add("no blocking duplicates", f"{len(blocking)} blocking group(s)", not blocking)
    else:
        add("no blocking duplicates", "plan.json missing", None)
    mat = material(run, "prior_sensitivity.csv", "spec")
    if run.table("prior_sensitivity.csv") is not None:
        add("no material prior dependence", ", ".join(m[0] for m in mat) or "none material", not mat)
    else:
        add("no material prior dependence", "prior sensitivity not available", None)
    scen = run.scenario_study_ids()
    add("no scenario-uncertainty rows", f"{len(scen)} scenario row(s)",
        not scen if (run.table("effect_preparation.csv") is not None or run.plan.present) else None)
    return pd.DataFrame(rows)


def diagnostics_by_fit(run: RunData) -> pd.DataFrame | None:
    """One row per fit: the verdict and the worst value of each check (diagnostics.csv, long ->
    wide). The full long table stays in diagnostics.csv."""
    dg = run.table("diagnostics.csv")
    if dg is None or not {"fit", "check", "value"} <= set(dg.columns):
        return None
    verdicts = fit_verdicts(run)
    worst = {"r_hat": max, "ess_bulk": min, "ess_tail": min, "divergences": max, "bfmi": min}
    rows = []
    for fit, grp in dg.groupby("fit", sort=False):
        row: dict[str, Any] = {"fit": fit, "all checks pass": verdicts.get(str(fit))}
        for check, pick in worst.items():
            vals = [to_float(v) for v in grp.loc[grp["check"] == check, "value"]]
            vals = [v for v in vals if v == v]
            if vals:
                row[f"{'max' if pick is max else 'min'} {check}"] = pick(vals)
        z = pd.to_numeric(grp.loc[grp["check"].astype(str).str.startswith("exact_z"), "value"], errors="coerce")
        if z.notna().any():
            row["max |exact z|"] = float(z.abs().max())
        if "draws" in grp.columns:
            d = pd.to_numeric(grp["draws"], errors="coerce").dropna()
            if len(d):
                row["draws per chain"] = float(d.max())
        rows.append(row)
    return pd.DataFrame(rows)
