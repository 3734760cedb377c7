"""Which pools a config asks for, and which tracker rows each one considers (pure).

* No ``pools`` and no ``analysis.split_by``: one pool, named after the project, whose scope is the
  whole tracker (every row gets a decision, as in a single-pool plan).
* ``pools``: each entry is a pool; unset keys come from ``analysis`` / ``priors`` (key by key) /
  ``sensitivity`` (whole block). Its scope: rows of its metric that pass its filters.
* ``analysis.split_by``: every pool (the analysis pool, named after its metric, or each entry of
  ``pools``) is split into one pool per distinct value (combination) of those columns among the
  rows of its scope, named ``<pool>__<column>-<value>``. A blank value is its own pool
  (``…-unspecified``). Pools that end up with too few comparable rows are kept, and blocked by
  readiness, so nothing is dropped silently.

A pool's scope leaves out rows of other metrics, so adding or editing rows of one pool never
changes another pool's content or ``pool_hash``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import pandas as pd

from ..errors import ConfigError, Problem
from .config import Analysis, Config, PoolConfig, Priors

Layout = str  # "single" | "portfolio"


@dataclass(frozen=True)
class PoolSpec:
    """One pool to compile: its name, the config as it applies to it, and its row filters."""

    name: str
    config: Config
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> values (lowercase)

    @property
    def metric(self) -> str:
        return (self.config.analysis.metric or "").strip().lower()


def slug(value: str) -> str:
    """A filter value as part of a pool name (letters, digits, _ and -)."""
    text = re.sub(r"[^a-z0-9_-]+", "-", value.strip().lower()).strip("-")
    return text or "unspecified"


def _merged_priors(base: Priors, override: Priors | None) -> Priors:
    """``override``'s keys over ``base``'s; a business-term form replaces the model-scale keys it stands
    for (and the reverse), so the two forms never mix."""
    if override is None:
        return base
    update = {k: getattr(override, k) for k in type(override).model_fields if getattr(override, k) is not None}
    if "expected_effect" in update:
        update = {"mu_mean": None, "mu_sd": None} | update
    elif "mu_mean" in update or "mu_sd" in update:  # the other model-scale key stays the base's
        update = {"expected_effect": None} | update
    if "typical_spread" in update:
        update = {"tau_scale": None} | update
    elif "tau_scale" in update:
        update = {"typical_spread": None} | update
    return base.model_copy(update=update)


def _pool_config(config: Config, entry: PoolConfig) -> Config:
    a = config.analysis
    analysis = Analysis(
        metric=entry.metric or a.metric, scale=entry.scale or a.scale,
        evidence_types=entry.evidence_types or a.evidence_types,
        triangulate_only_justification=entry.triangulate_only_justification or a.triangulate_only_justification,
        triangulate_only=a.triangulate_only)
    return config.model_copy(update={
        "analysis": analysis, "priors": _merged_priors(config.priors, entry.priors),
        "sensitivity": entry.sensitivity or config.sensitivity, "pools": None})


def scope_mask(tracker: pd.DataFrame, spec: PoolSpec, layout: Layout) -> pd.Series:
    """Rows a pool considers: all rows for a single pool; its metric and filters in a portfolio."""
    if layout == "single":
        return pd.Series(True, index=tracker.index)
    mask = tracker["metric"] == spec.metric
    for column, values in spec.filters.items():
        mask &= tracker[column].str.strip().str.lower().isin(values)
    return mask


def _no_rows_error(config_file: str, spec: PoolSpec, tracker: pd.DataFrame) -> ConfigError:
    of_metric = tracker[tracker["metric"] == spec.metric]
    hints = []
    if of_metric.empty:
        close = difflib.get_close_matches(spec.metric, sorted(set(tracker["metric"])), n=1)
        hints.append(f"no tracker row has metric '{spec.metric}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    for column, values in spec.filters.items():
        present = sorted(set(of_metric[column].str.strip().str.lower()) - {""})
        unknown = [v for v in values if v not in present]
        if unknown:
            hints.append(f"{column} {', '.join(repr(v) for v in unknown)} not found among rows of metric "
                         f"'{spec.metric}' (present: {', '.join(present) or 'none'})")
    return ConfigError(f"{config_file}: pool '{spec.name}' matches no tracker row", [Problem(
        file=config_file, message=f"pool '{spec.name}': " + ("; ".join(hints) or "its filters match no row"),
        accepted="filters naming values present in the tracker")])


def pool_specs(config: Config, tracker: pd.DataFrame, *, config_file: str = "config") -> tuple[Layout, list[PoolSpec]]:
    """The layout and the pools of ``config`` over ``tracker`` (a ConfigError for an empty pool)."""
    split = config.analysis.split_by
    if config.pools is None and split is None:
        return "single", [PoolSpec(config.project.name, config)]
    if config.pools is None:
        bases = [PoolSpec(slug(config.analysis.metric or "pool"), config.model_copy(update={"pools": None}))]
    else:
        bases = [PoolSpec(e.name, _pool_config(config, e),
                          {c: tuple(v.strip().lower() for v in vals) for c, vals in e.filters.items()})
                 for e in config.pools]
    specs: list[PoolSpec] = []
    for base in bases:
        in_scope = tracker[scope_mask(tracker, base, "portfolio")]
        if in_scope.empty:
            raise _no_rows_error(config_file, base, tracker)
        if split is None:
            specs.append(base)
            continue
        columns = [in_scope[c].str.strip().str.lower() for c in split]
        combos = sorted(set(zip(*columns, strict=True)), key=lambda c: [(v == "", v) for v in c])  # blank last
        for combo in combos:
            name = base.name + "".join(f"__{c}-{slug(v)}" for c, v in zip(split, combo, strict=True))
            filters = {**base.filters, **{c: (v,) for c, v in zip(split, combo, strict=True)}}
            specs.append(PoolSpec(name, base.config, filters))
    names = [s.name for s in specs]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ConfigError(f"{config_file}: two pools would share a name ({', '.join(clashes)}); values that differ "
                          "only in case or punctuation cannot be split apart: rename them in the tracker or use `pools`")
    return "portfolio", specs


def describe_filters(filters: dict[str, tuple[str, ...]]) -> str:
    return "; ".join(f"{c} in {', '.join(v) if any(v) else '(blank)'}" for c, v in filters.items())


