"""installer-banner: the login screen that tells a person how to reach this installer."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import select
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nixos_images import cli, iproute, process
from nixos_images.errors import HelperError, InputError
from nixos_images.root_password import DEFAULT_FILE as PASSWORD_FILE
from nixos_images.terminal import printable

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ONION_FILE = Path("/var/lib/tor/onion/ssh/hostname")
SSH_DIR = Path("/etc/ssh")
# Half blocks: each character is two QR modules, top and bottom. Light modules are drawn
# (the console draws light on black), dark ones are left blank.
HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
ASCII_MODULES = {True: "##", False: "  "}
MIN_TEXT_COLUMNS = 30
CONTINUATION = "    "  # how a wrapped line goes on


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


def interfaces_from(data: list[object]) -> tuple[Interface, ...]:
    """Interfaces with addresses from `ip --json addr` output; loopback and host scope left
    out, and so is an interface whose entry does not parse: the others are still shown."""  # noqa: D205, D209
    by_name: dict[str, tuple[list[str], list[str]]] = {}
    addresses = []
    for item in data:
        try:
            addresses += iproute.addresses_from([item], "ip --json addr")
        except InputError:
            continue
    for address in addresses:
        if address.scope == "host" or address.address.ip.is_loopback:
            continue
        glob, local = by_name.setdefault(address.interface, ([], []))
        (local if address.address.ip.is_link_local else glob).append(str(address.address))
    return tuple(Interface(name, tuple(g), tuple(ll)) for name, (g, ll) in by_name.items())


def fingerprint(public_key: str) -> tuple[str, str]:
    """(type, "SHA256:...") of an OpenSSH public key line, as `ssh-keygen -l` prints it."""
    fields = public_key.split()
    if len(fields) < 2:  # noqa: PLR2004 - type and base64 blob
        raise InputError("public key", "expected '<type> <base64>'")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except ValueError:
        raise InputError("public key", "invalid base64") from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    name = fields[0]  # ssh-ed25519, ecdsa-sha2-nistp256, sk-ssh-ed25519@openssh.com, ...
    kind = "ECDSA" if "ecdsa" in name else printable(name.split("@")[0].split("-")[-1].upper())
    return kind + ("-SK" if name.startswith("sk-") else ""), f"SHA256:{digest}"


def _read(path: Path) -> str | None:
    """A small file's text, shown as is but for control characters; None when unreadable."""
    try:
        with path.open("rb") as f:
            data = f.read(4096)
    except OSError:
        return None
    return printable(data.decode(errors="replace").strip()) or None


def gather(
    ip: Sequence[str] = ("ip",),
    password_file: Path = PASSWORD_FILE,
    onion_file: Path = ONION_FILE,
    ssh_dir: Path = SSH_DIR,
) -> Snapshot:
    """Read the current state of the installer."""
    fingerprints = []
    for key in sorted(ssh_dir.glob("ssh_host_*_key.pub")):
        text = _read(key)
        try:
            if text:
                fingerprints.append(fingerprint(text))
        except InputError:
            continue  # a damaged key file: the others are still shown
    return Snapshot(
        hostname=printable(socket.gethostname()),
        password=_read(password_file),
        onion=_read(onion_file),
        interfaces=_interfaces(ip),
        fingerprints=tuple(fingerprints),
    )


def _interfaces(ip: Sequence[str]) -> tuple[Interface, ...]:
    """The addresses `ip` shows; none when it cannot be run or prints nonsense (the banner
    must stay up: it is what a person at the console reads)."""  # noqa: D205, D209
    try:
        data = json.loads(process.run([*ip, "--json", "addr"], check=True).stdout)
    except (HelperError, OSError, ValueError):
        return ()
    return interfaces_from(data) if isinstance(data, list) else ()


def payloads(snap: Snapshot) -> Iterator[bytes]:
    """The QR payload, then ever smaller variants of it for screens that are too small."""
    glob = [a.split("/")[0] for i in snap.interfaces for a in i.addresses]
    local = [a.split("/")[0] for i in snap.interfaces for a in i.link_local]
    candidates = [glob + local] + [glob[:n] for n in range(len(glob), -1, -1)]
    for addrs in candidates:
        body = {"pass": snap.password or "", "tor": snap.onion or "", "addrs": addrs}
        yield json.dumps(body, separators=(",", ":")).encode()


def qr_matrix(data: bytes, border: int) -> list[list[bool]]:
    """The QR code of data (error correction L, smallest version), True for dark modules."""
    import qrcode  # noqa: PLC0415 - only the drawing path needs it
    from qrcode.constants import ERROR_CORRECT_L  # noqa: PLC0415

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_L, border=border)
    code.add_data(data, optimize=0)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def draw_qr(matrix: list[list[bool]], *, ascii_only: bool) -> list[str]:
    """Text lines of a QR matrix: light modules drawn, dark ones blank."""
    if ascii_only:
        return ["".join(ASCII_MODULES[not dark] for dark in row) for row in matrix]
    rows = [*matrix, [True] * len(matrix[0])] if len(matrix) % 2 else matrix
    return [
        "".join(
            HALF_BLOCKS[(not top, not bottom)] for top, bottom in zip(upper, lower, strict=True)
        )
        for upper, lower in zip(rows[::2], rows[1::2], strict=True)
    ]


# Serial consoles are logged and kept by providers: no password there unless asked for.
HIDDEN = "(not on serial consoles: see the screen)"


def info_lines(snap: Snapshot) -> list[str]:
    """The text beside the QR code."""
    lines = [
        "NixOS installer",
        f"  {snap.hostname}",
        f"  {snap.hostname}.local",
        "root password:",
        f"  {HIDDEN if snap.password_hidden else snap.password or '(not set yet)'}",
        "tor:",
        f"  {snap.onion or '(tor is still starting)'}",
    ]
    for interface in snap.interfaces:
        lines.append(f"{interface.name}:")
        lines += [f"  {a}" for a in (*interface.addresses, *interface.link_local)]
    if snap.fingerprints:
        lines.append("ssh host keys:")
        for kind, digest in snap.fingerprints:
            lines += [f"  {kind}", f"  {digest}"]
    return lines


def _fit(lines: list[str], width: int) -> list[str]:
    """Lines cut to width, continued on the next line after a "-", " " or ":" where possible."""
    out = []
    for line in lines:
        rest = line
        while len(rest) > width:
            cut = max(rest.rfind(sep, 0, width) for sep in "- :") + 1
            if cut <= len(CONTINUATION):
                cut = width
            out.append(rest[:cut].rstrip())
            rest = CONTINUATION + rest[cut:].lstrip()
        out.append(rest)
    return out


def render(snap: Snapshot, width: int = 80, height: int = 25, *, ascii_only: bool = False) -> str:
    """The whole screen: the QR code at the left, the text at its right (or below it)."""
    text = info_lines(snap)
    for payload in payloads(snap):
        for border in (2, 1):
            qr = draw_qr(qr_matrix(payload, border), ascii_only=ascii_only)
            qr_width = len(qr[0])
            beside = width - qr_width - 2
            if beside >= MIN_TEXT_COLUMNS and len(qr) <= height:
                right = _fit(text, beside)
                rows = max(len(qr), len(right))
                qr += [" " * qr_width] * (rows - len(qr))
                right += [""] * (rows - len(right))
                return "".join(
                    f"{code}  {words}".rstrip() + "\n"
                    for code, words in zip(qr, right, strict=True)
                )
            if ascii_only and qr_width <= width:
                # serial consoles scroll: text first, then the code
                return "".join(f"{line}\n" for line in [*_fit(text, width), "", *qr])
    note = "(QR code left out: the screen is too small)"
    return "".join(f"{line}\n" for line in [*_fit(text, width), note])


def _terminal_size() -> tuple[int, int]:
    size = os.get_terminal_size(sys.stdout.fileno()) if sys.stdout.isatty() else None
    return (size.columns, size.lines) if size else (80, 25)


def _enter_pressed(timeout: float) -> bool:
    """Wait up to timeout; True when a line was typed on the terminal on stdin (never when
    stdin is not a terminal: /dev/null would read as an endless run of empty lines)."""  # noqa: D205, D209
    if not sys.stdin.isatty():
        time.sleep(timeout)
        return False
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        return False
    sys.stdin.readline()
    return True


app = cli.new_app(__doc__ or "")


@app.command()
def installer_banner(
    json_only: Annotated[
        bool, typer.Option("--json", help="Print the QR payload and exit.")
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Redraw when anything shown changes; Enter on the terminal ends it."
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between checks.")
    ] = 2.0,
    ascii_only: Annotated[
        bool, typer.Option("--ascii", help="ASCII only, for serial consoles.")
    ] = False,
    width: Annotated[
        int | None, typer.Option("--width", help="Screen columns (default: the terminal's).")
    ] = None,
    height: Annotated[
        int | None, typer.Option("--height", help="Screen rows (default: the terminal's).")
    ] = None,
    password_file: Annotated[Path, typer.Option("--password-file")] = PASSWORD_FILE,
    no_password: Annotated[
        bool,
        typer.Option(
            "--no-password",
            help="Leave the root password out of the text and the QR code (serial consoles).",
        ),
    ] = False,
    onion_file: Annotated[Path, typer.Option("--onion-file")] = ONION_FILE,
    ssh_dir: Annotated[Path, typer.Option("--ssh-dir")] = SSH_DIR,
    debug: cli.DebugOption = False,
) -> None:
    """Show the hostname, root password, addresses, onion address, ssh host key
    fingerprints and a QR code with {"pass", "tor", "addrs"} for clan's installer tools."""  # noqa: D205, D209
    cli.setup(debug=debug)
    columns, lines = _terminal_size()
    size = (width or columns, height or lines)

    def snapshot() -> Snapshot:
        return gather(password_file=password_file, onion_file=onion_file, ssh_dir=ssh_dir)

    snap = snapshot()
    if no_password:
        snap = dataclasses.replace(snap, password=None, password_hidden=True)
    if json_only:
        sys.stdout.write(next(payloads(snap)).decode() + "\n")
        return
    clear = "\033[H\033[2J" if watch and sys.stdout.isatty() else ""
    sys.stdout.write(clear + render(snap, *size, ascii_only=ascii_only))
    sys.stdout.flush()
    while watch:
        if _enter_pressed(interval):
            return  # on tty1: on to the root shell the banner runs in front of
        new = snapshot()
        if no_password:
            new = dataclasses.replace(new, password=None, password_hidden=True)
        if new != snap:
            snap = new
            sys.stdout.write(clear + render(snap, *size, ascii_only=ascii_only) + "\f\n")
            sys.stdout.flush()


def main() -> None:
    """Entry point of the installer-banner command."""
    cli.run(lambda: app(prog_name="installer-banner"), "installer-banner")
