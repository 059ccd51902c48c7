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
from typing import TYPE_CHECKING, TypedDict

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


def unpacked_size(initrd: Path) -> int:
    """What the initrd unpacks to, in bytes (its first archive's compression decides; NixOS
    concatenates archives of one compression). InputError for one it cannot read."""
    with initrd.open("rb") as f:
        head = f.read(6)
    if head.startswith(ZSTD_MAGIC):
        return process.output_size(
            ["zstd", "-dcq", "--", str(initrd)], call=process.Call.DECOMPRESS
        )
    if head.startswith((GZIP_MAGIC, XZ_MAGIC)):
        size = 0
        try:
            with gzip.open(initrd) if head.startswith(GZIP_MAGIC) else lzma.open(initrd) as f:
                while chunk := f.read(1 << 20):
                    size += len(chunk)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise InputError(initrd, f"not a readable initrd: {e}") from None
        return size
    if head.startswith(CPIO_MAGIC):
        return initrd.stat().st_size
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
        files = {name: members[f"kexec/{loaded[name]}"].size for name in ("kernel", "initrd")}
        unpacked, reserve = int(loaded["initrd_unpacked_size"]), int(loaded["reserve"])
    except (OSError, tarfile.TarError, KeyError, TypeError, ValueError) as e:
        raise InputError(tarball, f"not a kexec tarball with a manifest ({e})") from None
    return entry(image, system, files["kernel"], files["initrd"], unpacked, reserve)
