"""What reaches the terminal (issue 16): user text with control characters made visible, and
environment errors (disk full, permissions, long names) told as the user's to fix, exit 2,
while a genuine bug is still an internal error (exit 4)."""

from __future__ import annotations

import errno
import io
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import row, write_project
from marketbayesmeta.audit.manifest import write_manifest
from marketbayesmeta.cli import _dispatch, build_parser
from marketbayesmeta.display import for_terminal, visible

ESC = "\x1b"


def _cli(*argv: str) -> int:
    return _dispatch(list(argv), build_parser())


# -- the helper -------------------------------------------------------------------------------------

@given(st.text())
def test_visible_leaves_no_control_character_and_keeps_the_rest(text: str) -> None:
    shown = visible(text)
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u202e\u2066\u2028" for c in shown)
    plain = "".join(c for c in text if c.isprintable() and c not in "\u202e\u2066")
    for ch in plain:
        assert ch in shown


@given(st.lists(st.text(), max_size=5))
def test_for_terminal_keeps_only_our_newlines(parts: list[str]) -> None:
    text = "\n".join(visible(p) for p in parts)
    assert for_terminal(text).count("\n") == len(parts) - 1 if parts else True


def test_escapes_are_json_escapes() -> None:
    assert visible("a\x1b[2Jb\nc\td\u202ee") == "a\\u001b[2Jb\\nc\\td\\u202ee"
    assert json.loads('"' + visible("x\x1b\x85\u202ey") + '"') == "x\x1b\x85\u202ey"
    assert for_terminal("line 1\nline\x1b 2\r") == "line 1\nline\\u001b 2\\r"


# -- compile summary -----------------------------------------------------------------------------

def test_compile_summary_shows_control_characters_in_study_ids(tmp_path: Path, capsys) -> None:
    evil = [row(f"s{i}\x1b[31m\nFAKE LINE\x07", 2.0 + i, market=f"m{i}") for i in range(3)]
    cfg = write_project(tmp_path, [*evil, row("s3", 4.0)])
    assert _cli("compile", str(cfg), "-o", str(tmp_path / "p.json")) == 0
    out = capsys.readouterr().out
    assert ESC not in out and "\x07" not in out
    assert "s0\\u001b[31m\\nFAKE LINE\\u0007" in out
    lines = out.splitlines()
    assert not any(line.startswith("FAKE LINE") for line in lines)
    header = lines.index(next(line for line in lines if line.startswith("row ")))
    assert [line.split()[0] for line in lines[header + 2:header + 6]] == ["2", "3", "4", "5"]


def test_error_messages_and_check_config_are_terminal_safe(tmp_path: Path, capsys) -> None:
    cfg = write_project(tmp_path / f"dir{ESC}]0;title\x07", [row("a\x1b[2J", "x")])
    assert _cli("check-config", str(cfg)) == 2
    err = capsys.readouterr().err
    assert ESC not in err and "\x07" not in err and "\\u001b" in err


# -- verify output ---------------------------------------------------------------------------------

def test_verify_output_shows_control_characters_in_member_names(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "readiness.csv").write_text("pool\n")
    write_manifest(run, "ab" * 32)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(run.iterdir()):
            zf.writestr(f"run/{p.name}", p.read_bytes())
        zf.writestr(f"run/evil{ESC}[2K\rOK: all 2 file(s) listed in manifest.json match.csv", b"x")
    (tmp_path / "b.zip").write_bytes(buf.getvalue())
    assert _cli("verify", str(tmp_path / "b.zip")) == 1
    out = capsys.readouterr().out
    assert ESC not in out and "\r" not in out
    assert "added    evil\\u001b[2K\\rOK: all 2" in out
    assert sum(line.startswith("OK:") for line in out.splitlines()) == 0


# -- environment errors ----------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "words"), [
    (errno.ENOSPC, "disk is full"), (errno.EDQUOT, "quota"), (errno.EROFS, "read-only"),
    (errno.EACCES, "permission denied"), (errno.ENAMETOOLONG, "shorter path")])
def test_environment_errors_exit_2_with_what_to_do(tmp_path: Path, monkeypatch, capsys, code,
                                                   words) -> None:
    import marketbayesmeta.plan as plan_module

    def full(*args, **kwargs):
        raise OSError(code, __import__("os").strerror(code), str(tmp_path / "p.json"))

    cfg = write_project(tmp_path, [row("a", 2.0), row("b", 3.0)])
    monkeypatch.setattr(plan_module, "write_atomic", full)
    # compile turns a failed write into "cannot write the plan"; archive shows the mapping itself
    assert _cli("compile", str(cfg), "-o", str(tmp_path / "p.json"), "-q") == 2
    assert "cannot write the plan" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "readiness.csv").write_text("pool\n")
    write_manifest(run, "ab" * 32)
    import marketbayesmeta.audit.archive as archive_module

    monkeypatch.setattr(archive_module, "replacing", full)
    assert _cli("archive", str(run), "-o", str(tmp_path / "b.zip")) == 2
    err = capsys.readouterr().err
    assert "b.zip: cannot write the archive" in err and words in err
    # any command: the CLI's last line of defence maps the error (here from verify)
    import marketbayesmeta.audit.verify as verify_module

    monkeypatch.setattr(verify_module, "verify_run", full)
    assert _cli("verify", str(run)) == 2
    err = capsys.readouterr().err
    assert words in err and "internal error" not in err and "p.json" in err


def test_archive_into_a_read_only_file_system_exits_2(tmp_path: Path, capsys) -> None:
    """/proc refuses new files even for root (EACCES/ENOENT/EROFS depending on the kernel)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "readiness.csv").write_text("pool\n")
    write_manifest(run, "ab" * 32)
    code = _cli("archive", str(run), "-o", "/proc/bundle.zip")
    err = capsys.readouterr().err
    assert code == 2 and "internal error" not in err, err


def test_a_genuine_bug_is_still_an_internal_error(tmp_path: Path, monkeypatch, capsys) -> None:
    import marketbayesmeta.plan as plan_module

    def bug(*args, **kwargs):
        raise OSError(errno.EBADF, "Bad file descriptor")  # our mistake, not the user's

    cfg = write_project(tmp_path, [row("a", 2.0), row("b", 3.0)])
    monkeypatch.setattr(plan_module, "write_atomic", bug)
    monkeypatch.setattr("marketbayesmeta.cli._write_compiled", lambda *a: (_ for _ in ()).throw(
        KeyError("bug")))
    monkeypatch.delenv("MARKETBAYESMETA_DEBUG", raising=False)
    assert _cli("compile", str(cfg), "-o", str(tmp_path / "p.json"), "-q") == 4
    assert "internal error" in capsys.readouterr().err
