"""The old host's sshd daemon, found once per run: the one kexec/run came through (or a
listening one), the binary to ask (`sshd -T -C`), and the connection to ask about
(SSH_CONNECTION from the nearest process above kexec/run). sshd_config.py asks it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

# Where sshd is when no daemon runs to be asked (socket activation): the usual paths, and
# NixOS's system profile (its sshd lives in the store).
SSHD_PATHS = (
    Path("/usr/sbin/sshd"),
    Path("/usr/bin/sshd"),
    Path("/sbin/sshd"),
    Path("/run/current-system/sw/bin/sshd"),
)


@dataclass(frozen=True)
class Connection:
    """The ssh connection kexec/run came through: SSH_CONNECTION's client address, server
    address and port. Unknown (a console, a script): a login from 127.0.0.1 to port 22."""

    addr: str = "127.0.0.1"
    laddr: str = "127.0.0.1"
    lport: str = "22"
    known: bool = False  # from SSH_CONNECTION; else the defaults above stand in

    def spec(self, user: str) -> str:
        """The connection specification (sshd -T -C) of a login as user."""
        return (
            f"user={user},host={self.addr},addr={self.addr},laddr={self.laddr},lport={self.lport}"
        )


def _ancestors(proc: Path, pid: int) -> Iterator[Path]:
    """Pid's /proc directory, then its parent's, and so on up to (not including) init."""
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        yield proc / str(pid)
        try:
            status = (proc / str(pid) / "status").read_text(errors="replace")
        except OSError:
            return
        parent = re.search(r"^PPid:\s*(\d+)", status, re.MULTILINE)
        pid = int(parent.group(1)) if parent else 0


def connection(proc: Path, pid: int) -> Connection:
    """SSH_CONNECTION from the nearest process up from pid that has it: kexec/run runs with
    a clean environment (env -i), and sudo resets it, but the shell sshd started has it."""
    for process_dir in _ancestors(proc, pid):
        try:
            environ = (process_dir / "environ").read_bytes().split(b"\0")
        except OSError:
            break
        for entry in environ:
            name, _, value = entry.partition(b"=")
            words = value.decode(errors="replace").split()
            if name == b"SSH_CONNECTION" and len(words) == 4 and _address(words[0], words[2]):  # noqa: PLR2004
                port = words[3]
                if port.isascii() and port.isdigit() and 0 < int(port) < 65536:  # noqa: PLR2004
                    return Connection(words[0], words[2], port, known=True)
    return Connection()


def _address(*words: str) -> bool:
    """Whether each word is an IP address without a scope id (whose %... could hold the
    commas and = of other fields of sshd -T's spec)."""
    if any("%" in word for word in words):
        return False
    try:
        for word in words:
            ipaddress.ip_address(word)
    except ValueError:
        return False
    return True


class UnreadableDaemonError(ValueError):
    """The running daemon was found but cannot be asked as it runs."""


def _trusted_sshd(pid: Path) -> tuple[str, list[str]] | None:
    """A process that is an OpenSSH daemon root runs from a binary only root can change: its
    binary and its title's words. Anything else a user could have started, to choose the
    answer (or the program kexec/run would run to ask it)."""
    try:
        exe = str((pid / "exe").readlink()).removesuffix(" (deleted)")
        status = (pid / "status").read_text(errors="replace")
        title = (pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        binary = Path(exe).stat()
    except (OSError, ValueError):
        return None
    uids = re.search(r"^Uid:\s*(.*)$", status, re.MULTILINE)
    if Path(exe).name != "sshd" or not uids or set(uids.group(1).split()) != {"0"}:
        return None
    if binary.st_uid != 0 or binary.st_mode & 0o022:
        return None
    return exe, title.split()


# sshd's options (sshd.c, getopt "46C:DE:b:c:eiqrtQRTf:g:h:k:o:p:u:"): those it is asked
# again with, those whose values are irrelevant to its judgement, and its flags.
_KEPT = frozenset("fho")
_VALUED = frozenset("CEbcgkpu")
_FLAGS = frozenset("46DeiqrtQRTdG")


def _asked(exe: str, words: list[str]) -> list[str]:
    """The daemon's binary with the -f, -o and -h its title shows, read as getopt reads them
    (`-oKey=value`, `-Df file`); UnreadableDaemonError when they cannot be told from the
    title (an -o with a blank in its value, an option sshd does not have)."""
    argv = [exe]
    unreadable = UnreadableDaemonError(f"{exe}'s options cannot be read from its title")
    queue = list(words)
    while queue:
        word = queue.pop(0)
        if not word.startswith("-") or word == "-":
            continue  # the title's own words: "sshd:", "[listener]", counts
        letters = word[1:]
        for i, letter in enumerate(letters):
            if letter in _FLAGS:
                continue
            if letter not in _KEPT | _VALUED:
                raise unreadable
            value = letters[i + 1 :] or (queue.pop(0) if queue else "")
            if not value or (letter == "o" and "=" not in value):
                raise unreadable
            if letter in _KEPT:
                argv += [f"-{letter}", value]
            break
    return argv


def running_sshd(proc: Path, pid: int | None = None) -> list[str] | None:
    """How to ask the OpenSSH daemon that runs: its binary (/proc/PID/exe, wherever it is,
    the Nix store on NixOS) with the -f, -o and -h its listener was started with (in its
    process title). The one kexec/run came through (the outermost sshd above pid) first,
    else a listening one; only one root runs from a root-only binary (_trusted_sshd). None
    when there is none."""
    outermost = None
    for process_dir in _ancestors(proc, pid) if pid is not None else ():
        found = _trusted_sshd(process_dir)
        if found is not None:
            outermost = found
    if outermost is not None:
        return _asked(*outermost)
    pids = sorted((p for p in proc.glob("[0-9]*") if p.name.isdigit()), key=lambda p: int(p.name))
    for candidate in pids:
        found = _trusted_sshd(candidate)
        if found is not None and ("[listener]" in found[1] or "-D" in found[1]):
            return _asked(*found)
    return None


# ssh daemons that are not OpenSSH: their judgement cannot be asked (no sshd -T), so the keys
# they let in cannot be told from those they did not.
OTHER_DAEMONS = frozenset({"dropbear", "dropbearmulti", "tinysshd"})


def _exe_name(process_dir: Path) -> str | None:
    try:
        return Path(str((process_dir / "exe").readlink()).removesuffix(" (deleted)")).name
    except OSError:
        return None


def other_daemon(proc: Path, pid: int) -> str | None:
    """A running ssh daemon that is not OpenSSH: the one kexec/run came through, else any;
    None when there is none."""
    for process_dir in _ancestors(proc, pid):
        name = _exe_name(process_dir)
        if name in OTHER_DAEMONS:
            return name
    for candidate in proc.glob("[0-9]*"):
        name = _exe_name(candidate) if candidate.name.isdigit() else None
        if name in OTHER_DAEMONS:
            return name
    return None


@dataclass(frozen=True)
class Daemon:
    """The sshd to ask, found once per run (not per user): how to run it (None: there is none,
    the config file is read), whether it is the running daemon (whose failure leaves every key
    out: nothing else may guess), why it cannot be asked, and the connection to ask about."""

    argv: tuple[str, ...] | None = None
    running: bool = False
    unreadable: str | None = None
    conn: Connection = Connection()


def find_daemon(root: Path, proc: Path = Path("/proc")) -> Daemon:
    """The running daemon kexec/run came through (or a listening one), else an sshd binary at
    a usual path, asked about the connection kexec/run came through; on the live system only."""
    if root != Path("/"):
        return Daemon()
    conn = connection(proc, os.getpid())
    try:
        running = running_sshd(proc, os.getpid())
    except UnreadableDaemonError as e:
        return Daemon(unreadable=str(e), conn=conn)
    other = other_daemon(proc, os.getpid())
    came_through = any(_exe_name(p) in OTHER_DAEMONS for p in _ancestors(proc, os.getpid()))
    if other is not None and (running is None or came_through):
        why = f"the ssh daemon is {other}, not OpenSSH, whose judgement cannot be asked"
        return Daemon(unreadable=why, conn=conn)
    if running is not None:
        return Daemon(tuple(running), running=True, conn=conn)
    sshd = next((p for p in SSHD_PATHS if p.is_file()), None)
    return Daemon((str(sshd),) if sshd else None, conn=conn)
