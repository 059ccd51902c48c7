"""restore-network: bring back the old system's network as systemd-networkd units."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nixos_images import cli, networkd, nixos_network
from nixos_images.errors import HelperError
from nixos_images.layout import INSTALLER_STATE_DIR, NETWORK_MODULE
from nixos_images.networkd_units import UNIT_PREFIX, Unit
from nixos_images.state import StateDir, read_network_dir

if TYPE_CHECKING:
    from collections.abc import Sequence

# Runtime units: networkd reads them before /etc, and they vanish on reboot.
DEFAULT_TARGET = Path("/run/systemd/network")


def generate(state: StateDir) -> tuple[Unit, ...]:
    """Read the network part of a state directory and plan the units; raises InputError."""
    return networkd.plan(read_network_dir(state)).units


ORIGIN = "the system kexec/run came from"


def write_module(text: str, path: Path) -> None:
    """Write the NixOS module atomically: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)


def write_units(units: Sequence[Unit], target: Path) -> None:
    """Write units into target: staged in a hidden directory beside them, then renamed in.

    Each file is replaced atomically; files an earlier run wrote and this one does not are
    removed afterwards, so running twice never leaves stale units behind. Other files in
    target (systemd-network-generator's, say) are left alone.
    """
    if target.exists() and not target.is_dir():
        raise HelperError(f"{target}: exists and is not a directory")
    target.mkdir(parents=True, exist_ok=True)
    # A run that was killed leaves its staging directory; only one runs at a time (a oneshot
    # unit), so any other one is stale.
    # (Files only, as this function writes them; shutil stays off restore-network's start.)
    for stale in target.glob(".restore-network.*"):
        if stale.is_dir() and not stale.is_symlink():
            for leftover in stale.iterdir():
                leftover.unlink(missing_ok=True)
            stale.rmdir()
    staging = target / f".restore-network.{os.getpid()}"
    staging.mkdir()
    try:
        for unit in units:
            fd = os.open(staging / unit.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(unit.text)
                f.flush()
                os.fsync(f.fileno())
        for unit in units:
            (staging / unit.name).replace(target / unit.name)
        names = {unit.name for unit in units}
        for old in target.glob(f"{UNIT_PREFIX}*"):
            if old.name not in names:
                old.unlink(missing_ok=True)
        dir_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        for leftover in staging.iterdir():  # only after a failure
            leftover.unlink()
        staging.rmdir()


app = cli.new_app(__doc__ or "")


@app.command()
def restore_network(
    target: Annotated[
        Path, typer.Argument(help="Directory to write the units into.")
    ] = DEFAULT_TARGET,
    state_dir: Annotated[
        Path, typer.Option("--state", help="State directory saved by the kexec launcher.")
    ] = INSTALLER_STATE_DIR,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the units instead of writing them.")
    ] = False,
    emit_nixos: Annotated[
        bool,
        typer.Option(
            "--emit-nixos",
            help="Print the units as a NixOS module for the installed system, write nothing.",
        ),
    ] = False,
    nixos_module: Annotated[
        Path | None,
        typer.Option(
            "--nixos-module",
            help=f"Also write that NixOS module to this file (the installer: {NETWORK_MODULE}).",
            show_default=False,
        ),
    ] = None,
    debug: cli.DebugOption = False,
    version: cli.VersionOption = False,  # noqa: ARG001 - its callback prints and exits
) -> None:
    """Write systemd-networkd units that restore the addresses, routes and DNS servers
    of the system the installer was kexec'ed from."""
    cli.setup(debug=debug)
    units = generate(StateDir(state_dir))
    if emit_nixos:
        sys.stdout.write(nixos_network.module(units, ORIGIN))
        return
    if dry_run:
        for unit in units:
            sys.stdout.write(f"### {unit.name}\n{unit.text}\n")
        return
    write_units(units, target)
    if nixos_module is not None:
        write_module(nixos_network.module(units, ORIGIN), nixos_module)


def main() -> None:
    """Entry point of the restore-network command."""
    cli.run(lambda: app(prog_name="restore-network"), "restore-network")
