"""The state directory: what the kexec launcher saves and the installer restores (its files:
docs/kexec.md, "The state directory"; their names and modes: data/layout.json).

`-N` in the dumps: tables (and route types, protocols, scopes) as numbers, since a table's
name comes from the old host's rt_tables, which the installer does not have. Files a dump does
not have read as empty. NetworkState is their content as one typed value; read_network() is
the one way from the files to it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from nixos_images import dhcp, iproute, iprule
from nixos_images.errors import InputError
from nixos_images.layout import STATE_FILES

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

# File name in <state>/network -> arguments to `ip` that produce it.
NETWORK_DUMPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("addresses.json", ("--json", "addr")),
    ("routes-v4.json", ("-N", "-4", "--json", "route", "show", "table", "all")),
    ("routes-v6.json", ("-N", "-6", "--json", "route", "show", "table", "all")),
    ("rules-v4.json", ("-N", "-4", "--json", "rule")),
    ("rules-v6.json", ("-N", "-6", "--json", "rule")),
    ("links.json", ("--json", "-details", "link")),
)
DNS, DOMAINS, DRIVERS, DHCP = "dns", "domains", "drivers.json", "dhcp.json"
# A search domain as glibc and resolved take it; nothing else may reach a unit.
DOMAIN = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?")
T = TypeVar("T", dict[str, Any], list[Any])  # raw JSON, checked where it is used
_DRIVER = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class NetworkState:
    """The old host's network, as the launcher saw it: what restore-network plans from."""

    links: tuple[iproute.Link, ...] = ()
    addresses: tuple[iproute.Address, ...] = ()
    routes: tuple[iproute.Route, ...] = ()
    rules: tuple[iprule.Rule, ...] = ()
    dns: tuple[iproute.IPAddress, ...] = ()
    domains: tuple[str, ...] = ()
    drivers: Mapping[str, str] = field(default_factory=dict)
    dhcp: tuple[dhcp.DhcpClient, ...] = ()


def read_network(files: Mapping[str, bytes], prefix: str = "") -> NetworkState:
    """The network state from its files (name in <state>/network -> content); InputError names
    the file (prefix + name) and the item when one is damaged. `links.json` and
    `addresses.json` must be there."""

    def dump(name: str, *, required: bool = False) -> list[object]:
        if name not in files:
            if required:
                raise InputError(f"{prefix}{name}", "file not found")
            return []
        return iproute.decode(files[name], f"{prefix}{name}")

    return NetworkState(
        links=tuple(iproute.links_from(dump("links.json", required=True), f"{prefix}links.json")),
        addresses=tuple(
            iproute.addresses_from(dump("addresses.json", required=True), f"{prefix}addresses.json")
        ),
        routes=tuple(
            route
            for family in (4, 6)
            for route in iproute.routes_from(
                dump(f"routes-v{family}.json"), family, f"{prefix}routes-v{family}.json"
            )
        ),
        rules=tuple(
            rule
            for family in (4, 6)
            for rule in iprule.rules_from(
                dump(f"rules-v{family}.json"), family, f"{prefix}rules-v{family}.json"
            )
        ),
        dns=tuple(_servers(files.get(DNS, b""), f"{prefix}{DNS}")),
        domains=tuple(_lines(files.get(DOMAINS, b""), DOMAIN)),
        drivers=read_drivers(files.get(DRIVERS, b"{}"), f"{prefix}{DRIVERS}"),
        dhcp=tuple(read_dhcp_clients(files.get(DHCP, b"[]"), f"{prefix}{DHCP}")),
    )


def read_network_dir(state: StateDir) -> NetworkState:
    """The network state saved in a state directory."""
    files = {}
    try:
        for path in state.network.iterdir():
            if path.is_file():
                files[path.name] = path.read_bytes()
    except OSError as e:
        raise InputError(state.network, e.strerror or str(e)) from None
    return read_network(files, f"{state.network}/")


def _servers(text: bytes, where: str) -> list[iproute.IPAddress]:
    servers = []
    for n, line in enumerate(text.decode(errors="replace").splitlines(), start=1):
        word = line.strip()
        if not word:
            continue
        try:
            servers.append(ipaddress.ip_address(word.split("%", 1)[0]))
        except ValueError:
            raise InputError(f"{where}:{n}", f"not an IP address: {word!r}") from None
    return servers


def _lines(text: bytes, pattern: re.Pattern[str]) -> list[str]:
    """The lines that match pattern; others are left out (they could not reach a unit)."""
    return [w for w in text.decode(errors="replace").split() if pattern.fullmatch(w)]


def _json(text: bytes, where: str, kind: type[T], name: str) -> T:
    """A file's JSON, which must be a kind (dict or list, a JSON `name`); else InputError."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InputError(where, f"invalid JSON: {e}") from None
    if not isinstance(data, kind):
        raise InputError(where, f"expected a JSON {name}")
    return data


def read_drivers(text: bytes, where: str) -> dict[str, str]:
    """drivers.json: interface -> driver; a name no driver could have is dropped."""
    data = _json(text, where, dict, "object")
    return {k: v for k, v in data.items() if isinstance(v, str) and _DRIVER.fullmatch(v)}


def read_dhcp_clients(text: bytes, where: str) -> list[dhcp.DhcpClient]:
    """dhcp.json: what each interface's DHCP client sent."""
    data = _json(text, where, list, "list")
    out = []
    for n, item in enumerate(data):
        try:
            client_id = item["client_id"]
            out.append(
                dhcp.DhcpClient(
                    interface=str(item["interface"]),
                    source=dhcp.Source(item["source"]),
                    client_id=None if client_id is None else bytes.fromhex(client_id),
                )
            )
        except (TypeError, KeyError, ValueError) as e:
            raise InputError(f"{where}: item {n}", f"not a DHCP client record ({e})") from None
    return out


def dhcp_json(clients: list[dhcp.DhcpClient]) -> bytes:
    """dhcp.json's content."""
    return json.dumps(
        [
            {
                "interface": c.interface,
                "source": c.source.value,
                "client_id": None if c.client_id is None else c.client_id.hex(),
            }
            for c in clients
        ],
        indent=1,
    ).encode()


class StateDir:
    """Paths inside one state directory (their names: data/layout.json's stateFiles)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.network = root / STATE_FILES["network"].path
        self.addresses = self.network / "addresses.json"
        self.routes_v4 = self.network / "routes-v4.json"
        self.routes_v6 = self.network / "routes-v6.json"
        self.links = self.network / "links.json"
        self.dns = self.network / DNS
        self.host_keys = root / STATE_FILES["hostKeys"].path
        self.authorized_keys = root / STATE_FILES["authorizedKeys"].path
        self.machine_id = root / STATE_FILES["machineId"].path
