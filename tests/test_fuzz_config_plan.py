"""Property tests: the config loader and the plan loader either succeed or raise an InputError
(exit 2 with a message), never any other exception, whatever text or bytes they are given."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from marketbayesmeta.api import compile_config
from marketbayesmeta.compiler.config import Config
from marketbayesmeta.compiler.config_parse import parse_config
from marketbayesmeta.errors import InputError
from marketbayesmeta.plan import Plan, parse_plan, plan_to_text

FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VALID_CONFIG = (EXAMPLES / "config.yaml").read_text(encoding="utf-8")
CONFIG_DICT = yaml.safe_load(VALID_CONFIG)


def config_outcome(text: str) -> Config | None:
    try:
        config = parse_config(text, "c.yaml")
    except InputError as exc:
        assert "c.yaml" in exc.render()
        return None
    assert isinstance(config, Config)
    return config


def plan_outcome(data: str | bytes) -> Plan | None:
    try:
        plan = parse_plan(data, "p.json")
    except InputError as exc:
        assert "p.json" in exc.render()
        return None
    assert isinstance(plan, Plan)
    assert plan.plan_hash == plan.compute_hash()
    return plan


# -- strategies ------------------------------------------------------------------------------------

KEYS = sorted({*CONFIG_DICT, *(k for v in CONFIG_DICT.values() if isinstance(v, dict) for k in v),
               "prior_specs", "name", "materiality", "nuts_sampler", "tau_family", "x", ""})
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["four", "log_relative", "percentage_point", "half_cauchy", "warn", "block",
                     "geo_test", "sales", "1e400", "-0", "2024-02-30", "yes", "~", "!!", "*a"]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                      max_size=4),
    max_leaves=20)
nested = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers()), children, max_size=5),
    max_leaves=25)

YAML_TOKENS = [
    "version: 1", "project:", "  name: x", "  notes: |", "data:", "  tracker: t.csv", "analysis:",
    "  metric: sales", "  scale: log_relative", "  evidence_types: [geo_test]", "sampler:",
    "  chains: four", "  draws: 1e9", "- a", "- ", ": ", "? ", "{", "}", "[", "]", ",", "&a", "*a",
    "!!python/object:os.system", "!!binary", "!!int", "!!float", "!!bool", "!!timestamp", "!!map",
    "!!set", "!!omap", "!!str", "<<:", "---", "...", "%YAML 1.1", "%TAG ! tag:x,2000:", "#", "\t",
    "'", '"', "|", ">", "\\", "\n", "  ", "\ufeff", "\x85", "2024-02-30", ".nan", ".inf", "null",
]
yamlish = st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=6), max_size=40).map("".join)


def paths(tree: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += paths(v, (*prefix, i))
    return out


def set_at(tree: object, path: tuple, value: object, delete: bool = False) -> object:
    if not path:
        return value
    tree = copy.deepcopy(tree)
    node = tree
    for part in path[:-1]:
        node = node[part]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


# -- config --------------------------------------------------------------------------------------

def test_the_valid_config_parses():
    assert config_outcome(VALID_CONFIG) is not None


@FAST
@given(st.text(max_size=500))
def test_config_random_text(text):
    config_outcome(text)


@FAST
@given(yamlish)
def test_config_yamlish_text(text):
    config_outcome(text)


@FAST
@given(nested)
def test_config_random_nested_dicts(tree):
    try:
        text = yaml.safe_dump(tree, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        assume(False)
    config_outcome(text)


@FAST
@given(st.data())
def test_config_mutated_valid_config(data):
    where = data.draw(st.sampled_from(paths(CONFIG_DICT)))
    tree = set_at(CONFIG_DICT, where, data.draw(nested), delete=data.draw(st.booleans()))
    config_outcome(yaml.safe_dump(tree, allow_unicode=True))


@FAST
@given(st.data())
def test_config_text_edits(data):
    """Character-level damage to the real config: insert, delete or replace a span."""
    text = VALID_CONFIG
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, min(len(text), i + 20)))
    insert = data.draw(st.sampled_from(YAML_TOKENS) | st.text(max_size=5))
    config_outcome(text[:i] + insert + text[j:])


# -- plan ------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def real_plan() -> tuple[str, dict]:
    tmp = Path(tempfile.mkdtemp(prefix="mbm-fuzz-"))
    try:
        shutil.copy(EXAMPLES / "config.yaml", tmp / "config.yaml")
        shutil.copy(EXAMPLES / "example_tracker.csv", tmp / "example_tracker.csv")
        text = plan_to_text(compile_config(tmp / "config.yaml"), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return text, json.loads(text)


def test_the_real_plan_parses():
    assert plan_outcome(real_plan()[0]) is not None


@FAST
@given(st.binary(max_size=2000))
def test_plan_random_bytes(data):
    plan_outcome(data)


@FAST
@given(json_values)
def test_plan_random_json(value):
    plan_outcome(json.dumps(value))
    if isinstance(value, dict):
        plan_outcome(json.dumps({"format": "marketbayesmeta.plan/1", **value}))


@FAST
@given(st.data())
def test_plan_mutated_real_plan(data):
    """Replace or delete one node of a real plan; sometimes re-hash so validation is passed."""
    _, tree = real_plan()
    where = data.draw(st.sampled_from(paths(tree)))
    mutated = set_at(tree, where, data.draw(json_values), delete=data.draw(st.booleans()))
    if data.draw(st.booleans()) and isinstance(mutated, dict):
        try:
            mutated["plan_hash"] = Plan.model_validate(mutated).compute_hash()
        except Exception:  # noqa: BLE001 - an invalid plan keeps its old hash
            pass
    plan_outcome(json.dumps(mutated))


@FAST
@given(st.data())
def test_plan_byte_damage(data):
    """Truncate, splice or flip bytes of a real plan."""
    raw = real_plan()[0].encode("utf-8")
    i = data.draw(st.integers(0, len(raw)))
    j = data.draw(st.integers(i, min(len(raw), i + 50)))
    insert = data.draw(st.binary(max_size=8) | st.sampled_from(
        [b"", b"NaN", b"Infinity", b"-1e999", b"1" * 5000, b'"', b"{", b"[" * 5000, b"\\ud800"]))
    plan_outcome(raw[:i] + insert + raw[j:])


def test_plan_edge_cases():
    for text in ["[" * 100_000, "{" * 100_000, '{"a":' * 50_000, "1" * 5000, '"\\ud800"', "",
                 "\ufeff{}", b"\xff\xfe{\x00}\x00", b"\x00\x00\x00{", "null", "NaN",
                 '{"format": ["marketbayesmeta.plan/1"]}', '{"format": {"a": 1}}']:
        plan_outcome(text)


def test_config_edge_cases():
    for text in ["? [a, b]\n: 1\n", "? {a: 1}\n: 1\n", "a: !!int x\n", "a: !!float x\n",
                 "a: !!timestamp x\n", "a: !!timestamp 2024-99-99\n", "a: 2024-02-30\n",
                 "a: !!map [1]\n", "a: !!bool maybe\n", "a: !!omap [a]\n", "<<: {a: 1}\n",
                 "[" * 100_000, "- " * 20_000 + "x", "\x00", "\ud800", "!!set {a, b}", "--- 1\n--- 2\n",
                 "a: !!binary '*'\n", "a: !!python/name:os.system\n", "a: !<tag:x> 1\n"]:
        config_outcome(text)
    # date-like text stays text (no config key is a date)
    assert config_outcome(VALID_CONFIG.replace("name: example_geo_sales_uplift",
                                               "name: 2024-03-01")).project.name == "2024-03-01"
