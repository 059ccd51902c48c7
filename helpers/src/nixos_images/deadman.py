"""The dead-man switch: reboot, back to the old system on disk, when nobody reached the installer.

After a kexec, nothing of the old system runs, but its disk is untouched: a reboot goes back
through the firmware to it. When the installer's network or sshd did not come up, that is
the only way back for a machine nobody can touch. A timer runs this every few seconds; each
run looks at the evidence and decides (`decide`):

- the kernel command line says `nixos-images.deadman=off` (or 0): stand down;
- someone logged in, over ssh or at a console (a systemd-logind session now, or one logind
  logged since boot): stand down; whoever it is takes over;
- a disk was written to, discarded, opened for writing or mounted (an install has begun:
  a reboot now could leave neither system bootable): stand down, and set kernel.panic to 0,
  so that a panic no longer reboots either;
- the time since boot reached the deadline (`nixos-images.deadman=MINUTES` on the command
  line, else --minutes): reboot;
- otherwise: show the time left on every console, once a minute.

Standing down is recorded in the state directory; the timer's unit skips its runs from then
on. A disk here is a block device with hardware behind it (`/sys/block/X/device`): not the
installer's own loop-mounted store, zram or RAM disks; a mount of a device-mapper or md
device counts through the disks under it.
"""

from __future__ import annotations

import enum
import math
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from nixos_images import cli, fsutil, layout, process
from nixos_images.errors import HelperError

PARAMETER = layout.DEADMAN_PARAMETER
STATE_DIR = layout.DEADMAN_STATE_DIR
STOOD_DOWN = layout.DEADMAN_STOOD_DOWN  # in STATE_DIR: why the switch stood down
SHOWN = "shown"  # in STATE_DIR: the minutes left that the consoles were last shown
# systemd-logind's line when a session opens (logind-session.c: "New session %s of user %s.").
_NEW_SESSION = re.compile(r"^New session \S+ of user ")
_MAX_DEPTH = 8  # device-mapper and md stacked on each other
_O_ACCMODE = 0o3
# /sys/block/X/stat: writes completed is the 5th field, discards completed the 12th
# (Documentation/block/stat.rst; kernels before 4.18 have no discard fields).
_WRITES, _DISCARDS = 4, 11


class Verdict(enum.Enum):
    """What one run decided."""

    OFF = "off"  # the command line turned the switch off
    LOGIN = "login"  # someone logged in
    DISK = "disk"  # an install began
    WAIT = "wait"
    REBOOT = "reboot"


@dataclass(frozen=True)
class Evidence:
    """What one run saw."""

    uptime: float  # seconds since boot
    minutes: int | None  # the deadline after boot; None: off
    logins: bool
    disks: tuple[str, ...]  # disks written, discarded, opened for writing or mounted


def boot_minutes(cmdline: str, default: int | None) -> tuple[int | None, str | None]:
    """The deadline the kernel command line sets (the last `nixos-images.deadman=` wins),
    else the default; and a complaint about a value that is not MINUTES or off."""
    value = None
    for word in cmdline.split():
        name, sep, rest = word.partition("=")
        if name == PARAMETER and sep:
            value = rest
    if value is None:
        return default, None
    try:
        return layout.parse_deadman(value), None
    except ValueError as e:
        return default, f"{PARAMETER}=: {e}; ignored"


def decide(evidence: Evidence) -> Verdict:
    """What to do: stand down, wait or reboot (the module's docstring says why)."""
    if evidence.minutes is None:
        return Verdict.OFF
    if evidence.logins:
        return Verdict.LOGIN
    if evidence.disks:
        return Verdict.DISK
    if evidence.uptime >= evidence.minutes * 60:
        return Verdict.REBOOT
    return Verdict.WAIT


def minutes_left(evidence: Evidence) -> int:
    """Whole minutes until the reboot, rounded up."""
    assert evidence.minutes is not None  # noqa: S101 - only asked while waiting
    return max(0, math.ceil((evidence.minutes * 60 - evidence.uptime) / 60))


def countdown(evidence: Evidence) -> str:
    """The line the consoles show while waiting."""
    left = minutes_left(evidence)
    return (
        f"nixos-images: no login yet; rebooting to the system on disk in {left} min"
        f" unless someone logs in (boot with {PARAMETER}=off to stay up)"
    )


# --- the evidence, read from /proc, /sys, /run and the journal -----------------------------


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
    """The disks under a mounted file system (/proc/self/mountinfo's MAJOR:MINOR)."""
    try:
        lines = (proc_dir / "self/mountinfo").read_text().splitlines()
    except OSError:
        return set()
    found: set[str] = set()
    for line in lines:
        # The third field is MAJOR:MINOR; 0:N is no device (tmpfs, proc, overlay).
        devnum = line.split(maxsplit=3)[2:3]
        if devnum and not devnum[0].startswith("0:"):
            found |= disks_under(sys_dir, devnum[0], disks)
    return found


def opened_for_writing(proc_dir: Path, sys_dir: Path, disks: frozenset[str]) -> set[str]:
    """The disks some process has open for writing now (/proc/PID/fd, fdinfo's flags)."""
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
                st = fd.stat()
                if not stat.S_ISBLK(st.st_mode):
                    continue
                info = (pid / "fdinfo" / fd.name).read_text()
            except OSError:
                continue
            flags = re.search(r"^flags:\s*([0-7]+)", info, re.MULTILINE)
            if flags and int(flags.group(1), 8) & _O_ACCMODE:
                number = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
                found |= disks_under(sys_dir, number, disks)
    return found


def touched_disks(proc_dir: Path, sys_dir: Path) -> tuple[str, ...]:
    """Every disk an install may have begun on, sorted."""
    disks = hardware_disks(sys_dir)
    found = written(sys_dir, disks) | mounted(proc_dir, sys_dir, disks)
    found |= opened_for_writing(proc_dir, sys_dir, disks)
    return tuple(sorted(found))


def logged_in(sessions_dir: Path) -> bool:
    """A login now (a systemd-logind session file), or one logind logged since boot."""
    try:
        if any(not p.name.endswith(".ref") for p in sessions_dir.iterdir()):
            return True
    except OSError:
        pass
    # The journal keeps a session that opened and closed between two runs.
    # Without a journal (none, or it failed), only the session files count.
    argv = ["journalctl", "--boot", "--quiet", "--output=cat", "--no-pager"]
    try:
        result = process.run(
            [*argv, "SYSLOG_IDENTIFIER=systemd-logind"], call=process.Call.JOURNALCTL, check=False
        )
    except HelperError:
        return False
    lines = result.stdout.decode(errors="replace").splitlines()
    return result.returncode == 0 and any(_NEW_SESSION.match(line) for line in lines)


def _uptime(proc_dir: Path) -> float:
    return float((proc_dir / "uptime").read_text().split()[0])


def _consoles(sys_dir: Path, dev_dir: Path) -> list[Path]:
    """The consoles the kernel writes to (console= on its command line, in order)."""
    try:
        names = (sys_dir / "class/tty/console/active").read_text().split()
    except OSError:
        return []
    return [dev_dir / n for n in names if re.fullmatch(r"[A-Za-z0-9]+", n)]


def _show(line: str, consoles: list[Path]) -> None:
    """One line in the journal and on every console; a console that refuses is skipped."""
    sys.stdout.write(line + "\n")
    for console in consoles:
        try:
            fd = os.open(console, os.O_WRONLY | os.O_APPEND | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            os.write(fd, f"\r\n{line}\r\n".encode())
        except OSError:
            pass
        finally:
            os.close(fd)


def _stand_down(state_dir: Path, why: Verdict, proc_dir: Path) -> None:
    state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    if why is Verdict.DISK:
        # An install has begun: from now on a panic must not reboot into half of it.
        (proc_dir / "sys/kernel/panic").write_text("0\n")
    fsutil.write_atomic(state_dir / STOOD_DOWN, f"{why.value}\n", mode=0o644)


app = cli.new_app(__doc__ or "")


@app.command()
def deadman(
    minutes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Minutes after boot to wait for a login (default: off, unless booted with it).",
        ),
    ] = None,
    state_dir: Annotated[Path, typer.Option(hidden=True)] = STATE_DIR,
    proc_dir: Annotated[Path, typer.Option(hidden=True)] = Path("/proc"),
    sys_dir: Annotated[Path, typer.Option(hidden=True)] = Path("/sys"),
    dev_dir: Annotated[Path, typer.Option(hidden=True)] = Path("/dev"),
    sessions_dir: Annotated[Path, typer.Option(hidden=True)] = Path("/run/systemd/sessions"),
    debug: cli.DebugOption = False,
    version: cli.VersionOption = False,  # noqa: ARG001 - its callback prints and exits
) -> None:
    """Reboot to the system on disk if nobody logged in and no disk was touched in time;
    run by a timer (nix/deadman.nix). Each run decides once."""
    cli.setup(debug=debug)
    if (state_dir / STOOD_DOWN).exists():
        return
    consoles = _consoles(sys_dir, dev_dir)
    deadline, complaint = boot_minutes((proc_dir / "cmdline").read_text(), minutes)
    if complaint:
        _show(f"nixos-images: {complaint}", consoles)
    # Cheapest first: the disks are only scanned while nobody has logged in.
    logins = deadline is not None and logged_in(sessions_dir)
    disks = touched_disks(proc_dir, sys_dir) if deadline is not None and not logins else ()
    evidence = Evidence(_uptime(proc_dir), deadline, logins=logins, disks=disks)
    verdict = decide(evidence)
    if verdict is Verdict.WAIT:
        left = str(minutes_left(evidence))
        shown = state_dir / SHOWN
        if not shown.exists() or shown.read_text() != left:
            _show(countdown(evidence), consoles)
            state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
            fsutil.write_atomic(shown, left, mode=0o644)
    elif verdict is Verdict.REBOOT:
        why = f"nobody logged in within {deadline} min"
        _show(f"nixos-images: {why}: rebooting to the system on disk", consoles)
        process.run(["systemctl", "reboot"], call=process.Call.REBOOT, check=True)
    else:
        reasons = {
            Verdict.OFF: f"{PARAMETER}=off on the command line",
            Verdict.LOGIN: "someone logged in",
            Verdict.DISK: f"an install began on {', '.join(evidence.disks)} (kernel.panic=0)",
        }
        _stand_down(state_dir, verdict, proc_dir)
        sys.stdout.write(f"dead-man switch stood down: {reasons[verdict]}\n")


def main() -> None:
    """Entry point of the nixos-images-deadman command."""
    cli.run(lambda: app(prog_name="nixos-images-deadman"), "nixos-images-deadman")
