"""Prior versus posterior of mu and tau, with the prior visible.

The posterior (draws from posterior.nc) is usually far narrower than the prior, so on one axis the
prior is a flat line lying on the x-axis. Here each panel spans the posterior's range and draws
the prior density on its own right-hand axis (scaled to its maximum over that range): a prior that
is nearly flat over the range reads as "the data decide", one that bends shows where it pulls.
Neither density axis has numbers: on their own scales they carry no meaning.
The tau prior's density comes from the family registry (``families.family(name).pdf``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...families import family
from ..fmt import format_number, plot_label
from ..load import MissingInput, RunData
from .common import COLORS, num, plt, unit_axis


def _draws(run: RunData, name: str) -> np.ndarray:
    post = run.posterior().posterior
    if name not in post:
        raise MissingInput(f"posterior.nc has no {name}")
    return np.asarray(post[name].values, dtype=float).ravel()


def _panel(ax: Any, draws: np.ndarray, lo: float, hi: float, prior_x: np.ndarray, prior_y: np.ndarray,
           prior_label: str) -> Any:
    heights, _, _ = ax.hist(draws, bins=60, range=(lo, hi), density=True, histtype="stepfilled", alpha=0.4,
                            color=COLORS["posterior"], label="posterior")
    ax.set_ylim(0, 1.5 * float(np.max(heights)) if np.max(heights) > 0 else 1.0)
    ax.set_ylabel("posterior density", color=COLORS["posterior"])
    ax.set_xlim(lo, hi)
    twin = ax.twinx()
    twin.plot(prior_x, prior_y, color=COLORS["prior"], lw=2.2, label=prior_label)
    top = float(np.nanmax(prior_y)) if np.isfinite(prior_y).any() else 1.0
    twin.set_ylim(0, 1.5 * top if top > 0 else 1.0)
    twin.set_ylabel("prior density (own scale)", color=COLORS["prior"])
    # densities on the model scale, each on its own axis: their numbers mean nothing to a reader
    # (the shapes and where they sit do), and their tick labels were a third of the drawing time
    ax.set_yticks([])
    twin.set_yticks([])
    flat = float(np.nanmin(prior_y)) / top if top > 0 else math.nan
    note = ("prior nearly flat here: the data decide" if flat > 0.9 else "the prior bends over this range")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7.5, loc="upper center", ncol=2, title=note, title_fontsize=7.5,
              framealpha=0.9)
    return twin


def plot_prior_posterior(run: RunData) -> Any:
    mu, tau = _draws(run, "mu"), _draws(run, "tau")
    pri = run.prior_values()
    unit = run.unit
    pyplot = plt()
    fig, axes = pyplot.subplots(1, 2, figsize=(10.5, 3.6), layout="constrained")
    m0, s0 = num(pri.get("mu_mean")), num(pri.get("mu_sd"))
    qlo, qhi = (float(q) for q in np.quantile(mu, [0.01, 0.99]))
    pad = 0.25 * (qhi - qlo) + 1e-12
    lo, hi = qlo - pad, qhi + pad
    x = np.linspace(lo, hi, 400)
    y = (np.exp(-0.5 * ((x - m0) / s0) ** 2) / (s0 * math.sqrt(2 * math.pi))
         if math.isfinite(m0) and s0 > 0 else np.full_like(x, np.nan))
    _panel(axes[0], mu, lo, hi, x, y, f"prior Normal({format_number(m0)}, {format_number(s0)})")
    unit_axis(axes[0], unit, label=f"mu: the average effect, {unit.axis_label}")
    axes[0].set_title("Average effect (mu): prior vs posterior", fontsize=10, loc="left")
    fam = str(pri.get("tau_family") or "half_normal")
    ts = num(pri.get("tau_scale"))
    thi = float(np.quantile(tau, 0.98)) * 1.2 + 1e-12
    xt = np.linspace(0, thi, 400)
    try:
        yt = family(fam).pdf(xt, ts) if math.isfinite(ts) and ts > 0 else np.full_like(xt, np.nan)
        label = f"prior {family(fam).describe(ts)}"
    except ValueError as exc:
        yt, label = np.full_like(xt, np.nan), f"prior {plot_label(fam)}: {exc}"
    _panel(axes[1], tau, 0.0, thi, xt, yt, label)
    unit_axis(axes[1], unit, spread=True, label=f"tau: spread between studies, {'±%' if unit.relative else unit.axis_label}")
    axes[1].set_title("Spread between studies (tau): prior vs posterior", fontsize=10, loc="left")
    return fig
