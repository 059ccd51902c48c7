"""Can the installer's kernel drive the old host's NICs? A NIC it cannot drive comes back as
nothing after the kexec: no link, no DHCP, no ssh, and no way back but a power cycle.

At build time (assemble-kexec-tarball --modules DIR --firmware DIR...) the network drivers of
the installer's kernel are listed with the devices they claim (their modaliases) and the
firmware they ask for, and which of those firmware files the image holds: `drivers.json` in
the tarball. On the old host, each NIC's `device/modalias` (sysfs) is matched against that list
as the kernel matches it (shell-style patterns), before anything changes:

- no driver claims the NIC, and its driver on the host is none of the installer kernel's
  (one built in may list no device aliases): refused, naming the NIC, its modalias and its
  driver on the host;
- every driver that claims it asks for firmware and the image holds none of the files it
  names: a warning, not a refusal. Many NICs run without theirs (r8169's and tg3's are PHY
  patches, ice falls back to a safe mode), and the kexec image carries only common server
  NICs' firmware (nix/firmware.nix; netboot-minimal.nix turns the rest off); a driver lists
  every file its chips might load.
  Refused for the drivers that cannot bring their NIC up without it (FIRMWARE_REQUIRED).

Only the NICs the restored network uses are checked (collect.py): a NIC that is down, or a
second port with nothing on it, cannot cut the installer off.

`--kexec-extra-flags --nixos-images-skip-driver-check` goes ahead anyway.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TypedDict

from nixos_images import process
from nixos_images.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

FILE_NAME = "drivers.json"
# Where a kernel's network drivers live in its module tree.
NET_DRIVERS = "kernel/drivers/net/"
_MODULE = re.compile(r"[A-Za-z0-9_-]+")


class _ModuleJSON(TypedDict):
    aliases: list[str]
    firmware: list[str]


class DriversJSON(TypedDict):
    """drivers.json."""

    modules: dict[str, _ModuleJSON]
    firmware: list[str]  # of the files those modules name, the ones the image holds


@dataclass(frozen=True)
class Drivers:
    """The installer kernel's network drivers: what each claims and asks for."""

    aliases: tuple[tuple[str, str], ...]  # (pattern, module)
    firmware: Mapping[str, tuple[str, ...]]  # module -> the files it names
    present: frozenset[str]  # firmware files the image holds
    modules: frozenset[str] = frozenset()  # every network driver, built in or a module

    def claiming(self, modalias: str) -> list[str]:
        """The modules whose aliases match a device's modalias, as the kernel matches them."""
        return sorted({m for pattern, m in self.aliases if fnmatch.fnmatchcase(modalias, pattern)})

    def to_json(self) -> str:
        """drivers.json's text."""
        modules: dict[str, _ModuleJSON] = {m: {"aliases": [], "firmware": []} for m in self.modules}
        for pattern, module in self.aliases:
            modules.setdefault(module, {"aliases": [], "firmware": []})["aliases"].append(pattern)
        for module, files in self.firmware.items():
            modules.setdefault(module, {"aliases": [], "firmware": []})["firmware"] = list(files)
        data: DriversJSON = {"modules": modules, "firmware": sorted(self.present)}
        return json.dumps(data, indent=1, sort_keys=True) + "\n"


def from_json(text: str, where: str) -> Drivers:
    """drivers.json read back; InputError for anything else."""
    try:
        data = json.loads(text)
        modules = data["modules"]
        aliases = tuple((str(p), str(m)) for m, info in modules.items() for p in info["aliases"])
        firmware = {
            str(m): tuple(map(str, info["firmware"]))
            for m, info in modules.items()
            if info["firmware"]
        }
        present = frozenset(map(str, data["firmware"]))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise InputError(where, f"not a driver list ({e})") from e
    return Drivers(aliases, firmware, present, frozenset(map(str, modules)))


def parse_modinfo(output: str) -> dict[str, tuple[list[str], list[str]]]:
    """`modinfo FILE...` output -> module name -> (aliases, firmware files)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    current: tuple[list[str], list[str]] | None = None
    for line in output.splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "filename":
            name = PurePosixPath(value).name.split(".ko")[0].replace("-", "_")
            current = out.setdefault(name, ([], []))
        elif current is not None and key == "alias":
            current[0].append(value)
        elif current is not None and key == "firmware":
            current[1].append(value)
    return out


def parse_builtin_modinfo(data: bytes) -> dict[str, tuple[list[str], list[str]]]:
    """modules.builtin.modinfo (NUL-separated `module.key=value`) -> the same, for the drivers
    built into the kernel."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for entry in data.decode(errors="replace").split("\0"):
        name, dot, rest = entry.partition(".")
        key, eq, value = rest.partition("=")
        if not (dot and eq and _MODULE.fullmatch(name)):
            continue
        aliases, firmware = out.setdefault(name, ([], []))
        if key == "alias":
            aliases.append(value)
        elif key == "firmware":
            firmware.append(value)
    return out


def _builtin_net_modules(modules_dir: Path) -> set[str]:
    path = modules_dir / "modules.builtin"
    lines = path.read_text().splitlines() if path.is_file() else []
    return {
        PurePosixPath(line).name.split(".ko")[0].replace("-", "_")
        for line in lines
        if line.startswith(NET_DRIVERS)
    }


def build(modules_dir: Path, firmware_dirs: Sequence[Path]) -> Drivers:
    """The network drivers of a kernel's module tree (/lib/modules/<version>), and which of
    the firmware files they name lie in firmware_dirs. Runs kmod's modinfo (any compression)."""
    files = sorted(str(p) for p in (modules_dir / NET_DRIVERS).rglob("*.ko*"))
    info: dict[str, tuple[list[str], list[str]]] = {}
    if files:
        output = process.run(["modinfo", *files], call=process.Call.MODINFO, check=True).stdout
        info = parse_modinfo(output.decode(errors="replace"))
    builtin_path = modules_dir / "modules.builtin.modinfo"
    net = _builtin_net_modules(modules_dir)
    if builtin_path.is_file():
        builtin = parse_builtin_modinfo(builtin_path.read_bytes())
        info |= {m: v for m, v in builtin.items() if m in net}
    # Built in with no aliases listed (older kernels list only explicit MODULE_ALIASes there).
    info |= {m: ([], []) for m in net if m not in info}
    named = {f for _, firmware in info.values() for f in firmware}
    present = frozenset(f for f in named if any(_holds(d, f) for d in firmware_dirs))
    aliases = tuple((a, m) for m, (patterns, _) in sorted(info.items()) for a in patterns)
    firmware = {m: tuple(fw) for m, (_, fw) in info.items() if fw}
    return Drivers(aliases, firmware, present, frozenset(info))


# NixOS compresses firmware as the kernel reads it: a file may be there as name.xz or name.zst
# (the kernel decompresses those two, not gzip).
FIRMWARE_SUFFIXES = ("", ".xz", ".zst")


def _holds(directory: Path, name: str) -> bool:
    return any((directory / f"{name}{suffix}").exists() for suffix in FIRMWARE_SUFFIXES)


@dataclass(frozen=True)
class Nic:
    """A NIC the installer must drive: its name, what sysfs says of its device, its driver on
    the old host."""

    name: str
    modalias: str | None
    driver: str | None


def read_nics(root: Path, names: Iterable[str], drivers: Mapping[str, str]) -> list[Nic]:
    """The NICs' modaliases from sysfs under root (a NIC without one, virtual after all, or
    one sysfs does not show: None)."""
    out = []
    for name in names:
        try:
            modalias = (root / "sys/class/net" / name / "device/modalias").read_text().strip()
        except (OSError, UnicodeDecodeError):
            modalias = None
        out.append(Nic(name, modalias or None, drivers.get(name)))
    return out


# Drivers whose NIC does not come up at all without its firmware file (request_firmware fails
# the probe or the open): Broadcom NetXtreme II (bnx2, bnx2x), QLogic FastLinQ (qed/qede),
# Cavium LiquidIO.
FIRMWARE_REQUIRED = frozenset({"bnx2", "bnx2x", "qed", "qede", "liquidio"})


@dataclass(frozen=True)
class Findings:
    """What the installer's kernel lacks for the NICs: refusals (no driver) and warnings
    (firmware it may need), a line each."""

    missing: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def problems(nics: Sequence[Nic], drivers: Drivers) -> Findings:
    """What the installer's kernel lacks for these NICs."""
    missing, warnings = [], []
    for nic in nics:
        if nic.modalias is None:
            continue
        on_host = f", {nic.driver} on this host" if nic.driver else ""
        claiming = drivers.claiming(nic.modalias)
        host_driver = (nic.driver or "").replace("-", "_")
        if not claiming and host_driver in drivers.modules:
            claiming = [host_driver]
        if not claiming:
            missing.append(
                f"{nic.name} ({nic.modalias}{on_host}): no driver in the installer's kernel"
                " claims it"
            )
            continue
        lacking = [
            (module, wanted)
            for module in claiming
            if (wanted := drivers.firmware.get(module, ())) and not drivers.present & set(wanted)
        ]
        if lacking and len(lacking) == len(claiming):
            module, wanted = lacking[0]
            listed = ", ".join(wanted[:3]) + (", ..." if len(wanted) > 3 else "")  # noqa: PLR2004
            if module in FIRMWARE_REQUIRED:
                missing.append(
                    f"{nic.name}: its driver {module} cannot start it without firmware the"
                    f" installer does not carry ({listed})"
                )
            else:
                warnings.append(
                    f"{nic.name}: the installer carries no firmware for {module} ({listed});"
                    " most such NICs run without it"
                )
    return Findings(tuple(missing), tuple(warnings))
