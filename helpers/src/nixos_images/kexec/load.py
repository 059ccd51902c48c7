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
from nixos_images.kexec.preflight import SYSCALL_NAMES

if TYPE_CHECKING:
    from collections.abc import Sequence

SYSCALL_FLAGS = {"file": "--kexec-file-syscall", "load": "--kexec-syscall"}
KMSG = Path("/dev/kmsg")
DMESG_LINES = 12


@dataclass(frozen=True)
class Image:
    """What kexec loads."""

    kernel: Path
    initrd: Path
    cmdline: str


def load_argv(  # noqa: D103 - the kexec-tools command line, as named
    kexec: Sequence[str], syscall: str, image: Image, extra: Sequence[str]
) -> list[str]:
    return [
        *kexec,
        "--load",
        str(image.kernel),
        f"--initrd={image.initrd}",
        f"--command-line={image.cmdline}",
        SYSCALL_FLAGS[syscall],
        *extra,
    ]


def unload_argv(kexec: Sequence[str], syscall: str) -> list[str]:
    """Drop a loaded image again, with the syscall that loaded it."""
    return [*kexec, SYSCALL_FLAGS[syscall], "--unload"]


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


def load(kexec: Sequence[str], order: Sequence[str], image: Image, extra: Sequence[str]) -> str:
    """Load with each syscall in order until one works; returns the one that did.

    When every attempt fails, the kernel's last lines go to stderr, then a HelperError.
    """
    failures = []
    mark = last_seq()
    for syscall in order:
        result = process.run(load_argv(kexec, syscall, image, extra), check=False)
        if result.returncode == 0:
            return syscall
        detail = (result.stderr or b"").decode(errors="replace").strip().splitlines()
        failures.append(f"{SYSCALL_NAMES[syscall]}: {detail[-1] if detail else 'failed'}")
    lines = kernel_lines_since(mark)
    if lines:
        sys.stderr.write("kernel log:\n" + "".join(f"  {line}\n" for line in lines))
    raise HelperError(f"kexec could not load the installer ({'; '.join(failures)})")


def unload(kexec: Sequence[str], syscall: str) -> None:
    """Drop the loaded image; the host is then as it was before the launcher ran."""
    process.run(unload_argv(kexec, syscall), check=False)


def exec_command(kexec: Sequence[str], delay: int) -> list[str]:
    """Sleep, flush the old system's disks, then boot the loaded image."""
    # Killing the sleep cancels the boot; a host without sync(1) still boots.
    script = 'sleep "$0" || exit; sync; exec "$@"'
    return ["/bin/sh", "-c", script, str(delay), *kexec, "--exec"]


def systemd_run_argv(command: Sequence[str]) -> list[str]:
    """Command as a transient systemd service, so logind does not kill it with the session."""
    unit = f"nixos-images-kexec-{int(time.time())}-{os.getpid()}"
    return [
        "systemd-run",
        "--quiet",
        "--collect",
        f"--unit={unit}",
        "--description=Boot the NixOS installer loaded by kexec/run",
        *command,
    ]


def exec_method(*, systemd: bool) -> str:
    """How the boot will be started: "systemd-run" where systemd is PID 1, else "setsid"."""
    return "systemd-run" if systemd and shutil.which("systemd-run") else "setsid"


def schedule(command: Sequence[str], *, systemd: bool) -> str:
    """Start command so it outlives this process and the ssh session; returns how.

    Under systemd it is a transient unit: logind may kill everything left in a closed ssh
    session. Elsewhere it is a new session with no terminal, in /, writing to /dev/kmsg.
    """
    how = exec_method(systemd=systemd)
    if how == "systemd-run":
        process.run(systemd_run_argv(command), check=True)
    else:
        process.detach(command, KMSG)
    return how
