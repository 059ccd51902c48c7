"""Which routes and rules come back, and where the old host's packets went
(nixos_images.routing).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from nixos_images import iproute, iprule, routing


def route(dst: str, dev: str | None, table: int = 254, kind: str = "unicast") -> iproute.Route:
    network = ipaddress.ip_network(dst)
    return iproute.Route(network.version, kind, network, None, dev, None, None, None,
                         onlink=False, mtu=None, source=None, table=table)  # fmt: skip


def rule(priority: int, table: int, **kw: Any) -> iprule.Rule:
    fields: dict[str, Any] = {"source": None, "destination": None, "invert": False,
                              "incoming": None, "outgoing": None, "action": "to_tbl"}  # fmt: skip
    fields.update(kw)
    return iprule.Rule(4, priority, table=table, **fields)


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
    rules: list[iprule.Rule], routes: list[iproute.Route], dev: str | None
) -> None:
    found = routing.route_lookup(ipaddress.ip_address("1.1.1.1"), rules, routes)
    assert (found.device if found else None) == dev
