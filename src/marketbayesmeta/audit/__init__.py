"""The audit trail: what a reviewer does with plans and run directories (no PyMC/ArviZ here).

* ``manifest``: manifest.json, the sha256 and size of every file of a run (written last by execute);
* ``verify``: re-hash a run directory or an untrusted review bundle against its manifest;
* ``archive``: verify, then write one deterministic .zip / .tar.gz review bundle;
* ``diff``: what changed between two plans, run directories or bundles, pool by pool.
"""

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
