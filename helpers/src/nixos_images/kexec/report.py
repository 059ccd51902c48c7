"""What kexec/run --dry-run shows of a plan: as JSON (--json), or as lines for a person.

The JSON's shape is Report's (docs/kexec.md shows an example); a key is added, never renamed
or removed, since scripts read it.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, NotRequired, TypedDict

from nixos_images.kexec import load
from nixos_images.sizes import MiB
from nixos_images.terminal import printable

if TYPE_CHECKING:
    from nixos_images.kexec.plan import Plan


class CheckJSON(TypedDict):
    """One check: its name, whether it passed, the line a person reads."""

    name: str
    ok: bool
    detail: str


class ImageJSON(TypedDict):
    """The installer the tarball holds."""

    machine: str
    kernel: str
    initrd: str
    cmdline: str


class SkippedJSON(TypedDict):
    """An authorized_keys line left out, and why."""

    source: str
    line_number: int
    reason: str


class CarryOverJSON(TypedDict):
    """What the installer gets from the old host."""

    host_keys: list[str]
    authorized_keys: list[str]
    dropped_options: list[str]
    key_sources: list[str]
    skipped_key_lines: list[SkippedJSON]
    machine_id: str | None
    network_units: list[str]
    notes: list[str]


class KexecJSON(TypedDict):
    """How the installer would be loaded and booted."""

    syscalls: list[str]
    load_flags: list[str]
    exec_flags: list[str]
    reserve_override_mib: int | None
    delay: int
    exec_via: str
    cmdline: str  # the installer's, with what --append= added
    load_command: list[str]  # with the first syscall; the initrd is the copy with the state
    exec_command: list[str]
    sync: bool  # whether the old system is synced before the boot


class Report(TypedDict):
    """kexec/run --dry-run --json."""

    ok: bool
    checks: list[CheckJSON]
    image: ImageJSON
    carry_over: CarryOverJSON | None
    kexec: KexecJSON
    unit_files: NotRequired[dict[str, str]]  # with --show-units: name -> text


# Where the launcher writes the initrd with the state (a new directory beside the tarball).
INITRD_COPY = ".state-XXXXXXXX/initrd"


def report(plan: Plan, *, units: bool = False) -> Report:
    """The dry run's findings, as --json prints them; with units, the unit files too."""
    state = plan.state
    kexec = plan.image.tool_argv(plan.tarball, "kexec")
    image = load.Image(
        kernel=plan.tarball / plan.image.kernel,
        initrd=plan.tarball / INITRD_COPY,
        cmdline=plan.image.cmdline,
    )
    data: Report = {
        "ok": plan.ok,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in plan.checks],
        "image": {
            "machine": plan.image.machine,
            "kernel": str(plan.tarball / plan.image.kernel),
            "initrd": str(plan.tarball / plan.image.initrd),
            "cmdline": plan.image.cmdline,
        },
        "carry_over": None
        if state is None
        else {
            "host_keys": list(state.host_keys),
            "authorized_keys": [k.line() for k in state.keys],
            "dropped_options": sorted({o for k in state.keys for o in k.dropped}),
            "key_sources": list(state.key_sources),
            "skipped_key_lines": [
                {"source": s.source, "line_number": s.line_number, "reason": s.reason}
                for s in state.skipped
            ],
            "machine_id": state.machine_id,
            "network_units": [u.name for u in state.units],
            "notes": list(state.notes),
        },
        "kexec": {
            "syscalls": [s.kernel_name for s in plan.syscalls],
            "load_flags": list(plan.extra_flags.load),
            "exec_flags": list(plan.extra_flags.exec),
            "reserve_override_mib": None
            if plan.extra_flags.reserve is None
            else plan.extra_flags.reserve // MiB,
            "delay": plan.delay,
            "exec_via": plan.exec_via,
            "cmdline": load.command_line(image, plan.extra_flags),
            "load_command": load.load_argv(kexec, plan.syscalls[0], image, plan.extra_flags),
            "exec_command": load.exec_argv(kexec, plan.extra_flags),
            "sync": plan.extra_flags.sync,
        },
    }
    if units:
        data["unit_files"] = {u.name: u.text for u in state.units} if state else {}
    return data


def render_report(data: Report) -> str:
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
    lines.append(f"load: {shlex.join(k['load_command'])}")
    lines.append(f"boot: {'' if k['sync'] else '(no sync) '}{shlex.join(k['exec_command'])}")
    lines.append(
        f"kexec: {' then '.join(k['syscalls'])}, load flags {' '.join(k['load_flags']) or 'none'},"
        f" exec flags {' '.join(k['exec_flags']) or 'none'},"
        f" boots {k['delay']}s after loading via {k['exec_via']}"
    )
    for name, text in data.get("unit_files", {}).items():
        lines.append(f"--- {name}")
        lines += text.splitlines()
    # Paths, comments and reasons come from files someone else controls.
    return "".join(printable(line) + "\n" for line in lines)
