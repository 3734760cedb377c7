"""The layering described in README.md ("Layout"): the compiler is pure (no runtime, report, audit,
api, CLI or PyMC imports); the runtime never imports the compiler, api or CLI; the modules they share
(plan, checks, settings, vocabulary, families, outputs, canonical, errors, run_status) import none
of the stages; each stage package opens by listing its steps; start-up commands do not import PyMC."""

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


STAGES = ("compiler", "runtime", "report", "audit")
SHARED = ("plan", "checks", "settings", "vocabulary", "families", "outputs", "canonical", "errors", "run_status",
          "display", "interrupts", "safeio")


def _stage_imports(path: Path) -> set[str]:
    """The package-internal modules ``path`` imports, as top-level names (``runtime``, ``api``, ...)."""
    out = set()
    for name in _imports(path):
        stripped = name.lstrip(".")
        dots = len(name) - len(stripped)
        if dots == 0 and stripped.startswith("marketbayesmeta."):
            out.add(stripped.split(".")[1])
        elif dots >= 2 or (dots == 1 and path.parent == SRC):
            out.add(stripped.split(".")[0])
    return out


@pytest.mark.parametrize("path", sorted((SRC / "compiler").glob("*.py")), ids=lambda p: p.name)
def test_compiler_is_free_of_runtime_and_pymc(path: Path) -> None:
    bad = {i for i in _imports(path) if i.split(".")[0] in {"pymc", "pytensor", "arviz", "matplotlib"}}
    bad |= _stage_imports(path) & {"runtime", "report", "audit", "api", "cli"}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("name", SHARED)
def test_shared_modules_import_no_stage(name: str) -> None:
    bad = _stage_imports(SRC / f"{name}.py") & {*STAGES, "api", "cli"}
    assert not bad, f"{name}.py imports {bad}"


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_package_lists_its_steps(stage: str) -> None:
    init = SRC / stage / "__init__.py"
    if not init.exists():
        pytest.skip(f"no {stage} package")
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "1." in doc or "* ``" in doc, f"{stage}/__init__.py does not list its steps"


@pytest.mark.parametrize("path", sorted((SRC / "runtime").glob("*.py")), ids=lambda p: p.name)
def test_runtime_is_free_of_compiler_and_cli(path: Path) -> None:
    # by module path component: "GCC_compiler" (PyTensor's, runtime/march_flags.py) is not ours
    bad = {i for i in _imports(path) if "compiler" in i.split(".") or i.endswith(".cli") or i == "..cli"
           or ".api" in i}
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
