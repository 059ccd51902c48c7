"""systemd-networkd's unit files, written from the values they restore: a [Match] that finds
the NIC again, [Address], [Route] and [RoutingPolicyRule] sections, a .netdev for what is
made again, the DHCP client's identity. Pure functions; networkd.py decides what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nixos_images import dhcp
from nixos_images.iproute import MAIN_TABLE, WORD

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from nixos_images.iproute import Address, IPAddress, Link, Route
    from nixos_images.iprule import Rule

# Virtual kinds that may carry a NIC's MAC; a NIC's unit must not match them.
SHARED_MAC_KINDS = ("bond", "bridge", "vlan", "macvlan", "macvtap", "ipvlan", "ipvtap", "team")
PORT_MASTER_KINDS = ("bond", "bridge")
RECREATED_KINDS = ("bond", "bridge", "vlan")
DEFAULT_MTU = 1500
# The bond hash policies systemd's [Bond] TransmitHashPolicy= and nixpkgs' check know; the
# kernel has more (vlan+srcmac): those are left to the kernel's default (layer2), which still
# carries the traffic, instead of a unit networkd ignores and NixOS refuses to build.
TRANSMIT_HASH_POLICIES = frozenset({"layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4"})
UNIT_PREFIX = "10-restored-"


Section = tuple[str, list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class Unit:
    """One file to write: its name (no directory), a comment and its sections, in order."""

    name: str
    comment: str
    sections: tuple[Section, ...]

    @property
    def text(self) -> str:
        """The file's text, as networkd reads it."""
        return render(self.comment, self.sections)


def render(comment: str, sections: Iterable[Section]) -> str:
    """An INI text in networkd's format; empty sections are left out."""
    out = [f"# {comment}\n"]
    for title, entries in sections:
        if entries:
            out.append(f"\n[{title}]\n")
            out.extend(f"{key}={value}\n" for key, value in entries)
    return "".join(out)


def route_section(route: Route) -> Section:
    """[Route]: where to, through which gateway, in which table, with its attributes."""
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


def address_section(address: Address) -> Section:
    """[Address]: the address, its peer, its lifetimes and flags."""
    entries = [("Address", str(address.address))]
    if address.peer is not None:
        entries.append(("Peer", str(address.peer)))
    if address.no_prefix_route:
        entries.append(("AddPrefixRoute", "no"))
    return ("Address", entries)


def previous_lease(addresses: Sequence[Address]) -> IPAddress | None:
    """The dynamic IPv4 address with the longest remaining lifetime."""
    leases = [a for a in addresses if a.dynamic and a.address.version == 4]  # noqa: PLR2004
    if not leases:
        return None
    best = max(leases, key=lambda a: a.valid_lifetime if a.valid_lifetime is not None else -1)
    return best.address.ip


def match(link: Link, links: Sequence[Link], drivers: Mapping[str, str]) -> list[tuple[str, str]]:
    """[Match]: the NIC by its MAC (and not what shares it), a recreated device by name."""
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
    return text if isinstance(value, int | str) and WORD.fullmatch(text) else None


def _known(value: object, known: frozenset[str]) -> str | None:
    word = _word(value)
    return word if word in known else None


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
            ("TransmitHashPolicy", _known(data.get("xmit_hash_policy"), TRANSMIT_HASH_POLICIES)),
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
        f"{link.name}: {link.kind} recreated by restore-network",
        tuple(sections),
    )


DUID_TYPES = {1: "link-layer-time", 2: "vendor", 3: "link-layer", 4: "uuid"}


def rule_section(rule: Rule) -> Section:
    """[RoutingPolicyRule]: priority, table, selectors."""
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


def network_section(
    own: Sequence[Address], master: Link | None, vlans: Sequence[str], *, ra_routes: bool
) -> list[tuple[str, str]]:
    """[Network] but for DNS: port of, VLANs on, DHCP and RA, link-local, mDNS.

    Each address family as it was configured: a DHCPv4 client only where IPv4 came from
    DHCP (else a server that hands out another address adds it beside the static one), router
    advertisements (and DHCPv6, when they ask for it) only where IPv6 was dynamic or routes
    came from them (ra_routes: a static address with an RA-learned default route).
    """
    network: list[tuple[str, str]] = []
    if master is not None:
        network.append(("Bond" if master.kind == "bond" else "Bridge", master.name))
    network += [("VLAN", name) for name in vlans]
    dhcp4 = any(a.dynamic and a.address.version == 4 for a in own)  # noqa: PLR2004
    ra = ra_routes or any(a.dynamic and a.address.version == 6 for a in own)  # noqa: PLR2004
    network += [("DHCP", "ipv4" if dhcp4 else "no"), ("IPv6AcceptRA", "yes" if ra else "no")]
    if master is not None:
        network.append(("LinkLocalAddressing", "no"))
    else:
        # resolved answers mDNS (<hostname>.local) only on links where it is on.
        network.append(("MulticastDNS", "yes"))
    return network


def link_section(link: Link, own: Sequence[Address]) -> list[tuple[str, str]]:
    """[Link]: the MTU when it is not the default; not required for online when idle."""
    entries = [("MTUBytes", str(link.mtu))] if link.mtu and link.mtu != DEFAULT_MTU else []
    if link.kind in RECREATED_KINDS and not any(
        a.dynamic or a.scope not in ("link", "host") for a in own
    ):
        # A bridge or bond that only carries VLANs or ports: nothing to wait for on it.
        entries.append(("RequiredForOnline", "no"))
    return entries


def dhcpv4_section(
    link: Link, own: Sequence[Address], clients: Sequence[dhcp.DhcpClient]
) -> list[tuple[str, str]]:
    """[DHCPv4]: the old lease's address asked for again, and the client's identity."""
    lease = previous_lease(own)
    entries = [("RequestAddress", str(lease))] if lease else []
    if any(a.dynamic for a in own):
        entries += dhcp_identity(link, clients)
    return entries
