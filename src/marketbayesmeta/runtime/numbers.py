"""A pool's reported numbers: every table from the exact posterior (``reporting.summaries: exact``,
the default), so the bytes do not depend on the seed, the sampler or the number of workers.

The steps, in order (each writes its catalogue file into the pool's directory):

1. the exact posterior of every distinct fit of the grid (a fit ``same_as`` another is that fit);
2. pooled_summary, future_true_effect_summary, study_effects, ppc, heterogeneity, model_comparison
   and cumulative of the main fit; influence (leave-one-out) when enabled;
3. prior and uncertainty sensitivity (deltas and materiality against the reference fit);
4. prior diagnostics (prior-predictive draws from a fixed seed: also independent of the run's seed).

With ``reporting.summaries: exact`` steps 1, 2 and 4 run before the MCMC check
(:func:`write_exact_numbers`; the report draws its figures from them meanwhile) and step 3 after it
(:func:`finish_numbers`: its tables say whether each fit's check passed); the status book takes
every step's reasons in step order after the check's own. With ``reporting.summaries: mcmc`` the
main fit's tables (pooled, future, studies, ppc) are summaries of its PyMC draws instead, as in
release 0.4, and every step runs after the check (:func:`write_numbers`); everything else stays exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special

from ..plan import Fit, Pool
from . import exact_tables as xt
from . import tables
from .csvio import write_table
from .exact import ExactPosterior, exact_posterior
from .fits import FitResult
from .sensitivity import compare
from .status import StatusBook

PRIOR_CHECK_SEED = 20260603  # prior-predictive draws: fixed, so prior_diagnostics.csv is seed-free


@dataclass(frozen=True)
class PoolData:
    """The main fit's data and the tracker facts the tables print beside it."""

    ids: list[str]
    names: list[str]
    decisions: list[str]
    window_ends: list[str]
    rows: list[int]
    y: np.ndarray
    se: np.ndarray

    @classmethod
    def of(cls, pool: Pool) -> PoolData:
        ids, y, se = pool.fit_data(pool.fit("main"))
        by_id = {r.study_id: r for r in pool.rows}
        return cls(ids=ids, names=[by_id[i].study_name for i in ids], decisions=[by_id[i].decision for i in ids],
                   window_ends=[by_id[i].window_end for i in ids], rows=[by_id[i].row for i in ids],
                   y=np.asarray(y, float), se=np.asarray(se, float))


def exact_fit(pool: Pool, fit: Fit) -> ExactPosterior:
    _, y, se = pool.fit_data(fit)
    p = fit.priors
    return exact_posterior(y, se, mu_mean=p.mu_mean, mu_sd=p.mu_sd, tau_scale=p.tau_scale, tau_family=p.tau_family,
                           interval=pool.reporting.interval)


def exact_fits(pool: Pool, kinds: tuple[str, ...] = ("main", "prior", "uncertainty")) -> dict[str, ExactPosterior]:
    """Exact posteriors of the fits of ``kinds``, keyed by fit name (a ``same_as`` fit shares its twin's)."""
    out: dict[str, ExactPosterior] = {}
    for fit in pool.fits:
        if fit.kind in kinds and fit.same_as is None:
            out[fit.name] = exact_fit(pool, fit)
    for fit in pool.fits:
        if fit.kind in kinds and fit.same_as is not None:
            out[fit.name] = out[fit.same_as]
    return out


def _sensitivity(pool: Pool, posts: dict[str, ExactPosterior], sampled: dict[str, FitResult], book: StatusBook,
                 directory: Path) -> None:
    rule = pool.sensitivity.materiality

    def stats(fit: Fit) -> dict[str, Any]:
        twin = fit.same_as or fit.name
        res = sampled.get(twin)
        return {**xt.fit_stats(posts[fit.name], None if res is None else res.passes),
                "same_as": fit.same_as, "checked_with_mcmc": res is not None}

    def grid(kind: str, ref: Fit) -> tuple[list[dict[str, Any]], list[str]]:
        ref_stats = stats(ref)
        rows, material = [], []
        for fit in pool.fits:
            if fit.kind != kind:
                continue
            own = stats(fit)
            row = {**compare(own, ref_stats, rule), "same_as": own["same_as"],
                   "checked_with_mcmc": own["checked_with_mcmc"]}
            rows.append({"fit": fit.name, "label": fit.label, **row})
            if row["material"]:
                material.append(f"{fit.label}: {row['material_reasons']}")
        return rows, material

    if pool.sensitivity.prior:
        ref_name = pool.sensitivity.reference_prior
        rows, material = grid("prior", pool.fit("main" if ref_name == "main" else f"prior:{ref_name}"))
        for row in rows:
            row.update(spec=row.pop("label"), **pool.fit(row["fit"]).priors.model_dump())
        write_table(directory, "prior_sensitivity.csv", rows)
        if material:
            book.add("material_prior_dependence", "material prior dependence (" + rule.rule + "): "
                     + "; ".join(material))
    if pool.sensitivity.uncertainty_status == "applicable":
        rows, material = grid("uncertainty", pool.fit("main"))
        for row in rows:
            level = row.pop("label")
            row.update(level=level, scenario_se=float(pool.scenario_se[level].value))
        write_table(directory, "uncertainty_sensitivity.csv", rows)
        if material:
            book.add("material_uncertainty_dependence", "the result depends materially on the scenario "
                     "uncertainty level: " + "; ".join(material))


TRIANGULATION_BANDS = (0.90, 0.99)  # central bands of the future true effect: "in the tail", "outside"


def future_cdf(post: ExactPosterior, x: float) -> float:
    """P(future true effect <= x): the Normal mixture N(E[mu|tau], Var[mu|tau] + tau²) over tau."""
    sd = np.sqrt(post.mu_cond_var + post.tau_nodes**2)
    return float(post.tau_weights @ special.ndtr((x - post.mu_cond_mean) / sd))


def triangulation_rows(pool: Pool, post: ExactPosterior) -> list[dict[str, Any]]:
    """Each triangulate-only row of the pool's metric against the pooled prediction: where its
    estimate falls in the distribution of a comparable future study's true effect."""
    inner, outer = TRIANGULATION_BANDS
    log_scale = pool.scale == "log_relative"
    metric = pool.metric.strip().lower()
    out = []
    for r in pool.rows:
        if r.reason != "triangulate_only" or r.metric != metric:
            continue
        row: dict[str, Any] = {
            "study_id": r.study_id, "study_name": r.study_name, "evidence_type": r.evidence_type,
            "metric": r.metric, "source_estimate": r.source_estimate, "source_unit": r.unit,
            "model_estimate": r.model_estimate, "model_se": r.model_se,
            "justification": pool.triangulate_only_justification or ""}
        if r.model_estimate is None:
            row.update(comparable=False, verdict="not comparable",
                       why=f"unit '{r.unit}' cannot be converted to the {pool.scale} scale of the pool")
            out.append(row)
            continue
        p = future_cdf(post, r.model_estimate)
        if min(p, 1 - p) >= (1 - inner) / 2:
            verdict = "consistent"
        elif min(p, 1 - p) >= (1 - outer) / 2:
            verdict = f"in the tail (outside the central {100 * inner:g} %)"
        else:
            verdict = f"outside the {100 * outer:g} % band"
        row.update(comparable=True, percentile=p, verdict=verdict,
                   estimate_pct=100 * math.expm1(r.model_estimate) if log_scale else None,
                   why=f"{100 * p:.1f} % of comparable future studies would have a true effect at or below this "
                       f"estimate ({r.evidence_type} read-out, triangulated, not pooled)")
        out.append(row)
    return out


@dataclass
class Written:
    """The tables :func:`write_tables` wrote, what the headline is made of, and the reasons they owe
    the status book, in the order the book takes them: those before the sensitivity tables' and
    those after (:func:`finish_numbers` adds them)."""

    posts: dict[str, ExactPosterior]
    mu_row: dict[str, Any]
    tau_row: dict[str, Any]
    future: dict[str, Any]
    heterogeneity: list[dict[str, Any]]
    before: StatusBook = field(default_factory=StatusBook)
    after: StatusBook = field(default_factory=StatusBook)


def write_exact_numbers(pool: Pool, directory: Path) -> Written | None:
    """Before sampling: every table that needs no draws (with ``reporting.summaries: exact``, all
    but the sensitivity tables, whose check columns say whether the MCMC check passed), so that the
    report can draw from them while the MCMC check runs (report/prerender.py). None with
    ``summaries: mcmc`` (the main fit's tables are then summaries of its draws)."""
    if pool.reporting.summaries == "mcmc":
        return None
    return write_tables(pool, {}, directory)


def write_numbers(pool: Pool, sampled: dict[str, FitResult], book: StatusBook,
                  directory: Path, written: Written | None = None) -> dict[str, Any]:
    """Every numeric table of ``pool`` into ``directory`` (those :func:`write_exact_numbers` wrote
    already, ``written``, are not written again); returns run_status.json's headline."""
    if written is None:
        written = write_tables(pool, sampled, directory)
    return finish_numbers(pool, written, sampled, book, directory)


def write_tables(pool: Pool, sampled: dict[str, FitResult], directory: Path) -> Written:
    """Every table but the sensitivity tables (steps 1, 2 and 4 of the module docstring)."""
    from .prior_checks import prior_diagnostic_rows

    data = PoolData.of(pool)
    log_scale = pool.scale == "log_relative"
    iv = pool.reporting.interval
    posts = exact_fits(pool)
    post = posts["main"]
    main = sampled.get("main")
    if pool.reporting.summaries == "mcmc" and main is not None and main.ok and main.draws is not None:
        d = main.draws
        mu_row, tau_row = tables.pooled_rows(d, iv, log_scale)
        future = tables.summary_row("future_true_effect", d.future, iv, log_scale)
        weights = [r["weight"] for r in xt.study_rows(post, data.ids, data.names, data.decisions, data.y,
                                                            data.se, log_scale)]
        studies = [{**row, "weight": w} for row, w in
                   zip(tables.study_rows(pool, data.ids, data.y, data.se, d, iv, log_scale), weights, strict=True)]
        ppc = tables.ppc_rows(data.ids, data.y, data.se, d, iv)
    else:
        mu_row, tau_row = xt.pooled_rows(post, log_scale)
        future = xt.future_row(post, log_scale)
        studies = xt.study_rows(post, data.ids, data.names, data.decisions, data.y, data.se, log_scale)
        ppc = xt.ppc_rows(post, data.ids, data.y, data.se, iv)
    heterogeneity = xt.heterogeneity_rows(post, data.y, data.se, pool.scale)
    out = Written(posts=posts, mu_row=mu_row, tau_row=tau_row, future=future, heterogeneity=heterogeneity)
    book = out.before
    write_table(directory, "pooled_summary.csv", [mu_row, tau_row])
    write_table(directory, "future_true_effect_summary.csv", [future])
    write_table(directory, "study_effects.csv", studies)
    write_table(directory, "ppc.csv", ppc)
    flagged = [r["study_id"] for r in ppc if r["flag"]]
    if flagged:
        book.add("ppc_flags", f"{len(flagged)} study(ies) outside their in-sample {100 * iv:g} % posterior "
                              f"predictive interval: {', '.join(flagged)}")
    write_table(directory, "heterogeneity.csv", heterogeneity)
    write_table(directory, "model_comparison.csv", xt.model_comparison_rows(post, pool.fit("main").priors))
    main_priors = pool.fit("main").priors
    write_table(directory, "cumulative.csv", xt.cumulative_rows(
        data.y, data.se, data.ids, data.names, data.window_ends, data.rows, main_priors, iv, log_scale))
    if pool.sensitivity.leave_one_out and len(data.ids) >= 3:
        influence = xt.influence_rows(data.y, data.se, data.ids, data.names, main_priors, iv,
                                      pool.sensitivity.materiality, log_scale)
        write_table(directory, "influence.csv", influence)
        decisive = [r["left_out"] for r in influence if r["changes_conclusion"]]
        if decisive:
            book.add("influential_study", "leaving out " + ", ".join(decisive) + " alone changes the conclusion "
                     "(whether the interval excludes 0, or which side of 0.5 P(effect > 0) is on): the result "
                     "rests on that study")
    triangulation = triangulation_rows(pool, post)
    if triangulation:
        write_table(directory, "triangulation.csv", triangulation)
        for row in triangulation:
            if row["verdict"].startswith("outside"):
                book.add("triangulation_disagrees", f"{row['study_id']} ({row['evidence_type']}, {row['metric']}) "
                         f"is {row['verdict']} of the pooled prediction for a comparable study: check how the "
                         "model read-out and the pooled experiments measure the effect before using either")
    book = out.after
    if pool.moderators is not None:
        _moderators(pool, data, post, book, directory)
    prior_rows = prior_diagnostic_rows(main_priors, data.y, data.se, PRIOR_CHECK_SEED)
    if pool.priors_implied:
        prior_rows.append({"check": "priors_in_business_terms", "parameter": "mu, tau", "value": None,
                           "reference": None, "warning": False, "message": pool.priors_implied})
    write_table(directory, "prior_diagnostics.csv", prior_rows)
    if any(r["warning"] for r in prior_rows):
        book.add("prior_diagnostics_warning", "prior diagnostics warn: " +
                 "; ".join(r["message"] for r in prior_rows if r["warning"]))
    return out


def finish_numbers(pool: Pool, written: Written, sampled: dict[str, FitResult], book: StatusBook,
                   directory: Path) -> dict[str, Any]:
    """The sensitivity tables (step 3), and the reasons of every table into ``book`` in step order;
    returns run_status.json's headline."""
    for r in written.before.reasons:
        book.add(r["code"], r["message"])
    _sensitivity(pool, written.posts, sampled, book, directory)
    for r in written.after.reasons:
        book.add(r["code"], r["message"])
    return headline(pool, written.mu_row, written.tau_row, written.future, written.heterogeneity)


def _moderators(pool: Pool, data: PoolData, post: ExactPosterior, book: StatusBook, directory: Path) -> None:
    from .moderator_tables import moderator_rows

    rows, material = moderator_rows(pool, data.y, data.se, post)
    write_table(directory, "moderators.csv", rows)
    design = pool.moderators.design  # type: ignore[union-attr]
    if design.exploratory:
        thin = "; ".join(p.message for p in design.problems) or "few rows per level"
        book.add("moderators_exploratory", f"the meta-regression is exploratory: {thin}. With this few studies per "
                 "level, differences between levels are hypotheses to test, not findings")
    if material:
        book.add("material_moderator_prior_dependence", "the moderators' coefficients depend materially on the "
                 "prior: " + "; ".join(material))


def headline(pool: Pool, mu: dict[str, Any], tau: dict[str, Any], future: dict[str, Any],
             heterogeneity: list[dict[str, Any]]) -> dict[str, Any]:
    """run_status.json's headline, taken from the rows written."""
    h: dict[str, Any] = {"scale": pool.scale, "interval_level": pool.reporting.interval}
    h.update({f"mu_{k}": mu[k] for k in ("mean", "sd", "median", "lower", "upper")})
    h["prob_positive"] = mu["prob_positive"]
    h.update({f"tau_{k}": tau[k] for k in ("mean", "median", "lower", "upper")})
    h.update({f"future_{k}": future[k] for k in ("mean", "lower", "upper")})
    het = {r["quantity"]: r for r in heterogeneity}
    log = pool.scale == "log_relative"
    if log:
        h.update({"mu_mean_pct": mu["mean_pct"], "mu_lower_pct": mu["lower_pct"], "mu_upper_pct": mu["upper_pct"],
                  "future_lower_pct": future["lower_pct"], "future_upper_pct": future["upper_pct"]})
    if "i2" in het:
        h["i2_median"] = het["i2"]["median"]
    if "typical_spread" in het:
        h["typical_spread"] = het["typical_spread"]["median_pct" if log else "median"]
    if "next_observed" in het:
        nxt = het["next_observed"]
        h.update({"next_observed_lower": nxt["lower"], "next_observed_upper": nxt["upper"]})
        if log:
            h.update({"next_observed_lower_pct": nxt["lower_pct"], "next_observed_upper_pct": nxt["upper_pct"]})
    return {k: v for k, v in h.items() if v is not None and (not isinstance(v, float) or math.isfinite(v))}
