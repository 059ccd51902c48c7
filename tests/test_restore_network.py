"""restore-network on recorded and hand-written dumps: what units a user gets, and bad input."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from nixos_images import iproute, networkd, restore_network
from nixos_images.errors import InputError
from nixos_images.restore_network import generate, write_units
from nixos_images.state import StateDir, dns_servers, read_network_dir

SOURCE = StateDir(FIXTURES / "source-host")  # recorded by tests/fixtures/record.py
BOND_VLAN = StateDir(FIXTURES / "bond-vlan")  # written by hand: no bond/vlan modules here
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
    assert values(dhcp, "Network", "DHCP") == ["yes"]
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
        if name.startswith("10-restored-eth-") and values(text, "Network", "DHCP") == ["yes"]
    }
    assert identity == {
        "10-restored-eth-dhcp.network": {},
        "10-restored-eth-mac.network": {"ClientIdentifier": ["mac"]},
        "10-restored-eth-noid.network": {},
    }


def test_dns_servers_are_the_upstream_ones_behind_resolved_stub() -> None:
    assert dns_servers("nameserver 127.0.0.53\n", "nameserver 9.9.9.9\n") == ["9.9.9.9"]
    assert dns_servers("nameserver 1.1.1.1\nnameserver 127.0.0.53\n", None) == ["1.1.1.1"]
    assert dns_servers("# nothing\n", "nameserver 9.9.9.9\n") == []


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


def test_dry_run_prints_units_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "network"
    run_main("--dry-run", "--state", str(SOURCE.root), str(target))
    assert "### 10-restored-eth-up.network" in capsys.readouterr().out
    assert not target.exists()


def test_second_run_replaces_its_own_units_and_leaves_others_alone(tmp_path: Path) -> None:
    target = tmp_path / "network"
    target.mkdir()
    (target / "10-restored-gone.network").write_text("stale")
    (target / "50-generator.network").write_text("not ours")
    run_main("--state", str(SOURCE.root), str(target))
    first = sorted(p.name for p in target.iterdir())
    assert "10-restored-gone.network" not in first
    assert "50-generator.network" in first
    run_main("--state", str(BOND_VLAN.root), str(target))
    second = sorted(p.name for p in target.iterdir())
    assert "10-restored-eth-up.network" not in second
    assert "10-restored-bond0.netdev" in second
    assert "50-generator.network" in second
    assert not [p for p in target.iterdir() if p.name.startswith(".")]


def run_main(*argv: str) -> None:
    old = sys.argv
    sys.argv = ["restore-network", *argv]
    try:
        restore_network.main()
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    finally:
        sys.argv = old


def broken_state(tmp_path: Path, name: str, content: str | None) -> StateDir:
    state = StateDir(tmp_path / "state")
    shutil.copytree(SOURCE.network, state.network)
    path = state.network / name
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    return state


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("links.json", None, "links.json: file not found"),
        ("addresses.json", "{not json", "addresses.json: invalid JSON"),
        ("routes-v4.json", '{"dst": "default"}', "routes-v4.json: expected a JSON list"),
        (
            "links.json",
            '[{"ifindex": 1, "ifname": 7}]',
            "links.json: item 0: 'ifname' must be a string",
        ),
        (
            "addresses.json",
            '[{"ifname": "x", "addr_info": [{"local": "1.2.3.400", "prefixlen": 8}]}]',
            "addresses.json: item 0: addr_info 0: 'local' is not an IP address",
        ),
        (
            "routes-v6.json",
            '[{"dst": "10.0.0.0/8"}]',
            "routes-v6.json: item 0: 'dst' 10.0.0.0/8 is not IPv6",
        ),
        ("dns", "1.1.1.1\nexample.org\n", "dns:2: not an IP address: 'example.org'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | None, problem: str
) -> None:
    state = broken_state(tmp_path, name, content)
    target = tmp_path / "out"
    target.mkdir()
    (target / "10-restored-old.network").write_text("old")
    sys_argv = sys.argv
    sys.argv = ["restore-network", "--state", str(state.root), str(target)]
    try:
        with pytest.raises(SystemExit) as exit_:
            restore_network.main()
    finally:
        sys.argv = sys_argv
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1
    assert err.startswith("restore-network: ")
    assert problem in err
    assert [p.name for p in target.iterdir()] == ["10-restored-old.network"]


def test_write_units_refuses_a_file_as_target(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(Exception, match="not a directory"):
        write_units(generate(SOURCE), target)


# Property tests: arbitrary JSON, and whole dumps shaped like ip's with names that line up
# across the files but arbitrary values, never give a traceback: the result is units whose
# every line is well-formed, or one InputError line.
_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12)
_json = st.recursive(
    _scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)
_name = st.sampled_from(["eth0", "br0", "bond0", "eth0.5", "lo"] * 10 + ["a\nb", "x]", "a=b"])
_addr = st.sampled_from(["10.0.0.1", "fe80::1", "2001:db8::1", "192.0.2.1"])
_ip = st.sampled_from(["10.0.0.1", "fe80::1", "2001:db8::1", "default", "10.0.0.0/8", "::/0"])
_mac = st.sampled_from(["02:00:00:00:00:01"] * 3 + ["02:00:00:00:00:02", "00:00:00:00:00:00", "zz"])


def _maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly a plausible value, now and then anything at all."""
    return st.sampled_from(range(100)).flatmap(lambda n: _scalars | _json if n == 57 else strategy)


def _obj(
    required: tuple[str, ...] = (), **fields: st.SearchStrategy[object]
) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {k: _maybe(v) for k, v in fields.items() if k in required},
        optional={k: _maybe(v) for k, v in fields.items() if k not in required},
    )


_kind_data = st.dictionaries(
    st.sampled_from(["mode", "miimon", "id", "protocol", "stp_state", "xmit_hash_policy"]),
    _scalars | st.sampled_from(["802.3ad", "802.1ad", "layer3+4"]),
)
_dump = st.fixed_dictionaries(
    {
        "links.json": st.lists(
            max_size=4,
            elements=_obj(
                ("ifindex", "ifname", "address", "link_type"),
                ifindex=st.integers(1, 9),
                ifname=_name,
                address=_mac,
                permaddr=_mac,
                mtu=st.integers(),
                link_type=st.sampled_from(["ether"] * 4 + ["loopback", "none"]),
                master=_name,
                link=_name,
                linkinfo=_obj(
                    ("info_kind",),
                    info_kind=st.sampled_from(
                        ["veth"] * 4 + ["bond", "bridge", "vlan", "wireguard"]
                    ),
                    info_data=_kind_data,
                    info_slave_data=_obj(perm_hwaddr=_mac),
                ),
            ),
        ),
        "addresses.json": st.lists(
            max_size=4,
            elements=_obj(
                ("ifname", "addr_info"),
                ifname=_name,
                addr_info=st.lists(
                    max_size=4,
                    elements=_obj(
                        ("local", "prefixlen"),
                        family=st.sampled_from(["inet", "inet6"]),
                        local=_addr,
                        address=_addr,
                        prefixlen=st.sampled_from([8, 24, 64] * 5 + [-1, 33, 129]),
                        scope=st.sampled_from(["global", "link", "host"]),
                        dynamic=st.booleans(),
                        valid_life_time=st.integers(),
                        noprefixroute=st.booleans(),
                    ),
                ),
            ),
        ),
        "routes-v4.json": st.lists(
            max_size=4,
            elements=_obj(
                ("dst", "dev"),
                dst=st.sampled_from(["default", "10.0.0.0/8", "192.0.2.0/24", "10.1.2.3"]),
                gateway=_addr,
                dev=_name,
                metric=st.integers(),
                prefsrc=_addr,
                protocol=st.sampled_from(["kernel", "static", "dhcp", "ra"]),
                table=st.just("local"),
                type=st.sampled_from(["blackhole", "unreachable", "local", "unicast"]),
                flags=st.lists(st.sampled_from(["onlink", "linkdown"])),
                via=_obj(family=st.just("inet6"), host=_addr),
                metrics=st.lists(max_size=4, elements=_obj(mtu=st.integers())),
                nexthops=st.lists(
                    max_size=4, elements=_obj(gateway=_addr, dev=_name, flags=st.just(["onlink"]))
                ),
            ),
        ),
        "dns": st.lists(_addr, max_size=3).map("\n".join),
    }
)
_LINE = re.compile(r"(#[^\n]*|\[[A-Za-z0-9]+\]|[A-Za-z0-9]+=[^\n\[\]]*|)")


def _check_units_or_clean_error(state: StateDir) -> None:
    try:
        units = generate(state)
    except InputError as e:
        message = str(e)
        assert "\n" not in message
        return
    for unit in units:
        assert re.fullmatch(r"10-restored-[A-Za-z0-9_.@+-]+\.(network|netdev)", unit.name)
        for line in unit.text.splitlines():
            assert _LINE.fullmatch(line), line


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(dump=_dump)
def test_any_ip_shaped_dump_gives_units_or_one_clean_error(
    tmp_path: Path, dump: dict[str, object]
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        state = StateDir(Path(work))
        state.network.mkdir()
        for name, value in dump.items():
            text = value if isinstance(value, str) else json.dumps(value)
            (state.network / name).write_text(text)
        state.routes_v6.write_text(json.dumps(dump["routes-v4.json"]).replace("10.0.0", "fd00::"))
        _check_units_or_clean_error(state)


STATE_FILES = ["links.json", "addresses.json", "routes-v4.json", "routes-v6.json",
               "rules-v4.json", "rules-v6.json", "drivers.json", "dhcp.json"]  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(STATE_FILES),
    value=_json,
)
def test_any_json_in_one_file_gives_units_or_one_clean_error(
    tmp_path: Path, name: str, value: object
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        _check_units_or_clean_error(broken_state(Path(work), name, json.dumps(value)))


def test_a_killed_runs_staging_directory_is_cleared(tmp_path: Path) -> None:
    """SIGKILL skips the cleanup; the next run removes what that one left."""
    target = tmp_path / "network"
    stale = target / ".restore-network.4242"
    stale.mkdir(parents=True)
    (stale / "10-restored-eth0.network").write_text("[Match]\n")
    restore_network.write_units(restore_network.generate(SOURCE), target)
    assert not stale.exists()
    assert sorted(p.name for p in target.iterdir() if p.name.startswith(".")) == []


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


def test_a_nameserver_glibc_ignores_is_ignored() -> None:
    assert dns_servers("nameserver not-an-ip\nnameserver 9.9.9.9\n", None) == ["9.9.9.9"]


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
    assert values(unit, "Network", "DHCP") == ["yes"]
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


def dhcp_state(tmp_path: Path, clients: list[dict[str, object]]) -> StateDir:
    state = StateDir(tmp_path / "state")
    shutil.copytree(SOURCE.network, state.network)
    (state.network / "dhcp.json").write_text(json.dumps(clients))
    return state


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


def test_a_damaged_dhcp_record_is_one_clean_error(tmp_path: Path) -> None:
    state = dhcp_state(tmp_path, [{"interface": "eth-dhcp", "source": "pump", "client_id": None}])
    with pytest.raises(InputError, match=r"dhcp.json: item 0: not a DHCP client record"):
        generate(state)


def test_what_is_not_restored_is_said() -> None:
    """The launcher's report names it (collect adds these notes), so nothing goes silently."""
    notes = networkd.left_behind(read_network_dir(SOURCE))
    assert notes == [
        "network: docker0 (bridge, 172.17.0.1/16) is not restored",
        "network: virbr0 (bridge, 192.168.122.1/24) is not restored",
        "network: ts0 (tun, 100.64.0.5/32) is not restored",
        "network: DNS server 127.0.0.1 is left out: the installer cannot reach it",
        "network: DNS server 172.17.0.53 is left out: the installer cannot reach it",
        "network: DNS server 100.100.100.100 is left out: the installer cannot reach it",
        "network: policy rule 5270 (table 52) is left out",
    ]


def route(dst: str, dev: str | None, table: int = 254, kind: str = "unicast") -> iproute.Route:
    network = ipaddress.ip_network(dst)
    return iproute.Route(network.version, kind, network, None, dev, None, None, None,
                         onlink=False, mtu=None, source=None, table=table)  # fmt: skip


def rule(priority: int, table: int, **kw: Any) -> iproute.Rule:
    fields: dict[str, Any] = {"source": None, "destination": None, "invert": False,
                              "incoming": None, "outgoing": None, "action": "to_tbl"}  # fmt: skip
    fields.update(kw)
    return iproute.Rule(4, priority, table=table, **fields)


KERNEL = [rule(0, 255), rule(32766, 254), rule(32767, 253)]
MAIN = [route("0.0.0.0/0", "eth0"), route("10.0.0.0/24", "eth0")]


@pytest.mark.parametrize(
    ("rules", "routes", "dev"),
    [
        (KERNEL, MAIN, "eth0"),
        ([], MAIN, "eth0"),  # no rules dumped: the kernel's own
        # wg-quick: everything unmarked goes to its table, through wg0.
        (
            [*KERNEL, rule(32764, 51820, invert=True, others=("fwmark",))],
            [*MAIN, route("0.0.0.0/0", "wg0", table=51820)],
            "wg0",
        ),
        # a source-routing rule does not apply: this host's packets have no source yet.
        (
            [*KERNEL, rule(1000, 100, source=ipaddress.ip_network("10.0.0.5/32"))],
            [*MAIN, route("0.0.0.0/0", "eth1", table=100)],
            "eth0",
        ),
        # a throw route sends the lookup on to the next rule.
        (
            [*KERNEL, rule(100, 100)],
            [*MAIN, route("1.1.0.0/16", None, table=100, kind="throw")],
            "eth0",
        ),
        ([*KERNEL, rule(100, 100)], [*MAIN, route("1.1.0.0/16", None, 100, "blackhole")], None),
    ],
)
def test_route_lookup_follows_the_kernels_rules(
    rules: list[iproute.Rule], routes: list[iproute.Route], dev: str | None
) -> None:
    found = networkd.route_lookup(ipaddress.ip_address("1.1.1.1"), rules, routes)
    assert (found.device if found else None) == dev
