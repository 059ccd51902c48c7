"""What a terminal shows, and what a phone reads off it.

The exact bytes a program writes to a tty go through the tty's output processing (a newline
becomes CR LF) into pyte, a terminal emulator of a given size; the emulator's screen, each
cell with its own colours (the terminal's defaults for cells without, dark or light theme), is
turned into pixels and decoded by two real QR decoders, zbar and zxing-cpp, neither allowed to
invert the image.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A cell is one pixel wide and two high: its top and bottom half (a half block fills one).
_HALVES = {"█": (True, True), "▀": (True, False), "▄": (False, True), "#": (True, True)}
# Grey levels of the colours a cell may have; "default" is the theme's.
_LEVELS = {"black": 0, "white": 200, "brightwhite": 255, "brightblack": 85}
THEMES = {"dark": (200, 0), "light": (0, 255)}  # (default foreground, default background)
SCALE = 4
MARGIN = 6


def missing() -> list[str]:
    """What decoding an emulated screen needs but this machine lacks."""
    out = []
    for module in ("pyte", "zxingcpp"):
        try:
            __import__(module)
        except ImportError:
            out.append(f"{module} (helpers/versions.toml, role 'ci')")
    return out + ([] if shutil.which("zbarimg") else ["zbarimg (zbar-tools)"])


@dataclass
class Terminal:
    """An emulated terminal after some output: its screen and what scrolled off the top."""

    screen: Any  # pyte.HistoryScreen
    width: int
    height: int

    @property
    def scrolled(self) -> int:
        """Rows that scrolled off the top."""
        return len(self.screen.history.top)

    def lines(self) -> list[str]:
        """The characters on screen, row by row, trailing blanks cut."""
        return [line.rstrip() for line in self.screen.display]

    def cursor(self) -> tuple[int, int]:
        return self.screen.cursor.x, self.screen.cursor.y


def terminal(width: int, height: int, *outputs: bytes) -> Terminal:
    """A width x height terminal that has shown outputs, as a tty passes them on (ONLCR)."""
    import pyte  # noqa: PLC0415 - a test dependency: missing() says when it is absent

    screen = pyte.HistoryScreen(width, height, history=1000)
    stream = pyte.ByteStream(screen)
    for output in outputs:
        stream.feed(output.replace(b"\n", b"\r\n"))
    return Terminal(screen, width, height)


def pixels(term: Terminal, theme: str) -> tuple[int, int, bytes]:
    """The screen as a grey image (width, height, bytes): glyph halves in the cell's
    foreground colour, the rest in its background; letters count as background."""
    fg_default, bg_default = THEMES[theme]
    rows = []
    for y in range(term.height):
        top, bottom = bytearray(), bytearray()
        line = term.screen.buffer[y]
        for x in range(term.width):
            char = line[x]
            fg = _LEVELS.get(char.fg, fg_default)
            bg = _LEVELS.get(char.bg, bg_default)
            if char.reverse:
                fg, bg = bg, fg
            upper, lower = _HALVES.get(char.data, (False, False))
            top.append(fg if upper else bg)
            bottom.append(fg if lower else bg)
        rows += [bytes(top), bytes(bottom)]
    width = term.width * SCALE + 2 * MARGIN * SCALE
    blank = bytes([bg_default]) * width
    out = bytearray(blank * MARGIN * SCALE)
    side = bytes([bg_default]) * MARGIN * SCALE
    for row in rows:
        wide = bytes(b for b in row for _ in range(SCALE))
        out += (side + wide + side) * SCALE
    out += blank * MARGIN * SCALE
    return width, len(out) // width, bytes(out)


def decode_zbar(image: tuple[int, int, bytes]) -> list[str]:
    width, height, data = image
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "screen.pgm"
        path.write_bytes(f"P5 {width} {height} 255\n".encode() + data)
        result = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    return [line for line in result.stdout.splitlines() if line]


def decode_zxing(image: tuple[int, int, bytes]) -> list[str]:
    import zxingcpp  # noqa: PLC0415 - a test dependency

    width, height, data = image
    view = memoryview(data).cast("B", (height, width))
    found = zxingcpp.read_barcodes(view, try_invert=False, try_rotate=False)
    return [b.text for b in found if b.format == zxingcpp.BarcodeFormat.QRCode]


def decoded(term: Terminal) -> dict[str, list[str]]:
    """What each decoder reads on the screen, in each theme."""
    out = {}
    for theme in THEMES:
        image = pixels(term, theme)
        out[f"zbar/{theme}"] = decode_zbar(image)
        out[f"zxing/{theme}"] = decode_zxing(image)
    return out


def payloads(term: Terminal) -> set[str]:
    """Every payload any decoder read, in either theme."""
    return {text for texts in decoded(term).values() for text in texts}
