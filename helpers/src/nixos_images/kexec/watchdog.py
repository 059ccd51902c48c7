"""Hardware watchdogs the old system armed, and whether they outlive `kexec -e`.

A watchdog that keeps counting after the kexec resets the machine in the middle of the install,
since nothing in the new kernel feeds it. Which ones do:

- watchdog-core devices (`/sys/class/watchdog/watchdogN`, `state` active with
  CONFIG_WATCHDOG_SYSFS: iTCO_wdt, sp5100_tco, QEMU's i6300esb, ...): most drivers ask the core
  to stop them on reboot (watchdog_stop_on_reboot), and `kexec -e` runs the reboot notifiers
  (kernel_restart_prepare), so they stop. A QEMU test here arms an i6300esb and kexecs: the
  installer is not reset. Reported, nothing else.
- the BMC's (ipmi_watchdog, a misc device with no sysfs class entry): its reboot notifier
  leaves a running watchdog running, with at least 120 s (ipmi_watchdog.c,
  wdog_reboot_handler). Running here means loaded and held open (/dev/watchdog*, by a
  watchdog daemon or systemd's RuntimeWatchdogSec). The installer does not feed it: the
  report says so and how (stop it first, or have the installer's systemd feed it).

The dry run's `watchdog` check carries this; it never refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_NAME = re.compile(r"watchdog[0-9]{1,4}")
_DEVICE = re.compile(r"/dev/watchdog[0-9]{0,4}")
IPMI = "ipmi_watchdog"
# What to pass for the installer's systemd to feed the BMC's watchdog (kernel-command-line(7)).
FEED = f"--append='modules_load={IPMI} systemd.watchdog_device=/dev/watchdog"
FEED += " systemd.watchdog_sec=120'"


@dataclass(frozen=True)
class Watchdog:
    """An armed watchdog of the old host."""

    name: str  # watchdogN, or ipmi_watchdog
    identity: str  # what the driver calls it ("iTCO_wdt", "i6300ESB timer")
    outlives_kexec: bool


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _held_open(proc: Path) -> bool:
    """Whether a process holds a watchdog device open (readlink only: no file is opened)."""
    try:
        pids = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            links = [str(fd.readlink()) for fd in (pid / "fd").iterdir()]
        except OSError:
            continue
        if any(_DEVICE.fullmatch(link) for link in links):
            return True
    return False


def active(root: Path, proc: Path) -> tuple[Watchdog, ...]:
    """The old host's running watchdogs: the core's by number, then the BMC's."""
    base = root / "sys/class/watchdog"
    try:
        entries = [e for e in base.iterdir() if _NAME.fullmatch(e.name)]
    except OSError:
        entries = []
    found = [
        Watchdog(entry.name, (_read(entry / "identity") or "")[:64], outlives_kexec=False)
        for entry in sorted(entries, key=lambda e: int(e.name.removeprefix("watchdog")))
        if _read(entry / "state") == "active"
    ]
    if (root / "sys/module" / IPMI).is_dir() and _held_open(proc):
        found.append(Watchdog(IPMI, "the BMC's watchdog", outlives_kexec=True))
    return tuple(found)


def describe(dogs: tuple[Watchdog, ...]) -> str:
    """The report's line about them."""
    parts = []
    stopped = [d for d in dogs if not d.outlives_kexec]
    if stopped:
        names = ", ".join(f"{d.name} ({d.identity or 'unnamed'})" for d in stopped)
        parts.append(f"{names} running: Linux stops it when it starts the installer")
    if any(d.outlives_kexec for d in dogs):
        parts.append(
            f"{IPMI} is loaded and held open: the BMC's watchdog keeps counting through the"
            " kexec (at least 120 s) and the installer does not feed it; stop its daemon first"
            f' (it then closes it), or pass --kexec-extra-flags "{FEED}"'
        )
    return "; ".join(parts)
