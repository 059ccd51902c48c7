"""Whether the installer's kernel drives the old host's NICs (nixos_images.kexec.drivers): the
driver list built from a real kernel's module tree (Debian's, with kmod's modinfo), matched as
the kernel matches modaliases, and kexec/run refusing before any change."""

from __future__ import annotations

import dataclasses
import shutil
from typing import TYPE_CHECKING

import pytest

import qemu
from conftest import require
from fakehost import GOOD, plan
from nixos_images.errors import InputError
from nixos_images.kexec import drivers, manifest

if TYPE_CHECKING:
    from pathlib import Path

# What QEMU's e1000 and a Realtek RTL8168 (r8169, which names rtl_nic/* firmware) show in sysfs.
E1000 = "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"
RTL8168 = "pci:v000010ECd00008168sv00001043sd00008677bc02sc00i00"
NOBODYS = "pci:v0000FFFFd0000FFFFsv00000000sd00000000bc02sc00i00"


@pytest.fixture(scope="module")
def debian_drivers() -> drivers.Drivers:
    missing = qemu.missing_tools() + ([] if shutil.which("modinfo") else ["modinfo (kmod)"])
    require(missing, "reading a kernel's drivers")
    return drivers.build(qemu.debian().modules, [])


@pytest.mark.real
def test_a_kernels_network_drivers_claim_the_devices_they_drive(
    debian_drivers: drivers.Drivers,
) -> None:
    assert debian_drivers.claiming(E1000) == ["e1000"]
    assert debian_drivers.claiming(RTL8168) == ["r8169"]
    assert debian_drivers.claiming(NOBODYS) == []
    assert "rtl_nic/rtl8168h-2.fw" in debian_drivers.firmware["r8169"]
    assert drivers.from_json(debian_drivers.to_json(), "x") == debian_drivers


@pytest.mark.real
def test_a_nic_without_its_driver_or_firmware_is_named(
    debian_drivers: drivers.Drivers, tmp_path: Path
) -> None:
    nics = [
        drivers.Nic("eth0", E1000, "e1000"),
        drivers.Nic("eth1", RTL8168, "r8169"),
        drivers.Nic("eth2", NOBODYS, "vendor_out_of_tree"),
        drivers.Nic("wg0", None, None),  # no device: nothing to drive
    ]
    found = drivers.problems(nics, debian_drivers)
    named = ", ".join(debian_drivers.firmware["r8169"][:3])
    unclaimed = f"eth2 ({NOBODYS}, vendor_out_of_tree on this host)"
    assert found.missing == (f"{unclaimed}: no driver in the installer's kernel claims it",)
    # r8169 runs most chips without its PHY patches: missing firmware only warns.
    warning = (
        f"eth1: the installer carries no firmware for r8169 ({named}, ...);"
        " most such NICs run without it"
    )
    assert found.warnings == (warning,)
    # With one of the files r8169 names (its chips need one each), not even a warning; a
    # gzip'd file does not count (the kernel decompresses xz and zstd only).
    (tmp_path / "rtl_nic").mkdir()
    (tmp_path / "rtl_nic/rtl8125b-2.fw.gz").write_bytes(b"fw")
    gzipped = drivers.build(qemu.debian().modules, [tmp_path])
    assert drivers.problems(nics[1:2], gzipped).warnings
    (tmp_path / "rtl_nic/rtl8168h-2.fw.zst").write_bytes(b"fw")
    with_firmware = drivers.build(qemu.debian().modules, [tmp_path])
    assert drivers.problems(nics[:2], with_firmware) == drivers.Findings()


def test_a_nic_whose_host_driver_is_built_into_the_installer_is_driven() -> None:
    """A driver built in (=y) may list no device aliases: its name is enough."""
    known = drivers.Drivers((), {}, frozenset(), frozenset({"igb"}))
    again = drivers.from_json(known.to_json(), "drivers.json")
    assert drivers.problems([drivers.Nic("eth0", NOBODYS, "igb")], again) == drivers.Findings()
    assert drivers.problems([drivers.Nic("eth0", NOBODYS, "ixgbe")], again).missing


def test_a_driver_that_cannot_start_without_firmware_is_refused_not_warned() -> None:
    """bnx2x fails to open its NIC without its firmware file: the installer would have no
    network there, and only a power cycle gets the machine back."""
    known = drivers.Drivers(
        (("pci:v000014E4d0000168E*", "bnx2x"),),
        {"bnx2x": ("bnx2x/bnx2x-e2-7.13.21.0.fw",)},
        frozenset(),
    )
    nic = drivers.Nic("eno1", "pci:v000014E4d0000168Esv0sd0bc02sc00i00", "bnx2x")
    found = drivers.problems([nic], known)
    refusal = (
        "eno1: its driver bnx2x cannot start it without firmware the installer does not carry"
        " (bnx2x/bnx2x-e2-7.13.21.0.fw)"
    )
    assert found.missing == (refusal,)
    assert found.warnings == ()


def test_firmware_warns_only_when_no_claiming_driver_has_its_own() -> None:
    """r8152 asks for firmware, cdc_ether claims the same USB NIC and asks for none."""
    known = drivers.Drivers(
        (("usb:v0BDAp8153*", "r8152"), ("usb:v0BDAp8153*", "cdc_ether")),
        {"r8152": ("rtl_nic/rtl8153a-2.fw",)},
        frozenset(),
    )
    nic = drivers.Nic("enx0", "usb:v0BDAp8153d3100dc00dsc00dp00icFFisc00ip00in00", "r8152")
    assert drivers.problems([nic], known) == drivers.Findings()


def test_modinfo_output_is_read_per_module() -> None:
    output = (
        "filename:       /m/kernel/drivers/net/a-b.ko.xz\nalias:          pci:v1*\n"
        "firmware:       x/a.fw\nlicense:        GPL\n"
        "filename:       /m/kernel/drivers/net/c.ko\nalias:          usb:v2*\n"
    )
    assert drivers.parse_modinfo(output) == {
        "a_b": (["pci:v1*"], ["x/a.fw"]),
        "c": (["usb:v2*"], []),
    }


def test_built_in_drivers_are_read_from_modules_builtin_modinfo() -> None:
    data = b"virtio_net.alias=virtio:d00000001v*\0virtio_net.license=GPL\0e1000e.firmware=f\0junk\0"
    assert drivers.parse_builtin_modinfo(data) == {
        "virtio_net": (["virtio:d00000001v*"], []),
        "e1000e": ([], ["f"]),
    }


def test_a_damaged_driver_list_is_one_line() -> None:
    with pytest.raises(InputError, match=r"^drivers\.json: not a driver list"):
        drivers.from_json('{"modules": 1}', "drivers.json")


def test_sysfs_modaliases_are_read_and_virtual_links_have_none(tmp_path: Path) -> None:
    device = tmp_path / "sys/class/net/eth0/device"
    device.mkdir(parents=True)
    (device / "modalias").write_text(f"{E1000}\n")
    nics = drivers.read_nics(tmp_path, ["eth0", "br0"], {"eth0": "e1000"})
    assert nics == [drivers.Nic("eth0", E1000, "e1000"), drivers.Nic("br0", None, None)]


def test_kexec_run_refuses_a_nic_the_installer_cannot_drive(
    setup: tuple[Path, Path, Path],
) -> None:
    """Before anything changes, naming the NIC; the token goes ahead (the report says so)."""
    tb, root, log = setup
    known = drivers.Drivers((("pci:v00008086d0000100E*", "e1000"),), {}, frozenset())
    (tb / drivers.FILE_NAME).write_text(known.to_json())
    image = manifest.load(tb / manifest.FILE_NAME)
    (tb / manifest.FILE_NAME).write_text(
        dataclasses.replace(image, drivers=drivers.FILE_NAME).to_json()
    )
    for name, modalias in (("eth-static", E1000), ("eth-dhcp", NOBODYS)):
        device = root / "sys/class/net" / name / "device"
        device.mkdir(parents=True)
        (device / "modalias").write_text(modalias)
    refused = {c.name: c for c in plan(tb, root, GOOD).checks}["drivers"]
    assert not refused.ok
    assert refused.detail.startswith(f"eth-dhcp ({NOBODYS}): no driver in the installer's")
    assert "--nixos-images-skip-driver-check" in refused.detail
    told = plan(tb, root, GOOD, extra_flags="--nixos-images-skip-driver-check")
    allowed = {c.name: c for c in told.checks}["drivers"]
    assert allowed.ok
    assert allowed.detail.endswith("(skipped as told)")
    assert not log.exists()
