"""PyTensor's compile cache for marketbayesmeta's models: a directory of its own.

The first time a process compiles C code, PyTensor reads the index of its whole compile cache: the
key of every module ever compiled there, each unpickled (about 10 ms a module on 2 cores: 2 s for
the 220 modules a shared ``~/.pytensor`` held on the development machine). Every run and every
portfolio worker pays it, and a user's other PyMC work keeps growing it. marketbayesmeta therefore
compiles into a cache of its own, ``$XDG_CACHE_HOME/marketbayesmeta/pytensor`` (default
``~/.cache/marketbayesmeta/pytensor``), which holds only its own models' modules.

It is chosen only when PyTensor has not been imported yet (its configuration is read once, at
import) and only when the user has not chosen a directory: ``PYTENSOR_FLAGS`` naming
``base_compiledir`` or ``compiledir``, or a PyTensor configuration file (``PYTENSORRC``, default
``~/.pytensorrc``) naming either, wins. Child processes started afterwards (forked fit and chain
workers, portfolio workers) inherit the choice through ``PYTENSOR_FLAGS``. It is applied where the
runtime first loads the libraries (:func:`.libraries.load`).
"""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Mapping
from pathlib import Path

_KEYS = ("base_compiledir", "compiledir")


def _rc_names_a_directory(path: str) -> bool:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(Path(path).expanduser(), encoding="utf-8")
    except (OSError, RuntimeError, configparser.Error):
        return False
    return any(key in _KEYS for section in parser.sections() for key in parser.options(section))


def _user_chose(env: Mapping[str, str]) -> bool:
    """Whether PYTENSOR_FLAGS or a PyTensor configuration file names a compile directory."""
    flags = [f.split("=", 1)[0].strip() for f in env.get("PYTENSOR_FLAGS", "").split(",")]
    if any(f in _KEYS for f in flags):
        return True
    return any(_rc_names_a_directory(rc) for rc in env.get("PYTENSORRC", "~/.pytensorrc").split(os.pathsep))


def own_compiledir(env: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/marketbayesmeta/pytensor`` (``~/.cache/...`` when XDG_CACHE_HOME is unset
    or not absolute, as the XDG specification says)."""
    xdg = env.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path("~/.cache").expanduser()
    return base / "marketbayesmeta" / "pytensor"


def flags_with_own_compiledir(env: Mapping[str, str]) -> str | None:
    """The PYTENSOR_FLAGS value that adds our compile directory, or None when the user chose one (or
    there is no home directory to put it in). The path is quoted as PyTensor's parser (shlex, posix,
    comma-separated) reads it."""
    try:
        if _user_chose(env):
            return None
        path = str(own_compiledir(env))
        # always quoted: shlex.quote leaves a comma bare, and PyTensor splits on commas
        path = "'" + path.replace("'", "'\"'\"'") + "'"
    except RuntimeError:  # no home directory (Path.expanduser): leave PyTensor's default
        return None
    flags = env.get("PYTENSOR_FLAGS", "").strip(",")
    return f"{flags},base_compiledir={path}" if flags else f"base_compiledir={path}"


def use_own_compiledir() -> bool:
    """Point PyTensor (not imported yet) at our compile cache; True when it was done."""
    if "pytensor" in sys.modules:
        return False
    flags = flags_with_own_compiledir(os.environ)
    if flags is None:
        return False
    os.environ["PYTENSOR_FLAGS"] = flags
    return True
