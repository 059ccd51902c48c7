"""An armed hardware watchdog, read from a sysfs laid out as the kernel lays it out, and what the
installer's command line gets so that its systemd feeds it (kexec/watchdog.py)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest

from conftest import run_cli
from fakehost import on_fake_host
from nixos_images.kexec import launcher, watchdog
from nixos_images.kexec.watchdog import Watchdog

if TYPE_CHECKING:
    from pathlib import Path

# iTCO_wdt, a platform device of the chipset's LPC bridge, registers with a parent: its class
# device links to it, and through it to the driver and its module.
ITCO = "devices/pci0000:00/0000:00:1f.0/iTCO_wdt"


def plant(
    root: Path,
    name: str = "watchdog0",
    *,
    state: str = "active",
    timeout: str = "30",
    module: str | None = "iTCO_wdt",
    parent: bool = True,
) -> None:
    """/sys/class/watchdog/NAME as the kernel makes it (WATCHDOG_SYSFS=y): under its parent
    device (iTCO_wdt), or under devices/virtual when the driver gives none (QEMU's i6300esb
    on Linux 6.1, as test_kexec_qemu.py sees it)."""
    sys_dir = root / "sys"
    device = sys_dir / (ITCO if parent else "devices/virtual")
    node = device / "watchdog" / name
    node.mkdir(parents=True)
    (node / "state").write_text(f"{state}\n")
    (node / "timeout").write_text(f"{timeout}\n")
    (node / "identity").write_text("iTCO_wdt\n" if parent else "i6300ESB timer\n")
    if parent:
        (node / "device").symlink_to("../..")
        if not (device / "driver").exists():
            drivers = sys_dir / "bus/platform/drivers/iTCO_wdt"
            drivers.mkdir(parents=True)
            (device / "driver").symlink_to("../../../../bus/platform/drivers/iTCO_wdt")
            if module:
                (sys_dir / "module" / module).mkdir(parents=True)
                (drivers / "module").symlink_to(f"../../../../module/{module}")
    (sys_dir / "class/watchdog").mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(node, sys_dir / "class/watchdog")
    (sys_dir / "class/watchdog" / name).symlink_to(target)


def test_an_armed_watchdog_is_fed_by_the_installers_systemd(tmp_path: Path) -> None:
    plant(tmp_path)
    dogs = watchdog.active(tmp_path)
    assert dogs == (Watchdog("watchdog0", "iTCO_wdt", 30, "iTCO_wdt"),)
    assert watchdog.parameters(dogs) == [
        "systemd.watchdog_device=/dev/watchdog0",
        "systemd.watchdog_sec=30",
        "modules_load=iTCO_wdt",
    ]
    assert "within 30 s" in watchdog.describe(dogs)


def test_a_stopped_watchdog_asks_for_nothing(tmp_path: Path) -> None:
    plant(tmp_path, state="inactive")
    assert watchdog.active(tmp_path) == ()
    assert watchdog.parameters(()) == []
    assert watchdog.active(tmp_path / "no-such-root") == ()


@pytest.mark.parametrize(
    "layout", [{"module": None}, {"parent": False}], ids=["built-in", "no-parent"]
)
def test_no_driver_to_name_and_an_unknown_timeout(tmp_path: Path, layout: dict[str, Any]) -> None:
    """A driver built in, or one that registers no parent device: no module to load (udev
    loads a PCI or platform driver by its device); the driver's own timeout kept ("default")."""
    plant(tmp_path, timeout="", **layout)
    assert watchdog.parameters(watchdog.active(tmp_path)) == [
        "systemd.watchdog_device=/dev/watchdog0",
        "systemd.watchdog_sec=default",
    ]


@pytest.mark.parametrize("timeout", ["30 s", "-1", "\u0663\u0660", "0x1e"])
def test_a_timeout_that_is_not_a_number_of_seconds_is_not_trusted(
    tmp_path: Path, timeout: str
) -> None:
    plant(tmp_path, timeout=timeout)
    (dog,) = watchdog.active(tmp_path)
    assert dog.timeout is None


def test_the_first_one_is_fed_and_the_report_counts_the_others(tmp_path: Path) -> None:
    plant(tmp_path, "watchdog1", timeout="60")
    plant(tmp_path, "watchdog0", timeout="20")
    dogs = watchdog.active(tmp_path)
    assert [d.name for d in dogs] == ["watchdog0", "watchdog1"]
    assert watchdog.parameters(dogs)[:2] == [
        "systemd.watchdog_device=/dev/watchdog0",
        "systemd.watchdog_sec=20",
    ]
    assert "(1 more not fed)" in watchdog.describe(dogs)


def test_odd_names_never_reach_the_command_line(tmp_path: Path) -> None:
    """sysfs names come from drivers; only watchdogN and a module's name are used."""
    plant(tmp_path, "watchdog0", module="bad name")
    plant(tmp_path, "watchdog0 quiet")
    dogs = watchdog.active(tmp_path)
    assert [d.name for d in dogs] == ["watchdog0"]
    assert dogs[0].module is None


def test_the_dry_run_shows_the_words_on_the_installers_command_line(
    setup: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tb, root, log = setup
    on_fake_host(monkeypatch, root)
    plant(root)
    argv = ["kexec/run", "--tarball-dir", str(tb), "--dry-run", "--json"]
    run_cli(launcher.main, [*argv, "--kexec-extra-flags", "--append=systemd.watchdog_sec=60"])
    data = json.loads(capsys.readouterr().out)
    words = data["kexec"]["cmdline"].split()
    # The caller's --append comes after: the last one is systemd's.
    assert words[-4:] == [
        "systemd.watchdog_device=/dev/watchdog0",
        "systemd.watchdog_sec=30",
        "modules_load=iTCO_wdt",
        "systemd.watchdog_sec=60",
    ]
    (check,) = [c for c in data["checks"] if c["name"] == "watchdog"]
    assert check["ok"]
    assert "watchdog0 (iTCO_wdt) is running" in check["detail"]
    assert not log.exists()
