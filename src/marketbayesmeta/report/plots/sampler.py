"""Sampler plots of the main fit (appendix): per-chain densities and traces, rank plots."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..load import MissingInput, RunData
from .common import plt


def _chains(run: RunData, name: str) -> np.ndarray:
    """(chain, draw) array of ``name`` from the main fit's posterior."""
    post = run.posterior().posterior
    if name not in post:
        raise MissingInput(f"posterior.nc has no {name}")
    return np.asarray(post[name].transpose("chain", "draw").values, dtype=float)


def plot_trace(run: RunData) -> Any:
    """Per-chain posterior densities and traces of mu and tau (model scale)."""
    pyplot = plt()
    fig, axes = pyplot.subplots(2, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1, 2]}, layout="constrained")
    for row, name in enumerate(("mu", "tau")):
        x = _chains(run, name)
        lo, hi = np.quantile(x, [0.001, 0.999])
        bins = np.linspace(lo, hi, 60)
        for c in range(x.shape[0]):
            axes[row, 0].hist(x[c], bins=bins, histtype="step", density=True, lw=1.2, label=f"chain {c}")
            axes[row, 1].plot(x[c], lw=0.4, alpha=0.8)
        axes[row, 0].set_yticks([])  # density values mean nothing here; whether the chains overlap does
        axes[row, 0].set_title(f"{name} (model scale)", fontsize=9)
        axes[row, 1].set_title(f"{name} trace", fontsize=9)
        axes[row, 1].set_xlabel("draw")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Per-chain densities (left) and traces (right): chains should overlap", fontsize=10)
    return fig


def plot_rank(run: RunData) -> Any:
    """Rank plots of mu and tau: roughly uniform bars in every chain indicate good mixing."""
    pyplot = plt()
    fig, axes = pyplot.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    for ax, name in zip(axes, ("mu", "tau"), strict=True):
        x = _chains(run, name)
        n_chain, n_draw = x.shape
        ranks = x.ravel().argsort(kind="stable").argsort(kind="stable").reshape(x.shape)
        bins = np.linspace(0, x.size, 21)
        for c in range(n_chain):
            counts, _ = np.histogram(ranks[c], bins=bins)
            # one filled step outline per chain (not one rectangle per bin: 8x fewer artists to draw)
            ax.stairs(c + counts / n_draw * len(counts) * 0.8, bins, baseline=c, fill=True, alpha=0.8)
            ax.axhline(c + 0.8, color="k", ls="--", lw=0.6)
        ax.set_yticks(np.arange(n_chain) + 0.4, [f"chain {c}" for c in range(n_chain)])
        ax.set_xlabel("rank of draw (all chains pooled)")
        ax.set_title(name, fontsize=9)
    fig.suptitle("Rank plots per chain (roughly uniform bars: chains agree)", fontsize=10)
    return fig
