"""The summary a stakeholder reads first: status banner, headline in the pool's business unit,
P(effect > 0), heterogeneity and the next study in plain words, readiness, model comparison.

:func:`build_summary` collects the facts once; :func:`summary_html` (report.html, next to the
forest plot) and :func:`summary_markdown` (analysis_report.md) only lay them out. A FAILED,
BLOCKED or unknown-status run carries ``marker`` beside every number.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from .facts import STATUS_MEANINGS, reasons_in_words
from .fmt import (
    MdSafe,
    decimals_for,
    format_number,
    format_probability,
    interval_label,
    md_escape,
    to_float,
)
from .load import RunData
from .plots import ALT_TEXT

NOT_FOR_USE = "not for use"


@dataclass
class Fact:
    label: str
    value: str  # a number in words (gets the not-for-use marker on an unusable run)
    note: str = ""  # plain words around it
    numeric: bool = True


@dataclass
class Summary:
    title: str
    pool: str
    level: str  # ok | warn | stop (the banner's colour)
    banner: str
    meaning: str
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (code, message)
    why: list[str] = field(default_factory=list)  # the reasons in words, each once
    facts: list[Fact] = field(default_factory=list)
    marker: str = ""  # e.g. "FAILED: not for use"
    finished: str = ""


def _banner(run: RunData) -> tuple[str, str]:
    st, rep = run.status_name, run.reportable
    if st == "failed":
        return "stop", "FAILED: do not use any number from this run"
    if st == "blocked":
        return "stop", "BLOCKED: the run stopped before pooling; there is no pooled result"
    if st == "unknown":
        return "stop", "STATUS UNKNOWN: run_status.json is missing or incomplete; do not use these numbers"
    if rep:
        return "ok", "Reportable: the run meets every reportability condition (still review it before use)"
    return "warn", "Not reportable: review material only, not a result to present as is"


def _heterogeneity(run: RunData, level: str) -> list[Fact]:
    unit = run.unit
    out: list[Fact] = []
    i2 = run.row("heterogeneity.csv", "quantity", "i2")
    spread = run.row("heterogeneity.csv", "quantity", "typical_spread")
    if spread is None:  # before heterogeneity.csv: tau from pooled_summary.csv in the unit
        tau = run.summary_row("pooled_summary.csv", "tau")
        if tau is not None:
            spread = {k: to_float(tau.get(k)) for k in ("median", "lower", "upper")}
    if spread is not None:
        m, lo, hi = (unit.value(spread, k) for k in ("median", "lower", "upper"))
        text = f"{unit.spread(m)} ({level}: {unit.spread(lo)} to {unit.spread(hi)})"
        note = "how much the true effects of the studies typically differ from the average (tau, median)"
        if i2 is not None:
            med = to_float(i2.get("median"))
            lo_i, hi_i = to_float(i2.get("lower")), to_float(i2.get("upper"))
            note += (f"; I² ≈ {100 * med:.0f} % ({level}: {100 * lo_i:.0f}–{100 * hi_i:.0f} %) of the variation "
                     "between study estimates is real differences rather than measurement noise")
        out.append(Fact("Between-study spread", text, note))
    nxt = run.row("heterogeneity.csv", "quantity", "next_observed")
    if nxt is not None:
        m, lo, hi = unit.triple(nxt)
        se = to_float(nxt.get("reference_se"))
        note = ("where the estimate of a new comparable study would likely fall"
                + (f" (at a typical standard error of {format_number(se, 2)} on the model scale)"
                   if math.isfinite(se) else ""))
        d = decimals_for([m, lo, hi])
        out.append(Fact("Next study's estimate", f"{unit.text(lo, d)} to {unit.text(hi, d)} ({level})", note))
    else:
        fut = run.summary_row("future_true_effect_summary.csv", "future_true_effect")
        if fut is not None:
            m, lo, hi = unit.triple(fut)
            d = decimals_for([m, lo, hi])
            out.append(Fact("Next study's true effect", f"{unit.text(lo, d)} to {unit.text(hi, d)} ({level})",
                            "the true effect of a new comparable study; its measured estimate would "
                            "vary more (this excludes measurement error)"))
    return out


def _model_comparison(run: RunData) -> list[Fact]:
    mc = run.table("model_comparison.csv")
    if mc is None or "hypothesis" not in mc.columns:
        return []
    values, words = [], []
    for _, r in mc.iterrows():
        values.append(f"{r['hypothesis']}: {format_number(to_float(r.get('bayes_factor_01')), 2)}")
        words.append(f"{r['hypothesis']}: {str(r.get('evidence') or '').strip() or 'no verdict'}")
    if not values:
        return []
    return [Fact("Bayes factors BF01", "; ".join(values),
                 "; ".join(words) + " (BF01 > 1 favours the hypothesis against the model's priors)")]


def build_summary(run: RunData) -> Summary:
    level, banner = _banner(run)
    unusable = run.unusable
    s = Summary(title=run.project_name, pool=run.pool_label, level=level, banner=banner,
                meaning=STATUS_MEANINGS.get(run.status_name, "run_status.json is missing or has no status"),
                marker=f"{unusable}: {NOT_FOR_USE}" if unusable else "",
                finished=str(run.status_value("finished_at") or ""))
    s.reasons = [(r["code"], r["message"]) for r in run.reasons]
    s.why = reasons_in_words(run.reasons)
    lvl = interval_label(run.interval_level)
    mu = run.summary_row("pooled_summary.csv", "mu")
    k = len(run.pooled_study_ids())
    if mu is None:
        why = {"blocked": "the run was blocked before pooling",
               "failed": "the run failed before a pooled result was written"}.get(
            run.status_name, "pooled_summary.csv is not in the run directory")
        s.facts.append(Fact("Average effect", "no pooled result", why, numeric=False))
    else:
        m, lo, hi = run.unit.triple(mu)
        s.facts.append(Fact("Average effect", run.unit.estimate(m, lo, hi, run.interval_level),
                            f"the average true {run.unit.name} across the {k} pooled studies (mu, posterior mean)"))
        s.facts.append(Fact("P(effect > 0)", format_probability(mu.get("prob_positive")),
                            "the probability that the average effect is positive"))
        s.facts += _heterogeneity(run, lvl)
        s.facts += _model_comparison(run)
    rd = run.readiness()
    if rd.get("readiness"):
        s.facts.append(Fact("Readiness", str(rd["readiness"]), str(rd.get("why") or ""), numeric=False))
    return s


# -- layouts --------------------------------------------------------------------------------------

def _why_label(s: Summary) -> str:
    return "Warnings (they do not stop it being reportable)" if s.level == "ok" else "Why"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def summary_html(s: Summary, forest_png_b64: str | None, forest_note: str = "") -> str:
    """The summary block of report.html: banner, facts beside the forest plot (escaped HTML)."""
    nfu = f' <span class="mbm-nfu">⚠ {_e(s.marker)}</span>' if s.marker else ""
    reasons = ""
    if s.reasons:
        words = "; ".join(_e(w) for w in s.why)
        items = "".join(f"<li><code>{_e(c)}</code> {_e(m)}</li>" if c else f"<li>{_e(m)}</li>"
                        for c, m in s.reasons)
        reasons = (f'<p class="mbm-why">{_e(_why_label(s))}: {words}.</p>'
                   f"<details><summary>{len(s.reasons)} reason(s) in full</summary><ul>{items}</ul></details>")
    facts = "".join(
        f'<div class="mbm-fact"><div class="mbm-label">{_e(f.label)}</div>'
        f'<div class="mbm-value">{_e(f.value)}{nfu if f.numeric else ""}</div>'
        + (f'<div class="mbm-note">{_e(f.note)}</div>' if f.note else "") + "</div>"
        for f in s.facts)
    plot = (f'<img class="mbm-forest" alt="{_e(ALT_TEXT["forest"])}" src="data:image/png;base64,{forest_png_b64}">'
            if forest_png_b64 else f'<p class="mbm-missing"><em>{_e(forest_note)}</em></p>')
    pool = f' <span class="mbm-pool">pool {_e(s.pool)}</span>' if s.pool else ""
    finished = f" · finished at {_e(s.finished)}" if s.finished else " · finished at: not recorded"
    return (
        f'<div class="mbm-summary" id="mbm-summary">'
        f'<h1 class="mbm-title">{_e(s.title)}{pool}</h1>'
        f'<div class="mbm-banner mbm-{s.level}" id="mbm-status-banner" role="status">'
        f'<p class="mbm-banner-title"><strong>{_e(s.banner)}</strong></p>'
        f'<p class="mbm-meaning">{_e(s.meaning)}{_e(finished)}. This report is review material, '
        f"not an automatic decision.</p>{reasons}</div>"
        f'<div class="mbm-grid"><div class="mbm-facts">{facts}</div>'
        f'<div class="mbm-plot">{plot}</div></div></div>'
    )


def summary_markdown(s: Summary) -> MdSafe:
    nfu = f" ⚠ **{md_escape(s.marker)}**" if s.marker else ""
    lines = [f"> **{md_escape(s.banner)}**", ">",
             f"> {md_escape(s.meaning)}; finished at {md_escape(s.finished or 'not recorded')}. "
             "This report is review material, not an automatic decision."]
    if s.reasons:
        lines += [">", f"> {md_escape(_why_label(s))}: " + "; ".join(md_escape(w) for w in s.why) + "."]
    lines.append("")
    for f in s.facts:
        value = f"**{md_escape(f.value)}**" + (nfu if f.numeric else "")
        lines.append(f"- **{md_escape(f.label)}:** {value}" + (f" — {md_escape(f.note)}" if f.note else ""))
    if s.reasons:
        lines += ["", "Reasons in full:", ""]
        lines += [f"- {md_escape(c)}: {md_escape(m)}" if c else f"- {md_escape(m)}" for c, m in s.reasons]
    return MdSafe("\n".join(lines))
