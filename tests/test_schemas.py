"""specs/*.schema.json are generated from the models; they must not drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketbayesmeta.cli import _dispatch, build_parser
from marketbayesmeta.schemas import GENERATED, schema_text

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.mark.parametrize("which", GENERATED)
def test_checked_in_schema_matches_model(which: str) -> None:
    checked_in = (SPECS / f"{which}.schema.json").read_text(encoding="utf-8")
    assert checked_in == schema_text(which), f"specs/{which}.schema.json drifted: run `make schema`"


def test_schema_command_prints_config_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert _dispatch(["schema"], build_parser()) == 0
    assert capsys.readouterr().out == (SPECS / "config.schema.json").read_text(encoding="utf-8")


def test_config_schema_forbids_unknown_keys() -> None:
    schema = json.loads(schema_text("config"))
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) >= {"version", "project", "data", "analysis", "priors", "uncertainty",
                                         "sampler", "diagnostics", "readiness", "sensitivity", "reporting",
                                         "outputs"}
