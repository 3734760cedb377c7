"""Which evidence must be triangulated, not pooled (pure; issue 15 item 4).

Model outputs (marketing/media mix models, attribution models, econometric models) and efficiency
ratios (ROI, ROAS, CPA, ...) are compared with the pooled result, never pooled with experiments,
unless the config gives a written justification.

Rules:

* **Spelling.** A label is compared after :func:`normalise`: case folded, ``&`` read as "and",
  every run of characters other than letters and digits (``_ - . space`` and punctuation) made one
  space, letters spelled out one by one joined (R.O.I. → roi), each word singularised (``-ies`` → ``-y``; a final ``s`` dropped from words longer than
  three letters, not from ``-ss`` nor from ROAS and its prefixed forms) and a few word variants unified (:data:`WORD_VARIANTS`:
  modelling/modeling/modelled → model, advertising/ads → ad). A parenthesised part is tried on its
  own and the label without it too, so "Return on ad spend (ROAS)" matches both ways.
* **Recognised (triangulate-only).** The normalised label equals one of the known synonyms
  (:data:`EVIDENCE_SYNONYMS`, :data:`METRIC_SYNONYMS`) or an entry of the config's
  ``analysis.triangulate_only`` extension (normalised the same way). :func:`triangulate_only`
  gives the reason, :func:`triangulate_only_reasons` does it for whole columns.
* **Looks like a model output (hint, not a decision).** A label that is *not* recognised but
  contains a known synonym as whole words (e.g. "mmm q4 refresh"), or a hint word
  (:data:`EVIDENCE_HINT_WORDS` for evidence types; :data:`METRIC_HINT_WORDS` and the phrase
  "return on" for metrics), or, for metrics, a word shaped like an efficiency acronym
  (:data:`METRIC_ACRONYM`: ROI/ROAS with an ``i``/``m`` prefix or a window suffix such as
  ``roas7d``; ``cp`` + one or two letters: cpa, cpc, cpm, cpic, and ``icpa``).
  :func:`looks_like_model_output` returns the hint; :func:`model_output_checks` makes review checks
  (code ``possible_model_output``) of the pool's rows. The fix is to extend the list in the config,
  or to acknowledge the check when the label is an experiment after all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..checks import Check, make_check

WORD_VARIANTS: dict[str, str] = {
    "modelling": "model", "modeling": "model", "modelled": "model", "modeled": "model",
    "advertising": "ad", "advertisement": "ad", "ads": "ad", "advert": "ad",
}

# canonical description -> spellings (normalised at import)
_EVIDENCE: dict[str, tuple[str, ...]] = {
    "a marketing mix model": (
        "mmm", "mmm model", "bayesian mmm", "marketing mix model", "marketing mix", "media mix model",
        "media mix", "market mix model", "marketing mix modelling", "media mix modelling", "mix model",
        "mix modelling", "marketing mix modeling", "media mix modeling", "robyn", "meridian",
        "lightweight mmm", "lightweightmmm", "pymc marketing"),
    "an econometric model": ("econometric model", "econometric", "econometrics", "econometric modelling"),
    "an attribution model": (
        "mta", "multi touch attribution", "multitouch attribution", "multi touch attribution model",
        "attribution model", "attribution", "data driven attribution", "algorithmic attribution"),
}
_METRICS: dict[str, tuple[str, ...]] = {
    "a return on investment (efficiency ratio)": (
        "roi", "mroi", "iroi", "m roi", "i roi", "romi", "return on investment", "marginal roi", "incremental roi",
        "marginal return on investment", "incremental return on investment",
        "return on marketing investment"),
    "a return on ad spend (efficiency ratio)": (
        "roas", "iroas", "mroas", "i roas", "m roas", "return on ad spend", "return on advertising spend",
        "incremental roas", "marginal roas", "incremental return on ad spend"),
    "a cost per acquisition (efficiency ratio)": (
        "cpa", "icpa", "i cpa", "cost per acquisition", "cost per incremental acquisition",
        "incremental cost per acquisition", "cost per incremental conversion", "cost per conversion"),
    "a cost per order (efficiency ratio)": ("cpo", "cost per order", "cost per incremental order"),
    "pa2 (a model-based metric)": ("pa2",),
}
EVIDENCE_HINT_WORDS = frozenset({"model", "mmm", "attribution", "econometric", "mta", "regression",
                                 "forecast", "simulation", "simulated"})
METRIC_HINT_WORDS = frozenset({"roi", "roas", "romi", "cost", "spend", "per", "efficiency", "payback"})
METRIC_HINT_PHRASES = ("return on",)
# efficiency acronyms: roi, mroi, iroas, roas7d, roi90d; cpa, cpc, cpm, icpa, cpic
METRIC_ACRONYM = re.compile(r"^(?:(?:i|m|in|incr)?ro(?:i|as?)(?:\d+[a-z]*)?|i?cp[a-z]{1,2})$")
_SPELLED_OUT = re.compile(r"\b[a-z0-9](?: [a-z0-9]\b)+")  # "r o i" (from R.O.I.) -> "roi"
_KEEP_FINAL_S = re.compile(r"^(?:i|m|in|incr)?roas$")  # ROAS is singular
_PAREN = re.compile(r"\(([^()]*)\)")


class TriangulateOnlyExtension(BaseModel):
    """``analysis.triangulate_only``: more evidence types and metrics that are triangulate-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    evidence_types: list[str] = Field(default_factory=list, description="extra triangulate-only evidence types")
    metrics: list[str] = Field(default_factory=list, description="extra triangulate-only metrics")

    @field_validator("evidence_types", "metrics")
    @classmethod
    def _labels(cls, values: list[str]) -> list[str]:
        blank = [i for i, v in enumerate(values) if not normalise(v)]
        if blank:
            raise ValueError(f"entries {blank} are blank (after removing separators); give a label")
        return values


@lru_cache(maxsize=4096)
def normalise(label: str) -> str:
    """The comparison form of a label (module docstring): ``"Marketing-Mix Models"`` →
    ``"marketing mix model"``."""
    text = re.sub(r"[\W_]+", " ", str(label).casefold().replace("&", " and ")).strip()
    text = _SPELLED_OUT.sub(lambda m: m.group(0).replace(" ", ""), text)
    return " ".join(WORD_VARIANTS.get(w, w) for w in (_singular(w) for w in text.split()))


def _singular(word: str) -> str:
    if word in WORD_VARIANTS or _KEEP_FINAL_S.match(word):
        return word
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _table(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {normalise(s): what for what, spellings in groups.items() for s in spellings}


EVIDENCE_SYNONYMS: dict[str, str] = _table(_EVIDENCE)  # normalised spelling -> description
METRIC_SYNONYMS: dict[str, str] = _table(_METRICS)
_EXTENSION = "listed in analysis.triangulate_only"


def _readings(label: str) -> tuple[str, ...]:
    """The label normalised, without its parenthesised parts, and each such part."""
    raw = str(label)
    found = [normalise(raw), normalise(_PAREN.sub(" ", raw))] + [normalise(m) for m in _PAREN.findall(raw)]
    return tuple(dict.fromkeys(f for f in found if f))


def _recognise(label: str, table: dict[str, str], extra: frozenset[str]) -> str | None:
    for reading in _readings(label):
        if reading in table:
            return table[reading]
        if reading in extra:
            return _EXTENSION
    return None


def _extra(values: Iterable[str]) -> frozenset[str]:
    return frozenset(n for n in (normalise(v) for v in values) if n)


def triangulate_only(evidence_type: str, metric: str, extra_evidence: Iterable[str] = (),
                     extra_metrics: Iterable[str] = ()) -> str | None:
    """Why a row of this evidence type and metric is triangulate-only, or None when it is not.

    E.g. ``triangulate_only("Marketing-Mix Model", "ROAS")`` →
    ``"evidence type 'Marketing-Mix Model' is a marketing mix model; metric 'ROAS' is a return on
    ad spend (efficiency ratio)"``.
    """
    return _reason(evidence_type, metric, _extra(extra_evidence), _extra(extra_metrics))


def _reason(evidence_type: str, metric: str, extra_evidence: frozenset[str],
            extra_metrics: frozenset[str]) -> str | None:
    parts = []
    what = _recognise(evidence_type, EVIDENCE_SYNONYMS, extra_evidence)
    if what:
        parts.append(f"evidence type '{evidence_type}' is {what}")
    what = _recognise(metric, METRIC_SYNONYMS, extra_metrics)
    if what:
        parts.append(f"metric '{metric}' is {what}")
    return "; ".join(parts) or None


def _pairs_map(evidence_type: pd.Series, metric: pd.Series, fn) -> pd.Series:  # noqa: ANN001
    """Apply ``fn(evidence_type, metric) -> str | None`` once per distinct pair; "" for None."""
    pairs = list(zip(evidence_type.astype(str), metric.astype(str), strict=True))
    memo = {pair: fn(*pair) or "" for pair in dict.fromkeys(pairs)}
    return pd.Series([memo[p] for p in pairs], index=evidence_type.index, dtype=object)


def triangulate_only_reasons(evidence_type: pd.Series, metric: pd.Series,
                             extension: TriangulateOnlyExtension | None = None) -> pd.Series:
    """:func:`triangulate_only` for whole columns: the reason per row, "" where not triangulate-only."""
    ext = extension or TriangulateOnlyExtension()
    ev, me = _extra(ext.evidence_types), _extra(ext.metrics)
    return _pairs_map(evidence_type, metric, lambda e, m: _reason(e, m, ev, me))


def _contains_phrase(words: list[str], phrases: Iterable[str]) -> str | None:
    text = f" {' '.join(words)} "
    return next((p for p in sorted(phrases, key=lambda p: (-len(p), p)) if f" {p} " in text), None)


def _hint_words(label: str, table: dict[str, str], extra: frozenset[str], hint_words: frozenset[str],
                hint_phrases: tuple[str, ...] = (), acronym: re.Pattern[str] | None = None) -> list[str]:
    """Why an unrecognised label looks like a model output or ratio: the words that say so."""
    if _recognise(label, table, extra):
        return []
    why: list[str] = []
    for reading in _readings(label):
        words = reading.split()
        phrase = _contains_phrase(words, set(table) | extra | set(hint_phrases))
        if phrase:
            why.append(phrase)
        why += [w for w in words if w in hint_words or (acronym is not None and acronym.match(w))]
    return list(dict.fromkeys(why))


def looks_like_model_output(evidence_type: str, metric: str, extra_evidence: Iterable[str] = (),
                            extra_metrics: Iterable[str] = ()) -> str | None:
    """A hint when an unrecognised evidence type or metric looks like a model output or an
    efficiency ratio (module docstring), else None. Recognised labels give None: they are
    triangulate-only already."""
    return _hint(evidence_type, metric, _extra(extra_evidence), _extra(extra_metrics))


def _hint(evidence_type: str, metric: str, extra_evidence: frozenset[str], extra_metrics: frozenset[str]) -> str | None:
    parts = []
    words = _hint_words(evidence_type, EVIDENCE_SYNONYMS, extra_evidence, EVIDENCE_HINT_WORDS)
    if words:
        parts.append(f"evidence type '{evidence_type}' looks like a model output ({_quoted(words)}): if it "
                     "is one, add it to analysis.triangulate_only.evidence_types")
    words = _hint_words(metric, METRIC_SYNONYMS, extra_metrics, METRIC_HINT_WORDS, METRIC_HINT_PHRASES,
                        METRIC_ACRONYM)
    if words:
        parts.append(f"metric '{metric}' looks like an efficiency ratio or model output ({_quoted(words)}): "
                     "if it is one, add it to analysis.triangulate_only.metrics")
    return "; ".join(parts) or None


def _quoted(words: list[str]) -> str:
    return "contains " + ", ".join(f"'{w}'" for w in words)


def model_output_hints(evidence_type: pd.Series, metric: pd.Series,
                       extension: TriangulateOnlyExtension | None = None) -> pd.Series:
    """:func:`looks_like_model_output` for whole columns: the hint per row, "" where none."""
    ext = extension or TriangulateOnlyExtension()
    ev, me = _extra(ext.evidence_types), _extra(ext.metrics)
    return _pairs_map(evidence_type, metric, lambda e, m: _hint(e, m, ev, me))


def model_output_checks(rows: pd.DataFrame, extension: TriangulateOnlyExtension | None = None,
                        ) -> tuple[Check, ...]:
    """Review checks (``possible_model_output``) for the rows of a pool whose evidence type or metric
    looks like a model output; one check per distinct hint, naming its rows. ``rows`` needs columns
    ``row``, ``study_id``, ``evidence_type``, ``metric``."""
    hints = model_output_hints(rows["evidence_type"], rows["metric"], extension)
    out = []
    for hint in dict.fromkeys(h for h in hints if h):
        members = hints == hint
        rr, ids = rows.loc[members, "row"].tolist(), rows.loc[members, "study_id"].astype(str).tolist()
        where = ("row " if len(rr) == 1 else "rows ") + ", ".join(map(str, sorted(rr)))
        out.append(make_check("possible_model_output", rr, ids,
                              f"{where}: {hint}; if it is an experiment after all, acknowledge this check",
                              details={"hint": hint}))
    return tuple(out)
