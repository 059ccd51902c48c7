"""Turn a saved network state into systemd-networkd units: pure functions, no I/O.

Rules (README "restore-network" has the user's view):
- NICs (links with an Ethernet MAC and no virtual kind; veth counts as a NIC) are matched by
  MAC, the permanent one when known. `Kind=!...` keeps such a unit off bridges, bonds, VLANs
  and macvlans that share the MAC: `MACAddress=` alone matches them too (networkd 252).
- Bonds, bridges and VLANs are recreated with .netdev files when they sit on kept links.
- Static global addresses come back; link-local ones never (the kernel makes them).
- A link that had dynamic addresses gets DHCP and router advertisements and asks for its
  longest-lived IPv4 lease again. A link with only static configuration turns DHCP and RA off
  so that networkd marks it "configured" without waiting for either.
- Routes made by `ip route add` (no protocol field) or marked static come back; routes the
  kernel, DHCP or RA made are left for those to make again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from nixos_images.iproute import Address, IPAddress, Link, Route

# Virtual kinds that may carry a NIC's MAC; a NIC's unit must not match them.
SHARED_MAC_KINDS = ("bond", "bridge", "vlan", "macvlan", "macvtap", "ipvlan", "ipvtap", "team")
NIC_KINDS = (None, "veth")
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


def _is_nic(link: Link) -> bool:
    return link.mac is not None and link.link_type == "ether" and link.kind in NIC_KINDS


def kept_links(links: Sequence[Link]) -> list[Link]:
    """NICs, plus bonds/bridges with a kept member and VLANs on a kept parent (to a fixed point)."""
    kept = {link.name for link in links if _is_nic(link)}
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
        and route.table in (None, "main")
    )


def _route_section(route: Route) -> Section:
    entries = [("Destination", str(route.destination))]
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


def _match(link: Link) -> list[tuple[str, str]]:
    if link.kind in RECREATED_KINDS:
        return [("Name", link.name)]
    mac_key = "PermanentMACAddress" if link.permanent_mac else "MACAddress"
    return [
        (mac_key, link.permanent_mac or link.mac or ""),
        ("Kind", "!" + " ".join(SHARED_MAC_KINDS)),
    ]


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


def plan(
    links: Sequence[Link],
    addresses: Sequence[Address],
    routes: Sequence[Route],
    dns: Sequence[IPAddress],
) -> list[Unit]:
    """All units that bring back the saved network, in the order they are written."""
    kept = kept_links(links)
    kept_names = {link.name for link in kept}
    by_name = {link.name: link for link in links}
    units: list[Unit] = []
    restored = [r for r in routes if _route_is_restored(r)]
    # Blackhole, unreachable, ... routes have no device, or "lo" (IPv6): they go with the
    # first configured link.
    deviceless = [r for r in restored if r.type != "unicast" and r.device not in kept_names]
    # A nexthop that router advertisements merged into a multipath route: RA brings it back.
    slaac = {a.interface for a in addresses if a.dynamic and a.address.version == 6}  # noqa: PLR2004
    restored = [r for r in restored if not (r.multipath and r.device in slaac)]
    for link in kept:
        own = [a for a in addresses if a.interface == link.name]
        static = [a for a in own if not a.dynamic and a.scope not in ("link", "host")]
        dynamic = any(a.dynamic for a in own)
        link_routes = [r for r in restored if r.device == link.name and r.type == "unicast"]
        master = by_name.get(link.master or "")
        vlans = [v.name for v in kept if v.kind == "vlan" and v.parent == link.name]
        enslaved = master is not None and master.name in kept_names
        configured = bool(static or dynamic or link_routes)
        if not (configured or enslaved or vlans or link.kind in RECREATED_KINDS):
            continue  # nothing to restore: the installer's defaults apply
        if configured and deviceless:
            link_routes += deviceless
            deviceless = []
        network: list[tuple[str, str]] = []
        if enslaved and master is not None:
            network.append(("Bond" if master.kind == "bond" else "Bridge", master.name))
        network += [("VLAN", name) for name in vlans]
        if dynamic:
            network += [("DHCP", "yes"), ("IPv6AcceptRA", "yes")]
        else:
            network += [("DHCP", "no"), ("IPv6AcceptRA", "no")]
        if enslaved:
            network.append(("LinkLocalAddressing", "no"))
        else:
            # resolved answers mDNS (<hostname>.local) only on links where it is on.
            network.append(("MulticastDNS", "yes"))
        if configured:
            network += [("DNS", str(server)) for server in dns]
        lease = _previous_lease(own)
        link_section = [("MTUBytes", str(link.mtu))] if link.mtu and link.mtu != DEFAULT_MTU else []
        sections: list[Section] = [
            ("Match", _match(link)),
            ("Link", link_section),
            ("Network", network),
            *(_address_section(a) for a in static),
            *(_route_section(r) for r in link_routes),
            ("DHCPv4", [("RequestAddress", str(lease))] if lease else []),
        ]
        if link.kind in RECREATED_KINDS:
            units.append(netdev(link))
        units.append(
            Unit(
                f"{UNIT_PREFIX}{link.name}.network",
                render(f"{link.name} (ifindex {link.index}) restored by restore-network", sections),
            )
        )
    return units
