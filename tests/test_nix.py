"""The Nix side, as far as it can be checked without nixpkgs (which cannot be fetched here).

Debian's nix-instantiate parses every file, evaluates nix/lib.nix (only builtins) and checks
flake.lock against the pinned revisions. The modules are evaluated with nixpkgs' real lib in
test_nix_modules.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import nix_eval, require

REPO = Path(__file__).resolve().parent.parent
# Known-good revisions to compare flake.lock with, where given (.ci/run gives its copy's).
PINS = Path(os.environ.get("NIXOS_IMAGES_PINS", "/nonexistent"))

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
in lib.newestKernel { zfs = lib.moduleAttrWorks "zfs_2_3"; } {
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
    with pytest.raises(AssertionError, match=r"working zfs modules; set boot\.kernelPackages"):
        nix_eval(
            "let lib = import ./nix/lib.nix; in"
            ' lib.newestKernel { zfs = lib.moduleAttrWorks "zfs_2_3"; } { linux_6_6 = {}; }'
        )


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


def test_kexec_installer_names_come_from_the_asset_names() -> None:
    names = nix_eval(
        'let lib = import ./nix/lib.nix; in map (lib.kexecInstallerName "aarch64-linux")'
        ' [ "kexec" "kexecNoninteractive" ]'
    )
    assert names == ["nixos-kexec-installer", "nixos-kexec-installer-noninteractive"]


def test_the_nix_build_runs_hypothesis_derandomized() -> None:
    """package.nix selects conftest's derandomized profile: the same examples every build."""
    from hypothesis import settings  # noqa: PLC0415

    import conftest  # noqa: PLC0415

    facts = nix_eval("import ./tests/nix/package-facts.nix { }")
    assert facts["checkEnv"]["HYPOTHESIS_PROFILE"] == conftest.DERANDOMIZED
    profile = settings.get_profile(conftest.DERANDOMIZED)
    assert profile.derandomize is True
    assert profile.database is None


def test_the_nix_library_tests_pass() -> None:
    """tests/nix/lib-tests.nix: nix/lib.nix and nix/lean.nix under lib.runTests."""
    assert nix_eval("import ./tests/nix/lib-tests.nix { }") == []


def test_a_failing_nix_library_test_is_reported() -> None:
    """runTests answers with the failures, so an empty answer above means they passed."""
    failing = (
        "(import ./tests/nix/lib.nix { }).runTests { testWrong = { expr = 1; expected = 2; }; }"
    )
    assert [t["name"] for t in nix_eval(failing)] == ["testWrong"]
