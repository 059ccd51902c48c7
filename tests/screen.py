"""Turn terminal text back into pixels and decode the QR code in it with zbar, as a phone would.

The console draws light characters on black: a full block is two light pixels, an upper half
block a light one above a dark one, and so on; anything else (letters) counts as dark.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

_HALF = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1)}
SCALE = 6
MARGIN = 8  # black console around the screen: the code must bring its own quiet zone


def pixels(screen: str, *, ascii_only: bool = False) -> list[list[int]]:
    """One list of 0 (dark) / 1 (light) pixels per pixel row."""
    lines = screen.splitlines()
    if ascii_only:
        rows = [
            [1 if line[i : i + 2] == "##" else 0 for i in range(0, len(line), 2)] for line in lines
        ]
    else:
        rows = []
        for line in lines:
            cells = [_HALF.get(ch, (0, 0)) for ch in line]
            rows += [[c[0] for c in cells], [c[1] for c in cells]]
    width = max(len(r) for r in rows)
    return [r + [0] * (width - len(r)) for r in rows]


def write_pgm(image: list[list[int]], path: Path) -> None:
    width = len(image[0]) * SCALE + 2 * MARGIN * SCALE
    blank = bytes(width)
    out = bytearray()
    for _ in range(MARGIN * SCALE):
        out += blank
    for row in image:
        line = bytes(MARGIN * SCALE) + bytes(255 * p for p in row for _ in range(SCALE))
        line += bytes(MARGIN * SCALE)
        out += line * SCALE
    for _ in range(MARGIN * SCALE):
        out += blank
    height = len(out) // width
    path.write_bytes(f"P5 {width} {height} 255\n".encode() + bytes(out))


def decode(screen: str, *, ascii_only: bool = False) -> list[str]:
    """Every QR payload zbarimg finds in the screen."""
    with tempfile.TemporaryDirectory() as work:
        image = Path(work) / "screen.pgm"
        write_pgm(pixels(screen, ascii_only=ascii_only), image)
        result = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
            capture_output=True,
            text=True,
            check=False,
        )
    return [line for line in result.stdout.splitlines() if line]


def have_zbar() -> list[str]:
    return [] if shutil.which("zbarimg") else ["zbarimg (zbar-tools)"]
