"""The dead-man switch (nixos_images/deadman.py): its decision, the evidence it reads from a
sysfs and procfs laid out as the kernel lays them out, the real ones of this machine (a disk
mounted, opened for writing; a loop mount that is not a disk), and its command line as the
timer runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import require
from nixos_images import deadman, layout
from nixos_images.deadman import Evidence, Verdict

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


def procfs(tmp: Path, mounts: list[str]) -> Path:
    """A procfs whose self/mountinfo has the installer's own mounts and these MAJOR:MINORs."""
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
    ]
    (proc / "self/mountinfo").write_text("\n".join(lines) + "\n")
    (proc / "cmdline").write_text("init=/nix/store/x-nixos-system/init console=ttyS0\n")
    (proc / "uptime").write_text("60.00 50.00\n")
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/kernel/panic").write_text("30\n")
    return proc


def test_what_each_run_decides() -> None:
    """Off beats everything; a login beats a touched disk (both stand down); the deadline
    reboots only when neither happened."""
    late = 31 * 60.0
    assert deadman.decide(Evidence(late, None, logins=True, disks=("vda",))) is Verdict.OFF
    assert deadman.decide(Evidence(late, 30, logins=True, disks=("vda",))) is Verdict.LOGIN
    assert deadman.decide(Evidence(late, 30, logins=False, disks=("vda",))) is Verdict.DISK
    assert deadman.decide(Evidence(late, 30, logins=False, disks=())) is Verdict.REBOOT
    assert deadman.decide(Evidence(30 * 60.0, 30, logins=False, disks=())) is Verdict.REBOOT
    assert deadman.decide(Evidence(30 * 60 - 0.5, 30, logins=False, disks=())) is Verdict.WAIT


@pytest.mark.parametrize(
    ("uptime", "left"), [(0.0, 30), (59.0, 30), (61.0, 29), (1799.5, 1), (1800.0, 0)]
)
def test_minutes_left_round_up(uptime: float, left: int) -> None:
    assert deadman.minutes_left(Evidence(uptime, 30, logins=False, disks=())) == left


@pytest.mark.parametrize(
    ("cmdline", "default", "expected"),
    [
        ("quiet", 30, (30, None)),
        ("quiet", None, (None, None)),
        ("nixos-images.deadman=5 quiet", None, (5, None)),
        ("nixos-images.deadman=5 nixos-images.deadman=off", 30, (None, None)),
        ("nixos-images.deadman=off nixos-images.deadman=9", None, (9, None)),
        ("nixos-images.deadman=0", 30, (None, None)),
        # Not the parameter: another name, or no value.
        ("nixos-images.deadmanx=5 nixos-images.deadman", 30, (30, None)),
    ],
)
def test_the_command_line_sets_the_deadline(
    cmdline: str, default: int | None, expected: tuple[int | None, str | None]
) -> None:
    assert deadman.boot_minutes(cmdline, default) == expected


@pytest.mark.parametrize("value", ["-1", "05", "1e3", "100000", "30m", "", "OFF", "\uff15"])
def test_a_bad_value_keeps_the_default_and_says_so(value: str) -> None:
    minutes, complaint = deadman.boot_minutes(f"nixos-images.deadman={value}", 30)
    assert minutes == 30
    assert complaint is not None
    assert "ignored" in complaint


def test_only_disks_with_hardware_behind_them_count(tmp_path: Path) -> None:
    assert deadman.hardware_disks(sysfs(tmp_path)) == {"vda"}


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
    disks = deadman.hardware_disks(sys_dir)
    assert deadman.mounted(procfs(tmp_path, mounts), sys_dir, disks) == expected


@pytest.mark.parametrize(
    ("writes", "discards", "touched"), [(0, 0, False), (1, 0, True), (0, 4, True)]
)
def test_a_write_or_a_discard_since_boot_counts(
    tmp_path: Path, writes: int, discards: int, *, touched: bool
) -> None:
    sys_dir = sysfs(tmp_path)
    (sys_dir / PCI / "block/vda/stat").write_text(stat_line(writes=writes, discards=discards))
    assert deadman.written(sys_dir, frozenset({"vda"})) == ({"vda"} if touched else set())


def test_an_old_kernels_stat_without_discards(tmp_path: Path) -> None:
    """Before 4.18 the stat file has 11 fields: writes still count, nothing breaks."""
    sys_dir = sysfs(tmp_path)
    (sys_dir / PCI / "block/vda/stat").write_text(" ".join(["0"] * 11) + "\n")
    assert deadman.written(sys_dir, frozenset({"vda"})) == set()


# --- this machine's real /proc and /sys ------------------------------------------------------


def as_root(*tools: str) -> None:
    """Root and these programs, or skip (fail in CI, which has both)."""
    missing = ["root"] if os.geteuid() != 0 else []
    require(missing + [t for t in tools if shutil.which(t) is None], "this test")


@pytest.mark.real
def test_a_disk_opened_for_writing_counts_and_one_opened_to_read_does_not(tmp_path: Path) -> None:
    """The real /proc/PID/fd and fdinfo of this process, holding a real block device open.
    This machine's disks cannot be opened (a container), so a loop device stands in for the
    disk: the sysfs here says its number is vda's."""
    as_root()
    node = Path("/dev/loop0")
    number = f"{os.major(node.stat().st_rdev)}:{os.minor(node.stat().st_rdev)}"
    sys_dir = sysfs(tmp_path)
    (sys_dir / "dev/block" / number).unlink()
    (sys_dir / "dev/block" / number).symlink_to(f"../../{PCI}/block/vda")
    disks = deadman.hardware_disks(sys_dir)
    proc = Path("/proc")
    before = deadman.opened_for_writing(proc, sys_dir, disks)
    if before:
        pytest.fail(f"{node} is open for writing by another process: cannot tell")
    fd = os.open(node, os.O_RDONLY)
    try:
        assert deadman.opened_for_writing(proc, sys_dir, disks) == set()
    finally:
        os.close(fd)
    fd = os.open(node, os.O_RDWR)
    try:
        assert deadman.opened_for_writing(proc, sys_dir, disks) == {"vda"}
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
        disks = deadman.hardware_disks(Path("/sys"))
        assert deadman.disks_under(Path("/sys"), number, disks) == set()
    finally:
        subprocess.run(["umount", "-d", str(mnt)], check=True)


# --- the command, as the timer runs it -------------------------------------------------------


class Host:
    """An installer's /proc, /sys, /dev consoles, logind's session directory, and stand-ins for
    systemctl and journalctl on PATH that record their calls."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, *, mounts: list[str]) -> None:
        self.tmp = tmp
        self.sys = sysfs(tmp)
        self.proc = procfs(tmp, mounts)
        self.sessions = tmp / "run/systemd/sessions"
        self.sessions.mkdir(parents=True)
        self.state = tmp / "run/nixos-images/deadman"
        self.dev = tmp / "dev"
        self.dev.mkdir()
        (self.sys / "class/tty/console").mkdir(parents=True)
        (self.sys / "class/tty/console/active").write_text("tty0 ttyS0\n")
        for console in ("tty0", "ttyS0"):
            (self.dev / console).write_text("")
        self.journal = tmp / "journal"
        self.journal.write_text("Watching system buttons on /dev/input/event0.\n")
        self.log = tmp / "calls"
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        for name, body in (
            ("systemctl", f'echo "systemctl $*" >> {self.log}'),
            ("journalctl", f'echo "journalctl $*" >> {self.log}; cat {self.journal}'),
        ):
            (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
            (bin_dir / name).chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    def where(self) -> list[str]:
        """The command's hidden options: this host's directories instead of the real ones."""
        return [
            *("--proc-dir", str(self.proc), "--sys-dir", str(self.sys), "--dev-dir", str(self.dev)),
            *("--sessions-dir", str(self.sessions), "--state-dir", str(self.state)),
        ]

    def run(self, *args: str, uptime: float = 60.0) -> tuple[int, str]:
        (self.proc / "uptime").write_text(f"{uptime:.2f} 1.00\n")
        result = CliRunner().invoke(deadman.app, [*self.where(), *args])
        return result.exit_code, result.output

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def reboots(self) -> int:
        return self.calls().count("systemctl reboot")

    def shown(self, console: str = "ttyS0") -> str:
        return (self.dev / console).read_text()

    def stood_down(self) -> str | None:
        path = self.state / layout.DEADMAN_STOOD_DOWN
        return path.read_text().strip() if path.exists() else None


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    return Host(tmp_path, monkeypatch, mounts=[])


def test_nobody_logs_in_the_consoles_count_down_and_then_it_reboots(host: Host) -> None:
    code, _ = host.run("--minutes", "30", uptime=60)
    assert code == 0
    assert "rebooting to the system on disk in 29 min" in host.shown("ttyS0")
    assert host.shown("tty0") == host.shown("ttyS0")
    # Within the same minute the consoles are not written again.
    host.run("--minutes", "30", uptime=75)
    assert host.shown().count("in 29 min") == 1
    host.run("--minutes", "30", uptime=125)
    assert "in 28 min" in host.shown()
    assert host.reboots() == 0
    code, output = host.run("--minutes", "30", uptime=1800)
    assert code == 0
    assert host.reboots() == 1
    assert "nobody logged in within 30 min: rebooting" in host.shown()
    assert "rebooting" in output
    assert host.stood_down() is None


def test_a_login_now_stands_it_down_for_good(host: Host) -> None:
    (host.sessions / "3").write_text("UID=0\nUSER=root\nACTIVE=1\n")
    (host.sessions / "3.ref").write_text("")
    code, output = host.run("--minutes", "30", uptime=1900)
    assert (code, host.reboots()) == (0, 0)
    assert "someone logged in" in output
    assert host.stood_down() == "login"
    # Logged out again, past the deadline: stood down is stood down.
    (host.sessions / "3").unlink()
    host.run("--minutes", "30", uptime=4000)
    assert host.reboots() == 0


def test_a_login_that_has_ended_counts_through_the_journal(host: Host) -> None:
    """A session that opened and closed between two runs: logind's line in the journal."""
    (host.sessions / "3.ref").write_text("")  # a leftover reference, no session
    host.run("--minutes", "30", uptime=100)
    assert host.stood_down() is None
    host.journal.write_text("New session 3 of user root.\nSession 3 logged out.\n")
    host.run("--minutes", "30", uptime=1900)
    assert host.reboots() == 0
    assert host.stood_down() == "login"
    assert any("SYSLOG_IDENTIFIER=systemd-logind" in c for c in host.calls())


def test_a_touched_disk_stands_it_down_and_turns_panic_reboots_off(host: Host) -> None:
    (host.sys / PCI / "block/vda/stat").write_text(stat_line(writes=12, discards=0))
    code, output = host.run("--minutes", "30", uptime=1900)
    assert (code, host.reboots()) == (0, 0)
    assert "an install began on vda" in output
    assert host.stood_down() == "disk"
    assert (host.proc / "sys/kernel/panic").read_text().strip() == "0"


def test_a_mounted_disk_stands_it_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = Host(tmp_path, monkeypatch, mounts=["253:0"])
    host.run("--minutes", "30", uptime=1900)
    assert (host.reboots(), host.stood_down()) == (0, "disk")


def test_the_boot_command_line_decides(host: Host) -> None:
    """kexec/run --deadman's parameter: sooner, later, or off; with no build-time deadline
    too (images where the switch runs only when booted with it)."""
    host.proc.joinpath("cmdline").write_text("console=ttyS0 nixos-images.deadman=5\n")
    host.run(uptime=301)
    assert host.reboots() == 1
    host.proc.joinpath("cmdline").write_text("console=ttyS0 nixos-images.deadman=60\n")
    host.run("--minutes", "30", uptime=1900)
    assert host.reboots() == 1
    assert "in 29 min" in host.shown()
    host.proc.joinpath("cmdline").write_text("nixos-images.deadman=off\n")
    host.run("--minutes", "30", uptime=4000)
    assert (host.reboots(), host.stood_down()) == (1, "off")


def test_a_bad_boot_value_is_shown_and_the_image_default_kept(host: Host) -> None:
    host.proc.joinpath("cmdline").write_text("nixos-images.deadman=soon\n")
    code, _ = host.run("--minutes", "30", uptime=1900)
    assert code == 0
    assert "nixos-images.deadman=: 'soon' is not a number of minutes" in host.shown()
    assert host.reboots() == 1


def test_a_failed_reboot_is_one_line_and_an_error(host: Host) -> None:
    (host.tmp / "bin/systemctl").write_text("#!/bin/sh\necho 'Failed to reboot' >&2\nexit 1\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from nixos_images.deadman import main; main()",
            *host.where(),
            *("--minutes", "1"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "nixos-images-deadman: systemctl reboot failed: Failed to reboot"
    ]
