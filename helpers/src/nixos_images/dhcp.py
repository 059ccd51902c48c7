"""How the old host identified itself to its DHCP server, read from its DHCP clients' leases.

A DHCP server keys a lease on the client identifier (option 61) when one was sent, else on the
MAC. The installer asks for the old lease with the identity that gets it back (networkd.py
turns a DhcpClient into `[DHCPv4]` settings). Pure parsers here; kexec/network.py reads the
files.

- systemd-networkd: /run/systemd/netif/leases/<ifindex>, `CLIENTID=<hex>`.
- NetworkManager's internal client: /var/lib/NetworkManager/internal-<uuid>-<if>.lease, which
  names the profile; older versions wrote `CLIENTID=` there, newer ones do not, and then the
  profile's `ipv4.dhcp-client-id` says it (else the global default in NetworkManager.conf,
  else the internal client's own default, `mac`).
- dhcpcd: its lease (/var/lib/dhcpcd/<if>.lease, binary) says it ran there; what it sent
  follows from dhcpcd.conf: `clientid` (its default) sends 01 and the MAC, `duid` sends
  0xff, the IAID (`iaid`, else the MAC's last 4 bytes) and the DUID in its duid file.
- ISC dhclient: `lease { interface "eth0"; ... option dhcp-client-identifier 1:2:...; }`; a
  lease without that option means none was sent.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_HEX = re.compile(r"(?:[0-9a-f]{2})+")
# dhclient writes each byte in hex without leading zeros, separated by colons.
_DHCLIENT_BYTES = re.compile(r"[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2})*")
NM_LEASE = re.compile(r"internal-([0-9a-fA-F-]{36})-(.+)\.lease")
_HEX_ID = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})+")
_LEASE = re.compile(r"lease\s*\{(.*?)\}", re.DOTALL)
_INTERFACE = re.compile(r'^\s*interface\s+"([^"\\]*)";', re.MULTILINE)
_CLIENT_ID = re.compile(r"^\s*option\s+dhcp-client-identifier\s+([^;]*);", re.MULTILINE)
# RFC 4361: 0xff, a 4-byte IAID, then a DUID (a 2-byte type and its data).
DUID_CLIENT_ID = 0xFF
ETHERNET_CLIENT_ID = 0x01
_IAID_END = 5
_DUID_DATA = 7


class Source(enum.Enum):
    """The DHCP client whose lease said it."""

    NETWORKD = "systemd-networkd"
    NETWORK_MANAGER = "NetworkManager"
    DHCPCD = "dhcpcd"
    DHCLIENT = "dhclient"


@dataclass(frozen=True, slots=True)
class DhcpClient:
    """What one interface's DHCP client sent: its client identifier, or None (none sent)."""

    interface: str
    source: Source
    client_id: bytes | None

    def duid(self) -> tuple[int, int, bytes] | None:
        """(IAID, DUID type, DUID data) when the identifier is RFC 4361's IAID + DUID."""
        cid = self.client_id
        if cid is None or len(cid) <= _DUID_DATA or cid[0] != DUID_CLIENT_ID:
            return None
        iaid = int.from_bytes(cid[1:_IAID_END], "big")
        return iaid, int.from_bytes(cid[_IAID_END:_DUID_DATA], "big"), cid[_DUID_DATA:]


def networkd_client_id(text: str) -> bytes | None:
    """CLIENTID= of a networkd (or NetworkManager internal) lease file; None if absent."""
    for line in text.split("\n"):
        key, _, value = line.partition("=")
        if key == "CLIENTID" and _HEX.fullmatch(value.strip().lower()):
            return bytes.fromhex(value.strip())
    return None


def dhclient_client_ids(text: str) -> dict[str, bytes | None]:
    """Interface -> the identifier of its last lease in a dhclient leases file (None: none
    was sent, the server keyed the lease on the MAC). A quoted (string) identifier counts
    as its bytes."""
    out: dict[str, bytes | None] = {}
    for block in _LEASE.findall(text):
        interface = _INTERFACE.search(block)
        if interface is None:
            continue
        found = _CLIENT_ID.search(block)
        value = found.group(1).strip() if found else None
        if value is None:
            out[interface.group(1)] = None
        elif _DHCLIENT_BYTES.fullmatch(value):
            out[interface.group(1)] = bytes(int(b, 16) for b in value.split(":"))
        elif len(value) >= 2 and value[0] == value[-1] == '"':  # noqa: PLR2004
            out[interface.group(1)] = value[1:-1].encode()
    return out


def _ini(text: str) -> dict[str, dict[str, str]]:
    """A keyfile's sections (NetworkManager's format): the last value of a key wins."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
        elif "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return sections


def nm_client_id_setting(uuid: str, profiles: list[str], configs: list[str]) -> str:
    """`ipv4.dhcp-client-id` of the profile with this uuid, else NetworkManager.conf's
    default for connections, else the internal client's default, `mac`."""
    for text in profiles:
        sections = _ini(text)
        if sections.get("connection", {}).get("uuid", "").lower() == uuid.lower():
            value = sections.get("ipv4", {}).get("dhcp-client-id", "")
            if value:
                return value
    default = "mac"
    for text in configs:
        for title, entries in _ini(text).items():
            if title.startswith("connection") and entries.get("ipv4.dhcp-client-id"):
                default = entries["ipv4.dhcp-client-id"]
    return default


def nm_client_id(setting: str, mac: str | None, permanent: str | None) -> tuple[bool, bytes | None]:
    """What a dhcp-client-id setting sends: (known, identifier). `mac`/`perm-mac`: 01 and the
    MAC; `none`: nothing; a hex string: those bytes; `duid`, `stable`, ...: not known here."""
    address = {"mac": mac, "perm-mac": permanent or mac}.get(setting)
    if address is not None:
        return True, bytes([ETHERNET_CLIENT_ID]) + bytes.fromhex(address.replace(":", ""))
    if setting == "none":
        return True, None
    if _HEX_ID.fullmatch(setting):
        return True, bytes.fromhex(setting.replace(":", ""))
    return False, None


def _hex_bytes(text: str) -> bytes | None:
    """Colon-separated hex bytes (dhcpcd's duid file, an iaid), else None."""
    word = text.strip()
    return bytes.fromhex(word.replace(":", "")) if _HEX_ID.fullmatch(word) else None


def _c_integer(text: str) -> int | None:
    """An unsigned integer as C's strtoul reads it with base 0 (0x: hex, 0: octal, else
    decimal), the whole word; None for anything else."""
    match = re.fullmatch(r"0[xX]([0-9a-fA-F]+)|0([0-7]*)|([1-9][0-9]*)", text)
    if match is None:
        return None
    hexa, octal, decimal = match.groups()
    return int(hexa, 16) if hexa else int(octal or "0", 8) if decimal is None else int(decimal)


def dhcpcd_iaid(value: str) -> bytes:
    """dhcpcd.conf's `iaid`, as dhcpcd parses it (if-options.c parse_iaid): a number (base 0)
    that fits 32 bits, big-endian; else the word's first four bytes, NUL-padded."""
    number = _c_integer(value)
    if number is not None and number < 1 << 32:
        return number.to_bytes(4, "big")
    return value.encode(errors="replace")[:4].ljust(4, b"\0")


def dhcpcd_client_id(
    conf: str, interface: str, mac: str | None, duid_file: str | None
) -> tuple[bool, bytes | None]:
    """What dhcpcd sent on interface, from dhcpcd.conf (global options, then the interface's
    block) and its duid file: (known, identifier)."""
    mode, iaid, block = "clientid", None, None
    for raw in conf.split("\n"):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] in ("interface", "ssid", "profile"):
            block = words[1] if words[0] == "interface" and len(words) > 1 else "\0"
            continue
        if block not in (None, interface):
            continue
        if words[0] in ("clientid", "duid"):
            # `clientid <value>` sends that value: not reproducible here.
            mode = "custom" if words[0] == "clientid" and len(words) > 1 else words[0]
        elif words[0] == "iaid" and len(words) > 1:
            iaid = dhcpcd_iaid(words[1])
    if mac is None or mode == "custom":
        return False, None
    address = bytes.fromhex(mac.replace(":", ""))
    if mode == "clientid":
        return True, bytes([ETHERNET_CLIENT_ID]) + address
    duid = _hex_bytes(duid_file or "")
    if duid is None:
        return False, None
    return True, bytes([DUID_CLIENT_ID]) + (iaid or address[-4:]) + duid
