"""marketbayesmeta: audit-oriented Bayesian random-effects meta-analysis of marketing evidence."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("marketbayesmeta")
except PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0+unknown"

_API = {
    "load_config": "api", "load_tracker": "api", "compile_config": "api", "execute_plan": "api",
    "load_plan": "plan", "write_plan": "plan", "Plan": "plan",
    "diff_plans": "audit", "archive_run": "audit", "verify_run": "audit",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    """Lazy public API (``from marketbayesmeta import compile_config``) without importing PyMC."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
