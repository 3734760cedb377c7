"""Settings changed in the less conservative direction, made visible (pure).

A reviewer should see, without reading the config, what the analyst relaxed: a readiness or
diagnostic threshold looser than its default, diagnostic failures downgraded to warnings
(``diagnostics.on_failure: warn``), a materiality rule that tolerates more prior dependence, and
priors set in the config without ``priors.justification``. Each becomes an :class:`Override` in the
plan and a reason in run_status.json and the report. Tightening a setting is not listed.
"""

from __future__ import annotations

from typing import Any

from ..plan import Override
from ..settings import Diagnostics, Materiality
from .config import Config, Readiness

# (section, key, the direction that is looser): ">" looser when the value is above the default
LOOSER: tuple[tuple[str, str, str], ...] = (
    ("readiness", "min_rows_directional", "<"),
    ("readiness", "min_rows_ready", "<"),
    ("diagnostics", "max_rhat", ">"),
    ("diagnostics", "min_ess_bulk", "<"),
    ("diagnostics", "min_ess_tail", "<"),
    ("diagnostics", "max_divergences", ">"),
    ("diagnostics", "max_exact_z", ">"),
    ("diagnostics", "min_bfmi", "<"),
    ("sensitivity.materiality", "mean_shift_sd", ">"),
    ("sensitivity.materiality", "prob_positive_shift", ">"),
    ("sensitivity.materiality", "interval_width_change", ">"),
)
DEFAULTS: dict[str, Any] = {"readiness": Readiness(), "diagnostics": Diagnostics(),
                            "sensitivity.materiality": Materiality()}


def _section(config: Config, section: str) -> Any:
    value: Any = config
    for part in section.split("."):
        value = getattr(value, part)
    return value


def overrides(config: Config) -> list[Override]:
    """The pool's visible overrides, in a fixed order."""
    out = []
    for section, key, looser in LOOSER:
        value, default = getattr(_section(config, section), key), getattr(DEFAULTS[section], key)
        if (value > default) if looser == ">" else (value < default):
            out.append(Override(code="threshold_loosened", setting=f"{section}.{key}", value=value, default=default,
                                message=f"{section}.{key} is {value:g}, looser than the default {default:g}"))
    m = config.sensitivity.materiality
    if not m.prob_positive_crosses_half:
        out.append(Override(code="threshold_loosened", setting="sensitivity.materiality.prob_positive_crosses_half",
                            value=False, default=True, message="sensitivity.materiality.prob_positive_crosses_half "
                            "is false: P(mu > 0) crossing 0.5 across the prior grid is not counted as material"))
    if config.diagnostics.on_failure == "warn":
        out.append(Override(code="diagnostics_downgraded", setting="diagnostics.on_failure", value="warn",
                            default="block", message="diagnostics.on_failure is warn: a failed sampler diagnostic "
                            "or exact cross-check is a warning, not a failed run (the run is then never reportable)"))
    if config.priors.stated and config.priors.justification is None:
        out.append(Override(code="priors_unjustified", setting="priors", value="set in the config", default=None,
                            message="priors are set in the config without priors.justification: write down why "
                            "(the source of the expected effect and spread)"))
    return out
