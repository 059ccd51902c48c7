"""The dead-man switch (nixos_images/deadman.py): its decision, the evidence of a login, and its
command line as the timer runs it, on a sysfs and procfs laid out as the kernel lays them out
(blockdev.py; the disk evidence itself is test_disks.py's)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from blockdev import PCI, procfs, stat_line, sysfs
from nixos_images import deadman, layout
from nixos_images.deadman import Evidence, Verdict

if TYPE_CHECKING:
    from pathlib import Path


def test_what_each_run_decides() -> None:
    """A touched disk beats everything (panic reboots go off even after a login); stood down
    only watches the disks; off beats a login; the deadline reboots only when nothing
    else happened."""
    late = 31 * 60.0
    assert deadman.decide(Evidence(late, 30, logins=True, disks=("vda",))) is Verdict.DISK
    watching = Evidence(late, 30, logins=False, disks=(), stood_down=True)
    assert deadman.decide(watching) is Verdict.WATCH
    assert deadman.decide(Evidence(late, None, logins=True, disks=())) is Verdict.OFF
    assert deadman.decide(Evidence(late, 30, logins=True, disks=())) is Verdict.LOGIN
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


# --- the command, as the timer runs it -------------------------------------------------------


JOURNALCTL = r"""echo "journalctl $*" >> {log}
for arg in "$@"; do
  case $arg in
    SYSLOG_IDENTIFIER=*) grep "^${{arg#SYSLOG_IDENTIFIER=}}	" {journal} | cut -f2- ;;
  esac
done
"""


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
        # This boot's journal as IDENTIFIER<TAB>MESSAGE lines; the stand-in journalctl prints
        # the messages of the SYSLOG_IDENTIFIER= matches it is given, as journalctl does.
        self.journal = tmp / "journal"
        self.journal.write_text(
            "systemd-logind\tNew session 1 of user root.\n"  # the consoles' autologin
            "systemd-logind\tWatching system buttons on /dev/input/event0.\n"
        )
        self.log = tmp / "calls"
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        for name, body in (
            ("systemctl", f'echo "systemctl $*" >> {self.log}'),
            ("journalctl", JOURNALCTL.format(log=self.log, journal=self.journal)),
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
        path = self.state / deadman.STOOD_DOWN
        return path.read_text().strip() if path.exists() else None

    def finished(self) -> bool:
        return (self.state / layout.DEADMAN_FINISHED).exists()

    def session(self, number: int, *, remote: bool) -> None:
        """A session file as systemd-logind writes it (sshd's: REMOTE=1, SERVICE=sshd)."""
        service = "sshd" if remote else "login"
        lines = ["UID=0", "USER=root", "ACTIVE=1", f"SERVICE={service}", "TYPE=tty"]
        lines += ["REMOTE=1", "REMOTE_HOST=192.0.2.7"] if remote else ["TTY=tty1"]
        (self.sessions / str(number)).write_text("\n".join(lines) + "\n")


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    return Host(tmp_path, monkeypatch, mounts=[])


def test_nobody_logs_in_the_consoles_count_down_and_then_it_reboots(host: Host) -> None:
    """The consoles' autologin sessions are nobody: the countdown runs on."""
    host.session(1, remote=False)
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
    code, _ = host.run("--minutes", "30", uptime=1800)
    assert code == 0
    assert host.reboots() == 1
    assert "nobody logged in within 30 min: rebooting" in host.shown()
    assert (host.stood_down(), host.finished()) == (None, False)


def test_an_ssh_session_now_stands_it_down(host: Host) -> None:
    host.session(3, remote=True)
    (host.sessions / "3.ref").write_text("")
    code, output = host.run("--minutes", "30", uptime=1900)
    assert (code, host.reboots()) == (0, 0)
    assert "someone logged in" in output
    assert host.stood_down() == "login"
    # Logged out again, past the deadline: stood down is stood down.
    (host.sessions / "3").unlink()
    host.run("--minutes", "30", uptime=4000)
    assert host.reboots() == 0


def test_an_ssh_login_that_has_ended_counts_through_sshds_journal(host: Host) -> None:
    """A login that opened and closed between two runs (or with UsePAM no: no session)."""
    host.run("--minutes", "30", uptime=100)
    assert host.stood_down() is None
    with host.journal.open("a") as f:
        f.write("sshd-session\tAccepted publickey for root from 192.0.2.7 port 50022 ssh2\n")
    host.run("--minutes", "30", uptime=1900)
    assert host.reboots() == 0
    assert host.stood_down() == "login"


def test_sshds_other_lines_are_no_login(host: Host) -> None:
    with host.journal.open("a") as f:
        f.write("sshd\tServer listening on 0.0.0.0 port 22.\n")
        f.write("sshd-session\tConnection closed by 192.0.2.7 port 50022 [preauth]\n")
        f.write("other\tAccepted publickey for root from 192.0.2.7 port 1 ssh2\n")
    host.run("--minutes", "30", uptime=1900)
    assert host.reboots() == 1


def test_a_command_typed_at_a_console_stands_it_down(host: Host) -> None:
    """The shell's PS0 writes the login mark (nix/deadman.nix; test_nix_modules.py runs it)."""
    host.state.mkdir(parents=True)
    (host.state / layout.DEADMAN_LOGIN_MARK).write_text("")
    host.run("--minutes", "30", uptime=1900)
    assert (host.reboots(), host.stood_down()) == (0, "login")


def test_a_touched_disk_turns_panic_reboots_off_and_finishes(host: Host) -> None:
    (host.sys / PCI / "block/vda/stat").write_text(stat_line(writes=12, discards=0))
    code, output = host.run("--minutes", "30", uptime=1900)
    assert (code, host.reboots()) == (0, 0)
    assert "an install began on vda: kernel.panic=0" in output
    assert (host.stood_down(), host.finished()) == ("disk", True)
    assert (host.proc / "sys/kernel/panic").read_text().strip() == "0"


def test_after_a_login_the_disks_are_still_watched_for_panic_reboots(host: Host) -> None:
    """nixos-anywhere logs in first, then disko writes: panic reboots must still go off."""
    host.session(3, remote=True)
    host.run("--minutes", "30", uptime=100)
    assert (host.stood_down(), host.finished()) == ("login", False)
    assert (host.proc / "sys/kernel/panic").read_text().strip() == "30"
    (host.sys / PCI / "block/vda/stat").write_text(stat_line(writes=5000, discards=0))
    host.run("--minutes", "30", uptime=400)
    assert (host.proc / "sys/kernel/panic").read_text().strip() == "0"
    assert (host.stood_down(), host.finished(), host.reboots()) == ("login", True, 0)


def test_a_mounted_disk_counts_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = Host(tmp_path, monkeypatch, mounts=["253:0"])
    host.run("--minutes", "30", uptime=1900)
    assert (host.reboots(), host.stood_down(), host.finished()) == (0, "disk", True)


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


def test_when_systemd_cannot_reboot_the_kernel_does(host: Host) -> None:
    """The way back must not depend on a healthy userspace: sysrq b."""
    (host.tmp / "bin/systemctl").write_text("#!/bin/sh\necho 'Failed to reboot' >&2\nexit 1\n")
    code, _ = host.run("--minutes", "1", uptime=61)
    assert code == 0
    assert "systemctl reboot failed: Failed to reboot; rebooting by sysrq" in host.shown()
    assert (host.proc / "sysrq-trigger").read_text() == "b"


def test_a_run_that_cannot_write_its_state_is_one_line(host: Host) -> None:
    host.state.parent.mkdir(parents=True)
    host.state.write_text("not a directory")
    result = subprocess.run(
        [sys.executable, "-c", "from nixos_images.deadman import main; main()", *host.where()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("nixos-images-deadman: ")
