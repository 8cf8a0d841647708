"""Atomic file writes: a reader (or a resumed run) never sees a half-written file.

Every file seqgcn writes goes through `write_atomic`, so a storage failure (disk
full, read-only file system, permission denied) surfaces in one place, as a
`StorageError` whose message names the file: the CLI prints it as its one-line
error (exit code 2).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class StorageError(OSError):
    """A file could not be written; ``str(error)`` is the one-line message, ``errno`` the cause (e.g. ENOSPC)."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` (text or bytes) to a hidden temporary file next to `path`, then rename it over `path`.

    The rename is atomic on POSIX. On failure the temporary file is removed, `path`
    is untouched and a `StorageError` ("cannot write 'PATH': No space left on device")
    is raised from the OSError.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise StorageError(exc.errno, f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc


def write_output(path, data: str) -> None:
    """Write a user-named output file, keeping what kind of thing `path` is.

    - a new path or a regular file: replaced atomically (`write_atomic`);
    - a symlink (to a regular file, or dangling): its target is replaced atomically,
      the link itself stays;
    - anything else (a named pipe, a device such as /dev/stdout or /dev/null, any path
      under /dev or /proc): written through, appending as a shell's ``>>`` would (on a
      fresh ``>`` redirect that is the whole content), never replaced by a regular file.

    Raises `StorageError` naming `path` on failure.
    """
    path = Path(path)
    if not _is_special(path):
        write_atomic(Path(os.path.realpath(path)), data)
        return
    try:
        with open(path, "a") as fh:
            fh.write(data)
            fh.flush()
    except OSError as exc:
        raise StorageError(exc.errno, f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc


def _is_special(path: Path) -> bool:
    """True for devices, pipes and sockets (following symlinks), and for any path under /dev or /proc."""
    if os.path.abspath(path).startswith(("/dev/", "/proc/")):  # /dev/stdout -> /proc/self/fd/1 -> the shell's redirect
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:  # does not exist (or a dangling link): a new regular file
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
