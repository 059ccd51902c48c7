"""newc cpio archives in Python, so the launcher needs no cpio, gzip or sort on the host.

The kernel unpacks every cpio archive concatenated into an initrd, in order, into the initramfs.
It does not create parent directories, so an archive lists each directory before its contents.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

from nixos_images.errors import HelperError

if TYPE_CHECKING:
    from collections.abc import Iterable

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Member:
    """A file (data is bytes) or directory (data is None) in an archive, owned by root."""

    path: str
    data: bytes | None
    mode: int

    @classmethod
    def file(cls, path: str, data: bytes, mode: int = 0o644) -> Member:
        """A regular file."""
        return cls(path, data, mode)

    @classmethod
    def directory(cls, path: str, mode: int = 0o755) -> Member:
        """A directory."""
        return cls(path, None, mode)


def padding(length: int) -> int:
    """Bytes of zeros that bring length up to a multiple of 4."""
    return -length % 4


def _header(ino: int, mode: int, nlink: int, size: int, name: bytes) -> bytes:
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name) + 1, 0)
    head = MAGIC + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    return head + b"\0" * padding(len(head))


class CpioError(HelperError, ValueError):
    """A member the archive cannot hold (one line, like every helper error)."""


def with_parents(members: Iterable[Member]) -> list[Member]:
    """Members plus any missing parent directories (0755), parents first, sorted by path."""
    by_path: dict[str, Member] = {}
    for m in members:
        path = str(PurePosixPath(m.path))
        if path.startswith("/") or ".." in PurePosixPath(path).parts or path == ".":
            msg = f"cpio member path must be relative and inside the archive: {m.path!r}"
            raise CpioError(msg)
        if path in by_path:
            msg = f"cpio member listed twice: {path}"
            raise CpioError(msg)
        by_path[path] = Member(path, m.data, m.mode)
    for path in list(by_path):
        for parent in PurePosixPath(path).parents:
            if str(parent) != ".":
                by_path.setdefault(str(parent), Member.directory(str(parent)))
    return sorted(by_path.values(), key=lambda m: PurePosixPath(m.path).parts)


def archive(members: Iterable[Member]) -> bytes:
    """A newc archive of members (with their parent directories) and the trailer."""
    out = bytearray()
    for ino, m in enumerate(with_parents(members), start=1):
        name = m.path.encode()
        if m.data is None:
            out += _header(ino, stat.S_IFDIR | m.mode, 2, 0, name)
        else:
            out += _header(ino, stat.S_IFREG | m.mode, 1, len(m.data), name)
            out += m.data + b"\0" * padding(len(m.data))
    out += _header(0, 0, 1, 0, TRAILER.encode())
    return bytes(out)


def append(out: BinaryIO, initrd: BinaryIO, extra: bytes) -> int:
    """Copy initrd to out, pad it with zeros to a 4-byte boundary, then add extra.

    Without the padding, the kernel looks for the next archive's magic at the wrong offset
    after a compressed initrd, logs "invalid magic" and drops the archive without an error.
    Returns the number of bytes written.
    """
    size = 0
    while chunk := initrd.read(1 << 20):
        out.write(chunk)
        size += len(chunk)
    out.write(b"\0" * padding(size))
    out.write(extra)
    return size + padding(size) + len(extra)
