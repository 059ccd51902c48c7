"""Round trip against real systemd-networkd: save a host, restore it elsewhere, compare.

The source host (tests/scenario.py) is configured with `ip` and a real DHCP/SLAAC client and
dumped as the launcher dumps it. restore-network turns the dump into units, and Debian's
systemd-networkd applies them in a fresh namespace whose NICs have the same MACs under other
names. Addresses, routes, `ip route get` answers, DNS and the DHCP lease must come back.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

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
]
# Keys that networkd 252 does not know yet but NixOS's systemd does; anything else networkd
# says about our files fails the test.
NEWER_THAN_252 = ("RequestAddress",)


def _devkeys(ns: netlab.Netns) -> dict[str, str]:
    """Interface name -> a name-independent key: MAC plus kind (veth NICs count as 'nic')."""
    keys = {}
    for link in json.loads(ns.ip("-d", "-j", "link", "show")):
        kind = link.get("linkinfo", {}).get("info_kind", "nic")
        keys[link["ifname"]] = f"{link.get('address')}/{'nic' if kind == 'veth' else kind}"
    return keys


def _addresses(ns: netlab.Netns) -> set[tuple[str, str]]:
    keys = _devkeys(ns)
    return {
        (keys[item["ifname"]], f"{a['local']}/{a['prefixlen']}")
        for item in json.loads(ns.ip("-j", "addr", "show"))
        for a in item.get("addr_info", [])
        if a.get("scope") == "global" and not a.get("dynamic")
    }


def _routes(ns: netlab.Netns, dhcp_key: str) -> set[tuple[object, ...]]:
    """Routes made by hand (no protocol) or by networkd's [Route] (static), one per nexthop."""
    keys = _devkeys(ns)
    out: set[tuple[object, ...]] = set()
    for family in ("-4", "-6"):
        for route in json.loads(ns.ip(family, "-j", "route", "show")):
            if route.get("protocol") not in (None, "static"):
                continue
            for hop in route.get("nexthops") or [route]:
                dev = keys.get(hop.get("dev", "lo"))
                if route.get("nexthops") and dev == dhcp_key:
                    continue  # merged in by router advertisements
                gateway = hop.get("gateway") or hop.get("via", {}).get("host")
                mtu = next((m["mtu"] for m in route.get("metrics", []) if "mtu" in m), None)
                out.add(
                    (
                        family,
                        route.get("type", "unicast"),
                        route["dst"],
                        gateway,
                        None if hop.get("dev", "lo") == "lo" else dev,
                        route.get("metric", 0),
                        "onlink" in hop.get("flags", []),
                        mtu,
                    )
                )
    return out


def _route_get(ns: netlab.Netns) -> dict[str, object]:
    keys = _devkeys(ns)
    answers: dict[str, object] = {}
    for dst in PROBES:
        try:
            (answer,) = json.loads(ns.ip("-j", "route", "get", dst))
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
    return [a["local"] for a in data[0]["addr_info"] if a.get("dynamic")]


def test_round_trip_through_networkd(tmp_path: Path) -> None:
    require(netlab.missing_tools(), "the networkd round trip")
    started = time.monotonic()
    state = StateDir(tmp_path / "state")
    dhcp_key = f"{scenario.NICS['eth-dhcp']}/nic"
    with scenario.lab(tmp_path) as lab:
        with scenario.source_host(lab) as source:
            scenario.dump(source, state, tmp_path)
            want_addresses = _addresses(source)
            want_routes = _routes(source, dhcp_key)
            want_answers = _route_get(source)
            lease = _dynamic_v4(source, dhcp_key)

        units = tmp_path / "units"
        write_units(generate(state), units)
        with netlab.namespaces("restored") as (restored,):
            lab.plug(restored, scenario.RENAMED)
            with netlab.networkd(restored, units, tmp_path / "networkd.log") as nd:
                online = nd.wait_online(timeout=20)
                log = nd.log()
                assert online, f"networkd did not configure every link in time:\n{log[-3000:]}"
                got_addresses = _addresses(restored)
                got_routes = _routes(restored, dhcp_key)
                got_answers = _route_get(restored)
                got_lease = _dynamic_v4(restored, dhcp_key)
                ens3_state = nd.link_state("ens3")
                ens3_dns = nd.link_file("ens3")

    # The source really had what we claim to test.
    assert len(want_addresses) == 6
    assert any(r[6] for r in want_routes), "no onlink route in the source"
    assert any(r[1] == "blackhole" for r in want_routes)
    assert want_answers["10.99.1.1"] != want_answers["8.8.8.8"]

    assert got_addresses == want_addresses
    assert got_routes == want_routes
    assert got_answers == want_answers
    assert got_lease == lease
    assert ens3_state == "configured"
    assert "DNS=192.0.2.53 2001:db8::53" in ens3_dns

    complaints = [
        line
        for line in log.splitlines()
        if re.search(r"/run/systemd/network/\S+:\d+: ", line)
        and not any(f"'{key}'" in line for key in NEWER_THAN_252)
    ]
    assert complaints == []
    print(f"round trip took {time.monotonic() - started:.1f} s")  # noqa: T201
