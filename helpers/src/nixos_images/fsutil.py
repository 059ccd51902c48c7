"""File access with care: atomic writes (a reader sees the old file or the new one, never half
of either), and reads of files someone else controls (no symlinks, no FIFOs, no endless files).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


class UnsafeFileError(Exception):
    """A file read on someone else's behalf is not a plain, reasonably sized file."""


def read_untrusted(path: Path, limit: int) -> str:
    """A file another user controls, read as root would not be tricked: the last component is
    opened without following a symlink and without blocking (a FIFO), it must be a regular
    file, and at most limit bytes are read. Bytes that are not UTF-8 become U+FFFD.

    FileNotFoundError when it is not there; UnsafeFileError when it is not a plain file or
    too big; other OSErrors as they come.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        if e.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise UnsafeFileError("a symbolic link") from e
        raise
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError("not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFileError(f"larger than {limit} bytes")
    return data.decode(errors="replace")


def why(error: OSError | UnsafeFileError) -> str:
    """An error while reading as a short reason for a report."""
    if isinstance(error, UnsafeFileError):
        return str(error)
    return error.strerror or str(error)


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Write data to a temporary file beside path, fsync it, then rename it over path."""
    raw = data.encode() if isinstance(data, str) else data
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
