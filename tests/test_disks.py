"""Has an install begun (nixos_images.disks)? Judged from a sysfs and procfs laid out as the
kernel lays them out (blockdev.py), and from this machine's real /proc and /sys: a device node
held open, a loop mount that is not a disk."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from blockdev import PCI, procfs, stat_line, sysfs
from conftest import require
from nixos_images import disks

LOOP = Path("/dev/loop0")  # a real block device node of this machine


def as_root(*tools: str) -> None:
    """Root and these programs, or skip (fail in CI, which has both)."""
    missing = ["root"] if os.geteuid() != 0 else []
    require(missing + [t for t in tools if shutil.which(t) is None], "this test")


def loop_is_vda(tmp: Path) -> tuple[Path, str]:
    """A sysfs where the real /dev/loop0's number is the hardware disk vda's: this machine's
    disks cannot be opened (a container), a loop device can."""
    sys_dir = sysfs(tmp)
    number = f"{os.major(LOOP.stat().st_rdev)}:{os.minor(LOOP.stat().st_rdev)}"
    (sys_dir / "dev/block" / number).unlink(missing_ok=True)
    (sys_dir / "dev/block" / number).symlink_to(f"../../{PCI}/block/vda")
    return sys_dir, number


def test_only_disks_with_hardware_behind_them_count(tmp_path: Path) -> None:
    assert disks.hardware_disks(sysfs(tmp_path)) == {"vda"}
    assert disks.hardware_disks(tmp_path / "none") == frozenset()


@pytest.mark.parametrize(
    ("mounts", "expected"),
    [
        ([], set()),  # the installer's own store (loop0), tmpfs and proc only
        (["254:1"], {"vda"}),  # a partition
        (["254:0"], {"vda"}),  # the whole disk
        (["253:0"], {"vda"}),  # device-mapper on vda2
        (["7:0"], set()),  # another loop mount
        (["8:0"], set()),  # a number sysfs does not know
    ],
)
def test_a_mount_counts_through_the_disks_under_it(
    tmp_path: Path, mounts: list[str], expected: set[str]
) -> None:
    sys_dir = sysfs(tmp_path)
    found = disks.mounted(procfs(tmp_path, mounts), sys_dir, disks.hardware_disks(sys_dir))
    assert found == expected


def test_the_isos_own_medium_is_not_an_install_target(tmp_path: Path) -> None:
    """nixpkgs' iso-image.nix mounts the boot CD or stick at /iso."""
    sys_dir = sysfs(tmp_path)
    line = "28 22 254:1 / /iso ro,relatime shared:7 - iso9660 /dev/vda1 ro"
    found = disks.mounted(procfs(tmp_path, [], (line,)), sys_dir, disks.hardware_disks(sys_dir))
    assert found == set()


def test_a_file_system_with_an_anonymous_device_counts_by_its_source(tmp_path: Path) -> None:
    """btrfs and bcachefs show 0:N in mountinfo: the source device node tells the disk."""
    require([] if LOOP.exists() else [str(LOOP)], "a real block device node")
    sys_dir, _ = loop_is_vda(tmp_path)
    line = f"29 22 0:40 / /mnt rw,relatime shared:8 - btrfs {LOOP} rw,space_cache=v2"
    tmpfs = "30 22 0:41 / /tmp rw shared:9 - tmpfs tmpfs rw"
    proc = procfs(tmp_path, [], (line, tmpfs))
    assert disks.mounted(proc, sys_dir, disks.hardware_disks(sys_dir)) == {"vda"}


def test_a_swap_partition_in_use_counts(tmp_path: Path) -> None:
    require([] if LOOP.exists() else [str(LOOP)], "a real block device node")
    sys_dir, _ = loop_is_vda(tmp_path)
    proc = procfs(tmp_path, [])
    assert disks.swapped(proc, sys_dir, disks.hardware_disks(sys_dir)) == set()
    with (proc / "swaps").open("a") as f:
        f.write(f"{LOOP}                               partition\t1048572\t\t0\t\t-2\n")
        f.write("/swapfile                               file\t\t1048572\t\t0\t\t-3\n")
    assert disks.swapped(proc, sys_dir, disks.hardware_disks(sys_dir)) == {"vda"}


@pytest.mark.parametrize(
    ("writes", "discards", "touched"), [(0, 0, False), (1, 0, True), (0, 4, True)]
)
def test_a_write_or_a_discard_since_boot_counts(
    tmp_path: Path, writes: int, discards: int, *, touched: bool
) -> None:
    sys_dir = sysfs(tmp_path)
    (sys_dir / PCI / "block/vda/stat").write_text(stat_line(writes=writes, discards=discards))
    assert disks.written(sys_dir, frozenset({"vda"})) == ({"vda"} if touched else set())


@pytest.mark.parametrize(("writes", "touched"), [("0", False), ("5", True)])
def test_an_old_kernels_stat_without_discards(
    tmp_path: Path, writes: str, *, touched: bool
) -> None:
    """Before 4.18 the stat file has 11 fields: writes still count, nothing breaks."""
    sys_dir = sysfs(tmp_path)
    fields = ["7", "0", "56", "1", writes, "0", "0", "0", "0", "1", "1"]
    (sys_dir / PCI / "block/vda/stat").write_text(" ".join(fields) + "\n")
    assert disks.written(sys_dir, frozenset({"vda"})) == ({"vda"} if touched else set())


@pytest.mark.real
def test_a_disk_opened_for_writing_counts_and_one_opened_to_read_does_not(tmp_path: Path) -> None:
    """The real /proc/PID/fd and fdinfo of this process, holding a real block device open."""
    as_root()
    sys_dir, _ = loop_is_vda(tmp_path)
    known = disks.hardware_disks(sys_dir)
    proc = Path("/proc")
    if disks.opened_for_writing(proc, sys_dir, known):
        pytest.fail(f"{LOOP} is open for writing by another process: cannot tell")
    fd = os.open(LOOP, os.O_RDONLY)
    try:
        assert disks.opened_for_writing(proc, sys_dir, known) == set()
    finally:
        os.close(fd)
    fd = os.open(LOOP, os.O_RDWR)
    try:
        assert disks.opened_for_writing(proc, sys_dir, known) == {"vda"}
    finally:
        os.close(fd)


@pytest.mark.real
def test_a_loop_mount_is_not_a_disk(tmp_path: Path) -> None:
    """As the installer's store is mounted: a file system in a file, through a loop device,
    judged by this machine's real /proc and /sys."""
    as_root("mount", "umount", "mkfs.ext4")
    image = tmp_path / "store.img"
    image.write_bytes(b"\0" * (4 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop,ro", str(image), str(mnt)], check=True)
    try:
        number = next(
            line.split()[2]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4] == str(mnt)
        )
        assert number.startswith("7:")  # a loop device
        known = disks.hardware_disks(Path("/sys"))
        assert disks.disks_under(Path("/sys"), number, known) == set()
    finally:
        subprocess.run(["umount", "-d", str(mnt)], check=True)
