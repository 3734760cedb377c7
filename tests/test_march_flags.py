"""runtime.march_flags keeps g++'s -march=native flags PyTensor detected, one answer per machine
kind: given back before PyTensor would detect them again, never across CPUs or compilers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from pytensor.link.c.cmodule import GCC_compiler

    from marketbayesmeta.runtime import march_flags

    monkeypatch.setattr(march_flags, "directory", lambda: tmp_path)
    monkeypatch.setattr(GCC_compiler, "march_flags", None)  # put back after the test
    return tmp_path


def test_detected_flags_come_back_in_a_later_process(kept: Path) -> None:
    from pytensor.link.c.cmodule import GCC_compiler

    from marketbayesmeta.runtime import march_flags

    if march_flags.key() is None:
        pytest.skip("no g++ or no /proc/cpuinfo here: nothing is kept")
    assert not march_flags.restore() and GCC_compiler.march_flags is None  # nothing kept yet
    march_flags.remember()
    assert not list(kept.glob("march-*.json"))  # nothing detected yet: nothing written
    GCC_compiler.march_flags = ["-march=testlake", "-mavx2"]
    march_flags.remember()
    (path,) = kept.glob("march-*.json")
    assert json.loads(path.read_text()) == ["-march=testlake", "-mavx2"]
    GCC_compiler.march_flags = None
    assert march_flags.restore() and GCC_compiler.march_flags == ["-march=testlake", "-mavx2"]
    GCC_compiler.march_flags = ["-march=other"]  # detected in this process already: left alone
    assert not march_flags.restore() and GCC_compiler.march_flags == ["-march=other"]


@pytest.mark.parametrize("content", ["not json", '{"a": 1}', '[1, 2]', ""])
def test_a_bad_file_is_ignored(kept: Path, content: str) -> None:
    from pytensor.link.c.cmodule import GCC_compiler

    from marketbayesmeta.runtime import march_flags

    if march_flags.key() is None:
        pytest.skip("no g++ or no /proc/cpuinfo here: nothing is kept")
    (kept / f"march-{march_flags.key()}.json").write_text(content)
    assert not march_flags.restore() and GCC_compiler.march_flags is None


def test_another_cpu_or_compiler_is_another_key(kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pytensor

    from marketbayesmeta.runtime import march_flags

    base = march_flags.key()
    if base is None:
        pytest.skip("no g++ or no /proc/cpuinfo here: nothing is kept")
    cpu = march_flags._cpu()
    assert cpu is not None and "flags=" in cpu
    monkeypatch.setattr(march_flags, "_cpu", lambda: cpu.replace("flags=", "flags=avx512_fake "))
    other_cpu = march_flags.key()
    monkeypatch.setattr(march_flags, "_cpu", lambda: cpu)
    fake = kept / "bin" / "g++"  # another compiler binary under the same name
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    real_which = march_flags.shutil.which
    monkeypatch.setattr(march_flags.shutil, "which", lambda name: str(fake))
    other_compiler = march_flags.key()
    monkeypatch.setattr(march_flags.shutil, "which", real_which)
    assert len({base, other_cpu, other_compiler}) == 3
    # the user's own -march, an unknown CPU: nothing kept, PyTensor decides
    monkeypatch.setattr(pytensor.config, "gcc__cxxflags", pytensor.config.gcc__cxxflags + " -march=core2")
    assert march_flags.key() is None
    monkeypatch.setattr(pytensor.config, "gcc__cxxflags", pytensor.config.gcc__cxxflags.replace(" -march=core2", ""))
    assert march_flags.key() == base
    monkeypatch.setattr(march_flags, "_cpu", lambda: None)
    assert march_flags.key() is None


def test_a_second_run_does_not_ask_gcc(tmp_path: Path) -> None:
    """The model's step in a first process leaves the flags PyTensor detected; in a second one,
    PyTensor's detection (which compiles and runs a test program) is not called at all."""
    script = tmp_path / "step.py"
    script.write_text(
        "import json, sys\n"
        "from pathlib import Path\n"
        "import numpy as np\n"
        "from marketbayesmeta.runtime import function_cache, march_flags\n"
        "from marketbayesmeta.runtime.model import build_model\n"
        "import pytensor.link.c.cmodule as cm\n"
        f"function_cache.directory = march_flags.directory = lambda: Path({str(tmp_path)!r})\n"
        "if march_flags.key() is None:\n"
        "    print('SKIP'); sys.exit(0)\n"
        "if sys.argv[1] == 'second':\n"
        "    def fail(*a, **k):\n"
        "        raise AssertionError('PyTensor detected the flags again')\n"
        "    cm.try_march_flag = fail\n"
        "fm = build_model(np.array([.1, .2, .3]), np.array([.1, .1, .2]), mu_mean=0, mu_sd=1, tau_scale=.5)\n"
        "fm.step()\n"
        "(path,) = Path(sys.argv[2]).glob('march-*.json')\n"
        "assert json.loads(path.read_text()) == cm.GCC_compiler.march_flags and cm.GCC_compiler.march_flags\n"
        "print('OK')\n", encoding="utf-8")
    for which in ("first", "second"):
        out = subprocess.run([sys.executable, str(script), which, str(tmp_path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        if out.stdout.strip() == "SKIP":
            pytest.skip("no g++ or no /proc/cpuinfo here: nothing is kept")
        assert out.stdout.strip().endswith("OK")
