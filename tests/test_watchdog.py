"""Armed hardware watchdogs of the old host, read from a sysfs and procfs laid out as the kernel
lays them out, and what the dry run says about them (kexec/watchdog.py). Whether a watchdog-core
device outlives the kexec is test_way_back_qemu.py's (an armed i6300esb in QEMU)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

from conftest import run_cli
from fakehost import on_fake_host
from nixos_images.kexec import launcher, watchdog
from nixos_images.kexec.watchdog import Watchdog

if TYPE_CHECKING:
    from pathlib import Path

# iTCO_wdt, a platform device of the chipset's LPC bridge, registers under its parent device.
ITCO = "devices/pci0000:00/0000:00:1f.0/iTCO_wdt"


def plant(root: Path, name: str = "watchdog0", *, state: str = "active") -> None:
    """/sys/class/watchdog/NAME as the kernel makes it (WATCHDOG_SYSFS=y)."""
    node = root / "sys" / ITCO / "watchdog" / name
    node.mkdir(parents=True)
    (node / "state").write_text(f"{state}\n")
    (node / "timeout").write_text("30\n")
    (node / "identity").write_text("iTCO_wdt\n")
    (root / "sys/class/watchdog").mkdir(parents=True, exist_ok=True)
    (root / "sys/class/watchdog" / name).symlink_to(
        os.path.relpath(node, root / "sys/class/watchdog")
    )


def bmc(root: Path, *, held: str | None = "/dev/watchdog") -> None:
    """ipmi_watchdog loaded (/sys/module/ipmi_watchdog), a process holding `held` open."""
    (root / "sys/module/ipmi_watchdog/parameters").mkdir(parents=True)
    fds = root / "proc/812/fd"
    fds.mkdir(parents=True)
    (fds / "0").symlink_to("/dev/null")
    if held:
        (fds / "3").symlink_to(held)


def test_a_running_core_watchdog_is_reported_as_stopping(tmp_path: Path) -> None:
    plant(tmp_path)
    dogs = watchdog.active(tmp_path, tmp_path / "proc")
    assert dogs == (Watchdog("watchdog0", "iTCO_wdt", outlives_kexec=False),)
    line = watchdog.describe(dogs)
    assert line == "watchdog0 (iTCO_wdt) running: Linux stops it when it starts the installer"


def test_stopped_watchdogs_and_odd_names_are_not_listed(tmp_path: Path) -> None:
    plant(tmp_path, state="inactive")
    plant(tmp_path, "watchdog0 quiet")
    assert watchdog.active(tmp_path, tmp_path / "proc") == ()
    assert watchdog.active(tmp_path / "no-such-root", tmp_path / "none") == ()


def test_numbers_sort_as_numbers(tmp_path: Path) -> None:
    for n in (10, 2):
        plant(tmp_path, f"watchdog{n}")
    names = [d.name for d in watchdog.active(tmp_path, tmp_path / "proc")]
    assert names == ["watchdog2", "watchdog10"]


@pytest.mark.parametrize(
    ("held", "running"),
    [("/dev/watchdog", True), ("/dev/watchdog0", True), ("/dev/watchdog0x", False), (None, False)],
)
def test_the_bmcs_watchdog_outlives_the_kexec_when_it_runs(
    tmp_path: Path, held: str | None, *, running: bool
) -> None:
    """ipmi_watchdog's reboot notifier leaves a running watchdog running: the one case the
    report warns about, with what to do."""
    bmc(tmp_path, held=held)
    dogs = watchdog.active(tmp_path, tmp_path / "proc")
    assert bool(dogs) is running
    if running:
        (dog,) = dogs
        assert dog.outlives_kexec
        line = watchdog.describe(dogs)
        assert "keeps counting through the kexec" in line
        assert "modules_load=ipmi_watchdog systemd.watchdog_device=/dev/watchdog" in line


def test_the_dry_run_reports_them_and_the_command_line_is_untouched(
    setup: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tb, root, log = setup
    on_fake_host(monkeypatch, root)
    plant(root)
    bmc(root)
    run_cli(launcher.main, ["kexec/run", "--tarball-dir", str(tb), "--dry-run", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert "watchdog" not in data["kexec"]["cmdline"]
    (check,) = [c for c in data["checks"] if c["name"] == "watchdog"]
    assert check["ok"]
    assert check["detail"].startswith("watchdog0 (iTCO_wdt) running: Linux stops it")
    assert "ipmi_watchdog is loaded and held open" in check["detail"]
    assert not log.exists()
