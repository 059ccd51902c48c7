"""The image modules, evaluated with nixpkgs' real module system (tests/nix/eval.nix).

Every image (kexec-installer, noninteractive, netboot-installer, image-installer) on both
systems, with systemd and with scripted stage 1, against a ledger of the nixpkgs options
they touch and stubs of the profiles they import, carrying nixpkgs' definitions at nixpkgs'
priorities. What a user of each image would notice is asserted on the merged values.

The lib is NIXPKGS_LIB's, else flake.lock's nixpkgs fetched by Nix (tests/nix/lib.nix): this
machine's CI points NIXPKGS_LIB at a copy (.ci/run), the Nix CI at the flake's own input.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import qemu
from conftest import nix_eval, require
from nixos_images import layout, root_keys, root_password

# Given, or left to tests/nix/lib.nix (flake.lock's nixpkgs).
LIB = Path(os.environ["NIXPKGS_LIB"]) if os.environ.get("NIXPKGS_LIB") else None
IMAGES = ("kexec-installer", "noninteractive", "netboot-installer", "image-installer")
# The noninteractive mix-in next to the other images, as public flakes combine them.
MIXED = ("netboot-noninteractive", "image-noninteractive")
UNATTENDED = ("noninteractive", *MIXED)
SYSTEMS = ("x86_64-linux", "aarch64-linux")
STAGES = ("systemd", "scripted")
# perlless' /etc overlay is mounted by systemd's stage 1 only (nixpkgs' assertion).
NO_SCRIPTED = "`system.etc.overlay.enable` requires `boot.initrd.systemd.enable`"
HELPERS = ("restore-network", "root-password", "installer-banner", "root-keys")


@pytest.fixture(scope="module")
def evaluated() -> dict[str, Any]:
    missing = [] if shutil.which("nix-instantiate") else ["nix-instantiate (nix-bin)"]
    missing += [] if LIB is None or (LIB / "default.nix").is_file() else [f"nixpkgs' lib at {LIB}"]
    require(missing, "evaluating the modules")
    data: dict[str, Any] = nix_eval("import ./tests/nix/eval.nix { }")
    return data


def combos() -> list[tuple[str, str, str]]:
    """Every image, system and stage 1 that must evaluate (the unattended ones need systemd's)."""
    return [
        (i, s, st)
        for i in (*IMAGES, *MIXED)
        for s in SYSTEMS
        for st in STAGES
        if not (i in UNATTENDED and st == "scripted")
    ]


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


@pytest.mark.parametrize("image", UNATTENDED)
def test_the_unattended_image_refuses_scripted_stage_1(
    evaluated: dict[str, Any], image: str
) -> None:
    for system in SYSTEMS:
        assert evaluated["images"][image][system]["scripted"]["failedAssertions"] == [NO_SCRIPTED]


@pytest.mark.parametrize("image", UNATTENDED)
def test_the_unattended_image_is_lean(evaluated: dict[str, Any], image: str) -> None:
    """nix-community/nixos-images' reductions (docs/images.md, "The unattended image")."""
    v = values(evaluated, image, "x86_64-linux", "systemd")
    assert (v["etcOverlay"], v["systemdStage1"]) == (True, True)  # perlless
    assert v["forbiddenDependencies"] == []  # the installer tools need perl's neighbours
    assert (v["sudo"], v["polkit"]) == (False, False)
    assert v["defaultPackages"] == ["parted", "gptfdisk", "e2fsprogs"]
    assert "cifs" not in v["supportedFilesystems"]  # base.nix is disabled
    assert not [s for s in v["services"] if s.startswith(("installer-banner", "root-password"))]
    assert v["loginShellInit"] == ""
    # netboot-minimal's mkOverride 500 man pages and 70 extra dependencies lose.
    assert v["man"] is False
    assert "man-db" not in v["systemPackages"]
    assert v["extraDependencies"] == []
    assert v["leanUnattended"]  # nix/lean.nix's checks ran at all
    assert v["leanUnattended"] == dict.fromkeys(v["leanUnattended"], True)


@pytest.mark.parametrize(("image", "system", "stage"), combos())
def test_no_image_carries_a_channel_or_x11(
    evaluated: dict[str, Any], image: str, system: str, stage: str
) -> None:
    """installation-device's channel (nixpkgs' source, nix-env at first boot) and su's xauth
    are in no image; nix/lean.nix's checks, which the flake runs on the real systems, agree."""
    v = values(evaluated, image, system, stage)
    assert v["channel"] is False
    assert "nix-env" not in v["postBootCommands"]
    assert v["suForwardXAuth"] is False
    assert v["lean"]  # nix/lean.nix's checks ran at all
    assert v["lean"] == dict.fromkeys(v["lean"], True)


def test_the_shared_installer_module_evaluates_without_an_installer_profile(
    evaluated: dict[str, Any],
) -> None:
    """Its channel setting applies only where installation-device declared the option."""
    assert evaluated["installerAlone"] == {"hostName": "nixos-installer", "suForwardXAuth": False}


@pytest.mark.parametrize(("image", "system", "stage"), combos())
def test_only_the_unattended_image_reboots_when_it_cannot_come_up(
    evaluated: dict[str, Any], image: str, system: str, stage: str
) -> None:
    """Nobody is at the unattended image's console: a failed stage 1 panics and panic=30
    reboots (to the old system, mostly); stage 2 does not wait in an emergency shell. The
    other images keep the shell for the person at the console."""
    v = values(evaluated, image, system, stage)
    unattended = image in UNATTENDED
    assert ({"panic=30", "boot.panic_on_fail"} <= set(v["kernelParams"])) is unattended
    assert v["emergencyMode"] is not unattended


@pytest.mark.parametrize(("image", "system", "stage"), combos())
def test_the_dead_man_switch_counts_down_from_boot_only_on_the_unattended_image(
    evaluated: dict[str, Any], image: str, system: str, stage: str
) -> None:
    """The unattended image reboots 30 minutes after boot unless someone logs in (its timer
    runs from every boot, the deadline given to the helper); the others run the switch only
    when the kernel command line asks for it (kexec/run --deadman). Stood down, the timer's
    runs are skipped without starting Python."""
    v = values(evaluated, image, system, stage)
    timer, service = v["timers"]["nixos-images-deadman"], v["services"]["nixos-images-deadman"]
    assert timer["wantedBy"] == ["timers.target"]
    assert timer["timerConfig"]["OnUnitActiveSec"] == "15s"
    argv = service["serviceConfig"]["ExecStart"].split()
    assert argv[0].endswith("/bin/nixos-images-deadman")
    if image in UNATTENDED:
        assert "unitConfig" not in timer
        assert argv[1:] == ["--minutes", "30"]
    else:
        assert timer["unitConfig"]["ConditionKernelCommandLine"] == layout.DEADMAN_PARAMETER
        assert argv[1:] == []
    finished = layout.DEADMAN_STATE_DIR / layout.DEADMAN_FINISHED
    assert service["unitConfig"]["ConditionPathExists"] == f"!{finished}"
    assert service["serviceConfig"]["TimeoutStartSec"] == "60s"
    assert f"d {layout.DEADMAN_STATE_DIR} 0755 root root -" in v["tmpfiles"]


def test_a_command_typed_at_a_console_marks_a_login_and_an_idle_prompt_does_not(
    evaluated: dict[str, Any], tmp_path: Path
) -> None:
    """The consoles log root in by themselves: the image's interactive bash init, run by the
    real bash, writes the dead-man switch's login mark once someone types a command (PS0),
    not for the prompt alone, nor for an empty line."""
    require([] if shutil.which("bash") else ["bash"], "the shell init test")
    init = evaluated["images"]["noninteractive"]["x86_64-linux"]["systemd"]["values"]["bashInit"]
    state = str(layout.DEADMAN_STATE_DIR)
    assert state in init
    rc = tmp_path / "bashrc"
    rc.write_text(init.replace(state, str(tmp_path)))
    mark = tmp_path / layout.DEADMAN_LOGIN_MARK
    bash = ["bash", "--rcfile", str(rc), "-i"]
    for typed in ("", "\n"):
        subprocess.run(bash, input=typed, capture_output=True, text=True, check=False)
        assert not mark.exists()
    subprocess.run(bash, input="true\n", capture_output=True, text=True, check=False)
    assert mark.exists()


def test_the_dead_man_switch_is_set_at_build_time(evaluated: dict[str, Any]) -> None:
    """An interactive image's owner turns it on for every boot, with their own deadline."""
    v = evaluated["deadmanOn"]["values"]
    assert "unitConfig" not in v["timers"]["nixos-images-deadman"]
    argv = v["services"]["nixos-images-deadman"]["serviceConfig"]["ExecStart"].split()
    assert argv[1:] == ["--minutes", "12"]


def test_upstreams_tor_ssh_option_turns_the_onion_service_on(evaluated: dict[str, Any]) -> None:
    """nix-community/nixos-images' tor-ssh.enable, with its onion service's name (the banner
    reads /var/lib/tor/onion/hidden-ssh/hostname, layout.json's)."""
    summary = evaluated["upstreamTorSsh"]
    assert summary["failedAssertions"] == []
    assert summary["values"]["tor"] is True
    assert summary["values"]["onionServices"] == ["hidden-ssh"]
    assert values(evaluated, "kexec-installer", "x86_64-linux", "systemd")["tor"] is False
    assert values(evaluated, "image-installer", "x86_64-linux", "systemd")["onionServices"] == [
        "hidden-ssh"
    ]


def test_the_default_dhcp_networks_follow_use_dhcp(evaluated: dict[str, Any]) -> None:
    """With useDHCP off, nixpkgs defines no 99-* networks, and neither may ours."""
    summary = evaluated["noDHCP"]
    assert summary["failedAssertions"] == []
    assert summary["values"]["useDHCP"] is False
    assert not [n for n in summary["values"]["networks"] if n.startswith("99-")]
    with_dhcp = values(evaluated, "kexec-installer", "x86_64-linux", "systemd")["networks"]
    assert with_dhcp["99-ethernet-default-dhcp"]["MulticastDNS"] is True


@pytest.mark.parametrize("image", [*IMAGES, *MIXED])
def test_what_nixos_anywhere_disko_and_clan_run_is_on_path(
    evaluated: dict[str, Any], image: str
) -> None:
    v = values(evaluated, image, "aarch64-linux", "systemd")
    tools = {"nixos-facter", "disko", "jq", "rsync", "nixos-install-tools"}
    assert tools <= set(v["systemPackages"])
    assert "dm-raid" in v["kernelModules"]  # LVM RAID (nixos-anywhere#249)
    assert {"zfs", "bcachefs"} <= set(v["supportedFilesystems"])
    settings = v["nixSettings"]
    assert settings["connect-timeout"] == 5
    assert settings["extra-substituters"] == ["/"]
    assert (settings["min-free"], settings["max-free"]) == (512 << 20, 3000 << 20)
    assert settings["builders-use-substitutes"] is True
    assert set(settings["experimental-features"]) == {"nix-command", "flakes"}


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


def test_clans_nmtui_on_the_iso_tells_the_iwd_way_and_starts_iwctl(
    evaluated: dict[str, Any], tmp_path: Path
) -> None:
    """clan's getting-started guide says `nmtui`; the ISO's wifi is iwd. The ISO's `nmtui`
    (nix/image/nmtui.sh, run here with a recording iwctl) says what to type and starts it."""
    iso = values(evaluated, "image-installer", "x86_64-linux", "systemd")
    assert "nmtui" in iso["systemPackages"]
    assert (
        "nmtui"
        not in values(evaluated, "netboot-installer", "x86_64-linux", "systemd")["systemPackages"]
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "iwctl").write_text('#!/bin/sh\necho "iwctl $*"\n')
    (bin_dir / "iwctl").chmod(0o755)
    script = Path(__file__).resolve().parent.parent / "nix/image/nmtui.sh"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["sh", str(script), "--passphrase", "x"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "iwctl --passphrase x\n"
    assert "station wlan0 connect <your network>" in done.stderr


@pytest.mark.parametrize("image", IMAGES)
def test_common_nic_firmware_where_no_firmware_is_carried(
    evaluated: dict[str, Any], image: str, tmp_path: Path
) -> None:
    """netboot-minimal turns redistributable firmware off (kexec, netboot): those images carry
    the NIC subset, copied by a build script that fails on a directory linux-firmware lacks
    (run here against a stand-in tree)."""
    v = values(evaluated, image, "x86_64-linux", "systemd")
    subset = [f for f in v["firmware"] if f["name"] == "nic-firmware"]
    if v["redistributableFirmware"]:
        assert subset == []
        return
    (firmware,) = subset
    source = tmp_path / "linux-firmware/lib/firmware"
    for name in ("rtl_nic/rtl8125b-2.fw", "tigon/tg3.bin", "bnx2/bnx2-mips-09-6.2.1b.fw",
                 "bnx2x/bnx2x-e2-7.13.21.0.fw", "qed/qed_init_values-8.59.1.0.bin",
                 "liquidio/lio_23xx_nic.bin", "cxgb4/t6fw.bin", "intel/ice/ddp/ice.pkg",
                 "iwlwifi-9000-pu-b0-jf-b0-46.ucode"):  # fmt: skip
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(b"firmware")
    # linux-firmware's dedup: a duplicate is a link, maybe into a directory not carried.
    (source / "dedup").mkdir()
    (source / "dedup/rtl8125a-3.fw").write_bytes(b"firmware")
    (source / "rtl_nic/rtl8125a-3.fw").symlink_to("../dedup/rtl8125a-3.fw")
    out = tmp_path / "out"
    script = firmware["command"].replace("$out", str(out))
    script = re.sub(r"/nix/store/[^/]*-linux-firmware[^/]*", str(source.parent.parent), script)
    subprocess.run(["sh", "-ec", script], check=True)
    carried = sorted(
        str(p.relative_to(out / "lib/firmware")) for p in out.rglob("*") if p.is_file()
    )
    assert "rtl_nic/rtl8125b-2.fw" in carried
    assert (out / "lib/firmware/rtl_nic/rtl8125a-3.fw").read_bytes() == b"firmware"
    assert "intel/ice/ddp/ice.pkg" in carried
    assert not any(name.startswith("iwlwifi") for name in carried)
    shutil.rmtree(source / "cxgb4")
    failed = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, check=False)
    assert failed.returncode != 0
    assert "linux-firmware has no cxgb4" in failed.stderr


@pytest.mark.parametrize("image", IMAGES)
def test_no_image_carries_documentation(evaluated: dict[str, Any], image: str) -> None:
    """As nix-community/nixos-images: no manual, no man pages (and no man-db) in RAM."""
    v = values(evaluated, image, "x86_64-linux", "systemd")
    assert (v["documentation"], v["nixosManual"], v["man"]) == (False, False, False)


@pytest.mark.parametrize("system", SYSTEMS)
def test_consoles(evaluated: dict[str, Any], system: str) -> None:
    """Root on every console (over installation-device's `nixos`); the banner from root's
    autologin shell on tty1 and on each serial console, after getty's output (Enter or
    Ctrl-C leave it), without the password on serial; the unattended image shows none."""
    serials = ["ttyS0"] if system == "x86_64-linux" else ["ttyAMA0", "ttyS0"]
    for image in (*IMAGES, *MIXED):
        v = values(evaluated, image, system, "systemd")
        assert v["autologinUser"] == "root"
        assert not [s for s in v["services"] if s.startswith("installer-banner")]
        # `installer-banner --text` (what did not fit the screen) is on PATH with the banner.
        on_path = "nixos-images-helpers" in v["systemPackages"]
        if image in UNATTENDED:
            assert "installer-banner" not in v["loginShellInit"]
            assert not on_path
            continue
        assert on_path
        lines = [line.strip() for line in v["loginShellInit"].splitlines()]
        start = lines.index('case "$(tty)" in')
        tty1, serial, end = lines[start + 1 : start + 4]
        # Where Tor does not run (kexec), the banner shows no onion address it would wait for.
        tor = "" if v["tor"] else " --no-tor"
        banner = rf"/nix/store/\S+/bin/installer-banner --watch{tor}"
        assert re.fullmatch(rf"/dev/tty1\) {banner} ;;", tty1)
        # hvc0 (Xen, virtio console) gets its getty from systemd's generator: a banner too.
        pattern = "|".join(f"/dev/{tty}" for tty in [*serials, "hvc0"])
        assert serial.startswith(f"{pattern}) /nix/store/")
        # Serial consoles are logged by providers: no password there by default.
        assert serial.endswith(f"/bin/installer-banner --watch{tor} --no-password ;;")
        assert end == "esac"
        assert "getty@tty1" not in v["services"]  # tty1 keeps its (autologin) getty
        consoles = [p.removeprefix("console=") for p in v["kernelParams"] if "console=" in p]
        serial = [f"{tty},115200" for tty in serials]
        # The last console= is /dev/console: VGA on the ISO, the serial ports elsewhere.
        primary_vga = image.startswith("image-")
        assert consoles == ([*serial, "tty0"] if primary_vga else ["tty0", *serial])


@pytest.mark.parametrize("system", SYSTEMS)
def test_kernel_parameters_and_kernel(evaluated: dict[str, Any], system: str) -> None:
    v = values(evaluated, "kexec-installer", system, "systemd")
    assert {"zswap.enabled=1", "zswap.compressor=zstd", "loglevel=4"} <= set(v["kernelParams"])
    # nouveau's mode setting off where upstream has it: the ISO and the unattended image.
    for image in (*IMAGES, *MIXED):
        params = values(evaluated, image, system, "systemd")["kernelParams"]
        wanted = image == "image-installer" or image in UNATTENDED
        assert ("nouveau.modeset=0" in params) is wanted, image
    # Builds yield to a person's ssh session and the closure being copied in.
    assert v["nixDaemonScheduling"] == {"cpu": "batch", "io": "idle", "ioPriority": 7}
    # The newest kernel set whose ZFS and bcachefs modules are not broken (the stand-ins:
    # 6.14's bcachefs broken, 6.15's ZFS broken, 6.16 without ZFS, 6.17 throws,
    # linux_latest an alias); without bcachefs, 6.14 will do.
    assert v["kernelVersion"] == "6.12.40"
    assert v["zfs"] is True
    assert evaluated["withoutBcachefs"]["values"]["kernelVersion"] == "6.14.3"


@pytest.mark.parametrize("image", ["netboot-installer", "netboot-noninteractive"])
def test_a_netbooted_machine_asks_for_its_lease_by_mac_and_speaks_lldp(
    evaluated: dict[str, Any], image: str
) -> None:
    """The DHCP server that answered the PXE firmware knows the MAC, not networkd's DUID."""
    v = values(evaluated, image, "x86_64-linux", "systemd")
    uplink = "50-netboot-uplink"
    assert v["networkMatches"][uplink] == {"Type": "ether", "Kind": "!*"}
    assert v["networkDhcpV4"][uplink]["ClientIdentifier"] == "mac"
    assert {v["networks"][uplink][k] for k in ("LLDP", "EmitLLDP", "MulticastDNS")} == {"yes"}
    # Before nixpkgs' catch-all, which networkd would otherwise apply (the first match wins).
    assert min(n for n in v["networks"] if n.startswith("99-")) > uplink
    other = values(evaluated, "kexec-installer", "x86_64-linux", "systemd")
    assert uplink not in other["networks"]


def test_upstreams_tarball_name_option(evaluated: dict[str, Any]) -> None:
    """system.kexec-installer.name, as nix-community/nixos-images users set it."""
    build = evaluated["upstreamName"]["values"]["build"]["kexecInstallerTarball"]
    assert build["name"] == "my-kexec-aarch64-linux"
    assert "--out $out/my-kexec-aarch64-linux.tar.gz " in build["command"]


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
    kernel = assets["kernel"].removesuffix(f"-{system}")
    assert sorted(netboot["netbootInstaller"]["files"]) == sorted(
        [kernel, "initrd", "netboot.ipxe"]
    )
    # netboot-installer-<channel>: nix-community/nixos-images' system.build.netboot layout.
    assert sorted(netboot["netboot"]["files"]) == sorted(
        [kernel, "initrd", "kernel-params", "init"]
    )


def assemble_options(argv: list[str]) -> dict[str, list[str]]:
    """--option value pairs (and --flag with "") of an assemble-kexec-tarball command line."""
    options: dict[str, list[str]] = {}
    words = iter(argv[1:])
    for word in words:
        assert word.startswith("--"), word
        value = "" if word == "--console-password" else next(words)
        options.setdefault(word, []).append(value)
    return options


def test_the_unattended_tarball_claims_no_console_password(evaluated: dict[str, Any]) -> None:
    """So kexec/run refuses when no ssh key would be carried over."""
    build = values(evaluated, "noninteractive", "x86_64-linux", "systemd")["build"]
    options = assemble_options(assemble_argv(build["kexecInstallerTarball"]["command"]))
    assert "--console-password" not in options


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
    options = assemble_options(argv)
    assert options["--console-password"] == [""]  # the banner shows the password on tty1
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
    # The kernel's network drivers are listed from its own module tree (kexec/drivers.py).
    assert options["--modules"][0].endswith("-linux-6.12.40/lib/modules/6.12.40")


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
    # The installed system's network module, where the docs say to fetch it from.
    assert restore["serviceConfig"]["ExecStart"].split()[1:] == [
        "--nixos-module",
        str(layout.NETWORK_MODULE),
    ]
    # Early, before networkd reads its units, without waiting for basic.target.
    assert restore["unitConfig"]["DefaultDependencies"] is False
    assert restore["after"] == ["local-fs.target"]
    assert set(restore["before"]) == {"network-pre.target", "systemd-networkd.service"}
    assert restore["wantedBy"] == ["systemd-networkd.service"]
    if "root-password" in services:
        assert {"sshd.service", "getty.target"} <= set(services["root-password"]["before"])
        # The name root-password reads from $CREDENTIALS_DIRECTORY.
        imported = services["root-password"]["serviceConfig"]["ImportCredential"]
        assert imported == root_password.CREDENTIAL_NAME
    # Every image, unattended ones too: a key given at boot, before sshd.
    keys = services["root-keys"]
    assert keys["serviceConfig"]["ImportCredential"] == root_keys.CREDENTIAL
    assert keys["unitConfig"]["ConditionCredential"] == root_keys.CREDENTIAL
    assert keys["before"] == ["sshd.service", "sshd.socket"]


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
