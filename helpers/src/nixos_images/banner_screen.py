r"""The login banner's screen: what fits on a W x H terminal, as the terminal will show it.

Pure functions: a snapshot of the installer and a screen size in, the rows to write out.
The rules (docs/console.md, "installer-banner"):

- Nothing scrolls: the rows never outnumber the screen's rows, none is wider than the screen,
  and the caller writes them joined by newlines, with none after the last.
- What is kept, in this order: the QR code (a quiet zone of 2 modules; its payload loses the
  link-local addresses, then global ones from the last, until the code fits and leaves room
  for the hostname, the root password and the global addresses), the hostname, the root
  password, the global addresses, the onion address, the host key fingerprints, the
  link-local addresses. What does not fit is named in one line, with the command that shows
  everything.
- Whole tokens: an address, the onion address or a fingerprint is never split across rows
  when a row of the screen can hold it (beside the code or below it); only a token wider than
  the screen is wrapped, with a visible "\" at the break.
- The code is drawn with explicit colours (bright white light modules on black), so a
  terminal with a light background shows it as a dark one does.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


@dataclass(frozen=True)
class Interface:
    """An interface and its addresses, global ones first."""

    name: str
    addresses: tuple[str, ...]  # with prefix length
    link_local: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    """Everything the screen shows; a new one that differs means a redraw."""

    hostname: str
    password: str | None
    onion: str | None
    interfaces: tuple[Interface, ...]
    fingerprints: tuple[tuple[str, str], ...]  # (key type, SHA256:...)
    # Left out on purpose (serial consoles, which providers log), not merely unset yet.
    password_hidden: bool = False
    # Whether this installer runs Tor: without it, no onion address will ever come.
    tor: bool = True
    # The credential given at boot that set root's password (then no password is shown).
    password_set_by: str | None = None


# Half blocks: each character is two QR modules, top and bottom; light modules are drawn.
HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
ASCII_MODULES = {True: "##", False: "  "}
QR_COLOURS = "\033[97;40m"  # bright white on black, whatever the terminal's own colours
RESET = "\033[0m"
QUIET_ZONE = 2
GAP = 2  # columns between the code and the text beside it
MIN_BESIDE = 16  # a narrower column beside the code is not used
INDENT = "  "
MORE = "installer-banner --text"
# The same where the password is left out: the command named must not print it there.
MORE_SERIAL = "installer-banner --text --no-password"


class Kind(enum.Enum):
    """What an item of the banner's text is."""

    HOSTNAME = enum.auto()
    PASSWORD = enum.auto()
    ADDRESSES = enum.auto()  # an interface's global addresses
    ONION = enum.auto()
    HOST_KEY = enum.auto()  # one host key's fingerprint
    LINK_LOCAL = enum.auto()  # an interface's link-local addresses
    NOTE = enum.auto()  # the banner's own line on what it left out


# Text a smaller code makes room for: a payload loses addresses before these go.
ESSENTIAL = frozenset({Kind.HOSTNAME, Kind.PASSWORD, Kind.ADDRESSES})
# Serial consoles are logged and kept by providers: no password there unless asked for.
HIDDEN = "(not on serial consoles)"


@dataclass(frozen=True)
class Item:
    """A piece of text the screen may show: a label and its whole tokens."""

    kind: Kind
    what: str  # how the note about what was left out names it
    label: str
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Screen:
    """What to write: rows (SGR included), the payload the code encodes, what was left out."""

    rows: tuple[str, ...]
    payload: bytes | None  # None: no code fits this screen
    left_out: tuple[str, ...]

    def text(self) -> str:
        """The rows as written: joined by newlines, none after the last (nothing scrolls)."""
        return "\n".join(self.rows)


def items(snap: Snapshot) -> list[Item]:
    """The text, in the order it is kept when not everything fits."""
    if snap.password_set_by is not None:
        password = f"set at boot by {snap.password_set_by}"
    else:
        password = HIDDEN if snap.password_hidden else snap.password or "(not set yet)"
    out = [
        Item(Kind.HOSTNAME, "hostname", "NixOS installer", (f"{snap.hostname}.local",)),
        Item(Kind.PASSWORD, "root password", "root password:", (password,)),
    ]
    out += [
        Item(Kind.ADDRESSES, f"{i.name} addresses", f"{i.name}:", i.addresses)
        for i in snap.interfaces
        if i.addresses
    ]
    if snap.tor:
        onion = snap.onion or "(tor is still starting)"
        out.append(Item(Kind.ONION, "onion address", "tor:", (onion,)))
    out += [
        Item(Kind.HOST_KEY, f"{key} host key", f"ssh {key}:", (digest,))
        for key, digest in snap.fingerprints
    ]
    out += [
        Item(Kind.LINK_LOCAL, f"{i.name} link-local", f"{i.name}:", i.link_local)
        for i in snap.interfaces
        if i.link_local
    ]
    return out


def payloads(snap: Snapshot) -> Iterator[bytes]:
    """The QR payload, then ever smaller variants of it for screens that are too small:
    without link-local addresses, then without global ones, the last first."""
    glob = [a.split("/")[0] for i in snap.interfaces for a in i.addresses]
    local = [a.split("/")[0] for i in snap.interfaces for a in i.link_local]
    candidates = [glob + local] + [glob[:n] for n in range(len(glob), -1, -1)]
    for addrs in dict.fromkeys(tuple(c) for c in candidates):
        body = {"pass": snap.password or "", "tor": snap.onion or "", "addrs": list(addrs)}
        yield json.dumps(body, separators=(",", ":")).encode()


def qr_matrix(data: bytes) -> list[list[bool]]:
    """The QR code of data (error correction L, smallest version), True for dark modules."""
    import qrcode  # noqa: PLC0415 - only the drawing path needs it
    from qrcode.constants import ERROR_CORRECT_L  # noqa: PLC0415

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_L, border=QUIET_ZONE)
    code.add_data(data, optimize=0)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def draw_qr(matrix: list[list[bool]], *, ascii_only: bool) -> list[str]:
    """Text rows of a QR matrix, without colours: light modules drawn, dark ones blank."""
    if ascii_only:
        return ["".join(ASCII_MODULES[not dark] for dark in row) for row in matrix]
    rows = [*matrix, [True] * len(matrix[0])] if len(matrix) % 2 else matrix
    return [
        "".join(
            HALF_BLOCKS[(not top, not bottom)] for top, bottom in zip(upper, lower, strict=True)
        )
        for upper, lower in zip(rows[::2], rows[1::2], strict=True)
    ]


def _wrap(token: str, width: int) -> list[str]:
    r"""A token wider than the screen, cut with a visible "\" at each break."""
    step = max(width - 1, 1)
    pieces = [token[i : i + step] for i in range(0, len(token), step)]
    return [p + "\\" for p in pieces[:-1]] + pieces[-1:]


def lines_of(item: Item, width: int, *, wrap: bool) -> list[str] | None:
    """The item's lines at this width: all on one line if it fits, else the label and then
    the tokens, packed. None when a token does not fit whole and wrap is off."""
    one = " ".join((item.label, *item.tokens))
    if len(one) <= width:
        return [one]
    if len(item.label) > width:
        return (
            None if not wrap else [*_wrap(item.label, width), *(_tokens(item, width, wrap) or [])]
        )
    rest = _tokens(item, width, wrap=wrap)
    return None if rest is None else [item.label, *rest]


def _tokens(item: Item, width: int, wrap: bool) -> list[str] | None:
    out: list[str] = []
    for token in item.tokens:
        if out and len(out[-1]) + 1 + len(token) <= width:
            out[-1] += " " + token
        elif len(INDENT) + len(token) <= width:
            out.append(INDENT + token)
        elif len(token) <= width:
            out.append(token)
        elif wrap:
            out += _wrap(token, width)
        else:
            return None
    return out


def _place(
    all_items: Sequence[Item], beside: tuple[int, int], below: tuple[int, int]
) -> tuple[list[str], list[str], list[Item]]:
    """Items into the column beside the code (rows, width) and the rows below it (rows,
    width), in order; an item goes beside when it fits there whole. Returns both columns'
    lines and what did not fit."""
    beside_lines: list[str] = []
    below_lines: list[str] = []
    left: list[Item] = []
    for item in all_items:
        lines = lines_of(item, beside[1], wrap=False) if beside[1] >= MIN_BESIDE else None
        if lines is not None and len(beside_lines) + len(lines) <= beside[0]:
            beside_lines += lines
            continue
        lines = lines_of(item, below[1], wrap=True) or []
        if below[0] and len(below_lines) + len(lines) <= below[0]:
            below_lines += lines
            continue
        left.append(item)
    return beside_lines, below_lines, left


# What was left out, short: the host keys and link-local addresses each as one.
GROUPED = {Kind.HOST_KEY: "host keys", Kind.LINK_LOCAL: "link-local"}


def _summary(left: Sequence[Item]) -> list[str]:
    """What was left out, short: the host keys and link-local addresses each as one."""
    return list(dict.fromkeys(GROUPED.get(item.kind, item.what) for item in left))


def _note(left: Sequence[Item], width: int, rows: int = 3, *, more: str = MORE) -> list[str]:
    """What was left out and how to see it: one line, or up to three in a narrow column;
    at most rows lines."""
    kinds = _summary(left)
    if rows <= 0 or not kinds:
        return []
    words = [f"{k}," for k in kinds[:-1]] + [f"{kinds[-1]};", f"see {more}"]
    lines = lines_of(Item(Kind.NOTE, "", "not shown:", tuple(words)), width, wrap=False)
    if lines is not None and len(lines) <= rows:
        return lines
    # Shorter: the command alone, in as many whole words as the rows take; never cut short (a
    # command without its --no-password would print the password where it must not go).
    program, *words = more.split()
    short = lines_of(Item(Kind.NOTE, "", f"more: {program}", tuple(words)), width, wrap=False)
    return short if short is not None and len(short) <= rows else []


def more_command(snap: Snapshot) -> str:
    """The command the note names for what did not fit: on a screen that leaves the password
    out (a logged serial console), one that leaves it out too."""
    command = MORE_SERIAL if snap.password_hidden else MORE
    # Where Tor is off, the command named must not wait for an onion address either.
    return command if snap.tor else f"{command} --no-tor"


def layout(snap: Snapshot, width: int, height: int, *, ascii_only: bool = False) -> Screen:
    """The banner for a width x height screen: the code at the top left, the text beside and
    below it; see the module's rules."""
    first = None
    essential = {i.what for i in items(snap) if i.kind in ESSENTIAL}
    for payload in payloads(snap):
        code = draw_qr(qr_matrix(payload), ascii_only=ascii_only)
        if len(code) <= height and len(code[0]) <= width:
            shown = _compose(snap, code, payload, width, height)
            if not essential & set(shown.left_out):
                return shown
            first = first or shown  # a smaller code may leave room for them
    if first is not None:
        return first
    # No code fits: the text alone, and a line that says why.
    more = more_command(snap)
    text_items = items(snap)
    _, lines, left = _place(text_items, (0, 0), (height - 1, width))
    note = "(QR code left out: the screen is too small)"
    if left:
        reserve = min(len(_note(left, width, more=more)), height - 1)
        _, lines, left = _place(text_items, (0, 0), (height - 1 - reserve, width))
        lines += _note(left, width, reserve, more=more)
    return Screen((*lines, note[:width]), None, tuple(i.what for i in left))


def _compose(snap: Snapshot, code: list[str], payload: bytes, width: int, height: int) -> Screen:
    code_width = len(code[0])
    beside = (len(code), width - code_width - GAP)
    below = (height - len(code), width)
    more = more_command(snap)
    text_items = items(snap)
    right, under, left = _place(text_items, beside, below)
    if left:  # rows for the note: the last ones there are
        if below[0]:
            reserve = min(len(_note(left, width, more=more)), below[0])
            right, under, left = _place(text_items, beside, (below[0] - reserve, width))
            under += _note(left, width, reserve, more=more)
        elif beside[1] >= MIN_BESIDE:
            reserve = min(len(_note(left, beside[1], more=more)), beside[0])
            right, under, left = _place(text_items, (beside[0] - reserve, beside[1]), below)
            right += _note(left, beside[1], reserve, more=more)
    rows = [
        f"{QR_COLOURS}{row}{RESET}" + (" " * GAP + right[n] if n < len(right) else "")
        for n, row in enumerate(code)
    ]
    return Screen(tuple(r.rstrip() for r in rows + under), payload, tuple(i.what for i in left))


def full_text(snap: Snapshot, width: int) -> str:
    """Everything the banner knows, as text (no code), wrapped only where a token is wider than
    the screen: what `installer-banner --text` prints."""
    return "".join(
        f"{line}\n" for item in items(snap) for line in lines_of(item, width, wrap=True) or []
    )
