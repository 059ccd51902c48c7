"""File access with care: atomic writes (a reader sees the old file or the new one, never half
of either), and reads of files someone else controls (no symlinks, no FIFOs, no endless files).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


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


@dataclass(frozen=True)
class Identity:
    """Whom to read a file as: uid, primary gid and every group id (setgroups)."""

    uid: int
    gid: int
    groups: tuple[int, ...]


def read_as(
    path: Path,
    limit: int,
    user: Identity,
    timeout: float,
    check: Callable[[], str | None] | None = None,
) -> str:
    """read_untrusted, in a child that has become user (setgroups, setgid, setuid): what user
    cannot read, neither can this, however a path or its directories lead there. check, if
    given, runs there first (sshd's StrictModes walk): its reason is an UnsafeFileError. A
    child that hangs (a dead network home) is given up after timeout seconds: UnsafeFileError.
    Errors come back as read_untrusted raises them."""
    rfd, wfd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        raise
    if pid == 0:  # the child: whatever happens, it ends here
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            os.close(rfd)
            _child(wfd, path, limit, user, check)
        finally:
            os._exit(0)
    os.close(wfd)
    try:
        data = _collect(rfd, time.monotonic() + timeout)
    finally:
        os.close(rfd)
        _reap(pid)
    if data is None:
        msg = f"not read within {timeout:g} s (a hung file system?)"
        raise UnsafeFileError(msg)
    kind, _, rest = data.partition(b"\0")
    if kind == b"ok":
        return rest.decode()
    number, _, text = rest.partition(b"\0")
    if kind == b"oserror" and number.isdigit():
        raise OSError(int(number), text.decode(errors="replace"), str(path))
    if kind == b"unsafe":
        raise UnsafeFileError(rest.decode(errors="replace"))
    msg = "could not be read"
    raise UnsafeFileError(msg)


def _child(
    wfd: int, path: Path, limit: int, user: Identity, check: Callable[[], str | None] | None
) -> None:
    """The child's work: become user, check, read; the answer, framed, on wfd."""
    try:
        os.setgroups(list(user.groups))
        os.setgid(user.gid)
        os.setuid(user.uid)
        problem = check() if check is not None else None
        if problem is not None:
            reply = b"unsafe\0" + problem.encode()
        else:
            reply = b"ok\0" + read_untrusted(path, limit).encode()
    except UnsafeFileError as e:
        reply = b"unsafe\0" + str(e).encode()
    except OSError as e:
        reply = f"oserror\0{e.errno}\0{e.strerror}".encode()
    except BaseException:  # noqa: BLE001 - reported as unreadable, never raised in the child
        reply = b"unsafe\0could not be read"
    view = memoryview(reply)
    with contextlib.suppress(OSError):
        while view:
            view = view[os.write(wfd, view) :]


def _collect(fd: int, deadline: float) -> bytes | None:
    """Everything until the end of the pipe, or None when the deadline passes first."""
    chunks: list[bytes] = []
    poller = select.poll()  # not select(): any fd number
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int) -> None:
    """Kill the child if it still runs; reap it unless it is stuck in the kernel (a hung
    mount's uninterruptible read), which must not hang this process too."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        time.sleep(0.01)


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
