"""The closed sets kexec/run reasons with, as types: the load syscalls and how the boot is
started; StrEnums, so each member is its word, as the command line and the report print it."""

from __future__ import annotations

import enum


class Syscall(enum.StrEnum):
    """The two ways Linux loads a kernel for kexec, as --syscall names them."""

    FILE = "file"
    LOAD = "load"

    @property
    def kernel_name(self) -> str:
        """The system call's own name: kexec_file_load, kexec_load."""
        return "kexec_file_load" if self is Syscall.FILE else "kexec_load"

    @property
    def flag(self) -> str:
        """kexec-tools' flag that picks it."""
        return "--kexec-file-syscall" if self is Syscall.FILE else "--kexec-syscall"


class SyscallChoice(enum.StrEnum):
    """What --syscall (and -s, -c, -a among --kexec-extra-flags) ask for."""

    AUTO = "auto"  # kexec_file_load first on Linux >= 6.1, else kexec_load; then the other
    FILE = "file"
    LOAD = "load"

    @property
    def only(self) -> Syscall | None:
        """The one syscall asked for; None for auto."""
        return None if self is SyscallChoice.AUTO else Syscall(self.value)


class ExecMethod(enum.StrEnum):
    """How the delayed boot is started, so that it outlives kexec/run and the ssh session."""

    SYSTEMD_RUN = "systemd-run"  # a transient unit: logind may kill a closed session's rest
    SYSTEMD_RUN_NO_COLLECT = "systemd-run (without --collect)"  # systemd older than 236
    SETSID = "setsid"  # a session of its own, where systemd is not PID 1 or refuses
