"""Compiling at scale: a 20,000-row tracker compiles, and the streamed hash and writers give the
same bytes as the whole-document forms. (Time and memory targets live in benchmarks/: make bench.)"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest

from helpers import EXAMPLES, with_pool
from marketbayesmeta.api import compile_config
from marketbayesmeta.canonical import (
    CanonicalJSONError,
    StreamedArray,
    canonical_bytes,
    canonical_dumps,
    canonical_hash,
    iter_canonical,
    pretty_dumps,
    sha256_hex,
)
from marketbayesmeta.plan import Plan, load_plan, plan_to_text, write_plan

N_ROWS = 20_000
HEADER = ["study_id", "study_name", "evidence_type", "metric", "unit", "estimate", "standard_error",
          "ci_lower", "ci_upper", "ci_level", "uncertainty_scenario", "analysis_ready", "brand", "market",
          "channel", "population", "window_start", "window_end", "design", "source", "notes"]
FORWARD = {  # unit -> the reported value of a log-scale lift
    "relative_percent": lambda x: 100 * math.expm1(x), "relative_fraction": math.expm1, "ratio": math.exp,
    "log_relative": lambda x: x, "percentage_point": lambda x: 20 * x,
    "proportion_difference": lambda x: 0.2 * x,
}


def _write_tracker(path: Path, n: int, seed: int = 7) -> None:
    """Every unit, SE / CI / scenario uncertainty, every exclusion reason, non-ASCII text and
    commas; every 200th row re-enters the previous study's keys (possible duplicates) and every
    500th copies the previous row exactly (a blocking duplicate when both are comparable)."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        prev: list[str] | None = None
        for i in range(n):
            unit = rng.choices(list(FORWARD), weights=[35, 20, 20, 10, 10, 5])[0]
            ev = rng.choices(["geo_test", "lift_test", "mmm", "brand_lift"], weights=[60, 20, 15, 5])[0]
            metric = rng.choices(["sales", "conversions", "iroas"], weights=[80, 12, 8])[0]
            lift, sd, f_ = rng.gauss(0.03, 0.04), abs(rng.gauss(0.02, 0.008)) + 0.003, FORWARD[unit]
            se = lo = hi = lvl = scn = ""
            kind = rng.choices(["se", "ci", "scenario"], weights=[6, 3, 1])[0]
            if kind == "se":
                se = f"{abs(f_(lift + sd) - f_(lift)):.5g}"
            elif kind == "ci":
                lvl, z = [("90", 1.6448536), ("95", 1.959964), ("0.8", 1.2815516)][i % 3]
                lo, hi = f"{f_(lift - z * sd):.6g}", f"{f_(lift + z * sd):.6g}"
            else:
                scn = ("low", "medium", "high")[i % 3]
            day = 1 + rng.randrange(28)
            record = [f"S{i:06d}", f"Étude {i} \u2014 {ev}, {metric}", ev, metric, unit, f"{f_(lift):.6g}", se,
                      lo, hi, lvl, scn, "yes" if rng.random() < 0.85 else "no", f"brand{rng.randrange(40)}",
                      f"market-{rng.randrange(60)}", rng.choice(["tv", "search", "social"]), "all shoppers",
                      f"2023-{1 + i % 12:02d}-{day:02d}", f"2024-{1 + i % 12:02d}-{day:02d}",
                      "matched-market holdout", "vendor", "see deck, p. 3" if i % 5 == 0 else ""]
            if prev is not None and i % 500 == 0:
                record = [record[0], *prev[1:11], "yes", *prev[12:]]
            elif prev is not None and i % 200 == 0:
                record = [*record[:2], *prev[2:4], *record[4:11], "no", *prev[12:15], record[15], *prev[16:18],
                          *record[18:]]
            w.writerow(record)
            prev = record


@pytest.fixture(scope="module")
def big_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    d = tmp_path_factory.mktemp("scale")
    _write_tracker(d / "tracker.csv", N_ROWS)
    (d / "config.yaml").write_text(
        "version: 1\nproject: {name: scale}\ndata: {tracker: tracker.csv}\n"
        "analysis: {metric: sales, scale: log_relative, evidence_types: [geo_test, lift_test]}\n"
        "outputs: {directory: out}\n", encoding="utf-8")
    return compile_config(d / "config.yaml")


def test_large_tracker_compiles(big_plan: Plan) -> None:
    plan = big_plan
    assert len(plan.pool().rows) == N_ROWS
    assert [r.row for r in plan.pool().rows] == list(range(2, N_ROWS + 2))
    decisions = Counter(r.decision for r in plan.pool().rows)
    assert plan.pool().readiness.included == decisions["included"] > 0
    assert plan.pool().readiness.scenario == decisions["scenario"] > 0
    assert {r.reason for r in plan.pool().rows} == {
        "included", "scenario", "other_metric", "evidence_type_not_in_pool", "triangulate_only",
        "not_analysis_ready", "incompatible_unit", "blocking_duplicate"}
    kinds = Counter(d.kind for d in plan.pool().duplicates)
    assert kinds["possible"] > 0 and kinds["blocking"] > 0
    assert [d.rows[0] for d in plan.pool().duplicates] == sorted(d.rows[0] for d in plan.pool().duplicates)
    blocked = next(r for r in plan.pool().rows if r.reason == "blocking_duplicate")
    group = next(d for d in plan.pool().duplicates if d.kind == "blocking" and blocked.row in d.rows)
    assert f"{group.study_ids[0]} (row {group.rows[0]})" in blocked.reason_message
    assert plan.plan_hash == plan.compute_hash()


def test_large_plan_hash_and_text_equal_the_whole_document_forms(big_plan: Plan, tmp_path: Path) -> None:
    content = big_plan.content()
    compact = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert big_plan.plan_hash == canonical_hash(content) == sha256_hex(compact.encode("utf-8"))
    # the readable form, on a part of the plan (json's indenting encoder is slow)
    part = with_pool(big_plan, rows=big_plan.pool().rows[:2_500]).with_hash()
    assert plan_to_text(part) == json.dumps(part.model_dump(mode="json"), sort_keys=True, indent=2,
                                            ensure_ascii=False) + "\n"
    path = write_plan(part, tmp_path / "plan.json")
    assert path.read_text(encoding="utf-8") == plan_to_text(part, tmp_path)
    assert load_plan(path).plan_hash == part.plan_hash


# -- streamed (incremental) hashing ---------------------------------------------------------------------

VALUES = [
    {"b": 1, "a": [1.5, "x"]},
    {"ünïcode": "naïve — “quoted” 🙂 中文", "escapes": 'tab\t "q" \\ \u0000 \u2028', "emoji": ["🙂"]},
    [0.1, 0.30000000000000004, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, 1e16, 3.0, 2**53 + 1, -(2**63)],
    {"nested": {"z": {"y": [None, True, False, {}, []]}, "a": [[], [{}]]}},
    "just a string",
    2.5,
    None,
]


def _reference_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _reference_hash(value: object) -> str:
    return hashlib.sha256(_reference_text(value).encode("utf-8")).hexdigest()


@pytest.mark.parametrize("value", VALUES)
def test_streamed_hash_equals_the_canonical_hash(value: object) -> None:
    assert canonical_hash(value) == sha256_hex(canonical_bytes(value)) == _reference_hash(value)
    assert "".join(iter_canonical(value)) == canonical_dumps(value)
    streamed = {"items": StreamedArray(lambda: [[value], [], [value, value]]), "after": value,
                "none": StreamedArray(lambda: [])}
    plain = {"items": [value, value, value], "after": value, "none": []}
    assert canonical_dumps(streamed) == canonical_dumps(plain)
    assert canonical_hash(streamed) == canonical_hash(plain) == _reference_hash(plain)
    assert pretty_dumps(streamed) == pretty_dumps(plain) == json.dumps(
        plain, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    # streamed arrays inside dicts inside a list (a plan's pools, each with its rows)
    nested = {"pools": [streamed, {"rows": StreamedArray(lambda: [[value]])}, value], "n": 1}
    nested_plain = {"pools": [plain, {"rows": [value]}, value], "n": 1}
    assert canonical_dumps(nested) == canonical_dumps(nested_plain) == _reference_text(nested_plain)
    assert pretty_dumps(nested) == json.dumps(nested_plain, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_nan_is_rejected_with_its_path() -> None:
    batches = [[{"x": 1.0}, {"x": 2.0}], [{"x": 3.0}, {"x": math.nan}]]
    document = {"n": 4, "rows": StreamedArray(lambda: batches)}
    for write in (canonical_hash, canonical_dumps, pretty_dumps):
        with pytest.raises(CanonicalJSONError, match=r"^\$\.rows\[3\]\.x: nan is not allowed"):
            write(document)
    with pytest.raises(CanonicalJSONError, match=r"^\$\.a\[1\]\.b: inf is not allowed"):
        canonical_hash({"a": [1, {"b": math.inf}]})
    with pytest.raises(CanonicalJSONError, match=r"^\$\.a: key 10 is not a string"):
        canonical_hash({"a": {10: 1, 9: 2}})  # json would write it, as {"9":2,"10":1}


def test_plan_hash_names_a_bad_value_in_a_row() -> None:
    plan = compile_config(EXAMPLES / "config.yaml")
    rows = list(plan.pool().rows)
    rows[1] = rows[1].model_copy(update={"model_se": math.nan})
    with pytest.raises(CanonicalJSONError, match=r"^\$\.pools\[0\]\.rows\[1\]\.model_se: nan is not allowed"):
        with_pool(plan, rows=rows).compute_hash()
    rows[1] = plan.pool().rows[1].model_copy(update={"notes": "lone \ud800 surrogate"})
    bad = with_pool(plan, rows=rows)
    with pytest.raises(UnicodeEncodeError) as streamed:
        bad.compute_hash()
    with pytest.raises(UnicodeEncodeError) as whole:
        canonical_bytes(bad.content())
    assert str(streamed.value) == str(whole.value)  # positioned in the whole text
