"""Reporting language for triangulation, influence and history, and meta-regression (escaped
Markdown). Each section explains itself when its file is missing, from the catalogue's ``when``.
"""

from __future__ import annotations

import math

from .fmt import (
    MdSafe,
    format_number,
    format_probability,
    md_escape,
    to_float,
    truthy,
    verdict_word,
)
from .load import RunData
from .prose import ids, nfu

TRIANGULATE_REASON = "triangulate_only"


def _study(r: dict) -> str:
    name, sid = str(r.get("study_name") or ""), str(r.get("study_id") or "")
    return md_escape(f"{name} ({sid})" if name and name != sid else sid)


def triangulation_markdown(run: RunData) -> MdSafe:
    tri = run.table("triangulation.csv")
    just = run.plan.triangulate_justification()
    just_text = (f" The config's justification for triangulate-only evidence: “{md_escape(just)}”." if just else "")
    intro = ("MMM read-outs, ROI, iROAS and similar model-based evidence are not pooled; they are *triangulated*: "
             "each is placed in the distribution of the true effect of a new comparable study that the pooled "
             "result predicts. ")
    if tri is None:
        ep = run.table("effect_preparation.csv")
        n = 0 if ep is None or "reason" not in ep.columns else int((ep["reason"] == TRIANGULATE_REASON).sum())
        if n:
            return MdSafe(intro + f"{n} triangulate-only row(s) are in the tracker, but "
                          f"{md_escape(run.missing_reason('triangulation.csv'))}." + just_text)
        return MdSafe(intro + "This pool's scope has no triangulate-only rows, so there is nothing to "
                      "triangulate." + just_text)
    if tri.empty:
        return MdSafe(intro + "triangulation.csv lists no rows." + just_text)
    counts: dict[str, int] = {}
    lines = []
    unit = run.unit
    for _, r in tri.iterrows():
        verdict = str(r.get("verdict") or "")
        counts[verdict_word(verdict)] = counts.get(verdict_word(verdict), 0) + 1
        comparable = truthy(r.get("comparable"))
        src = f"{format_number(r.get('source_estimate'))} {md_escape(r.get('source_unit') or '')}".strip()
        line = f"- **{_study(r)}** ({md_escape(r.get('evidence_type'))}, {md_escape(r.get('metric'))}; reported {src}"
        est = unit.value({"x": r.get("model_estimate"), "x_pct": r.get("estimate_pct")}, "x")
        if comparable and math.isfinite(est):
            line += f", {unit.text(est)} in the pool's unit{nfu(run)}"
        line += f"): **{md_escape(verdict or 'no verdict')}**"
        pct = to_float(r.get("percentile"))
        if math.isfinite(pct):
            line += f" — {format_probability(pct)} of the predicted true effects lie below it"
        if str(r.get("why") or "").strip():
            line += f". {md_escape(r.get('why'))}"
        row_just = str(r.get("justification") or "").strip()
        if row_just and row_just != just:
            line += f" Justification: {md_escape(row_just)}."
        lines.append(line)
    summary = ", ".join(f"{n} {md_escape(v)}" for v, n in counts.items())
    return MdSafe(intro + f"{len(tri)} row(s): {summary}.{just_text}\n\n" + "\n".join(lines)
                  + "\n\nA verdict says whether the triangulated figure is plausible as a comparable study; it "
                  "does not say which source is right.")


def influence_markdown(run: RunData) -> MdSafe:
    inf = run.table("influence.csv")
    if inf is None:
        return MdSafe(f"Leave-one-out: not shown: {md_escape(run.missing_reason('influence.csv'))}.")
    unit = run.unit
    mu = run.summary_row("pooled_summary.csv", "mu")
    base = unit.value(mu, "mean")
    rows = [dict(r) for _, r in inf.iterrows()]
    text = ("**Leave-one-out.** Each study left out in turn. Easy to over-read with few studies: a large "
            "change says the result leans on one study, not that the study is wrong.")
    flips = [r for r in rows if truthy(r.get("changes_conclusion"))]
    if "changes_conclusion" in inf.columns:
        text += (" Leaving out " + ids([str(r.get("left_out")) for r in flips])
                 + " changes the conclusion (the interval's side of zero or P(effect > 0) across 50 %)."
                 if flips else " No single study changes the conclusion when left out.")
    shifts = [(abs(unit.value(r, "mu_mean") - base), r) for r in rows if math.isfinite(unit.value(r, "mu_mean"))]
    if shifts and math.isfinite(base):
        _, r = max(shifts, key=lambda t: t[0])
        m, lo, hi = unit.triple(r, "mu_")
        text += (f" The largest shift: without {md_escape(r.get('left_out'))} the average effect is "
                 f"{unit.estimate(m, lo, hi, run.interval_level)}{nfu(run)}, against {unit.text(base)} with all studies.")
    mat = [str(r.get("left_out")) for r in rows if truthy(r.get("material"))]
    if mat:
        text += f" Material under the materiality rule: {ids(mat)}."
    return MdSafe(text)


def cumulative_markdown(run: RunData) -> MdSafe:
    cum = run.table("cumulative.csv")
    if cum is None:
        return MdSafe(f"**History.** Not shown: {md_escape(run.missing_reason('cumulative.csv'))}.")
    if cum.empty:
        return MdSafe("**History.** cumulative.csv lists no steps.")
    unit = run.unit
    rows = [dict(r) for _, r in cum.iterrows()]
    first, last = rows[0], rows[-1]
    text = ("**History.** The pooled average after each study, adding studies in the order of their "
            f"measurement window's end: after the first ({_study(first)}) "
            f"{unit.estimate(*unit.triple(first, 'mu_'), run.interval_level)}{nfu(run)}; with all "
            f"{format_number(last.get('k'))} {unit.estimate(*unit.triple(last, 'mu_'), run.interval_level)}{nfu(run)}.")
    if len(rows) >= 2:
        prev = rows[-2]
        text += (f" The latest study moved the average from {unit.text(unit.value(prev, 'mu_mean'))} to "
                 f"{unit.text(unit.value(last, 'mu_mean'))}.")
    return MdSafe(text)


def moderators_markdown(run: RunData) -> MdSafe:
    mod = run.table("moderators.csv")
    if mod is None:
        return MdSafe(f"Not shown: {md_escape(run.missing_reason('moderators.csv'))}.")
    unit = run.unit
    parts = ["Meta-regression asks whether the effect differs with a study characteristic (a moderator). "
             "With few studies per moderator such differences are hard to tell from noise."]
    lines = []
    exploratory = []
    for _, r in mod.iterrows():
        r = dict(r)
        kind, term = str(r.get("row_type") or ""), str(r.get("term") or "")
        if truthy(r.get("exploratory")):
            exploratory.append(term or str(r.get("moderator") or ""))
        m, lo, hi = unit.triple(r)
        est = unit.estimate(m, lo, hi, run.interval_level) + nfu(run)
        note = f" ({md_escape(r['note'])})" if str(r.get("note") or "").strip() else ""
        if kind == "coefficient" and term.lower() not in ("intercept", "(intercept)"):
            bf = to_float(r.get("bayes_factor_01"))
            lines.append(f"- **{md_escape(term)}** (coefficient of {md_escape(r.get('moderator'))}): {est}, "
                         f"P(> 0) {format_probability(r.get('prob_positive'))}"
                         + (f", BF01 = {format_number(bf, 2)}" if math.isfinite(bf) else "") + note)
        elif kind == "subgroup_mean":
            lines.append(f"- **{md_escape(r.get('moderator'))} = {md_escape(r.get('level'))}**: {est} "
                         f"from {format_number(r.get('n_rows'))} row(s){note}")
        elif kind == "heterogeneity":
            lines.append(f"- {md_escape(term)}: {format_number(r.get('median', r.get('mean')))}{nfu(run)}{note}")
    if exploratory:
        parts.append(f"**Exploratory:** {ids(sorted(set(exploratory)))} rest on too few rows per moderator "
                     "value to be reported as findings; treat them as questions for the next study.")
    return MdSafe(" ".join(parts) + ("\n\n" + "\n".join(lines) if lines else ""))
