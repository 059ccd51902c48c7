"""The key policy (docs/kexec.md, "Key policy"): root's and the sudo user's authorized_keys
lines, read as the old sshd read them (each user's files one stream, the first matching line
first), merged into one file for the installer's root. Lines are parsed by authorized_keys.py.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nixos_images.kexec import key_options
from nixos_images.kexec.authorized_keys import (
    BLANKS,
    DROPPED_TYPES,
    RSA_ALIASES,
    Key,
    KeyLineError,
    canonical,
    is_key_type,
    parse_line,
    rsa_bits,
    unknown_to,
    with_command,
    without_cloud_init_refusal,
)

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class Skipped:
    """A line that was left out, and why."""

    source: str
    line_number: int
    reason: str


@dataclass(frozen=True)
class Source:
    """An authorized_keys file's text, whose it was, and where it was read."""

    path: str
    user: str
    text: str
    forced_only: bool = False  # PermitRootLogin forced-commands-only: only command= lines count
    given: bool = False  # the operator's own (--ssh-key): kept exactly as written
    # sshd's ForceCommand for this user: it overrides every key's command= there.
    force_command: str | None = None
    # PubkeyAcceptedAlgorithms for this user: whether a key type got in (None: every type).
    accepts: Callable[[str], bool] | None = None
    # RevokedKeys' keys, (type, base64): never carried.
    revoked: frozenset[tuple[str, str]] = frozenset()
    # Where kexec/run's login came from, when sshd's grant depended on it (Match Address,
    # Host, ...): what was granted for that address is carried for that address only.
    only_from: str | None = None
    # sshd_config's session restrictions for this user, as key options (no-pty, ...).
    session_options: tuple[str, ...] = ()
    # The old sshd's OpenSSH version: a line with an option it did not know never counted.
    version: tuple[int, int] | None = None
    # PubkeyAuthOptions: touch-required, verify-required for every security key.
    pubkey_auth_options: frozenset[str] = frozenset()
    # Why this user's CA lines cannot be carried (sshd_algorithms.ca_refusal), if they cannot.
    ca_refusal: str | None = None
    # UseDNS yes: from= host name patterns matched the client's DNS name.
    use_dns: bool = False
    # PermitUserEnvironment or SetEnv: a forced command ran with an environment of theirs.
    session_environment: bool = False
    # RequiredRSASize: smaller RSA keys never got in.
    required_rsa_size: int = 1024


def _for_root(key: Key, user: str) -> Key:
    """A user's line as root's: a cert-authority line keeps meaning the user's certificates
    (without principals=, sshd checks a certificate's principals against the user name)."""
    if user == "root" or "cert-authority" not in key.option_names():
        return key
    if "principals" in key.option_names():
        return key
    return Key((*key.options, f'principals="{user}"'), key.key_type, key.blob, key.comment)


def _canonical(key_type: str) -> str:
    """The type sshd takes a key for: an RSA key written as a signature name is ssh-rsa."""
    return "ssh-rsa" if key_type in RSA_ALIASES else key_type


def identity(key: Key) -> tuple[bool, str, str]:
    """What sshd matches a line by: the key (as sshd decodes and compares it: an RSA key
    whatever its type is written as, padded numbers and all), or the CA whose certificates
    it accepts."""
    return ("cert-authority" in key.option_names(), *canonical(key.key_type, key.blob))


def unconditional(key: Key) -> bool:
    """Whether the line applies to every login with its key (no from=, no expiry-time=, not a
    CA's, which applies to the certificates whose principals it names): sshd takes the first
    line that applies, so later lines with the same key are never reached."""
    return not key.option_names() & {"from", "expiry-time", "cert-authority"}


@dataclass
class _Group:
    """One key's lines from every file, the non-root users' files first."""

    lines: list[Key] = field(default_factory=list)
    # A user's file whose first line for the key has no options: that user logged in with it
    # unrestricted from anywhere, so the installer's root may too.
    free: Key | None = None

    def ordered(self) -> list[Key]:
        """The lines as the installer's root reads them, first match first."""
        if self.free is None:
            # Each file's lines in its order (sshd's first match), the users' files first:
            # any login gets what one of the old files gave it, never more.
            return list(dict.fromkeys(self.lines))
        rest = [k for k in self.lines if k != self.free and "command" not in k.option_names()]
        return [self.free, *sorted(dict.fromkeys(rest), key=lambda k: bool(k.options))]


def _refused(key: Key, source: Source) -> str | None:
    """Why the old sshd never let this line's key (or CA's certificates) in, or None."""
    if key.key_type in DROPPED_TYPES:
        return DROPPED_TYPES[key.key_type]
    cert = "cert-authority" in key.option_names()
    if cert and source.ca_refusal is not None:
        return source.ca_refusal
    # A CA line lets certificates in: judged by certificate types (of the CA's key type;
    # ca_refusal judges the types its users' certificates may have).
    judged = f"{key.key_type}-cert-v01@openssh.com" if cert else key.key_type
    if source.accepts is not None and not source.accepts(judged):
        return f"PubkeyAcceptedAlgorithms leaves {judged} out"
    if canonical(key.key_type, key.blob) in {canonical(t, b) for t, b in source.revoked}:
        return "RevokedKeys lists it"
    if source.use_dns and any(_names_a_host(p) for p in _from_patterns(key)):
        return "its from= names hosts, which UseDNS yes matched by DNS name: not judged here"
    return _forced_refusal(key, source) or _size_refusal(key, source)


def _forced_refusal(key: Key, source: Source) -> str | None:
    """Why a line with a forced command (its command=, or the user's ForceCommand) cannot be
    carried: another user's would run as root on the installer, with root's rights over
    what it touches (rsync, borg, internal-sftp); and one that ran with an environment
    (PermitUserEnvironment, SetEnv) would run without it."""
    if "command" not in key.option_names() and source.force_command is None:
        return None
    if source.user != "root" and not source.given:
        return f"a forced command of {source.user}'s would run as root on the installer"
    if source.session_environment:
        return "its forced command ran with PermitUserEnvironment's or SetEnv's environment"
    return None


def _size_refusal(key: Key, source: Source) -> str | None:
    """RequiredRSASize: a smaller RSA key never got in."""
    if _canonical(key.key_type) != "ssh-rsa" or "cert-authority" in key.option_names():
        return None
    bits = rsa_bits(key.blob)
    if bits is not None and bits < source.required_rsa_size:
        return f"RequiredRSASize {source.required_rsa_size}: the key has {bits} bits"
    return None


def _from_patterns(key: Key) -> list[str]:
    """The patterns of the line's from= options, without their ! and quotes."""
    return [
        pattern.lstrip("!")
        for option in key.options
        if option.split("=", 1)[0].lower() == "from"
        for pattern in option.split("=", 1)[1].strip('"').split(",")
    ]


def _names_a_host(pattern: str) -> bool:
    """Whether a from= pattern can match a host name (not only an address: a CIDR block,
    or an address with * and ? wildcards)."""
    with contextlib.suppress(ValueError):
        ipaddress.ip_network(pattern, strict=False)
        return False
    return re.fullmatch(r"[0-9.*?]+|[0-9A-Fa-f:.*?]*:[0-9A-Fa-f:.*?]*", pattern) is None


def _admitted(key: Key, source: Source) -> Key | str:
    """The key as the installer's root gets it from this source (cloud-init's refusal off root's
    own lines, sshd's ForceCommand as its command=), or why the installer leaves it out."""
    refused = _refused(key, source)
    if refused is not None:
        return refused
    if source.user == "root" and not source.given:
        key = without_cloud_init_refusal(key)
    if source.force_command is not None:
        key = with_command(key, source.force_command)
    try:
        key = key_options.expiry_in_utc(key)
    except ValueError as e:
        return str(e)
    key = key_options.with_pubkey_auth_options(key, source.pubkey_auth_options)
    missing = key_options.session_options(key, source.session_options)
    if missing:
        key = Key((*key.options, *missing), key.key_type, key.blob, key.comment)
    if source.only_from is not None:
        if "from" in key.option_names():
            return "its own from= and sshd_config's Match on the address cannot be carried together"
        key = Key((*key.options, f'from="{source.only_from}"'), key.key_type, key.blob, key.comment)
    return key


def keys_in(text: str) -> list[tuple[str, str]]:
    """The (type, base64) of every key of an authorized_keys text's lines that parse (for a
    revocation list to be asked about: a line that does not is never carried)."""
    found = []
    for line in text.split("\n"):
        with contextlib.suppress(KeyLineError):
            key = parse_line(line)
            if key is not None:
                found.append((key.key_type, key.blob))
    return found


def loose_identity(line: str) -> tuple[bool, str, str] | None:
    """The key a line that did not parse is for (the first key type followed by a word), as
    identity() has it; None when none shows."""
    words = re.split(r"[ \t]+", line.strip(BLANKS))
    for i, word in enumerate(words[:-1]):
        if is_key_type(word):
            before = " ".join(words[:i]).lower()
            return ("cert-authority" in before, *canonical(word, words[i + 1]))
    return None


@dataclass
class _Stream:
    """One user's files read as sshd reads them: one stream, first matching line first."""

    # key -> (file, line) of its unconditional line: later lines are never reached.
    first: dict[tuple[bool, str, str], tuple[str, int]] = field(default_factory=dict)
    # key -> (file, line) of a line for it that could not be judged: later lines must not
    # take its place.
    blocked: dict[tuple[bool, str, str], tuple[str, int]] = field(default_factory=dict)

    def shadowing(self, key: Key, path: str) -> str | None:
        """Why an earlier line of the stream keeps sshd (or the launcher) from this one."""

        def where(at: tuple[str, int]) -> str:
            return f"line {at[1]}" if at[0] == path else f"{at[0]}:{at[1]}"

        if identity(key) in self.blocked:
            return (
                f"{where(self.blocked[identity(key)])} has the same key and could not be"
                " judged: left out rather than let in where that line may have restricted it"
            )
        if identity(key) in self.first:
            return f"sshd never reached it: {where(self.first[identity(key)])} has the same key"
        return None


def _too_new(key: Key, source: Source) -> str | None:
    """Why the old sshd skipped the line as a whole (an option its version did not know)."""
    too_new = unknown_to(key, source.version)
    if not too_new:
        return None
    release = ".".join(map(str, source.version or ()))
    return f"OpenSSH {release} did not know {', '.join(too_new)}: sshd skipped the line"


def _read(source: Source, stream: _Stream, skipped: list[Skipped], notes: list[str]) -> list[Key]:
    """A file's lines that sshd reached, as root's; what it would not use goes to skipped.
    stream: what the user's earlier files (AuthorizedKeysFile's order) already decided."""
    keys: list[Key] = []
    for number, line in enumerate(source.text.split("\n"), start=1):
        try:
            key = parse_line(line)
        except KeyLineError as e:
            skipped.append(Skipped(source.path, number, str(e)))
            loose = None if e.certain else loose_identity(line)
            if loose is not None:
                stream.blocked.setdefault(loose, (source.path, number))
            continue
        if key is None:
            continue
        here = (source.path, number)
        unread = _too_new(key, source) or stream.shadowing(key, source.path)
        if unread:
            skipped.append(Skipped(source.path, number, unread))
            continue
        # Judged as sshd judged the line as written, before anything is added to it.
        if unconditional(key):
            stream.first[identity(key)] = here
        if source.forced_only and "command" not in key.option_names():
            skipped.append(Skipped(source.path, number, "PermitRootLogin forced-commands-only"))
            # Where this line applied, sshd refused the key; a later line must not stand in.
            stream.blocked.setdefault(identity(key), here)
            continue
        admitted = _admitted(key, source)
        if isinstance(admitted, str):
            skipped.append(Skipped(source.path, number, admitted))
            stream.blocked.setdefault(identity(key), here)
            continue
        key = admitted
        rooted = _for_root(key, source.user)
        if rooted is not key:
            notes.append(
                f"{source.path}:{number}: cert-authority limited to certificates for"
                f" {source.user} (principals added)"
            )
        keys.append(rooted)
    return keys


def merge(sources: list[Source]) -> tuple[list[Key], list[Skipped], list[str]]:
    """Root's and the sudo/doas user's keys as one file for the installer's root.

    Each file is read as sshd read it: the first line that applies to a login decides, so a
    line after an unconditional one with the same key is skipped as never reached. A key
    that a file let in unrestricted from anywhere (its first line has no options) gets that
    line first, and its forced-command copies are dropped; other keys keep every distinct
    line, each file's in its order, the sudo user's files first. So a restricted copy of the
    caller's key never shadows their unrestricted one, and no login gets more than one of the
    old files gave it. Returns the keys, the skipped lines, and notes for the report.
    """
    skipped: list[Skipped] = []
    notes: list[str] = []
    groups: dict[tuple[bool, str, str], _Group] = {}
    # Each user's files are one stream, in AuthorizedKeysFile's order; the keys given on the
    # command line are a stream of their own.
    streams: dict[tuple[str, bool], list[Key]] = {}
    states: dict[tuple[str, bool], _Stream] = {}
    for source in sources:
        owner = (source.user, source.given)
        state = states.setdefault(owner, _Stream())
        streams.setdefault(owner, []).extend(_read(source, state, skipped, notes))
    for _, keys in sorted(streams.items(), key=lambda s: s[0][0] == "root"):
        seen: set[tuple[bool, str, str]] = set()
        for key in keys:
            group = groups.setdefault(identity(key), _Group())
            group.lines.append(key)
            if identity(key) not in seen and not key.options and group.free is None:
                group.free = key
            seen.add(identity(key))
    ordered = sorted(groups.values(), key=lambda g: g.free is None)
    return [k for g in ordered for k in g.ordered()], skipped, notes
