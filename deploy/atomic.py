"""Atomic file writes: a reader never sees a half-written output file.

Every output is written to a temporary file in the destination directory, flushed, fsynced and
then renamed over the destination (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it into place on success.

    On an exception the temporary file is removed and ``destination`` is left untouched.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates the file 0600; give it the mode a plain open() would (0666 & ~umask).
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, destination)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(destination: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``destination`` atomically; return the path."""
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return destination


def check_writable(directory: str | os.PathLike[str]) -> Path:
    """Create ``directory`` and prove it writable by writing and removing a file in it.

    Raises:
        InputError: it cannot be created or written (the message names the path and why).
    """
    from gradr_deploy.errors import InputError, option

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"{directory}: cannot write there ({reason}); choose another "
                         f"{option('out')} or fix its permissions / free space") from None
    return directory


LOCK_NAME = ".gradr-lava.lock"


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on ``directory`` (a run or output folder) while writing it.

    The lock is ``directory/.gradr-lava.lock`` (``flock``, released when the process ends, even
    by SIGKILL); it holds the owner's pid for the message a second run gets.

    Raises:
        InputError: another process holds the lock.
    """
    import fcntl

    from gradr_deploy.errors import InputError, option

    directory = check_writable(directory)
    path = directory / LOCK_NAME
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise InputError(
                f"{directory} is in use by another gradr-lava run (lock {path}, pid {owner}); "
                f"wait for it to finish or choose another {option('out')}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield path
    finally:
        handle.close()
