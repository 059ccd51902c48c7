"""kexec/run: boot this machine into the NixOS installer, keeping its ssh identity and network.

Checks first, changes nothing unless every check passes; then loads the installer with the
old system's state appended to its initrd and boots it after a delay, so that the caller
(nixos-anywhere, or you over ssh) can disconnect cleanly.

This module is the command line and the launch: one launcher at a time, signals undo what
was done, a failed load or schedule leaves the host as it was. The plan is plan's, its
checks preflight's, the dry run's report report's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nixos_images import cli
from nixos_images.errors import HelperError, InputError
from nixos_images.kexec import load, preflight
from nixos_images.kexec.models import Syscall, SyscallChoice
from nixos_images.kexec.plan import Plan, make_plan, write_initrd
from nixos_images.kexec.preflight import summary
from nixos_images.kexec.report import render_report, report
from nixos_images.layout import KEXEC_DELAY

if TYPE_CHECKING:
    from collections.abc import Iterator

PROG = "kexec/run"


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
        # What a killed earlier run (SIGKILL, the OOM killer) left: a copy of the host's keys.
        # No other launcher runs (the lock), so none of these is in use.
        for left in plan.tarball.glob(".state-*"):
            shutil.rmtree(left, ignore_errors=True)
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
            load.unload(kexec, syscall, plan.extra_flags)
            raise
    return f"loaded with {syscall.kernel_name}, boot scheduled via {how}"


def _load(plan: Plan, kexec: list[str], image: load.Image) -> Syscall:
    try:
        return load.load(kexec, plan.syscalls, image, plan.extra_flags)
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
        load.unload(kexec, syscall, plan.extra_flags)


app = cli.new_app(__doc__ or "")


@app.command()
def run(
    tarball: Annotated[
        Path | None,
        typer.Option(
            "--tarball-dir",
            help="The unpacked kexec/ directory (kexec/run passes its own).",
            show_default=False,
            hidden=True,
        ),
    ] = None,
    kexec_extra_flags: Annotated[
        str,
        typer.Option(
            help="More arguments for kexec, in sh quoting, each where kexec-tools means it:"
            " --no-sync to every kexec run, --append= added to the installer's command line,"
            " -s/-c/-a as --syscall, -x to `kexec --exec`, the rest to `kexec --load`; and"
            " kexec/run's own --nixos-images-... tokens (docs/kexec.md)."
        ),
    ] = "",
    syscall: Annotated[
        str,
        typer.Option(
            metavar="[auto|file|load]",
            help="auto: kexec_file_load first on Linux >= 6.1, else kexec_load, falling back"
            " to the other; file or load: only that one.",
        ),
    ] = "auto",
    delay: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seconds between loading and booting the installer (default: the tarball's,"
            f" {KEXEC_DELAY} unless it was built otherwise).",
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
    ssh_key: Annotated[
        list[str] | None,
        typer.Option(
            "--ssh-key",
            metavar="KEY|FILE",
            help="An ssh public key (or a file of them) the installer's root accepts too,"
            " beside the old host's; repeatable.",
            show_default=False,
        ),
    ] = None,
    deadman: Annotated[
        str | None,
        typer.Option(
            "--deadman",
            metavar="MINUTES|off",
            help="Reboot back to this system when nobody has logged into the installer (ssh or"
            " console) this many minutes after it booted, and no disk was touched; off: never"
            " (default: the image's, on in the unattended one).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: print JSON.")] = False,
    show_units: Annotated[
        bool,
        typer.Option(
            "--show-units",
            help="With --dry-run: also print every networkd unit the installer will write.",
        ),
    ] = False,
    debug: cli.DebugOption = False,
    version: cli.VersionOption = False,  # noqa: ARG001 - its callback prints and exits
) -> None:
    """Boot into the NixOS installer, keeping ssh host keys, authorized keys, network and
    machine-id. Changes nothing unless every check passes."""
    cli.setup(debug=debug)
    if tarball is None:
        raise InputError("--tarball-dir", "missing: start the launcher through kexec/run")
    _check_options(syscall, dry_run=dry_run, as_json=as_json, show_units=show_units)
    plan = make_plan(
        tarball,
        extra_flags=kexec_extra_flags,
        syscall=SyscallChoice(syscall),
        delay=delay,
        no_keys_ok=no_keys_ok,
        ssh_keys=ssh_key or (),
        deadman=deadman,
    )
    if dry_run:
        data = report(plan, units=show_units)
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


def _check_options(syscall: str, *, dry_run: bool, as_json: bool, show_units: bool) -> None:
    """What typer does not check: --syscall's word, and the options only a dry run takes."""
    if syscall not in set(SyscallChoice):
        raise InputError("--syscall", f"{syscall!r} is not one of auto, file, load")
    for flag, given in (("--json", as_json), ("--show-units", show_units)):
        if given and not dry_run:
            raise InputError(flag, "only with --dry-run: without it, kexec/run boots the installer")


def main() -> None:
    """Entry point of kexec/run (through the tarball's bundled interpreter)."""
    cli.run(lambda: app(prog_name=PROG), PROG)


if __name__ == "__main__":
    main()
