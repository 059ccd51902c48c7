"""Loading the installer with kexec-tools, and the delayed `kexec -e` that boots it.

Loading changes nothing the host would notice: the image waits in reserved memory until
`kexec -e`, and is dropped again (`kexec -u`) if anything after the load fails.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images import process
from nixos_images.errors import HelperError
from nixos_images.kexec.models import ExecMethod, Syscall

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nixos_images.kexec.flags import ExtraFlags

KMSG = Path("/dev/kmsg")
DMESG_LINES = 12


@dataclass(frozen=True)
class Image:
    """What kexec loads."""

    kernel: Path
    initrd: Path
    cmdline: str


def load_argv(kexec: Sequence[str], syscall: Syscall, image: Image, flags: ExtraFlags) -> list[str]:
    """`kexec --load` for the installer: its own command line with the caller's words added,
    the syscall's flag, and --no-checks with kexec_load, as upstream (kexec-tools and
    purgatory then skip hashing what was loaded; kexec_file_load hashes in the kernel)."""
    return [
        *kexec,
        "--load",
        str(image.kernel),
        f"--initrd={image.initrd}",
        f"--command-line={command_line(image, flags)}",
        syscall.flag,
        *(["--no-checks"] if syscall is Syscall.LOAD else []),
        *(["--no-sync"] if flags.no_sync else []),
        *flags.load,
    ]


def command_line(image: Image, flags: ExtraFlags) -> str:
    """The installer's command line, and after it what --append= added."""
    return " ".join([image.cmdline, *flags.append])


def unload_argv(kexec: Sequence[str], syscall: Syscall, flags: ExtraFlags) -> list[str]:
    """Drop a loaded image again, with the syscall that loaded it."""
    return [*kexec, syscall.flag, "--unload", *(["--no-sync"] if flags.no_sync else [])]


def parse_kmsg(record: bytes) -> tuple[int, str] | None:
    """One /dev/kmsg record, 'prio,seq,usec,flags;message' -> (seq, message)."""
    head, sep, body = record.partition(b";")
    fields = head.split(b",")
    if not sep or len(fields) < 3 or not fields[1].isdigit():  # noqa: PLR2004
        return None
    message = body.split(b"\n", 1)[0].decode(errors="replace")
    return int(fields[1]), message


def kmsg(path: Path = KMSG) -> list[tuple[int, str]]:
    """Every record in the kernel's log buffer (what dmesg prints), without needing dmesg."""
    records = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        while True:
            try:
                chunk = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:  # the oldest records were overwritten meanwhile
                    continue
                break
            if not chunk:
                break
            if (parsed := parse_kmsg(chunk)) is not None:
                records.append(parsed)
    finally:
        os.close(fd)
    return records


def last_seq() -> int:
    """The sequence number of the kernel's newest log record."""
    records = kmsg()
    return records[-1][0] if records else -1


def kernel_lines_since(seq: int) -> list[str]:
    """What the kernel logged after record seq, or its last lines if that is nothing."""
    records = kmsg()
    new = [m for s, m in records if s > seq]
    return (new or [m for _, m in records])[-DMESG_LINES:]


def load(
    kexec: Sequence[str], order: Sequence[Syscall], image: Image, flags: ExtraFlags
) -> Syscall:
    """Load with each syscall in order until one works; returns the one that did.

    When every attempt fails, the kernel's last lines go to stderr, then a HelperError.
    """
    failures = []
    mark = last_seq()
    for syscall in order:
        result = process.run(
            load_argv(kexec, syscall, image, flags), call=process.Call.KEXEC_LOAD, check=False
        )
        if result.returncode == 0:
            return syscall
        detail = (result.stderr or b"").decode(errors="replace").strip().splitlines()
        failures.append(f"{syscall.kernel_name}: {detail[-1] if detail else 'failed'}")
    lines = kernel_lines_since(mark)
    if lines:
        sys.stderr.write("kernel log:\n" + "".join(f"  {line}\n" for line in lines))
    raise HelperError(f"kexec could not load the installer ({'; '.join(failures)})")


def unload(kexec: Sequence[str], syscall: Syscall, flags: ExtraFlags) -> None:
    """Drop the loaded image; the host is then as it was before the launcher ran."""
    argv = unload_argv(kexec, syscall, flags)
    process.run(argv, call=process.Call.KEXEC_UNLOAD, check=False)


def exec_argv(kexec: Sequence[str], flags: ExtraFlags) -> list[str]:
    """`kexec --exec`, with what the caller's flags give it."""
    return [*kexec, "--exec", *(["--no-sync"] if flags.no_sync else []), *flags.exec]


def exec_command(kexec: Sequence[str], delay: int, flags: ExtraFlags) -> list[str]:
    """Sleep, flush the old system's disks (unless --no-sync), then boot the loaded image."""
    # Killing the sleep cancels the boot; a host without sync(1) still boots.
    sync = " sync;" if flags.sync else ""
    script = f'sleep "$0" || exit;{sync} exec "$@"'
    return ["/bin/sh", "-c", script, str(delay), *exec_argv(kexec, flags)]


def systemd_run_argv(command: Sequence[str], *, collect: bool = True) -> list[str]:
    """Command as a transient systemd service, so logind does not kill it with the session.

    --collect (systemd 236+) removes the unit even if it fails; older systemd refuses it.
    """
    unit = f"nixos-images-kexec-{int(time.time())}-{os.getpid()}"
    return [
        "systemd-run",
        "--quiet",
        *(["--collect"] if collect else []),
        f"--unit={unit}",
        "--description=Boot the NixOS installer loaded by kexec/run",
        *command,
    ]


def exec_method(*, systemd: bool) -> ExecMethod:
    """How the boot will be started: systemd-run where systemd is PID 1, else setsid."""
    return ExecMethod.SYSTEMD_RUN if systemd and shutil.which("systemd-run") else ExecMethod.SETSID


def schedule(command: Sequence[str], *, systemd: bool) -> ExecMethod:
    """Start command so it outlives this process and the ssh session; returns how.

    Under systemd it is a transient unit: logind may kill everything left in a closed ssh
    session. Elsewhere, or when systemd-run refuses, it is a new session with no terminal, in
    /, writing to /dev/kmsg.
    """
    if exec_method(systemd=systemd) is ExecMethod.SYSTEMD_RUN:
        # Ubuntu 16.04 and Debian 9 refuse --collect: try again without it; failing that,
        # a session of its own, as on hosts without systemd.
        # One that hangs (a wedged D-Bus) is killed after its time and counts as a refusal.
        for collect in (True, False):
            try:
                result = process.run(
                    systemd_run_argv(command, collect=collect),
                    call=process.Call.SYSTEMD_RUN,
                    check=False,
                )
            except HelperError:
                continue
            if result.returncode == 0:
                return ExecMethod.SYSTEMD_RUN if collect else ExecMethod.SYSTEMD_RUN_NO_COLLECT
    process.detach(command, KMSG)
    return ExecMethod.SETSID
