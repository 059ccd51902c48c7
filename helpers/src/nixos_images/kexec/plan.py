"""kexec/run's plan: everything it finds out before it changes anything, and the initrd it
would boot (the installer's, with the old system's state appended).

The checks are preflight's; what the dry run shows of a plan is report's; launching one is
launcher's.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images.errors import HelperError, InputError
from nixos_images.kexec import collect, cpio, drivers, load, manifest, preflight, watchdog
from nixos_images.kexec.flags import ExtraFlags, deadman_parameter, split_extra_flags
from nixos_images.kexec.models import SyscallChoice
from nixos_images.layout import INITRD_STATE_DIR

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nixos_images.kexec.models import ExecMethod, Syscall


@dataclass
class Plan:
    """Everything the launcher found out before it changes anything."""

    tarball: Path
    image: manifest.Manifest
    facts: preflight.Facts
    state: collect.Collected | None
    checks: list[preflight.Check]
    syscalls: list[Syscall]
    extra_flags: ExtraFlags
    delay: int

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def exec_via(self) -> ExecMethod:
        """How the delayed boot will be started."""
        return load.exec_method(systemd=self.facts.systemd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _drivers(tarball: Path, image: manifest.Manifest) -> drivers.Drivers | None:
    """The tarball's driver list, if it has one."""
    if image.drivers is None:
        return None
    path = tarball / image.drivers
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(path, e.strerror or str(e)) from None
    return drivers.from_json(text, str(path))


def make_plan(
    tarball: Path,
    *,
    extra_flags: str,
    syscall: SyscallChoice,
    delay: int | None,
    root: Path = Path("/"),
    facts: preflight.Facts | None = None,
    no_keys_ok: bool = False,
    ssh_keys: Sequence[str] = (),
    deadman: str | None = None,
) -> Plan:
    """Read the tarball's manifest and the host, collect the state, run every check.
    ssh_keys: --ssh-key's values, carried beside the old host's keys; deadman: --deadman's
    value, for the installer's command line."""
    try:
        flags = split_extra_flags(shlex.split(extra_flags))
    except ValueError as e:
        raise InputError("--kexec-extra-flags", str(e)) from e
    if deadman is not None:
        # After the extra flags' own, so that the flag wins (the switch reads the last one).
        word = deadman_parameter(deadman, "--deadman")
        flags = dataclasses.replace(flags, append=(*flags.append, word))
    if flags.syscall is not None:
        if syscall not in {SyscallChoice.AUTO, flags.syscall}:
            raise InputError(
                "--kexec-extra-flags",
                f"asks for syscall {flags.syscall}, --syscall for {syscall}: give one of them",
            )
        syscall = flags.syscall
    given = collect.given_keys([*ssh_keys, *flags.ssh_keys])
    image = manifest.load(tarball / manifest.FILE_NAME)
    facts = facts or preflight.gather(root)
    paths = [image.kernel, image.initrd, image.loader, *(t.path for t in image.tools.values())]
    missing = [p for p in paths if not (tarball / p).is_file()]
    state: collect.Collected | None = None
    problem = None
    if not missing and facts.euid == 0:
        try:
            ip = tuple(image.tool_argv(tarball, "ip"))
            state = collect.collect(root, os.environ, ip, given)
        except (HelperError, OSError) as e:
            problem = str(e)
    sizes = preflight.Sizes(
        kernel=_size(tarball / image.kernel),
        initrd=_size(tarball / image.initrd),
        initrd_unpacked=image.initrd_unpacked_size,
        state=state.size if state else 0,
        reserve=image.reserve if flags.reserve is None else flags.reserve,
    )
    checks = preflight.check(
        facts, image.machine, sizes, missing, syscall.only, skip_memory=flags.skip_memory_check
    )
    checks.append(preflight.cmdline_check(" ".join([image.cmdline, *flags.append])))
    checks.append(preflight.pending_check(root))
    if not missing:
        checks.append(preflight.space_check(tarball, sizes))
    no_keys_ok = no_keys_ok or flags.no_keys_ok
    checks += preflight.state_checks(state, problem, image, no_keys_ok=no_keys_ok)
    # Armed hardware watchdogs, and whether one outlives the kexec (kexec/watchdog.py).
    dogs = watchdog.active(root, root / "proc")
    if dogs:
        checks.append(preflight.Check("watchdog", ok=True, detail=watchdog.describe(dogs)))
    if state is not None and not missing:
        nics = drivers.read_nics(root, state.nics, state.nic_drivers)
        known = _drivers(tarball, image)
        checks.append(preflight.driver_check(nics, known, skip=flags.skip_driver_check))
    return Plan(
        tarball=tarball,
        image=image,
        facts=facts,
        state=state,
        checks=checks,
        syscalls=preflight.syscall_order(syscall.only, facts),
        extra_flags=flags,
        delay=image.delay if delay is None else delay,
    )


def state_archive(state: collect.Collected) -> bytes:
    """The state as the cpio archive appended to the initrd."""
    members = [
        cpio.Member.file(str(INITRD_STATE_DIR / path), data, mode)
        for path, (data, mode) in sorted(state.files.items())
    ]
    return cpio.archive(members)


def write_initrd(initrd: Path, state: collect.Collected, workdir: Path) -> Path:
    """The installer's initrd with the state appended, readable by root only."""
    path = workdir / "initrd"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, initrd.open("rb") as original:
        cpio.append(out, original, state_archive(state))
    return path
