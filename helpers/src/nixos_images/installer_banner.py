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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nixos_images import banner_screen, cli, iproute, process
from nixos_images import password_file as saved_password
from nixos_images.banner_screen import Interface, Snapshot
from nixos_images.errors import HelperError, InputError
from nixos_images.layout import ONION_HOSTNAME, ROOT_PASSWORD_FILE
from nixos_images.terminal import printable

if TYPE_CHECKING:
    from collections.abc import Sequence

ONION_FILE = ONION_HOSTNAME
SSH_DIR = Path("/etc/ssh")
# A terminal that does not know its size (a serial console, mostly): a VT100's.
DEFAULT_SIZE = (80, 24)
# Rows a shell prompt takes after a banner that does not hold the screen (NixOS's PS1 starts
# with an empty line).
PROMPT_ROWS = 2
CLEAR = "\033[H\033[2J"
REFRESH = 60.0  # seconds: a redraw at least this often, in case the kernel wrote over it


def interfaces_from(data: list[object]) -> tuple[Interface, ...]:
    """Interfaces with addresses from `ip --json addr` output; loopback and host scope left
    out, and so is an interface whose entry does not parse: the others are still shown."""
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
    password_file: Path = ROOT_PASSWORD_FILE,
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
    saved = saved_password.parse(_read(password_file) or "")
    return Snapshot(
        hostname=printable(socket.gethostname()),
        password=saved.password,
        password_set_by=saved.credential.value if saved.credential else None,
        onion=_read(onion_file),
        interfaces=_interfaces(ip),
        fingerprints=tuple(fingerprints),
    )


def _interfaces(ip: Sequence[str]) -> tuple[Interface, ...]:
    """The addresses `ip` shows; none when it cannot be run or prints nonsense (the banner
    must stay up: it is what a person at the console reads)."""
    try:
        data = json.loads(
            process.run([*ip, "--json", "addr"], call=process.Call.IP, check=True).stdout
        )
    except (HelperError, OSError, ValueError):
        return ()
    return interfaces_from(data) if isinstance(data, list) else ()


def _terminal_size() -> tuple[int, int]:
    """The terminal's columns and rows; DEFAULT_SIZE when it does not say (0x0 on a serial
    console nobody set the size of) or stdout is not a terminal."""
    if sys.stdout.isatty():
        size = os.get_terminal_size(sys.stdout.fileno())
        if size.columns and size.lines:
            return size.columns, size.lines
    return DEFAULT_SIZE


def parse_size(text: str) -> tuple[int, int]:
    """WxH, e.g. 80x25."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) and int(height)):
        raise typer.BadParameter(f"{text!r} is not WxH, e.g. 80x25")
    return int(width), int(height)


def _write(text: str) -> None:
    """UTF-8 whatever the locale: the half blocks must reach the terminal."""
    sys.stdout.buffer.write(text.encode())
    sys.stdout.flush()


def _enter_pressed(timeout: float) -> bool:
    """Wait up to timeout; True when a line was typed on the terminal on stdin (never when
    stdin is not a terminal: /dev/null would read as an endless run of empty lines)."""
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
        bool,
        typer.Option(
            "--json", help="Print the QR payload (with --for-screen: that screen's) and exit."
        ),
    ] = False,
    text_only: Annotated[
        bool, typer.Option("--text", help="Print everything as text, without the code.")
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Hold the screen: redraw when anything shown changes; Enter ends it.",
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between checks.")
    ] = 2.0,
    ascii_only: Annotated[
        bool, typer.Option("--ascii", help="Draw the code in ASCII, for terminals without it.")
    ] = False,
    for_screen: Annotated[
        str | None,
        typer.Option(
            "--for-screen",
            metavar="WxH",
            help="Screen size to draw for (default: the terminal's, else 80x24).",
        ),
    ] = None,
    password_file: Annotated[Path, typer.Option("--password-file")] = ROOT_PASSWORD_FILE,
    no_password: Annotated[
        bool,
        typer.Option(
            "--no-password",
            help="Leave the root password out of the text and the QR code (serial consoles).",
        ),
    ] = False,
    onion_file: Annotated[Path, typer.Option("--onion-file")] = ONION_FILE,
    no_tor: Annotated[
        bool,
        typer.Option("--no-tor", help="This installer runs no Tor: show no onion address."),
    ] = False,
    ssh_dir: Annotated[Path, typer.Option("--ssh-dir")] = SSH_DIR,
    debug: cli.DebugOption = False,
    version: cli.VersionOption = False,  # noqa: ARG001 - its callback prints and exits
) -> None:
    """Show the hostname, root password, addresses, onion address, ssh host key
    fingerprints and a QR code with {"pass", "tor", "addrs"} for clan's installer tools."""
    cli.setup(debug=debug)
    width, height = parse_size(for_screen) if for_screen else _terminal_size()

    def snapshot() -> Snapshot:
        snap = gather(password_file=password_file, onion_file=onion_file, ssh_dir=ssh_dir)
        if no_password:
            snap = dataclasses.replace(snap, password=None, password_hidden=True)
        if no_tor:
            snap = dataclasses.replace(snap, onion=None, tor=False)
        return snap

    snap = snapshot()
    if json_only:
        payload = (
            banner_screen.layout(snap, width, height, ascii_only=ascii_only).payload
            if for_screen
            else next(banner_screen.payloads(snap))
        )
        _write((payload or b"null").decode() + "\n")
        return
    if text_only:
        _write(banner_screen.full_text(snap, width))
        return
    if not watch:
        # The prompt comes after: leave it its rows, end with a newline.
        rows = max(height - PROMPT_ROWS, 1)
        _write(banner_screen.layout(snap, width, rows, ascii_only=ascii_only).text() + "\n")
        return
    _write(CLEAR + banner_screen.layout(snap, width, height, ascii_only=ascii_only).text())
    drawn = time.monotonic()
    while True:
        if _enter_pressed(interval):
            return  # on to the root shell the banner runs in front of
        new = snapshot()
        # Kernel messages go to the same consoles and can scroll the code away: draw it
        # again now and then even when nothing changed.
        if new != snap or time.monotonic() - drawn >= REFRESH:
            snap = new
            _write(CLEAR + banner_screen.layout(snap, width, height, ascii_only=ascii_only).text())
            drawn = time.monotonic()


def main() -> None:
    """Entry point of the installer-banner command."""
    cli.run(lambda: app(prog_name="installer-banner"), "installer-banner")
