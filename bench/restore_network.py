"""Benchmark restore-network: start-up against bare Python, and a large dump.

Run: .venv/bin/python bench/restore_network.py  (figures go into docs/benchmarks.md)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from common import best_ms, helper, python_ms
from nixos_images.restore_network import generate
from nixos_images.state import StateDir

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "source-host"


def large_dump(root: Path, interfaces: int = 200, routes: int = 5000) -> StateDir:
    """A synthetic dump: `interfaces` NICs with two addresses each, `routes` static routes."""
    state = StateDir(root)
    state.network.mkdir(parents=True)
    links, addresses = [], []
    for i in range(interfaces):
        name = f"eth{i}"
        mac = f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"
        links.append(
            {"ifindex": i + 2, "ifname": name, "link_type": "ether", "address": mac, "mtu": 1500}
        )
        addresses.append(
            {
                "ifname": name,
                "addr_info": [
                    {
                        "family": "inet",
                        "local": f"10.{i // 256}.{i % 256}.1",
                        "prefixlen": 24,
                        "scope": "global",
                    },
                    {
                        "family": "inet6",
                        "local": f"2001:db8:{i:x}::1",
                        "prefixlen": 64,
                        "scope": "global",
                    },
                ],
            }
        )
    table = [
        {
            "dst": f"172.{16 + r // 65536 % 16}.{r // 256 % 256}.{r % 256}",
            "gateway": f"10.0.{r % interfaces}.254",
            "dev": f"eth{r % interfaces}",
            "flags": [],
        }
        for r in range(routes)
    ]
    state.links.write_text(json.dumps(links))
    state.addresses.write_text(json.dumps(addresses))
    state.routes_v4.write_text(json.dumps(table))
    state.routes_v6.write_text("[]")
    state.dns.write_text("192.0.2.53\n")
    return state


def main() -> None:
    """Print the report."""
    bare = python_ms()
    with tempfile.TemporaryDirectory() as work:
        target = Path(work) / "units"
        typical = best_ms(helper("restore_network", "--state", str(FIXTURE), str(target)))
        help_ms = best_ms(helper("restore_network", "--help"))
        big = large_dump(Path(work) / "large")
        start = time.perf_counter()
        units = generate(big)
        plan_ms = (time.perf_counter() - start) * 1000
        big_run = best_ms(helper("restore_network", "--state", str(big.root), str(target)), runs=3)
    print(f"python:          {sys.version.split()[0]}")
    print(f"bare python -c pass:             {bare:7.1f} ms")
    print(f"restore-network --help:          {help_ms:7.1f} ms")
    print(
        f"restore-network, recorded dump:  {typical:7.1f} ms  ({typical / bare:.1f}x bare python)"
    )
    print(
        f"large dump, 200 links/5000 routes: parse+plan {plan_ms:.0f} ms in-process, "
        f"whole run {big_run:.0f} ms, {len(units)} units"
    )


if __name__ == "__main__":
    main()
