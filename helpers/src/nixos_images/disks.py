"""Has an install begun? The hardware disks something wrote to, discarded, holds open for
writing, mounted or swaps on, read from /sys and /proc (the dead-man switch asks).

A disk is a whole block device with hardware behind it (`/sys/block/X/device`): not loop,
zram, RAM disks, nor device-mapper or md devices, which count through the disks under them
(their `slaves`). The installer's own media are not install targets: the netboot and kexec
store is a squashfs on a loop device, and the ISO's boot medium is mounted at /iso.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

_MAX_DEPTH = 8  # device-mapper and md stacked on each other
_O_ACCMODE = 0o3
# /sys/block/X/stat: writes completed is the 5th field, discards completed the 12th
# (Documentation/block/stat.rst; kernels before 4.18 have no discard fields).
_WRITES, _DISCARDS = 4, 11
# Where the installer's own boot medium is mounted (nixpkgs' iso-image.nix).
OWN_MEDIA = frozenset({"/iso"})


def hardware_disks(sys_dir: Path) -> frozenset[str]:
    """Whole-disk block devices with hardware behind them (not loop, zram, ram, dm, md)."""
    block = sys_dir / "block"
    try:
        names = [p.name for p in block.iterdir()]
    except OSError:
        return frozenset()
    return frozenset(n for n in names if (block / n / "device").exists())


def disks_under(sys_dir: Path, devnum: str, disks: frozenset[str], depth: int = 0) -> set[str]:
    """The hardware disks a block device MAJOR:MINOR lives on: itself or its disk for a
    partition, the disks under a device-mapper or md device."""
    node = sys_dir / "dev/block" / devnum
    try:
        real = node.resolve(strict=True)
    except OSError:
        return set()
    disk = real.parent.name if (real / "partition").exists() else real.name
    if disk in disks:
        return {disk}
    if depth >= _MAX_DEPTH:
        return set()
    found: set[str] = set()
    try:
        slaves = list((sys_dir / "block" / disk / "slaves").iterdir())
    except OSError:
        return found
    for slave in slaves:
        try:
            number = (slave / "dev").read_text().strip()
        except OSError:
            continue
        found |= disks_under(sys_dir, number, disks, depth + 1)
    return found


def _node_number(path: str) -> str | None:
    """MAJOR:MINOR of a block device node under /dev (devtmpfs: stat cannot hang there)."""
    if not path.startswith("/dev/"):
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def written(sys_dir: Path, disks: frozenset[str]) -> set[str]:
    """The disks with a write or discard completed since boot."""
    found = set()
    for disk in disks:
        try:
            fields = (sys_dir / "block" / disk / "stat").read_text().split()
        except OSError:
            continue
        counts = [fields[i] for i in (_WRITES, _DISCARDS) if i < len(fields)]
        if any(c != "0" for c in counts):
            found.add(disk)
    return found


def mounted(proc_dir: Path, sys_dir: Path, disks: frozenset[str]) -> set[str]:
    """The disks under a mounted file system: mountinfo's MAJOR:MINOR, or for file systems
    that show an anonymous 0:N there (btrfs, bcachefs), the device node it names as source."""
    try:
        lines = (proc_dir / "self/mountinfo").read_text().splitlines()
    except OSError:
        return set()
    found: set[str] = set()
    for line in lines:
        # ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPER
        fields, _, tail = line.partition(" - ")
        words = fields.split()
        if len(words) < 5 or words[4] in OWN_MEDIA:  # noqa: PLR2004
            continue
        number: str | None = words[2]
        if number is not None and number.startswith("0:"):
            source = tail.split()[1:2]
            number = _node_number(source[0]) if source else None
        if number is not None:
            found |= disks_under(sys_dir, number, disks)
    return found


def swapped(proc_dir: Path, sys_dir: Path, disks: frozenset[str]) -> set[str]:
    """The disks with a swap partition in use (/proc/swaps; a swap file is on a mount)."""
    try:
        lines = (proc_dir / "swaps").read_text().splitlines()[1:]
    except OSError:
        return set()
    found: set[str] = set()
    for line in lines:
        number = _node_number(line.split()[0]) if line.split() else None
        if number is not None:
            found |= disks_under(sys_dir, number, disks)
    return found


def opened_for_writing(proc_dir: Path, sys_dir: Path, disks: frozenset[str]) -> set[str]:
    """The disks some process has open for writing now (/proc/PID/fd, fdinfo's flags). Only
    links to /dev are followed: a file on a hung network mount is never touched."""
    found: set[str] = set()
    for pid in proc_dir.iterdir():
        if not pid.name.isdigit():
            continue
        try:
            fds = list((pid / "fd").iterdir())
        except OSError:
            continue  # gone, or not ours to read
        for fd in fds:
            try:
                number = _node_number(str(fd.readlink()))
                if number is None:
                    continue
                info = (pid / "fdinfo" / fd.name).read_text()
            except OSError:
                continue
            flags = re.search(r"^flags:\s*([0-7]+)", info, re.MULTILINE)
            if flags and int(flags.group(1), 8) & _O_ACCMODE:
                found |= disks_under(sys_dir, number, disks)
    return found


def touched(proc_dir: Path, sys_dir: Path) -> tuple[str, ...]:
    """Every disk an install may have begun on, sorted."""
    disks = hardware_disks(sys_dir)
    found = written(sys_dir, disks) | mounted(proc_dir, sys_dir, disks)
    found |= swapped(proc_dir, sys_dir, disks) | opened_for_writing(proc_dir, sys_dir, disks)
    return tuple(sorted(found))
