"""marketbayesmeta: audit-oriented Bayesian random-effects meta-analysis of marketing evidence."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("marketbayesmeta")
except PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0+unknown"
