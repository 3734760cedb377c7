"""The run_status.json document (SPEC §6), as a pydantic model for its JSON Schema and checks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str


class RunStatus(BaseModel):
    """Status, reportability and provenance of one execute."""

    model_config = ConfigDict(extra="forbid", title="marketbayesmeta run_status")

    status: Literal["completed", "completed_with_warnings", "blocked", "failed"]
    reportable: bool
    reasons: list[Reason]
    exit_code: Literal[0, 3, 4]
    plan_hash: str
    project_name: str
    readiness: Literal["ready", "directional", "not_recommended"]
    allow_stale: bool
    stale_sources: list[str]
    started_at: str
    finished_at: str | None
    package_version: str
    versions: dict[str, str]
    headline: dict[str, float | str] | None
