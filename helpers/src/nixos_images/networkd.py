"""Turn a saved network state into systemd-networkd units: pure functions, no I/O.

Rules (docs/network.md has the user's view):
- NICs are hardware: an Ethernet MAC, no `linkinfo` kind (veth, tap, tun, dummy are
  software), and enslaved to nothing but a bond or a bridge (an Azure VF, enslaved to its
  hv_netvsc NIC, is not one). They are matched by MAC, the permanent one when known.
  `Kind=!...` keeps such a unit off bridges, bonds, VLANs and macvlans that share the MAC
  (`MACAddress=` alone matches them too, networkd 252); `Driver=` off another link with the
  same MAC and no kind (the VF).
- Bonds, bridges and VLANs are recreated with .netdev files when a kept NIC is (under) them:
  docker0 or virbr0, whose ports are all virtual, are not. One without a restored address is
  not required for online.
- Static global addresses come back; link-local ones never (the kernel makes them).
- A link that had dynamic addresses gets DHCP and router advertisements and asks for its
  longest-lived IPv4 lease again. A link with only static configuration turns DHCP and RA off
  so that networkd marks it "configured" without waiting for either.
- Routes made by `ip route add` (protocol boot) or marked static come back, in their table;
  routes the kernel, DHCP or RA made are left for those to make again.
- Policy rules come back when their table gets restored routes (or is main), and they have
  no selector the installer cannot honour (fwmark, uidrange, ...: VPNs' rules) and no
  interface but lo or a recreated device; never the kernel's default rules or table local.
- DNS servers come back when the restored network reaches them (not loopback, not through a
  link or table that is not restored), with the search domains.
- A DHCP link presents the identity that got the old lease (dhcp.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nixos_images import dhcp
from nixos_images.iproute import MAIN_TABLE, TABLES, Rule

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from nixos_images.iproute import Address, IPAddress, Link, Route
    from nixos_images.state import NetworkState

# Virtual kinds that may carry a NIC's MAC; a NIC's unit must not match them.
SHARED_MAC_KINDS = ("bond", "bridge", "vlan", "macvlan", "macvtap", "ipvlan", "ipvtap", "team")
PORT_MASTER_KINDS = ("bond", "bridge")
RECREATED_KINDS = ("bond", "bridge", "vlan")
KEPT_PROTOCOLS = (None, "boot", "static")
KEPT_ROUTE_TYPES = ("unicast", "blackhole", "unreachable", "prohibit", "throw")
DEFAULT_MTU = 1500
UNIT_PREFIX = "10-restored-"

_WORD = re.compile(r"[A-Za-z0-9_.+-]{1,64}")


@dataclass(frozen=True, slots=True)
class Unit:
    """One file to write: its name (no directory) and its text."""

    name: str
    text: str


Section = tuple[str, list[tuple[str, str]]]


def render(comment: str, sections: Iterable[Section]) -> str:
    """An INI text in networkd's format; empty sections are left out."""
    out = [f"# {comment}\n"]
    for title, entries in sections:
        if entries:
            out.append(f"\n[{title}]\n")
            out.extend(f"{key}={value}\n" for key, value in entries)
    return "".join(out)


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


def _route_is_restored(route: Route) -> bool:
    return (
        route.protocol in KEPT_PROTOCOLS
        and route.type in KEPT_ROUTE_TYPES
        and route.table != TABLES["local"]
    )


def _route_section(route: Route) -> Section:
    entries = [("Destination", str(route.destination))]
    if route.table != MAIN_TABLE:
        entries.append(("Table", str(route.table)))
    if route.type != "unicast":
        entries.append(("Type", route.type))
    if route.gateway is not None:
        entries.append(("Gateway", str(route.gateway)))
    if route.onlink:
        entries.append(("GatewayOnLink", "yes"))
    if route.metric is not None:
        entries.append(("Metric", str(route.metric)))
    if route.scope in ("link", "host"):
        entries.append(("Scope", route.scope))
    if route.source is not None:
        entries.append(("PreferredSource", str(route.source)))
    if route.mtu is not None:
        entries.append(("MTUBytes", str(route.mtu)))
    return ("Route", entries)


def _address_section(address: Address) -> Section:
    entries = [("Address", str(address.address))]
    if address.peer is not None:
        entries.append(("Peer", str(address.peer)))
    if address.no_prefix_route:
        entries.append(("AddPrefixRoute", "no"))
    return ("Address", entries)


def _previous_lease(addresses: Sequence[Address]) -> IPAddress | None:
    """The dynamic IPv4 address with the longest remaining lifetime."""
    leases = [a for a in addresses if a.dynamic and a.address.version == 4]  # noqa: PLR2004
    if not leases:
        return None
    best = max(leases, key=lambda a: a.valid_lifetime if a.valid_lifetime is not None else -1)
    return best.address.ip


def _match(link: Link, links: Sequence[Link], drivers: Mapping[str, str]) -> list[tuple[str, str]]:
    if link.kind in RECREATED_KINDS:
        return [("Name", link.name)]
    mac_key = "PermanentMACAddress" if link.permanent_mac else "MACAddress"
    entries = [
        (mac_key, link.permanent_mac or link.mac or ""),
        ("Kind", "!" + " ".join(SHARED_MAC_KINDS)),
    ]
    # Another link without a kind and the same MAC (Azure's VF beside its hv_netvsc NIC)
    # would match too: the driver tells them apart.
    twins = [
        other
        for other in links
        if other.name != link.name
        and other.kind is None
        and link.mac in (other.mac, other.permanent_mac)
    ]
    own = drivers.get(link.name)
    theirs = sorted({drivers[t.name] for t in twins if t.name in drivers} - {own})
    if twins and own:
        entries.append(("Driver", own))
    elif twins and theirs:
        entries.append(("Driver", "!" + " ".join(theirs)))
    return entries


def _word(value: object) -> str | None:
    """A netdev setting from a dump, if it is a plain word or number (else it is left out)."""
    if isinstance(value, bool):
        return None
    text = str(value)
    return text if isinstance(value, int | str) and _WORD.fullmatch(text) else None


def _ms(value: object) -> str | None:
    word = _word(value)
    return f"{word}ms" if word is not None and word.isdigit() else None


def netdev(link: Link) -> Unit:
    """The .netdev that recreates a bond, bridge or VLAN."""
    data = link.kind_data
    entries: list[tuple[str, str | None]]
    if link.kind == "bond":
        title = "Bond"
        entries = [
            ("Mode", _word(data.get("mode"))),
            ("TransmitHashPolicy", _word(data.get("xmit_hash_policy"))),
            ("LACPTransmitRate", _word(data.get("ad_lacp_rate"))),
            ("AdSelect", _word(data.get("ad_select"))),
            ("MIIMonitorSec", _ms(data.get("miimon"))),
            ("UpDelaySec", _ms(data.get("updelay"))),
            ("DownDelaySec", _ms(data.get("downdelay"))),
            ("MinLinks", _word(data.get("min_links"))),
        ]
    elif link.kind == "bridge":
        title = "Bridge"
        stp = data.get("stp_state")
        filtering = data.get("vlan_filtering")
        entries = [
            ("STP", None if stp is None else ("yes" if stp else "no")),
            ("VLANFiltering", None if filtering is None else ("yes" if filtering else "no")),
        ]
    else:
        title = "VLAN"
        protocol = _word(data.get("protocol"))
        entries = [
            ("Id", _word(data.get("id"))),
            ("Protocol", protocol.lower() if protocol and protocol != "802.1Q" else None),
        ]
    sections: list[Section] = [
        (
            "NetDev",
            [("Name", link.name), ("Kind", link.kind or ""), ("MACAddress", link.mac or "")],
        ),
        (title, [(k, v) for k, v in entries if v is not None]),
    ]
    return Unit(
        f"{UNIT_PREFIX}{link.name}.netdev",
        render(f"{link.name}: {link.kind} recreated by restore-network", sections),
    )


# The kernel's own rules: (priority, table), from all. They exist in the installer already.
DEFAULT_RULES = {(0, TABLES["local"]), (32766, MAIN_TABLE), (32767, TABLES["default"])}
DUID_TYPES = {1: "link-layer-time", 2: "vendor", 3: "link-layer", 4: "uuid"}


def route_lookup(
    destination: IPAddress, rules: Sequence[Rule], routes: Sequence[Route]
) -> Route | None:
    """The route a packet from this host (no mark, no bound socket) to destination takes, as
    the kernel picks it: rules by priority, then the longest prefix and lowest metric."""
    own = [r for r in rules if r.family == destination.version]
    # No rules in the dump (an old one): the kernel's own.
    ordered = sorted(own, key=lambda r: r.priority) or _kernel_rules(destination.version)
    for rule in ordered:
        if not _applies(rule, destination):
            continue
        if rule.action != "to_tbl":
            return None  # blackhole, unreachable, prohibit
        candidates = [
            r
            for r in routes
            if r.table == rule.table
            and r.family == destination.version
            and destination in r.destination
            and r.type not in ("local", "broadcast", "multicast", "anycast")
        ]
        if not candidates:
            continue
        best = max(candidates, key=lambda r: (r.destination.prefixlen, -(r.metric or 0)))
        if best.type == "throw":
            continue  # the kernel goes on with the next rule
        return best if best.type == "unicast" else None
    return None


def restored_routes(state: NetworkState, kept: set[str]) -> list[Route]:
    """The routes that come back: made by hand or static, in any table but local, on kept
    links or without one (blackhole, unreachable, ...); not a nexthop that router
    advertisements merged into a multipath route (RA brings it back)."""
    slaac = {a.interface for a in state.addresses if a.dynamic and a.address.version == 6}  # noqa: PLR2004
    return [
        r
        for r in state.routes
        if _route_is_restored(r)
        and (r.device in kept or r.type != "unicast")
        and not (r.multipath and r.device in slaac)
    ]


def _kernel_rules(family: int) -> list[Rule]:
    return [
        Rule(family, priority, None, None, table, invert=False, incoming=None, outgoing=None,
             action="to_tbl")
        for priority, table in sorted(DEFAULT_RULES)
    ]  # fmt: skip


def _applies(rule: Rule, destination: IPAddress) -> bool:
    """Whether a rule matches a packet this host sends to destination: no source address yet,
    from lo, no bound interface, no mark. `not` inverts the whole match, as in the kernel."""
    if set(rule.others) - {"fwmark", "fwmask"}:
        return False  # uidrange, ports, ...: not this packet, as far as can be told
    matches = (
        rule.source is None
        and rule.incoming in (None, "lo")
        and rule.outgoing is None
        and (rule.destination is None or destination in rule.destination)
        and "fwmark" not in rule.others
    )
    return matches != rule.invert


def _restored_rules(rules: Sequence[Rule], tables: set[int], recreated: set[str]) -> list[Rule]:
    """The policy rules that come back (the module docstring's rules)."""
    out = []
    for rule in rules:
        default = (
            rule.source is None
            and rule.destination is None
            and (rule.priority, rule.table) in DEFAULT_RULES
        )
        interfaces = {rule.incoming, rule.outgoing} - {None, "lo"}
        if (
            default
            or rule.action != "to_tbl"
            or rule.table == TABLES["local"]
            or rule.others
            or not interfaces <= recreated
            or (rule.table != MAIN_TABLE and rule.table not in tables)
        ):
            continue
        out.append(rule)
    return out


def _rule_section(rule: Rule) -> Section:
    entries = [("Priority", str(rule.priority)), ("Table", str(rule.table))]
    if rule.source is not None:
        entries.append(("From", str(rule.source)))
    if rule.destination is not None:
        entries.append(("To", str(rule.destination)))
    if rule.source is None and rule.destination is None:
        entries.append(("Family", "ipv4" if rule.family == 4 else "ipv6"))  # noqa: PLR2004
    if rule.invert:
        entries.append(("InvertRule", "yes"))
    if rule.incoming:
        entries.append(("IncomingInterface", rule.incoming))
    if rule.outgoing:
        entries.append(("OutgoingInterface", rule.outgoing))
    return ("RoutingPolicyRule", entries)


def dhcp_identity(link: Link, clients: Sequence[dhcp.DhcpClient]) -> list[tuple[str, str]]:
    """[DHCPv4] settings that present the identity the old host's lease is keyed on.

    None sent, or 01:MAC: ClientIdentifier=mac (the server keyed the lease on the MAC). An
    RFC 4361 IAID + DUID from another client than networkd: that IAID and DUID. networkd's
    own, or anything unknown: networkd's default (a DUID from the carried machine-id).
    """
    client = next((c for c in clients if c.interface == link.name), None)
    if client is None:
        return []
    ethernet = bytes([dhcp.ETHERNET_CLIENT_ID]) + bytes.fromhex((link.mac or "").replace(":", ""))
    if client.client_id is None or client.client_id == ethernet:
        return [("ClientIdentifier", "mac")]
    duid = client.duid()
    if duid is None or client.source == dhcp.Source.NETWORKD or duid[1] not in DUID_TYPES:
        return []
    iaid, duid_type, data = duid
    return [
        ("ClientIdentifier", "duid"),
        ("IAID", str(iaid)),
        ("DUIDType", DUID_TYPES[duid_type]),
        ("DUIDRawData", ":".join(f"{b:02x}" for b in data)),
    ]


def plan(state: NetworkState) -> list[Unit]:
    """All units that bring back the saved network, in the order they are written."""
    links = state.links
    kept = kept_links(links)
    kept_names = {link.name for link in kept}
    recreated = {link.name for link in kept if link.kind in RECREATED_KINDS}
    by_name = {link.name: link for link in links}
    units: list[Unit] = []
    restored = restored_routes(state, kept_names)
    # Blackhole, unreachable, ... routes have no device, or "lo" (IPv6): they go with the
    # first configured link.
    deviceless = [r for r in restored if r.device not in kept_names]
    rules = _restored_rules(state.rules, {r.table for r in restored}, recreated)
    dns = [s for s in state.dns if _reachable(s, state, kept_names)]
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
        network = _network_section(own, enslaved, vlans)
        if configured:
            network += [("DNS", str(server)) for server in dns]
            if state.domains:
                network.append(("Domains", " ".join(state.domains)))
        sections: list[Section] = [
            ("Match", _match(link, links, state.drivers)),
            ("Link", _link_section(link, own)),
            ("Network", network),
            *(_address_section(a) for a in static),
            *(_route_section(r) for r in link_routes),
            *(_rule_section(r) for r in link_rules),
            ("DHCPv4", _dhcpv4_section(link, own, state.dhcp)),
        ]
        if link.kind in RECREATED_KINDS:
            units.append(netdev(link))
        units.append(
            Unit(
                f"{UNIT_PREFIX}{link.name}.network",
                render(f"{link.name} (ifindex {link.index}) restored by restore-network", sections),
            )
        )
    return units + _unmanaged_twins(links, kept_names, state.drivers)


def _unmanaged_twins(
    links: Sequence[Link], kept: set[str], drivers: Mapping[str, str]
) -> list[Unit]:
    """An Azure VF: kind-less, enslaved to a kept NIC whose MAC it shares. The kernel's
    netvsc driver runs it under that NIC; networkd must leave it alone (else the installer's
    catch-all DHCP unit would take it). Matched by its driver, or by not being the NIC's."""
    units = []
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
                render(f"{link.name}: runs under {master.name}, left to the kernel", sections),
            )
        )
    return units


def _network_section(
    own: Sequence[Address], master: Link | None, vlans: Sequence[str]
) -> list[tuple[str, str]]:
    """[Network] but for DNS: port of, VLANs on, DHCP and RA, link-local, mDNS."""
    network: list[tuple[str, str]] = []
    if master is not None:
        network.append(("Bond" if master.kind == "bond" else "Bridge", master.name))
    network += [("VLAN", name) for name in vlans]
    dynamic = "yes" if any(a.dynamic for a in own) else "no"
    network += [("DHCP", dynamic), ("IPv6AcceptRA", dynamic)]
    if master is not None:
        network.append(("LinkLocalAddressing", "no"))
    else:
        # resolved answers mDNS (<hostname>.local) only on links where it is on.
        network.append(("MulticastDNS", "yes"))
    return network


def _link_section(link: Link, own: Sequence[Address]) -> list[tuple[str, str]]:
    entries = [("MTUBytes", str(link.mtu))] if link.mtu and link.mtu != DEFAULT_MTU else []
    if link.kind in RECREATED_KINDS and not any(
        a.dynamic or a.scope not in ("link", "host") for a in own
    ):
        # A bridge or bond that only carries VLANs or ports: nothing to wait for on it.
        entries.append(("RequiredForOnline", "no"))
    return entries


def _dhcpv4_section(
    link: Link, own: Sequence[Address], clients: Sequence[dhcp.DhcpClient]
) -> list[tuple[str, str]]:
    lease = _previous_lease(own)
    entries = [("RequestAddress", str(lease))] if lease else []
    if any(a.dynamic for a in own):
        entries += dhcp_identity(link, clients)
    return entries


def _reachable(server: IPAddress, state: NetworkState, kept: set[str]) -> bool:
    """Whether the restored network reaches a DNS server: not this host, not link-local (its
    scope is lost), and routed through a kept link on the old host."""
    if server.is_loopback or server.is_unspecified or server.is_link_local:
        return False
    route = route_lookup(server, state.rules, state.routes)
    return route is not None and route.device in kept


def left_behind(state: NetworkState) -> list[str]:
    """What the old host had that the installer will not: links with addresses that are not
    restored, DNS servers it cannot reach, policy rules it leaves out. For the report."""
    kept_list = kept_links(state.links)
    kept = {link.name for link in kept_list}
    recreated = {link.name for link in kept_list if link.kind in RECREATED_KINDS}
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
        if not _reachable(server, state, kept)
    ]
    restored = restored_routes(state, kept)
    rules = _restored_rules(state.rules, {r.table for r in restored}, recreated)
    for rule in state.rules:
        default = rule.source is None and rule.destination is None
        if (
            rule in rules
            or rule.table == TABLES["local"]
            or (default and (rule.priority, rule.table) in DEFAULT_RULES)
        ):
            continue
        notes.append(f"network: policy rule {rule.priority} (table {rule.table}) is left out")
    return notes
