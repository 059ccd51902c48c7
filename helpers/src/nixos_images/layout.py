"""Facts shared with the Nix code, the hand-off script and the workflows, read from
data/layout.json (their one owner; docs/shared-facts.md lists them): systems, kernel file
names, release assets, state directories and their files, kexec defaults, the onion service.

Read through the module's loader, so it works from an installed package and from the kexec
bundle's zip alike, without importing importlib.resources (a few ms on every helper's start).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

from nixos_images.sizes import MiB

if TYPE_CHECKING:
    from importlib.abc import ResourceLoader


class _AssetEntry(TypedDict):
    key: str
    name: str
    package: str
    path: str


class _StateFile(TypedDict, total=False):
    path: str
    mode: str
    publicMode: str


class _Kexec(TypedDict):
    delay: int
    reserveMiB: int


class _Onion(TypedDict):
    service: str
    hostname: str


class _Deadman(TypedDict):
    parameter: str
    stateDir: str
    finished: str
    loginMark: str


class _Layout(TypedDict):
    rootPasswordFile: str
    networkModule: str
    systems: list[str]
    kernelFiles: dict[str, str]
    assets: list[_AssetEntry]
    stateDirs: dict[str, str]
    stateFiles: dict[str, _StateFile]
    kexec: _Kexec
    onion: _Onion
    deadman: _Deadman


def _read() -> _Layout:
    loader = cast("ResourceLoader", __spec__.loader)
    # A loader path: a file, or a member of the bundle's zip (…/python311.zip/nixos_images/…).
    path = str(Path(__file__).parent / "data" / "layout.json")
    data: _Layout = json.loads(loader.get_data(path))
    return data


_LAYOUT = _read()

SYSTEMS: tuple[str, ...] = tuple(_LAYOUT["systems"])
# Where the launcher puts the state inside the cpio appended to the installer's initrd
# (relative to the initramfs root); the initrd's hand-off script moves it on to:
INITRD_STATE_DIR = Path(_LAYOUT["stateDirs"]["initrd"].lstrip("/"))
# where the installer's units (restore-network) find it.
INSTALLER_STATE_DIR = Path(_LAYOUT["stateDirs"]["installer"])


@dataclass(frozen=True)
class StateFile:
    """A file (or directory of files) in the state directory, and the mode the launcher writes
    it with and the hand-off installs it with (publicMode: a host key's .pub)."""

    path: str
    mode: int
    public_mode: int | None = None


STATE_FILES: dict[str, StateFile] = {
    key: StateFile(
        f["path"],
        int(f["mode"], 8),
        int(f["publicMode"], 8) if "publicMode" in f else None,
    )
    for key, f in _LAYOUT["stateFiles"].items()
}
# The tarball's defaults, unless the image sets its own (nixos-images.kexec.*).
KEXEC_DELAY: int = _LAYOUT["kexec"]["delay"]
KEXEC_RESERVE: int = _LAYOUT["kexec"]["reserveMiB"] * MiB
# Where Tor writes the onion address of the ssh service the banner shows.
ONION_HOSTNAME = Path(_LAYOUT["onion"]["hostname"])
# Where root-password saves the password it set, root-only, for the banner to show.
ROOT_PASSWORD_FILE = Path(_LAYOUT["rootPasswordFile"])
# Where restore-network writes the restored network as a NixOS module, for the installed system.
NETWORK_MODULE = Path(_LAYOUT["networkModule"])
# The dead-man switch's kernel parameter (nixos-images.deadman=MINUTES|off: kexec/run --deadman
# puts it on the installer's command line) and where it records that it stood down.
DEADMAN_PARAMETER: str = _LAYOUT["deadman"]["parameter"]
DEADMAN_STATE_DIR = Path(_LAYOUT["deadman"]["stateDir"])
# Files in it: the one whose presence stops the switch's runs (nix/deadman.nix's condition),
# and the one an interactive shell writes when someone types a command (a console login).
DEADMAN_FINISHED: str = _LAYOUT["deadman"]["finished"]
DEADMAN_LOGIN_MARK: str = _LAYOUT["deadman"]["loginMark"]


def parse_deadman(value: str) -> int | None:
    """The dead-man switch's value: MINUTES (1 to 99999) or off (also 0): the minutes, None
    for off; ValueError if neither. The installer's switch and kexec/run both read it so."""
    if value in {"off", "0"}:
        return None
    if re.fullmatch(r"[1-9][0-9]{0,4}", value):
        return int(value)
    msg = f"{value!r} is not a number of minutes (1 to 99999) or off"
    raise ValueError(msg)


def kernel_file(system: str) -> str:
    """The kernel image's file name on a system: bzImage, Image."""
    return _LAYOUT["kernelFiles"][system]


@dataclass(frozen=True)
class Asset:
    """One release file: where the build put it, and its name in the release."""

    key: str
    name: str
    package: str  # the flake package (without the stable suffix) that builds it
    path: str  # inside the package's output
    system: str


def assets(system: str) -> list[Asset]:
    """Every asset of one system, in release order."""
    fill = {"{system}": system, "{kernelFile}": kernel_file(system)}

    def filled(template: str) -> str:
        for field, value in fill.items():
            template = template.replace(field, value)
        return template

    return [
        Asset(a["key"], filled(a["name"]), filled(a["package"]), filled(a["path"]), system)
        for a in _LAYOUT["assets"]
    ]
