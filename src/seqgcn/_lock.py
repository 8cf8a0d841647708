"""One run per directory: an exclusive lock on a run directory for the run's lifetime.

`RunDirLock` takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<run dir>/.seqgcn.lock``
and writes who holds it (pid, host, start time) into that file, so that a second
run can name the holder. The operating system drops the lock when the holding
process ends, however it ends (SIGKILL included), so a lock is never stale; the
file itself stays behind and means nothing without the lock. Where `fcntl` is
missing (Windows) runs are not locked.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_FILE = ".seqgcn.lock"


class RunDirBusy(ValueError):
    """Another process holds the run directory's lock (a user error: one line, exit 2)."""


class RunDirLock:
    """Exclusive lock on `run_dir` (which must exist); use as a context manager or `acquire` / `release`.

    `acquire` raises `RunDirBusy` naming the holder when another process (or another
    `RunDirLock` in this one) holds it, and OSError when the lock file cannot be opened.
    """

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd = None

    def acquire(self) -> "RunDirLock":
        if fcntl is None:  # pragma: no cover
            return self
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirBusy(f"run dir {str(self.path.parent)!r} is in use by another seqgcn run ({holder}); "
                                 "wait for it to end or choose another --out") from None
            raise
        self._fd = fd
        _write_holder(fd)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunDirLock":
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM) and self.path.exists():
                return os.open(self.path, os.O_RDONLY)  # a read-only run dir: flock works on it, no holder written
            raise


def _write_holder(fd: int) -> None:
    text = f"pid {os.getpid()} on host {socket.gethostname()}, started {time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except OSError:  # read-only descriptor or full disk: the lock holds all the same
        pass


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder not recorded yet"
