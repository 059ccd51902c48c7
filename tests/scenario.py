"""The source host of the network tests: a server with everything restore-network must bring back.

Built in network namespaces with real `ip` commands and a real networkd DHCP/SLAAC client, then
dumped exactly as the kexec launcher dumps it (nixos_images.state.dump_network). Used by the
round-trip test and by tests/fixtures/record.py, which records the unit-test fixtures.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import netlab
from nixos_images.state import StateDir, dump_network

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Old name -> MAC. The restored host gets the same MACs under other names.
NICS = {
    "eth-static": "02:00:00:00:01:01",
    "eth-up": "02:00:00:00:02:02",
    "eth-dhcp": "02:00:00:00:03:03",
    "eth-br": "02:00:00:00:04:04",
}
RENAMED = {"eth-static": "ens3", "eth-up": "ens4", "eth-dhcp": "ens5", "eth-br": "ens6"}
DHCP_RANGE = ("10.77.0.100", "10.77.0.150", "1h")
SLAAC_PREFIX = "fd77::"
UPSTREAM_DNS = ("192.0.2.53", "2001:db8::53")

# Static configuration of the source host, as an admin would type it.
STATIC_SETUP = [
    "link set eth-static mtu 1450",
    "addr add 192.0.2.10/24 dev eth-static",
    "addr add 192.0.2.11/24 dev eth-static",  # a secondary
    "addr add 2001:db8:1::10/64 dev eth-static",
    "route add 10.20.0.0/16 via 192.0.2.1 dev eth-static metric 50 mtu 1300",
    "route add 198.51.100.0/24 via inet6 fe80::1 dev eth-static",  # IPv4 via an IPv6 gateway
    "addr add 203.0.113.10/32 dev eth-up",
    "addr add 2001:db8:2::10/64 dev eth-up",
    "route add default via 172.31.1.1 dev eth-up onlink",  # a gateway outside any subnet
    "-6 route add default via fe80::1 dev eth-up",  # merged with the RA default: multipath
    "-6 route add 2001:db8:99::/48 via 2001:db8:1::1 dev eth-static",
    "route add blackhole 10.99.0.0/16",
    "route add unreachable 10.98.0.0/16",
    "-6 route add blackhole 2001:db8:dead::/48",
    "link add vmbr0 type bridge",
    "link set vmbr0 address 02:00:00:00:04:04",  # shares its port's MAC, as bridges often do
    "link set eth-br master vmbr0",
    "link set vmbr0 up",
    "addr add 10.55.0.1/24 dev vmbr0",
]

# The source host's own networkd manages only eth-dhcp, and must leave the rest alone.
SOURCE_NETWORK = """[Match]
Name=eth-dhcp

[Network]
DHCP=ipv4
IPv6AcceptRA=yes
"""
SOURCE_NETWORKD_CONF = """[Network]
ManageForeignRoutes=no
ManageForeignRoutingPolicyRules=no
"""
DHCP_SERVER_SETUP = [
    "link add br-d type bridge mcast_snooping 0",
    "link set br-d up",
    "addr add 10.77.0.1/24 dev br-d",
    "addr add fd77::1/64 dev br-d",
]


@dataclass
class Lab:
    """The namespaces: D serves DHCP and RA, P holds the far ends of the static cables."""

    dhcp: netlab.Netns
    peers: netlab.Netns
    workdir: Path
    cables: int = 0

    def plug(self, host: netlab.Netns, names: dict[str, str]) -> None:
        """Give host one cable per NIC, named by names (old name -> name on host)."""
        for old, mac in NICS.items():
            self.cables += 1
            far = f"far{self.cables}"
            far_ns = self.dhcp if old == "eth-dhcp" else self.peers
            netlab.cable(host, names[old], far_ns, far, a_mac=mac)
            if old == "eth-dhcp":
                self.dhcp.ip("link", "set", far, "master", "br-d")


@contextlib.contextmanager
def lab(workdir: Path) -> Iterator[Lab]:
    with netlab.namespaces("dhcp", "peers") as (dhcp, peers):
        for cmd in DHCP_SERVER_SETUP:
            dhcp.ip(*cmd.split())
        with netlab.dnsmasq(dhcp, "br-d", DHCP_RANGE, SLAAC_PREFIX, workdir):
            yield Lab(dhcp, peers, workdir)


def _has_dynamic(ns: netlab.Netns, interface: str) -> bool:
    data = json.loads(ns.ip("-j", "addr", "show", "dev", interface))
    infos = data[0].get("addr_info", []) if data else []
    families = {a["family"] for a in infos if a.get("dynamic") and a.get("scope") == "global"}
    return families == {"inet", "inet6"}


@contextlib.contextmanager
def source_host(the_lab: Lab, timeout: float = 20) -> Iterator[netlab.Netns]:
    """The source host, alive, once its DHCP lease and SLAAC address have arrived."""
    work = the_lab.workdir
    units = work / "source-units"
    units.mkdir(exist_ok=True)
    (units / "50-dhcp.network").write_text(SOURCE_NETWORK)
    conf = work / "source-networkd.conf"
    conf.write_text(SOURCE_NETWORKD_CONF)
    with netlab.namespaces("source") as (source,):
        the_lab.plug(source, {name: name for name in NICS})
        for cmd in STATIC_SETUP:
            source.ip(*cmd.split())
        with netlab.networkd(source, units, work / "source-networkd.log", conf):
            deadline = time.monotonic() + timeout
            while not _has_dynamic(source, "eth-dhcp"):
                if time.monotonic() > deadline:
                    msg = "the source host got no DHCP lease and SLAAC address"
                    raise RuntimeError(msg)
                time.sleep(0.1)
            yield source


def dump(source: netlab.Netns, state: StateDir, workdir: Path) -> None:
    """Save the source host's network exactly as the launcher does, behind a resolved stub."""
    resolv = workdir / "resolv.conf"
    resolv.write_text("# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\n")
    upstream = workdir / "resolved-upstream.conf"
    upstream.write_text("".join(f"nameserver {s}\n" for s in UPSTREAM_DNS))
    dump_network(state, ip=source.ip_prefix, resolv_conf=resolv, resolved_upstream=upstream)
