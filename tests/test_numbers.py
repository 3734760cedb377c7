"""runtime/numbers.py beyond the values (those are in test_values_end_to_end.py): the reasons it
gives, word for word; the MCMC-summary path (``reporting.summaries: mcmc``) against the draws it is
given; what a sampled main fit changes in the sensitivity tables; the headline's keys."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from marketbayesmeta.api import compile_config
from marketbayesmeta.runtime.fits import FitResult
from marketbayesmeta.runtime.numbers import write_numbers
from marketbayesmeta.runtime.posterior import derive
from marketbayesmeta.runtime.status import StatusBook
from value_cases import CASES, TRACKER_HEADER, num, read_csv

SAMPLER = "{chains: 2, draws: 100, tune: 100}"


def compiled(tmp: Path, case: str, body: str | None = None):
    c = CASES[case]
    if body is not None:
        from dataclasses import replace

        c = replace(c, config_body=body)
    return compile_config(c.write(tmp / "project", SAMPLER)).pool()


def numbers(pool, tmp: Path, sampled: dict[str, FitResult] | None = None) -> tuple[Path, StatusBook, dict]:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    book = StatusBook()
    headline = write_numbers(pool, sampled or {}, book, out)
    return out, book, headline


def reasons(book: StatusBook) -> dict[str, str]:
    assert len({r["code"] for r in book.reasons}) == len(book.reasons)
    return {r["code"]: r["message"] for r in book.reasons}


def test_reasons_word_for_word(tmp_path: Path) -> None:
    pool = compiled(tmp_path, "log")
    out, book, _ = numbers(pool, tmp_path)
    got = reasons(book)
    assert set(got) == {"ppc_flags", "material_prior_dependence", "prior_diagnostics_warning"}
    assert got["ppc_flags"] == "1 study(ies) outside their in-sample 90 % posterior predictive interval: g5"
    specs = {r["spec"]: r["material_reasons"] for r in read_csv(out / "prior_sensitivity.csv") if r["material"] == "true"}
    assert list(specs) == ["regularising", "weak"]
    assert got["material_prior_dependence"] == (
        f"material prior dependence ({pool.sensitivity.materiality.rule}): "
        + "; ".join(f"{name}: {why}" for name, why in specs.items()))
    warned = [r["message"] for r in read_csv(out / "prior_diagnostics.csv") if r["warning"] == "true"]
    assert len(warned) == 2 and got["prior_diagnostics_warning"] == "prior diagnostics warn: " + "; ".join(warned)


def _tracker(rows: list[tuple[str, float, float | str, str]]) -> str:
    lines = [f"{sid},{sid},geo_test,sales,log_relative,{y},{se},,,,{scn},yes,m{sid},2025-01-0{i + 1}"
             for i, (sid, y, se, scn) in enumerate(rows)]
    return TRACKER_HEADER + "\n".join(lines) + "\n"


def _project(tmp: Path, rows: list[tuple[str, float, float | str, str]], extra: str = "") -> Any:
    return _pool(tmp, _tracker(rows), extra=extra)


def _pool(tmp: Path, tracker: str, *, extra: str = "",
          analysis: str = "{metric: sales, scale: log_relative, evidence_types: [geo_test]}",
          priors: str = "{mu_mean: 0.0, mu_sd: 1.0, tau_scale: 0.05, justification: test}") -> Any:
    """The compiled pool of ``tracker`` (CSV text) with this analysis, these priors and ``extra`` config lines."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "tracker.csv").write_text(tracker, encoding="utf-8")
    (tmp / "config.yaml").write_text(
        f"version: 1\nproject: {{name: n}}\ndata: {{tracker: tracker.csv}}\nanalysis: {analysis}\n"
        f"priors: {priors}\nsampler: {SAMPLER}\n{extra}outputs: {{directory: out}}\n", encoding="utf-8")
    return compile_config(tmp / "config.yaml").pool()


NO_GRID = "sensitivity: {prior: false, uncertainty: false, leave_one_out: false}\n"


INFLUENTIAL = [("a", 0.05, 0.05, ""), ("b", 0.40, 0.06, ""), ("c", 0.08, 0.05, ""), ("d", 0.06, 0.04, "")]


def test_a_study_the_conclusion_rests_on_is_named(tmp_path: Path) -> None:
    pool = _project(tmp_path / "p", INFLUENTIAL, "sensitivity: {prior: false, uncertainty: false}\n")
    out, book, _ = numbers(pool, tmp_path)
    flips = [r["left_out"] for r in read_csv(out / "influence.csv") if r["changes_conclusion"] == "true"]
    assert flips == ["b"]
    assert reasons(book)["influential_study"] == (
        "leaving out b alone changes the conclusion (whether the interval excludes 0, or which side of 0.5 "
        "P(effect > 0) is on): the result rests on that study")


@pytest.mark.parametrize("rows, extra", [
    (INFLUENTIAL, "sensitivity: {prior: false, uncertainty: false, leave_one_out: false}\n"),
    (INFLUENTIAL[:2], "sensitivity: {prior: false, uncertainty: false}\n"),
])
def test_no_leave_one_out_when_off_or_below_three_studies(tmp_path: Path, rows: list, extra: str) -> None:
    pool = _project(tmp_path / "p", rows, extra)
    out, book, _ = numbers(pool, tmp_path)
    assert not (out / "influence.csv").exists() and "influential_study" not in reasons(book)
    assert (out / "cumulative.csv").exists()


def test_material_uncertainty_dependence_is_named(tmp_path: Path) -> None:
    # four precise studies near 2 %, one scenario row at 30 %: at the low scenario SE it drags mu
    rows = [("a", 0.02, 0.01, ""), ("b", 0.025, 0.01, ""), ("c", 0.015, 0.01, ""), ("d", 0.02, 0.012, ""),
            ("s", 0.30, "", "medium")]
    pool = _project(tmp_path / "p", rows, "sensitivity: {prior: false, leave_one_out: false}\n"
                                          "uncertainty: {scenarios: {low: 0.005, medium: 0.05, high: 0.5}}\n")
    out, book, _ = numbers(pool, tmp_path)
    table = read_csv(out / "uncertainty_sensitivity.csv")
    assert [r["level"] for r in table] == ["low", "medium", "high"]
    assert [num(r["scenario_se"]) for r in table] == [0.005, 0.05, 0.5]
    assert table[1]["same_as"] == "main" and table[1]["material"] == "false"
    material = {r["level"]: r["material_reasons"] for r in table if r["material"] == "true"}
    assert material  # (here: the high level, where the scenario row hardly counts)
    assert reasons(book)["material_uncertainty_dependence"] == (
        "the result depends materially on the scenario uncertainty level: "
        + "; ".join(f"{level}: {why}" for level, why in material.items()))


def test_several_material_uncertainty_levels_are_listed_apart(tmp_path: Path) -> None:
    """A stricter materiality rule makes both the low and the high level material: each is named,
    separated by '; ', in level order."""
    rows = [("a", 0.02, 0.01, ""), ("b", 0.025, 0.01, ""), ("c", 0.015, 0.01, ""), ("d", 0.02, 0.012, ""),
            ("s", 0.30, "", "medium")]
    pool = _project(tmp_path / "p", rows, "sensitivity: {prior: false, leave_one_out: false, materiality: "
                                          "{mean_shift_sd: 0.05, interval_width_change: 0.05}}\n"
                                          "uncertainty: {scenarios: {low: 0.005, medium: 0.05, high: 0.5}}\n")
    out, book, _ = numbers(pool, tmp_path)
    table = {r["level"]: r for r in read_csv(out / "uncertainty_sensitivity.csv")}
    assert [level for level, r in table.items() if r["material"] == "true"] == ["low", "high"]
    assert reasons(book)["material_uncertainty_dependence"] == (
        "the result depends materially on the scenario uncertainty level: "
        f"low: {table['low']['material_reasons']}; high: {table['high']['material_reasons']}")


def test_deltas_are_taken_against_the_default_spec_when_main_differs(tmp_path: Path) -> None:
    """A grid whose spec named 'default' is not main's priors: the deltas of prior_sensitivity.csv
    are taken against that spec (its own row has zero deltas), not against main."""
    from marketbayesmeta.runtime.exact import exact_posterior

    pool = _project(tmp_path / "p", INFLUENTIAL, "sensitivity: {uncertainty: false, leave_one_out: false, "
                    "prior_specs: [{name: regularising, mu_sd: 0.2, tau_scale: 0.02}, "
                    "{name: default, mu_sd: 2.0, tau_scale: 0.5}, {name: weak, mu_sd: 5.0, tau_scale: 1.0}]}\n")
    assert pool.sensitivity.reference_prior == "default"
    out, _, _ = numbers(pool, tmp_path)
    table = {r["spec"]: r for r in read_csv(out / "prior_sensitivity.csv")}
    assert num(table["default"]["delta_mean"]) == 0.0 and table["default"]["material"] == "false"
    assert table["default"]["same_as"] == ""  # main has tau_scale 0.05
    y, se = [r[1] for r in INFLUENTIAL], [r[2] for r in INFLUENTIAL]

    def mean(spec: str) -> float:
        p = pool.fit(f"prior:{spec}").priors
        return exact_posterior(y, se, mu_mean=p.mu_mean, mu_sd=p.mu_sd, tau_scale=p.tau_scale,
                               tau_family=p.tau_family).mu.mean

    for spec in ("regularising", "weak"):
        assert num(table[spec]["delta_mean"]) == pytest.approx(mean(spec) - mean("default"), rel=1e-9, abs=1e-12)
    main = exact_posterior(y, se, mu_mean=0.0, mu_sd=1.0, tau_scale=0.05).mu.mean
    assert abs((mean("weak") - main) - (mean("weak") - mean("default"))) > 1e-3  # main would give other deltas


def test_exact_fits_computes_each_distinct_fit_once(tmp_path: Path) -> None:
    """exact_fits: a fit ``same_as`` another is that fit's posterior (the same object), and fits of
    other kinds (moderators, leave-one-out) are not computed."""
    from helpers import write_project
    from marketbayesmeta.runtime.numbers import exact_fits
    from test_moderators_run import _rows

    pool = compile_config(write_project(
        tmp_path / "p", _rows(), analysis={"moderators": ["channel"], "reference_levels": {"channel": "tv"}},
        sensitivity={"prior": True, "uncertainty": False})).pool()
    posts = exact_fits(pool)
    assert set(posts) == {f.name for f in pool.fits if f.kind in ("main", "prior", "uncertainty")}
    assert {f.kind for f in pool.fits} >= {"moderators", "leave_one_out"}
    twins = [f for f in pool.fits if f.same_as is not None]
    assert twins and all(posts[f.name] is posts[f.same_as] for f in twins)
    assert len({id(p) for p in posts.values()}) == len(posts) - len(twins)


def _main_result(pool, seed: int = 3) -> FitResult:
    """A sampled main fit whose draws are made up (known), so the MCMC tables can be checked
    against them: mu ~ N(0.05, 0.02²), tau ~ |N(0, 0.03²)|, 2 chains × 400."""
    ids, y, se = pool.fit_data(pool.fit("main"))
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.05, 0.02, (2, 400))
    tau = np.abs(rng.normal(0.0, 0.03, (2, 400)))
    y, se = np.asarray(y, float), np.asarray(se, float)
    return FitResult(fit=pool.fit("main"), ids=ids, y=y, se=se, draws=derive(mu, tau, y, se, 11), draws_used=400)


def _summary(x: np.ndarray, interval: float) -> dict[str, float]:
    flat = x.reshape(-1)
    a = (1 - interval) / 2
    lo, med, hi = np.quantile(flat, [a, 0.5, 1 - a])
    return {"mean": flat.mean(), "sd": flat.std(ddof=1), "median": med, "lower": lo, "upper": hi,
            "prob_positive": (flat > 0).mean()}


def _assert_row(row: dict[str, str], expected: dict[str, float], pct_of: np.ndarray | None = None) -> None:
    for key, value in expected.items():
        assert num(row[key]) == pytest.approx(value, rel=1e-9, abs=1e-15), key
    if pct_of is not None:
        assert num(row["mean_pct"]) == pytest.approx(float((100 * np.expm1(pct_of)).mean()), rel=1e-9)
        assert num(row["upper_pct"]) == pytest.approx(100 * math.expm1(expected["upper"]), rel=1e-9)


def test_mcmc_summaries_are_the_draws_summaries(tmp_path: Path) -> None:
    body = CASES["log"].config_body.replace("reporting: {interval: 0.9}", "reporting: {interval: 0.9, summaries: mcmc}")
    pool = compiled(tmp_path / "mcmc", "log", body)
    main = _main_result(pool)
    d = main.draws
    out, book, headline = numbers(pool, tmp_path / "mcmc", {"main": main})
    mu, tau = read_csv(out / "pooled_summary.csv")
    _assert_row(mu, _summary(d.mu, 0.9), d.mu)
    expected_tau = _summary(d.tau, 0.9)
    del expected_tau["prob_positive"]
    _assert_row(tau, expected_tau)
    assert tau["prob_positive"] == "" and tau["mean_pct"] == ""
    (future,) = read_csv(out / "future_true_effect_summary.csv")
    _assert_row(future, _summary(d.future, 0.9), d.future)
    exact_pool = compiled(tmp_path / "exact", "log")
    exact_out, _, _ = numbers(exact_pool, tmp_path / "exact")
    (exact_future,) = read_csv(exact_out / "future_true_effect_summary.csv")
    assert future["parameter"] == exact_future["parameter"] == "future_true_effect"
    exact_studies = read_csv(exact_out / "study_effects.csv")
    for i, (row, exact_row) in enumerate(zip(read_csv(out / "study_effects.csv"), exact_studies, strict=True)):
        assert (row["study_id"], row["study_name"], row["decision"]) == (
            exact_row["study_id"], exact_row["study_name"], exact_row["decision"])
        assert num(row["observed"]) == pytest.approx(main.y[i], rel=1e-9)
        assert num(row["se"]) == pytest.approx(main.se[i], rel=1e-9)
        _assert_row(row, _summary(d.theta[..., i], 0.9), d.theta[..., i])
        assert num(row["shrinkage"]) == pytest.approx(float(d.shrinkage[..., i].mean()), rel=1e-9)
        assert row["weight"] == exact_row["weight"]  # the weights are the exact posterior's
    for i, row in enumerate(read_csv(out / "ppc.csv")):
        rep = d.y_rep[..., i].reshape(-1)
        lo, hi = np.quantile(rep, [0.05, 0.95])
        assert num(row["yrep_mean"]) == pytest.approx(float(rep.mean()), rel=1e-9)
        assert (num(row["lower"]), num(row["upper"])) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
        y = main.y[i]
        tail = min(1.0, 2 * min((rep >= y).mean(), (rep <= y).mean()))
        assert num(row["tail_probability"]) == pytest.approx(tail, rel=1e-9, abs=1e-15)
        assert (row["flag"] == "true") == bool(y < lo or y > hi)
    # everything else is exact whatever the summaries: byte for byte the exact run's
    for name in ("heterogeneity.csv", "model_comparison.csv", "cumulative.csv", "influence.csv"):
        assert (out / name).read_bytes() == (exact_out / name).read_bytes(), name
    assert headline["mu_mean"] == pytest.approx(float(d.mu.mean()), rel=1e-12)
    assert headline["future_lower"] == pytest.approx(num(future["lower"]), rel=1e-12)
    if any(r["flag"] == "true" for r in read_csv(out / "ppc.csv")):
        assert "ppc_flags" in reasons(book)


def test_mcmc_summaries_fall_back_to_exact_when_the_main_fit_failed(tmp_path: Path) -> None:
    body = CASES["log"].config_body.replace("reporting: {interval: 0.9}", "reporting: {interval: 0.9, summaries: mcmc}")
    pool = compiled(tmp_path / "mcmc", "log", body)
    failed = FitResult(fit=pool.fit("main"), ids=[], y=np.array([]), se=np.array([]), error="RuntimeError: no")
    out, _, _ = numbers(pool, tmp_path / "mcmc", {"main": failed})
    exact_out, _, _ = numbers(compiled(tmp_path / "exact", "log"), tmp_path / "exact")
    for name in ("pooled_summary.csv", "study_effects.csv", "ppc.csv", "future_true_effect_summary.csv"):
        assert (out / name).read_bytes() == (exact_out / name).read_bytes(), name


@pytest.mark.parametrize("passes", [True, False])
def test_a_sampled_main_fit_marks_its_twins_in_the_sensitivity_tables(tmp_path: Path, passes: bool) -> None:
    pool = compiled(tmp_path, "log")
    main = _main_result(pool)
    main.diagnostics = [{"fit": "main", "parameter": "mu", "check": "r_hat", "value": 1.0, "threshold": 1.01,
                         "pass": passes}]
    out, _, _ = numbers(pool, tmp_path, {"main": main})
    prior = {r["spec"]: r for r in read_csv(out / "prior_sensitivity.csv")}
    assert (prior["default"]["checked_with_mcmc"], prior["default"]["diagnostics_pass"]) == (
        "true", "true" if passes else "false")
    assert all((r["checked_with_mcmc"], r["diagnostics_pass"]) == ("false", "") for n, r in prior.items()
               if n != "default")
    unc = {r["level"]: r for r in read_csv(out / "uncertainty_sensitivity.csv")}
    assert (unc["medium"]["checked_with_mcmc"], unc["low"]["checked_with_mcmc"]) == ("true", "false")
    # the exact numbers do not move with the sampled fit (summaries: exact)
    exact_out, _, _ = numbers(compiled(tmp_path / "again", "log"), tmp_path / "again")
    assert (out / "pooled_summary.csv").read_bytes() == (exact_out / "pooled_summary.csv").read_bytes()


def test_headline_keys_per_scale(tmp_path: Path) -> None:
    common = {"scale", "interval_level", "mu_mean", "mu_sd", "mu_median", "mu_lower", "mu_upper", "prob_positive",
              "tau_mean", "tau_median", "tau_lower", "tau_upper", "future_mean", "future_lower", "future_upper",
              "i2_median", "typical_spread", "next_observed_lower", "next_observed_upper"}
    pct = {"mu_mean_pct", "mu_lower_pct", "mu_upper_pct", "future_lower_pct", "future_upper_pct",
           "next_observed_lower_pct", "next_observed_upper_pct"}
    _, _, log = numbers(compiled(tmp_path / "log", "log"), tmp_path / "log")
    _, _, pp = numbers(compiled(tmp_path / "pp", "pp"), tmp_path / "pp")
    assert set(log) == common | pct and set(pp) == common
    assert (log["scale"], log["interval_level"], pp["scale"], pp["interval_level"]) == (
        "log_relative", 0.9, "percentage_point", 0.95)
    assert all(isinstance(v, float) and math.isfinite(v) for k, v in pp.items() if k != "scale")


# -- triangulation: read-outs placed in the future true effect's distribution -------------------

GEO = [("a", 0.05, 0.03), ("b", 0.12, 0.04), ("c", -0.02, 0.05), ("d", 0.08, 0.03)]
TRI_PRIORS = (0.0, 1.0, 0.05, "half_normal")  # mu_mean, mu_sd, tau_scale, tau_family of _project


def _future_quantile(g: Any, q: float) -> float:
    """The q-quantile of the future true effect N(mu, tau²) on the brute-force grid."""
    from scipy import optimize

    return optimize.brentq(lambda x: g.normal_cdf(x, g.MU, g.TAU**2) - q, -5.0, 5.0, xtol=1e-13)


def test_triangulation_rows_and_their_reason(tmp_path: Path) -> None:
    from marketbayesmeta.runtime.numbers import future_cdf, triangulation_rows
    from test_exact_tables import grid_of

    g = grid_of([r[1] for r in GEO], [r[2] for r in GEO], *TRI_PRIORS)
    # percentiles by hand: 0.5, 0.1 consistent (central 90 % band: 0.05..0.95); 0.97, 0.04, 0.01 in the
    # tail (outside it, inside 0.005..0.995); 0.998, 0.004, 0.003 outside the 99 % band (0.04 and 0.004
    # sit between a band's edge and a third of the way out: a band edge off by a factor shows)
    wanted = {"m50": 0.5, "m10": 0.1, "m97": 0.97, "m04": 0.04, "m01": 0.01, "m998": 0.998, "m004": 0.004,
              "m003": 0.003}
    x = {sid: _future_quantile(g, q) for sid, q in wanted.items()}
    lines = [f"{sid},{sid},geo_test,sales,log_relative,{y},{se},,,,,yes,m{sid},2025-01-0{i + 1}"
             for i, (sid, y, se) in enumerate(GEO)]
    # another metric, before the others: skipped, and the rows after it still count
    lines.append("roi,MMM roi,mmm,roi,log_relative,0.3,0.1,,,,,yes,mm,2025-02-01")
    lines += [f"{sid},MMM {sid},mmm,sales,log_relative,{v!r},0.01,,,,,yes,mm,2025-02-01" for sid, v in x.items()]
    lines.append("pp,MMM pp,mmm,sales,percentage_point,1.1,0.4,,,,,yes,mm,2025-02-01")
    pool = _pool(tmp_path / "p", TRACKER_HEADER + "\n".join(lines) + "\n", extra=NO_GRID,
                 analysis="{metric: Sales , scale: log_relative, evidence_types: [geo_test]}")
    out, book, _ = numbers(pool, tmp_path)

    from marketbayesmeta.runtime.numbers import exact_fit

    post = exact_fit(pool, pool.fit("main"))
    for sid, q in wanted.items():
        assert future_cdf(post, x[sid]) == pytest.approx(q, abs=2e-5), sid
    rows = {r["study_id"]: r for r in triangulation_rows(pool, post)}
    assert list(rows) == [*wanted, "pp"]
    verdicts = {"m50": "consistent", "m10": "consistent", "m97": "in the tail (outside the central 90 %)",
                "m04": "in the tail (outside the central 90 %)", "m01": "in the tail (outside the central 90 %)",
                "m998": "outside the 99 % band", "m004": "outside the 99 % band", "m003": "outside the 99 % band"}
    for sid, q in wanted.items():
        r = rows[sid]
        assert r["comparable"] is True and r["verdict"] == verdicts[sid], sid
        assert r["percentile"] == pytest.approx(q, abs=2e-5)
        assert r["model_estimate"] == pytest.approx(x[sid], rel=1e-12) and r["model_se"] == pytest.approx(0.01)
        assert r["estimate_pct"] == pytest.approx(100 * math.expm1(x[sid]), rel=1e-12)
        assert (r["study_name"], r["evidence_type"], r["metric"], r["source_unit"]) == (
            f"MMM {sid}", "mmm", "sales", "log_relative")
        assert r["source_estimate"] == pytest.approx(x[sid], rel=1e-12) and r["justification"] == ""
        assert r["why"] == (f"{100 * r['percentile']:.1f} % of comparable future studies would have a true effect "
                            "at or below this estimate (mmm read-out, triangulated, not pooled)")
    pp = rows["pp"]
    assert pp["comparable"] is False and pp["verdict"] == "not comparable" and "percentile" not in pp
    assert pp["why"] == "unit 'percentage_point' cannot be converted to the log_relative scale of the pool"
    table = read_csv(out / "triangulation.csv")
    assert [r["study_id"] for r in table] == [*wanted, "pp"]
    assert [r["verdict"] for r in table][:-1] == [verdicts[s] for s in wanted]
    assert book.reasons == [  # one reason per read-out outside the 99 % band
        {"code": "triangulation_disagrees",
         "message": f"{sid} (mmm, sales) is outside the 99 % band of the pooled prediction for a comparable study: "
                    "check how the model read-out and the pooled experiments measure the effect before using either"}
        for sid in ("m998", "m004", "m003")]


def test_material_moderator_prior_dependence_and_several_thin_levels(tmp_path: Path) -> None:
    """A tight prior spec pulls the channel coefficients to 0: each material term is named with its
    spec and reasons (read back from moderators.csv's notes), '; ' apart; with min_rows_per_level 4
    every level is thin and the exploratory reason lists each problem, '; ' apart."""
    import re

    from helpers import write_project
    from test_moderators_run import _rows

    pool = compile_config(write_project(
        tmp_path / "p", _rows(), analysis={"moderators": ["channel"], "reference_levels": {"channel": "tv"}},
        sensitivity={"prior": True, "uncertainty": False, "prior_specs": [{"name": "tight", "mu_sd": 0.002}]},
        readiness={"min_rows_per_level": 4})).pool()
    out, book, _ = numbers(pool, tmp_path)
    got = reasons(book)
    material = []
    for r in read_csv(out / "moderators.csv"):
        m = re.fullmatch(r"prior spec (\w+): material \((.+)\)", r["note"])
        if r["row_type"] == "prior_sensitivity" and m:
            material.append(f"{r['term']} under {m.group(1)}: {m.group(2)}")
    assert len(material) == 2  # channel[radio] and channel[search]
    assert got["material_moderator_prior_dependence"] == (
        "the moderators' coefficients depend materially on the prior: " + "; ".join(material))
    problems = [p.message for p in pool.moderators.design.problems]
    assert len(problems) >= 2
    assert got["moderators_exploratory"] == (
        f"the meta-regression is exploratory: {'; '.join(problems)}. With this few studies per level, "
        "differences between levels are hypotheses to test, not findings")


@pytest.mark.parametrize("min_rows", [2, 3])
def test_moderators_table_and_reasons(tmp_path: Path, min_rows: int) -> None:
    """A pool with a moderator: moderators.csv is moderator_rows' table, and the reasons name the
    exploratory design (radio's 2 rows below min_rows_per_level 3: its problem, word for word) and
    any material prior dependence."""
    from helpers import write_project
    from marketbayesmeta.runtime.moderator_tables import moderator_rows
    from marketbayesmeta.runtime.numbers import PoolData, exact_fit
    from test_moderators_run import _rows

    pool = compile_config(write_project(
        tmp_path / "p", _rows(), analysis={"moderators": ["channel"], "reference_levels": {"channel": "tv"}},
        sensitivity={"prior": True, "uncertainty": False}, readiness={"min_rows_per_level": min_rows})).pool()
    out, book, _ = numbers(pool, tmp_path)
    data = PoolData.of(pool)
    rows, material = moderator_rows(pool, data.y, data.se, exact_fit(pool, pool.fit("main")))
    table = read_csv(out / "moderators.csv")
    assert [(r["row_type"], r["term"]) for r in table] == [(r["row_type"], r["term"]) for r in rows]
    got = reasons(book)
    design = pool.moderators.design
    assert design.exploratory == (min_rows == 3) and len(design.problems) == (min_rows == 3)
    if min_rows == 3:
        assert "radio" in design.problems[0].message
        assert got["moderators_exploratory"] == (
            f"the meta-regression is exploratory: {design.problems[0].message}. With this few studies per level, "
            "differences between levels are hypotheses to test, not findings")
    else:
        assert "moderators_exploratory" not in got
    if material:
        assert got["material_moderator_prior_dependence"] == (
            "the moderators' coefficients depend materially on the prior: " + "; ".join(material))
    else:
        assert "material_moderator_prior_dependence" not in got


def test_leave_one_out_from_three_studies(tmp_path: Path) -> None:
    """influence.csv is written from three pooled studies on (and not below: see above)."""
    pool = _project(tmp_path / "p", INFLUENTIAL[:3], "sensitivity: {prior: false, uncertainty: false}\n")
    out, _, _ = numbers(pool, tmp_path)
    assert [r["left_out"] for r in read_csv(out / "influence.csv")] == ["a", "b", "c"]


def test_several_decisive_studies_and_flagged_studies_are_listed_apart(tmp_path: Path) -> None:
    """Two studies each alone decide whether the interval excludes 0: both are named, ', ' apart;
    likewise two studies outside their posterior predictive interval."""
    rows = [("a", 0.1, 0.04, ""), ("b", 0.1, 0.04, ""), ("c", 0.02, 0.04, "")]
    pool = _project(tmp_path / "p", rows, "sensitivity: {prior: false, uncertainty: false}\n")
    out, book, _ = numbers(pool, tmp_path)
    assert [r["left_out"] for r in read_csv(out / "influence.csv") if r["changes_conclusion"] == "true"] == ["a", "b"]
    assert reasons(book)["influential_study"].startswith("leaving out a, b alone changes the conclusion")
    # six precise studies at 0 and two imprecise ones near +0.4, shrunk towards 0 beyond their interval
    rows = [(sid, 0.0, 0.01, "") for sid in "abcdef"] + [("g", 0.4, 0.1, ""), ("h", 0.45, 0.1, "")]
    pool = _project(tmp_path / "q", rows, "sensitivity: {prior: false, uncertainty: false, leave_one_out: false}\n")
    out, book, _ = numbers(pool, tmp_path / "q")
    flagged = [r["study_id"] for r in read_csv(out / "ppc.csv") if r["flag"] == "true"]
    assert flagged == ["g", "h"]
    assert reasons(book)["ppc_flags"] == (f"{len(flagged)} study(ies) outside their in-sample 95 % posterior "
                                          f"predictive interval: {', '.join(flagged)}")


def test_triangulation_on_an_absolute_scale_has_no_percent(tmp_path: Path) -> None:
    """On percentage_point the read-out's estimate stays in points: estimate_pct is empty; a read-out
    in a relative unit is not comparable there, and does not stop the rows after it."""
    from marketbayesmeta.runtime.numbers import exact_fit, triangulation_rows

    lines = [f"{sid},{sid},brand_lift,awareness,percentage_point,{y},{se},,,,,yes,m{sid},2025-01-0{i + 1}"
             for i, (sid, y, se) in enumerate([("b1", 2.0, 0.5), ("b2", 3.1, 0.6), ("b3", 1.4, 0.7)])]
    # a read-out in a relative unit first: not comparable on points, and the one after it still counts
    lines.append("rel,MMM rel,mmm,awareness,relative_percent,5,1,,,,,yes,mm,2025-02-01")
    lines.append("mm,MMM,mmm,awareness,percentage_point,2.5,0.4,,,,,yes,mm,2025-02-01")
    pool = _pool(tmp_path / "p", TRACKER_HEADER + "\n".join(lines) + "\n", extra=NO_GRID,
                 analysis="{metric: awareness, scale: percentage_point, evidence_types: [brand_lift]}",
                 priors="{mu_mean: 0.0, mu_sd: 10.0, tau_scale: 5.0, justification: test}")
    rel, row = triangulation_rows(pool, exact_fit(pool, pool.fit("main")))
    assert rel["study_id"] == "rel" and rel["comparable"] is False
    assert row["study_id"] == "mm" and row["comparable"] is True and row["estimate_pct"] is None
    assert row["model_estimate"] == pytest.approx(2.5)


def test_the_headline_leaves_out_missing_and_infinite_values(tmp_path: Path) -> None:
    """run_status.json's headline holds finite numbers only: a None or infinite summary (e.g. tau's sd
    under a half-Cauchy prior with one study) is left out, not written as null or Infinity."""
    from marketbayesmeta.runtime.numbers import headline

    pool = compiled(tmp_path, "log")
    mu = {"mean": 0.1, "sd": None, "median": 0.1, "lower": -math.inf, "upper": 0.3, "prob_positive": 0.9,
          "mean_pct": 10.5, "lower_pct": math.nan, "upper_pct": 35.0}
    tau = {"mean": math.inf, "median": 0.05, "lower": 0.0, "upper": 0.2}
    future = {"mean": 0.1, "lower": -0.2, "upper": 0.4, "lower_pct": -18.0, "upper_pct": 49.0}
    h = headline(pool, mu, tau, future, [])
    assert {"mu_sd", "mu_lower", "tau_mean", "mu_lower_pct"}.isdisjoint(h)
    assert h["mu_mean"] == 0.1 and h["tau_median"] == 0.05 and h["mu_upper_pct"] == 35.0
    assert all(v is not None and (not isinstance(v, float) or math.isfinite(v)) for v in h.values())


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_exact_tables_before_the_check_then_the_rest_give_the_same_files_and_reasons(tmp_path: Path) -> None:
    """write_exact_numbers (before sampling) writes every table but the sensitivity tables and owes
    the book its reasons; write_numbers given what it wrote finishes the job: the same bytes as
    write_numbers alone, and the reasons in step order (ppc flags, then sensitivity, then prior
    diagnostics) after whatever the book held already (the MCMC check's own)."""
    from marketbayesmeta.runtime.numbers import write_exact_numbers

    pool = compiled(tmp_path, "log")
    alone, early = tmp_path / "alone", tmp_path / "early"
    alone.mkdir()
    early.mkdir()
    book_alone, book_early = StatusBook(), StatusBook()
    for book in (book_alone, book_early):
        book.add("diagnostics_warning", "the check's own reason comes first")
    headline = write_numbers(pool, {}, book_alone, alone)
    written = write_exact_numbers(pool, early)
    assert written is not None
    before = _files(early)
    assert "pooled_summary.csv" in before and "ppc.csv" in before and "prior_diagnostics.csv" in before
    assert "prior_sensitivity.csv" not in before and "uncertainty_sensitivity.csv" not in before
    assert [r["code"] for r in book_early.reasons] == ["diagnostics_warning"]  # nothing added yet
    assert write_numbers(pool, {}, book_early, early, written) == headline
    assert _files(early) == _files(alone)
    assert {k: v for k, v in _files(early).items() if k in before} == before  # not written twice
    assert book_early.reasons == book_alone.reasons
    assert [r["code"] for r in book_early.reasons] == [
        "diagnostics_warning", "ppc_flags", "material_prior_dependence", "prior_diagnostics_warning"]


def test_mcmc_summaries_write_nothing_before_the_check(tmp_path: Path) -> None:
    from marketbayesmeta.runtime.numbers import write_exact_numbers

    body = CASES["log"].config_body.replace("reporting: {interval: 0.9}", "reporting: {interval: 0.9, summaries: mcmc}")
    pool = compiled(tmp_path, "log", body)
    out = tmp_path / "out"
    out.mkdir()
    assert write_exact_numbers(pool, out) is None
    assert list(out.iterdir()) == []
