"""The Nix side, as far as it can be checked without nixpkgs (which cannot be fetched here).

Debian's nix-instantiate parses every file, evaluates nix/lib.nix (only builtins), checks
flake.lock against the pinned revisions, and renders the scripted-initrd hand-off from the
kexec module with a stand-in for nixpkgs' lib, which then runs under busybox sh.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

import qemu
from conftest import nix_eval, require

REPO = Path(__file__).resolve().parent.parent
PINS = REPO.parent / "shared" / "nixpkgs-pins.toml"

pytestmark = pytest.mark.real


def nix_files() -> list[Path]:
    return sorted(p for p in REPO.rglob("*.nix") if ".venv" not in p.parts)


def test_every_nix_file_parses() -> None:
    require([] if shutil.which("nix-instantiate") else ["nix-instantiate (nix-bin)"], "Nix")
    files = nix_files()
    assert len(files) > 10
    for path in files:
        result = subprocess.run(
            ["nix-instantiate", "--parse", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{path}: {result.stderr}"


def test_lock_pins_the_inputs_flake_nix_names() -> None:
    inputs = nix_eval("(import ./flake.nix).inputs")
    lock = json.loads((REPO / "flake.lock").read_text())
    assert lock["version"] == 7
    assert lock["nodes"]["root"]["inputs"] == {name: name for name in inputs}
    pins = tomllib.loads(PINS.read_text()) if PINS.exists() else None
    for name, spec in inputs.items():
        node = lock["nodes"][name]
        url = spec["url"]
        assert url == f"git+{node['original']['url']}?ref={node['original']['ref']}&shallow=1"
        locked = node["locked"]
        assert {k: locked[k] for k in node["original"]} == node["original"]
        assert len(locked["rev"]) == 40
        assert locked["narHash"].startswith("sha256-")
        if pins is not None:
            pin = pins[name]
            got = {k: locked[k] for k in ("ref", "rev", "narHash", "lastModified")}
            assert got == {k: pin[k] for k in got}


KERNELS = """
let
  lib = import ./nix/lib.nix;
  set = version: broken: { kernel.version = version; zfs_2_3.meta.broken = broken; };
in lib.newestZfsKernel "zfs_2_3" {
  linux_6_6 = set "6.6.60" false;
  linux_6_12 = set "6.12.9" false;
  linux_6_10 = set "6.10.2" false;
  linux_6_16 = set "6.16.1" true;
  linux_latest = set "6.17.0" false;
  linux_6_9 = throw "removed";
  linux_6_13 = { kernel.version = "6.13.1"; };
}
"""


def test_newest_kernel_whose_zfs_module_works() -> None:
    # 6.16 is broken, 6.13 has no ZFS module, 6.9 fails to evaluate, linux_latest is an alias.
    assert nix_eval(f"({KERNELS}).kernel.version") == "6.12.9"


def test_no_zfs_kernel_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(AssertionError, match=r"set boot\.kernelPackages yourself"):
        nix_eval('(import ./nix/lib.nix).newestZfsKernel "zfs_2_3" { linux_6_6 = {}; }')


def test_asset_names_per_system() -> None:
    names = nix_eval('map (import ./nix/lib.nix).assetNames [ "x86_64-linux" "aarch64-linux" ]')
    assert names[0] == {
        "kexec": "nixos-kexec-installer-x86_64-linux.tar.gz",
        "kexecNoninteractive": "nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz",
        "iso": "nixos-installer-x86_64-linux.iso",
        "kernel": "bzImage-x86_64-linux",
        "initrd": "initrd-x86_64-linux",
        "ipxe": "netboot-x86_64-linux.ipxe",
    }
    assert names[1]["kernel"] == "Image-aarch64-linux"


# Just enough of nixpkgs' lib and of a configuration to render the kexec module's stage-1
# hand-off; Nix's laziness leaves the rest of the module unevaluated.
HANDOFF = """
let
  module = import ./nix/kexec/default.nix {
    config = { boot.initrd.systemd.enable = %s; };
    lib = { mkIf = cond: value: if cond then value else null; };
    pkgs = { };
    modulesPath = "/modules";
  };
  systemd = module.config.boot.initrd.systemd;
in {
  scripted = module.config.boot.initrd.postMountCommands;
  systemd = if systemd == null then null else systemd // {
    # The path as written, not copied to a store this machine does not have.
    contents = builtins.mapAttrs (_: file: toString file.source) systemd.contents;
  };
}
"""


def test_scripted_stage_1_runs_the_same_hand_off_script(tmp_path: Path) -> None:
    """The heredoc Nix builds around handoff.sh must run as is under busybox sh."""
    require([] if qemu.BUSYBOX.exists() else ["busybox-static"], "the stage-1 hand-off check")
    rendered = nix_eval(HANDOFF % "false")
    assert rendered["systemd"] is None
    state = tmp_path / "nixos-images/state"
    (state / "ssh/host-keys").mkdir(parents=True)
    (state / "ssh/host-keys/ssh_host_ed25519_key").write_text("PRIVATE\n")
    (state / "network").mkdir()
    (state / "network/dns").write_text("192.0.2.53\n")
    (state / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    # Point the two places that name the initramfs paths at the test's directories.
    script = rendered["scripted"]
    for old, new in (
        ("[ -d /nixos-images/state ]", f"[ -d {state} ]"),
        ("-s /nixos-images/state $targetRoot /run <<", f"-s {state} $targetRoot {tmp_path}/run <<"),
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
    assert (tmp_path / "run/nixos-images/state/network/dns").read_text() == "192.0.2.53\n"


def test_systemd_stage_1_runs_it_from_the_initrd_before_activation() -> None:
    rendered = nix_eval(HANDOFF % "true")
    assert rendered["scripted"] is None
    unit = rendered["systemd"]["services"]["nixos-images-handoff"]
    script = rendered["systemd"]["contents"]["/etc/nixos-images/handoff.sh"]
    assert Path(script) == REPO / "nix/kexec/handoff.sh"
    assert unit["serviceConfig"]["ExecStart"] == (
        "/bin/sh /etc/nixos-images/handoff.sh /nixos-images/state /sysroot /run"
    )
    assert "initrd-nixos-activation.service" in unit["before"]
    assert unit["unitConfig"]["ConditionPathExists"] == "/nixos-images/state"
