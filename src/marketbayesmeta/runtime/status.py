"""Run status, exit code and reportability (SPEC §2, §7)."""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_CODES = {"completed": 0, "completed_with_warnings": 0, "blocked": 3, "failed": 4}

# Reasons that stop a result from being reportable (SPEC §7's rule); the others are warnings that
# do not touch the result.
NOT_REPORTABLE = frozenset({
    "readiness_not_recommended", "readiness_directional", "blocking_duplicates", "nothing_poolable",
    "sampling_failed", "diagnostics_failed", "diagnostics_warning", "material_prior_dependence",
    "prior_sensitivity_not_run", "scenario_uncertainty", "material_uncertainty_dependence", "stale_plan",
    "artefact_failed", "plausibility_blocking", "missing_source",
})
BLOCKING = frozenset({"readiness_not_recommended", "blocking_duplicates", "nothing_poolable"})
FAILING = frozenset({"sampling_failed", "diagnostics_failed", "artefact_failed"})


@dataclass
class StatusBook:
    """Collects reasons while a run proceeds and derives status, exit code and reportability."""

    reasons: list[dict[str, str]] = field(default_factory=list)

    def add(self, code: str, message: str) -> None:
        if not any(r["code"] == code and r["message"] == message for r in self.reasons):
            self.reasons.append({"code": code, "message": message})

    def codes(self) -> set[str]:
        return {r["code"] for r in self.reasons}

    @property
    def status(self) -> str:
        codes = self.codes()
        if codes & FAILING:
            return "failed"
        if codes & BLOCKING:
            return "blocked"
        return "completed_with_warnings" if codes else "completed"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def reportable(self) -> bool:
        return self.status in ("completed", "completed_with_warnings") and not (self.codes() & NOT_REPORTABLE)
