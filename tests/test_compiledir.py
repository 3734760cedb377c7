"""The runtime's own PyTensor compile cache (runtime/compiledir.py): chosen unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from marketbayesmeta.runtime.compiledir import flags_with_own_compiledir, own_compiledir


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTENSORRC": str(tmp_path / "no-rc"), **extra}


def test_own_compiledir_under_the_xdg_cache(tmp_path):
    assert own_compiledir(_env(tmp_path)) == tmp_path / "cache" / "marketbayesmeta" / "pytensor"
    home_cache = Path("~/.cache").expanduser() / "marketbayesmeta" / "pytensor"
    assert own_compiledir({}) == home_cache
    assert own_compiledir({"XDG_CACHE_HOME": "relative/dir"}) == home_cache  # XDG: relative is ignored


def test_flags_add_the_directory_and_keep_the_users_other_flags(tmp_path):
    own = tmp_path / "cache" / "marketbayesmeta" / "pytensor"
    assert flags_with_own_compiledir(_env(tmp_path)) == f"base_compiledir='{own}'"
    assert flags_with_own_compiledir(_env(tmp_path, PYTENSOR_FLAGS="floatX=float64,")) == (
        f"floatX=float64,base_compiledir='{own}'")


@pytest.mark.parametrize("flags", ["compiledir=/x", "floatX=float64, base_compiledir = /x"])
def test_a_directory_in_pytensor_flags_wins(tmp_path, flags):
    assert flags_with_own_compiledir(_env(tmp_path, PYTENSOR_FLAGS=flags)) is None


def test_a_directory_in_the_pytensor_configuration_file_wins(tmp_path):
    rc = tmp_path / "pytensorrc"
    rc.write_text("[global]\nfloatX = float64\n", encoding="utf-8")
    assert flags_with_own_compiledir(_env(tmp_path, PYTENSORRC=str(rc))) is not None
    rc.write_text("[global]\nbase_compiledir = /somewhere\n", encoding="utf-8")
    assert flags_with_own_compiledir(_env(tmp_path, PYTENSORRC=str(rc))) is None


@pytest.mark.parametrize("odd", ["a,b", "it's", "a#b", "a b", 'q"uote', "back\\slash"])
def test_any_path_reaches_pytensor_intact(tmp_path, odd):
    """PyTensor reads PYTENSOR_FLAGS with a posix shlex split on commas: the path is quoted for it."""
    from pytensor.configparser import parse_config_string

    env = {"XDG_CACHE_HOME": str(tmp_path / odd), "PYTENSORRC": "/nonexistent", "PYTENSOR_FLAGS": "floatX=float64"}
    parsed = parse_config_string(flags_with_own_compiledir(env))
    assert parsed == {"floatX": "float64", "base_compiledir": str(tmp_path / odd / "marketbayesmeta" / "pytensor")}


def test_a_configuration_file_in_colon_syntax_or_upper_case_wins(tmp_path):
    rc = tmp_path / "pytensorrc"
    rc.write_text("[global]\nBase_CompileDir: /somewhere\n", encoding="utf-8")
    assert flags_with_own_compiledir(_env(tmp_path, PYTENSORRC=str(rc))) is None


_PROBE = ("import marketbayesmeta.runtime.model, pytensor, os; "
          "print(pytensor.config.base_compiledir); print(os.environ.get('PYTENSOR_FLAGS'))")


def _probe(env: dict[str, str]) -> list[str]:
    full = {k: v for k, v in os.environ.items() if k != "PYTENSOR_FLAGS"}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", _PROBE], env=full, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_the_runtimes_first_pymc_import_points_pytensor_at_our_cache(tmp_path):
    """A run imports PyMC first in libraries.load (before the model module): the cache must
    be chosen there."""
    code = ("from marketbayesmeta.runtime import libraries; libraries.load(); import pytensor; "
            "print(pytensor.config.base_compiledir)")
    full = {k: v for k, v in os.environ.items() if k != "PYTENSOR_FLAGS"} | _env(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == tmp_path / "cache" / "marketbayesmeta" / "pytensor"


def test_importing_the_model_points_pytensor_at_our_cache_and_children_inherit_it(tmp_path):
    own = tmp_path / "cache" / "marketbayesmeta" / "pytensor"
    base, flags = _probe(_env(tmp_path))
    assert Path(base) == own and flags == f"base_compiledir='{own}'"
    mine = tmp_path / "mine"
    base, flags = _probe(_env(tmp_path, PYTENSOR_FLAGS=f"base_compiledir={mine}"))
    assert Path(base) == mine and flags == f"base_compiledir={mine}"
