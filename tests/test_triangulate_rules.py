"""Triangulate-only recognition, rule by rule (compiler/triangulate.py): the spelling rules of
``normalise`` on the function itself, the readings of a parenthesised label, and the hint and check
texts word for word.

``normalise`` is memoised (lru_cache); the spelling rules are tested on ``normalise.__wrapped__``
so that a cache filled earlier in the process (``make mutation`` runs many tests in one) cannot
answer for them."""

from __future__ import annotations

import pandas as pd
import pytest

from marketbayesmeta.compiler.triangulate import (
    TriangulateOnlyExtension,
    looks_like_model_output,
    model_output_checks,
    model_output_hints,
    normalise,
    triangulate_only,
    triangulate_only_reasons,
)

rules = normalise.__wrapped__


@pytest.mark.parametrize("raw, normal", [
    ("Models", "model"), ("Media Mix Models", "media mix model"),  # a final s dropped after 3+ letters
    ("Agencies", "agency"), ("studies", "study"),  # -ies -> -y
    ("ies", "ies"), ("bus", "bus"), ("gas", "gas"), ("its", "its"),  # three letters: kept
    ("pies", "py"), ("toys", "toy"),  # four letters: the rules apply
    ("glass", "glass"), ("Business", "business"),  # -ss kept
    ("ROAS", "roas"), ("iROAS", "iroas"), ("mroas", "mroas"), ("incrROAS", "incrroas"),  # ROAS is singular
    ("ads", "ad"), ("Advertising", "ad"), ("modelled", "model"),  # word variants, not singularised
    ("Sales", "sale"), ("Conversions", "conversion"), ("S", "s"),
])
def test_spelling_rules(raw: str, normal: str) -> None:
    assert rules(raw) == normal


@pytest.mark.parametrize("label, recognised", [
    ("Marketing Mix Model (Q4 2025)", True),  # only the label without its parenthesis matches
    ("(ROAS) campaign view", True),  # only the part in parentheses matches
    ("mix (model)", True),  # only the whole label read together matches
    ("Return on Ad Spend (ROAS)", True),
    ("Geo test (holdout)", False),
])
def test_each_reading_of_a_parenthesised_label_counts(label: str, recognised: bool) -> None:
    evidence = triangulate_only(label, "sales")
    metric = triangulate_only("geo_test", label)
    assert (evidence is not None or metric is not None) == recognised


def test_hint_texts_word_for_word() -> None:
    assert looks_like_model_output("MMM Q4 refresh", "sales") == (
        "evidence type 'MMM Q4 refresh' looks like a model output (contains 'mmm'): if it is one, add it to "
        "analysis.triangulate_only.evidence_types")
    assert looks_like_model_output("geo_test", "cost per click") == (
        "metric 'cost per click' looks like an efficiency ratio or model output (contains 'cost', 'per'): if it is "
        "one, add it to analysis.triangulate_only.metrics")
    assert looks_like_model_output("regression model", "revenue per dollar") == (
        "evidence type 'regression model' looks like a model output (contains 'regression', 'model'): if it is one, "
        "add it to analysis.triangulate_only.evidence_types; metric 'revenue per dollar' looks like an efficiency "
        "ratio or model output (contains 'per'): if it is one, add it to analysis.triangulate_only.metrics")
    assert looks_like_model_output("geo_test", "sales") is None


def test_both_reasons_word_for_word() -> None:
    assert triangulate_only("Marketing-Mix Model", "ROAS") == (
        "evidence type 'Marketing-Mix Model' is a marketing mix model; metric 'ROAS' is a return on ad spend "
        "(efficiency ratio)")


def test_model_output_checks_word_for_word_and_through_the_extension() -> None:
    rows = pd.DataFrame({"row": [7, 3, 9], "study_id": ["a", "b", "c"],
                         "evidence_type": ["MMM Q4", "geo_test", "MMM Q4"], "metric": ["sales", "sales", "cpc"]})
    checks = model_output_checks(rows)
    hint_mmm = looks_like_model_output("MMM Q4", "sales")
    hint_both = looks_like_model_output("MMM Q4", "cpc")
    assert [(c.rows, c.study_ids, c.message, c.details) for c in checks] == [
        ((7,), ("a",), f"row 7: {hint_mmm}; if it is an experiment after all, acknowledge this check",
         {"hint": hint_mmm}),
        ((9,), ("c",), f"row 9: {hint_both}; if it is an experiment after all, acknowledge this check",
         {"hint": hint_both}),
    ]
    # listed in analysis.triangulate_only, the label is no longer a hint (the cpc metric still is)
    ext = TriangulateOnlyExtension(evidence_types=["mmm q4"])
    (check,) = model_output_checks(rows, ext)
    assert check.rows == (9,) and check.details == {"hint": looks_like_model_output("MMM Q4", "cpc", ["mmm q4"])}
    assert check.message.startswith("row 9: metric 'cpc' looks like")


@pytest.mark.parametrize("fn", [triangulate_only_reasons, model_output_hints])
def test_columns_of_different_lengths_are_an_error_not_truncated(fn) -> None:  # noqa: ANN001
    # two columns of one tracker always have one length; a longer metric column must not be cut to the
    # evidence column's length without a word (zip(strict=True))
    evidence = pd.Series(["geo_test", "MMM"], index=[4, 5])
    metric = pd.Series(["sales", "roas", "cpa"])
    with pytest.raises(ValueError, match="zip"):
        fn(evidence, metric)
    # the same columns at one length: a value per row, on the evidence column's index
    assert fn(evidence, metric.iloc[:2]).index.tolist() == [4, 5]
