"""The report's outline, declared once: sections in reading order, each a list of items (the
summary block, texts, tables, plots). report.html (through the notebook) and analysis_report.md
both walk this outline, so they follow the same order and show each table once.

Explanations here are static text (never run data): they say how to read what follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .findings import (
    cumulative_markdown,
    influence_markdown,
    moderators_markdown,
    triangulation_markdown,
)
from .fmt import MdSafe
from .load import RunData
from .plots import forest_caption
from .prose import (
    caveats_markdown,
    diagnostics_markdown,
    evidence_markdown,
    priors_markdown,
    sensitivity_markdown,
)

Kind = Literal["summary", "text", "table", "plot"]


@dataclass(frozen=True)
class Item:
    kind: Kind
    name: str
    quiet: bool = False  # when its input is missing, show nothing (the section's text already says why)

    @property
    def plot(self) -> str | None:
        """The plot this item draws: a plot item's own, the summary's forest plot
        (display.summary_block); None for texts and tables."""
        return "forest" if self.kind == "summary" else self.name if self.kind == "plot" else None


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: str
    items: tuple[Item, ...]


def _t(name: str, quiet: bool = False) -> Item:
    return Item("table", name, quiet)


def _p(name: str, quiet: bool = False) -> Item:
    return Item("plot", name, quiet)


def _x(name: str) -> Item:
    return Item("text", name)


TEXTS: dict[str, Callable[[RunData], MdSafe]] = {
    "caveats": caveats_markdown,
    "evidence": evidence_markdown,
    "forest_caption": lambda run: MdSafe(forest_caption(run)),
    "sensitivity": sensitivity_markdown,
    "priors": priors_markdown,
    "triangulation": triangulation_markdown,
    "influence": influence_markdown,
    "cumulative": cumulative_markdown,
    "moderators": moderators_markdown,
    "diagnostics": diagnostics_markdown,
}

SECTIONS: tuple[Section, ...] = (
    Section("summary", "", "", (Item("summary", "summary"),)),
    Section("review", "Caveats and what to check next", "", (_x("caveats"),)),
    Section("evidence", "Evidence",
            "Which tracker rows entered the pool, which were left out and why, and each pooled study's "
            "estimate before and after pooling.",
            (_x("evidence"), _x("forest_caption"), _t("readiness"), _t("rows"), _t("duplicates", quiet=True),
             _t("study_effects"))),
    Section("sensitivity", "Sensitivity",
            "How much the pooled average moves under other priors and other assumed uncertainties for rows "
            "without uncertainty of their own. Material changes follow the plan's materiality rule.",
            (_x("sensitivity"), _p("sensitivity"), _t("prior_sensitivity"), _t("uncertainty_sensitivity", quiet=True),
             _x("priors"), _t("priors"), _p("prior_posterior"))),
    Section("triangulation", "Triangulation", "",
            (_x("triangulation"), _t("triangulation", quiet=True))),
    Section("history", "Influence and history", "",
            (_x("influence"), _p("influence", quiet=True), _t("influence", quiet=True),
             _x("cumulative"), _p("cumulative", quiet=True), _t("cumulative", quiet=True))),
    Section("moderators", "Meta-regression", "",
            (_x("moderators"), _p("moderator_bubbles", quiet=True), _p("moderator_subgroups", quiet=True),
             _t("moderators", quiet=True))),
    Section("appendix", "Appendix: diagnostics and provenance",
            "Sampler diagnostics per fit (the full long table is diagnostics.csv), the reportability "
            "conditions as the files show them, prior diagnostics, the in-sample posterior predictive check "
            "(it spots studies out of line with the fitted model; it is not leave-one-out validation), the "
            "summary tables behind the headline, notes (free text from the config and tracker, shown as "
            "recorded and never executed) and provenance.",
            (_x("diagnostics"), _t("reportable_checklist"), _t("diagnostics_by_fit"), _t("failed_checks", quiet=True),
             _p("trace"), _p("rank"), _t("prior_diagnostics"), _p("ppc"), _t("ppc"), _t("pooled_summary"),
             _t("future_true_effect"), _t("heterogeneity"), _t("model_comparison"), _t("notes", quiet=True),
             _t("provenance"), _t("files"))),
)
SECTION_KEYS = tuple(s.key for s in SECTIONS)


def section(key: str) -> Section:
    return next(s for s in SECTIONS if s.key == key)
