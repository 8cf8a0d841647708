"""Atomic file writes: a reader (or a resumed run) never sees a half-written file.

Every file seqgcn writes goes through `write_atomic`, so a storage failure (disk
full, read-only file system, permission denied) surfaces in one place, as a
`StorageError` whose message names the file: the CLI prints it as its one-line
error (exit code 2).
"""

from __future__ import annotations

import os
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
