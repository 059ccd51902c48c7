"""root-keys: add the ssh keys given at boot to root's authorized_keys.

The systemd credential `ssh.authorized_keys.root` (from the kernel command line's
`systemd.set_credential_binary=`, or a VM's SMBIOS type 11 strings) is how systemd defines a
headless key. systemd's own tmpfiles rule for it (provision.conf) is not in NixOS at our pins
(NixOS/nixpkgs#543333 was still open in 2026-07), and it only creates the file: on the kexec
image the hand-off has written it already. So this adds the given keys to whatever is there.
Each line is read as sshd reads it (kexec/authorized_keys.py): one it would not accept is a
line on stderr (the console and the journal) and left out, the others are added once each.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from nixos_images import cli, fsutil
from nixos_images.errors import InputError
from nixos_images.kexec import authorized_keys
from nixos_images.sizes import MiB

CREDENTIAL = "ssh.authorized_keys.root"
ROOT_KEYS = Path("/root/.ssh/authorized_keys")
LIMIT = MiB


def merged(existing: str, given: str) -> tuple[str, list[str]]:
    """Existing with given's keys added (those not in it already, comments aside), and a
    line for each of given's lines left out. sshd takes the first line with a key: a given
    line without options goes before what is there (a restricted line there for the same key
    must not shadow it), the others after."""
    have = {_same(key) for key in map(_parsed, existing.split("\n")) if key is not None}
    added: list[authorized_keys.Key] = []
    problems = []
    for number, line in enumerate(given.split("\n"), start=1):
        try:
            key = authorized_keys.parse_line(line)
        except authorized_keys.KeyLineError as e:
            problems.append(f"{CREDENTIAL}, line {number}: left out ({e})")
            continue
        if key is None or _same(key) in have:
            continue
        if key.key_type in authorized_keys.DROPPED_TYPES:
            reason = authorized_keys.DROPPED_TYPES[key.key_type]
            problems.append(f"{CREDENTIAL}, line {number}: left out ({reason})")
            continue
        have.add(_same(key))
        added.append(key)
    head = existing if not existing or existing.endswith("\n") else existing + "\n"
    first = authorized_keys.render([k for k in added if not k.options])
    last = authorized_keys.render([k for k in added if k.options])
    return first + head + last, problems


def _parsed(line: str) -> authorized_keys.Key | None:
    try:
        return authorized_keys.parse_line(line)
    except authorized_keys.KeyLineError:
        return None


def _same(key: authorized_keys.Key) -> tuple[tuple[str, ...], str, str]:
    """What makes two lines the same grant: options and key, not the comment."""
    return (key.options, key.key_type, key.blob)


def _read(path: Path) -> str:
    try:
        return fsutil.read_untrusted(path, LIMIT)
    except FileNotFoundError:
        return ""
    except (OSError, fsutil.UnsafeFileError) as e:
        raise InputError(path, fsutil.why(e)) from None


app = cli.new_app(__doc__ or "")


@app.command()
def root_keys(
    keys_file: Annotated[
        Path, typer.Option("--authorized-keys", help="Root's authorized_keys file.")
    ] = ROOT_KEYS,
    debug: cli.DebugOption = False,
    version: cli.VersionOption = False,  # noqa: ARG001 - its callback prints and exits
) -> None:
    """Add the keys of the ssh.authorized_keys.root credential (imported by the unit) to
    root's authorized_keys; nothing when there is none."""
    cli.setup(debug=debug)
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory or not (Path(directory) / CREDENTIAL).is_file():
        return
    given = _read(Path(directory) / CREDENTIAL)
    text, problems = merged(_read(keys_file), given)
    for problem in problems:
        sys.stderr.write(f"root-keys: {problem}\n")
    keys_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fsutil.write_atomic(keys_file, text, mode=0o600)


def main() -> None:
    """Entry point of the root-keys command."""
    cli.run(lambda: app(prog_name="root-keys"), "root-keys")
