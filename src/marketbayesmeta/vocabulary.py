"""The words config, plan, tracker and outputs share, each defined once.

Literal aliases are used by the pydantic models (config, plan, run status), the tuples by code that
iterates or validates. Units and their transforms live in ``compiler/units.py`` (the tracker's unit
list is derived from it); tau prior families in :mod:`marketbayesmeta.families`.
"""

from __future__ import annotations

from typing import Literal, get_args

from .families import FAMILY_NAMES

Scale = Literal["log_relative", "percentage_point"]
SCALES: tuple[str, ...] = get_args(Scale)

ScenarioLevel = Literal["low", "medium", "high"]
SCENARIO_LEVELS: tuple[str, ...] = get_args(ScenarioLevel)

TauFamilyName = Literal[FAMILY_NAMES]  # type: ignore[valid-type]

Decision = Literal["included", "excluded", "scenario"]
Readiness = Literal["ready", "directional", "not_recommended"]
RunStatusName = Literal["completed", "completed_with_warnings", "blocked", "failed"]
UncertaintySource = Literal["standard_error", "confidence_interval", "scenario", "none"]
NutsSampler = Literal["pymc", "nutpie"]
OnFailure = Literal["block", "warn"]
