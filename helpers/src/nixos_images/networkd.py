"""Turn a saved network state into systemd-networkd units: pure functions, no I/O.

What comes back, and how each unit finds its link, is docs/network.md's list (the one place
those rules are stated): NICs are hardware, matched by MAC; bonds, bridges and VLANs only over
kept NICs; static global addresses; DHCP and RA where addresses were dynamic; hand-made routes;
policy rules for restored tables; reachable DNS servers; the old DHCP identity. This module
picks what comes back (select) and assembles the plan; networkd_units writes the sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nixos_images import routing
from nixos_images.iproute import MAIN_TABLE, TABLES
from nixos_images.networkd_units import (
    PORT_MASTER_KINDS,
    RECREATED_KINDS,
    UNIT_PREFIX,
    Section,
    Unit,
    address_section,
    dhcpv4_section,
    link_section,
    match,
    netdev,
    network_section,
    route_section,
    rule_section,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from collections.abc import Set as AbstractSet

    from nixos_images.iproute import IPAddress, Link, Route
    from nixos_images.iprule import Rule
    from nixos_images.state import NetworkState


def is_nic(link: Link, links: Sequence[Link]) -> bool:
    """Hardware: an Ethernet MAC, no linkinfo kind, enslaved to nothing but a bond or bridge."""
    if link.mac is None or link.link_type != "ether" or link.kind is not None:
        return False
    if link.master is None:
        return True
    master = next((m for m in links if m.name == link.master), None)
    return master is not None and master.kind in PORT_MASTER_KINDS


def kept_links(links: Sequence[Link]) -> list[Link]:
    """NICs, plus bonds/bridges with a kept member and VLANs on a kept parent (to a fixed point)."""
    kept = {link.name for link in links if is_nic(link, links)}
    changed = True
    while changed:
        changed = False
        for link in links:
            if link.name in kept or link.kind not in RECREATED_KINDS or link.mac is None:
                continue
            if link.kind == "vlan":
                keep = link.parent in kept
            else:
                keep = any(m.master == link.name and m.name in kept for m in links)
            if keep:
                kept.add(link.name)
                changed = True
    return [link for link in links if link.name in kept]


@dataclass(frozen=True)
class Selection:
    """What of the old network comes back, worked out once for the units and the report."""

    kept: tuple[Link, ...]  # kept_links(), in the dump's order
    kept_names: frozenset[str]
    recreated: frozenset[str]  # bonds, bridges and VLANs made again with .netdev units
    routes: tuple[Route, ...]  # routing.restored_routes()
    rules: tuple[Rule, ...]  # routing.restored_rules()
    dns: tuple[IPAddress, ...]  # the servers the restored network reaches


def select(state: NetworkState) -> Selection:
    """The links, routes, rules and DNS servers that come back (docs/network.md's rules)."""
    kept = kept_links(state.links)
    names = frozenset(link.name for link in kept)
    recreated = frozenset(link.name for link in kept if link.kind in RECREATED_KINDS)
    routes = routing.restored_routes(state, names)
    rules = routing.restored_rules(state.rules, {r.table for r in routes}, recreated)
    dns = [s for s in state.dns if routing.reachable(s, state, names)]
    return Selection(tuple(kept), names, recreated, tuple(routes), tuple(rules), tuple(dns))


@dataclass(frozen=True)
class NetworkPlan:
    """The units that bring the saved network back, in the order they are written, and what
    the old host had that they do not bring back (lines for kexec/run's report)."""

    units: tuple[Unit, ...]
    left_behind: tuple[str, ...]


def plan(state: NetworkState) -> NetworkPlan:
    """The plan for a saved network state."""
    chosen = select(state)
    return NetworkPlan(tuple(_units(state, chosen)), tuple(_left_behind(state, chosen)))


def _units(state: NetworkState, chosen: Selection) -> list[Unit]:
    links = state.links
    kept, kept_names = chosen.kept, chosen.kept_names
    by_name = {link.name: link for link in links}
    units: list[Unit] = []
    restored = chosen.routes
    # Blackhole, unreachable, ... routes have no device, or "lo" (IPv6): they go with the
    # first configured link.
    deviceless = [r for r in restored if r.device not in kept_names]
    rules = list(chosen.rules)
    dns = chosen.dns
    for link in kept:
        own = [a for a in state.addresses if a.interface == link.name]
        static = [a for a in own if not a.dynamic and a.scope not in ("link", "host")]
        link_routes = [r for r in restored if r.device == link.name and r.type == "unicast"]
        master = by_name.get(link.master or "")
        enslaved = master if master is not None and master.name in kept_names else None
        vlans = [v.name for v in kept if v.kind == "vlan" and v.parent == link.name]
        configured = bool(static or link_routes or any(a.dynamic for a in own))
        if not (configured or enslaved or vlans or link.kind in RECREATED_KINDS):
            continue  # nothing to restore: the installer's defaults apply
        if configured and deviceless:
            link_routes += deviceless
            deviceless = []
        # A rule goes with the first configured link that carries its table's routes.
        tables = {MAIN_TABLE} | {r.table for r in link_routes} if configured else set()
        link_rules = [rule for rule in rules if rule.table in tables]
        rules = [rule for rule in rules if rule not in link_rules]
        ra_routes = any(r.protocol == "ra" and r.device == link.name for r in state.routes)
        network = network_section(own, enslaved, vlans, ra_routes=ra_routes)
        if configured:
            network += [("DNS", str(server)) for server in dns]
            if state.domains:
                network.append(("Domains", " ".join(state.domains)))
        sections: list[Section] = [
            ("Match", match(link, links, state.drivers)),
            ("Link", link_section(link, own)),
            ("Network", network),
            *(address_section(a) for a in static),
            *(route_section(r) for r in link_routes),
            *(rule_section(r) for r in link_rules),
            ("DHCPv4", dhcpv4_section(link, own, state.dhcp)),
        ]
        if link.kind in RECREATED_KINDS:
            units.append(netdev(link))
        units.append(
            Unit(
                f"{UNIT_PREFIX}{link.name}.network",
                f"{link.name} (ifindex {link.index}) restored by restore-network",
                tuple(sections),
            )
        )
    return units + _unmanaged_twins(links, kept_names, state.drivers)


def _unmanaged_twins(
    links: Sequence[Link], kept: AbstractSet[str], drivers: Mapping[str, str]
) -> list[Unit]:
    """An Azure VF: kind-less, enslaved to a kept NIC whose MAC it shares. The kernel's
    netvsc driver runs it under that NIC; networkd must leave it alone (else the installer's
    catch-all DHCP unit would take it). Matched by its driver, or by not being the NIC's."""
    units: list[Unit] = []
    for link in links:
        master = next((m for m in links if m.name == link.master), None)
        if (
            master is None
            or master.name not in kept
            or master.kind is not None
            or link.kind is not None
            or link.mac is None
            or link.mac != master.mac
        ):
            continue
        own, nic = drivers.get(link.name), drivers.get(master.name)
        if own is None and nic is None:
            continue  # nothing tells the two apart: better no unit than one that takes the NIC
        driver = own if own is not None else f"!{nic}"
        sections: list[Section] = [
            ("Match", [("MACAddress", link.mac), ("Driver", driver)]),
            ("Link", [("Unmanaged", "yes")]),
        ]
        units.append(
            Unit(
                f"{UNIT_PREFIX}{link.name}.network",
                f"{link.name}: runs under {master.name}, left to the kernel",
                tuple(sections),
            )
        )
    return units


def _left_behind(state: NetworkState, chosen: Selection) -> list[str]:
    """What the old host had that the installer will not: links with addresses that are not
    restored, DNS servers it cannot reach, policy rules it leaves out."""
    kept = chosen.kept_names
    notes = []
    for link in state.links:
        addresses = [
            str(a.address)
            for a in state.addresses
            if a.interface == link.name and a.scope not in ("link", "host")
        ]
        if link.name not in kept and addresses and link.link_type != "loopback":
            what = link.kind or "not a NIC"
            notes.append(f"network: {link.name} ({what}, {' '.join(addresses)}) is not restored")
    notes += [
        f"network: DNS server {server} is left out: the installer cannot reach it"
        for server in state.dns
        if server not in chosen.dns
    ]
    for rule in state.rules:
        default = rule.source is None and rule.destination is None
        if (
            rule in chosen.rules
            or rule.table == TABLES["local"]
            or (default and (rule.priority, rule.table) in routing.DEFAULT_RULES)
        ):
            continue
        notes.append(f"network: policy rule {rule.priority} (table {rule.table}) is left out")
    return notes
