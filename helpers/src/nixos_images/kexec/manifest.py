"""manifest.json: what a kexec tarball holds, written at build time, read by the launcher.

    {
      "format": 1,
      "machine": "x86_64",                  # os.uname().machine of hosts that can run it
      "kernel": "bzImage", "initrd": "initrd",
      "cmdline": "init=/nix/store/...-nixos-system/init loglevel=4",
      "initrd_unpacked_size": 123456789,    # what the initrd takes in RAM once unpacked
      "reserve": 268435456,                 # what the running installer needs on top of that
      "delay": 6,                           # seconds from loading to booting, unless --delay
      "console_password": true,             # the installer's console shows a root password
      "loader": "lib/ld-linux-x86-64.so.2", "libdir": "lib",
      "tools": {"kexec": {"path": "bin/kexec", "dynamic": true}, "ip": {...}}
    }

Paths are relative to the tarball's kexec/ directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from nixos_images.errors import InputError
from nixos_images.layout import KEXEC_DELAY, KEXEC_RESERVE

if TYPE_CHECKING:
    from pathlib import Path

FORMAT = 1
FILE_NAME = "manifest.json"
# What the running installer needs beyond its unpacked initrd: kernel data structures,
# systemd, sshd, and room for a first `nix` command. Below this an installer boots and
# then gets OOM-killed, which from the outside looks like a host that never came back.
# (data/layout.json owns both figures: nix/kexec/default.nix's defaults are the same.)
DEFAULT_RESERVE = KEXEC_RESERVE
# nixos-anywhere's contract: "machine will boot into nixos in 6s...", time to disconnect.
DEFAULT_DELAY = KEXEC_DELAY
TOOLS = ("kexec", "ip")


@dataclass(frozen=True)
class Tool:
    """A program in the tarball; dynamic ones run through the tarball's own loader."""

    path: str
    dynamic: bool


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest.json (see the module docstring for the fields)."""

    machine: str
    kernel: str
    initrd: str
    cmdline: str
    initrd_unpacked_size: int
    reserve: int
    loader: str
    libdir: str
    tools: dict[str, Tool]
    delay: int = DEFAULT_DELAY
    # Whether the installer shows a root password on its console: another way in when no
    # ssh key is carried over (the unattended image has none).
    console_password: bool = False
    # drivers.json (kexec/drivers.py): the installer kernel's network drivers; None in a
    # tarball built without one (no driver check then).
    drivers: str | None = None
    format: int = FORMAT

    def to_json(self) -> str:
        """manifest.json's text."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def tool_argv(self, root: Path, name: str) -> list[str]:
        """The argv prefix that runs a bundled tool from the unpacked tarball at root."""
        tool = self.tools[name]
        if not tool.dynamic:
            return [str(root / tool.path)]
        return [
            str(root / self.loader),
            "--library-path",
            str(root / self.libdir),
            str(root / tool.path),
        ]


def _field(data: dict[str, Any], key: str, kind: type, source: Path) -> Any:  # noqa: ANN401
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise InputError(source, f"{key!r} must be a {kind.__name__}")
    return value


def load(path: Path) -> Manifest:
    """Read and check a manifest; a damaged tarball is an InputError, not a traceback."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise InputError(path, "missing: is this an unpacked kexec tarball?") from e
    except (OSError, ValueError) as e:
        raise InputError(path, f"unreadable: {e}") from e
    if not isinstance(data, dict):
        raise InputError(path, "not a JSON object")
    if data.get("format") != FORMAT:
        raise InputError(path, f"format {data.get('format')!r}, this launcher reads {FORMAT}")
    raw_tools = _field(data, "tools", dict, path)
    tools = {}
    for name in TOOLS:
        entry = raw_tools.get(name)
        if not isinstance(entry, dict):
            raise InputError(path, f"no {name!r} in tools")
        tools[name] = Tool(_field(entry, "path", str, path), _field(entry, "dynamic", bool, path))
    return Manifest(
        machine=_field(data, "machine", str, path),
        kernel=_field(data, "kernel", str, path),
        initrd=_field(data, "initrd", str, path),
        cmdline=_field(data, "cmdline", str, path),
        initrd_unpacked_size=_field(data, "initrd_unpacked_size", int, path),
        reserve=_field(data, "reserve", int, path),
        loader=_field(data, "loader", str, path),
        libdir=_field(data, "libdir", str, path),
        tools=tools,
        delay=_delay(data, path),
        console_password=data.get("console_password") is True,
        drivers=data.get("drivers") if isinstance(data.get("drivers"), str) else None,
    )


def _delay(data: dict[str, Any], source: Path) -> int:
    """The optional build-time default delay (tarballs before it was added have none)."""
    if "delay" not in data:
        return DEFAULT_DELAY
    delay = _field(data, "delay", int, source)
    if delay < 0:
        raise InputError(source, "'delay' must not be negative")
    return int(delay)
