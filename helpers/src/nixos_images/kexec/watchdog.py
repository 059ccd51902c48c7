"""A hardware watchdog the old system armed keeps counting through `kexec -e`.

Nothing in the new kernel knows about it: unless someone feeds it, it resets the machine in
the middle of the install (a BMC's or the chipset's: iTCO_wdt, ipmi_watchdog, sp5100_tco, a
VM's i6300esb). The kernel shows each watchdog in sysfs (`/sys/class/watchdog/watchdogN`, with
CONFIG_WATCHDOG_SYSFS): its `state`, `timeout`, and the driver's module when the driver
registers it under its device (iTCO_wdt does; QEMU's i6300esb on 6.1 does not). For the first
active one, the installer's command line gets what makes its systemd feed it, as
RuntimeWatchdogSec= in system.conf would (kernel-command-line(7)):

    systemd.watchdog_device=/dev/watchdogN systemd.watchdog_sec=TIMEOUT modules_load=DRIVER

with the timeout the old system set (systemd pings at half of it), and the driver's module so
that systemd-modules-load brings the device up early in stage 2. What it cannot cover is the
time before: the new kernel's boot and stage 1 must reach systemd within the timeout (the
dry run's report says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_NAME = re.compile(r"watchdog[0-9]{1,4}")
_MODULE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Watchdog:
    """An armed watchdog of the old host."""

    name: str  # watchdogN: /dev/watchdogN
    identity: str  # what the driver calls the device ("iTCO_wdt", "i6300ESB timer")
    timeout: int | None  # seconds; None when sysfs does not say
    module: str | None  # the driver's module; None when built in


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def active(root: Path) -> tuple[Watchdog, ...]:
    """The old host's running watchdogs, by name."""
    base = root / "sys/class/watchdog"
    try:
        entries = sorted(base.iterdir(), key=lambda p: p.name)
    except OSError:
        return ()
    found = []
    for entry in entries:
        if not _NAME.fullmatch(entry.name) or _read(entry / "state") != "active":
            continue
        timeout = _read(entry / "timeout") or ""
        try:
            module: str | None = (entry / "device/driver/module").resolve(strict=True).name
        except OSError:
            module = None
        found.append(
            Watchdog(
                name=entry.name,
                identity=(_read(entry / "identity") or "")[:64],
                timeout=int(timeout) if timeout.isascii() and timeout.isdigit() else None,
                module=module if module and _MODULE.fullmatch(module) else None,
            )
        )
    return tuple(found)


def parameters(dogs: tuple[Watchdog, ...]) -> list[str]:
    """The installer's command-line words that keep the first armed watchdog fed."""
    if not dogs:
        return []
    dog = dogs[0]
    # "default": systemd keeps the timeout the driver has (the old system's may be lost).
    timeout = str(dog.timeout) if dog.timeout else "default"
    words = [f"systemd.watchdog_device=/dev/{dog.name}", f"systemd.watchdog_sec={timeout}"]
    if dog.module:
        words.append(f"modules_load={dog.module}")
    return words


def describe(dogs: tuple[Watchdog, ...]) -> str:
    """The report's line about them."""
    if not dogs:
        return "no hardware watchdog is running"
    dog = dogs[0]
    within = f"{dog.timeout} s" if dog.timeout else "its timeout"
    others = f" ({len(dogs) - 1} more not fed)" if len(dogs) > 1 else ""
    return (
        f"{dog.name} ({dog.identity or 'unnamed'}) is running: the installer's systemd feeds it,"
        f" if the new kernel reaches systemd within {within}{others}"
    )
