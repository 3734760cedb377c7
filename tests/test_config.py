"""Config validation: defaults, errors with YAML paths, did-you-mean, safe loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import EXAMPLES, base_config
from marketbayesmeta.api import load_config
from marketbayesmeta.compiler.config_parse import parse_config
from marketbayesmeta.errors import ConfigError


def _err(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "c.yaml")
    return exc.value.render()


def test_example_config_is_valid_and_paths_resolve() -> None:
    cfg = load_config(EXAMPLES / "config.yaml")
    assert Path(cfg.data.tracker) == (EXAMPLES / "example_tracker.csv").resolve()
    assert Path(cfg.outputs.directory) == (EXAMPLES.parent / "output" / "example_geo_sales_uplift").resolve()


def test_defaults() -> None:
    cfg = parse_config(yaml.safe_dump(base_config()), "c.yaml")
    assert cfg.sampler.target_accept == 0.9
    assert cfg.diagnostics.max_exact_z == 4
    assert cfg.readiness.min_rows_ready == 4
    assert cfg.priors.mu_sd is None  # resolved scale-aware by the compiler


def test_unknown_key_did_you_mean() -> None:
    cfg = base_config()
    cfg["sampler"]["chians"] = 4
    msg = _err(yaml.safe_dump(cfg))
    assert "sampler.chians" in msg and "did you mean 'chains'" in msg


def test_unknown_top_level_key() -> None:
    cfg = base_config()
    cfg["prior"] = {}
    msg = _err(yaml.safe_dump(cfg))
    assert "did you mean 'priors'" in msg


def test_wrong_type_names_path_value_and_accepted() -> None:
    cfg = base_config()
    cfg["sampler"]["chains"] = "four"
    msg = _err(yaml.safe_dump(cfg))
    assert "sampler.chains" in msg and "four" in msg and "whole number" in msg


def test_wrong_literal() -> None:
    cfg = base_config()
    cfg["analysis"]["scale"] = "log"
    msg = _err(yaml.safe_dump(cfg))
    assert "analysis.scale" in msg and "log_relative" in msg and "percentage_point" in msg


def test_yaml_syntax_error_has_line_and_column() -> None:
    msg = _err("version: 1\nproject:\n  name: [unclosed\n")
    assert "line" in msg and "column" in msg


def test_python_tag_refused() -> None:
    msg = _err("!!python/object/apply:os.system ['touch pwned']\n")
    assert "constructor" in msg or "tag" in msg
    assert not Path("pwned").exists()


def test_alias_bomb_refused() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    assert "aliases" in _err(bomb)


def test_duplicate_key_refused() -> None:
    assert "duplicate key" in _err("version: 1\nversion: 1\n")


def test_tabs_refused_with_position() -> None:
    msg = _err("version: 1\nproject:\n\tname: x\n")
    assert "line 3" in msg


def test_readiness_order() -> None:
    cfg = base_config(readiness={"min_rows_directional": 5, "min_rows_ready": 4})
    assert "min_rows_ready" in _err(yaml.safe_dump(cfg))


def test_empty_config() -> None:
    assert "empty" in _err("")
