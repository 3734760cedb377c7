"""The report's plots, each a function ``RunData -> matplotlib Figure``, looked up by name.

:func:`render` is the one way a plot becomes a PNG: it draws it, marks it across the whole figure
when the run is FAILED, BLOCKED or of unknown status, and closes it; or it returns the same plot
drawn ahead from the same files (``cache.py``, ``report/prerender.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..load import RunData
from . import cache
from .checks import plot_ppc, plot_sensitivity
from .common import figure_png, plt, watermark
from .forest import forest_caption, plot_forest
from .history import plot_cumulative, plot_influence
from .moderators import plot_moderator_bubbles, plot_moderator_subgroups
from .priors import plot_prior_posterior
from .sampler import plot_rank, plot_trace

PLOTS: dict[str, Callable[[RunData], Any]] = {
    "forest": plot_forest,
    "prior_posterior": plot_prior_posterior,
    "sensitivity": plot_sensitivity,
    "influence": plot_influence,
    "cumulative": plot_cumulative,
    "moderator_bubbles": plot_moderator_bubbles,
    "moderator_subgroups": plot_moderator_subgroups,
    "ppc": plot_ppc,
    "trace": plot_trace,
    "rank": plot_rank,
}


# What each plot shows, in words: the image's alternative text in report.html (screen readers, a
# page whose images do not load); the forest plot's is used by the summary block (summary.py).
ALT_TEXT: dict[str, str] = {
    "forest": "Forest plot: each study's estimate and interval, and the pooled effect with its interval",
    "prior_posterior": "Prior and posterior densities of the pooled effect and of the between-study spread",
    "sensitivity": "Pooled effect and interval under each prior and uncertainty setting of the sensitivity grid",
    "influence": "Pooled effect and interval with each study left out in turn",
    "cumulative": "Pooled effect and interval as the studies were added, in order of their measurement window",
    "moderator_bubbles": "Study estimates against the moderator, sized by precision, with the fitted meta-regression",
    "moderator_subgroups": "Pooled effect and interval for each level of the moderator",
    "ppc": "Each study's observed estimate against the range the model predicts for it (posterior predictive check)",
    "trace": "Per-chain posterior densities and traces of mu and tau (model scale): the chains should overlap",
    "rank": "Rank plots of mu and tau per chain: roughly uniform bars mean the chains agree",
}


def render(name: str, run: RunData) -> bytes:
    """PNG bytes of plot ``name`` (raises MissingInput when its inputs are missing): the one drawn
    ahead from the same inputs (cache.py), or drawn now."""
    drawn = cache.lookup(name, run)
    return drawn if drawn is not None else draw(name, run)


def draw(name: str, run: RunData, *, mark: bool = True) -> bytes:
    """Draw plot ``name`` now: PNG bytes, marked across the whole figure if the run is unusable
    (``mark``; figures drawn ahead are not: cache.py serves them to usable runs only)."""
    try:
        fig = PLOTS[name](run)
    except BaseException:
        plt().close("all")
        raise
    if mark and run.unusable:
        watermark(fig, run.unusable)
    return figure_png(fig)


__all__ = ["ALT_TEXT", "PLOTS", "draw", "render", "forest_caption"]
