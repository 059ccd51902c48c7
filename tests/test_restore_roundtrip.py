"""Round trip against real systemd-networkd: save a host, restore it elsewhere, compare.

The source host (tests/scenario.py) is configured with `ip` and real DHCP/SLAAC clients and
dumped as the launcher dumps it, its stand-in NICs disguised as hardware. restore-network
turns the dump into units, and Debian's systemd-networkd applies them in a fresh namespace
whose NICs have the same MACs under other names. Addresses, routes in every restored table,
policy rules, `ip route get` answers (with and without a source), the reachable DNS servers
and search domains, and every NIC's DHCP lease must come back; Docker's and libvirt's
bridges, the tunnel and its rule must not; every link must be online without --any.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

import netlab
import scenario
from conftest import require
from nixos_images.restore_network import generate, write_units
from nixos_images.state import StateDir

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.real

PROBES = [
    "8.8.8.8",  # default via an on-link gateway outside any subnet
    "198.51.100.7",  # IPv4 via an IPv6 link-local gateway
    "10.20.1.1",  # metric and MTU
    "192.0.2.77",  # connected subnet
    "10.55.0.9",  # the bridge's subnet
    "10.99.1.1",  # blackhole
    "10.98.1.1",  # unreachable
    "2001:db8:99::1",  # IPv6 static route
    "2001:db8:2::77",  # connected IPv6
    "2001:db8:dead::1",  # IPv6 blackhole
    "8.8.8.8 from 192.0.2.10",  # source-based routing: out through the other uplink
    "2001:db8:77::1 from 2001:db8:1::10",
]
# Keys that networkd 252 does not know yet but NixOS's systemd does; anything else networkd
# says about our files fails the test.
NEWER_THAN_252 = ("RequestAddress",)


def _devkeys(ns: netlab.Netns) -> dict[str, str]:
    """Interface name -> a name-independent key: MAC plus kind ('nic' for the stand-in NICs,
    which the restored host has under other names)."""
    macs = set(scenario.NICS.values())
    keys = {}
    for link in json.loads(ns.ip("-d", "-j", "link", "show")):
        kind = link.get("linkinfo", {}).get("info_kind", "none")
        if kind == "veth" and link.get("address") in macs:
            kind = "nic"
        keys[link["ifname"]] = f"{link.get('address')}/{kind}"
    return keys


def _addresses(ns: netlab.Netns) -> set[tuple[str, str]]:
    keys = _devkeys(ns)
    return {
        (keys[item["ifname"]], f"{a['local']}/{a['prefixlen']}")
        for item in json.loads(ns.ip("-j", "addr", "show"))
        for a in item.get("addr_info", [])
        if a.get("scope") == "global" and not a.get("dynamic")
    }


def _routes(ns: netlab.Netns, ra_keys: set[str]) -> set[tuple[object, ...]]:
    """Routes made by hand (no protocol) or by networkd's [Route] (static), one per nexthop, in
    the main table and source routing's; ra_keys: the NICs that take router advertisements."""
    keys = _devkeys(ns)
    out: set[tuple[object, ...]] = set()
    for family in ("-4", "-6"):
        for table in ("main", str(scenario.UPLINK_TABLE)):
            for route in json.loads(ns.ip(family, "-j", "route", "show", "table", table)):
                out |= _hops(route, keys, ra_keys, (family, table))
    return out


def _hops(
    route: dict[str, Any], keys: dict[str, str], ra_keys: set[str], where: tuple[str, str]
) -> set[tuple[object, ...]]:
    # A multipath route merges a hand-made hop with router advertisements' (the kernel gives
    # it the protocol of whichever came first): its hops are told apart by their NIC.
    multipath = bool(route.get("nexthops"))
    if not multipath and route.get("protocol") not in (None, "static"):
        return set()
    family, table = where
    out: set[tuple[object, ...]] = set()
    for hop in route.get("nexthops") or [route]:
        name = hop.get("dev", "lo")
        dev = keys.get(name)
        if multipath and dev in ra_keys:
            continue  # merged in by router advertisements
        if name != "lo" and dev is not None and dev.split("/")[1] not in ("nic", "bridge"):
            continue  # the tunnel's, which is not restored
        gateway = hop.get("gateway") or hop.get("via", {}).get("host")
        mtu = next((m["mtu"] for m in route.get("metrics", []) if "mtu" in m), None)
        out.add(
            (family, table, route.get("type", "unicast"), route["dst"], gateway,
             None if hop.get("dev", "lo") == "lo" else dev, route.get("metric", 0),
             "onlink" in hop.get("flags", []), mtu)
        )  # fmt: skip
    return out


def _route_get(ns: netlab.Netns) -> dict[str, object]:
    keys = _devkeys(ns)
    answers: dict[str, object] = {}
    for dst in PROBES:
        try:
            (answer,) = json.loads(ns.ip("-j", "route", "get", *dst.split()))
        except RuntimeError as e:
            answers[dst] = f"error: {str(e).rsplit(':', 1)[-1].strip()}"
            continue
        answers[dst] = (
            answer.get("type", "unicast"),
            keys.get(answer.get("dev", "")),
            answer.get("gateway") or answer.get("via", {}).get("host"),
            answer.get("prefsrc"),
        )
    return answers


def _dynamic_v4(ns: netlab.Netns, key: str) -> list[str]:
    names = [name for name, k in _devkeys(ns).items() if k == key]
    data = json.loads(ns.ip("-4", "-j", "addr", "show", "dev", names[0]))
    return [a["local"] for item in data for a in item.get("addr_info", []) if a.get("dynamic")]


def _leases(ns: netlab.Netns, keys: set[str], timeout: float = 10) -> dict[str, list[str]]:
    """Each DHCP NIC's leased IPv4 address, once all have one (online needs only SLAAC)."""
    deadline = time.monotonic() + timeout
    while True:
        leases = {key: _dynamic_v4(ns, key) for key in keys}
        if all(leases.values()) or time.monotonic() > deadline:
            return leases
        time.sleep(0.2)


def _families_after(ns: netlab.Netns, interface: str, want: set[str], timeout: float) -> set[str]:
    """The families of interface's dynamic addresses once they are want (or when time is up);
    then a little longer, so that a DHCPv4 lease that would come has had its chance."""
    deadline = time.monotonic() + timeout
    while scenario.dynamic_families(ns, interface) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    return scenario.dynamic_families(ns, interface)


def _rules(ns: netlab.Netns) -> set[tuple[object, ...]]:
    """Policy rules but the kernel's own: (family, priority, selector, table)."""
    out: set[tuple[object, ...]] = set()
    for family in ("-4", "-6"):
        for rule in json.loads(ns.ip(family, "-j", "rule", "show")):
            if rule.get("table") in ("local", "main", "default") and rule.get("src") == "all":
                continue
            out.add((family, rule["priority"], rule.get("src"), rule.get("table")))
    return out


def _link_names(ns: netlab.Netns) -> set[str]:
    return {link["ifname"] for link in json.loads(ns.ip("-j", "link", "show"))}


@dataclass
class Seen:
    """What a host's network looks like, by name-independent keys."""

    addresses: set[tuple[str, str]]
    routes: set[tuple[object, ...]]
    rules: set[tuple[object, ...]]
    answers: dict[str, object]
    leases: dict[str, list[str]]
    links: set[str]


def _seen(ns: netlab.Netns, dhcp_keys: set[str]) -> Seen:
    ra_keys = dhcp_keys | {f"{scenario.NICS[scenario.V6RA_NIC]}/nic"}
    return Seen(
        _addresses(ns),
        _routes(ns, ra_keys),
        _rules(ns),
        _route_get(ns),
        _leases(ns, dhcp_keys),
        _link_names(ns),
    )


def _source_had_what_we_test(want: Seen, v6ra: set[str]) -> set[tuple[str, str]]:
    """The source really had what the round trip claims to test; returns the addresses that
    must stay behind."""
    left_behind = {a for a in want.addresses if a[0].split("/")[1] not in ("nic", "bridge")}
    left_behind |= {a for a in want.addresses if a[1] in ("172.17.0.1/16", "192.168.122.1/24")}
    assert {a[1] for a in left_behind} == {"172.17.0.1/16", "192.168.122.1/24", "100.64.0.5/32"}
    assert set(scenario.LEFT_BEHIND) <= want.links
    assert any(r[7] for r in want.routes), "no onlink route in the source"
    assert any(r[2] == "blackhole" for r in want.routes)
    assert any(r[1] == str(scenario.UPLINK_TABLE) for r in want.routes)
    assert want.answers["10.99.1.1"] != want.answers["8.8.8.8"]
    assert want.answers["8.8.8.8 from 192.0.2.10"] != want.answers["8.8.8.8"]
    assert ("-4", 5270, "all", "52") in want.rules
    assert all(len(lease) == 1 for lease in want.leases.values())
    v6ra_key = f"{scenario.NICS[scenario.V6RA_NIC]}/nic"
    assert (v6ra_key, scenario.V6RA_ADDRESS) in want.addresses
    assert v6ra == {"inet6"}  # static IPv4 beside SLAAC IPv6, on the DHCP network
    return left_behind


def test_round_trip_through_networkd(tmp_path: Path) -> None:
    require(netlab.missing_tools(), "the networkd round trip")
    started = time.monotonic()
    state = StateDir(tmp_path / "state")
    dhcp_keys = {f"{scenario.NICS[nic]}/nic" for nic in scenario.DHCP_NICS}
    with scenario.lab(tmp_path) as lab:
        with scenario.source_host(lab) as source:
            scenario.dump(source, state, tmp_path)
            want = _seen(source.ns, dhcp_keys)
            v6ra_source = scenario.dynamic_families(source.ns, scenario.V6RA_NIC)

        units = tmp_path / "units"
        write_units(generate(state), units)
        with netlab.namespaces("restored") as (restored,):
            lab.plug(restored, scenario.RENAMED)
            with netlab.networkd(restored, units, tmp_path / "networkd.log") as nd:
                began = time.monotonic()
                online = nd.wait_online(timeout=20)
                online_after = time.monotonic() - began
                log = nd.log()
                assert online, f"networkd did not configure every link in time:\n{log[-3000:]}"
                got = _seen(restored, dhcp_keys)
                states = {nic: nd.link_state(nic) for nic in scenario.RENAMED.values()}
                ens3 = nd.link_file("ens3")
                v6ra = scenario.RENAMED[scenario.V6RA_NIC]
                v6ra_restored = _families_after(restored, v6ra, want={"inet6"}, timeout=10)

    left_behind = _source_had_what_we_test(want, v6ra_source)
    v6ra_key = f"{scenario.NICS[scenario.V6RA_NIC]}/nic"
    assert got.addresses == want.addresses - left_behind
    assert got.routes == want.routes
    assert got.rules == want.rules - {("-4", 5270, "all", "52")}
    assert got.answers == want.answers
    assert got.leases == want.leases
    # Each family as it was: IPv6 from router advertisements again, and no DHCPv4 client,
    # though the server on that network would have leased it a second address.
    assert (v6ra_key, scenario.V6RA_ADDRESS) in got.addresses
    assert v6ra_restored == {"inet6"}
    assert not set(scenario.LEFT_BEHIND) & got.links
    assert set(states.values()) == {"configured"}, states
    assert online_after < 10
    assert f"DNS={' '.join(scenario.REACHABLE_DNS)}" in ens3
    assert f"DOMAINS={' '.join(scenario.SEARCH)}" in ens3

    complaints = [
        line
        for line in log.splitlines()
        if re.search(r"/run/systemd/network/\S+:\d+: ", line)
        and not any(f"'{key}'" in line for key in NEWER_THAN_252)
    ]
    assert complaints == []
    print(f"round trip took {time.monotonic() - started:.1f} s")  # noqa: T201
