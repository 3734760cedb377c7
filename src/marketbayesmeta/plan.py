"""The frozen analysis plan: the one model the compiler writes and the runtime reads.

A plan holds one or more pools (:class:`Pool`): each is a self-contained meta-analysis (its tracker
rows and decisions, priors, sensitivity grid and settings) with its own ``pool_hash``. A single-pool
config gives layout ``single`` (the pool's files at the run directory's root); ``pools`` or
``analysis.split_by`` give layout ``portfolio`` (``pools/<name>/``).

``plan_hash`` is the sha256 of the canonical JSON of every field except ``plan_hash`` and
``locations``. ``locations`` holds where the config, tracker and output directory were, relative to
the directory holding plan.json, so moving the plan never changes its hash and a copied project
tree gives a byte-identical plan.json.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .canonical import (
    CanonicalJSONError,
    StreamedArray,
    canonical_bytes,
    canonical_hash,
    iter_pretty,
    load_versioned,
    pretty_dumps,
)
from .checks import Check
from .design import DesignMatrix
from .errors import PlanError
from .safeio import read_input, write_atomic  # issue 16: exclusive temporary file
from .settings import Diagnostics, Materiality, Reporting, Sampler
from .vocabulary import (
    Decision,
    Readiness,
    Scale,
    ScenarioLevel,
    TauFamilyName,
    UncertaintySource,
)

PLAN_FORMAT = "marketbayesmeta.plan/2"
UNHASHED_FIELDS = frozenset({"plan_hash", "locations"})
_ROW_BATCH = 1_000  # rows dumped at a time when a plan is hashed or written

FitKind = Literal["main", "prior", "uncertainty", "leave_one_out", "moderators"]
Layout = Literal["single", "portfolio"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provenanced(_Frozen):
    value: float | str
    provenance: Literal["default", "config"]


class Transform(_Frozen):
    name: str  # e.g. "log1p_percent", "identity", "none"
    formula: str  # human-readable, e.g. "log(1 + x/100)"
    uncertainty_method: Literal["delta_method", "ci_width", "scenario", "none"]
    parameters: dict[str, float | str] = Field(default_factory=dict)


class Row(_Frozen):
    """One tracker row and what the compiler decided for it."""

    row: int  # spreadsheet row number (header = 1)
    study_id: str
    study_name: str = ""
    evidence_type: str
    metric: str
    unit: str
    source_estimate: float
    source_se: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    ci_level: float | None = None  # as a fraction, e.g. 0.9
    uncertainty_scenario: str | None = None
    analysis_ready: bool
    brand: str = ""
    market: str = ""
    channel: str = ""
    population: str = ""
    window_start: str = ""
    window_end: str = ""
    design: str = ""
    source: str = ""
    notes: str = ""
    decision: Decision
    reason: str  # reason code, e.g. "included", "other_metric"
    reason_message: str
    transform: Transform
    model_estimate: float | None = None
    model_se: float | None = None
    uncertainty_source: UncertaintySource


class DuplicateGroup(_Frozen):
    kind: Literal["blocking", "possible"]
    study_ids: list[str]
    rows: list[int]
    message: str


class ReadinessVerdict(_Frozen):
    pool: str  # "evidence_types/metric/scale"
    eligible: int
    included: int
    scenario: int
    readiness: Readiness
    why: str
    min_rows_directional: int
    min_rows_ready: int


class PriorSet(_Frozen):
    mu_mean: float
    mu_sd: float
    tau_scale: float
    tau_family: TauFamilyName


class MaterialityRule(Materiality):
    rule: str  # the rule in words, for the report


class Fit(_Frozen):
    """One model fit of the sensitivity grid."""

    name: str  # "main", "prior:weak", "uncertainty:high", "loo:<study_id>"
    kind: FitKind
    label: str  # prior spec name, scenario level or left-out study id; "main" for main
    priors: PriorSet
    scenario_level: ScenarioLevel | None = None  # overrides every scenario row's SE
    leave_out: str | None = None  # study_id left out
    seed: int
    same_as: str | None = None  # the fit this one is identical to (same priors and data): not computed twice


class SensitivityPlan(_Frozen):
    prior: bool
    uncertainty: bool
    uncertainty_status: str  # "applicable", "disabled", or "not applicable: ..." (no fit)
    leave_one_out: bool
    reference_prior: str  # prior spec name the deltas are taken against
    materiality: MaterialityRule


class Source(_Frozen):
    name: str  # file name only (no directory: locations are outside the hash)
    sha256: str
    size: int


class Locations(_Frozen):
    """Where the sources and outputs are (not hashed): absolute in memory, relative to plan.json's
    directory on disk."""

    config: str
    tracker: str
    output_directory: str


class ModeratorPlan(_Frozen):
    """A meta-regression of the pool: the design matrix over its pooled rows (in pool order) and the
    coefficients' Normal priors (the intercept takes mu's prior)."""

    design: DesignMatrix
    beta_mean: list[float]
    beta_sd: list[float]
    beta_sd_setting: Provenanced  # priors.beta_sd, or mu's prior sd by default


class Override(_Frozen):
    """A setting changed from its default in the less conservative direction, or priors stated without
    a written justification: shown to the reviewer as a reason of the run."""

    code: Literal["threshold_loosened", "diagnostics_downgraded", "priors_unjustified"]
    setting: str  # e.g. "diagnostics.max_rhat"
    value: float | int | str | bool
    default: float | int | str | bool | None
    message: str


class Pool(_Frozen):
    """One pool of the plan: everything its execution reads (rows, priors, grid, settings).

    ``pool_hash`` is the sha256 of the canonical JSON of the pool's content (every field but
    ``pool_hash``) together with the plan's package version, project name and notes: a pool whose
    hash is unchanged gives the same files, which is what incremental portfolio runs rely on.
    """

    name: str  # unique within the plan; the pool's directory under pools/ in a portfolio run
    pool_hash: str = ""
    label: str  # "evidence_types/metric/scale" plus filters, readiness.csv's "pool" column
    metric: str
    scale: Scale
    evidence_types: list[str]
    filters: dict[str, list[str]] = Field(default_factory=dict)  # tracker column -> accepted values
    triangulate_only_justification: str | None
    rows: list[Row]
    duplicates: list[DuplicateGroup]
    readiness: ReadinessVerdict
    priors: dict[str, Provenanced]  # mu_mean, mu_sd, tau_scale, tau_family
    prior_conversion: dict[str, Any] | None = None  # business terms -> model scale (stated values, formulas)
    priors_implied: str = ""  # what the priors say in the pool's own unit
    priors_justification: str | None = None
    scenario_se: dict[str, Provenanced]  # low, medium, high (model-scale SEs)
    sampler: Sampler
    thresholds: Diagnostics
    sensitivity: SensitivityPlan
    fits: list[Fit]
    reporting: Reporting
    checks: list[Check] = Field(default_factory=list)  # plausibility findings (acknowledged ones marked)
    moderators: ModeratorPlan | None = None
    overrides: list[Override] = Field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """``model_dump(mode="json")`` with ``rows`` streamed (see :func:`_rows_stream`)."""
        dumped = self.model_dump(mode="json", exclude={"rows"})
        return {name: _rows_stream(self.rows) if name == "rows" else dumped[name] for name in type(self).model_fields}

    def compute_hash(self, context: dict[str, Any]) -> str:
        return canonical_hash({"context": context, "pool": {k: v for k, v in self.document().items()
                                                             if k != "pool_hash"}})

    def fit(self, name: str) -> Fit:
        for f in self.fits:
            if f.name == name:
                return f
        raise KeyError(name)

    def fit_data(self, fit: Fit) -> tuple[list[str], list[float], list[float]]:
        """(study_ids, y, se) that enter ``fit``: included and scenario rows, in plan order."""
        ids, ys, ses = [], [], []
        for r in self.rows:
            if r.decision == "excluded" or r.study_id == fit.leave_out:
                continue
            se = r.model_se
            if r.decision == "scenario" and fit.scenario_level is not None:
                se = float(self.scenario_se[fit.scenario_level].value)
            if r.model_estimate is None or se is None:  # the compiler never lets such a row in
                raise PlanError(f"pool {self.name}: row {r.row} ({r.study_id}) is pooled without a model-scale "
                                "estimate and SE; recompile the plan")
            ids.append(r.study_id)
            ys.append(r.model_estimate)
            ses.append(se)
        return ids, ys, ses

    @property
    def has_blocking_duplicates(self) -> bool:
        return any(d.kind == "blocking" for d in self.duplicates)


class Plan(_Frozen):
    format: Literal["marketbayesmeta.plan/2"] = PLAN_FORMAT
    package_version: str
    plan_hash: str = ""
    project_name: str
    project_notes: str
    sources: dict[str, Source]  # "config", "tracker"
    layout: Layout  # "single": one pool, its files at the run directory's root; "portfolio": pools/<name>/
    pools: list[Pool]
    locations: Locations | None = None

    # -- derived views -------------------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        """The hashed content: everything but ``plan_hash`` and ``locations``."""
        return self.model_dump(mode="json", exclude=set(UNHASHED_FIELDS))

    def compute_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`content`, streamed (rows dumped in batches)."""
        try:
            return content_hash(self._document())
        except UnicodeEncodeError:
            canonical_bytes(self.content())  # raises again, positioned in the whole text
            raise

    def _document(self) -> dict[str, Any]:
        """``model_dump(mode="json")`` with every pool's ``rows`` streamed, so that a plan of many rows
        is hashed or written without dumping them all at once."""
        dumped = self.model_dump(mode="json", exclude={"pools"})
        dumped["pools"] = [pool.document() for pool in self.pools]
        return {name: dumped[name] for name in type(self).model_fields}

    def pool_context(self) -> dict[str, Any]:
        """What a pool's hash covers besides the pool itself."""
        return {"format": self.format, "package_version": self.package_version,
                "project_name": self.project_name, "project_notes": self.project_notes}

    def with_hash(self) -> Plan:
        context = self.pool_context()
        pools = [p.model_copy(update={"pool_hash": p.compute_hash(context)}) for p in self.pools]
        plan = self.model_copy(update={"pools": pools})
        return plan.model_copy(update={"plan_hash": plan.compute_hash()})

    def pool(self, name: str | None = None) -> Pool:
        """The pool called ``name``; without a name, the only pool of a single-pool plan."""
        if name is None:
            if len(self.pools) != 1:
                raise KeyError(f"the plan has {len(self.pools)} pools; name one")
            return self.pools[0]
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)


def content_hash(document: dict[str, Any]) -> str:
    """The plan-hash rule, for a plan object's document or a plan.json read as plain JSON: sha256
    of the canonical JSON of every field but :data:`UNHASHED_FIELDS`."""
    return canonical_hash({k: v for k, v in document.items() if k not in UNHASHED_FIELDS})


def _rows_stream(rows: list[Row]) -> StreamedArray:
    """``rows`` as JSON, :data:`_ROW_BATCH` at a time (their dicts are ``dict[str, ...]``)."""
    def batches() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(rows), _ROW_BATCH):
            yield [r.model_dump(mode="json") for r in rows[start:start + _ROW_BATCH]]

    return StreamedArray(batches, string_keys=True)


# -- reading and writing ---------------------------------------------------------------------------

def _relative(target: str, base_dir: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), base_dir.resolve())).as_posix()


def _absolute(target: str, base_dir: Path) -> str:
    return str((base_dir / target).resolve())


def _rebase(plan: Plan, convert: Callable[[str, Path], str], base: Path) -> Plan:
    if plan.locations is None:
        return plan
    loc = plan.locations
    return plan.model_copy(update={"locations": Locations(
        config=convert(loc.config, base), tracker=convert(loc.tracker, base),
        output_directory=convert(loc.output_directory, base))})


def plan_to_text(plan: Plan, plan_dir: str | Path | None = None) -> str:
    """Readable JSON (sorted keys, indented, canonical float rule).

    In memory, ``locations`` are absolute; on disk they are relative to ``plan_dir`` (the
    directory the plan is written to), so the file has no absolute path in it.
    """
    if plan_dir is not None:
        plan = _rebase(plan, _relative, Path(plan_dir))
    return pretty_dumps(plan._document())


def pool_to_text(pool: Pool) -> str:
    """A pool's section of the plan as readable JSON (``pool.json`` of a portfolio run)."""
    return pretty_dumps(pool.document())


def write_plan(plan: Plan, path: str | Path) -> Path:
    """Write ``plan`` to ``path`` atomically (locations stored relative to its directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = _rebase(plan, _relative, path.parent)._document()
    # the text of plan_to_text, written as it is made; the temporary file is created exclusively,
    # never through a planted symlink, and removed if anything fails (issue 16)
    return write_atomic(path, iter_pretty(document))


def parse_plan(text: str | bytes, filename: str = "plan.json") -> Plan:
    """Parse and integrity-check a plan: refuses bad JSON, unknown formats and edited content."""
    data = load_versioned(text, filename, "plan", PLAN_FORMAT, PlanError,
                          "; recompile the config with this version ('marketbayesmeta compile CONFIG')")
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise PlanError(f"{filename}: not a valid plan ({exc.error_count()} problem(s); first at "
                        f"'{loc}': {first['msg']}). Was it edited by hand? Recompile it.") from None
    try:
        expected = plan.compute_hash()
    except (UnicodeEncodeError, CanonicalJSONError) as exc:  # e.g. a lone surrogate "\ud800"
        raise PlanError(f"{filename}: not a valid plan ({exc}). Was it edited by hand? "
                        "Recompile it.") from None
    if plan.plan_hash != expected:
        raise PlanError(f"{filename}: the plan's content does not match its plan_hash (recorded "
                        f"{plan.plan_hash[:12] or '(none)'}…, content {expected[:12]}…): it was edited "
                        "after compile. Recompile it from the config instead of editing plan.json.")
    context = plan.pool_context()
    for pool in plan.pools:
        if pool.pool_hash != pool.compute_hash(context):
            raise PlanError(f"{filename}: pool {pool.name!r} does not match its pool_hash: the plan was edited "
                            "after compile. Recompile it from the config.")
    return plan


def load_plan(path: str | Path) -> Plan:
    """Read plan.json from disk (see :func:`parse_plan`)."""
    path = Path(path)
    raw = read_input(path, "plan", PlanError)  # a regular file only: a FIFO is refused, not waited on
    return _rebase(parse_plan(raw, str(path)), _absolute, path.resolve().parent)
