"""The layering of DEVELOPERS.md: compiler never imports the runtime or PyMC; runtime never imports
the compiler; neither knows the CLI; start-up commands do not import PyMC."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "marketbayesmeta"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found |= {f"{base}.{a.name}" if base.endswith(".") is False else base + a.name for a in node.names}
    return found


@pytest.mark.parametrize("path", sorted((SRC / "compiler").glob("*.py")), ids=lambda p: p.name)
def test_compiler_is_free_of_runtime_and_pymc(path: Path) -> None:
    bad = {i for i in _imports(path) if i.split(".")[0] in {"pymc", "pytensor", "arviz"}
           or "runtime" in i or i.endswith("cli") or ".cli" in i}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", sorted((SRC / "runtime").glob("*.py")), ids=lambda p: p.name)
def test_runtime_is_free_of_compiler_and_cli(path: Path) -> None:
    bad = {i for i in _imports(path) if "compiler" in i or i.endswith(".cli") or i == "..cli" or ".api" in i}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("argv", [["--help"], ["check-config", "examples/config.yaml"],
                                  ["compile", "examples/config.yaml", "-o", "{tmp}/p.json", "-q"],
                                  ["audit", "examples/config.yaml"], ["schema"]])
def test_fast_commands_do_not_import_pymc(argv: list[str], tmp_path: Path) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = ("import sys\nfrom marketbayesmeta.cli import _dispatch, build_parser\n"
            "try:\n    _dispatch(sys.argv[1:], build_parser())\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'matplotlib') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=SRC.parent.parent, capture_output=True,
                         text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
