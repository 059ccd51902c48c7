"""The one way the helpers run other programs: argv logged, no shell, `check` always explicit,
and each call's time limit from one table."""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import shlex
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images.errors import HelperError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import BinaryIO

log = logging.getLogger(__name__)


class Call(enum.Enum):
    """What the helpers run: each call's kind, which decides how long it may take."""

    IP = "ip"
    CHPASSWD = "chpasswd"
    KEXEC_LOAD = "kexec --load"
    KEXEC_UNLOAD = "kexec --unload"
    SYSTEMD_RUN = "systemd-run"
    SSHD_TEST = "sshd -T"
    GIT_LS_REMOTE = "git ls-remote"
    NIX_PREFETCH_GIT = "nix-prefetch-git"
    PYTHON_QUERY = "the bundled Python's paths"
    PYTHON_TRACE = "the launcher's trace"
    MODINFO = "modinfo"
    JOURNALCTL = "journalctl"
    REBOOT = "systemctl reboot"
    DECOMPRESS = "zstd -dc"
    KEYGEN_QUERY = "ssh-keygen -Q"


# Seconds a call may take before it is killed; None: it never is. kexec --load reads and hands
# a whole installer to the kernel and must not be killed half-way (a slow disk makes it slow;
# the caller's own timeout, nixos-anywhere's, is the one that applies). A dead NFS home or a
# wedged sshd must not hang kexec/run: sshd -T has seconds.
TIMEOUTS: dict[Call, float | None] = {
    Call.IP: 30,
    Call.CHPASSWD: 30,
    Call.KEXEC_LOAD: None,
    Call.KEXEC_UNLOAD: 60,
    Call.SYSTEMD_RUN: 30,
    Call.SSHD_TEST: 10,
    Call.GIT_LS_REMOTE: 120,
    Call.NIX_PREFETCH_GIT: 1800,
    Call.PYTHON_QUERY: 60,
    Call.PYTHON_TRACE: 600,
    Call.MODINFO: 300,
    Call.JOURNALCTL: 30,
    Call.REBOOT: 60,
    Call.DECOMPRESS: 600,
    Call.KEYGEN_QUERY: 30,
}


def run(
    argv: Sequence[str],
    *,
    call: Call,
    check: bool,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv; with check=True a failure is a HelperError naming the command and its stderr.
    A call that outlasts its time (TIMEOUTS) is killed and is a HelperError too."""
    log.debug("$ %s", shlex.join(argv))
    timeout = TIMEOUTS[call]
    try:
        result = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=capture,
            env=env,
            check=False,
            timeout=timeout,
        )
    except FileNotFoundError as e:
        raise HelperError(f"{argv[0]}: command not found") from e
    except subprocess.TimeoutExpired as e:
        raise HelperError(
            f"{call.value} did not finish in {timeout:g} s: {shlex.join(argv)}"
        ) from e
    if check and result.returncode != 0:
        detail = (result.stderr or b"").decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit code {result.returncode}"
        raise HelperError(f"{shlex.join(argv)} failed: {reason}")
    return result


def output_size(argv: Sequence[str], *, call: Call, stdin: BinaryIO | None = None) -> int:
    """How many bytes argv writes to its stdout, counted as they come (never held: a
    decompressed initrd is hundreds of MiB); stdin: a file it reads from its position. A
    failure or a timeout (the child killed, even when it stalls) is a HelperError."""
    log.debug("$ %s | wc -c", shlex.join(argv))
    timeout = TIMEOUTS[call]
    if stdin is not None:
        # The child reads the descriptor, not Python's buffer: put it at stdin's position.
        os.lseek(stdin.fileno(), stdin.tell(), os.SEEK_SET)
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,  # killed as a group: a grandchild holds stdout too
            )
        except FileNotFoundError as e:
            raise HelperError(f"{argv[0]}: command not found") from e
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill) if timeout is not None else None
        if timer is not None:
            timer.start()
        size = 0
        try:
            with proc:
                assert proc.stdout is not None  # noqa: S101 - PIPE above
                while chunk := proc.stdout.read(1 << 20):
                    size += len(chunk)
        finally:
            if timer is not None:
                timer.cancel()
        if killed.is_set():
            msg = f"{call.value} did not finish in {timeout:g} s: {shlex.join(argv)}"
            raise HelperError(msg)
        err.seek(0)
        detail = err.read().decode(errors="replace").strip().splitlines()
    if proc.returncode != 0:
        reason = detail[-1] if detail else f"exit code {proc.returncode}"
        raise HelperError(f"{shlex.join(argv)} failed: {reason}")
    return size


def detach(argv: Sequence[str], output: Path) -> None:
    """Start argv in a new session, in /, with no terminal, writing to output; do not wait.

    It outlives this process and the ssh session that started it (no SIGHUP reaches a new
    session), and holds none of that session's file descriptors open.
    """
    log.debug("$ %s &", shlex.join(argv))
    try:
        out = output.open("wb", buffering=0)
    except OSError:
        out = Path(os.devnull).open("wb", buffering=0)  # noqa: SIM115 - closed below
    with out:
        try:
            subprocess.Popen(
                list(argv),
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError as e:
            raise HelperError(f"{argv[0]}: command not found") from e
