"""Modules an attacker plants in the directory root runs kexec/run from (issue: hand-over security).

Each planted module, if Python ever imports it, leaves `<its own path>.ran` beside itself and
carries on, so a test can tell "never ran" from "ran and was swallowed". The names shadow what
the launcher imports first: our own package, typer and its dependencies, and standard modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_BODY = b"open(__file__ + '.ran', 'w').close()\n"

# Relative path -> content, for a directory on this machine or in a guest's initramfs.
MODULES: dict[str, bytes] = dict.fromkeys(
    (
        "nixos_images/__init__.py",
        "typer.py",
        "click.py",
        "annotated_doc.py",
        "shellingham.py",
        "json.py",
        "shutil.py",
        "subprocess.py",
        "argparse.py",
    ),
    _BODY,
)


def plant(directory: Path) -> Path:
    """Write the planted modules into directory; returns it."""
    for name, body in MODULES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return directory


def ran(directory: Path) -> list[str]:
    """The planted modules that were imported (their markers), relative to directory."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*.ran"))
