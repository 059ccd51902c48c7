"""The networkd units planned from a saved network (nixos_images.networkd, networkd_units): what
comes back, matched how, and what is said to stay behind.
"""

from __future__ import annotations

import json
import re
import shutil
from typing import TYPE_CHECKING

import pytest

from conftest import FIXTURES
from nixos_images import networkd
from nixos_images.restore_network import generate
from nixos_images.state import StateDir, read_network_dir
from recorded import BOND_VLAN, SOURCE, dhcp_state

if TYPE_CHECKING:
    from pathlib import Path


# Written by hand after an Azure VM with accelerated networking and Docker: a Mellanox VF with
# the hv_netvsc NIC's MAC, enslaved to it; docker0 with a container's veth.
AZURE = StateDir(FIXTURES / "azure")


def units_of(state: StateDir) -> dict[str, str]:
    return {unit.name: unit.text for unit in generate(state)}


def sections(text: str, title: str) -> list[dict[str, list[str]]]:
    """The [title] sections of a unit, each as key -> values."""
    out = []
    for block in re.split(r"\n(?=\[)", text):
        if block.startswith(f"[{title}]"):
            entries: dict[str, list[str]] = {}
            for line in block.splitlines()[1:]:
                if "=" in line:
                    key, value = line.split("=", 1)
                    entries.setdefault(key, []).append(value)
            out.append(entries)
    return out


def values(text: str, title: str, key: str) -> list[str]:
    return [v for s in sections(text, title) for v in s.get(key, [])]


def recorded(name: str) -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads((SOURCE.network / name).read_text())
    return data


def test_one_unit_per_configured_nic_matched_by_mac_and_not_by_virtual_links() -> None:
    """docker0 (a container's veth), virbr0 (a tap) and the tunnel are not restored."""
    units = units_of(SOURCE)
    assert set(units) == {
        "10-restored-vmbr0.netdev",
        "10-restored-vmbr0.network",
        "10-restored-eth-static.network",
        "10-restored-eth-up.network",
        "10-restored-eth-dhcp.network",
        "10-restored-eth-br.network",
        "10-restored-eth-mac.network",
        "10-restored-eth-noid.network",
    }
    infos = {link["ifname"]: link.get("linkinfo") for link in recorded("links.json")}
    kinds = {name: info.get("info_kind") for name, info in infos.items() if isinstance(info, dict)}
    assert {kinds[n] for n in ("vethc0ffee", "vnet0", "ts0", "docker0")} == {
        "veth",
        "tun",
        "bridge",
    }
    static = units["10-restored-eth-static.network"]
    assert values(static, "Match", "MACAddress") == ["02:00:00:00:01:01"]
    (kind,) = values(static, "Match", "Kind")
    assert kind.startswith("!")
    assert {"bridge", "bond", "vlan", "macvlan"} <= set(kind[1:].split())
    assert values(units["10-restored-vmbr0.network"], "Match", "Name") == ["vmbr0"]


def test_static_addresses_come_back_with_secondaries_and_never_link_local() -> None:
    static = units_of(SOURCE)["10-restored-eth-static.network"]
    assert values(static, "Address", "Address") == [
        "192.0.2.10/24",
        "192.0.2.11/24",
        "2001:db8:1::10/64",
    ]
    assert all(
        not a.startswith("fe80")
        for u in units_of(SOURCE).values()
        for a in values(u, "Address", "Address")
    )
    assert values(static, "Link", "MTUBytes") == ["1450"]


def test_static_links_turn_dhcp_and_ra_off_so_they_are_configured_at_once() -> None:
    units = units_of(SOURCE)
    for name in ("eth-static", "eth-up", "vmbr0"):
        text = units[f"10-restored-{name}.network"]
        assert values(text, "Network", "DHCP") == ["no"]
        assert values(text, "Network", "IPv6AcceptRA") == ["no"]


def test_dhcp_link_asks_for_its_longest_lived_lease_again() -> None:
    dhcp = units_of(SOURCE)["10-restored-eth-dhcp.network"]
    (item,) = [i for i in recorded("addresses.json") if i["ifname"] == "eth-dhcp"]
    infos = item["addr_info"]
    assert isinstance(infos, list)
    lease = next(a["local"] for a in infos if a["family"] == "inet" and a.get("dynamic"))
    assert values(dhcp, "Network", "DHCP") == ["ipv4"]
    assert values(dhcp, "Network", "IPv6AcceptRA") == ["yes"]
    assert values(dhcp, "DHCPv4", "RequestAddress") == [lease]
    assert values(dhcp, "Address", "Address") == []  # the lease is not pinned statically


def test_longest_remaining_lifetime_wins(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    shutil.copytree(SOURCE.network, state.network)
    data = json.loads(state.addresses.read_text())
    for item in data:
        if item["ifname"] == "eth-dhcp":
            item["addr_info"] += [
                {
                    "family": "inet",
                    "local": "10.77.0.9",
                    "prefixlen": 24,
                    "scope": "global",
                    "dynamic": True,
                    "valid_life_time": 10,
                },
                {
                    "family": "inet",
                    "local": "10.77.0.8",
                    "prefixlen": 24,
                    "scope": "global",
                    "dynamic": True,
                    "valid_life_time": 999999,
                },
            ]
    state.addresses.write_text(json.dumps(data))
    dhcp = units_of(state)["10-restored-eth-dhcp.network"]
    assert values(dhcp, "DHCPv4", "RequestAddress") == ["10.77.0.8"]


def test_hand_made_routes_come_back_and_kernel_dhcp_ra_routes_do_not() -> None:
    units = units_of(SOURCE)
    routes = {
        (name, r.get("Destination", ["?"])[0], r.get("Gateway", [None])[0]): r
        for name, text in units.items()
        for r in sections(text, "Route")
    }
    up = "10-restored-eth-up.network"
    static = "10-restored-eth-static.network"
    assert routes[(up, "0.0.0.0/0", "172.31.1.1")]["GatewayOnLink"] == ["yes"]
    assert (up, "::/0", "fe80::1") in routes  # the static half of the merged multipath route
    assert (static, "198.51.100.0/24", "fe80::1") in routes  # IPv4 via IPv6 link-local
    metric = routes[(static, "10.20.0.0/16", "192.0.2.1")]
    assert metric["Metric"] == ["50"]
    assert metric["MTUBytes"] == ["1300"]
    types = {dst: r.get("Type") for (_, dst, _), r in routes.items()}
    assert types["10.99.0.0/16"] == ["blackhole"]
    assert types["10.98.0.0/16"] == ["unreachable"]
    assert types["2001:db8:dead::/48"] == ["blackhole"]
    destinations = {dst for (_, dst, _) in routes}
    # kernel prefix routes, the DHCP default and the RA prefix are left to their makers
    assert not destinations & {
        "192.0.2.0/24",
        "10.77.0.0/24",
        "10.77.0.1/32",
        "fd77::/64",
        "fe80::/64",
    }
    assert not [k for k in routes if k[0] == "10-restored-eth-dhcp.network"]
    # Source routing's defaults, in their table; nothing of the tunnel's table 52.
    tables = {(dst, gw): r.get("Table") for (_, dst, gw), r in routes.items()}
    assert tables[("0.0.0.0/0", "192.0.2.1")] == tables[("::/0", "2001:db8:1::1")] == ["100"]
    assert "100.100.100.100/32" not in destinations
    assert len(routes) == 10


def test_source_routing_rules_come_back_and_a_tunnels_rule_does_not() -> None:
    static = units_of(SOURCE)["10-restored-eth-static.network"]
    assert sections(static, "RoutingPolicyRule") == [
        {"Priority": ["1000"], "Table": ["100"], "From": ["192.0.2.10/32"]},
        {"Priority": ["1000"], "Table": ["100"], "From": ["2001:db8:1::10/128"]},
    ]
    rules = [r for t in units_of(SOURCE).values() for r in sections(t, "RoutingPolicyRule")]
    assert len(rules) == 2


def rules_state(tmp_path: Path, rules: list[dict[str, object]]) -> StateDir:
    """The source host's state with other rules (ip -N -4 --json rule)."""
    state = StateDir(tmp_path / "state")
    shutil.copytree(SOURCE.network, state.network)
    (state.network / "rules-v4.json").write_text(json.dumps(rules))
    return state


KERNEL_RULES = [
    {"priority": 0, "src": "all", "table": "255"},
    {"priority": 32766, "src": "all", "table": "254"},
    {"priority": 32767, "src": "all", "table": "253"},
]


def test_rules_of_vpns_and_other_links_are_left_out(tmp_path: Path) -> None:
    """wg-quick's fwmark rules, a uidrange, an iif of a NIC (its name may change), rules
    to table local or a table with no restored route: only the plain one comes back."""
    wanted = {"priority": 1000, "src": "192.0.2.10", "table": "100"}
    state = rules_state(
        tmp_path,
        [
            *KERNEL_RULES,
            wanted,
            {"priority": 32764, "src": "all", "fwmark": "0xca6c", "table": "51820"},
            {"priority": 32763, "not": None, "src": "all", "fwmark": "0xca6c", "table": "100"},
            {"priority": 32762, "src": "all", "uid_start": 1000, "uid_end": 2000, "table": "100"},
            {"priority": 32761, "src": "all", "iif": "eth-static", "table": "100"},
            {"priority": 32760, "src": "10.0.0.0", "srclen": 8, "table": "255"},
            {"priority": 32759, "src": "10.0.0.0", "srclen": 8, "table": "77"},
        ],
    )
    rules = [r for t in units_of(state).values() for r in sections(t, "RoutingPolicyRule")]
    assert rules == [
        {"Priority": ["1000"], "Table": ["100"], "From": ["192.0.2.10/32"]},
        {"Priority": ["1000"], "Table": ["100"], "From": ["2001:db8:1::10/128"]},  # IPv6's
    ]


def test_dns_servers_the_restored_network_cannot_reach_are_left_out() -> None:
    """The source host's resolved had a local resolver, one in a Docker container and
    Tailscale's (a rule sends it to the tunnel's table): only the upstream ones remain."""
    assert (SOURCE.network / "dns").read_text().split() == [
        "127.0.0.1",
        "192.0.2.53",
        "2001:db8::53",
        "172.17.0.53",
        "100.100.100.100",
    ]
    for text in units_of(SOURCE).values():
        if values(text, "Network", "DNS"):
            assert values(text, "Network", "DNS") == ["192.0.2.53", "2001:db8::53"]
            assert values(text, "Network", "Domains") == ["example.com corp.example"]


def test_each_dhcp_link_presents_the_identity_its_lease_is_keyed_on() -> None:
    """networkd's own DUID: its default; 01:MAC: ClientIdentifier=mac; nothing known (a
    client that sent none and kept no lease file): the default, which a server keyed on the
    MAC matches."""
    units = units_of(SOURCE)
    identity = {
        name: {
            k: v for k, v in (sections(text, "DHCPv4") or [{}])[0].items() if k != "RequestAddress"
        }
        for name, text in units.items()
        if name.startswith("10-restored-eth-") and values(text, "Network", "DHCP") == ["ipv4"]
    }
    assert identity == {
        "10-restored-eth-dhcp.network": {},
        "10-restored-eth-mac.network": {"ClientIdentifier": ["mac"]},
        "10-restored-eth-noid.network": {},
    }


def test_bridge_is_recreated_with_its_port_and_mac() -> None:
    units = units_of(SOURCE)
    netdev = units["10-restored-vmbr0.netdev"]
    assert values(netdev, "NetDev", "Kind") == ["bridge"]
    assert values(netdev, "NetDev", "MACAddress") == ["02:00:00:00:04:04"]
    port = units["10-restored-eth-br.network"]
    assert values(port, "Network", "Bridge") == ["vmbr0"]
    assert values(port, "Network", "LinkLocalAddressing") == ["no"]


def test_mdns_is_on_where_addresses_are_and_off_on_bridge_ports() -> None:
    """resolved answers <hostname>.local only on links whose unit turns mDNS on."""
    units = units_of(SOURCE)
    networks = {name: text for name, text in units.items() if name.endswith(".network")}
    for name, text in networks.items():
        port = values(text, "Network", "Bridge") or values(text, "Network", "Bond")
        assert values(text, "Network", "MulticastDNS") == ([] if port else ["yes"]), name
    assert any(not values(t, "Network", "Bridge") for t in networks.values())


def test_management_vlan_over_a_bond_comes_back() -> None:
    units = units_of(BOND_VLAN)
    bond = units["10-restored-bond0.netdev"]
    assert values(bond, "NetDev", "Kind") == ["bond"]
    assert values(bond, "Bond", "Mode") == ["802.3ad"]
    assert values(bond, "Bond", "TransmitHashPolicy") == ["layer3+4"]
    assert values(bond, "Bond", "LACPTransmitRate") == ["fast"]
    assert values(bond, "Bond", "MIIMonitorSec") == ["100ms"]
    for name, mac in (("eno1", "3c:ec:ef:10:00:01"), ("eno2", "3c:ec:ef:10:00:02")):
        member = units[f"10-restored-{name}.network"]
        assert values(member, "Match", "PermanentMACAddress") == [mac]
        assert values(member, "Network", "Bond") == ["bond0"]
    assert values(units["10-restored-bond0.network"], "Network", "VLAN") == ["bond0.100"]
    vlan = units["10-restored-bond0.100.netdev"]
    assert values(vlan, "VLAN", "Id") == ["100"]
    mgmt = units["10-restored-bond0.100.network"]
    assert values(mgmt, "Address", "Address") == ["10.10.10.5/24", "2a01:4f8:10:20::5/64"]
    assert values(mgmt, "Route", "Gateway") == ["10.10.10.1", "fe80::1"]
    assert values(mgmt, "Network", "DNS") == ["185.12.64.1", "185.12.64.2"]
    # loopback, a MAC-less wireguard link and an unconfigured NIC get nothing
    assert not [n for n in units if "lo" in n.split("-")[-1] or "wg0" in n or "enp65s0" in n]


def test_an_oddly_named_link_is_left_out_and_the_rest_restored(tmp_path: Path) -> None:
    """A name no unit can hold (an unrelated veth named eth[0], a control character) is no
    reason to give up the whole network: that link goes, the others come back."""
    state = StateDir(tmp_path / "state")
    shutil.copytree(SOURCE.network, state.network)
    for name, odd in (("links.json", "eth[0]"), ("addresses.json", "a\nb")):
        data = json.loads((state.network / name).read_text())
        extra = dict(data[0], ifname=odd)
        (state.network / name).write_text(json.dumps([*data, extra]))
    routes = json.loads(state.routes_v4.read_text())
    state.routes_v4.write_text(json.dumps([*routes, {"dst": "203.0.113.0/24", "dev": "eth[0]"}]))
    assert units_of(state) == units_of(SOURCE)


def test_azure_vf_is_not_a_nic_and_the_nics_unit_cannot_catch_it() -> None:
    units = units_of(AZURE)
    assert set(units) == {"10-restored-eth0.network", "10-restored-enP30832s1.network"}
    # The VF is left to the kernel (netvsc runs it under eth0), matched by its own driver.
    vf = units["10-restored-enP30832s1.network"]
    assert sections(vf, "Match") == [{"MACAddress": ["00:0d:3a:a1:b2:c3"], "Driver": ["mlx5_core"]}]
    assert values(vf, "Link", "Unmanaged") == ["yes"]
    unit = units["10-restored-eth0.network"]
    (match,) = sections(unit, "Match")
    assert match["MACAddress"] == ["00:0d:3a:a1:b2:c3"]
    assert match["Driver"] == ["hv_netvsc"]  # the VF (mlx5_core) has the same MAC
    assert values(unit, "Network", "DHCP") == ["ipv4"]
    assert values(unit, "Network", "DNS") == ["168.63.129.16"]  # Azure's, through eth0


def test_without_the_nics_driver_the_twins_driver_is_excluded(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    shutil.copytree(AZURE.network, state.network)
    (state.network / "drivers.json").write_text('{"enP30832s1": "mlx5_core"}')
    (match,) = sections(units_of(state)["10-restored-eth0.network"], "Match")
    assert match["Driver"] == ["!mlx5_core"]
    (state.network / "drivers.json").write_text("{}")  # nothing tells them apart
    assert "10-restored-enP30832s1.network" not in units_of(state)


def test_a_bridge_or_bond_without_an_address_is_not_required_for_online() -> None:
    units = units_of(BOND_VLAN)
    assert values(units["10-restored-bond0.network"], "Link", "RequiredForOnline") == ["no"]
    vmbr0 = units_of(SOURCE)["10-restored-vmbr0.network"]  # has 10.55.0.1/24
    assert values(vmbr0, "Link", "RequiredForOnline") == []


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        # dhclient sent no identifier: the server keyed the lease on the MAC.
        ({"source": "dhclient", "client_id": None}, {"ClientIdentifier": ["mac"]}),
        # udhcpc, NetworkManager with dhcp-client-id=mac, networkd with ClientIdentifier=mac.
        (
            {"source": "NetworkManager", "client_id": "01020000000303"},
            {"ClientIdentifier": ["mac"]},
        ),
        # dhcpcd's RFC 4361 identifier (IAID 0x00000303, DUID-LLT): that IAID and DUID.
        (
            {"source": "dhcpcd", "client_id": "ff00000303000100012a2b2c2d020000000303"},
            {
                "ClientIdentifier": ["duid"],
                "IAID": ["771"],
                "DUIDType": ["link-layer-time"],
                "DUIDRawData": ["00:01:2a:2b:2c:2d:02:00:00:00:03:03"],
            },
        ),
        # networkd's own identifier: its default gives it back (machine-id carried).
        ({"source": "systemd-networkd", "client_id": "ff00000303000200"}, {}),
        # a string identifier nobody can reproduce: the default.
        ({"source": "dhclient", "client_id": "686f7374"}, {}),
    ],
)
def test_dhcp_identity_from_the_old_client(
    tmp_path: Path, client: dict[str, object], expected: dict[str, list[str]]
) -> None:
    state = dhcp_state(tmp_path, [{"interface": "eth-dhcp", **client}])
    (section,) = sections(units_of(state)["10-restored-eth-dhcp.network"], "DHCPv4")
    section.pop("RequestAddress")
    assert section == expected


def test_what_is_not_restored_is_said() -> None:
    """The launcher's report names it (collect adds these notes), so nothing goes silently."""
    notes = list(networkd.plan(read_network_dir(SOURCE)).left_behind)
    assert notes == [
        "network: docker0 (bridge, 172.17.0.1/16) is not restored",
        "network: virbr0 (bridge, 192.168.122.1/24) is not restored",
        "network: ts0 (tun, 100.64.0.5/32) is not restored",
        "network: DNS server 127.0.0.1 is left out: the installer cannot reach it",
        "network: DNS server 172.17.0.53 is left out: the installer cannot reach it",
        "network: DNS server 100.100.100.100 is left out: the installer cannot reach it",
        "network: policy rule 5270 (table 52) is left out",
    ]


def test_each_address_family_is_dynamic_only_where_it_was(tmp_path: Path) -> None:
    """Static IPv4 beside SLAAC IPv6 (the usual VPS): router advertisements on, but no DHCPv4
    client, which would add a second address and default route; the other way round too; and
    a static IPv6 address whose default route came from router advertisements keeps them."""
    state = StateDir(tmp_path)
    shutil.copytree(SOURCE.network, state.network)
    addresses = json.loads((state.network / "addresses.json").read_text())
    routes = json.loads((state.network / "routes-v6.json").read_text())
    by_name = {item["ifname"]: item for item in addresses}

    def addr(family: str, local: str, *, dynamic: bool) -> dict[str, object]:
        info: dict[str, object] = {"family": family, "local": local, "scope": "global"}
        info["prefixlen"] = 24 if family == "inet" else 64
        return {**info, "dynamic": True} if dynamic else info

    by_name["eth-static"]["addr_info"] = [
        addr("inet", "192.0.2.77", dynamic=False),
        addr("inet6", "2001:db8:7::77", dynamic=True),
    ]
    by_name["eth-up"]["addr_info"] = [
        addr("inet", "198.51.100.7", dynamic=True),
        addr("inet6", "2001:db8:8::8", dynamic=False),
    ]
    by_name["vmbr0"]["addr_info"] = [addr("inet6", "2001:db8:9::9", dynamic=False)]
    routes.append({"dst": "default", "gateway": "fe80::1", "dev": "vmbr0", "protocol": "9"})
    (state.network / "addresses.json").write_text(json.dumps(addresses))
    (state.network / "routes-v6.json").write_text(json.dumps(routes))
    units = units_of(state)

    def family_settings(name: str) -> tuple[list[str], list[str]]:
        text = units[f"10-restored-{name}.network"]
        return values(text, "Network", "DHCP"), values(text, "Network", "IPv6AcceptRA")

    assert family_settings("eth-static") == (["no"], ["yes"])
    assert family_settings("eth-up") == (["ipv4"], ["no"])
    assert family_settings("vmbr0") == (["no"], ["yes"])
