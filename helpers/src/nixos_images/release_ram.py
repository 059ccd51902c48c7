"""The RAM each released image needs to boot, for the release manifest (release.py): one
figure per netboot and kexec image, from the built files themselves, by the formula kexec/run
checks hosts against (kexec/preflight.py's Sizes, measured in docs/benchmarks.md).

netboot: its kernel and initrd files, the initrd's unpacked size by decompressing it (zstd,
NixOS's default, with the zstd program: Python before 3.14 has none; gzip and xz here).
kexec: the tarball's own manifest (kexec/manifest.json) and its kernel and initrd members.
"""

from __future__ import annotations

import gzip
import json
import lzma
import tarfile
from typing import TYPE_CHECKING, BinaryIO, TypedDict

from nixos_images import process
from nixos_images.errors import InputError
from nixos_images.kexec import manifest as kexec_manifest
from nixos_images.kexec.preflight import Sizes

if TYPE_CHECKING:
    from pathlib import Path


class RamEntry(TypedDict):
    """One image's RAM figure in manifest.json (bytes)."""

    image: str  # the asset key of what boots it: "ipxe" (netboot), "kexec", ...
    system: str
    kernel_size: int
    initrd_size: int
    initrd_unpacked_size: int
    reserve: int  # what the running installer needs beyond its files (the kexec default)
    needs: int  # the least RAM it boots in: preflight's Sizes.boot, without the old state


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
CPIO_MAGIC = b"070701"
CPIO_HEADER = 110  # newc: the magic and 13 fields of 8 hex digits


def _cpio_end(f: BinaryIO, start: int) -> int:
    """Where the uncompressed newc archive at start ends (after its TRAILER!!! and the zero
    padding the kernel skips between archives). InputError for one cut short."""
    offset = start
    while True:
        f.seek(offset)
        header = f.read(CPIO_HEADER)
        if len(header) < CPIO_HEADER or not header.startswith(CPIO_MAGIC):
            raise InputError(getattr(f, "name", "initrd"), "an uncompressed archive cut short")
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        filesize, namesize = fields[6], fields[11]
        name = f.read(namesize).rstrip(b"\0")
        offset = _aligned(_aligned(offset + CPIO_HEADER + namesize) + filesize)
        if name == b"TRAILER!!!":
            break
    f.seek(offset)
    while f.read(1) == b"\0":
        offset += 1
    return offset


def _aligned(offset: int) -> int:
    return (offset + 3) & ~3


def unpacked_size(initrd: Path) -> int:
    """What the initrd unpacks to, in bytes: as the kernel reads it, uncompressed archives
    (a microcode update's) first, counted as they are, then a compressed rest (zstd, gzip
    or xz, of one kind: NixOS's stage 1 and store archives share the compressor).
    InputError for one it cannot read."""
    with initrd.open("rb") as f:
        offset, size = 0, 0
        head = f.read(6)
        while head.startswith(CPIO_MAGIC):
            end = _cpio_end(f, offset)
            size, offset = size + end - offset, end
            f.seek(offset)
            head = f.read(6)
        if not head:
            if not size:
                raise InputError(initrd, "empty")
            return size
        f.seek(offset)
        return size + _decompressed(f, head, initrd)


def _decompressed(f: BinaryIO, head: bytes, initrd: Path) -> int:
    """The size of what the compressed archives from f's position unpack to."""
    if head.startswith(ZSTD_MAGIC):
        argv = ["zstd", "-dcq"]
        return process.output_size(argv, call=process.Call.DECOMPRESS, stdin=f)
    if head.startswith((GZIP_MAGIC, XZ_MAGIC)):
        size = 0
        try:
            gzipped = head.startswith(GZIP_MAGIC)
            with gzip.GzipFile(fileobj=f) if gzipped else lzma.LZMAFile(f) as unpacked:
                while chunk := unpacked.read(1 << 20):
                    size += len(chunk)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise InputError(initrd, f"not a readable initrd: {e}") from None
        return size
    raise InputError(initrd, "not an initrd this knows (zstd, gzip, xz or a cpio archive)")


def entry(
    image: str, system: str, kernel: int, initrd: int, unpacked: int, reserve: int
) -> RamEntry:
    """An image's entry, its floor by kexec/run's formula (no old system's state)."""
    sizes = Sizes(kernel=kernel, initrd=initrd, initrd_unpacked=unpacked, state=0, reserve=reserve)
    return {
        "image": image,
        "system": system,
        "kernel_size": kernel,
        "initrd_size": initrd,
        "initrd_unpacked_size": unpacked,
        "reserve": reserve,
        "needs": sizes.boot,
    }


def netboot(system: str, kernel: Path, initrd: Path) -> RamEntry:
    """A netboot image's entry; the reserve is the kexec image's default (the same installer
    runs)."""
    return entry(
        "ipxe",
        system,
        kernel.stat().st_size,
        initrd.stat().st_size,
        unpacked_size(initrd),
        kexec_manifest.DEFAULT_RESERVE,
    )


def kexec(image: str, system: str, tarball: Path) -> RamEntry:
    """A kexec tarball's entry, from its manifest and members. InputError for a tarball that
    is not one."""
    try:
        with tarfile.open(tarball, "r:*") as tar:
            members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
            data = tar.extractfile(members["kexec/manifest.json"])
            loaded = json.loads(data.read() if data else b"")
        files = {name: members[f"kexec/{loaded[name]}"] for name in ("kernel", "initrd")}
        unpacked, reserve = loaded["initrd_unpacked_size"], loaded["reserve"]
    except (OSError, EOFError, RecursionError, tarfile.TarError, KeyError, TypeError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(tarball, f"not a kexec tarball with a manifest ({why})") from None
    except ValueError as e:  # JSON
        raise InputError(tarball, f"its manifest is not JSON ({e})") from None
    sizes = [unpacked, reserve]
    if any(type(n) is not int or n < 0 for n in sizes) or not all(
        m.isfile() for m in files.values()
    ):
        raise InputError(tarball, "its manifest's sizes, kernel or initrd are not what it holds")
    return entry(image, system, files["kernel"].size, files["initrd"].size, unpacked, reserve)
