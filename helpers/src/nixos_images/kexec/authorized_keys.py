"""authorized_keys lines, made usable by the installer's root.

A line is `[options] keytype base64 [comment]` (sshd(8), AUTHORIZED_KEYS FILE FORMAT). Cloud
images put forced commands on root's keys ("Please login as the user debian"); after the kexec
those would lock the user out, so the options that stop root from getting a shell (command=,
restrict, no-pty) are dropped and every other option is kept.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

# Options that would stop root from getting a login shell on the installer.
DROPPED_OPTIONS = frozenset({"command", "restrict", "no-pty"})

KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")


class KeyLineError(ValueError):
    """A line that is not a key: it is reported and left out, the others still count."""


@dataclass(frozen=True)
class Key:
    """One key as it will be written for the installer's root."""

    options: tuple[str, ...]
    key_type: str
    blob: str
    comment: str
    dropped: tuple[str, ...]

    def line(self) -> str:
        """The key as an authorized_keys line."""
        fields = [",".join(self.options)] if self.options else []
        fields += [self.key_type, self.blob]
        if self.comment:
            fields.append(self.comment)
        return " ".join(fields)


def is_key_type(token: str) -> bool:
    """Whether a token names a key type (which options never do)."""
    return token.startswith(KEY_TYPE_PREFIXES)


def split_options(text: str) -> tuple[list[str], str]:
    """Split the leading options off a line: (options, rest). Quoted values may hold , and space."""
    options: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\" and i + 1 < len(text) and text[i + 1] == '"':
                current.append('\\"')
                i += 2
                continue
            quoted = c != '"'
            current.append(c)
        elif c == '"':
            quoted = True
            current.append(c)
        elif c == ",":
            options.append("".join(current))
            current = []
        elif c in " \t":
            break
        else:
            current.append(c)
        i += 1
    if quoted:
        raise KeyLineError("unterminated quote in the options")
    options.append("".join(current))
    if any(not o for o in options):
        raise KeyLineError("empty option")
    return options, text[i:].strip()


def check_blob(key_type: str, blob: str) -> None:
    """The base64 must decode and start with the key type it claims (catches cut-off lines)."""
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error as e:
        raise KeyLineError("the key is not valid base64") from e
    if len(raw) < 4:  # noqa: PLR2004 - the length prefix of the type string
        raise KeyLineError("the key is too short")
    (length,) = struct.unpack(">I", raw[:4])
    if raw[4 : 4 + length] != key_type.encode():
        raise KeyLineError(f"the key data is not a {key_type} key")


def parse_line(line: str) -> Key | None:
    """One line: a Key, None for blanks and comments, KeyLineError for anything else."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    options: list[str] = []
    if not is_key_type(text.split(None, 1)[0]):
        options, text = split_options(text)
    fields = text.split(None, 2)
    if len(fields) < 2 or not is_key_type(fields[0]):  # noqa: PLR2004 - type and key
        raise KeyLineError("no key type (ssh-*, ecdsa-*, sk-*) where one is expected")
    check_blob(fields[0], fields[1])
    kept = tuple(o for o in options if o.split("=", 1)[0].lower() not in DROPPED_OPTIONS)
    dropped = tuple(o for o in options if o not in kept)
    comment = fields[2] if len(fields) > 2 else ""  # noqa: PLR2004
    return Key(kept, fields[0], fields[1], comment, dropped)


@dataclass(frozen=True)
class Skipped:
    """A line that was left out, and why."""

    source: str
    line_number: int
    reason: str


def merge(files: list[tuple[str, str]]) -> tuple[list[Key], list[Skipped]]:
    """Keys from (source, text) pairs in order; a key already seen is not repeated."""
    keys: list[Key] = []
    skipped: list[Skipped] = []
    seen: set[tuple[str, str]] = set()
    for source, text in files:
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                key = parse_line(line)
            except KeyLineError as e:
                skipped.append(Skipped(source, number, str(e)))
                continue
            if key is not None and (key.key_type, key.blob) not in seen:
                seen.add((key.key_type, key.blob))
                keys.append(key)
    return keys, skipped


def render(keys: list[Key]) -> str:
    """An authorized_keys file of keys."""
    return "".join(f"{k.line()}\n" for k in keys)
