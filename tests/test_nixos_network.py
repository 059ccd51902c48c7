"""The restored network as a NixOS module (nixos_images.nixos_network, restore-network
--emit-nixos): it evaluates with nixpkgs' real lib against systemd.network's options, and what
it configures, rendered as nixpkgs renders it, is section for section the units restore-network
writes for the installer (the ones the networkd round trip applies)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

import recorded
from conftest import FIXTURES, nix_eval
from nixos_images import nixos_network
from nixos_images.networkd_units import Unit
from nixos_images.restore_network import generate
from nixos_images.state import StateDir

if TYPE_CHECKING:
    from pathlib import Path

    from nixos_images.networkd_units import Section

STATES = {
    "source-host": recorded.SOURCE,
    "bond-vlan": recorded.BOND_VLAN,
    "azure": StateDir(FIXTURES / "azure"),
}


def evaluate(module: Path, user: str = "{ }") -> dict[str, Any]:
    """The module, and the user's own, through lib.evalModules (tests/nix/network-module.nix)."""
    result: dict[str, Any] = nix_eval(
        f"import ./tests/nix/network-module.nix {{ module = {module}; user = {user}; }}"
    )
    return result


def _canonical(sections: list[Section] | tuple[Section, ...]) -> list[tuple[str, str]]:
    """A unit's sections as networkd reads them: (title, entries) with each key's values in
    their order; entries within a section in key order (networkd does not mind it)."""
    out = []
    for title, entries in sections:
        if not entries:
            continue
        by_key: dict[str, list[str]] = {}
        for key, value in entries:
            by_key.setdefault(key, []).append(value)
        out.append((title, json.dumps(sorted(by_key.items()))))
    return sorted(out)


# How nixpkgs' networkd.nix renders a .network and a .netdev from these options: one section
# per attribute set, one per element of the lists, a list value as one line per element.
NETWORK_RENDER = (
    *((title, option, False) for title, option in nixos_network.NETWORK_SECTIONS.items()),
    *((title, option, True) for title, option in nixos_network.NETWORK_LISTS.items()),
)
NETDEV_RENDER = tuple((t, o, False) for t, o in nixos_network.NETDEV_SECTIONS.items())


def rendered(unit: dict[str, Any], layout: tuple[tuple[str, str, bool], ...]) -> list[Section]:
    sections: list[Section] = []
    for title, option, many in layout:
        for attrs in unit.get(option, []) if many else [unit.get(option, {})]:
            entries = [
                (key, str(item))
                for key, value in attrs.items()
                for item in (value if isinstance(value, list) else [value])
            ]
            sections.append((title, entries))
    return sections


@pytest.mark.real  # nixpkgs' lib and Debian's nix-instantiate
@pytest.mark.parametrize("name", STATES.keys())
def test_the_module_configures_exactly_the_units_the_installer_restores(
    name: str, tmp_path: Path
) -> None:
    units = generate(STATES[name])
    path = tmp_path / "network.nix"
    path.write_text(nixos_network.module(units, "a recorded host"))
    got = evaluate(path, "{ networking.useNetworkd = true; }")
    assert got["failedAssertions"] == []
    networks = {k: v for k, v in got["networks"].items() if k.startswith("10-restored-")}
    evaluated = {f"{k}.network": rendered(v, NETWORK_RENDER) for k, v in networks.items()}
    evaluated |= {f"{k}.netdev": rendered(v, NETDEV_RENDER) for k, v in got["netdevs"].items()}
    assert units
    assert {n: _canonical(s) for n, s in evaluated.items()} == {
        u.name: _canonical(u.sections) for u in units
    }


@pytest.mark.real
def test_the_module_refuses_a_system_without_networkd_and_yields_to_the_users_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "network.nix"
    path.write_text(nixos_network.module(generate(recorded.SOURCE), "a recorded host"))
    scripted = evaluate(path, "{ networking.useNetworkd = false; }")  # dhcpcd on every link
    assert scripted["failedAssertions"] == [nixos_network.ASSERTION_MESSAGE]
    managed = "{ networking.useNetworkd = true; networking.networkmanager.enable = true; }"
    assert evaluate(path, managed)["failedAssertions"] == [nixos_network.ASSERTION_MESSAGE]
    plain = "{ systemd.network.enable = true; networking.useDHCP = false; }"
    assert evaluate(path, plain)["failedAssertions"] == []
    mine = '{ systemd.network.networks."10-restored-eth-up".matchConfig.Name = "mine"; }'
    own = evaluate(path, "{ networking.useNetworkd = true; " + mine[1:])
    assert own["failedAssertions"] == []
    assert own["networks"]["10-restored-eth-up"]["matchConfig"] == {"Name": "mine"}
    assert own["networks"]["10-restored-eth-up"]["networkConfig"] == {}
    # nixpkgs' DHCP catch-alls stay (they sort after ours: networkd takes the first match).
    assert {"99-ethernet-default-dhcp", "10-restored-eth-up"} <= set(own["networks"])


HOSTILE = ['a"b', "a\\b", "${builtins.abort 1}", "x\ny", "tab\there", "$${x}", "'' ${", "\\${"]


@pytest.mark.real
@pytest.mark.parametrize("text", HOSTILE)
def test_strings_reach_nix_as_they_are(text: str, tmp_path: Path) -> None:
    """Nothing in a value ends the string or is interpolated."""
    path = tmp_path / "s.nix"
    path.write_text(nixos_network.nix_string(text))
    assert nix_eval(f"import {path}") == text


def test_a_unit_with_a_section_nixos_has_no_option_for_is_a_bug_said_plainly() -> None:
    unit = Unit("10-restored-x.network", "x", (("Bogus", [("A", "b")]),))
    with pytest.raises(nixos_network.UnknownSectionError, match=r"\[Bogus\]"):
        nixos_network.module([unit], "here")


def test_comments_stay_on_their_line() -> None:
    unit = Unit("10-restored-x.network", "x\n{ evil", (("Match", [("Name", "x")]),))
    text = nixos_network.module([unit], "host\nname")
    assert "\n{ evil" not in text
    assert "host name" in text


def restore(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from nixos_images.restore_network import main; main()", *argv],
        capture_output=True,
        text=True,
        check=False,
    )


def test_emit_nixos_prints_the_module_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "units"
    result = restore("--emit-nixos", "--state", str(recorded.SOURCE.root), str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# The network of the system kexec/run came from")
    assert 'systemd.network.networks."10-restored-eth-up" = lib.mkDefault {' in result.stdout
    assert not target.exists()


def test_the_installer_writes_the_module_beside_the_units(tmp_path: Path) -> None:
    """What the boot writes for the user to fetch is what --emit-nixos prints, and a second
    boot's run replaces it whole."""
    target, module = tmp_path / "units", tmp_path / "run/nixos-images/network.nix"
    state = ("--state", str(recorded.SOURCE.root))
    module.parent.mkdir(parents=True)
    module.write_text("stale")
    result = restore(*state, "--nixos-module", str(module), str(target))
    assert result.returncode == 0, result.stderr
    assert module.read_text() == restore(*state, "--emit-nixos").stdout
    assert [p.name for p in module.parent.iterdir()] == ["network.nix"]
    assert (target / "10-restored-eth-up.network").is_file()


@pytest.mark.real
def test_a_bond_hash_policy_networkd_does_not_know_is_left_to_the_kernel(tmp_path: Path) -> None:
    """The kernel's vlan+srcmac is neither systemd's nor nixpkgs': written, the installed
    system would not build. It is left out (the kernel's layer2), and the module evaluates."""
    state = StateDir(tmp_path / "state")
    shutil.copytree(recorded.BOND_VLAN.root, state.root)
    links = state.network / "links.json"
    links.write_text(links.read_text().replace('"layer3+4"', '"vlan+srcmac"'))
    units = generate(state)
    bond = next(u for u in units if u.name == "10-restored-bond0.netdev")
    assert "TransmitHashPolicy" not in bond.text
    assert "Mode=802.3ad" in bond.text
    path = tmp_path / "network.nix"
    path.write_text(nixos_network.module(units, "a bond"))
    assert evaluate(path, "{ networking.useNetworkd = true; }")["failedAssertions"] == []
