"""How the old host identified itself to its DHCP server: lease files as the clients write them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from nixos_images import dhcp, iproute
from nixos_images.kexec import collect

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
    (root / "var/lib/NetworkManager").mkdir(parents=True)
    (root / "var/lib/NetworkManager/internal-1234-eth2.lease").write_text(
        "CLIENTID=01020000000004\n"
    )
    (root / "var/lib/NetworkManager/internal-5678-eth3.lease").symlink_to("/etc/shadow")
    found = collect.dhcp_clients(root, links("eth0", "eth1", "eth2", "eth3"))
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
    assert collect.drivers(tmp_path, links("eth0", "veth0")) == {"eth0": "hv_netvsc"}
