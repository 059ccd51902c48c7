"""kexec/run: boot this machine into the NixOS installer, keeping its ssh identity and network.

Checks first, changes nothing unless every check passes; then loads the installer with the
old system's state appended to its initrd and boots it after a delay, so that the caller
(nixos-anywhere, or you over ssh) can disconnect cleanly.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nixos_images import cli
from nixos_images.errors import HelperError, InputError
from nixos_images.kexec import collect, cpio, load, manifest, preflight
from nixos_images.layout import INITRD_STATE_DIR
from nixos_images.terminal import printable

if TYPE_CHECKING:
    from collections.abc import Iterator

PROG = "kexec/run"


@dataclass
class Plan:
    """Everything the launcher found out before it changes anything."""

    tarball: Path
    image: manifest.Manifest
    facts: preflight.Facts
    state: collect.Collected | None
    checks: list[preflight.Check]
    syscalls: list[str]
    extra_flags: load.ExtraFlags
    delay: int

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def exec_via(self) -> str:
        """How the delayed boot will be started."""
        return load.exec_method(systemd=self.facts.systemd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def make_plan(
    tarball: Path,
    *,
    extra_flags: str,
    syscall: str,
    delay: int | None,
    root: Path = Path("/"),
    facts: preflight.Facts | None = None,
    no_keys_ok: bool = False,
) -> Plan:
    """Read the tarball's manifest and the host, collect the state, run every check."""
    try:
        flags = load.split_extra_flags(shlex.split(extra_flags))
    except ValueError as e:
        raise InputError("--kexec-extra-flags", str(e)) from e
    image = manifest.load(tarball / manifest.FILE_NAME)
    facts = facts or preflight.gather(root)
    paths = [image.kernel, image.initrd, image.loader, *(t.path for t in image.tools.values())]
    missing = [p for p in paths if not (tarball / p).is_file()]
    state: collect.Collected | None = None
    problem = None
    if not missing and facts.euid == 0:
        try:
            state = collect.collect(root, os.environ, tuple(image.tool_argv(tarball, "ip")))
        except (HelperError, OSError) as e:
            problem = str(e)
    sizes = preflight.Sizes(
        kernel=_size(tarball / image.kernel),
        initrd=_size(tarball / image.initrd),
        initrd_unpacked=image.initrd_unpacked_size,
        state=state.size if state else 0,
        reserve=image.reserve if flags.reserve is None else flags.reserve,
    )
    checks = preflight.check(facts, image.machine, sizes, missing, syscall)
    checks.append(pending_check(root))
    if not missing:
        checks.append(space_check(tarball, sizes))
    if problem is not None:
        checks.append(
            preflight.Check("state", ok=False, detail=f"cannot read the host's state: {problem}")
        )
    elif state is not None:
        checks.append(preflight.Check("state", ok=True, detail=summary(state)))
        checks.append(keys_check(state, image, no_keys_ok=no_keys_ok))
    return Plan(
        tarball=tarball,
        image=image,
        facts=facts,
        state=state,
        checks=checks,
        syscalls=preflight.syscall_order(syscall, facts),
        extra_flags=flags,
        delay=image.delay if delay is None else delay,
    )


def pending_check(root: Path) -> preflight.Check:
    """An image already loaded: an earlier kexec/run's boot is pending (or someone else's)."""
    try:
        loaded = (root / "sys/kernel/kexec_loaded").read_text().strip() == "1"
    except OSError:
        loaded = False
    if not loaded:
        return preflight.Check("pending", ok=True, detail="no kexec image loaded yet")
    return preflight.Check(
        "pending",
        ok=False,
        detail="a kexec image is already loaded (an earlier kexec/run's boot is pending):"
        " wait for it, or drop it with `kexec -u` and run this again",
    )


# Beyond the initrd copy: the cpio's headers and padding, and the file system's own needs.
SPACE_MARGIN = 8 << 20


def space_check(tarball: Path, sizes: preflight.Sizes) -> preflight.Check:
    """Room beside the tarball for the initrd copy with the state appended (written first)."""
    need = sizes.initrd + sizes.state + SPACE_MARGIN
    try:
        free = shutil.disk_usage(tarball).free
    except OSError as e:
        return preflight.Check("space", ok=False, detail=f"{tarball}: {e.strerror}")
    if free >= need:
        return preflight.Check("space", ok=True, detail=f"{free >> 20} MiB free in {tarball}")
    return preflight.Check(
        "space",
        ok=False,
        detail=f"{tarball} has {free >> 20} MiB free, the initrd with the state needs"
        f" {need >> 20} MiB: free some space there, or unpack the tarball where there is more",
    )


def keys_check(
    state: collect.Collected, image: manifest.Manifest, *, no_keys_ok: bool
) -> preflight.Check:
    """No ssh key carried over and no console password: nobody could log in after the kexec,
    and the machine would stay unreachable until someone power-cycles it."""
    if state.keys:
        return preflight.Check("keys", ok=True, detail=f"{len(state.keys)} authorized keys")
    if image.console_password:
        return preflight.Check("keys", ok=True, detail="none; the console shows a root password")
    if no_keys_ok:
        return preflight.Check("keys", ok=True, detail="none, and --no-keys-ok was given")
    sources = ", ".join(state.key_sources) or "none of root's or the sudo user's key files"
    command = (
        f"; your logins came from {state.keys_command}, which the installer cannot ask"
        if state.keys_command
        else ""
    )
    return preflight.Check(
        "keys",
        ok=False,
        detail=f"no usable ssh key would be carried over (read: {sources}{command}) and this"
        " installer has no console password: add your key to /root/.ssh/authorized_keys, or"
        " pass --no-keys-ok if you can reach the console",
    )


def summary(state: collect.Collected) -> str:
    """One line on what is carried over."""
    return (
        f"{len(state.host_keys)} host key files, {len(state.keys)} authorized keys,"
        f" {len(state.units)} network units, machine-id {'kept' if state.machine_id else 'new'}"
    )


def state_archive(state: collect.Collected) -> bytes:
    """The state as the cpio archive appended to the initrd."""
    members = [
        cpio.Member.file(str(INITRD_STATE_DIR / path), data, mode)
        for path, (data, mode) in sorted(state.files.items())
    ]
    return cpio.archive(members)


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


def write_initrd(initrd: Path, state: collect.Collected, workdir: Path) -> Path:
    """The installer's initrd with the state appended, readable by root only."""
    path = workdir / "initrd"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, initrd.open("rb") as original:
        cpio.append(out, original, state_archive(state))
    return path


class SignalledError(HelperError):
    """SIGTERM or SIGHUP (a dropped ssh connection) while launching."""

    exit_code = 130


@contextlib.contextmanager
def undone_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise SignalledError, as SIGINT raises KeyboardInterrupt, so that what
    launch changed (the state copy, a loaded image) is undone on the way out."""

    def interrupted(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        raise SignalledError(f"stopped by {name}: the host is as it was, nothing will boot")

    previous = {s: signal.signal(s, interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# Where the launcher's lock lives: /run (root's tmpfs), else beside the tarball.
LOCK_NAME = "nixos-images-kexec.lock"
LOCK_DIRS = (Path("/run"),)


@contextlib.contextmanager
def only_launcher(tarball: Path) -> Iterator[None]:
    """One launcher at a time: a second refuses while the first loads and schedules. After
    that, the loaded image itself keeps the next one out (the "pending" check)."""
    for directory in (*LOCK_DIRS, tarball):
        try:
            fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            break
        except OSError:
            continue
    else:
        raise HelperError(f"cannot create {LOCK_NAME} in /run or {tarball}")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise HelperError(
                "another kexec/run is loading the installer right now: wait for it to finish"
            ) from e
        yield
    finally:
        os.close(fd)


def launch(plan: Plan) -> str:
    """Load the installer and schedule the boot; on any failure, or SIGINT, SIGTERM or SIGHUP
    before the boot is scheduled, the host is left as it was."""
    if not plan.ok or plan.state is None:
        raise HelperError("refusing to launch: not every check passed")
    kexec = plan.image.tool_argv(plan.tarball, "kexec")
    with undone_on_signals(), only_launcher(plan.tarball):
        # Beside the tarball: the user made room for it there; it holds secrets, so 0700.
        workdir = Path(tempfile.mkdtemp(prefix=".state-", dir=plan.tarball))
        try:
            image = load.Image(
                kernel=plan.tarball / plan.image.kernel,
                initrd=write_initrd(plan.tarball / plan.image.initrd, plan.state, workdir),
                cmdline=plan.image.cmdline,
            )
            syscall = _load(plan, kexec, image)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        try:
            command = load.exec_command(kexec, plan.delay, plan.extra_flags)
            how = load.schedule(command, systemd=plan.facts.systemd)
        except BaseException:
            load.unload(kexec, syscall)
            raise
    return f"loaded with {preflight.SYSCALL_NAMES[syscall]}, boot scheduled via {how}"


def _load(plan: Plan, kexec: list[str], image: load.Image) -> str:
    try:
        return load.load(kexec, plan.syscalls, image, plan.extra_flags.load)
    except SignalledError:
        _unload_any(plan, kexec)
        raise
    except HelperError as e:
        if preflight.locked_down(plan.facts):
            hint = (
                f"; kernel lockdown ({plan.facts.lockdown}) only kexecs kernels signed by a key"
                " this host trusts: disable Secure Boot in the firmware, then run this again"
            )
            raise HelperError(f"{e}{hint}") from e
        raise
    except BaseException:
        _unload_any(plan, kexec)
        raise


def _unload_any(plan: Plan, kexec: list[str]) -> None:
    """Interrupted while kexec was loading: it may have finished. Unload, whichever it was."""
    for syscall in plan.syscalls:
        load.unload(kexec, syscall)


app = cli.new_app(__doc__ or "")


@app.command()
def run(
    tarball: Annotated[
        Path | None,
        typer.Option(
            "--tarball-dir",
            help="The unpacked kexec/ directory (kexec/run passes its own).",
            show_default=False,
        ),
    ] = None,
    kexec_extra_flags: Annotated[
        str,
        typer.Option(
            help="More arguments for kexec, in sh quoting: --no-sync, -x/--no-ifdown go to"
            " `kexec --exec`, -d to both, the rest to `kexec --load` (docs/kexec.md)."
        ),
    ] = "",
    syscall: Annotated[
        str,
        typer.Option(
            help="auto: kexec_file_load first on Linux >= 6.1, else kexec_load, falling back"
            " to the other; file or load: only that one."
        ),
    ] = "auto",
    delay: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seconds between loading and booting the installer (default: the tarball's, 6).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report what would be carried over.")
    ] = False,
    no_keys_ok: Annotated[
        bool,
        typer.Option(
            "--no-keys-ok",
            help="Go ahead even when no ssh key is carried over (you can reach the console).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: print JSON.")] = False,
    debug: cli.DebugOption = False,
) -> None:
    """Boot into the NixOS installer, keeping ssh host keys, authorized keys, network and
    machine-id. Changes nothing unless every check passes."""
    cli.setup(debug=debug)
    if tarball is None:
        raise InputError("--tarball-dir", "missing: start the launcher through kexec/run")
    if syscall not in {"auto", *preflight.SYSCALLS}:
        raise InputError("--syscall", f"{syscall!r} is not one of auto, file, load")
    plan = make_plan(
        tarball,
        extra_flags=kexec_extra_flags,
        syscall=syscall,
        delay=delay,
        no_keys_ok=no_keys_ok,
    )
    if dry_run:
        data = report(plan)
        sys.stdout.write(json.dumps(data, indent=2) + "\n" if as_json else render_report(data))
        raise typer.Exit(0 if plan.ok else 1)
    failed = [c for c in plan.checks if not c.ok]
    if failed:
        for c in failed[:-1]:
            sys.stderr.write(f"{PROG}: {c.detail}\n")
        raise HelperError(failed[-1].detail)
    how = launch(plan)
    if plan.state is not None:
        sys.stdout.write(f"{PROG}: carried over {summary(plan.state)}\n")
        for note in plan.state.notes:
            sys.stdout.write(f"{PROG}: note: {note}\n")
        for line in plan.state.skipped:
            sys.stdout.write(f"{PROG}: skipped {line.source}:{line.line_number}: {line.reason}\n")
    sys.stdout.write(f"{PROG}: {how}\n")
    sys.stdout.write(f"machine will boot into nixos in {plan.delay}s...\n")
    sys.stdout.flush()


def main() -> None:
    """Entry point of kexec/run (through the tarball's bundled interpreter)."""
    cli.run(lambda: app(prog_name=PROG), PROG)


if __name__ == "__main__":
    main()
