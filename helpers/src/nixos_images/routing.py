"""Which routes and policy rules come back, and where a packet from the old host went: pure
functions over the saved network state (networkd.py's rules, docs/network.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nixos_images.iproute import MAIN_TABLE, TABLES
from nixos_images.iprule import Rule

if TYPE_CHECKING:
    from collections.abc import Sequence
    from collections.abc import Set as AbstractSet

    from nixos_images.iproute import IPAddress, Route
    from nixos_images.state import NetworkState

KEPT_PROTOCOLS = (None, "boot", "static")
KEPT_ROUTE_TYPES = ("unicast", "blackhole", "unreachable", "prohibit", "throw")
# The kernel's own rules: (priority, table), from all. They exist in the installer already.
DEFAULT_RULES = {(0, TABLES["local"]), (32766, MAIN_TABLE), (32767, TABLES["default"])}


def is_restored(route: Route) -> bool:
    """Made by hand or static, of a type that comes back, in any table but local."""
    return (
        route.protocol in KEPT_PROTOCOLS
        and route.type in KEPT_ROUTE_TYPES
        and route.table != TABLES["local"]
    )


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


def restored_routes(state: NetworkState, kept: AbstractSet[str]) -> list[Route]:
    """The routes that come back: made by hand or static, in any table but local, on kept
    links or without one (blackhole, unreachable, ...); not a nexthop that router
    advertisements merged into a multipath route (RA brings it back)."""
    slaac = {a.interface for a in state.addresses if a.dynamic and a.address.version == 6}  # noqa: PLR2004
    return [
        r
        for r in state.routes
        if is_restored(r)
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


def restored_rules(
    rules: Sequence[Rule], tables: set[int], recreated: AbstractSet[str]
) -> list[Rule]:
    """The policy rules that come back (docs/network.md, "Policy routing")."""
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


def reachable(server: IPAddress, state: NetworkState, kept: AbstractSet[str]) -> bool:
    """Whether the restored network reaches a DNS server: not this host, not link-local (its
    scope is lost), and routed through a kept link on the old host."""
    if server.is_loopback or server.is_unspecified or server.is_link_local:
        return False
    route = route_lookup(server, state.rules, state.routes)
    return route is not None and route.device in kept
