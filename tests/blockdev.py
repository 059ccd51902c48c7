"""A sysfs and procfs laid out as the kernel lays them out, for the disk evidence (disks.py)
and the dead-man switch: a hardware disk vda with partitions, device-mapper on one of them, and
the installer's own loop device."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

PCI = "devices/pci0000:00/0000:00:04.0/virtio2"


def sysfs(tmp: Path) -> Path:
    """A sysfs with a hardware disk vda (partitions vda1, vda2), a device-mapper dm-0 on vda2,
    and the installer's own loop0 (virtual, no `device`), linked as the kernel links them."""
    sys_dir = tmp / "sys"
    vda = sys_dir / PCI / "block/vda"
    (vda / "vda1").mkdir(parents=True)
    (vda / "vda2").mkdir()
    (sys_dir / PCI / "driver").mkdir()
    (vda / "device").symlink_to("../../../virtio2")
    loop = sys_dir / "devices/virtual/block/loop0"
    dm = sys_dir / "devices/virtual/block/dm-0"
    for d in (loop, dm, dm / "slaves", loop / "slaves"):
        d.mkdir(parents=True, exist_ok=True)
    (dm / "slaves/vda2").symlink_to(f"../../../../../{PCI}/block/vda/vda2")
    numbers = {vda: "254:0", vda / "vda1": "254:1", vda / "vda2": "254:2", loop: "7:0"}
    numbers[dm] = "253:0"
    (sys_dir / "block").mkdir()
    (sys_dir / "dev/block").mkdir(parents=True)
    for node, number in numbers.items():
        (node / "dev").write_text(f"{number}\n")
        (sys_dir / "dev/block" / number).symlink_to(os.path.relpath(node, sys_dir / "dev/block"))
        if node.parent.name != "block":
            (node / "partition").write_text("1\n")
        else:
            (sys_dir / "block" / node.name).symlink_to(os.path.relpath(node, sys_dir / "block"))
            (node / "stat").write_text(stat_line(writes=0, discards=0))
    return sys_dir


def stat_line(*, writes: int, discards: int) -> str:
    """/sys/block/X/stat: 17 fields (Documentation/block/stat.rst), as a 5.5+ kernel prints."""
    fields = [120, 0, 9000, 40, writes, 0, writes * 8, 3, 0, 50, 43, discards, 0, 0, 0, 0, 0]
    return " ".join(f"{f:8d}" for f in fields) + "\n"


def procfs(tmp: Path, mounts: list[str], extra: tuple[str, ...] = ()) -> Path:
    """A procfs whose self/mountinfo has the installer's own mounts, ext4 mounts of these
    MAJOR:MINORs and the extra lines as written, and no swap in use."""
    proc = tmp / "proc"
    (proc / "self").mkdir(parents=True)
    lines = [
        "22 1 0:21 / / rw,relatime shared:1 - tmpfs tmpfs rw,mode=755",
        "23 22 0:5 / /proc rw,nosuid shared:2 - proc proc rw",
        "27 22 7:0 / /nix/.ro-store ro,relatime shared:6 - squashfs /dev/loop0 ro",
        *(
            f"3{i} 22 {m} / /mnt{i} rw,relatime shared:9 - ext4 /dev/x rw"
            for i, m in enumerate(mounts)
        ),
        *extra,
    ]
    (proc / "self/mountinfo").write_text("\n".join(lines) + "\n")
    (proc / "swaps").write_text("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
    (proc / "cmdline").write_text("init=/nix/store/x-nixos-system/init console=ttyS0\n")
    (proc / "uptime").write_text("60.00 50.00\n")
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/kernel/panic").write_text("30\n")
    return proc
