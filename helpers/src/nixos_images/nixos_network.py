"""The restored network as a NixOS module, for the system installed after the installer.

The same units restore-network writes for the installer (networkd.plan), as nixpkgs'
`systemd.network` options: each section becomes the option nixpkgs renders back into that
section, each unit a `lib.mkDefault` (a network or netdev of the same name in the user's
configuration replaces it whole). The module needs systemd-networkd and says so in an
assertion instead of turning it on over NetworkManager or scripted networking. nixpkgs' own
DHCP catch-all networks (`99-*`, with useDHCP) do not fight these: networkd applies the first
.network file, in lexical order, that matches a link, and these are `10-*`.

Pure: units in, Nix text out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from nixos_images.networkd_units import Section, Unit

# nixos/modules/system/boot/networkd.nix: the option of each section we write, for .network
# and .netdev units; sections that may repeat are lists of attribute sets.
NETWORK_SECTIONS = {
    "Match": "matchConfig",
    "Link": "linkConfig",
    "Network": "networkConfig",
    "DHCPv4": "dhcpV4Config",
}
NETWORK_LISTS = {
    "Address": "addresses",
    "Route": "routes",
    "RoutingPolicyRule": "routingPolicyRules",
}
NETDEV_SECTIONS = {
    "NetDev": "netdevConfig",
    "Bond": "bondConfig",
    "Bridge": "bridgeConfig",
    "VLAN": "vlanConfig",
}
# Keys whose value nixpkgs checks as a Nix integer (assertInt, assertRange, assertMinimum in
# networkd.nix's checks): written as numbers, everything else as strings.
INTEGER_KEYS = frozenset(
    {
        ("Route", "Metric"),
        ("RoutingPolicyRule", "Priority"),
        ("DHCPv4", "IAID"),
        ("Bond", "MinLinks"),
        ("VLAN", "Id"),
    }
)
# What the module needs: networkd running, and nothing else configuring the same links
# (NetworkManager; dhcpcd, which scripted networking runs with useDHCP).
ASSERTION = (
    "config.systemd.network.enable && !config.networking.networkmanager.enable"
    " && (config.networking.useNetworkd || !config.networking.useDHCP)"
)
ASSERTION_MESSAGE = (
    "nixos-images' restored network is systemd-networkd configuration: set"
    " networking.useNetworkd = true (or systemd.network.enable = true with"
    " networking.useDHCP = false), with NetworkManager off; or remove the module and"
    " configure the network yourself."
)


class UnknownSectionError(ValueError):
    """A unit section this module has no NixOS option for: a bug, never the host's input."""


def nix_string(text: str) -> str:
    """Text as a Nix string literal: nothing in it is interpolated or ends it."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("${", "\\${")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _comment(text: str) -> str:
    """Text on one comment line: control characters are spaces."""
    return "".join(c if c.isprintable() else " " for c in text)


def _value(title: str, key: str, value: str) -> str:
    if (title, key) in INTEGER_KEYS and value.isascii() and value.isdigit():
        return str(int(value))
    return nix_string(value)


def _attrs(title: str, entries: Sequence[tuple[str, str]], indent: str) -> list[str]:
    """A section's entries as Nix attributes: a key given more than once is a list, in order
    (nixpkgs writes a list as one line per element)."""
    values: dict[str, list[str]] = {}
    for key, value in entries:
        values.setdefault(key, []).append(_value(title, key, value))
    lines = []
    for key, items in values.items():
        if len(items) == 1:
            lines.append(f"{indent}{key} = {items[0]};")
        else:
            lines.append(f"{indent}{key} = [")
            lines.extend(f"{indent}  {item}" for item in items)
            lines.append(f"{indent}];")
    return lines


def _unit_body(sections: Iterable[Section], singles: dict[str, str], indent: str) -> list[str]:
    lists: dict[str, list[list[tuple[str, str]]]] = {}  # by section title
    lines: list[str] = []
    for title, entries in sections:
        if not entries:
            continue  # render() leaves empty sections out too
        if title in singles:
            lines.append(f"{indent}{singles[title]} = {{")
            lines.extend(_attrs(title, entries, indent + "  "))
            lines.append(f"{indent}}};")
        elif title in NETWORK_LISTS and singles is NETWORK_SECTIONS:
            lists.setdefault(title, []).append(entries)
        else:
            raise UnknownSectionError(f"no NixOS option for a [{title}] section")
    for title, items in lists.items():
        lines.append(f"{indent}{NETWORK_LISTS[title]} = [")
        for entries in items:
            lines.append(f"{indent}  {{")
            lines.extend(_attrs(title, entries, indent + "    "))
            lines.append(f"{indent}  }}")
        lines.append(f"{indent}];")
    return lines


def module(units: Sequence[Unit], origin: str) -> str:
    """A NixOS module that configures units (restore-network's) on the installed system.

    origin says where the network was read (a line in the module's header comment).
    """
    header = [
        f"# The network of {_comment(origin)}, as nixos-images' restore-network",
        "# restored it: import this module into the installed system's configuration.",
        "# Each network and netdev is a default: one of the same name in your configuration",
        "# replaces it. It needs systemd-networkd and nothing else on those links.",
        "{ config, lib, ... }:",
        "{",
        "  assertions = [",
        "    {",
        f"      assertion = {ASSERTION};",
        f"      message = {nix_string(ASSERTION_MESSAGE)};",
        "    }",
        "  ];",
    ]
    body: list[str] = []
    for unit in units:
        stem, _, suffix = unit.name.rpartition(".")
        if suffix == "network":
            option, singles = "networks", NETWORK_SECTIONS
        elif suffix == "netdev":
            option, singles = "netdevs", NETDEV_SECTIONS
        else:
            raise UnknownSectionError(f"{unit.name}: not a .network or .netdev unit")
        body.append(f"  # {_comment(unit.comment)}")
        body.append(f"  systemd.network.{option}.{nix_string(stem)} = lib.mkDefault {{")
        body.extend(_unit_body(unit.sections, singles, "    "))
        body.append("  };")
    return "\n".join([*header, *body, "}", ""])
