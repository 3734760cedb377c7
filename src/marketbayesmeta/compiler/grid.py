"""The sensitivity grid (one fit per prior spec, scenario level and left-out study) and per-fit seeds."""

from __future__ import annotations

import hashlib

from ..plan import Fit, PriorSet
from ..vocabulary import SCENARIO_LEVELS
from .config import Config
from .priors import prior_specs


def fit_seed(random_seed: int, fit_name: str) -> int:
    """Deterministic per-fit seed in [0, 2**31): sha256 of ``"<random_seed>/<fit name>"``."""
    digest = hashlib.sha256(f"{random_seed}/{fit_name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31)


def build_fits(config: Config, main: PriorSet, *, has_scenarios: bool, pooled_ids: list[str],
               scenario_levels: set[str] | None = None) -> tuple[list[Fit], str, str]:
    """(fits, uncertainty_status, reference prior name).

    A fit identical to main (a prior spec with main's priors; the scenario level every scenario row
    already has, in ``scenario_levels``) is marked ``same_as="main"``: it is the same posterior, so it
    is neither computed nor sampled again, and its sensitivity row equals main's."""
    seed = config.sampler.random_seed
    fits = [Fit(name="main", kind="main", label="main", priors=main, seed=fit_seed(seed, "main"))]
    reference = "main"
    if config.sensitivity.prior:
        specs = prior_specs(config, main)
        if any(name == "default" for name, _ in specs):
            reference = "default"
        for name, priors in specs:
            fit_name = f"prior:{name}"
            fits.append(Fit(name=fit_name, kind="prior", label=name, priors=priors,
                            seed=fit_seed(seed, fit_name), same_as="main" if priors == main else None))
    if not config.sensitivity.uncertainty:
        status = "disabled"
    elif not has_scenarios:
        status = "not applicable: no scenario-uncertainty rows enter the pool"
    else:
        status = "applicable"
        for level in SCENARIO_LEVELS:
            fit_name = f"uncertainty:{level}"
            fits.append(Fit(name=fit_name, kind="uncertainty", label=level, priors=main,
                            scenario_level=level, seed=fit_seed(seed, fit_name),
                            same_as="main" if scenario_levels == {level} else None))
    if config.sensitivity.leave_one_out and len(pooled_ids) >= 3:
        for sid in pooled_ids:
            fit_name = f"loo:{sid}"
            fits.append(Fit(name=fit_name, kind="leave_one_out", label=sid, priors=main,
                            leave_out=sid, seed=fit_seed(seed, fit_name)))
    return fits, status, reference
