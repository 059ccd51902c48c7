"""The dead-man switch: reboot, back to the old system on disk, when nobody reached the installer.

After a kexec, nothing of the old system runs, but its disk is untouched: a reboot goes back
through the firmware to it. When the installer's network or sshd did not come up, that is
the only way back for a machine nobody can touch. A timer runs this every few seconds; each
run looks at the evidence and decides (`decide`):

- a disk was written to, discarded, opened for writing, mounted or swapped on (disks.py: an
  install has begun, and a reboot could leave neither system bootable): stand down, set
  kernel.panic to 0 so that a panic no longer reboots either, and finish;
- already stood down (a login, or off): nothing but that disk watch, for kernel.panic;
- the kernel command line says `nixos-images.deadman=off` (or 0): stand down;
- someone logged in: over ssh (sshd's "Accepted" line in this boot's journal, or a remote
  systemd-logind session now), or at a console by typing a command there (the shell's PS0
  writes the login mark: the consoles' autologin is nobody); stand down;
- the time since boot reached the deadline (`nixos-images.deadman=MINUTES` on the command
  line, else --minutes): reboot;
- otherwise: show the minutes left on every console, once a minute.

Finished is recorded in the state directory, where the timer's unit condition skips every
later run without starting Python.
"""

from __future__ import annotations

import enum
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from nixos_images import cli, disks, fsutil, layout, process
from nixos_images.errors import HelperError

PARAMETER = layout.DEADMAN_PARAMETER
STATE_DIR = layout.DEADMAN_STATE_DIR
FINISHED = layout.DEADMAN_FINISHED  # in STATE_DIR: nothing left to do this boot
LOGIN_MARK = layout.DEADMAN_LOGIN_MARK  # in STATE_DIR: someone typed at a shell
STOOD_DOWN = "stood-down"  # in STATE_DIR: why the switch will not reboot (off, login)
SHOWN = "shown"  # in STATE_DIR: the minutes left that the consoles were last shown
# sshd's line for a login (auth.c auth_log: "Accepted publickey for root from ..."), logged
# as sshd or, since OpenSSH 9.8, sshd-session.
_ACCEPTED = re.compile(r"^Accepted \S+ for \S+ from ")


class Verdict(enum.Enum):
    """What one run decided."""

    DISK = "disk"  # an install began: panic reboots off, finished
    WATCH = "watch"  # stood down earlier: only the disks are watched
    OFF = "off"  # the command line turned the switch off
    LOGIN = "login"  # someone logged in
    WAIT = "wait"
    REBOOT = "reboot"


@dataclass(frozen=True)
class Evidence:
    """What one run saw."""

    uptime: float  # seconds since boot
    minutes: int | None  # the deadline after boot; None: off
    logins: bool
    disks: tuple[str, ...]  # disks written, discarded, opened for writing, mounted or swapped on
    stood_down: bool = False  # an earlier run stood down (off, a login)


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
    if evidence.disks:
        return Verdict.DISK
    if evidence.stood_down:
        return Verdict.WATCH
    if evidence.minutes is None:
        return Verdict.OFF
    if evidence.logins:
        return Verdict.LOGIN
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
        " unless someone logs in (over ssh, or a command typed here)"
    )


# --- the evidence of a login, read from /run and the journal --------------------------------


def remote_session(sessions_dir: Path) -> bool:
    """A remote systemd-logind session open now (pam_systemd writes REMOTE=1 for sshd's)."""
    try:
        files = [p for p in sessions_dir.iterdir() if not p.name.endswith(".ref")]
    except OSError:
        return False
    for path in files:
        try:
            if "REMOTE=1" in path.read_text(errors="replace").splitlines():
                return True
        except OSError:
            continue
    return False


def accepted_by_sshd() -> bool:
    """Sshd let someone in during this boot: its "Accepted" line in the journal (with or
    without PAM; a login that ended between two runs too). No journal: no evidence."""
    argv = ["journalctl", "--boot", "--quiet", "--output=cat", "--no-pager"]
    identifiers = ["SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session"]
    try:
        result = process.run([*argv, *identifiers], call=process.Call.JOURNALCTL, check=False)
    except HelperError:
        return False
    lines = result.stdout.decode(errors="replace").splitlines()
    return result.returncode == 0 and any(_ACCEPTED.match(line) for line in lines)


def logged_in(sessions_dir: Path, state_dir: Path) -> bool:
    """Someone logged in: a command typed at a shell, a remote session, sshd's word."""
    if (state_dir / LOGIN_MARK).exists():
        return True
    return remote_session(sessions_dir) or accepted_by_sshd()


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


def _record(state_dir: Path, name: str, text: str) -> None:
    state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    fsutil.write_atomic(state_dir / name, text, mode=0o644)


def _reboot(proc_dir: Path, consoles: list[Path], why: str) -> None:
    """Systemctl reboot; when systemd cannot, the kernel's own (sysrq b): the way back must
    not depend on a healthy userspace."""
    _show(f"nixos-images: {why}: rebooting to the system on disk", consoles)
    try:
        process.run(["systemctl", "reboot"], call=process.Call.REBOOT, check=True)
    except HelperError as e:
        _show(f"nixos-images: {e}; rebooting by sysrq", consoles)
        (proc_dir / "sysrq-trigger").write_text("b")


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
    if (state_dir / FINISHED).exists():
        return
    consoles = _consoles(sys_dir, dev_dir)
    deadline, complaint = boot_minutes((proc_dir / "cmdline").read_text(), minutes)
    stood_down = (state_dir / STOOD_DOWN).exists()
    if complaint and not stood_down:
        _show(f"nixos-images: {complaint}", consoles)
    found = disks.touched(proc_dir, sys_dir)
    # Cheapest last: the journal is only read while the switch may still reboot.
    needed = not (found or stood_down or deadline is None)
    logins = needed and logged_in(sessions_dir, state_dir)
    evidence = Evidence(_uptime(proc_dir), deadline, logins, found, stood_down=stood_down)
    verdict = decide(evidence)
    if verdict is Verdict.DISK:
        # An install has begun: from now on a panic must not reboot into half of it.
        (proc_dir / "sys/kernel/panic").write_text("0\n")
        if not stood_down:
            _record(state_dir, STOOD_DOWN, "disk\n")
        _record(state_dir, FINISHED, "disk\n")
        sys.stdout.write(f"an install began on {', '.join(found)}: kernel.panic=0\n")
    elif verdict in {Verdict.OFF, Verdict.LOGIN}:
        _record(state_dir, STOOD_DOWN, f"{verdict.value}\n")
        why = f"{PARAMETER}=off" if verdict is Verdict.OFF else "someone logged in"
        sys.stdout.write(f"dead-man switch stood down: {why}\n")
    elif verdict is Verdict.WAIT:
        left = str(minutes_left(evidence))
        shown = state_dir / SHOWN
        if not shown.exists() or shown.read_text() != left:
            _show(countdown(evidence), consoles)
            _record(state_dir, SHOWN, left)
    elif verdict is Verdict.REBOOT:
        _reboot(proc_dir, consoles, f"nobody logged in within {deadline} min")


def main() -> None:
    """Entry point of the nixos-images-deadman command."""
    cli.run(lambda: app(prog_name="nixos-images-deadman"), "nixos-images-deadman")
