"""End-to-end value cases: a config and a tracker as text, and what they mean, worked out by hand.

Each case is what an analyst writes (YAML config, tracker CSV). Beside it, written out here by hand
and not by calling the package: every tracker row's decision and its model-scale estimate and SE
(the transform's arithmetic spelled out), the model-scale priors the config states (business terms
converted by hand), the prior grid, the scenario SEs and the readiness verdict.

:class:`Reference` then computes every number a run reports from those literals alone, with the
brute-force 2-D grid over (mu, tau) of tests/test_exact_tables.py (the literal model
``N(mu; m0, sd0) · p(tau) · prod N(y_i; mu, tau² + s_i²)``, scipy densities, mu integrated
numerically): nothing from runtime/exact.py or the compiler. :func:`check_run` compares a run
directory's CSVs with it, table by table (tests/test_values_end_to_end.py runs it on a fast
exact-only execution and on a sampled one, tests/statistical/test_end_to_end_cli.py on a CLI run).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import optimize, stats

from test_exact_tables import Grid

# Standard-normal quantiles, written out: Φ⁻¹(0.95) for a 90 % interval, Φ⁻¹(0.975) for 95 %.
Z90 = 1.6448536269514722
Z95 = 1.959963984540054
# Medians of the tau families at scale 1: half-normal Φ⁻¹(0.75); exponential log 2.
HALF_NORMAL_MEDIAN = 0.6744897501960817
# 99th percentiles at scale 1: half-normal Φ⁻¹(0.995); exponential −log 0.01.
Q99 = {"half_normal": 2.5758293035489004, "exponential": math.log(100.0)}
MEDIAN = {"half_normal": HALF_NORMAL_MEDIAN, "exponential": math.log(2.0)}

CDF_TOL = 2e-5  # |grid CDF at a reported quantile − its probability| on the main grid (n = 1000)
SUB_CDF_TOL = 1e-4  # the same on the coarser grids (n = 400) of the sub-analyses
SUB_N = 400


@dataclass(frozen=True)
class Row:
    """One tracker row as a person reads it: its decision, reason and model-scale effect."""

    row: int  # spreadsheet row (header = 1)
    study_id: str
    study_name: str
    decision: str  # included / scenario / excluded
    reason: str
    transform: str
    uncertainty_source: str
    model_estimate: float | None
    model_se: float | None
    window_end: str = ""
    checks: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    scale: str
    interval: float
    rows: tuple[Row, ...]
    priors: dict[str, Any]  # mu_mean, mu_sd, tau_scale, tau_family: model scale, by hand
    tracker: str = ""
    config_body: str = ""  # the config without project/data/outputs/sampler/diagnostics lines
    prior_specs: tuple[tuple[str, dict[str, Any]], ...] = ()  # (name, priors) of the prior grid
    reference_prior: str = "main"  # the spec the prior deltas are taken against ("default" if there is one)
    scenario_se: dict[str, float] = field(default_factory=dict)
    readiness: dict[str, Any] = field(default_factory=dict)
    cumulative_order: tuple[str, ...] = ()  # study ids in window_end order, by hand
    conversion_text: str = ""  # a fragment of the implied-priors message, by hand
    project: str = ""

    def config(self, sampler: str, diagnostics: str = "") -> str:
        return (f"version: 1\nproject: {{name: {self.project or self.name}}}\ndata: {{tracker: tracker.csv}}\n"
                f"{self.config_body}sampler: {sampler}\n" + (f"diagnostics: {diagnostics}\n" if diagnostics else "")
                + "outputs: {directory: out}\n")

    def write(self, directory: Path, sampler: str, diagnostics: str = "") -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tracker.csv").write_text(self.tracker, encoding="utf-8")
        path = directory / "config.yaml"
        path.write_text(self.config(sampler, diagnostics), encoding="utf-8")
        return path

    @property
    def pooled(self) -> list[Row]:
        return [r for r in self.rows if r.decision != "excluded"]

    @property
    def y(self) -> np.ndarray:
        return np.array([r.model_estimate for r in self.pooled])

    @property
    def se(self) -> np.ndarray:
        return np.array([r.model_se for r in self.pooled])

    @property
    def log_scale(self) -> bool:
        return self.scale == "log_relative"


TRACKER_HEADER = ("study_id,study_name,evidence_type,metric,unit,estimate,standard_error,ci_lower,ci_upper,"
                  "ci_level,uncertainty_scenario,analysis_ready,market,window_end\n")

# ------------------------------------------------------------------ log_relative: geo tests of sales

LOG_TRACKER = TRACKER_HEADER + """\
g1,North TV,geo_test,sales,relative_percent,4.2,,1.1,7.4,90,,yes,north,2025-04-27
g2,South video,geo_test,sales,ratio,1.031,0.012,,,,,yes,south,2025-07-13
g3,West radio,geo_test,sales,relative_fraction,0.025,0.01,,,,,yes,west,2025-02-01
g4,East social,geo_test,sales,log_relative,0.048,0.02,,,,,yes,east,
g5,Coast search,geo_test,sales,relative_percent,40,8,,,,,yes,coast,2025-07-13
g6,Pilot,geo_test,sales,relative_fraction,0.03,,,,,medium,yes,central,2025-01-15
g7,Draft,geo_test,sales,relative_percent,2.9,1.4,,,,,no,north,2025-12-01
b1,Brand lift,brand_lift,awareness,percentage_point,2.1,0.5,,,,,yes,national,2025-06-01
m1,MMM,mmm,sales,relative_percent,6.5,1.8,,,,,yes,national,2025-12-31
"""
LOG_BODY = """\
analysis: {metric: sales, scale: log_relative, evidence_types: [geo_test]}
priors:
  expected_effect: {lower: -10, upper: 20, unit: relative_percent, level: 0.9}
  typical_spread: {value: 1.5, unit: relative_percent}
  justification: test priors
uncertainty: {scenarios: {low: 0.02, medium: 0.05, high: 0.1}}
reporting: {interval: 0.9}
sensitivity: {prior: true, uncertainty: true, leave_one_out: true}
"""
# expected_effect -10 % to +20 % with 90 %: mu's 90 % interval is [log 0.9, log 1.2].
def default_grid(priors: dict[str, float]) -> tuple[tuple[str, dict[str, float]], ...]:
    """The default prior grid around ``priors``: mu's sd and tau's scale halved and doubled."""
    return (("regularising", {**priors, "mu_sd": priors["mu_sd"] / 2, "tau_scale": priors["tau_scale"] / 2}),
            ("default", priors),
            ("weak", {**priors, "mu_sd": priors["mu_sd"] * 2, "tau_scale": priors["tau_scale"] * 2}))


LOG_PRIORS = {"mu_mean": (math.log(0.9) + math.log(1.2)) / 2,
              "mu_sd": (math.log(1.2) - math.log(0.9)) / (2 * Z90),
              # typical_spread 1.5 %: the prior median of tau is log(1.015)
              "tau_scale": math.log(1.015) / HALF_NORMAL_MEDIAN, "tau_family": "half_normal"}
LOG_CASE = Case(
    name="log", project="values_log", scale="log_relative", interval=0.9, tracker=LOG_TRACKER, config_body=LOG_BODY,
    rows=(
        # 4.2 % with 90 % CI 1.1 %–7.4 %: log(1.042), SE from the transformed CI's width
        Row(2, "g1", "North TV", "included", "included", "log1p_percent", "confidence_interval",
            math.log(1.042), (math.log(1.074) - math.log(1.011)) / (2 * Z90), "2025-04-27"),
        # ratio 1.031 ± 0.012: log(1.031), delta method d log(x)/dx = 1/x
        Row(3, "g2", "South video", "included", "included", "log_ratio", "standard_error",
            math.log(1.031), 0.012 / 1.031, "2025-07-13"),
        # fraction 0.025 ± 0.01: log(1.025), d log(1 + x)/dx = 1/(1 + x)
        Row(4, "g3", "West radio", "included", "included", "log1p_fraction", "standard_error",
            math.log(1.025), 0.01 / 1.025, "2025-02-01"),
        Row(5, "g4", "East social", "included", "included", "identity", "standard_error", 0.048, 0.02, ""),
        # 40 % ± 8 %: log(1.4), d log(1 + x/100)/dx = 1/(100 + x)
        Row(6, "g5", "Coast search", "included", "included", "log1p_percent", "standard_error",
            math.log(1.4), 8 / 140, "2025-07-13", "outlying_estimate"),
        # no uncertainty: the medium scenario's model-scale SE 0.05
        Row(7, "g6", "Pilot", "scenario", "scenario", "log1p_fraction", "scenario", math.log(1.03), 0.05,
            "2025-01-15"),
        Row(8, "g7", "Draft", "excluded", "not_analysis_ready", "log1p_percent", "standard_error",
            math.log(1.029), 1.4 / 102.9, "2025-12-01"),
        Row(9, "b1", "Brand lift", "excluded", "other_metric", "none", "none", None, None, "2025-06-01"),
        Row(10, "m1", "MMM", "excluded", "triangulate_only", "log1p_percent", "standard_error",
            math.log(1.065), 1.8 / 106.5, "2025-12-31"),
    ),
    priors=LOG_PRIORS,
    prior_specs=default_grid(LOG_PRIORS),
    reference_prior="default",
    scenario_se={"low": 0.02, "medium": 0.05, "high": 0.1},
    readiness={"pool": "geo_test/sales/log_relative", "evidence_types": "geo_test", "metric": "sales",
               "scale": "log_relative", "eligible": 6, "included": 5, "scenario": 1, "readiness": "ready",
               "why": "6 comparable rows enter the pool (>= 4); 1 of them rely on scenario uncertainty",
               "min_rows_directional": 3, "min_rows_ready": 4, "blocking_duplicates": 0,
               "possible_duplicates": 0},
    # by window_end; g2 and g5 tie on 2025-07-13 and go by tracker row; g4 (blank) last
    cumulative_order=("g6", "g3", "g1", "g2", "g5", "g4"),
    # the priors' own 95 % interval of the lift: 100 (exp(mu_mean ± 1.96 mu_sd) − 1)
    conversion_text="effect −12.4 % to +23.4 % (95 %); study-to-study spread 1.5 % typical",
)

# ------------------------------------------------------------------ percentage_point: brand lift

PP_TRACKER = TRACKER_HEADER + """\
b1,Wave 1,brand_lift,awareness,percentage_point,2.1,,0.9,3.3,95,,yes,north,2024-03-31
b2,Wave 2,brand_lift,awareness,proportion_difference,0.031,0.006,,,,,yes,south,2024-06-30
b3,Wave 3,brand_lift,awareness,percentage_point,0.4,0.7,,,,,yes,east,2024-09-30
b4,Wave 4,brand_lift,awareness,percentage_point,1.6,0.5,,,,,yes,west,2023-12-31
b5,Wave 5,brand_lift,awareness,proportion_difference,0.012,,0.002,0.022,90,,yes,coast,2024-06-30
b6,Wave 6,brand_lift,awareness,percentage_point,-0.8,0.9,,,,,yes,central,
x1,Geo awareness,geo_test,awareness,percentage_point,1.0,0.4,,,,,yes,north,2024-01-31
x2,Relative awareness,brand_lift,awareness,relative_percent,5.0,1.0,,,,,yes,south,2024-02-29
"""
PP_BODY = """\
analysis: {metric: awareness, scale: percentage_point, evidence_types: [brand_lift]}
priors: {mu_mean: 1.0, mu_sd: 5.0, tau_scale: 1.5, tau_family: exponential, justification: test priors}
reporting: {interval: 0.95}
sensitivity:
  prior: true
  uncertainty: true
  leave_one_out: true
  prior_specs: [{name: sceptical, mu_mean: 0.0, mu_sd: 1.0}, {name: wide_spread, tau_scale: 5.0}]
"""
PP_PRIORS = {"mu_mean": 1.0, "mu_sd": 5.0, "tau_scale": 1.5, "tau_family": "exponential"}
PP_CASE = Case(
    name="pp", project="values_pp", scale="percentage_point", interval=0.95, tracker=PP_TRACKER, config_body=PP_BODY,
    rows=(
        # 2.1 pp with 95 % CI 0.9–3.3: the identity, SE = width / (2 · 1.96)
        Row(2, "b1", "Wave 1", "included", "included", "identity", "confidence_interval", 2.1, 2.4 / (2 * Z95),
            "2024-03-31"),
        # a proportion difference 0.031 ± 0.006 is 3.1 ± 0.6 percentage points
        Row(3, "b2", "Wave 2", "included", "included", "times_100", "standard_error", 3.1, 0.6, "2024-06-30"),
        Row(4, "b3", "Wave 3", "included", "included", "identity", "standard_error", 0.4, 0.7, "2024-09-30"),
        Row(5, "b4", "Wave 4", "included", "included", "identity", "standard_error", 1.6, 0.5, "2023-12-31"),
        # 0.012 with 90 % CI 0.002–0.022: 1.2 pp, SE = (2.2 − 0.2) / (2 · 1.645)
        Row(6, "b5", "Wave 5", "included", "included", "times_100", "confidence_interval", 1.2, 2.0 / (2 * Z90),
            "2024-06-30"),
        Row(7, "b6", "Wave 6", "included", "included", "identity", "standard_error", -0.8, 0.9, ""),
        Row(8, "x1", "Geo awareness", "excluded", "evidence_type_not_in_pool", "identity", "standard_error", 1.0,
            0.4, "2024-01-31"),
        Row(9, "x2", "Relative awareness", "excluded", "incompatible_unit", "none", "none", None, None,
            "2024-02-29"),
    ),
    priors=PP_PRIORS,
    prior_specs=(("sceptical", {**PP_PRIORS, "mu_mean": 0.0, "mu_sd": 1.0}),
                 ("wide_spread", {**PP_PRIORS, "tau_scale": 5.0})),
    reference_prior="main",  # no spec is called "default": the deltas are against the main fit
    scenario_se={"low": 0.2, "medium": 0.5, "high": 1.0},  # the percentage_point defaults
    readiness={"pool": "brand_lift/awareness/percentage_point", "evidence_types": "brand_lift",
               "metric": "awareness", "scale": "percentage_point", "eligible": 6, "included": 6, "scenario": 0,
               "readiness": "ready", "why": "6 comparable rows enter the pool (>= 4)", "min_rows_directional": 3,
               "min_rows_ready": 4, "blocking_duplicates": 0, "possible_duplicates": 0},
    # b4 (2023-12-31), b1, then b2 and b5 tie on 2024-06-30 (tracker rows 3, 6), b3, b6 (blank) last
    cumulative_order=("b4", "b1", "b2", "b5", "b3", "b6"),
    # mu ~ N(1, 5²): 1 ± 1.96 · 5 = −8.8 to +10.8 pp; tau's prior median 1.5 log 2 = 1.04 pp
    conversion_text="effect −8.8 pp to +10.8 pp (95 %); study-to-study spread 1.04 pp typical",
)

CASES = {c.name: c for c in (LOG_CASE, PP_CASE)}

# The materiality rule's defaults (settings.Materiality), written out.
MEAN_SHIFT_SD, PROB_SHIFT, WIDTH_CHANGE = 0.5, 0.10, 0.25


# ------------------------------------------------------------------ the reference


def lift(x: float) -> float:
    return 100.0 * math.expm1(x)


@dataclass
class MuStats:
    """mu's summary (and tau's median) of one analysis, from its own grid."""

    grid: Any
    mean: float
    sd: float
    lower: float
    upper: float
    prob_positive: float
    tau_median: float
    mean_pct: float
    k: int

    @property
    def width(self) -> float:
        return self.upper - self.lower


def _quantile(cdf, q: float, lo: float, hi: float) -> float:
    return float(optimize.brentq(lambda x: cdf(x) - q, lo, hi, xtol=1e-13))


@dataclass
class Reference:
    """Every reported number of ``case``, from the literals of the case and brute-force grids."""

    case: Case
    _subsets: dict[tuple, MuStats] = field(default_factory=dict)

    @cached_property
    def grid(self) -> Any:
        p = self.case.priors
        return Grid(self.case.y, self.case.se, p["mu_mean"], p["mu_sd"], p["tau_scale"], p["tau_family"], n=1000)

    def mu_stats(self, y: np.ndarray, se: np.ndarray, priors: dict[str, Any], n: int = SUB_N) -> MuStats:
        key = (tuple(y), tuple(se), tuple(sorted(priors.items())), n)
        if key not in self._subsets:
            g = Grid(y, se, priors["mu_mean"], priors["mu_sd"], priors["tau_scale"], priors["tau_family"], n=n)
            m, sd = g.mean_sd(g.MU)
            a = (1 - self.case.interval) / 2
            lo, hi = (_quantile(g.mu_cdf, q, g.mu_edges[0], g.mu_edges[-1]) for q in (a, 1 - a))
            tau_median = _quantile(g.tau_cdf, 0.5, 0.0, 1e3 * g.c)
            self._subsets[key] = MuStats(g, m, sd, lo, hi, 1 - g.mu_cdf(0.0), tau_median,
                                         g.lift(lambda mu, tau: mu), len(y))
        return self._subsets[key]

    @cached_property
    def full(self) -> MuStats:
        return self.mu_stats(self.case.y, self.case.se, self.case.priors, n=1000)

    def subsets(self) -> list[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
        """Every (y, se, priors) a sub-analysis of the case runs on: the prior specs, the scenario
        levels, each study left out, each cumulative step."""
        c = self.case
        out = [(c.y, c.se, priors) for _, priors in c.prior_specs] + [(c.y, c.se, c.priors)]
        if any(r.decision == "scenario" for r in c.pooled):
            for level_se in c.scenario_se.values():
                se = np.array([level_se if r.decision == "scenario" else r.model_se for r in c.pooled])
                out.append((c.y, se, c.priors))
        for i in range(len(c.pooled)):
            keep = np.arange(len(c.pooled)) != i
            out.append((c.y[keep], c.se[keep], c.priors))
        by_id = {r.study_id: i for i, r in enumerate(c.pooled)}
        for step in range(1, len(c.cumulative_order) + 1):
            idx = [by_id[s] for s in c.cumulative_order[:step]]
            out.append((c.y[idx], c.se[idx], c.priors))
        return out

    def warm(self) -> Reference:
        """Build every grid the checks use now (see :func:`reference`)."""
        assert self.grid is not None and self.full is not None
        for y, se, priors in self.subsets():
            self.mu_stats(y, se, priors)
        return self

    @cached_property
    def typical_se2(self) -> float:
        """Higgins & Thompson's typical within-study variance (k − 1) Σw / ((Σw)² − Σw²), w = 1/s²."""
        w = 1 / self.case.se**2
        return float((w.size - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum()))


_REFERENCES: dict[str, Reference] = {}


def reference(name: str) -> Reference:
    """The reference of the case ``name``, shared by every test of the process.

    Under ``make mutation`` (tools/mutation.py sets MARKETBAYESMETA_WARM_REFERENCES) every grid is
    built when this module is imported: mutmut imports the test modules once in its fork server, and
    each mutant's test run, a fork of it, inherits the grids instead of building them again."""
    if name not in _REFERENCES:
        _REFERENCES[name] = Reference(CASES[name])
    return _REFERENCES[name]


if os.environ.get("MARKETBAYESMETA_WARM_REFERENCES"):
    for _name in CASES:
        reference(_name).warm()


# ------------------------------------------------------------------ reading a run directory


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def num(text: str) -> float | None:
    return None if text == "" else float(text)


def flag(text: str) -> bool:
    assert text in ("true", "false"), text
    return text == "true"


def approx(value: str, expected: float, *, rel: float = 0.0, abs_: float = 0.0) -> None:
    """A CSV cell (``%.10g``) against an expected number."""
    got = float(value)
    assert got == pytest.approx(expected, rel=rel, abs=abs_), (got, expected)


def assert_at(cdf, value: str, q: float, tol: float = CDF_TOL) -> None:
    """A reported quantile sits at probability ``q`` of the reference CDF."""
    assert abs(cdf(float(value)) - q) < tol, (value, cdf(float(value)), q)


# ------------------------------------------------------------------ the checks, table by table


def check_effect_preparation(run: Path, ref: Reference) -> None:
    rows = read_csv(run / "effect_preparation.csv")
    assert [r["study_id"] for r in rows] == [r.study_id for r in ref.case.rows]
    for got, want in zip(rows, ref.case.rows, strict=True):
        assert int(got["row"]) == want.row and got["study_name"] == want.study_name
        assert (got["decision"], got["reason"], got["transform"], got["uncertainty_source"]) == (
            want.decision, want.reason, want.transform, want.uncertainty_source), want.study_id
        assert got["checks"] == want.checks, want.study_id
        if want.model_estimate is None:
            assert got["model_estimate"] == got["model_se"] == "", want.study_id
            continue
        approx(got["model_estimate"], want.model_estimate, rel=1e-9)
        approx(got["model_se"], want.model_se, rel=1e-9)


def check_readiness(run: Path, ref: Reference) -> None:
    (row,) = read_csv(run / "readiness.csv")
    want = {k: str(v) for k, v in ref.case.readiness.items()}
    assert row == want


def _mu_tau(run: Path) -> tuple[dict[str, str], dict[str, str]]:
    rows = {r["parameter"]: r for r in read_csv(run / "pooled_summary.csv")}
    assert list(rows) == ["mu", "tau"]
    return rows["mu"], rows["tau"]


def check_pooled_summary(run: Path, ref: Reference) -> None:
    g, iv = ref.grid, ref.case.interval
    a = (1 - iv) / 2
    mu, tau = _mu_tau(run)
    m, sd = g.mean_sd(g.MU)
    approx(mu["mean"], m, abs_=1e-5 * sd)
    approx(mu["sd"], sd, rel=1e-4)
    for key, q in (("lower", a), ("median", 0.5), ("upper", 1 - a)):
        assert_at(g.mu_cdf, mu[key], q)
    approx(mu["prob_positive"], 1 - g.mu_cdf(0.0), abs_=CDF_TOL)
    t_m, t_sd = g.mean_sd(g.TAU)
    approx(tau["mean"], t_m, rel=1e-4)
    approx(tau["sd"], t_sd, rel=2e-3)
    for key, q in (("lower", a), ("median", 0.5), ("upper", 1 - a)):
        assert_at(g.tau_cdf, tau[key], q)
    assert float(mu["interval_level"]) == float(tau["interval_level"]) == iv
    assert tau["prob_positive"] == "" and all(tau[c] == "" for c in ("mean_pct", "median_pct", "lower_pct",
                                                                     "upper_pct"))
    if not ref.case.log_scale:
        assert all(mu[c] == "" for c in ("mean_pct", "median_pct", "lower_pct", "upper_pct"))
        return
    approx(mu["mean_pct"], g.lift(lambda mu_, tau_: mu_), rel=1e-5)  # E[100 (exp(mu) − 1)]
    for key in ("median", "lower", "upper"):
        approx(mu[f"{key}_pct"], lift(float(mu[key])), rel=1e-9)


def check_future(run: Path, ref: Reference) -> None:
    g, iv = ref.grid, ref.case.interval
    a = (1 - iv) / 2
    (row,) = read_csv(run / "future_true_effect_summary.csv")
    assert row["parameter"] == "future_true_effect" and float(row["interval_level"]) == iv
    m, sd = g.mean_sd(g.MU, g.TAU**2)  # theta_new | mu, tau ~ N(mu, tau²)
    approx(row["mean"], m, abs_=1e-5 * sd)
    approx(row["sd"], sd, rel=2e-3)
    cdf = lambda x: g.normal_cdf(x, g.MU, g.TAU**2)  # noqa: E731
    for key, q in (("lower", a), ("median", 0.5), ("upper", 1 - a)):
        assert_at(cdf, row[key], q)
    approx(row["prob_positive"], 1 - cdf(0.0), abs_=CDF_TOL)
    if ref.case.log_scale:  # E[exp(theta_new)] = E[exp(mu + tau²/2)] (finite: half-normal, scale < 1)
        approx(row["mean_pct"], g.lift(lambda mu_, tau_: mu_ + tau_**2 / 2), rel=1e-5)
        approx(row["upper_pct"], lift(float(row["upper"])), rel=1e-9)
    else:
        assert row["mean_pct"] == row["upper_pct"] == ""


def check_study_effects(run: Path, ref: Reference) -> None:
    g, case, iv = ref.grid, ref.case, ref.case.interval
    a = (1 - iv) / 2
    rows = read_csv(run / "study_effects.csv")
    assert [r["study_id"] for r in rows] == [r.study_id for r in case.pooled]
    prec = 1 / (g.TAU[None, :] ** 2 + case.se[:, None] ** 2)  # 1/(tau² + s_i²) per study and cell
    total = 1 / case.priors["mu_sd"] ** 2 + prec.sum(axis=0)
    weights = []
    for i, (got, want) in enumerate(zip(rows, case.pooled, strict=True)):
        assert (got["study_name"], got["decision"]) == (want.study_name, want.decision)
        approx(got["observed"], want.model_estimate, rel=1e-9)
        approx(got["se"], want.model_se, rel=1e-9)
        # theta_i | mu, tau, y_i ~ N((y_i/s² + mu/tau²) / P, 1/P), P = 1/s² + 1/tau²
        s2 = want.model_se**2
        p_i = 1 / s2 + 1 / g.TAU**2
        mean, var, slope = (want.model_estimate / s2 + g.MU / g.TAU**2) / p_i, 1 / p_i, 1 / g.TAU**2 / p_i
        m, sd = g.mean_sd(mean, var)
        approx(got["mean"], m, abs_=1e-5 * sd)
        approx(got["sd"], sd, rel=1e-4)
        cdf = lambda x, mean=mean, var=var, slope=slope: g.normal_cdf(x, mean, var, slope)  # noqa: E731
        for key, q in (("lower", a), ("median", 0.5), ("upper", 1 - a)):
            assert_at(cdf, got[key], q)
        approx(got["prob_positive"], 1 - cdf(0.0), abs_=CDF_TOL)
        approx(got["shrinkage"], g.E(s2 / (s2 + g.TAU**2)), rel=1e-5)  # E[s²/(s² + tau²) | y]
        approx(got["weight"], g.E(prec[i] / total), rel=1e-5)  # the study's share of E[mu | y]
        weights.append(float(got["weight"]))
        if case.log_scale:
            approx(got["mean_pct"], g.lift(mean + var / 2), rel=1e-5)
            approx(got["lower_pct"], lift(float(got["lower"])), rel=1e-9)
        else:
            assert got["mean_pct"] == got["lower_pct"] == ""
    # the prior's share completes the shares to 1, and the shares reproduce E[mu | y]
    prior_share = g.E(1 / case.priors["mu_sd"] ** 2 / total)
    assert sum(weights) + prior_share == pytest.approx(1.0, abs=1e-7)
    mu_mean = float(_mu_tau(run)[0]["mean"])
    reproduced = float(np.dot(weights, case.y)) + prior_share * case.priors["mu_mean"]
    assert reproduced == pytest.approx(mu_mean, abs=1e-5 * ref.full.sd)


def check_ppc(run: Path, ref: Reference) -> list[str]:
    """Returns the flagged study ids."""
    g, case, iv = ref.grid, ref.case, ref.case.interval
    a = (1 - iv) / 2
    rows = read_csv(run / "ppc.csv")
    assert [r["study_id"] for r in rows] == [r.study_id for r in case.pooled]
    flagged = []
    for got, want in zip(rows, case.pooled, strict=True):
        approx(got["observed"], want.model_estimate, rel=1e-9)
        approx(got["se"], want.model_se, rel=1e-9)
        assert float(got["interval_level"]) == iv
        s2 = want.model_se**2
        p_i = 1 / s2 + 1 / g.TAU**2
        mean, var, slope = (want.model_estimate / s2 + g.MU / g.TAU**2) / p_i, 1 / p_i + s2, 1 / g.TAU**2 / p_i
        rep_mean, rep_sd = g.mean_sd(mean, var)  # y_rep_i | mu, tau ~ N(E theta_i, Var theta_i + s_i²)
        approx(got["yrep_mean"], rep_mean, abs_=1e-5 * rep_sd)
        cdf = lambda x, mean=mean, var=var, slope=slope: g.normal_cdf(x, mean, var, slope)  # noqa: E731
        assert_at(cdf, got["lower"], a)
        assert_at(cdf, got["upper"], 1 - a)
        below = cdf(want.model_estimate)  # P(y_rep <= y)
        approx(got["tail_probability"], min(1.0, 2 * min(below, 1 - below)), abs_=2 * CDF_TOL)
        outside = below < a or below > 1 - a
        assert flag(got["flag"]) == outside, want.study_id
        if outside:
            flagged.append(want.study_id)
    return flagged


def check_heterogeneity(run: Path, ref: Reference) -> None:
    g, case, iv = ref.grid, ref.case, ref.case.interval
    a = (1 - iv) / 2
    rows = {r["quantity"]: r for r in read_csv(run / "heterogeneity.csv")}
    assert list(rows) == ["i2", "typical_spread", "next_observed"]
    s2 = ref.typical_se2
    i2, spread, nxt = rows["i2"], rows["typical_spread"], rows["next_observed"]
    approx(i2["reference_se"], math.sqrt(s2), rel=1e-9)
    approx(nxt["reference_se"], math.sqrt(s2), rel=1e-9)
    assert spread["reference_se"] == ""
    m, sd = g.mean_sd(g.TAU**2 / (g.TAU**2 + s2))  # I² = tau² / (tau² + s̃²)
    approx(i2["mean"], m, abs_=1e-5 * sd)
    approx(i2["sd"], sd, rel=1e-4)
    for key, q in (("lower", a), ("median", 0.5), ("upper", 1 - a)):  # I² increasing in tau
        assert_at(lambda x: g.tau_cdf(math.sqrt(s2 * x / (1 - x))), i2[key], q)
    mu, tau = _mu_tau(run)
    assert all(spread[k] == tau[k] for k in ("mean", "sd", "median", "lower", "upper"))
    n_m, n_sd = g.mean_sd(g.MU, g.TAU**2 + s2)  # next observed | mu, tau ~ N(mu, tau² + s̃²)
    approx(nxt["mean"], n_m, abs_=1e-5 * n_sd)
    approx(nxt["sd"], n_sd, rel=2e-3)
    for key, q in (("lower", a), ("median", 0.5), ("upper", 1 - a)):
        assert_at(lambda x: g.normal_cdf(x, g.MU, g.TAU**2 + s2), nxt[key], q)
    if not case.log_scale:
        assert all(r[c] == "" for r in rows.values() for c in ("mean_pct", "median_pct", "lower_pct", "upper_pct"))
        return
    approx(spread["mean_pct"], g.lift(lambda mu_, tau_: tau_), rel=1e-5)  # E[100 (exp(tau) − 1)]
    approx(spread["median_pct"], lift(float(tau["median"])), rel=1e-9)
    approx(nxt["mean_pct"], g.lift(lambda mu_, tau_: mu_ + (tau_**2 + s2) / 2), rel=1e-5)
    assert all(i2[c] == "" for c in ("mean_pct", "median_pct", "lower_pct", "upper_pct"))


def evidence_words(log10_bf01: float, hypothesis: str) -> str:
    """Kass & Raftery (1995): BF 1–3 bare mention, 3–20 positive, 20–150 strong, > 150 very strong."""
    toward = "for" if log10_bf01 >= 0 else "against"
    bf = 10 ** abs(log10_bf01)
    for bound, words in ((150, "very strong evidence"), (20, "strong evidence"), (3, "positive evidence")):
        if bf >= bound:
            return f"{words} {toward} {hypothesis}"
    return f"evidence {toward} {hypothesis} not worth more than a bare mention"


def check_model_comparison(run: Path, ref: Reference) -> None:
    g = ref.grid
    rows = {r["hypothesis"]: r for r in read_csv(run / "model_comparison.csv")}
    assert list(rows) == ["tau = 0", "mu = 0"]
    for hyp, log_h0 in (("tau = 0", g.log_marginal_tau0()), ("mu = 0", g.log_marginal_mu0())):
        row = rows[hyp]
        log_bf01 = log_h0 - g.log_evidence  # p(y | H0) / p(y), both integrated on grids
        assert math.log(float(row["bayes_factor_01"])) == pytest.approx(log_bf01, abs=5e-5)
        assert math.log(float(row["bayes_factor_10"])) == pytest.approx(-log_bf01, abs=5e-5)
        approx(row["log10_bf01"], log_bf01 / math.log(10), abs_=5e-5)
        assert row["evidence"] == evidence_words(log_bf01 / math.log(10), hyp)


def _material(stats_: MuStats, ref_: MuStats) -> tuple[float, float, float, float, list[str]]:
    """The deltas against the reference fit and the reasons they are material (the default rule)."""
    d_mean = stats_.mean - ref_.mean
    d_sd = d_mean / ref_.sd
    d_pp = stats_.prob_positive - ref_.prob_positive
    d_w = stats_.width / ref_.width - 1
    reasons = []
    if abs(d_sd) > MEAN_SHIFT_SD:
        reasons.append("mean moves")
    if abs(d_pp) > PROB_SHIFT:
        reasons.append("P(mu>0) moves")
    if (stats_.prob_positive - 0.5) * (ref_.prob_positive - 0.5) < 0:
        reasons.append("P(mu>0) crosses 0.5")
    if abs(d_w) > WIDTH_CHANGE:
        reasons.append("interval width changes")
    return d_mean, d_sd, d_pp, d_w, reasons


def _check_mu_row(got: dict[str, str], want: MuStats, prefix: str, tol: float = SUB_CDF_TOL) -> None:
    g = want.grid
    approx(got[f"{prefix}mean"], want.mean, abs_=1e-5 * want.sd)
    approx(got[f"{prefix}sd"], want.sd, rel=1e-4)
    assert_at(g.mu_cdf, got[f"{prefix}lower"], g.mu_cdf(want.lower), tol)
    assert_at(g.mu_cdf, got[f"{prefix}upper"], g.mu_cdf(want.upper), tol)
    approx(got["prob_positive"], want.prob_positive, abs_=tol)


def _check_deltas(got: dict[str, str], stats_: MuStats, ref_: MuStats, prefix: str = "") -> list[str]:
    d_mean, d_sd, d_pp, d_w, reasons = _material(stats_, ref_)
    approx(got[f"delta_{prefix}mean"], d_mean, abs_=2e-4 * ref_.sd)
    approx(got[f"delta_{prefix}mean_sd"], d_sd, abs_=2e-4)
    approx(got["delta_prob_positive"], d_pp, abs_=2e-4)
    approx(got["delta_interval_width_rel"], d_w, abs_=1e-3)
    assert flag(got["material"]) == bool(reasons)
    said = [part for part in got["material_reasons"].split("; ") if part]
    assert [next(r for r in reasons if part.startswith(r)) for part in said] == reasons, (said, reasons)
    return reasons


def check_prior_sensitivity(run: Path, ref: Reference, sampled: bool) -> list[str]:
    """Returns the names of the specs whose dependence is material."""
    case = ref.case
    rows = read_csv(run / "prior_sensitivity.csv")
    assert [r["fit"] for r in rows] == [f"prior:{name}" for name, _ in case.prior_specs]
    ref_priors = case.priors if case.reference_prior == "main" else dict(case.prior_specs)[case.reference_prior]
    base = ref.mu_stats(case.y, case.se, ref_priors)
    material = []
    for got, (name, priors) in zip(rows, case.prior_specs, strict=True):
        assert got["spec"] == name and got["tau_family"] == priors["tau_family"]
        for key in ("mu_mean", "mu_sd", "tau_scale"):
            approx(got[key], priors[key], rel=1e-9)
        want = ref.mu_stats(case.y, case.se, priors)
        _check_mu_row(got, want, "")
        approx(got["interval_width"], float(got["upper"]) - float(got["lower"]), rel=1e-8)
        if _check_deltas(got, want, base):
            material.append(name)
        same = priors == case.priors
        assert got["same_as"] == ("main" if same else "")
        assert flag(got["checked_with_mcmc"]) == (sampled and same)
        assert (got["diagnostics_pass"] != "") == (sampled and same)
    return material


def check_uncertainty_sensitivity(run: Path, ref: Reference, sampled: bool) -> list[str]:
    case = ref.case
    path = run / "uncertainty_sensitivity.csv"
    scenario = [r for r in case.pooled if r.decision == "scenario"]
    if not scenario:
        assert not path.exists()
        return []
    rows = read_csv(path)
    assert [r["fit"] for r in rows] == ["uncertainty:low", "uncertainty:medium", "uncertainty:high"]
    levels = {r.study_id: next(lv for lv, se in case.scenario_se.items() if se == r.model_se) for r in scenario}
    material = []
    for got, (level, scenario_se) in zip(rows, case.scenario_se.items(), strict=True):
        assert got["level"] == level
        approx(got["scenario_se"], scenario_se, rel=1e-12)
        se = np.array([scenario_se if r.decision == "scenario" else r.model_se for r in case.pooled])
        want = ref.mu_stats(case.y, se, case.priors)
        _check_mu_row(got, want, "")
        if _check_deltas(got, want, ref.mu_stats(case.y, case.se, case.priors)):
            material.append(level)
        same = set(levels.values()) == {level}
        assert got["same_as"] == ("main" if same else "")
        assert flag(got["checked_with_mcmc"]) == (sampled and same)
    return material


def check_influence(run: Path, ref: Reference) -> list[str]:
    """Returns the left-out studies that change the conclusion."""
    case = ref.case
    rows = read_csv(run / "influence.csv")
    assert [r["left_out"] for r in rows] == [r.study_id for r in case.pooled]
    full = ref.mu_stats(case.y, case.se, case.priors)
    decisive = []
    for i, (got, want_row) in enumerate(zip(rows, case.pooled, strict=True)):
        keep = np.arange(len(case.pooled)) != i
        want = ref.mu_stats(case.y[keep], case.se[keep], case.priors)
        assert got["study_name"] == want_row.study_name and int(got["k"]) == want.k == len(case.pooled) - 1
        _check_mu_row(got, want, "mu_")
        approx(got["tau_median"], want.tau_median, rel=1e-3)
        _check_deltas(got, want, full, "mu_")
        _check_pct(got, want, case)
        excludes = [s.lower > 0 or s.upper < 0 for s in (full, want)]
        crosses = (full.prob_positive - 0.5) * (want.prob_positive - 0.5) < 0
        changes = excludes[0] != excludes[1] or crosses
        assert flag(got["changes_conclusion"]) == changes
        if changes:
            decisive.append(want_row.study_id)
    return decisive


def _check_pct(got: dict[str, str], want: MuStats, case: Case) -> None:
    if case.log_scale:
        approx(got["mu_mean_pct"], want.mean_pct, rel=1e-4)
        approx(got["mu_lower_pct"], lift(float(got["mu_lower"])), rel=1e-9)
        approx(got["mu_upper_pct"], lift(float(got["mu_upper"])), rel=1e-9)
    else:
        assert got["mu_mean_pct"] == got["mu_lower_pct"] == got["mu_upper_pct"] == ""


def check_cumulative(run: Path, ref: Reference) -> None:
    case = ref.case
    rows = read_csv(run / "cumulative.csv")
    assert [r["study_id"] for r in rows] == list(case.cumulative_order)
    by_id = {r.study_id: i for i, r in enumerate(case.pooled)}
    for step, got in enumerate(rows, start=1):
        idx = [by_id[s] for s in case.cumulative_order[:step]]
        want = ref.mu_stats(case.y[idx], case.se[idx], case.priors)
        row = case.pooled[idx[-1]]
        assert int(got["step"]) == step and int(got["k"]) == step
        assert (got["study_name"], got["window_end"]) == (row.study_name, row.window_end)
        _check_mu_row(got, want, "mu_")
        approx(got["tau_median"], want.tau_median, rel=1e-3)
        _check_pct(got, want, case)
    mu, _ = _mu_tau(run)  # the last step is the whole pool
    assert rows[-1]["mu_mean"] == mu["mean"] and rows[-1]["mu_upper"] == mu["upper"]


def check_prior_diagnostics(run: Path, ref: Reference) -> None:
    case, p = ref.case, ref.case.priors
    rows = {r["check"]: r for r in read_csv(run / "prior_diagnostics.csv")}
    assert list(rows) == ["mu_prior_precision", "mu_prior_weight", "tau_prior_covers_spread", "tau_prior_scale",
                          "prior_predictive_spread", "priors_in_business_terms"]
    prior_prec, data_prec = 1 / p["mu_sd"] ** 2, float((1 / case.se**2).sum())
    approx(rows["mu_prior_precision"]["value"], prior_prec, rel=1e-9)
    approx(rows["mu_prior_precision"]["reference"], data_prec, rel=1e-9)
    weight = prior_prec / (prior_prec + data_prec)  # the prior's share of the fixed-effect precision
    approx(rows["mu_prior_weight"]["value"], weight, rel=1e-9)
    assert flag(rows["mu_prior_weight"]["warning"]) == (weight > 0.10)
    assert f"{100 * weight:.2g} %" in rows["mu_prior_weight"]["message"]
    spread = float(np.std(case.y, ddof=1))
    # Monte Carlo quantiles of 20,000 prior draws: within a few per cent of the family's own
    q99, q50 = Q99[p["tau_family"]] * p["tau_scale"], MEDIAN[p["tau_family"]] * p["tau_scale"]
    covers, scale = rows["tau_prior_covers_spread"], rows["tau_prior_scale"]
    approx(covers["value"], q99, rel=0.05)
    approx(covers["reference"], spread, rel=1e-9)
    assert flag(covers["warning"]) == (spread > float(covers["value"]))
    approx(scale["value"], q50, rel=0.03)
    approx(scale["reference"], max(spread, float(case.se.max())), rel=1e-9)
    assert flag(scale["warning"]) == (float(scale["value"]) > 10 * float(scale["reference"]))
    # P(sd of prior-predictive estimates >= observed sd), by our own simulation
    rng = np.random.default_rng(5)
    n = 200_000
    tau = (stats.halfnorm(scale=p["tau_scale"]) if p["tau_family"] == "half_normal"
           else stats.expon(scale=p["tau_scale"])).rvs(n, random_state=rng)
    mu = rng.normal(p["mu_mean"], p["mu_sd"], n)
    y_rep = rng.normal(mu[:, None] + tau[:, None] * rng.standard_normal((n, case.y.size)), case.se)
    p_spread = float((y_rep.std(axis=1, ddof=1) >= spread).mean())
    pred = rows["prior_predictive_spread"]
    approx(pred["value"], p_spread, abs_=4 * math.sqrt(max(p_spread * (1 - p_spread), 1e-4) / 20_000) + 1e-3)
    approx(pred["reference"], spread, rel=1e-9)
    assert flag(pred["warning"]) == (not 0.01 <= float(pred["value"]) <= 0.99)
    business = rows["priors_in_business_terms"]
    assert case.conversion_text in business["message"] and not flag(business["warning"])
    assert (business["parameter"], business["value"], business["reference"]) == ("mu, tau", "", "")


def check_headline(run: Path, ref: Reference) -> dict[str, Any]:
    status = json.loads((run / "run_status.json").read_text(encoding="utf-8"))
    h = status["headline"]
    mu, tau = _mu_tau(run)
    het = {r["quantity"]: r for r in read_csv(run / "heterogeneity.csv")}
    (future,) = read_csv(run / "future_true_effect_summary.csv")
    assert status["engine"] == "exact" and h["scale"] == ref.case.scale and h["interval_level"] == ref.case.interval
    for key in ("mean", "sd", "median", "lower", "upper"):
        assert h[f"mu_{key}"] == pytest.approx(float(mu[key]), rel=1e-9)
    for key in ("mean", "median", "lower", "upper"):
        assert h[f"tau_{key}"] == pytest.approx(float(tau[key]), rel=1e-9)
    assert h["prob_positive"] == pytest.approx(float(mu["prob_positive"]), rel=1e-9)
    assert h["future_lower"] == pytest.approx(float(future["lower"]), rel=1e-9)
    assert h["i2_median"] == pytest.approx(float(het["i2"]["median"]), rel=1e-9)
    spread_key = "median_pct" if ref.case.log_scale else "median"
    assert h["typical_spread"] == pytest.approx(float(het["typical_spread"][spread_key]), rel=1e-9)
    assert h["next_observed_upper"] == pytest.approx(float(het["next_observed"]["upper"]), rel=1e-9)
    if ref.case.log_scale:
        assert h["mu_mean_pct"] == pytest.approx(float(mu["mean_pct"]), rel=1e-9)
    return status


def check_diagnostics(run: Path, ref: Reference, thresholds: dict[str, float]) -> list[dict[str, str]]:
    """diagnostics.csv of a run whose main fit was sampled: the exact side of the cross-check is the
    reference's posterior (mean and 2.5/97.5 % quantiles of mu and tau), the MCMC side the draws in
    posterior.nc, z = (MCMC − exact) / MCSE; every pass flag is its value against its threshold."""
    import arviz as az

    g = ref.grid
    rows = read_csv(run / "diagnostics.csv")
    assert {r["fit"] for r in rows} == {"main"}  # sampler.check: main
    idata = az.from_netcdf(run / "posterior.nc")
    draws = {int(r["draws"]) for r in rows}
    assert draws == {idata.posterior.sizes["draw"]}
    by_key = {(r["parameter"], r["check"]): r for r in rows}
    assert len(by_key) == len(rows) == 15  # mu, tau: r_hat, ess_bulk, ess_tail, 3 exact_z; divergences, bfmi; all
    for p, cdf, mean in (("mu", g.mu_cdf, g.E(g.MU)), ("tau", g.tau_cdf, g.E(g.TAU))):
        x = idata.posterior[p].values
        z_mean = by_key[p, "exact_z_mean"]
        approx(z_mean["exact"], mean, rel=1e-4)
        approx(z_mean["mcmc"], float(x.mean()), rel=1e-9)
        for check_name, q in (("exact_z_q025", 0.025), ("exact_z_q975", 0.975)):
            row = by_key[p, check_name]
            assert abs(cdf(float(row["exact"])) - q) < CDF_TOL
            approx(row["mcmc"], float(np.quantile(x.reshape(-1), q)), rel=1e-9)
        for check_name in ("exact_z_mean", "exact_z_q025", "exact_z_q975"):
            row = by_key[p, check_name]
            approx(row["value"], (float(row["mcmc"]) - float(row["exact"])) / float(row["mcse"]), rel=1e-6)
            assert float(row["threshold"]) == thresholds["max_exact_z"]
            assert flag(row["pass"]) == (abs(float(row["value"])) <= thresholds["max_exact_z"])
        r_hat = by_key[p, "r_hat"]
        assert float(r_hat["threshold"]) == thresholds["max_rhat"]
        assert flag(r_hat["pass"]) == (float(r_hat["value"]) <= thresholds["max_rhat"])
        for ess in ("ess_bulk", "ess_tail"):
            row = by_key[p, ess]
            assert float(row["threshold"]) == thresholds[f"min_{ess}"]
            assert flag(row["pass"]) == (float(row["value"]) >= thresholds[f"min_{ess}"])
    div = by_key["(sampler)", "divergences"]
    assert float(div["value"]) == float(idata.sample_stats["diverging"].values.sum())
    assert flag(div["pass"]) == (float(div["value"]) <= thresholds["max_divergences"])
    bfmi = by_key["(sampler)", "bfmi"]
    assert flag(bfmi["pass"]) == (float(bfmi["value"]) >= thresholds["min_bfmi"])
    fit_row = by_key["(fit)", "all"]
    assert flag(fit_row["pass"]) == all(flag(r["pass"]) for r in rows if r is not fit_row)
    # posterior.nc holds the plan's data and priors of the main fit
    np.testing.assert_allclose(idata.observed_data["y"].values, ref.case.y, rtol=1e-12)
    np.testing.assert_allclose(idata.constant_data["se"].values, ref.case.se, rtol=1e-12)
    for key in ("mu_mean", "mu_sd", "tau_scale"):
        assert float(idata.constant_data[key]) == pytest.approx(ref.case.priors[key], rel=1e-12)
    assert list(idata.posterior["study"].values) == [r.study_id for r in ref.case.pooled]
    return rows


TABLES = ("effect_preparation", "readiness", "pooled_summary", "future", "study_effects", "ppc", "heterogeneity",
          "model_comparison", "prior_sensitivity", "uncertainty_sensitivity", "influence", "cumulative",
          "prior_diagnostics", "headline")


def check(table: str, run: Path, ref: Reference, *, sampled: bool) -> Any:
    fn = globals()[f"check_{table}"]
    if table in ("prior_sensitivity", "uncertainty_sensitivity"):
        return fn(run, ref, sampled)
    return fn(run, ref)
