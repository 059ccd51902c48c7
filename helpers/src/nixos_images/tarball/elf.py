"""Just enough ELF to bundle a program with its libraries: interpreter, needed, runpath.

Reads 64-bit little-endian ELF files (x86_64 and aarch64), which is what the images target.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nixos_images.errors import HelperError

if TYPE_CHECKING:
    from pathlib import Path

MACHINES = {62: "x86_64", 183: "aarch64"}
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29


class ElfError(HelperError, ValueError):
    """Not an ELF file this code can read (one line, like every helper error)."""


@dataclass(frozen=True)
class Elf:
    """What bundling needs to know of a binary."""

    machine: str
    interpreter: str | None  # None: statically linked (or a shared library)
    needed: tuple[str, ...]
    runpath: tuple[str, ...]


@dataclass(frozen=True)
class _Segment:
    kind: int
    offset: int
    vaddr: int
    filesz: int


def _cstr(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        raise ElfError("string table entry out of range")
    return data[offset:end].decode()


def _segments(data: bytes) -> list[_Segment]:
    (phoff,) = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    segments = []
    for i in range(phnum):
        kind, _, offset, vaddr, _, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        segments.append(_Segment(kind, offset, vaddr, filesz))
    return segments


def _file_offset(segments: list[_Segment], vaddr: int) -> int:
    for s in segments:
        if s.kind == PT_LOAD and s.vaddr <= vaddr < s.vaddr + s.filesz:
            return vaddr - s.vaddr + s.offset
    raise ElfError(f"address {vaddr:#x} is in no loaded segment")


def _dynamic(data: bytes, segments: list[_Segment]) -> list[tuple[int, str]]:
    """The dynamic section's string entries (NEEDED, RPATH, RUNPATH) as (tag, string)."""
    entries: list[tuple[int, int]] = []
    for s in (s for s in segments if s.kind == PT_DYNAMIC):
        for off in range(s.offset, s.offset + s.filesz, 16):
            tag, value = struct.unpack_from("<qQ", data, off)
            if tag == DT_NULL:
                break
            entries.append((tag, value))
    wanted = [(t, v) for t, v in entries if t in {DT_NEEDED, DT_RPATH, DT_RUNPATH}]
    strtab = next((_file_offset(segments, v) for t, v in entries if t == DT_STRTAB), None)
    if strtab is None:
        if wanted:
            raise ElfError("dynamic section without a string table")
        return []
    return [(t, _cstr(data, strtab + v)) for t, v in wanted]


def parse(data: bytes) -> Elf:
    """Parse the program headers and dynamic section of an ELF image held in memory."""
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if data[4] != 2 or data[5] != 1:  # noqa: PLR2004 - EI_CLASS 64-bit, EI_DATA little-endian
        raise ElfError("only 64-bit little-endian ELF is supported")
    (machine,) = struct.unpack_from("<H", data, 18)
    segments = _segments(data)
    interpreter = next(
        (
            data[s.offset : s.offset + s.filesz].rstrip(b"\0").decode()
            for s in segments
            if s.kind == PT_INTERP
        ),
        None,
    )
    strings = _dynamic(data, segments)
    needed = tuple(v for t, v in strings if t == DT_NEEDED)
    runpath = tuple(p for t, v in strings if t != DT_NEEDED for p in v.split(":") if p)
    return Elf(MACHINES.get(machine, f"machine-{machine}"), interpreter, needed, runpath)


def read(path: Path) -> Elf:
    """Parse the ELF file at path; any problem is an ElfError naming it."""
    try:
        return parse(path.read_bytes())
    except ElfError as e:
        raise ElfError(f"{path}: {e}") from e
    except (struct.error, UnicodeDecodeError) as e:
        raise ElfError(f"{path}: truncated or damaged ELF file") from e
