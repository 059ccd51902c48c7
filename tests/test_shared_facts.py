"""Each fact that Nix, Python, the hand-off script and the workflows share has one owner
(helpers/src/nixos_images/data/layout.json, helpers/versions.toml); these tests hold the
others to it. docs/shared-facts.md lists every such fact and the test that checks it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import qemu
import versions
from conftest import REPO, nix_eval
from nixos_images import layout
from nixos_images.kexec import manifest
from nixos_images.state import StateDir


@pytest.mark.real  # Debian's nix-instantiate evaluates the Nix side
def test_the_hand_off_script_is_filled_in_alike_by_nix_and_by_the_tests() -> None:
    """nix/lib.nix renderHandoff (what goes into the initrd) and qemu.handoff_script() (what
    the QEMU hand-off runs) fill in the same names and modes, and leave no placeholder."""
    script = "builtins.readFile ./nix/kexec/handoff.sh"
    rendered = nix_eval(f"(import ./nix/lib.nix).renderHandoff ({script})")
    assert rendered == qemu.handoff_script().decode()
    assert not re.search(r"@[A-Za-z]+@", rendered)
    for f in layout.STATE_FILES.values():
        assert f'"$from/{f.path}' in rendered
        assert f"{f.mode:04o}" in rendered


def test_the_state_directory_is_laid_out_as_layout_json_says() -> None:
    state = StateDir(Path("/s"))
    files = layout.STATE_FILES
    assert state.host_keys == Path("/s", files["hostKeys"].path)
    assert state.authorized_keys == Path("/s", files["authorizedKeys"].path)
    assert state.machine_id == Path("/s", files["machineId"].path)
    assert state.network == Path("/s", files["network"].path)
    assert files["hostKeys"].public_mode == 0o644  # ssh-keygen's for a .pub
    assert {f.mode for f in files.values()} <= {0o600, 0o644, 0o444}


@pytest.mark.real  # Debian's nix-instantiate evaluates the Nix side
def test_the_kexec_defaults_are_one_pair_of_figures() -> None:
    """nix/kexec/default.nix's option defaults come from nix/lib.nix, which reads layout.json;
    the manifest's fallbacks (a tarball that names none) are layout.py's."""
    assert nix_eval("(import ./nix/lib.nix).kexecDefaults") == {
        "delay": layout.KEXEC_DELAY,
        "reserve": layout.KEXEC_RESERVE,
    }
    assert (manifest.DEFAULT_DELAY, manifest.DEFAULT_RESERVE) == (6, 256 << 20)
    module = (REPO / "nix/kexec/default.nix").read_text()
    assert "default = imagesLib.kexecDefaults.delay;" in module
    assert "default = imagesLib.kexecDefaults.reserve;" in module


@pytest.mark.real  # Debian's nix-instantiate evaluates the Nix side
def test_the_onion_the_banner_reads_is_the_one_tor_nix_makes() -> None:
    """Tor writes <service>'s address to /var/lib/tor/onion/<service>/hostname (nixpkgs'
    services/security/tor.nix); tor.nix names the service from layout.json."""
    onion = nix_eval("(import ./nix/lib.nix).onion")
    assert Path("/var/lib/tor/onion", onion["service"], "hostname") == layout.ONION_HOSTNAME
    assert str(layout.ONION_HOSTNAME) == onion["hostname"]
    assert "relay.onionServices.${service}.map" in (REPO / "nix/tor.nix").read_text()


def python_packages(expr: str) -> list[str]:
    """The python3Packages names a Nix file takes from `ps` (withPackages) or python3Packages."""
    names: list[str] = nix_eval(expr)
    return sorted(names)


@pytest.mark.real  # Debian's nix-instantiate evaluates the Nix side
def test_the_nix_lint_python_has_the_versions_files_lint_packages() -> None:
    """nix/dev-python.nix (the lint check's and dev shell's Python) holds what the versions
    file gives the lint role, but ruff (pkgs.ruff in nix/lint.nix), plus the runtime."""
    expr = """
      let
        names = [ "typer" "qrcode" "mypy" "pytest" "pytest-timeout" "hypothesis" "pyyaml"
                  "pyte" "zxing-cpp" "click" ];
        ps = builtins.listToAttrs (map (n: { name = n; value = n; }) names);
        pkgs.python3.withPackages = f: f ps;
      in import ./nix/dev-python.nix { inherit pkgs; helpers.typer = "typer"; }
    """
    got = python_packages(expr)
    table = versions.packages()
    lint = {n for n, t in table.items() if "lint" in t["roles"]} - {"ruff"}
    runtime = {"typer", "qrcode"}
    assert set(got) == lint | runtime


@pytest.mark.real  # Debian's nix-instantiate evaluates the Nix side
def test_the_nix_check_phase_has_the_versions_files_check_packages() -> None:
    facts: dict[str, Any] = nix_eval("import ./tests/nix/package-facts.nix { }")
    table = versions.packages()
    check = {n for n, t in table.items() if "check" in t["roles"]}
    # pytestCheckHook brings pytest.
    assert {*facts["checkModules"], "pytest"} - {"pytestCheckHook"} == check


def test_every_version_in_the_versions_file_is_a_release_number() -> None:
    data = tomllib.loads(versions.FILE.read_text())
    for name, table in data["packages"].items():
        for column in versions.COLUMNS:
            if column in table:
                assert re.fullmatch(r"\d+(\.\d+)+", table[column]), (name, column)
