"""A DHCPv4 client that sends no client identifier, as ISC dhclient does by default (the server
then keys the lease on the MAC): `ip netns exec NS python3 dhcp_client.py IFACE`.

DISCOVER, OFFER, REQUEST, ACK with the broadcast flag, then the lease as a dynamic address
(`ip addr replace ... valid_lft <lease>`), as a distribution's hook script adds it; it keeps
running (the test stops it), like a client waiting to renew.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import subprocess
import sys
import time

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK = 1, 2, 3, 5


def message(kind: int, xid: int, mac: bytes, extra: dict[int, bytes]) -> bytes:
    """A BOOTREQUEST with the broadcast flag; options 53, extra, 55 (no 61)."""
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                         bytes(4), bytes(4), bytes(4), bytes(4), mac.ljust(16, b"\0"),
                         bytes(64), bytes(128))  # fmt: skip
    options = bytes([53, 1, kind])
    for code, value in extra.items():
        options += bytes([code, len(value)]) + value
    options += bytes([55, 3, 1, 3, 51, 255])
    return header + MAGIC + options


def options_of(packet: bytes) -> dict[int, bytes]:
    out, i = {}, 240
    while i < len(packet) and packet[i] != 255:
        if packet[i] == 0:
            i += 1
            continue
        code, length = packet[i], packet[i + 1]
        out[code] = packet[i + 2 : i + 2 + length]
        i += 2 + length
    return out


def exchange(
    sock: socket.socket, packet: bytes, xid: int, want: int
) -> tuple[bytes, dict[int, bytes]]:
    for _ in range(30):
        sock.sendto(packet, ("255.255.255.255", 67))
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                reply = sock.recv(4096)
            except TimeoutError:
                break
            opts = options_of(reply)
            if struct.unpack("!I", reply[4:8])[0] == xid and opts.get(53) == bytes([want]):
                return reply, opts
    sys.exit("no answer from a DHCP server")


def main() -> None:
    interface = sys.argv[1]
    mac = bytes.fromhex(open(f"/sys/class/net/{interface}/address").read().strip().replace(":", ""))  # noqa: PTH123, SIM115
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    sock.bind(("0.0.0.0", 68))  # noqa: S104
    sock.settimeout(0.5)
    xid = int.from_bytes(os.urandom(4), "big")
    offer, opts = exchange(sock, message(DISCOVER, xid, mac, {}), xid, OFFER)
    address = offer[16:20]
    request = message(REQUEST, xid, mac, {50: address, 54: opts[54]})
    ack, opts = exchange(sock, request, xid, ACK)
    prefix = ipaddress.ip_network(f"0.0.0.0/{socket.inet_ntoa(opts[1])}").prefixlen
    lease = str(struct.unpack("!I", opts[51])[0])
    ip = f"{socket.inet_ntoa(ack[16:20])}/{prefix}"
    subprocess.run(["ip", "addr", "replace", ip, "dev", interface, "valid_lft", lease,
                    "preferred_lft", lease], check=True)  # fmt: skip
    print(f"bound {ip} for {lease} s", flush=True)  # noqa: T201
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
