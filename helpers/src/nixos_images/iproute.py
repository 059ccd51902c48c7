"""Typed, validated views of iproute2's `--json` output.

Every value that later ends up in a systemd unit is checked here (addresses parsed, names and
MAC addresses matched against strict patterns), so that a hostile or corrupt dump can never
inject text into a unit. Any problem raises InputError naming the file and the item.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from nixos_images.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Mapping

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
# Kernel interface names: at most 15 bytes, no whitespace, no "/" or ":".
_IFNAME = re.compile(r"[A-Za-z0-9_.@+-]{1,15}")
# A name ip prints for a kind, a driver, a protocol: nothing that could break a unit file.
WORD = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_NO_MAC = "00:00:00:00:00:00"

# `ip -N` prints numbers (rtnetlink.h, kernel ABI) where it would print names; the names
# restore-network reasons with. Numbers not listed stay numbers.
ROUTE_TYPES = {
    "1": "unicast",
    "2": "local",
    "3": "broadcast",
    "4": "anycast",
    "5": "multicast",
    "6": "blackhole",
    "7": "unreachable",
    "8": "prohibit",
    "9": "throw",
    "10": "nat",
}
PROTOCOLS = {
    "0": "unspec",
    "1": "redirect",
    "2": "kernel",
    "3": "boot",
    "4": "static",
    "9": "ra",
    "16": "dhcp",
}
SCOPES = {"0": "global", "200": "site", "253": "link", "254": "host", "255": "nowhere"}
TABLES = {"default": 253, "main": 254, "local": 255}
MAIN_TABLE = 254


class Item:
    """One JSON object of a dump, with typed getters whose errors name file and item (iprule.py
    reads rules through it too)."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise InputError(where, "expected a JSON object")
        self.raw: dict[str, object] = raw
        self.where = where

    def error(self, problem: str) -> InputError:
        """An InputError naming this item."""
        return InputError(self.where, problem)

    def opt(self, key: str, kind: type, what: str) -> object:
        """The value at key, of kind (what names it in the error), or None."""
        value = self.raw.get(key)
        # bool is an int in Python; never accept one for the other.
        if value is not None and (
            not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)
        ):
            raise self.error(f"{key!r} must be {what}")
        return value

    def opt_str(self, key: str) -> str | None:
        """A string, or None."""
        value = self.opt(key, str, "a string")
        assert value is None or isinstance(value, str)  # noqa: S101 - narrowed by opt()
        return value

    def opt_int(self, key: str) -> int | None:
        """An integer (never a bool), or None."""
        value = self.opt(key, int, "an integer")
        assert value is None or isinstance(value, int)  # noqa: S101
        return value

    def flag(self, key: str) -> bool:
        """Whether key is true."""
        return self.opt(key, bool, "true or false") is True

    def str_(self, key: str) -> str:
        """A string that must be there."""
        value = self.opt_str(key)
        if value is None:
            raise self.error(f"{key!r} is missing")
        return value

    def list_(self, key: str) -> list[object]:
        """A list, empty when missing."""
        value = self.opt(key, list, "a list")
        assert value is None or isinstance(value, list)  # noqa: S101
        return value or []

    def obj(self, key: str) -> Item | None:
        """A nested object, or None."""
        value = self.raw.get(key)
        return None if value is None else Item(value, f"{self.where}: {key}")

    def word(self, key: str, names: Mapping[str, str] | None = None) -> str | None:
        """A plain word; a number `ip -N` printed becomes its name where names has one."""
        value = self.opt_str(key)
        if value is not None and not WORD.fullmatch(value):
            raise self.error(f"{key!r} has an unexpected value {value!r}")
        return (names or {}).get(value, value) if value is not None else None

    def table(self, key: str = "table") -> int:
        """A routing table as its number (254, main, when there is none)."""
        value = self.raw.get(key)
        if value is None:
            return MAIN_TABLE
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, str) and value in TABLES:
            return TABLES[value]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 1 << 32:
            raise self.error(f"{key!r} is not a table number: {value!r} (dumps use `ip -N`)")
        return value

    def ifname(self, key: str) -> str | None:
        """An interface name a unit can hold (InterfaceNameError otherwise), or None."""
        value = self.opt_str(key)
        if value is not None and not _IFNAME.fullmatch(value):
            raise InterfaceNameError(self.where, f"{key!r} is not an interface name: {value!r}")
        return value

    def mac(self, key: str) -> str | None:
        """An Ethernet MAC in lower case; None for none or another kind of address."""
        value = self.opt_str(key)
        if value is None or value == _NO_MAC:
            return None
        if not _MAC.fullmatch(value.lower()):
            return None  # not Ethernet (e.g. an IPoIB or tunnel address): no MAC to match
        return value.lower()

    def ip(self, key: str) -> IPAddress | None:
        """An IP address (a %zone dropped), or None."""
        value = self.opt_str(key)
        if value is None:
            return None
        try:
            return ipaddress.ip_address(value.split("%", 1)[0])
        except ValueError:
            raise self.error(f"{key!r} is not an IP address: {value!r}") from None


class InterfaceNameError(InputError):
    """A name no unit can safely hold (eth[0], a control character): that link, its addresses
    and routes are left out, the rest of the network is still restored."""


def decode(text: bytes, where: str) -> list[object]:
    """A dump's bytes as the JSON list `ip --json` prints; anything else is InputError."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InputError(where, f"invalid JSON: {e}") from None
    if not isinstance(data, list):
        raise InputError(where, "expected a JSON list, as `ip --json` prints")
    return data


@dataclass(frozen=True, slots=True)
class Link:
    """One entry of `ip --json -details link`."""

    index: int
    name: str
    link_type: str
    mac: str | None
    permanent_mac: str | None
    mtu: int | None
    kind: str | None  # linkinfo.info_kind: bond, bridge, vlan, veth, macvlan, ...
    kind_data: dict[str, object] = field(default_factory=dict)
    master: str | None = None
    parent: str | None = None  # the "link" field: a VLAN's parent, a veth's peer


@dataclass(frozen=True, slots=True)
class Address:
    """One addr_info entry of `ip --json addr`."""

    interface: str
    address: IPInterface
    peer: IPAddress | None
    scope: str
    dynamic: bool
    valid_lifetime: int | None
    no_prefix_route: bool


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of `ip --json route`."""

    family: int
    type: str
    destination: IPNetwork  # 0.0.0.0/0 or ::/0 for default
    gateway: IPAddress | None
    device: str | None
    protocol: str | None
    scope: str | None
    metric: int | None
    onlink: bool
    mtu: int | None
    source: IPAddress | None
    table: int  # 254 (main) unless the route is in another one
    multipath: bool = False  # one nexthop of a multipath route


def links_from(data: list[object], where: str) -> list[Link]:
    """Parse what `ip --json -details link` prints."""
    links = []
    for n, raw in enumerate(data):
        with contextlib.suppress(InterfaceNameError):
            links.append(_link(Item(raw, f"{where}: item {n}")))
    return links


def _link(item: Item) -> Link:
    info = item.obj("linkinfo")
    kind_data: dict[str, object] = {}
    kind = None
    if info is not None:
        kind = info.word("info_kind")
        data = info.obj("info_data")
        kind_data = data.raw if data is not None else {}
        slave = info.obj("info_slave_data")
        perm = slave.mac("perm_hwaddr") if slave is not None else None
    else:
        perm = None
    index = item.opt_int("ifindex")
    name = item.ifname("ifname")
    if index is None or name is None:
        raise item.error("'ifindex' and 'ifname' are required")
    return Link(
        index=index,
        name=name,
        link_type=item.word("link_type") or "none",
        mac=item.mac("address"),
        permanent_mac=item.mac("permaddr") or perm,
        mtu=item.opt_int("mtu"),
        kind=kind,
        kind_data=kind_data,
        master=item.ifname("master"),
        parent=item.ifname("link"),
    )


def addresses_from(data: list[object], where: str) -> list[Address]:
    """Parse the list that `ip --json addr` prints; `where` names it in errors."""
    out = []
    for n, raw in enumerate(data):
        with contextlib.suppress(InterfaceNameError):
            out += _addresses(Item(raw, f"{where}: item {n}"))
    return out


def _addresses(item: Item) -> list[Address]:
    out = []
    name = item.ifname("ifname")
    if name is None:
        raise item.error("'ifname' is required")
    for m, info_raw in enumerate(item.list_("addr_info")):
        info = Item(info_raw, f"{item.where}: addr_info {m}")
        local = info.ip("local")
        prefix = info.opt_int("prefixlen")
        if local is None or prefix is None:
            raise info.error("'local' and 'prefixlen' are required")
        try:
            address = ipaddress.ip_interface(f"{local}/{prefix}")
        except ValueError:
            raise info.error(f"invalid prefix length {prefix}") from None
        peer = info.ip("address")
        out.append(
            Address(
                interface=name,
                address=address,
                peer=peer if peer != local else None,
                scope=info.word("scope") or "global",
                dynamic=info.flag("dynamic"),
                valid_lifetime=info.opt_int("valid_life_time"),
                no_prefix_route=info.flag("noprefixroute"),
            )
        )
    return out


def _destination(item: Item, family: int) -> IPNetwork:
    dst = item.str_("dst")
    if dst == "default":
        return ipaddress.ip_network("0.0.0.0/0" if family == 4 else "::/0")  # noqa: PLR2004
    try:
        net = ipaddress.ip_network(dst, strict=True)
    except ValueError:
        raise item.error(f"'dst' is not a network: {dst!r}") from None
    if net.version != family:
        raise item.error(f"'dst' {dst} is not IPv{family}")
    return net


def _route_mtu(item: Item) -> int | None:
    for m, raw in enumerate(item.list_("metrics")):
        metric = Item(raw, f"{item.where}: metrics {m}")
        mtu = metric.raw.get("mtu")
        if isinstance(mtu, dict):  # locked: {"value": 1400, "lock": true}
            mtu = mtu.get("value")
        if mtu is not None:
            if not isinstance(mtu, int) or isinstance(mtu, bool):
                raise metric.error("'mtu' must be an integer")
            return mtu
    return None


def routes_from(data: list[object], family: int, where: str) -> list[Route]:
    """Parse `ip [-N] --json route [show table all]`; a multipath route yields one Route per
    nexthop.

    The kernel merges IPv6 routes of equal metric into one multipath route, also a static
    route with one that router advertisements made, so nexthops are kept apart here.
    """
    out = []
    for n, raw in enumerate(data):
        with contextlib.suppress(InterfaceNameError):
            out += _routes(Item(raw, f"{where}: item {n}"), family)
    return out


def _routes(item: Item, family: int) -> list[Route]:
    route = Route(
        family=family,
        type=item.word("type", ROUTE_TYPES) or "unicast",
        destination=_destination(item, family),
        gateway=_gateway(item),
        device=item.ifname("dev"),
        protocol=item.word("protocol", PROTOCOLS),
        scope=item.word("scope", SCOPES),
        metric=item.opt_int("metric"),
        onlink="onlink" in item.list_("flags"),
        mtu=_route_mtu(item),
        source=item.ip("prefsrc"),
        table=item.table(),
    )
    hops = [Item(h, f"{item.where}: nexthop {m}") for m, h in enumerate(item.list_("nexthops"))]
    return [
        replace(
            route,
            gateway=_gateway(hop),
            device=hop.ifname("dev"),
            onlink="onlink" in hop.list_("flags"),
            multipath=True,
        )
        for hop in hops
    ] or [route]


def _gateway(item: Item) -> IPAddress | None:
    via = item.obj("via")  # an IPv4 route via an IPv6 gateway: {"family": "inet6", "host": ...}
    return via.ip("host") if via is not None else item.ip("gateway")
