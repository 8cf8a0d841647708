"""Atomic file writes: a reader (or a resumed run) never sees a half-written file.

Every file seqgcn writes goes through `write_atomic`, so a storage failure (disk
full, read-only file system, permission denied) surfaces in one place, as a
`StorageError` whose message names the file: the CLI prints it as its one-line
error (exit code 2). A command with several outputs writes them with `write_all`,
all or none, after `check_outputs` has made sure that none of them is a file it
reads or another of its outputs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from seqgcn.checks import InputError


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


def file_identity(path) -> tuple:
    """What makes two paths one file: ``(device, inode)`` of what exists (through symlinks and hard links),
    else the path with every symlink resolved (a dangling link is its target)."""
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return ("inode", st.st_dev, st.st_ino)


def check_outputs(outputs, inputs=()) -> None:
    """Refuse, before any work, a set of outputs that would destroy a file: one line (`InputError`) naming both.

    outputs : ``(path, what, option)`` triples, e.g. ``("b.png", "the contact sheet 'b.png'", "--out")``
    inputs : ``(path, what)`` pairs of the files the command reads

    Refused: an output that is a folder, a device or a pipe (anything under /dev or /proc),
    or that is the same file (same path, symlink or hard link, `file_identity`) as an input
    or as another output. Inputs may alias each other; an input that does not exist is left
    to the code that reads it to report.
    """
    seen = {file_identity(path): what for path, what in inputs if os.path.exists(path)}
    for path, what, option in outputs:
        if os.path.isdir(path):
            raise InputError(f"{what} is a folder; choose another {option}")
        if _is_special(Path(path)) or _is_special(Path(os.path.realpath(path))):  # realpath: a dangling link into /dev
            raise InputError(f"{what} is a device or a pipe, not a regular file; choose another {option}")
        key = file_identity(path)
        if key in seen:
            raise InputError(f"{what} is the same file as {seen[key]}; writing it would destroy that; choose another {option}")
        seen[key] = what


def write_all(files: dict) -> None:
    """Write every file of ``{path: text or bytes}`` or none of them: a command's outputs as one commit.

    Each file is first written in full to a hidden temporary file next to its target
    (text as UTF-8, flushed to disk), and each existing target is kept as a hidden hard
    link (a copy where links are not supported); only then are the temporary files
    renamed over their targets, each rename atomic. Should any step fail, the targets
    renamed so far are put back, the temporary files and kept links removed, and a
    `StorageError` naming the file ("cannot write 'PATH': No space left on device") is
    raised: every existing file is as it was and no new file is left.

    A path that is a symlink has its target replaced (the link stays), as `write_output`
    does. The paths must be distinct files (`check_outputs`).
    """
    import shutil

    targets = {path: Path(os.path.realpath(path)) for path in files}  # path as given -> the file it names
    if len(set(targets.values())) != len(targets):
        raise ValueError(f"write_all: two of {list(files)} are the same file")  # callers check with check_outputs
    blobs = {path: data.encode("utf-8") if isinstance(data, str) else data for path, data in files.items()}
    tmp = {path: real.with_name(f".{real.name}.{os.getpid()}.tmp") for path, real in targets.items()}
    kept = {}  # path -> hard link (or copy) of the target as it was
    renamed = []
    current = None
    try:
        for path, data in blobs.items():
            current = path
            with open(tmp[path], "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if targets[path].exists():
                kept[path] = targets[path].with_name(f".{targets[path].name}.{os.getpid()}.old")
                try:
                    os.link(targets[path], kept[path])
                except OSError:
                    shutil.copy2(targets[path], kept[path])
        for path in files:
            current = path
            os.replace(tmp[path], targets[path])
            renamed.append(path)
    except OSError as exc:
        for path in renamed:  # put the old file back, or remove the new one
            if path in kept:
                _quietly(os.replace, kept[path], targets[path])
            else:
                _quietly(os.unlink, targets[path])
        for path in files:
            _quietly(os.unlink, tmp[path])
        for link in kept.values():
            _quietly(os.unlink, link)
        raise StorageError(exc.errno, f"cannot write {str(current)!r}: {exc.strerror or exc}") from exc
    for link in kept.values():
        _quietly(os.unlink, link)


def _quietly(action, *paths) -> None:
    """`action(*paths)`, ignoring a failure (clean-up after a failure that is being reported)."""
    try:
        action(*paths)
    except OSError:
        pass
