"""Typed, validated views of `ip -N --json rule` (iproute.py's rules apply: every value is
checked before it can reach a unit; a problem raises InputError naming the file and item).
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass

from nixos_images.iproute import InterfaceNameError, IPNetwork, Item


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of `ip -N --json rule`: which table a packet is looked up in."""

    family: int
    priority: int
    source: IPNetwork | None
    destination: IPNetwork | None
    table: int
    invert: bool
    incoming: str | None  # iif
    outgoing: str | None  # oif
    action: str  # "to_tbl" (a lookup) or blackhole, unreachable, prohibit, goto, nop
    # Selectors restore-network does not carry (fwmark, uidrange, ports, ...): their names.
    others: tuple[str, ...] = ()


# What `ip -N --json rule` prints that restore-network reads; other keys are selectors it does
# not carry (the rule is then left out, see networkd.py).
_RULE_KEYS = frozenset(
    {"priority", "src", "srclen", "dst", "dstlen", "table", "not", "iif", "oif", "action",
     "flags", "protocol", "l3mdev"}
)  # fmt: skip


def rules_from(data: list[object], family: int, where: str) -> list[Rule]:
    """Parse `ip -N -4|-6 --json rule`."""
    out = []
    for n, raw in enumerate(data):
        with contextlib.suppress(InterfaceNameError):
            out.append(_rule(Item(raw, f"{where}: item {n}"), family))
    return out


def _prefix(item: Item, key: str, family: int) -> IPNetwork | None:
    value = item.opt_str(key)
    if value is None or value == "all":
        return None
    length = item.opt_int(f"{key}len")
    try:
        net = ipaddress.ip_network(
            f"{value}/{length if length is not None else (32 if family == 4 else 128)}"  # noqa: PLR2004
        )
    except ValueError:
        raise item.error(f"{key!r} is not a prefix: {value!r}/{length}") from None
    if net.version != family:
        raise item.error(f"{key!r} {value} is not IPv{family}")
    return net


def _rule(item: Item, family: int) -> Rule:
    priority = item.opt_int("priority")
    if priority is None:
        raise item.error("'priority' is required")
    others = tuple(sorted(k for k in item.raw if k not in _RULE_KEYS))
    if item.raw.get("l3mdev"):
        others = (*others, "l3mdev")
    return Rule(
        family=family,
        priority=priority,
        source=_prefix(item, "src", family),
        destination=_prefix(item, "dst", family),
        table=item.table() if "table" in item.raw else 0,
        invert="not" in item.raw,
        incoming=item.ifname("iif"),
        outgoing=item.ifname("oif"),
        action=item.word("action") or "to_tbl",
        others=others,
    )
