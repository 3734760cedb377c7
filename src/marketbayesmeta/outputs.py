"""The output catalogue: every file a run directory can hold, declared once.

Writers (runtime), the report, diff, the manifest and the test of docs/outputs.md all read this
module: a file's name, its columns in order, which columns hold user text (read back as text, and
neutralised against spreadsheet formulas when written), when it is written (and so why it can be
missing) and the section of docs/outputs.md that describes it.

Scopes: ``pool`` files are written per pool (at the run directory's root for a single-pool plan,
under ``pools/<pool>/`` for a portfolio); ``run`` files once per run directory; ``portfolio`` files
only at the root of a portfolio run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["csv", "json", "netcdf", "notebook", "html", "markdown"]
Scope = Literal["pool", "run", "portfolio"]

SUMMARY = ("mean", "sd", "median", "lower", "upper", "interval_level")
PCT = ("mean_pct", "median_pct", "lower_pct", "upper_pct")
SENSITIVITY_STATS = ("mean", "sd", "lower", "upper", "interval_width", "prob_positive", "diagnostics_pass",
                     "delta_mean", "delta_mean_sd", "delta_prob_positive", "delta_interval_width_rel", "material",
                     "material_reasons", "same_as", "checked_with_mcmc")


@dataclass(frozen=True)
class OutputFile:
    name: str
    kind: Kind
    scope: Scope
    description: str
    when: str  # when the file is written; a missing file is explained by this
    columns: tuple[str, ...] = ()
    text_columns: tuple[str, ...] = ()
    section: str = ""  # heading of docs/outputs.md that describes it

    @property
    def is_csv(self) -> bool:
        return self.kind == "csv"


ALWAYS = "always"
AFTER_POOLING = "when the pool was not blocked and its posterior could be computed"

CATALOGUE: tuple[OutputFile, ...] = (
    OutputFile("plan.json", "json", "run", "the plan executed (source locations relative to the run directory)",
               ALWAYS, section="plan.json"),
    OutputFile("pool.json", "json", "pool", "portfolio runs: this pool's section of the plan (with pool_hash)",
               "in each pool directory of a portfolio run", section="pool.json"),
    OutputFile("run_status.json", "json", "pool", "status, reportable, reasons, engine, headline", ALWAYS,
               section="run_status.json"),
    OutputFile("effect_preparation.csv", "csv", "pool", "one row per tracker row of the pool's scope", ALWAYS,
               ("row", "study_id", "study_name", "evidence_type", "metric", "decision", "reason", "reason_message",
                "transform", "transform_formula", "source_estimate", "source_unit", "source_se", "ci_lower",
                "ci_upper", "ci_level", "uncertainty_source", "uncertainty_scenario", "model_estimate", "model_se",
                "checks"),
               ("study_id", "study_name", "evidence_type", "metric", "decision", "reason", "reason_message",
                "transform", "transform_formula", "source_unit", "uncertainty_source", "uncertainty_scenario",
                "checks"), "effect_preparation.csv"),
    OutputFile("readiness.csv", "csv", "pool", "eligible, included and scenario counts and the readiness verdict",
               ALWAYS,
               ("pool", "evidence_types", "metric", "scale", "eligible", "included", "scenario", "readiness", "why",
                "min_rows_directional", "min_rows_ready", "blocking_duplicates", "possible_duplicates"),
               ("pool", "evidence_types", "metric", "scale", "readiness", "why"), "readiness.csv"),
    OutputFile("pooled_summary.csv", "csv", "pool", "posterior summaries of mu and tau", AFTER_POOLING,
               ("parameter", *SUMMARY, "prob_positive", *PCT), ("parameter",), "pooled_summary.csv"),
    OutputFile("study_effects.csv", "csv", "pool", "per pooled study: observed, SE, shrunken theta_i, weight",
               AFTER_POOLING,
               ("study_id", "study_name", "decision", "observed", "se", *SUMMARY, "prob_positive", "shrinkage",
                "weight", *PCT),
               ("study_id", "study_name", "decision"), "study_effects.csv"),
    OutputFile("future_true_effect_summary.csv", "csv", "pool",
               "the latent true effect of a comparable future study", AFTER_POOLING,
               ("parameter", *SUMMARY, "prob_positive", *PCT), ("parameter",), "future_true_effect_summary.csv"),
    OutputFile("heterogeneity.csv", "csv", "pool",
               "I², the typical study-to-study spread in the pool's unit, the next observed study", AFTER_POOLING,
               ("quantity", *SUMMARY, *PCT, "reference_se", "description"), ("quantity", "description"),
               "heterogeneity.csv"),
    OutputFile("model_comparison.csv", "csv", "pool", "Bayes factors for tau = 0 and mu = 0 (exact)",
               AFTER_POOLING,
               ("hypothesis", "bayes_factor_01", "bayes_factor_10", "log10_bf01", "evidence", "description"),
               ("hypothesis", "evidence", "description"), "model_comparison.csv"),
    OutputFile("diagnostics.csv", "csv", "pool", "per fit: sampler diagnostics and the exact cross-check",
               "when the pool was not blocked (the MCMC check ran)",
               ("fit", "parameter", "check", "value", "threshold", "pass", "mcmc", "exact", "mcse", "draws"),
               ("fit", "parameter", "check"), "diagnostics.csv"),
    OutputFile("prior_diagnostics.csv", "csv", "pool", "prior weight and prior-predictive checks", AFTER_POOLING,
               ("check", "parameter", "value", "reference", "warning", "message"),
               ("check", "parameter", "message"), "prior_diagnostics.csv"),
    OutputFile("ppc.csv", "csv", "pool", "in-sample posterior predictive check per study", AFTER_POOLING,
               ("study_id", "observed", "se", "yrep_mean", "lower", "upper", "interval_level", "tail_probability",
                "flag"),
               ("study_id",), "ppc.csv"),
    OutputFile("prior_sensitivity.csv", "csv", "pool", "the pooled result under each prior spec",
               "when sensitivity.prior is true and the pool was not blocked",
               ("fit", "spec", "mu_mean", "mu_sd", "tau_scale", "tau_family", *SENSITIVITY_STATS),
               ("fit", "spec", "tau_family", "material_reasons", "same_as"), "prior_sensitivity.csv"),
    OutputFile("uncertainty_sensitivity.csv", "csv", "pool", "the pooled result under each scenario level",
               "when sensitivity.uncertainty is true and pooled rows use scenario uncertainty",
               ("fit", "level", "scenario_se", *SENSITIVITY_STATS),
               ("fit", "level", "material_reasons", "same_as"), "uncertainty_sensitivity.csv"),
    OutputFile("influence.csv", "csv", "pool", "leave-one-out: mu with each study left out (exact)",
               "when sensitivity.leave_one_out is true and at least 3 studies are pooled",
               ("left_out", "study_name", "k", "mu_mean", "mu_sd", "mu_lower", "mu_upper", "prob_positive",
                "tau_median", "delta_mu_mean", "delta_mu_mean_sd", "delta_prob_positive",
                "delta_interval_width_rel", "mu_mean_pct", "mu_lower_pct", "mu_upper_pct", "material",
                "material_reasons", "changes_conclusion"),
               ("left_out", "study_name", "material_reasons"), "influence.csv"),
    OutputFile("cumulative.csv", "csv", "pool", "mu after each study in window_end order (exact)", AFTER_POOLING,
               ("step", "study_id", "study_name", "window_end", "k", "mu_mean", "mu_sd", "mu_lower", "mu_upper",
                "prob_positive", "tau_median", "mu_mean_pct", "mu_lower_pct", "mu_upper_pct"),
               ("study_id", "study_name", "window_end"), "cumulative.csv"),
    OutputFile("triangulation.csv", "csv", "pool",
               "triangulate-only rows of the pool's metric against the pooled prediction",
               "when the pool's scope holds triangulate-only rows of its metric and the pool was not blocked",
               ("study_id", "study_name", "evidence_type", "metric", "source_estimate", "source_unit",
                "model_estimate", "model_se", "estimate_pct", "comparable", "percentile", "verdict", "why",
                "justification"),
               ("study_id", "study_name", "evidence_type", "metric", "source_unit", "verdict", "why",
                "justification"), "triangulation.csv"),
    OutputFile("moderators.csv", "csv", "pool", "meta-regression coefficients, subgroup means, tau explained",
               "when analysis.moderators is set and the pool was not blocked",
               ("row_type", "term", "moderator", "level", *SUMMARY, "prob_positive", "bayes_factor_01", *PCT,
                "n_rows", "exploratory", "note"),
               ("row_type", "term", "moderator", "level", "note"), "moderators.csv"),
    OutputFile("posterior.nc", "netcdf", "pool", "the main fit's MCMC draws (ArviZ InferenceData)",
               "when the main fit was sampled", section="posterior.nc"),
    OutputFile("analysis_report.md", "markdown", "pool", "the report in reporting language", ALWAYS,
               section="reports"),
    OutputFile("report.ipynb", "notebook", "pool", "the executed report notebook", ALWAYS, section="reports"),
    OutputFile("report.html", "html", "pool", "the report as one offline HTML page", ALWAYS, section="reports"),
    OutputFile("portfolio.csv", "csv", "portfolio", "one row per pool: status, readiness and pooled result",
               "portfolio runs",
               ("pool", "metric", "scale", "evidence_types", "filters", "status", "exit_code", "readiness",
                "reportable", "unit", "estimate", "lower", "upper", "interval_level", "prob_positive",
                "typical_spread", "i2_median", "rows_in", "rows_scenario", "rows_out", "reused", "pool_hash",
                "reasons"),
               ("pool", "metric", "scale", "evidence_types", "filters", "status", "readiness", "unit", "pool_hash",
                "reasons"), "portfolio.csv"),
    OutputFile("portfolio_report.html", "html", "portfolio", "status table and forest plot of the pools",
               "portfolio runs", section="portfolio_report.html"),
    OutputFile("manifest.json", "json", "run", "sha256 and size of every other file", ALWAYS,
               section="manifest.json"),
)
FILES: dict[str, OutputFile] = {f.name: f for f in CATALOGUE}
CSV_FILES: tuple[str, ...] = tuple(f.name for f in CATALOGUE if f.is_csv and f.scope == "pool")
REPORT_FILES: tuple[str, ...] = ("analysis_report.md", "report.ipynb", "report.html")


def output(name: str) -> OutputFile:
    """The catalogue entry of ``name`` (KeyError names the known files)."""
    try:
        return FILES[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the output catalogue; known: {', '.join(FILES)}") from None


def columns(name: str) -> tuple[str, ...]:
    return output(name).columns


def text_columns(name: str) -> tuple[str, ...]:
    return output(name).text_columns
