"""Reporting language for the sections after the summary: evidence, sensitivity, diagnostics and
the caveats. Every function returns escaped Markdown (:class:`~.fmt.MdSafe`); effects are in the
pool's business unit; on an unusable run every number carries the not-for-use marker.
"""

from __future__ import annotations

import pandas as pd

from .facts import (
    decision_counts,
    excluded_reasons,
    failed_checks,
    fit_verdicts,
    material,
    max_exact_z,
)
from .fmt import (
    REVIEW_NOTE,
    MdSafe,
    flagged,
    format_number,
    format_probability,
    listing,
    md_escape,
    to_float,
    truthy,
)
from .load import MissingInput, RunData


def nfu(run: RunData) -> str:
    """The marker put after a number of an unusable run (escaped Markdown)."""
    return f" ⚠ *{md_escape(run.unusable)}: not for use*" if run.unusable else ""


def ids(values: list[str]) -> str:
    return listing([md_escape(v) for v in values])


def effect_range(run: RunData, df: pd.DataFrame) -> str:
    """``the average effect ranges from +2.1 % to +3.4 % and P(effect > 0) from 88 % to 91 %``."""
    unit = run.unit
    means = [unit.value(r, "mean") for _, r in df.iterrows()]
    probs = [to_float(p) for p in df.get("prob_positive", [])]
    text = f"the average effect ranges from {unit.text(min(means))} to {unit.text(max(means))}{nfu(run)}"
    probs = [p for p in probs if p == p]
    if probs:
        text += f" and P(effect > 0) from {format_probability(min(probs))} to {format_probability(max(probs))}"
    return text


# -- evidence -------------------------------------------------------------------------------------

def evidence_markdown(run: RunData) -> MdSafe:
    counts = decision_counts(run)
    if not counts:
        return MdSafe(f"Not shown: {md_escape(run.missing_reason('effect_preparation.csv'))}.")
    total = sum(counts.values())
    parts = [f"{total} tracker row(s) in this pool's scope: **{counts['included']} pooled** with their own "
             f"uncertainty, **{counts['scenario']} pooled with scenario uncertainty** (no uncertainty of "
             f"their own: an assumed standard error is used), **{counts['excluded']} left out**."]
    ex = excluded_reasons(run)
    if ex:
        parts.append("Left out: " + "; ".join(f"{md_escape(msg or code)} ({n} row(s))" for code, n, msg in ex) + ".")
    ep = run.table("effect_preparation.csv")
    if ep is not None and "checks" in ep.columns:
        flagged_rows = [(str(r.get("study_id")), str(r["checks"])) for _, r in ep.iterrows() if str(r["checks"]).strip()]
        if flagged_rows:
            parts.append("Plausibility checks raised on: " + "; ".join(
                f"{md_escape(sid)} ({md_escape(chk)})" for sid, chk in flagged_rows) + ".")
        else:
            parts.append("No plausibility check was raised on any row.")
    dups = run.plan.duplicates()
    if dups:
        kinds = {k: sum(1 for d in dups if d.get("kind") == k) for k in ("blocking", "possible")}
        parts.append(f"Duplicates: {kinds['blocking']} blocking group(s), {kinds['possible']} possible group(s) "
                     "(listed below).")
    parts.append("The tracker checks units and metrics, not whether the studies answer the same question: "
                 "confirm population, window, design and estimand before relying on the pooled result.")
    return MdSafe(" ".join(parts))


# -- sensitivity ----------------------------------------------------------------------------------

def scenario_markdown(run: RunData) -> MdSafe:
    scen = run.scenario_study_ids()
    pooled = run.pooled_study_ids()
    if not scen:
        return MdSafe("No pooled row relies on scenario uncertainty: every pooled row carries an "
                      "uncertainty from its source, so no uncertainty-scenario sensitivity applies.")
    text = (f"{len(scen)} of {len(pooled)} pooled rows ({ids(scen)}) report no uncertainty of their "
            "own and use the configured scenario standard error, so the result depends on that "
            "assumption and is not reportable on its own.")
    us = run.table("uncertainty_sensitivity.csv")
    if us is not None and len(us):
        text += f" Across the scenario levels ({ids([str(v) for v in us.get('level', [])])}), {effect_range(run, us)}."
        mat = material(run, "uncertainty_sensitivity.csv", "level")
        text += (" Material changes: " + "; ".join(f"{md_escape(lbl)} ({md_escape(why)})" for lbl, why in mat) + "."
                 if mat else " No level changes the result materially under the materiality rule.")
    else:
        text += f" Not shown: {md_escape(run.missing_reason('uncertainty_sensitivity.csv'))}."
    return MdSafe(text)


def prior_markdown(run: RunData) -> MdSafe:
    ps = run.table("prior_sensitivity.csv")
    sens = run.plan.sensitivity()
    if ps is None or not len(ps):
        text = (f"Prior dependence is unchecked: {md_escape(run.missing_reason('prior_sensitivity.csv'))}."
                if sens.get("prior") is not False else
                "Prior sensitivity was switched off (sensitivity.prior: false), so prior dependence is unchecked.")
    else:
        text = f"Across the prior grid ({ids([str(v) for v in ps.get('spec', ps.get('fit', []))])}), {effect_range(run, ps)}."
        if "same_as" in ps.columns:
            same = [(str(r.get("spec")), str(r["same_as"])) for _, r in ps.iterrows() if str(r["same_as"]).strip()]
            if same:
                text += " Identical fits: " + "; ".join(f"{md_escape(a)} = {md_escape(b)}" for a, b in same) + "."
        mat = material(run, "prior_sensitivity.csv", "spec")
        text += (" **Material prior dependence:** " + "; ".join(
            f"{md_escape(lbl)} ({md_escape(why)})" for lbl, why in mat) + "."
                 if mat else " No prior spec changes the result materially.")
        if sens.get("materiality_rule"):
            text += f" Rule: {md_escape(sens['materiality_rule'])}."
    pdg = run.table("prior_diagnostics.csv")
    if pdg is not None and "warning" in pdg.columns:
        n = sum(bool(truthy(v)) for v in pdg["warning"])
        text += (f" Prior diagnostics raise {n} warning(s) (appendix)." if n else " Prior diagnostics raise no warning.")
    return MdSafe(text)


def sensitivity_markdown(run: RunData) -> MdSafe:
    return MdSafe(f"**Prior.** {prior_markdown(run)}\n\n**Assumed uncertainty.** {scenario_markdown(run)}")


def priors_markdown(run: RunData) -> MdSafe:
    try:
        pri = run.prior_values()
    except MissingInput:
        return MdSafe("")
    fam = md_escape(pri.get("tau_family") or "half_normal")
    words = run.plan.priors_in_words()
    mu_mean, mu_sd, tau_scale = (f"{to_float(pri.get(k)):g}" for k in ("mu_mean", "mu_sd", "tau_scale"))
    return MdSafe(
        f"Priors on the model scale: mu ~ Normal({mu_mean}, {mu_sd}), tau ~ {fam}({tau_scale})."
        + "".join(f" {label}: {md_escape(text)}." for label, text in (
            ("In the pool's unit", words["priors_implied"].rstrip(".")),
            ("Why these priors", words["priors_justification"].rstrip("."))) if text)
        + " "
        "In the plot below each prior is drawn on its own (right-hand) axis so it stays visible next to "
        "the much narrower posterior; a prior that is nearly flat over the posterior's range means the "
        "data, not the prior, decide the result.")


# -- diagnostics ----------------------------------------------------------------------------------

def diagnostics_markdown(run: RunData) -> MdSafe:
    verdicts = fit_verdicts(run)
    if not verdicts and run.table("diagnostics.csv") is None:
        return MdSafe(f"Sampler diagnostics are not available: {md_escape(run.missing_reason('diagnostics.csv'))}.")
    main = verdicts.get("main")
    parts = ["The main fit passes every sampler diagnostic and the exact cross-check." if main
             else "**The main fit fails its diagnostics.**" if main is False
             else "The main fit has no diagnostics verdict."]
    others = [f for f, ok in verdicts.items() if f != "main" and ok is False]
    if others:
        parts.append(f"Sensitivity fits failing their diagnostics: {ids(others)}.")
    fc = failed_checks(run)
    if fc is not None and len(fc):
        items = [f"{md_escape(r.get('fit'))} {md_escape(r.get('parameter'))} {md_escape(r.get('check'))} = "
                 f"{format_number(r.get('value'))} (threshold {format_number(r.get('threshold'))})"
                 for _, r in fc.head(8).iterrows()]
        parts.append("Failed checks: " + "; ".join(items) + ("; …" if len(fc) > 8 else "") + ".")
    z, thr = max_exact_z(run)
    if z == z:
        parts.append(f"Exact cross-check (quadrature over tau): the largest MCMC-versus-exact difference for "
                     f"the main fit is {format_number(z)} Monte Carlo standard errors (bound {format_number(thr)}).")
    engine = run.status_value("engine")
    if engine:
        parts.append(f"The reported numbers come from the {md_escape(engine)} engine.")
    return MdSafe(" ".join(parts))


# -- caveats --------------------------------------------------------------------------------------

def review_points(run: RunData) -> tuple[list[MdSafe], list[MdSafe]]:
    """(caveats, what to check next) as escaped Markdown bullet texts."""
    caveats: list[str] = []
    nxt: list[str] = []
    st = run.status_name
    k = len(run.pooled_study_ids())
    if st in ("blocked", "failed"):
        caveats.append(f"The run {'was blocked' if st == 'blocked' else 'failed'}: there is no usable pooled result.")
        nxt.append("Resolve the reasons in the status banner, then recompile and rerun the plan.")
    has_result = run.has_result()
    if k and has_result:
        caveats.append(f"Only {k} pooled row(s): with few studies, the interval and the sensitivity results say "
                       "more than the point estimate, and the spread between studies is weakly identified.")
    readiness = run.readiness().get("readiness")
    if readiness == "directional":
        caveats.append("Readiness is directional: treat the result as a direction, not a size.")
        nxt.append("Add comparable studies before reporting a pooled size.")
    elif readiness == "not_recommended":
        caveats.append("Readiness is not_recommended: too few comparable rows to pool.")
    scen = run.scenario_study_ids()
    if scen:
        caveats.append(f"Row(s) {ids(scen)} use scenario uncertainty, not uncertainty from their source.")
        nxt.append(f"Find a standard error or confidence interval for {ids(scen)} in the source studies.")
    mat = material(run, "prior_sensitivity.csv", "spec")
    if mat:
        caveats.append("Material prior dependence: " + "; ".join(md_escape(m[0]) for m in mat) + ".")
        nxt.append("Justify the priors from external information (not from this result) and record it in the config.")
    if fit_verdicts(run).get("main") is False:
        caveats.append("The main fit failed its diagnostics; its numbers are not reliable.")
        nxt.append("Inspect the trace and rank plots and diagnostics.csv; rerun with more draws or a higher "
                   "target_accept, and check the evidence for outliers.")
    ppc = run.table("ppc.csv")
    if ppc is not None and "flag" in ppc.columns:
        fl = [str(r["study_id"]) for _, r in ppc.iterrows() if flagged(r["flag"])]
        if fl:
            caveats.append(f"The in-sample posterior predictive check flags {ids(fl)}.")
            nxt.append(f"Review whether {ids(fl)} measure the same estimand as the other studies.")
    dups = run.plan.duplicates()
    blocking = [d for d in dups if d.get("kind") == "blocking"]
    possible = [d for d in dups if d.get("kind") == "possible"]
    if blocking:
        caveats.append(f"{len(blocking)} blocking duplicate group(s): the same study entered twice.")
        nxt.append("Remove the repeated tracker rows listed under duplicates.")
    if possible:
        caveats.append(f"{len(possible)} possible duplicate group(s): overlapping evidence may be counted twice.")
        nxt.append("Confirm that possible duplicates are distinct studies (different samples or windows).")
    just = run.plan.triangulate_justification()
    pooled_tri = any(str(r.get("evidence_type")) == "mmm" for r in run.plan.rows()
                     if r.get("decision") in ("included", "scenario"))
    if just and pooled_tri:
        caveats.append(f"Triangulate-only evidence was let into the pool on this justification: {md_escape(just)}")
    if run.status_value("allow_stale"):
        caveats.append("The plan was executed with --allow-stale: its tracker or config changed after compile.")
        nxt.append("Recompile the plan from the current config and tracker.")
    if has_result and run.table("heterogeneity.csv") is None:
        caveats.append("The next study's true effect excludes measurement error; it is not a prediction of the "
                       "next observed study estimate.")
    if ppc is not None:
        caveats.append("The posterior predictive check is in-sample, not leave-one-out validation.")
    nxt.append("Confirm the studies answer the same question: population, measurement window, design and "
               "estimand. The tracker checks units and metrics, not comparability.")
    counts = decision_counts(run)
    if counts.get("excluded"):
        nxt.append(f"Check that the {counts['excluded']} row(s) left out (Evidence) are meant to be left out.")
    if run.problems:
        caveats.append("Some artefacts could not be read: " + md_escape("; ".join(run.problems)))
    return [MdSafe(c) for c in caveats], [MdSafe(n) for n in nxt]


def caveats_markdown(run: RunData) -> MdSafe:
    caveats, nxt = review_points(run)
    return MdSafe("**Caveats**\n\n" + "\n".join(f"- {c}" for c in caveats)
                  + "\n\n**What to check next**\n\n" + "\n".join(f"- {n}" for n in nxt)
                  + f"\n\nThis report is {REVIEW_NOTE}.")
