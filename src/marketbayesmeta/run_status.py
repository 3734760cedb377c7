"""The run_status.json document (SPEC §6): built through this model, so the file always matches
its JSON Schema (specs/run_status.schema.json).

A single-pool run has one run_status.json at the run directory's root. A portfolio run has one per
pool (``pools/<pool>/run_status.json``) and one at the root summarising the pools (``pools``; its
status, exit code and reportability are the worst of the pools').
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from .canonical import pretty_dumps
from .vocabulary import Readiness, RunStatusName

RUN_STATUS_FORMAT = "marketbayesmeta.run_status/2"


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str


class PoolStatus(BaseModel):
    """One pool's line in a portfolio's root run_status.json."""

    model_config = ConfigDict(extra="forbid")
    name: str
    status: RunStatusName
    exit_code: Literal[0, 3, 4]
    reportable: bool
    reused: bool
    pool_hash: str


class RunStatus(BaseModel):
    """Status, reportability and provenance of one execute (of a pool, or of a whole portfolio)."""

    model_config = ConfigDict(extra="forbid", title="marketbayesmeta run_status")

    format: Literal["marketbayesmeta.run_status/2"] = RUN_STATUS_FORMAT
    status: RunStatusName
    reportable: bool
    reasons: list[Reason]
    exit_code: Literal[0, 3, 4]
    plan_hash: str
    project_name: str
    layout: Literal["single", "portfolio"]
    pool: str | None  # None at the root of a portfolio run
    pool_hash: str | None
    engine: Literal["exact", "mcmc"] | None  # which engine produced the reported numbers
    readiness: Readiness | None
    allow_stale: bool
    stale_sources: list[str]
    started_at: str
    finished_at: str | None
    package_version: str
    versions: dict[str, str]
    headline: dict[str, float | str] | None
    pools: list[PoolStatus] | None = None  # portfolio root only

    def text(self) -> str:
        """The file's text (readable canonical JSON)."""
        return pretty_dumps(self.model_dump(mode="json"))
