"""How the old host identified itself to its DHCP server: lease files as the clients write them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from nixos_images import dhcp, iproute
from nixos_images.kexec import network

if TYPE_CHECKING:
    from pathlib import Path

# As ISC dhclient 4.4 writes /var/lib/dhcp/dhclient.leases: the older eth0 lease sent an
# identifier, the newer did not; eth1's sent one.
DHCLIENT = """\
default-duid "\\000\\001\\000\\001+\\216\\372\\030\\002\\000\\000\\000\\003\\003";
lease {
  interface "eth0";
  fixed-address 10.77.0.120;
  option subnet-mask 255.255.255.0;
  option dhcp-client-identifier 1:2:0:0:0:3:3;
  renew 3 2026/12/02 11:02:01;
}
lease {
  interface "eth0";
  fixed-address 10.77.0.121;
  option subnet-mask 255.255.255.0;
  option dhcp-lease-time 3600;
  renew 3 2026/12/02 11:32:01;
}
lease {
  interface "eth1";
  fixed-address 10.78.0.5;
  option dhcp-client-identifier ff:0:0:3:4:0:1:0:1:2b:8e:fa:18:2:0:0:0:3:4;
}
"""
# As systemd-networkd 252 writes /run/systemd/netif/leases/<ifindex> (abridged).
NETWORKD = """\
# This is private data. Do not parse.
ADDRESS=10.77.0.135
NETMASK=255.255.255.0
ROUTER=10.77.0.1
SERVER_ADDRESS=10.77.0.1
LIFETIME=3600
CLIENTID=ffb07d359800020000ab110033bdebf95e192c
"""


def test_dhclient_leases_the_last_one_of_each_interface_counts() -> None:
    assert dhcp.dhclient_client_ids(DHCLIENT) == {
        "eth0": None,  # none sent: the server keyed it on the MAC
        "eth1": bytes.fromhex("ff00000304000100012b8efa18020000000304"),
    }


def test_networkd_lease_client_id_and_its_duid() -> None:
    client_id = dhcp.networkd_client_id(NETWORKD)
    assert client_id == bytes.fromhex("ffb07d359800020000ab110033bdebf95e192c")
    client = dhcp.DhcpClient("eth0", dhcp.Source.NETWORKD, client_id)
    assert client.duid() == (0xB07D3598, 2, bytes.fromhex("0000ab110033bdebf95e192c"))
    assert dhcp.networkd_client_id("ADDRESS=10.0.0.1\nCLIENTID=zz\n") is None


UUID = "5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03"
# As NetworkManager 1.42 writes its internal client's lease: no identifier in it.
NM_LEASE = "# This is private data. Do not parse.\nADDRESS=10.77.0.140\n"


def nm_profile(uuid: str, client_id: str | None) -> str:
    ipv4 = f"dhcp-client-id={client_id}\n" if client_id else ""
    return (
        f"[connection]\nid=System eth0\nuuid={uuid}\ntype=ethernet\ninterface-name=eth0\n\n"
        f"[ipv4]\nmethod=auto\n{ipv4}"
    )


UNKNOWN = b"unknown"  # a marker: no identity can be recorded


@pytest.mark.parametrize(
    ("setting", "conf", "expected"),
    [
        (None, None, bytes.fromhex("01020000000002")),  # the internal client's default: mac
        ("perm-mac", None, bytes.fromhex("010a0000000002")),
        ("none", None, None),
        ("01:aa:bb:cc:dd:ee:ff", None, bytes.fromhex("01aabbccddeeff")),
        (None, "[connection-dhcp]\nipv4.dhcp-client-id=none\n", None),  # the global default
        ("duid", None, UNKNOWN),  # from a DUID NetworkManager keeps to itself
    ],
)
def test_network_managers_identity_comes_from_the_leases_profile(
    tmp_path: Path, setting: str | None, conf: str | None, expected: bytes | None
) -> None:
    nm = tmp_path / "var/lib/NetworkManager"
    nm.mkdir(parents=True)
    (nm / f"internal-{UUID}-eth0.lease").write_text(NM_LEASE)
    profiles = tmp_path / "etc/NetworkManager/system-connections"
    profiles.mkdir(parents=True)
    (profiles / "other.nmconnection").write_text(nm_profile(UUID.replace("5", "6"), "none"))
    (profiles / "eth0.nmconnection").write_text(nm_profile(UUID, setting))
    if conf is not None:
        (tmp_path / "etc/NetworkManager/NetworkManager.conf").write_text(conf)
    link = iproute.Link(2, "eth0", "ether", "02:00:00:00:00:02", "0a:00:00:00:00:02", 1500, None)
    found = network.dhcp_clients(tmp_path, [link])
    if expected is UNKNOWN:
        assert found == []  # nothing recorded: networkd's default applies
    else:
        assert found == [dhcp.DhcpClient("eth0", dhcp.Source.NETWORK_MANAGER, expected)]


def links(*names: str) -> list[iproute.Link]:
    return [
        iproute.Link(i, name, "ether", f"02:00:00:00:00:0{i}", None, 1500, None)
        for i, name in enumerate(names, start=2)
    ]


def test_the_running_clients_lease_wins_and_hostile_files_are_passed_over(tmp_path: Path) -> None:
    root = tmp_path
    (root / "run/systemd/netif/leases").mkdir(parents=True)
    (root / "run/systemd/netif/leases/2").write_text(NETWORKD)  # eth0's ifindex
    (root / "var/lib/dhcp").mkdir(parents=True)
    (root / "var/lib/dhcp/dhclient.leases").write_text(DHCLIENT)
    os.mkfifo(root / "var/lib/dhcp/dhclient.eth9.leases")  # would hang a plain read
    nm = root / "var/lib/NetworkManager"
    nm.mkdir(parents=True)
    (nm / f"internal-{UUID}-eth2.lease").write_text(
        "CLIENTID=01020000000004\n"
    )  # an older NetworkManager's
    (nm / f"internal-{UUID.replace('1', '2')}-eth3.lease").symlink_to("/etc/shadow")
    found = network.dhcp_clients(root, links("eth0", "eth1", "eth2", "eth3"))
    assert found == [
        dhcp.DhcpClient(
            "eth0", dhcp.Source.NETWORKD, bytes.fromhex(NETWORKD.split("CLIENTID=")[1])
        ),
        dhcp.DhcpClient("eth2", dhcp.Source.NETWORK_MANAGER, bytes.fromhex("01020000000004")),
        dhcp.DhcpClient(
            "eth1", dhcp.Source.DHCLIENT, bytes.fromhex("ff00000304000100012b8efa18020000000304")
        ),
    ]


def test_drivers_come_from_sysfs_and_virtual_links_have_none(tmp_path: Path) -> None:
    net = tmp_path / "sys/class/net"
    (net / "eth0/device").mkdir(parents=True)
    (net / "eth0/device/driver").symlink_to("../../../bus/vmbus/drivers/hv_netvsc")
    (net / "veth0").mkdir()
    assert network.drivers(tmp_path, links("eth0", "veth0")) == {"eth0": "hv_netvsc"}


# As Debian's dhcpcd 9 package ships /etc/dhcpcd.conf (abridged), and its duid file.
DHCPCD_CONF = """\
# Use the hardware address of the interface for the Client ID.
#clientid
# or
# Use the same DUID + IAID as set in DHCPv6 for DHCPv4 ClientID as per RFC4361.
duid
persistent
option rapid_commit
"""
DUID = "00:01:00:01:2b:8e:fa:18:02:00:00:00:00:02\n"
DUID_BYTES = "000100012b8efa18020000000002"


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        # duid: 0xff, the MAC's last 4 bytes as the IAID, the DUID from the file.
        (DHCPCD_CONF, "ff00000002" + DUID_BYTES),
        # clientid, dhcpcd's default: 01 and the MAC.
        ("clientid\n", "01020000000002"),
        ("", "01020000000002"),
        # the interface's own block counts, with its iaid; another interface's does not.
        (DHCPCD_CONF + "interface eth0\n  iaid 7\n", "ff00000007" + DUID_BYTES),
        (DHCPCD_CONF + "interface eth1\n  clientid\n", "ff00000002" + DUID_BYTES),
        # an identifier of its own making: not reproducible, nothing recorded.
        ("clientid my-box\n", None),
    ],
)
def test_dhcpcd_identity_from_its_conf_and_duid_file(
    tmp_path: Path, conf: str, expected: str | None
) -> None:
    (tmp_path / "var/lib/dhcpcd").mkdir(parents=True)
    (tmp_path / "var/lib/dhcpcd/eth0.lease").write_bytes(b"\x02\x01 a binary DHCP ACK")
    (tmp_path / "var/lib/dhcpcd/duid").write_text(DUID)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/dhcpcd.conf").write_text(conf)
    link = iproute.Link(2, "eth0", "ether", "02:00:00:00:00:02", None, 1500, None)
    found = network.dhcp_clients(tmp_path, [link])
    if expected is None:
        assert found == []
    else:
        assert found == [dhcp.DhcpClient("eth0", dhcp.Source.DHCPCD, bytes.fromhex(expected))]


@pytest.mark.parametrize(
    ("word", "iaid"),
    [
        ("7", b"\x00\x00\x00\x07"),
        ("010", b"\x00\x00\x00\x08"),  # base 0, as C reads it: octal
        ("0x10", b"\x00\x00\x00\x10"),
        ("0", b"\x00\x00\x00\x00"),
        ("4294967295", b"\xff\xff\xff\xff"),
        ("4294967296", b"4294"),  # past 32 bits: a string, its first four bytes
        ("08", b"08\x00\x00"),  # not octal: a string, NUL-padded
        ("eth0", b"eth0"),
    ],
)
def test_dhcpcd_reads_iaid_as_dhcpcd_does(word: str, iaid: bytes) -> None:
    """Never a traceback for what a host's dhcpcd.conf holds (iaid 010 once was one)."""
    assert dhcp.dhcpcd_iaid(word) == iaid
    known, client_id = dhcp.dhcpcd_client_id(
        f"duid\niaid {word}\n", "eth0", "02:00:00:00:00:01", "00:01:02"
    )
    assert known
    assert client_id == bytes([dhcp.DUID_CLIENT_ID]) + iaid + bytes.fromhex("000102")
