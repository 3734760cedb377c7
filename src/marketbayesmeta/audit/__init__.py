"""Audit tools: manifests, verification, review bundles and plan/run diffs (no PyMC/ArviZ here)."""

from __future__ import annotations

from .archive import ArchiveRefused, archive_run
from .diff import DiffResult, Side, diff_plans, load_side
from .manifest import build_manifest, read_manifest, write_manifest
from .verify import UnsafeArchiveError, VerifyResult, verify_run

__all__ = [
    "ArchiveRefused",
    "DiffResult",
    "Side",
    "UnsafeArchiveError",
    "VerifyResult",
    "archive_run",
    "build_manifest",
    "diff_plans",
    "load_side",
    "read_manifest",
    "verify_run",
    "write_manifest",
]
