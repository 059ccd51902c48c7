"""What kexec/run --dry-run shows of a plan: as JSON (--json), or as lines for a person."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from nixos_images.kexec import load, preflight
from nixos_images.terminal import printable

if TYPE_CHECKING:
    from nixos_images.kexec.plan import Plan


def report(plan: Plan) -> dict[str, Any]:
    """The dry run's findings, as --json prints them."""
    state = plan.state
    return {
        "ok": plan.ok,
        "checks": [asdict(c) for c in plan.checks],
        "image": {
            "machine": plan.image.machine,
            "kernel": str(plan.tarball / plan.image.kernel),
            "initrd": str(plan.tarball / plan.image.initrd),
            "cmdline": plan.image.cmdline,
        },
        "carry_over": None
        if state is None
        else {
            "host_keys": state.host_keys,
            "authorized_keys": [k.line() for k in state.keys],
            "dropped_options": sorted({o for k in state.keys for o in k.dropped}),
            "key_sources": state.key_sources,
            "skipped_key_lines": [asdict(s) for s in state.skipped],
            "machine_id": state.machine_id,
            "network_units": [u.name for u in state.units],
            "notes": state.notes,
        },
        "kexec": {
            "syscalls": [preflight.SYSCALL_NAMES[s] for s in plan.syscalls],
            "load_flags": list(plan.extra_flags.load),
            "exec_flags": list(plan.extra_flags.exec),
            "reserve_override_mib": None
            if plan.extra_flags.reserve is None
            else plan.extra_flags.reserve // load.MiB,
            "delay": plan.delay,
            "exec_via": plan.exec_via,
        },
    }


def render_report(data: dict[str, Any]) -> str:
    """The dry run's findings for a person: a line a check, then what is carried over."""
    lines = [f"{'ok  ' if c['ok'] else 'FAIL'}  {c['name']}: {c['detail']}" for c in data["checks"]]
    carry = data["carry_over"]
    if carry is not None:
        lines.append("carried over:")
        lines += [f"  host key  {k}" for k in carry["host_keys"]]
        lines += [f"  key       {k}" for k in carry["authorized_keys"]]
        lines += [
            f"  skipped   {s['source']}:{s['line_number']}: {s['reason']}"
            for s in carry["skipped_key_lines"]
        ]
        if carry["dropped_options"]:
            lines.append(f"  dropped   {', '.join(carry['dropped_options'])}")
        lines.append(f"  machine-id {carry['machine_id'] or '(new)'}")
        lines += [f"  network   {u}" for u in carry["network_units"]]
        lines += [f"  note      {n}" for n in carry["notes"]]
    k = data["kexec"]
    lines.append(
        f"kexec: {' then '.join(k['syscalls'])}, load flags {' '.join(k['load_flags']) or 'none'},"
        f" exec flags {' '.join(k['exec_flags']) or 'none'},"
        f" boots {k['delay']}s after loading via {k['exec_via']}"
    )
    # Paths, comments and reasons come from files someone else controls.
    return "".join(printable(line) + "\n" for line in lines)
