"""Overrides (compiler/overrides.py), systematically: every setting loosened alone is named, with its
value and default; tightened or left at the default it is not; diagnostics downgraded and priors
without a justification are named; the order is fixed."""

from __future__ import annotations

from typing import Any

import pytest

from marketbayesmeta.compiler.config import Config
from marketbayesmeta.compiler.overrides import overrides

BASE: dict[str, Any] = {"version": 1, "project": {"name": "p"}, "data": {"tracker": "t.csv"},
                        "analysis": {"metric": "sales", "evidence_types": ["geo_test"]}}
# (section, key, default, a looser value, a tighter value), written out from the settings' defaults
SETTINGS = [
    ("readiness", "min_rows_directional", 3, 2, None),  # tighter (4) would exceed min_rows_ready
    ("readiness", "min_rows_ready", 4, None, 5),  # looser (3) alone equals directional: see below
    ("diagnostics", "max_rhat", 1.01, 1.05, 1.005),
    ("diagnostics", "min_ess_bulk", 400, 100, 1000),
    ("diagnostics", "min_ess_tail", 400, 399, 401),
    ("diagnostics", "max_divergences", 0, 1, None),
    ("diagnostics", "max_exact_z", 4.0, 4.5, 3.0),
    ("diagnostics", "min_bfmi", 0.3, 0.2, 0.5),
    ("sensitivity.materiality", "mean_shift_sd", 0.5, 0.75, 0.25),
    ("sensitivity.materiality", "prob_positive_shift", 0.10, 0.2, 0.05),
    ("sensitivity.materiality", "interval_width_change", 0.25, 0.5, 0.1),
]


def config(**sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {**BASE}
    for path, values in sections.items():
        parts = path.split("__")
        target = data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = {**target.get(parts[-1], {}), **values}
    return Config.model_validate(data)


def with_setting(section: str, key: str, value: Any) -> Config:
    return config(**{section.replace(".", "__"): {key: value}})


def test_defaults_have_no_override() -> None:
    assert overrides(config()) == []


@pytest.mark.parametrize("section, key, default, looser, tighter", SETTINGS)
def test_each_loosened_setting_is_named_alone(section: str, key: str, default: float, looser: float | None,
                                               tighter: float | None) -> None:
    assert overrides(with_setting(section, key, default)) == []
    if tighter is not None:
        assert overrides(with_setting(section, key, tighter)) == []
    if looser is None:
        return
    (o,) = overrides(with_setting(section, key, looser))
    assert (o.code, o.setting, o.value, o.default) == ("threshold_loosened", f"{section}.{key}", looser, default)
    assert o.message == f"{section}.{key} is {looser:g}, looser than the default {default:g}"


def test_min_rows_ready_loosened() -> None:
    (o,) = overrides(config(readiness={"min_rows_directional": 2, "min_rows_ready": 3}))[1:]
    assert (o.setting, o.value, o.default) == ("readiness.min_rows_ready", 3, 4)
    assert [x.setting for x in overrides(config(readiness={"min_rows_directional": 2, "min_rows_ready": 3}))] == [
        "readiness.min_rows_directional", "readiness.min_rows_ready"]


def test_crossing_half_not_counted_is_named() -> None:
    (o,) = overrides(config(sensitivity__materiality={"prob_positive_crosses_half": False}))
    assert (o.code, o.setting, o.value, o.default) == (
        "threshold_loosened", "sensitivity.materiality.prob_positive_crosses_half", False, True)
    assert o.message == ("sensitivity.materiality.prob_positive_crosses_half is false: P(mu > 0) crossing 0.5 "
                         "across the prior grid is not counted as material")
    assert overrides(config(sensitivity__materiality={"prob_positive_crosses_half": True})) == []


def test_diagnostics_downgraded_to_warnings() -> None:
    (o,) = overrides(config(diagnostics={"on_failure": "warn"}))
    assert (o.code, o.setting, o.value, o.default) == ("diagnostics_downgraded", "diagnostics.on_failure", "warn",
                                                       "block")
    assert o.message == ("diagnostics.on_failure is warn: a failed sampler diagnostic or exact cross-check is a "
                         "warning, not a failed run (the run is then never reportable)")
    assert overrides(config(diagnostics={"on_failure": "block"})) == []


@pytest.mark.parametrize("priors", [
    {"mu_mean": 0.1}, {"mu_sd": 0.5}, {"tau_scale": 0.2}, {"tau_family": "half_cauchy"},
    {"expected_effect": {"lower": -5, "upper": 10, "unit": "relative_percent"}},
    {"typical_spread": {"value": 2, "unit": "relative_percent"}},
])
def test_priors_without_justification(priors: dict[str, Any]) -> None:
    (o,) = overrides(config(priors=priors))
    assert (o.code, o.setting, o.value, o.default) == ("priors_unjustified", "priors", "set in the config", None)
    assert o.message == ("priors are set in the config without priors.justification: write down why (the source "
                         "of the expected effect and spread)")
    assert overrides(config(priors={**priors, "justification": "from last year's tests"})) == []


def test_a_justification_alone_is_not_an_override() -> None:
    assert overrides(config(priors={"justification": "defaults, on purpose"})) == []


def test_everything_at_once_in_a_fixed_order() -> None:
    cfg = config(readiness={"min_rows_directional": 2}, diagnostics={"max_rhat": 1.1, "min_bfmi": 0.1,
                                                                     "on_failure": "warn"},
                 sensitivity__materiality={"interval_width_change": 1.0, "prob_positive_crosses_half": False},
                 priors={"tau_scale": 1.0})
    assert [(o.code, o.setting) for o in overrides(cfg)] == [
        ("threshold_loosened", "readiness.min_rows_directional"),
        ("threshold_loosened", "diagnostics.max_rhat"),
        ("threshold_loosened", "diagnostics.min_bfmi"),
        ("threshold_loosened", "sensitivity.materiality.interval_width_change"),
        ("threshold_loosened", "sensitivity.materiality.prob_positive_crosses_half"),
        ("diagnostics_downgraded", "diagnostics.on_failure"),
        ("priors_unjustified", "priors"),
    ]
