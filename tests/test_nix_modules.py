"""The image modules, evaluated with nixpkgs' real module system (tests/nix/eval.nix).

Every image (kexec-installer, noninteractive, netboot-installer, image-installer) on both
systems, with systemd and with scripted stage 1, against a ledger of the nixpkgs options
they touch and stubs of the profiles they import, carrying nixpkgs' definitions at nixpkgs'
priorities. What a user of each image would notice is asserted on the merged values.

The lib is ../shared/nixpkgs-lib (or NIXPKGS_LIB); the Nix CI passes the flake's own.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import qemu
from conftest import REPO, nix_eval, require

LIB = Path(os.environ.get("NIXPKGS_LIB") or REPO.parent / "shared/nixpkgs-lib/lib")
IMAGES = ("kexec-installer", "noninteractive", "netboot-installer", "image-installer")
SYSTEMS = ("x86_64-linux", "aarch64-linux")
STAGES = ("systemd", "scripted")
HELPERS = ("restore-network", "root-password", "installer-banner")


@pytest.fixture(scope="module")
def evaluated() -> dict[str, Any]:
    missing = [] if shutil.which("nix-instantiate") else ["nix-instantiate (nix-bin)"]
    missing += [] if (LIB / "default.nix").is_file() else [f"nixpkgs' lib at {LIB}"]
    require(missing, "evaluating the modules")
    data: dict[str, Any] = nix_eval(f"import ./tests/nix/eval.nix {{ libPath = {LIB}; }}")
    return data


def combos() -> list[tuple[str, str, str]]:
    return [(i, s, st) for i in IMAGES for s in SYSTEMS for st in STAGES]


def values(evaluated: dict[str, Any], image: str, system: str, stage: str) -> dict[str, Any]:
    summary = evaluated["images"][image][system][stage]
    assert summary["failedAssertions"] == [], summary["failedAssertions"]
    result: dict[str, Any] = summary["values"]
    return result


@pytest.mark.parametrize(("image", "system", "stage"), combos())
def test_every_image_evaluates_on_both_systems_and_stage_ones(
    evaluated: dict[str, Any], image: str, system: str, stage: str
) -> None:
    v = values(evaluated, image, system, stage)
    assert v["variantId"] == "installer"  # nixos-anywhere detects an installer by it
    assert v["hostName"] == "nixos-installer"


@pytest.mark.parametrize("image", IMAGES)
def test_networkmanager_is_off_and_networkd_does_dhcp_with_mdns(
    evaluated: dict[str, Any], image: str
) -> None:
    """installation-device turns NetworkManager on since 25.11; it would switch useDHCP off
    and take the NICs restore-network configures."""
    for system in SYSTEMS:
        v = values(evaluated, image, system, "systemd")
        assert v["networkmanager"] is False
        assert v["useDHCP"] is True
        assert v["useNetworkd"] is True
        assert v["resolvedMulticastDNS"] is True
        for network in ("99-ethernet-default-dhcp", "99-wireless-client-dhcp"):
            assert v["networks"][network]["MulticastDNS"] is True, network


def test_wifi_is_iwd_on_the_iso_only(evaluated: dict[str, Any]) -> None:
    iso = values(evaluated, "image-installer", "x86_64-linux", "systemd")
    assert (iso["iwd"], iso["wireless"]) == (True, False)
    kexec = values(evaluated, "kexec-installer", "x86_64-linux", "systemd")
    assert kexec["iwd"] is False


@pytest.mark.parametrize("image", IMAGES)
def test_documentation_only_where_a_person_reads_it(evaluated: dict[str, Any], image: str) -> None:
    v = values(evaluated, image, "x86_64-linux", "systemd")
    wanted = image != "noninteractive"
    assert (v["documentation"], v["nixosManual"]) == (wanted, wanted)


def test_console_logins(evaluated: dict[str, Any]) -> None:
    """installation-device's autologin user stays; the unattended image shows no banner."""
    for image in IMAGES:
        v = values(evaluated, image, "x86_64-linux", "systemd")
        assert v["autologinUser"] == "nixos"
        interactive = image != "noninteractive"
        assert ("installer-banner" in v["services"]) is interactive
        assert ("root-password" in v["services"]) is interactive
        # The banner owns tty1; without it tty1 keeps its getty.
        assert ("getty@tty1" in v["services"]) is interactive
        if interactive:
            assert v["services"]["getty@tty1"]["enable"] is False


@pytest.mark.parametrize("system", SYSTEMS)
def test_kernel_parameters_and_kernel(evaluated: dict[str, Any], system: str) -> None:
    serial = "ttyS0" if system == "x86_64-linux" else "ttyAMA0"
    v = values(evaluated, "kexec-installer", system, "systemd")
    params = v["kernelParams"]
    consoles = [p for p in params if p.startswith("console=")]
    assert consoles == ["console=tty0", f"console={serial},115200"]
    assert {"zswap.enabled=1", "loglevel=4"} <= set(params)
    # The newest kernel set whose ZFS module is not broken (the stand-ins: 6.15 broken,
    # 6.16 without ZFS, 6.17 throws, linux_latest an alias).
    assert v["kernelVersion"] == "6.12.40"
    assert v["zfs"] is True


@pytest.mark.parametrize("system", SYSTEMS)
def test_image_and_asset_names(evaluated: dict[str, Any], system: str) -> None:
    assets = evaluated["assetNames"][system]
    kexec = values(evaluated, "kexec-installer", system, "systemd")["build"]
    unattended = values(evaluated, "noninteractive", system, "systemd")["build"]
    iso = values(evaluated, "image-installer", system, "systemd")
    netboot = values(evaluated, "netboot-installer", system, "systemd")["build"]
    for build, asset in ((kexec, assets["kexec"]), (unattended, assets["kexecNoninteractive"])):
        tarball = build["kexecInstallerTarball"]
        assert f"--out $out/{asset} " in tarball["command"]
        assert tarball["name"] == asset.removesuffix(".tar.gz")
        assert tarball["path"].endswith(tarball["name"])
    assert iso["isoFileName"] == assets["iso"]
    assert iso["build"]["isoImage"]["name"] == assets["iso"]
    assert netboot["netbootInstaller"]["name"] == f"nixos-netboot-installer-{system}"


def assemble_argv(command: str) -> list[str]:
    """The assemble-kexec-tarball command line out of the build script."""
    start = command.index("assemble-kexec-tarball")
    return shlex.split(command[start:].replace("\\\n", " ").replace("${size_args:-}", ""))


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_tarball_is_assembled_from_this_systems_parts(
    evaluated: dict[str, Any], system: str
) -> None:
    v = values(evaluated, "kexec-installer", system, "systemd")
    argv = assemble_argv(v["build"]["kexecInstallerTarball"]["command"])
    options: dict[str, list[str]] = {}
    for flag, value in zip(argv[1::2], argv[2::2], strict=True):
        options.setdefault(flag, []).append(value)
    kernel_file = "bzImage" if system == "x86_64-linux" else "Image"
    assert options["--kernel"][0].endswith(f"-linux-6.12.40/{kernel_file}")
    assert options["--initrd"][0].endswith("-initrd/initrd")
    cmdline = options["--cmdline"][0].split()
    assert cmdline[0].startswith("init=/nix/store/")
    assert cmdline[0].endswith("/init")
    assert cmdline[1:] == v["kernelParams"]
    assert [t.split("=")[0] for t in options["--tool"]] == ["kexec", "ip"]
    paths = options["--python-path"]
    assert any("-nixos-images-helpers-" in p for p in paths)
    assert any(p.split("-", 1)[1].startswith("typer/") for p in paths)
    assert not [p for p in paths if "-rich/" in p or "-python3/" in p]
    assert options["--delay"] == ["6"]


def test_users_initrd_compressors(evaluated: dict[str, Any]) -> None:
    """boot.initrd.compressor may be a command, a full path, or a function of pkgs."""
    results = evaluated["compressors"]
    for name in ("xz", "zstdPath", "gzipFunction"):
        assert results[name]["failedAssertions"] == [], name
    command = results["zstdPath"]["values"]["build"]["kexecInstallerTarball"]["command"]
    assert "--initrd-unpacked-size $(zstd -dcq" in command
    xz = results["xz"]["values"]["build"]["kexecInstallerTarball"]["command"]
    assert "size_args=" not in xz
    (refusal,) = results["lz4"]["failedAssertions"]
    assert 'boot.initrd.compressor runs "lz4": set it to one of them' in refusal


@pytest.mark.parametrize(("image", "system", "stage"), combos())
def test_units_run_our_helpers_in_order(
    evaluated: dict[str, Any], image: str, system: str, stage: str
) -> None:
    services = values(evaluated, image, system, stage)["services"]
    for name in HELPERS:
        if name not in services:
            continue
        exec_start = services[name]["serviceConfig"]["ExecStart"].split()
        assert exec_start[0].startswith("/nix/store/")
        assert exec_start[0].endswith(f"-nixos-images-helpers-0.1.0/bin/{name}")
    restore = services["restore-network"]
    # Early, before networkd reads its units, without waiting for basic.target.
    assert restore["unitConfig"]["DefaultDependencies"] is False
    assert restore["after"] == ["local-fs.target"]
    assert set(restore["before"]) == {"network-pre.target", "systemd-networkd.service"}
    assert restore["wantedBy"] == ["systemd-networkd.service"]
    if "root-password" in services:
        assert {"sshd.service", "getty.target"} <= set(services["root-password"]["before"])


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_hand_off_runs_in_whichever_stage_one_is_used(
    evaluated: dict[str, Any], system: str
) -> None:
    systemd = values(evaluated, "kexec-installer", system, "systemd")
    (unit,) = systemd["initrdServices"].values()
    assert unit["serviceConfig"]["ExecStart"] == (
        "/bin/sh /etc/nixos-images/handoff.sh /nixos-images/state /sysroot /run/nixos-images/state"
    )
    assert unit["unitConfig"]["ConditionPathExists"] == "/nixos-images/state"
    assert "initrd-nixos-activation.service" in unit["before"]
    assert systemd["postMountCommands"] == ""
    scripted = values(evaluated, "kexec-installer", system, "scripted")
    assert scripted["initrdServices"] == {}
    assert scripted["postMountCommands"].count("handoff.sh FROM ROOT STATE") == 1


def test_scripted_stage_1_runs_the_hand_off_as_rendered(
    evaluated: dict[str, Any], tmp_path: Path
) -> None:
    """The heredoc Nix builds around handoff.sh must run as is under busybox sh."""
    require([] if qemu.BUSYBOX.exists() else ["busybox-static"], "the stage-1 hand-off check")
    script = values(evaluated, "kexec-installer", "x86_64-linux", "scripted")["postMountCommands"]
    state = tmp_path / "nixos-images/state"
    (state / "ssh/host-keys").mkdir(parents=True)
    (state / "ssh/host-keys/ssh_host_ed25519_key").write_text("PRIVATE\n")
    (state / "network").mkdir()
    (state / "network/dns").write_text("192.0.2.53\n")
    (state / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    # Point the two places that name the initramfs paths at the test's directories.
    installer_state = tmp_path / "run/nixos-images/state"
    for old, new in (
        ("[ -d /nixos-images/state ]", f"[ -d {state} ]"),
        (
            "-s /nixos-images/state $targetRoot /run/nixos-images/state <<",
            f"-s {state} $targetRoot {installer_state} <<",
        ),
    ):
        assert script.count(old) == 1, script
        script = script.replace(old, new)
    subprocess.run(
        [str(qemu.BUSYBOX), "sh", "-euc", script],
        env={"targetRoot": str(tmp_path / "root"), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    key = tmp_path / "root/etc/ssh/ssh_host_ed25519_key"
    assert key.read_text() == "PRIVATE\n"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "root/etc/machine-id").stat().st_mode & 0o777 == 0o444
    assert (installer_state / "network/dns").read_text() == "192.0.2.53\n"
    assert (tmp_path / "root/root").exists() is False  # no keys carried: root untouched


def test_tor_only_where_nobody_forwards_ports(evaluated: dict[str, Any]) -> None:
    tor = {i: values(evaluated, i, "x86_64-linux", "systemd")["tor"] for i in IMAGES}
    assert tor == {
        "kexec-installer": False,
        "noninteractive": False,
        "netboot-installer": True,
        "image-installer": True,
    }
