"""authorized_keys lines for the installer's root, under the key policy (docs/kexec.md, "Key
policy", states it).

Lines are read as sshd reads them (sshd(8), AUTHORIZED_KEYS FILE FORMAT; auth-options.c): a
line ends at a newline only (a trailing carriage return is ignored), fields are separated by
spaces and tabs only, option names are case-insensitive, values are double-quoted. Anything
sshd would reject (an unknown option, `command=` without quotes, a control character) is
skipped and reported, never rewritten into a key.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass, field

KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-", "rsa-sha2-")
# Signature names sshd also takes as the type of an RSA key (sshkey.c: same key type).
RSA_ALIASES = frozenset({"rsa-sha2-256", "rsa-sha2-512"})
# Key types the installer's OpenSSH no longer accepts: 10.0 removed DSA (its release notes;
# nixpkgs has carried OpenSSH 10 since 2025). Such a line logged in on the old host and would
# not on the installer: it is skipped and reported, never counted as a way in.
DROPPED_TYPES = {
    "ssh-dss": "a DSA key, which the installer's OpenSSH (10 and later) no longer accepts",
    "ssh-dss-cert-v01@openssh.com": "a DSA certificate, which OpenSSH 10 no longer accepts",
}
BLANKS = " \t"
# sshd's options: those that take a quoted value, and flags.
VALUE_OPTIONS = frozenset(
    {"command", "environment", "expiry-time", "from", "permitlisten", "permitopen", "principals",
     "tunnel"}
)  # fmt: skip
FLAG_OPTIONS = frozenset(
    {"agent-forwarding", "cert-authority", "no-agent-forwarding", "no-port-forwarding",
     "no-pty", "no-user-rc", "no-x11-forwarding", "no-touch-required", "port-forwarding", "pty",
     "restrict", "user-rc", "verify-required", "x11-forwarding", "touch-required",
     "no-verify-required"}
)  # fmt: skip
# cloud-init's refusal (cc_ssh.py DISABLE_USER_OPTS), before and since cloud-init 20.3.
CLOUD_INIT_OPTIONS = ("no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding")
CLOUD_INIT_COMMAND = re.compile(
    r"""echo 'Please login as the user \\"[^"\\]*\\" rather than the user \\"root\\".';"""
    r"""echo;sleep 10(;exit 142)?"""
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# In a comment, which sshd never reads, control characters (tabs too) and what other readers
# of the file take as line ends (Python's str.splitlines, editors: C1 controls, U+2028,
# U+2029) are written back as spaces: the line stays one plain line to every reader.
_COMMENT_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class KeyLineError(ValueError):
    """A line sshd would not accept: it is reported and left out, the others still count.

    certain: sshd refuses it whatever its version (a syntax error), so it moves on to the
    key's next line as the launcher does; not certain (an option name this launcher does not
    know, which another sshd version may), a later line for the same key must not take its
    place (merge fails closed for that key)."""

    def __init__(self, message: str, *, certain: bool = True) -> None:
        super().__init__(message)
        self.certain = certain


@dataclass(frozen=True)
class Key:
    """One key line as it will be written for the installer's root."""

    options: tuple[str, ...]
    key_type: str
    blob: str
    comment: str
    # cloud-init's refusal, when this line carried it (not part of what the line is).
    dropped: tuple[str, ...] = field(default=(), compare=False)

    def line(self) -> str:
        """The key as an authorized_keys line."""
        fields = [",".join(self.options)] if self.options else []
        fields += [self.key_type, self.blob]
        if self.comment:
            fields.append(self.comment)
        return " ".join(fields)

    def option_names(self) -> set[str]:
        """The options' names, lower case."""
        return {o.split("=", 1)[0].lower() for o in self.options}


# Key options by the OpenSSH release that first knew them (auth-options.c); older ones know
# the rest of OPTIONS. An sshd that did not know an option skipped the whole line and went on.
OPTION_SINCE = {
    **dict.fromkeys(
        ("restrict", "port-forwarding", "agent-forwarding", "x11-forwarding", "pty", "user-rc"),
        (7, 2),
    ),
    "expiry-time": (7, 7),
    "permitlisten": (7, 8),
    **dict.fromkeys(("touch-required", "no-touch-required"), (8, 2)),
    **dict.fromkeys(("verify-required", "no-verify-required"), (8, 4)),
}


def unknown_to(key: Key, version: tuple[int, int] | None) -> list[str]:
    """The line's options that this OpenSSH version did not know (none when unknown)."""
    if version is None:
        return []
    return sorted(n for n in key.option_names() if OPTION_SINCE.get(n, (0, 0)) > version)


def is_key_type(token: str) -> bool:
    """Whether a token names a key type (which options never do)."""
    return token.startswith(KEY_TYPE_PREFIXES)


def split_options(text: str) -> tuple[list[str], str]:
    """Split the leading options off a line: (options, rest). Quoted values may hold , and
    blanks, and a backslashed quote; every option must be one sshd knows, in the form it takes."""
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
        elif c in BLANKS:
            break
        else:
            current.append(c)
        i += 1
    if quoted:
        raise KeyLineError("unterminated quote in the options")
    if current or not options or i == len(text):
        options.append("".join(current))  # sshd takes `a, key`: a comma before the blank
    _check_options(options)
    return options, text[i:].lstrip(BLANKS)


def _check_options(options: list[str]) -> None:
    names = [o.partition("=")[0].lower() for o in options]
    twice = sorted({n for n in names if names.count(n) > 1} & {"command", "from", "principals"})
    if twice:
        # sshd 7.7 and later refuse the line; older ones took the last: not judged here.
        raise KeyLineError(f"option {twice[0]} given twice", certain=False)
    for option in options:
        _check_option(option)


def _check_option(option: str) -> None:
    name, sep, value = option.partition("=")
    lower = name.lower()
    if lower in FLAG_OPTIONS and not sep:
        return
    if lower in VALUE_OPTIONS:
        # One quoted string (sshd's opt_dequote: nothing after its closing quote).
        if re.fullmatch(r'"(?:[^"\\]|\\.)*"', value):
            return
        raise KeyLineError(f"option {name} needs a double-quoted value, as sshd requires")
    raise KeyLineError(
        f"option {option or '(empty)'!r} is not one sshd accepts", certain=bool(option) is False
    )


def rsa_bits(blob: str) -> int | None:
    """An RSA public key's modulus size in bits (its blob: the type, e, n), or None."""
    try:
        raw = base64.b64decode(blob, validate=True)
        fields = []
        offset = 0
        for _ in range(3):
            (length,) = struct.unpack(">I", raw[offset : offset + 4])
            fields.append(raw[offset + 4 : offset + 4 + length])
            offset += 4 + length
    except (binascii.Error, ValueError, struct.error):
        return None
    if fields[0] != b"ssh-rsa":
        return None
    return int.from_bytes(fields[2], "big").bit_length()


# The names sshd takes for a key type inside a key's data (sshkey.c's keytypes: the full
# names, RSA's signature names, and the short names, in any case), as the type's own name.
_BLOB_TYPES = {
    "rsa-sha2-256": "ssh-rsa",
    "rsa-sha2-512": "ssh-rsa",
    "rsa": "ssh-rsa",
    "ed25519": "ssh-ed25519",
    "dsa": "ssh-dss",
    "ed25519-sk": "sk-ssh-ed25519@openssh.com",
}
_SKIPPED_IN_BASE64 = re.compile(r"[\t\n\v\f\r ]")


def _fields(raw: bytes) -> list[bytes]:
    """An SSH wire blob's strings (length-prefixed); ValueError where one is cut off."""
    fields, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack(">I", raw[offset : offset + 4].rjust(4, b"\xff"))
        if offset + 4 + length > len(raw):
            raise ValueError
        fields.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return fields


def canonical(key_type: str, blob: str) -> tuple[str, str]:
    """The key as sshd compares it: its data decoded as sshd decodes it (blanks skipped, a NUL
    ending it), its type as sshd names it whatever the data calls it, an RSA key's numbers
    without leading zeros; re-encoded. Where the data does not decode, the type and data as
    written (nothing else can match them)."""
    text = _SKIPPED_IN_BASE64.sub("", blob.split("\0", 1)[0])
    try:
        fields = _fields(base64.b64decode(text, validate=True))
        name = fields[0].decode()
    except (binascii.Error, ValueError, IndexError, struct.error, UnicodeDecodeError):
        return (_BLOB_TYPES.get(key_type, key_type), blob)
    named = _BLOB_TYPES.get(name.lower(), name)
    rest = fields[1:]
    if name.lower() in {"ecdsa", "ecdsa-sk"} and rest:  # the curve names the type
        curve = rest[0].decode(errors="replace")
        named = (
            f"ecdsa-sha2-{curve}"
            if name.lower() == "ecdsa"
            else f"sk-ecdsa-sha2-{curve}@openssh.com"
        )
    if named == "ssh-rsa":
        rest = [_mpint(f) for f in rest]
    encoded = b"".join(struct.pack(">I", len(f)) + f for f in [named.encode(), *rest])
    return (named, base64.b64encode(encoded).decode())


def _mpint(value: bytes) -> bytes:
    """An SSH mpint without leading zero bytes but the one a high bit needs."""
    stripped = value.lstrip(b"\0")
    return b"\0" + stripped if stripped and stripped[0] & 0x80 else stripped


def check_blob(key_type: str, blob: str) -> None:
    """The base64 must decode and start with the key type it claims (catches cut-off lines)."""
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as e:  # ValueError: not even ASCII
        raise KeyLineError("the key is not valid base64") from e
    if len(raw) < 4:  # noqa: PLR2004 - the length prefix of the type string
        raise KeyLineError("the key is too short")
    (length,) = struct.unpack(">I", raw[:4])
    claimed = "ssh-rsa" if key_type in RSA_ALIASES else key_type
    if raw[4 : 4 + length] != claimed.encode():
        # sshd also takes a signature or short name there (rsa-sha2-512, ED25519): what it
        # made of the line is not judged here, and the key's later lines must not stand in.
        same = canonical(key_type, blob)[0] == canonical(claimed, "")[0]
        raise KeyLineError(f"the key data is not a {key_type} key", certain=not same)


def writable_command(command: str) -> bool:
    """Whether with_command can write command so that sshd reads it back as it is: not when
    it ends in a backslash (sshd would read it and the closing quote as an escaped quote)."""
    return not command.endswith("\\")


def with_command(key: Key, command: str) -> Key:
    """The key with command= set to command, as sshd's ForceCommand overrides the key's own.
    In a quoted value sshd reads only a backslashed quote as special (auth-options.c): quotes
    are escaped, backslashes are not (see writable_command)."""
    kept = tuple(o for o in key.options if o.split("=", 1)[0].lower() != "command")
    quoted = command.replace('"', '\\"')
    return Key((*kept, f'command="{quoted}"'), key.key_type, key.blob, key.comment, key.dropped)


def without_cloud_init_refusal(key: Key) -> Key:
    """Key with cloud-init's refusal and the options of its template taken out (the rest
    kept, what was taken in `dropped`); key itself when it carries no such refusal.

    Only for root's own lines: that refusal is cloud-init's way of saying "log in as the
    user instead", which the installer has no user for. On another user's line it is what
    that user's key did, and stays."""
    options = list(key.options)
    commands = [o for o in options if o.split("=", 1)[0].lower() == "command"]
    quoted = commands[0].split("=", 1)[1] if len(commands) == 1 else ""
    if not CLOUD_INIT_COMMAND.fullmatch(quoted[1:-1]):
        return key
    template = {*CLOUD_INIT_OPTIONS, "command"}
    kept = tuple(o for o in options if o.split("=", 1)[0].lower() not in template)
    dropped = tuple(o for o in options if o not in kept)
    return Key(kept, key.key_type, key.blob, key.comment, dropped)


def parse_line(line: str) -> Key | None:
    """One line: a Key, None for blanks and comments, KeyLineError for anything else."""
    text = line.removesuffix("\r").lstrip(BLANKS)
    if not text or text.startswith("#"):
        return None
    options: list[str] = []
    first = re.split(r"[ \t]+", text, maxsplit=1)[0]
    if not is_key_type(first):
        options, text = split_options(text)
    fields = re.split(r"[ \t]+", text, maxsplit=2)
    if len(fields) < 2 or not is_key_type(fields[0]):  # noqa: PLR2004 - type and key
        raise KeyLineError("no key type (ssh-*, ecdsa-*, sk-*) where one is expected")
    if _CONTROL.search(fields[0]):
        raise KeyLineError("a control character: sshd would not read this line as written")
    if _CONTROL.search(fields[1]):
        # sshd's base64 decoder skips \f and \r, and a NUL ends the data: it may well have
        # read this key, which the launcher does not write back: later lines must not count.
        raise KeyLineError("a control character in the key's data", certain=False)
    if _CONTROL.search(",".join(options)):
        # sshd reads an option with one (a forced command's output, say): what it made of the
        # line cannot be written back, and a later line must not take its place.
        raise KeyLineError("a control character in its options", certain=False)
    check_blob(fields[0], fields[1])
    comment = fields[2] if len(fields) > 2 else ""  # noqa: PLR2004
    # Stripped at both ends: a comment that began with one would lose its blank when read
    # back (blanks separate the fields).
    comment = _COMMENT_UNSAFE.sub(" ", comment).strip(BLANKS)
    return Key(tuple(options), fields[0], fields[1], comment)


def render(keys: list[Key]) -> str:
    """An authorized_keys file of keys."""
    return "".join(f"{k.line()}\n" for k in keys)
