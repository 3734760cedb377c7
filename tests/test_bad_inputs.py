"""The bad-input corpus (tests/data/bad): every case exits 2 with a message that names the file,
row, column and value as applicable, prints no traceback, and writes nothing.

Regenerate the corpus with ``python tests/data/bad/make_cases.py``; see its docstring for the
layout of ``expect.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from marketbayesmeta.api import compile_config
from marketbayesmeta.canonical import pretty_dumps
from marketbayesmeta.cli import _dispatch, build_parser
from marketbayesmeta.plan import write_plan

BAD = Path(__file__).parent / "data" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if (p / "expect.json").is_file())
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _load(case: str) -> dict:
    return json.loads((BAD / case / "expect.json").read_text(encoding="utf-8"))


def test_corpus_is_complete():
    assert len(CASES) >= 40
    commands = {_load(c)["command"] for c in CASES}
    assert {"check-config", "compile", "execute", "run"} <= commands


# -- plan corruption (execute cases) -----------------------------------------------------------------

def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(pretty_dumps(data), encoding="utf-8")


def _edit(data: dict) -> None:
    data["pools"][0]["rows"][0]["model_estimate"] = 0.5  # an analyst "fixing" a number by hand


def _nan_literal(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    text, n = re.subn(r'("interval": )[0-9.]+', r"\1NaN", text)
    assert n == 1
    path.write_text(text, encoding="utf-8")


def _touch_tracker(path: Path) -> None:
    tracker = path.parent / "tracker.csv"
    tracker.write_bytes(tracker.read_bytes() + b"\n")  # same rows, different sha256


PLAN_MUTATIONS = {
    "none": lambda p: None,
    "truncate": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "binary": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe garbage"),
    "edit": lambda p: _edit_json(p, _edit),
    "drop_hash": lambda p: _edit_json(p, lambda d: d.pop("plan_hash")),
    "future_format": lambda p: _edit_json(p, lambda d: d.update(format="marketbayesmeta.plan/3")),
    "json_list": lambda p: p.write_text("[1, 2, 3]\n", encoding="utf-8"),
    "nan_literal": _nan_literal,
    "drop_field": lambda p: _edit_json(p, lambda d: d.pop("layout")),
    "stale_tracker": _touch_tracker,
    "delete": lambda p: p.unlink(),
}


def _prepare_plan(case_dir: Path, mutate: str) -> None:
    plan_path = case_dir / "plan.json"
    write_plan(compile_config(case_dir / "config.yaml"), plan_path)
    PLAN_MUTATIONS[mutate](plan_path)


# -- running and snapshots ---------------------------------------------------------------------------

def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (hidden ones included) with a hash of its content."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _run_in_process(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = _dispatch(argv, build_parser())
    except SystemExit as exc:  # argparse errors
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _run_subprocess(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MARKETBAYESMETA_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "marketbayesmeta", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case, tmp_path_factory, capsys, monkeypatch):
    expect = _load(case)
    # a neutral directory name: the case's name must not leak into messages and match fragments
    tmp_path = tmp_path_factory.mktemp("c")
    if expect.get("readonly") and IS_ROOT:
        pytest.skip("running as root: chmod does not stop writes")
    case_dir = tmp_path / "case"
    shutil.copytree(BAD / case, case_dir)
    (case_dir / "expect.json").unlink()
    if "plan" in expect:
        _prepare_plan(case_dir, expect["plan"]["mutate"])
    readonly = [case_dir / rel for rel in expect.get("readonly", [])]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MARKETBAYESMETA_DEBUG", raising=False)
    argv = [a.replace("{case}", str(case_dir)) for a in expect["argv"]]
    before = snapshot(tmp_path)
    for p in readonly:
        p.chmod(0o555)
    try:
        if expect.get("subprocess"):
            code, out, err = _run_subprocess(argv, tmp_path)
        else:
            code, out, err = _run_in_process(argv, capsys)
    finally:
        for p in readonly:
            p.chmod(0o755)
    context = f"\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
    assert code == expect["exit"], context
    for fragment in expect["stderr"]:
        assert fragment in err, f"missing {fragment!r}{context}"
    for fragment in expect.get("stderr_absent", []):
        assert fragment not in err, f"unexpected {fragment!r}{context}"
    assert "Traceback" not in out + err, context
    assert "internal error" not in err, context
    assert snapshot(tmp_path) == before, f"files were written or changed{context}"
