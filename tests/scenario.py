"""The source host of the network tests: a server with everything restore-network must bring back,
and what it must leave behind.

Built in network namespaces with real `ip` commands, real DHCP/SLAAC clients (networkd with
its default identity and with ClientIdentifier=mac, tests/dhcp_client.py sending no identifier) and
a Docker bridge, a libvirt bridge, a Tailscale-like tunnel, source-based routing over two
uplinks and a local resolver; then dumped exactly as the kexec launcher dumps it
(kexec.network.collect). The stand-in NICs are veths: their dumps are made to look like
hardware NICs' (`disguise`). Used by the round-trip test and by tests/fixtures/record.py,
which records the unit-test fixtures.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import netlab
from nixos_images.kexec import network

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nixos_images.state import StateDir

# Old name -> MAC. The restored host gets the same MACs under other names.
NICS = {
    "eth-static": "02:00:00:00:01:01",
    "eth-up": "02:00:00:00:02:02",
    "eth-dhcp": "02:00:00:00:03:03",
    "eth-br": "02:00:00:00:04:04",
    "eth-mac": "02:00:00:00:05:05",
    "eth-noid": "02:00:00:00:06:06",
    "eth-v6ra": "02:00:00:00:07:07",
}
RENAMED = {
    "eth-static": "ens3",
    "eth-up": "ens4",
    "eth-dhcp": "ens5",
    "eth-br": "ens6",
    "eth-mac": "ens7",
    "eth-noid": "ens8",
    "eth-v6ra": "ens9",
}
# The NICs on the DHCP server's network, and how the source host's client identified itself.
DHCP_NICS = ("eth-dhcp", "eth-mac", "eth-noid")
# On the DHCP server's network too, but configured per address family as VPS providers do:
# static IPv4 (outside the server's range), IPv6 from router advertisements. A DHCPv4 client
# there would get a second address and default route from the server.
V6RA_NIC = "eth-v6ra"
V6RA_ADDRESS = "10.77.0.9/24"
DHCP_RANGE = ("10.77.0.100", "10.77.0.150", "1h")
SLAAC_PREFIX = "fd77::"
# Behind resolved's stub: a local resolver, the real upstream servers, one in a container
# and Tailscale's, which only the tunnel's table reaches.
UPSTREAM_DNS = ("127.0.0.1", "192.0.2.53", "2001:db8::53", "172.17.0.53", "100.100.100.100")
REACHABLE_DNS = ("192.0.2.53", "2001:db8::53")
SEARCH = ("example.com", "corp.example")
# Links that are not restored, and source-based routing's table.
LEFT_BEHIND = ("docker0", "vethc0ffee", "virbr0", "vnet0", "ts0")
UPLINK_TABLE = 100

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
    # Source-based routing over the two uplinks: answers from eth-static's address leave
    # through eth-static, whatever the main table's default says.
    f"route add default via 192.0.2.1 dev eth-static table {UPLINK_TABLE}",
    f"rule add from 192.0.2.10 lookup {UPLINK_TABLE} pref 1000",
    f"-6 route add default via 2001:db8:1::1 dev eth-static table {UPLINK_TABLE}",
    f"-6 rule add from 2001:db8:1::10 lookup {UPLINK_TABLE} pref 1000",
    # Docker: a bridge whose only port is a container's veth.
    "link add docker0 type bridge",
    "link set vethc0ffee master docker0",
    "link set docker0 up",
    "addr add 172.17.0.1/16 dev docker0",
    # libvirt: a bridge with a VM's tap.
    "link add virbr0 type bridge",
    "tuntap add vnet0 mode tap",
    "link set vnet0 master virbr0",
    "link set vnet0 up",
    "link set virbr0 up",
    "addr add 192.168.122.1/24 dev virbr0",
    # Tailscale: a tun, its own table, a rule without a selector.
    "tuntap add ts0 mode tun",
    "link set ts0 up",
    "addr add 100.64.0.5/32 dev ts0",
    "route add 100.100.100.100 dev ts0 table 52",
    "rule add lookup 52 pref 5270",
]

# The source host's own networkd manages only eth-dhcp and eth-mac, and must leave the rest
# alone; tests/dhcp_client.py serves eth-noid.
SOURCE_NETWORKS = {
    "50-dhcp.network": "[Match]\nName=eth-dhcp\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=yes\n",
    "51-mac.network": (
        "[Match]\nName=eth-mac\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=yes\n\n"
        "[DHCPv4]\nClientIdentifier=mac\n"
    ),
    "52-v6ra.network": (
        f"[Match]\nName={V6RA_NIC}\n\n[Network]\nAddress={V6RA_ADDRESS}\nDHCP=no\n"
        "IPv6AcceptRA=yes\n"
    ),
}
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
            on_dhcp = old in (*DHCP_NICS, V6RA_NIC)
            far_ns = self.dhcp if on_dhcp else self.peers
            netlab.cable(host, names[old], far_ns, far, a_mac=mac)
            if on_dhcp:
                self.dhcp.ip("link", "set", far, "master", "br-d")


@dataclass
class SourceHost:
    """The source host's namespace and its networkd (which holds the DHCP leases)."""

    ns: netlab.Netns
    networkd: netlab.Networkd


@contextlib.contextmanager
def lab(workdir: Path) -> Iterator[Lab]:
    with netlab.namespaces("dhcp", "peers") as (dhcp, peers):
        for cmd in DHCP_SERVER_SETUP:
            dhcp.ip(*cmd.split())
        with netlab.dnsmasq(dhcp, "br-d", DHCP_RANGE, SLAAC_PREFIX, workdir):
            yield Lab(dhcp, peers, workdir)


def dynamic_families(ns: netlab.Netns, interface: str) -> set[str]:
    """The families ("inet", "inet6") of interface's dynamic global addresses."""
    data = json.loads(ns.ip("-j", "addr", "show", "dev", interface))
    infos = data[0].get("addr_info", []) if data else []
    return {a["family"] for a in infos if a.get("dynamic") and a.get("scope") == "global"}


def _arrived(ns: netlab.Netns) -> bool:
    """Every DHCP NIC has its lease and SLAAC address; the RA-only NIC its SLAAC address."""
    return all(dynamic_families(ns, nic) == {"inet", "inet6"} for nic in DHCP_NICS) and (
        dynamic_families(ns, V6RA_NIC) == {"inet6"}
    )


@contextlib.contextmanager
def _no_identifier_client(ns: netlab.Netns, interface: str, workdir: Path) -> Iterator[None]:
    """tests/dhcp_client.py on interface: DHCP without a client identifier (dhclient's way)."""
    client = Path(__file__).resolve().parent / "dhcp_client.py"
    argv = ["ip", "netns", "exec", ns.name, sys.executable, str(client), interface]
    with netlab.background(argv, workdir / f"dhcp-client-{interface}.log"):
        yield


@contextlib.contextmanager
def source_host(the_lab: Lab, timeout: float = 20) -> Iterator[SourceHost]:
    """The source host, alive, once its DHCP lease and SLAAC address have arrived."""
    work = the_lab.workdir
    units = work / "source-units"
    units.mkdir(exist_ok=True)
    for name, text in SOURCE_NETWORKS.items():
        (units / name).write_text(text)
    conf = work / "source-networkd.conf"
    conf.write_text(SOURCE_NETWORKD_CONF)
    with netlab.namespaces("source") as (source,):
        the_lab.plug(source, {name: name for name in NICS})
        netlab.cable(source, "vethc0ffee", the_lab.peers, "ctr0")  # a container's end
        for cmd in STATIC_SETUP:
            source.ip(*cmd.split())
        with (
            netlab.networkd(source, units, work / "source-networkd.log", conf) as nd,
            _no_identifier_client(source, "eth-noid", work),
        ):
            deadline = time.monotonic() + timeout
            while not _arrived(source):
                if time.monotonic() > deadline:
                    msg = "the source host's DHCP NICs got no DHCP lease and SLAAC address"
                    raise RuntimeError(msg)
                time.sleep(0.1)
            yield SourceHost(source, nd)


def disguise(links_json: bytes) -> bytes:
    """The stand-in NICs' dump as a hardware NIC's: no veth kind, no peer in another namespace.
    Bridge-port data (info_slave_kind) stays: a real NIC in a bridge has it too."""
    links = json.loads(links_json)
    for link in links:
        if link["ifname"] not in NICS:
            continue
        for key in ("link_index", "link_netnsid", "link"):
            link.pop(key, None)
        info = link.get("linkinfo", {})
        for key in ("info_kind", "info_data"):
            info.pop(key, None)
        if not info:
            link.pop("linkinfo", None)
    return json.dumps(links).encode()


def dump(source: SourceHost, state: StateDir, workdir: Path) -> None:
    """Save the source host's network exactly as the launcher does, from a root that has the
    host's resolv.conf (resolved's stub), resolved's upstream file and networkd's leases."""
    root = workdir / "host-root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/resolv.conf").write_text(
        f"# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch {' '.join(SEARCH)}\n"
    )
    (root / "run/systemd/resolve").mkdir(parents=True, exist_ok=True)
    (root / "run/systemd/resolve/resolv.conf").write_text(
        "".join(f"nameserver {s}\n" for s in UPSTREAM_DNS)
    )
    leases = root / "run/systemd/netif/leases"
    leases.mkdir(parents=True, exist_ok=True)
    for ifindex, text in source.networkd.leases().items():
        (leases / ifindex).write_text(text)
    files = dict(network.collect(root, source.ns.ip_prefix).files)
    files["links.json"] = disguise(files["links.json"])
    state.network.mkdir(parents=True, exist_ok=True)
    for old in list(state.network.iterdir()):
        old.unlink()
    for name, data in files.items():
        (state.network / name).write_bytes(data)
