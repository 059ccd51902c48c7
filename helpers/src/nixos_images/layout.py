"""Facts shared with the Nix code and the workflows, read from data/layout.json (their one
owner): systems, kernel file names, release assets, state directories.

Read through the module's loader, so it works from an installed package and from the kexec
bundle's zip alike, without importing importlib.resources (a few ms on every helper's start).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

if TYPE_CHECKING:
    from importlib.abc import ResourceLoader


class _AssetEntry(TypedDict):
    key: str
    name: str
    package: str
    path: str


class _Layout(TypedDict):
    systems: list[str]
    kernelFiles: dict[str, str]
    assets: list[_AssetEntry]
    stateDirs: dict[str, str]


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
