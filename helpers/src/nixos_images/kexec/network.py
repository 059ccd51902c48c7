"""The old host's network as kexec/run collects it: ip's dumps, the DNS servers and search
domains in use, the NICs' drivers and the identities their DHCP clients sent.

Collected once and planned at once (networkd.plan), so that a network the installer could not
restore stops the launcher while the old system still runs. The files it yields are the
state directory's network/ (nixos_images.state owns their format).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images import dhcp, fsutil, networkd, process
from nixos_images import state as state_layout
from nixos_images.sizes import MiB

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from nixos_images import iproute


@dataclass(frozen=True)
class Collected:
    """The network part of the state: its files (name in network/ -> content), the state
    they read as, and the plan made from it (units, and what stays behind)."""

    files: dict[str, bytes]
    state: state_layout.NetworkState
    plan: networkd.NetworkPlan


def collect(root: Path, ip: tuple[str, ...]) -> Collected:
    """Dump the network with the given ip (the tarball's), read it once, plan it."""
    files = dumps(
        ip,
        resolv_conf=root / "etc/resolv.conf",
        resolved_upstream=root / "run/systemd/resolve/resolv.conf",
    )
    where = "the network as the tarball's ip shows it: "
    network = state_layout.read_network(files, where)
    files[state_layout.DRIVERS] = json.dumps(drivers(root, network.links), indent=1).encode()
    files[state_layout.DHCP] = state_layout.dhcp_json(dhcp_clients(root, network.links))
    network = dataclasses.replace(
        network,
        drivers=state_layout.read_drivers(
            files[state_layout.DRIVERS], f"{where}{state_layout.DRIVERS}"
        ),
        dhcp=tuple(
            state_layout.read_dhcp_clients(files[state_layout.DHCP], f"{where}{state_layout.DHCP}")
        ),
    )
    return Collected(files, network, networkd.plan(network))


def dumps(
    ip: tuple[str, ...] = ("ip",),
    resolv_conf: Path = Path("/etc/resolv.conf"),
    resolved_upstream: Path = Path("/run/systemd/resolve/resolv.conf"),
) -> dict[str, bytes]:
    """Ip's dumps and the DNS files, file name in <state>/network -> content.

    `ip` is the command prefix that runs iproute2 (tests run it inside a network namespace,
    the kexec launcher runs the `ip` bundled in its tarball).
    """
    files = {
        name: process.run([*ip, *args], call=process.Call.IP, check=True).stdout
        for name, args in state_layout.NETWORK_DUMPS
    }
    # Not UTF-8 (a Latin-1 comment, say) is no reason to refuse: bytes become U+FFFD.
    upstream = (
        resolved_upstream.read_text(errors="replace") if resolved_upstream.is_file() else None
    )
    conf = resolv_conf.read_text(errors="replace") if resolv_conf.is_file() else ""
    files[state_layout.DNS] = "".join(f"{s}\n" for s in dns_servers(conf, upstream)).encode()
    # resolved's stub file carries the search list too; its upstream file has it as well.
    domains = search_domains(conf) or search_domains(upstream or "")
    files[state_layout.DOMAINS] = "".join(f"{d}\n" for d in domains).encode()
    return files


RESOLVED_STUBS = frozenset({"127.0.0.53", "127.0.0.54"})


def nameservers(resolv_conf: str) -> list[str]:
    """The `nameserver` entries of a resolv.conf text, in order; one that is not an IP address
    is ignored, as glibc ignores it."""
    servers = []
    for line in resolv_conf.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":  # noqa: PLR2004 - keyword + value
            try:
                ipaddress.ip_address(fields[1].split("%", 1)[0])
            except ValueError:
                continue
            servers.append(fields[1])
    return servers


def search_domains(resolv_conf: str) -> list[str]:
    """The search list of a resolv.conf text: its last `search` or `domain` line, as glibc."""
    domains: list[str] = []
    for line in resolv_conf.splitlines():
        fields = line.split()
        if fields and fields[0] in ("search", "domain"):
            domains = [d for d in fields[1:] if state_layout.DOMAIN.fullmatch(d)]
    return domains


def dns_servers(resolv_conf: str, resolved_upstream: str | None) -> list[str]:
    """The DNS servers really in use: behind systemd-resolved's stub, its upstream servers."""
    servers = nameservers(resolv_conf)
    if servers and all(s in RESOLVED_STUBS for s in servers):
        return nameservers(resolved_upstream or "")
    return [s for s in servers if s not in RESOLVED_STUBS]


# Where DHCP clients leave their leases: (glob under the root, which client, its format).
NETWORKD_LEASES = "run/systemd/netif/leases/*"
NM_LEASES = "var/lib/NetworkManager/internal-*.lease"
NM_PROFILES = (
    "etc/NetworkManager/system-connections/*.nmconnection",
    "run/NetworkManager/system-connections/*.nmconnection",
    "usr/lib/NetworkManager/system-connections/*.nmconnection",
)
NM_CONFIGS = ("etc/NetworkManager/NetworkManager.conf", "etc/NetworkManager/conf.d/*.conf")
DHCPCD_DIRS = ("var/lib/dhcpcd", "var/db/dhcpcd")
DHCPCD_DUIDS = ("var/lib/dhcpcd/duid", "var/db/dhcpcd/duid", "etc/dhcpcd.duid")
DHCLIENT_LEASES = (
    "var/lib/dhcp/dhclient*.lease*",
    "var/lib/dhclient/*.lease*",
    "var/lib/NetworkManager/dhclient-*.lease",
)
LEASE_LIMIT = MiB


def _read_lease(path: Path) -> str | None:
    try:
        return fsutil.read_untrusted(path, LEASE_LIMIT)
    except (OSError, fsutil.UnsafeFileError):
        return None  # what cannot be read safely tells nothing: networkd's default applies


def _texts(root: Path, patterns: tuple[str, ...]) -> list[str]:
    """The files matching patterns under root, read safely; what cannot be read is skipped."""
    return [
        text
        for pattern in patterns
        for path in sorted(root.glob(pattern))
        if (text := _read_lease(path)) is not None
    ]


def dhcp_clients(root: Path, links: Sequence[iproute.Link]) -> list[dhcp.DhcpClient]:
    """What each interface's DHCP client sent, from the lease files it left: networkd's
    first, then NetworkManager's, then dhclient's (the running client's is the freshest)."""
    names = {link.name for link in links}
    found: dict[str, dhcp.DhcpClient] = {}
    found_by = (*_networkd(root, links), *_network_manager(root, links), *_dhcpcd(root, links))
    for client in (*found_by, *_dhclient(root)):
        if client.interface in names:
            found.setdefault(client.interface, client)
    return list(found.values())


def _networkd(root: Path, links: Sequence[iproute.Link]) -> Iterator[dhcp.DhcpClient]:
    names = {str(link.index): link.name for link in links}
    for path in sorted(root.glob(NETWORKD_LEASES)):
        text = _read_lease(path)
        if text is not None and path.name in names and "CLIENTID=" in text:
            client_id = dhcp.networkd_client_id(text)
            yield dhcp.DhcpClient(names[path.name], dhcp.Source.NETWORKD, client_id)


def _network_manager(root: Path, links: Sequence[iproute.Link]) -> Iterator[dhcp.DhcpClient]:
    by_name = {link.name: link for link in links}
    for path in sorted(root.glob(NM_LEASES)):
        text = _read_lease(path)
        lease = dhcp.NM_LEASE.fullmatch(path.name)
        if text is None or lease is None or lease.group(2) not in by_name:
            continue
        uuid, interface = lease.groups()
        if "CLIENTID=" in text:
            client_id = dhcp.networkd_client_id(text)
            yield dhcp.DhcpClient(interface, dhcp.Source.NETWORK_MANAGER, client_id)
            continue
        profiles, configs = _texts(root, NM_PROFILES), _texts(root, NM_CONFIGS)
        setting = dhcp.nm_client_id_setting(uuid, profiles, configs)
        link = by_name[interface]
        known, client_id = dhcp.nm_client_id(setting, link.mac, link.permanent_mac)
        if known:
            yield dhcp.DhcpClient(interface, dhcp.Source.NETWORK_MANAGER, client_id)


def _dhcpcd(root: Path, links: Sequence[iproute.Link]) -> Iterator[dhcp.DhcpClient]:
    """Interfaces dhcpcd leased on (its lease files are binary: only their names are used)."""
    conf = _texts(root, ("etc/dhcpcd.conf",))
    duid = next(iter(_texts(root, DHCPCD_DUIDS)), None)
    for link in links:
        names = (f"{link.name}.lease", f"dhcpcd-{link.name}.lease")
        if not any((root / d / n).is_file() for d in DHCPCD_DIRS for n in names):
            continue
        known, client_id = dhcp.dhcpcd_client_id("".join(conf), link.name, link.mac, duid)
        if known:
            yield dhcp.DhcpClient(link.name, dhcp.Source.DHCPCD, client_id)


def _dhclient(root: Path) -> Iterator[dhcp.DhcpClient]:
    for pattern in DHCLIENT_LEASES:
        for path in sorted(root.glob(pattern)):
            text = _read_lease(path)
            for interface, client_id in dhcp.dhclient_client_ids(text or "").items():
                yield dhcp.DhcpClient(interface, dhcp.Source.DHCLIENT, client_id)


def drivers(root: Path, links: Sequence[iproute.Link]) -> dict[str, str]:
    """Interface -> the driver bound to its device (sysfs), for links that have one."""
    out = {}
    for link in links:
        driver = root / "sys/class/net" / link.name / "device/driver"
        with contextlib.suppress(OSError):
            out[link.name] = driver.readlink().name
    return out
