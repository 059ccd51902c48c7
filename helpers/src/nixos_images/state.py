"""The state directory: what the kexec launcher saves and the installer restores.

This module is the single definition of its layout inside; the launcher writes through it and
the installer side (hand-off script, restore-network) reads through it. Where the directory
is (in the initrd, in the installer) is in data/layout.json (nixos_images.layout).

    <state>/machine-id
    <state>/ssh/host-keys/ssh_host_<type>_key[.pub]   as found in /etc/ssh
    <state>/ssh/authorized_keys                        root's keys, for the installer's root
    <state>/network/addresses.json                     ip --json addr
    <state>/network/routes-v4.json                     ip -4 --json route
    <state>/network/routes-v6.json                     ip -6 --json route
    <state>/network/links.json                         ip --json -details link
    <state>/network/dns                                DNS servers in use, one per line
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

# File name in <state>/network -> arguments to `ip` that produce it.
NETWORK_DUMPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("addresses.json", ("--json", "addr")),
    ("routes-v4.json", ("-4", "--json", "route")),
    ("routes-v6.json", ("-6", "--json", "route")),
    ("links.json", ("--json", "-details", "link")),
)

RESOLVED_STUBS = frozenset({"127.0.0.53", "127.0.0.54"})


class StateDir:
    """Paths inside one state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.network = root / "network"
        self.addresses = self.network / "addresses.json"
        self.routes_v4 = self.network / "routes-v4.json"
        self.routes_v6 = self.network / "routes-v6.json"
        self.links = self.network / "links.json"
        self.dns = self.network / "dns"
        self.host_keys = root / "ssh" / "host-keys"
        self.authorized_keys = root / "ssh" / "authorized_keys"
        self.machine_id = root / "machine-id"


def nameservers(resolv_conf: str) -> list[str]:
    """The `nameserver` entries of a resolv.conf text, in order; one that is not an IP address
    is ignored, as glibc ignores it."""  # noqa: D205, D209
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


def dns_servers(resolv_conf: str, resolved_upstream: str | None) -> list[str]:
    """The DNS servers really in use: behind systemd-resolved's stub, its upstream servers."""
    servers = nameservers(resolv_conf)
    if servers and all(s in RESOLVED_STUBS for s in servers):
        return nameservers(resolved_upstream or "")
    return [s for s in servers if s not in RESOLVED_STUBS]


def network_state(
    ip: tuple[str, ...] = ("ip",),
    resolv_conf: Path = Path("/etc/resolv.conf"),
    resolved_upstream: Path = Path("/run/systemd/resolve/resolv.conf"),
) -> dict[str, bytes]:
    """The network part of the state, file name in <state>/network -> content.

    `ip` is the command prefix that runs iproute2 (tests run it inside a network namespace,
    the kexec launcher runs the `ip` bundled in its tarball).
    """
    # Imported here: restore-network reads this module on the boot path and needs neither.
    from nixos_images import process  # noqa: PLC0415

    files = {name: process.run([*ip, *args], check=True).stdout for name, args in NETWORK_DUMPS}
    # Not UTF-8 (a Latin-1 comment, say) is no reason to refuse: bytes become U+FFFD.
    upstream = (
        resolved_upstream.read_text(errors="replace") if resolved_upstream.is_file() else None
    )
    conf = resolv_conf.read_text(errors="replace") if resolv_conf.is_file() else ""
    files["dns"] = "".join(f"{s}\n" for s in dns_servers(conf, upstream)).encode()
    return files


def dump_network(
    state: StateDir,
    ip: tuple[str, ...] = ("ip",),
    resolv_conf: Path = Path("/etc/resolv.conf"),
    resolved_upstream: Path = Path("/run/systemd/resolve/resolv.conf"),
) -> None:
    """Save the network part of the state into a state directory."""
    from nixos_images.fsutil import write_atomic  # noqa: PLC0415

    state.network.mkdir(parents=True, exist_ok=True)
    for name, data in network_state(ip, resolv_conf, resolved_upstream).items():
        write_atomic(state.network / name, data)
