"""Files and directories we create beside the user's files (plan, manifest, archive, lock, kernel
temp directory): never through a link someone planted there, never left half-written.

* :func:`replacing` / :func:`write_atomic` write ``.<name>.tmp-<pid>`` with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (a
  symlink or file already there is removed, never followed or truncated) and renames it over the
  target (a rename replaces a symlink, it does not write through it).
* :func:`open_lock` opens a lock file with ``O_NOFOLLOW`` and refuses anything but a regular file
  with one link, so truncating it cannot empty another file.
* :func:`read_input` reads a config, tracker or plan: a regular file only (a FIFO or device is
  refused without waiting on it), at most :data:`MAX_INPUT_BYTES`.
* :func:`remove_stale_tempdirs` removes the ``<prefix><pid>-*`` directories that processes of
  ours left in the system temp directory and that no longer exist (a killed run cannot clean up
  after itself; the report kernel's short socket directory is one).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import InputError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def temp_name(path: Path) -> Path:
    """The temporary file written before ``path`` is replaced: ``.<name>.tmp-<pid>`` beside it."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _create_new(path: Path) -> int:
    """Create ``path`` exclusively for writing, without following a symlink at its name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    try:
        return os.open(path, flags, 0o644)
    except FileExistsError:
        # ours from a killed process with the same pid, or planted: remove the name (a symlink
        # is removed, not followed) and create afresh; a directory there is left as it is
        if path.is_symlink() or path.is_file():
            path.unlink()
        return os.open(path, flags, 0o644)


@contextmanager
def replacing(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into: an exclusive ``.<name>.tmp-<pid>``
    renamed over ``path`` when the block ends, removed if it raises."""
    path = Path(path)
    tmp = temp_name(path)
    fd = _create_new(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # ours: created exclusively above
        raise


def write_atomic(path: str | Path, chunks: Iterable[str | bytes]) -> Path:
    """Write ``chunks`` (text is UTF-8 encoded) to ``path`` through :func:`replacing`."""
    with replacing(path) as fh:
        for chunk in chunks:
            fh.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
    return Path(path)


def open_lock(path: Path) -> int:
    """Open (creating) the lock file ``path`` for reading and writing; InputError if it is a
    symlink, not a regular file, or hard-linked elsewhere."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, 0o644)
    except OSError:
        if path.is_symlink():
            raise InputError(f"{path}: the lock file is a symbolic link; remove it (a run never "
                             "creates one) and run again") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(st.st_mode) else "hard-linked to another file"
        raise InputError(f"{path}: the lock file is {what}; remove it and run again")
    return fd


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tempdirs(prefix: str, root: str | Path | None = None) -> list[Path]:
    """Remove ``<root>/<prefix><pid>-*`` directories of ours whose process no longer exists."""
    base = Path(root if root is not None else tempfile.gettempdir())
    removed = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    for p in base.glob(f"{prefix}*-*"):
        pid_text = p.name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        try:
            st = p.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


# The largest input read (README "Decisions"): a tracker of 100,000 rows is ~20 MiB, its plan ~150 MiB.
MAX_INPUT_BYTES = {"config": 1 << 20, "tracker": 256 << 20, "plan": 2 << 30}


def read_input(path: Path, what: str, error: type[InputError]) -> bytes:
    """The bytes of a regular file of at most ``MAX_INPUT_BYTES[what]``. A FIFO, device or socket
    is refused without reading (O_NONBLOCK: opening a FIFO does not wait for a writer)."""
    limit = MAX_INPUT_BYTES[what]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected the {what} file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file ({exc.strerror})") from None
    st = os.fstat(fd)
    mode = st.st_mode
    too_large = (f"{path}: the {what} file is larger than {limit >> 20} MiB, the limit for a {what}; "
                 "split it, or drop the rows and columns the analysis does not use")
    if stat.S_ISREG(mode) and st.st_size > limit:
        os.close(fd)
        raise error(too_large)
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise error(f"{path}: is a directory, expected the {what} file")
        raise error(f"{path}: is not a regular file (a pipe, device or socket); give the path "
                    f"of the {what} file itself")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read the {what} file ({exc.strerror})") from None
    if len(data) > limit:  # it grew while being read
        raise error(too_large)
    return data
