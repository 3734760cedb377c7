"""Config + tracker table → :class:`~marketbayesmeta.plan.Plan` (pure: no I/O, clock or randomness)."""

from __future__ import annotations

import contextlib
import gc
import math
import string
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from ..checks import apply_acknowledgements
from ..errors import ConfigError, Problem
from ..plan import (
    DuplicateGroup,
    Fit,
    MaterialityRule,
    ModeratorPlan,
    Plan,
    Pool,
    PriorSet,
    Provenanced,
    ReadinessVerdict,
    Row,
    SensitivityPlan,
    Source,
)
from .config import Config
from .duplicates import Duplicate, find_duplicates
from .grid import build_fits, fit_seed
from .moderators import ModeratorsConfig, beta_priors, build_design
from .overrides import overrides
from .plausibility import plausibility_checks
from .pools import describe_filters, pool_specs, scope_mask
from .prepare import REASONS, comparable_mask, model_scale_effects
from .priors import resolve_priors, resolve_scenarios
from .readiness import readiness_verdict
from .triangulate import model_output_checks, triangulate_only_reasons

ROW_TEXT = ["study_name", "brand", "market", "channel", "population", "window_start", "window_end",
            "design", "source", "notes"]
# reason code -> the fields its REASONS template uses
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    code: tuple(dict.fromkeys(field for _, field, _, _ in string.Formatter().parse(text) if field))
    for code, text in REASONS.items()
}


def _materiality(config: Config) -> MaterialityRule:
    m = config.sensitivity.materiality
    rule = (f"prior dependence is material when, across the prior grid, the posterior mean of mu moves "
            f"by more than {m.mean_shift_sd:g} of the reference fit's posterior sd, or P(mu > 0) moves by "
            f"more than {m.prob_positive_shift:g}"
            + (" or crosses 0.5" if m.prob_positive_crosses_half else "")
            + f", or the interval width changes by more than {100 * m.interval_width_change:g} %")
    return MaterialityRule(**m.model_dump(), rule=rule)


def _opt(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _transform_parameters(method: str, ci_level: float, scenario: str) -> dict[str, float | str]:
    if method == "ci_width":
        return {"ci_level": float(ci_level)}
    if method == "scenario":
        return {"scenario": scenario}
    return {}


def _shared_values(column: pd.Series) -> list:
    """A column of strings as a list, equal values sharing one ``str`` object.

    A large tracker has few distinct units, brands or windows: one string per distinct value,
    rather than one per row, keeps the plan's rows small.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    distinct = np.empty(len(uniques), dtype=object)
    distinct[:] = uniques.tolist()
    return distinct[codes].tolist()


def _text_values(frame: pd.DataFrame, name: str) -> list[str]:
    """A free-text column as strings ("" when blank or absent)."""
    if name not in frame.columns:
        return [""] * len(frame)
    return [str(v or "") for v in _shared_values(frame[name])]


def _message_fields(frame: pd.DataFrame, prep: pd.DataFrame, config: Config, dup_of: dict[int, str],
                    triangulate_why: pd.Series) -> dict[str, Callable[[int], object]]:
    """For each field of the REASONS templates, its value for the row at a given position."""
    a = config.analysis
    labels = frame.index.tolist()
    evidence, metric = _shared_values(frame["evidence_type"]), _shared_values(frame["metric"])
    scenario, unit = _shared_values(frame["uncertainty_scenario"]), _shared_values(frame["unit"])
    source, model_se = _shared_values(prep["uncertainty_source"]), prep["model_se"].tolist()
    cfg_evidence = ", ".join(a.evidence_types)
    why = _shared_values(triangulate_why).__getitem__

    return {
        "uncertainty_source": lambda i: source[i].replace("_", " "),
        "uncertainty_scenario": scenario.__getitem__, "model_se": model_se.__getitem__,
        "metric": metric.__getitem__, "cfg_metric": lambda i: a.metric,
        "evidence_type": evidence.__getitem__, "cfg_evidence": lambda i: cfg_evidence,
        "why": why, "unit": unit.__getitem__, "cfg_scale": lambda i: a.scale,
        "dup_of": lambda i: dup_of.get(labels[i], ""),
    }


def _memo_key(code: str, values: tuple) -> tuple:
    """Cache key of a message: floats by ``repr`` (0.0 and -0.0 are equal but print differently)."""
    return (code, *(repr(v) if isinstance(v, float) else v for v in values))


def _reason_messages(frame: pd.DataFrame, prep: pd.DataFrame, reason: pd.Series, config: Config,
                     dup_of: dict[int, str], triangulate_why: pd.Series) -> list[str]:
    """Every row's reason message: the REASONS template of its code, filled from the row and config.

    Rows whose code and filled-in values agree (most rows) share one message, formatted once.
    """
    value_of = _message_fields(frame, prep, config, dup_of, triangulate_why)
    messages: list[str] = []
    formatted: dict[tuple, str] = {}
    for i, code in enumerate(reason.tolist()):
        names = TEMPLATE_FIELDS[code]
        values = tuple(value_of[name](i) for name in names)
        key = _memo_key(code, values)
        text = formatted.get(key)
        if text is None:
            text = formatted[key] = REASONS[code].format(**dict(zip(names, values, strict=True)))
        messages.append(text)
    return messages


def _row_dicts(frame: pd.DataFrame, prep: pd.DataFrame, reasons: list[str], decisions: list[str],
               messages: list[str]) -> Iterator[dict]:
    """The fields of every row's :class:`Row`, one dict at a time (each column is read once)."""
    scenario = _shared_values(frame["uncertainty_scenario"])
    columns: dict[str, list] = {
        "row": [int(v) for v in frame["row"].tolist()],
        "study_id": _shared_values(frame["study_id"]),
        "evidence_type": _shared_values(frame["evidence_type"]),
        "metric": _shared_values(frame["metric"]),
        "unit": _shared_values(frame["unit"]),
        "source_estimate": [float(v) for v in frame["estimate"].tolist()],
        **{name: [_opt(v) for v in frame[column].tolist()] for name, column in
           [("source_se", "standard_error"), ("ci_lower", "ci_lower"), ("ci_upper", "ci_upper"),
            ("ci_level", "ci_level")]},
        "uncertainty_scenario": [v or None for v in scenario],
        "analysis_ready": [bool(v) for v in frame["analysis_ready"].tolist()],
        **{name: _text_values(frame, name) for name in ROW_TEXT},
        "decision": decisions, "reason": reasons, "reason_message": messages,
        "model_estimate": [_opt(v) for v in prep["model_estimate"].tolist()],
        "model_se": [_opt(v) for v in prep["model_se"].tolist()],
        "uncertainty_source": _shared_values(prep["uncertainty_source"]),
    }
    transforms = zip(_shared_values(prep["transform"]), _shared_values(prep["transform_formula"]),
                     _shared_values(prep["uncertainty_method"]), frame["ci_level"].tolist(), scenario,
                     strict=True)
    names = list(columns)
    for values, (name, formula, method, ci_level, level) in zip(zip(*columns.values(), strict=True),
                                                                transforms, strict=True):
        fields = dict(zip(names, values, strict=True))
        fields["transform"] = {"name": name, "formula": formula, "uncertainty_method": method,
                               "parameters": _transform_parameters(method, ci_level, level)}
        yield fields


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if it runs) while many objects are made.

    Making 100,000 row models otherwise triggers collections that rescan every model made so far
    (a quarter of the compile time); paused, they are scanned once, later. The objects made here
    form no reference cycles, so nothing is left uncollected meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _rows(frame: pd.DataFrame, prep: pd.DataFrame, reasons: list[str], decisions: list[str],
          messages: list[str]) -> list[Row]:
    """One validated :class:`Row` per tracker row. Each row's dict is dropped as soon as its model
    exists: holding all the dicts as well would double the memory of a large plan."""
    with _gc_paused():
        return [Row.model_validate(d) for d in _row_dicts(frame, prep, reasons, decisions, messages)]


def _duplicate_groups(dups: list[Duplicate], frame: pd.DataFrame, rows: list[Row]) -> list[DuplicateGroup]:
    """The plan's duplicate groups, their members' ids and row numbers read from ``rows``."""
    groups = []
    for d in dups:
        members = [rows[p] for p in frame.index.get_indexer(d.index)]
        groups.append(DuplicateGroup(kind=d.kind, study_ids=[r.study_id for r in members],
                                     rows=[r.row for r in members], message=d.message))
    return groups


def compile_pool(config: Config, tracker: pd.DataFrame, *, name: str,
                 filters: dict[str, tuple[str, ...]] | None = None, config_file: str = "config",
                 tracker_file: str = "tracker") -> Pool:
    """Compile one pool of ``config`` over the tracker rows of its scope (an unhashed :class:`Pool`)."""
    a = config.analysis
    scenarios = resolve_scenarios(config)
    scenario_se = {k: float(v.value) for k, v in scenarios.items()}
    triangulate_why = triangulate_only_reasons(tracker["evidence_type"], tracker["metric"], a.triangulate_only)
    reason, comparable = comparable_mask(
        tracker, metric=a.metric.strip().lower(), scale=a.scale,
        evidence_types=[e.strip().lower() for e in a.evidence_types],
        justified=a.triangulate_only_justification is not None, triangulate_why=triangulate_why)
    prep = model_scale_effects(tracker, a.scale, scenario_se)

    # Only groups that touch the pool: a possible duplicate among rows that cannot enter it (another
    # metric or evidence type) is the tracker survey's business (`audit`), not this run's.
    dups = [d for d in find_duplicates(tracker, comparable) if comparable.loc[d.index].any()]
    dup_of: dict[int, str] = {}
    for d in dups:
        if d.kind == "blocking":
            first = d.index[0]
            for i in d.index[1:]:
                reason.at[i] = "blocking_duplicate"
                dup_of[i] = f"{tracker.at[first, 'study_id']} (row {tracker.at[first, 'row']})"
    is_scenario = prep["uncertainty_source"] == "scenario"
    reason = reason.mask(reason == "", np.where(is_scenario, "scenario", "included"))
    decision = reason.map(lambda c: c if c in ("included", "scenario") else "excluded")
    messages = _reason_messages(tracker, prep, reason, config, dup_of, triangulate_why)
    rows = _rows(tracker, prep, reason.tolist(), decision.tolist(), messages)
    del messages

    pooled_ids = [r.study_id for r in rows if r.decision != "excluded"]
    n_scenario = sum(r.decision == "scenario" for r in rows)
    n_blocking = sum(d.kind == "blocking" for d in dups)
    r = config.readiness
    verdict, why = readiness_verdict(len(pooled_ids), n_scenario, min_directional=r.min_rows_directional,
                                     min_ready=r.min_rows_ready, blocking_duplicates=n_blocking)
    label = f"{'+'.join(a.evidence_types)}/{a.metric}/{a.scale}"
    if filters:
        label += f" ({describe_filters(filters)})"

    # Plausibility: the numbers and comparability of the rows that could enter the pool.
    candidates = pd.concat([tracker[comparable], prep.loc[comparable, ["model_estimate", "model_se"]]], axis=1)
    checks = [*plausibility_checks(candidates), *model_output_checks(candidates, a.triangulate_only)]
    resolved = resolve_priors(config, config_file=config_file)
    main = resolved.prior_set
    fits, unc_status, reference = build_fits(
        config, main, has_scenarios=n_scenario > 0, pooled_ids=pooled_ids,
        scenario_levels={r.uncertainty_scenario for r in rows if r.decision == "scenario"})
    moderators = None
    if a.moderators and verdict != "not_recommended" and not n_blocking:
        pooled = tracker[decision.to_numpy() != "excluded"]
        moderators = moderator_plan(config, pooled, main, config_file=config_file, tracker_file=tracker_file)
        fits.append(Fit(name="moderators", kind="moderators", label="moderators", priors=main,
                        seed=fit_seed(config.sampler.random_seed, "moderators")))
    return Pool(
        name=name, label=label, metric=a.metric, scale=a.scale, evidence_types=list(a.evidence_types),
        filters={c: list(v) for c, v in (filters or {}).items()},
        triangulate_only_justification=a.triangulate_only_justification,
        rows=rows, duplicates=_duplicate_groups(dups, tracker, rows),
        readiness=ReadinessVerdict(pool=label, eligible=int(comparable.sum()),
                                   included=len(pooled_ids) - n_scenario, scenario=n_scenario, readiness=verdict,
                                   why=why, min_rows_directional=r.min_rows_directional,
                                   min_rows_ready=r.min_rows_ready),
        priors=resolved.values, prior_conversion=resolved.conversion, priors_implied=resolved.implied,
        priors_justification=config.priors.justification, scenario_se=scenarios, sampler=config.sampler.model_copy(update={"max_draws": config.sampler.draw_limit}),
        thresholds=config.diagnostics,
        sensitivity=SensitivityPlan(prior=config.sensitivity.prior, uncertainty=config.sensitivity.uncertainty,
                                    uncertainty_status=unc_status, leave_one_out=config.sensitivity.leave_one_out,
                                    reference_prior=reference, materiality=_materiality(config)),
        fits=fits, reporting=config.reporting, checks=checks, overrides=overrides(config), moderators=moderators)


def moderator_plan(config: Config, pooled: pd.DataFrame, main: PriorSet, *, config_file: str,
                   tracker_file: str) -> ModeratorPlan:
    """The pool's meta-regression: its design matrix over the pooled rows and the coefficients' priors
    (the intercept takes mu's; a moderator's coefficient N(0, beta_sd²), beta_sd defaulting to mu's sd)."""
    a = config.analysis
    settings = ModeratorsConfig(moderators=a.moderators or [], reference_levels=a.reference_levels,
                                categorical=a.categorical, min_rows_per_level=config.readiness.min_rows_per_level,
                                beta_sd=config.priors.beta_sd)
    design = build_design(pooled, settings, config_file=config_file, tracker_file=tracker_file)
    beta_sd = Provenanced(value=main.mu_sd if config.priors.beta_sd is None else config.priors.beta_sd,
                          provenance="default" if config.priors.beta_sd is None else "config")
    means, sds = beta_priors(design, mu_mean=main.mu_mean, mu_sd=main.mu_sd, beta_sd=float(beta_sd.value))
    return ModeratorPlan(design=design, beta_mean=means, beta_sd=sds, beta_sd_setting=beta_sd)


def _acknowledged(pools: list[Pool], config: Config, config_file: str) -> list[Pool]:
    """Pools with the config's acknowledgements applied to their checks (over all pools at once: an
    acknowledgement that matches no check anywhere is an error, so a stale one cannot linger)."""
    flat = [c for pool in pools for c in pool.checks]
    marked, problems = apply_acknowledgements(flat, config.acknowledge or [])
    if problems:
        raise ConfigError(f"{config_file}: {len(problems)} acknowledgement(s) match no plausibility check",
                          [Problem(file=config_file, message=p.message,
                                   accepted="an acknowledgement naming a study_id and the code of a check "
                                            "compile reports for it (remove stale ones)") for p in problems])
    out, start = [], 0
    for pool in pools:
        n = len(pool.checks)
        out.append(pool.model_copy(update={"checks": list(marked[start:start + n])}) if n else pool)
        start += n
    return out


def compile_plan(config: Config, tracker: pd.DataFrame, *, sources: dict[str, Source],
                 package_version: str) -> Plan:
    """Compile a validated config and tracker table into a hashed plan (one pool per :class:`PoolSpec`)."""
    config_file = sources["config"].name if "config" in sources else "config"
    layout, specs = pool_specs(config, tracker, config_file=config_file)
    tracker_file = sources["tracker"].name if "tracker" in sources else "tracker"
    pools = [compile_pool(s.config, tracker[scope_mask(tracker, s, layout)], name=s.name, filters=s.filters,
                          config_file=config_file, tracker_file=tracker_file) for s in specs]
    pools = _acknowledged(pools, config, config_file)
    return Plan(package_version=package_version, project_name=config.project.name,
                project_notes=config.project.notes, sources=sources, layout=layout, pools=pools).with_hash()
