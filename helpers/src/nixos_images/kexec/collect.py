"""Read what the installer carries over from the old system, into memory; nothing is written.

The result is the state directory (nixos_images.state) as file contents, ready to be packed
into the cpio the launcher appends to the installer's initrd.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images import fsutil, networkd
from nixos_images import state as state_layout
from nixos_images.errors import InputError
from nixos_images.kexec import accounts, authorized_keys, network, sshd_config, sshd_daemon
from nixos_images.kexec.accounts import account
from nixos_images.layout import STATE_FILES
from nixos_images.networkd_units import UNIT_PREFIX
from nixos_images.sizes import MiB

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from nixos_images.networkd_units import Unit

HOST_KEY = re.compile(r"ssh_host_[a-z0-9]+_key(\.pub)?")
MACHINE_ID = re.compile(r"[0-9a-f]{32}")
# The users whose keys the installer's root accepts: root, and whoever ran sudo or doas.
USER_VARIABLES = ("SUDO_USER", "DOAS_USER")
# sshd reads any size; nobody's authorized_keys is near this, and a bigger file is a trap.
KEY_FILE_LIMIT = MiB
# Seconds to read one user's key file (a dead network home must not hang kexec/run).
READ_TIMEOUT = 10.0


# A part of the state: file path inside the state directory -> (content, mode).
Files = dict[str, tuple[bytes, int]]


@dataclass(frozen=True)
class Collected:
    """The state, file path inside the state directory -> (content, mode), plus a report."""

    files: Files = field(default_factory=dict)
    host_keys: tuple[str, ...] = ()
    keys: tuple[authorized_keys.Key, ...] = ()
    key_sources: tuple[str, ...] = ()
    skipped: tuple[authorized_keys.Skipped, ...] = ()
    machine_id: str | None = None
    units: tuple[Unit, ...] = ()
    # The NICs the installer must drive (networkd's kept NICs), each with its driver here.
    nics: tuple[str, ...] = ()
    nic_drivers: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    keys_command: str | None = None  # the old sshd's AuthorizedKeysCommand, if it had one

    @property
    def size(self) -> int:
        """Bytes of state, as the memory check counts them."""
        return sum(len(data) for data, _ in self.files.values())


@dataclass(frozen=True)
class CarriedKeys:
    """What collect_keys found: the keys for the installer's root and where they came from."""

    keys: tuple[authorized_keys.Key, ...]
    sources: tuple[str, ...]
    skipped: tuple[authorized_keys.Skipped, ...]
    command: str | None
    files: Files
    notes: tuple[str, ...]


LAYOUT = state_layout.StateDir(Path("/"))


def _rel(path: Path) -> str:
    """A path of LAYOUT as a path inside the state directory."""
    return str(path.relative_to(LAYOUT.root))


# The tokens sshd expands in AuthorizedKeysFile (sshd_config(5), TOKENS).
_TOKEN = re.compile(r"%(.?)")


def expand(pattern: str, user: str, uid: int, home: Path, root: Path) -> Path | None:
    """An AuthorizedKeysFile pattern for a user: %%, %h, %U, %u expanded in one pass, relative
    to home; None for any other token, on which sshd's lookup dies (percent_expand)."""
    values = {"%": "%", "h": str(home), "u": user, "U": str(uid)}
    unknown = [m.group(1) for m in _TOKEN.finditer(pattern) if m.group(1) not in values]
    if unknown:
        return None
    path = _TOKEN.sub(lambda m: values[m.group(1)], pattern)
    if path.startswith("/"):
        # %h expanded already points below root; other absolute paths are the host's.
        return Path(path) if Path(path).is_relative_to(root) else root / path.lstrip("/")
    return home / path


def strict_modes_problem(path: Path, user_uid: int, home: Path, root: Path) -> str | None:
    """Why sshd's StrictModes would refuse the file: it, or a directory from it up to the
    home directory (or the root, for a file elsewhere), is writable by group or others, or
    owned by someone but the user or root."""
    top = home if path.is_relative_to(home) else root
    if path.is_symlink():
        return None  # never followed: reading it reports that
    # sshd judges the real path (realpath(3)): a home or ~/.ssh that is a symbolic link is
    # judged by what it points to, not by the link's own mode (always 0777).
    path, top = _real(path.parent, root) / path.name, _real(top, root)
    for part in (path, *path.parents):
        try:
            info = part.lstat()
        except OSError:
            return None  # not there: FileNotFoundError comes when it is read
        if info.st_uid not in {0, user_uid}:
            return f"StrictModes: {part} is owned by uid {info.st_uid}"
        if info.st_mode & 0o022:
            return f"StrictModes: {part} is writable by group or others"
        if part == top:
            break
    return None


def _real(directory: Path, root: Path) -> Path:
    """The directory with its symbolic links resolved; under another root than /, only when it
    stays inside that root (an absolute link there names a path of the root's system)."""
    real = directory.resolve()
    return real if root == Path("/") or real.is_relative_to(root) else directory


@dataclass(frozen=True)
class KeyFile:
    """A file sshd read for a user, with what StrictModes judges it by."""

    user: str
    uid: int
    home: Path
    path: Path
    settings: sshd_config.Settings
    reader: fsutil.Identity | None = None  # read as this user, as sshd reads it


def key_files(root: Path, env: Mapping[str, str]) -> tuple[list[KeyFile], list[str]]:
    """Where the old host's sshd read root's and the invoking user's keys, each user's
    settings as sshd applied them to that user (Match User blocks included); and notes on
    whose keys stay behind."""
    notes: list[str] = []
    users = ["root"]
    for var in USER_VARIABLES:
        user = env.get(var, "")
        if user and user not in users:
            users.append(user)
    files = []
    daemon = sshd_daemon.find_daemon(root)  # once: it reads /proc and may run sshd
    for user in users:
        settings = sshd_config.effective(root, user, daemon)
        if user == "root" and settings.permit_root_login == "no":
            notes.append(f"PermitRootLogin no ({settings.source}): root's keys are left out")
            continue
        known = account(user, root)
        if known is None:
            notes.append(f"user {user} is not in /etc/passwd: their keys stay")
            continue
        why = sshd_config.refusal(settings, user, known.groups) or accounts.refusal(
            known, root, use_pam=settings.use_pam
        )
        force = settings.force_command
        if why is None and force is not None and not authorized_keys.writable_command(force):
            why = f"ForceCommand {force!r} cannot be written as command="
        if why is not None:
            notes.append(f"{why} ({settings.source}): {user}'s keys are left out")
            continue
        for pattern in settings.authorized_keys_files:
            path = expand(pattern, user, known.uid, known.home, root)
            if path is None:
                # sshd reads the files in order and its percent_expand() is fatal here: a
                # key no earlier file let in never got in.
                notes.append(
                    f"AuthorizedKeysFile {pattern} has a %-token sshd does not know"
                    f" ({settings.source}): {user}'s later files are left out"
                )
                break
            reader = accounts.identity(user, known, root)
            files.append(KeyFile(user, known.uid, known.home, path, settings, reader))
    return files, notes


def revoked_keys(path: str | None, root: Path) -> frozenset[tuple[str, str]] | str:
    """RevokedKeys' keys as (type, base64), or why they cannot be known (then the keys it
    could revoke stay out: failing closed). A KRL (ssh-keygen -k's binary list) is not read."""
    if path is None:
        return frozenset()
    try:
        text = fsutil.read_untrusted(root / path.lstrip("/"), KEY_FILE_LIMIT)
    except (OSError, fsutil.UnsafeFileError) as e:
        # sshd refuses every key when it cannot read the list (auth.c): so does this.
        return fsutil.why(e)
    if text.startswith("SSHKRL"):
        return "a key revocation list, which the launcher does not read"
    revoked = set()
    for line in text.split("\n"):
        try:
            key = authorized_keys.parse_line(line)
        except authorized_keys.KeyLineError:
            return "a line that is not a key"
        if key is not None:
            revoked.add((key.key_type, key.blob))
    return frozenset(revoked)


GIVEN = "--ssh-key"  # how the report names the keys given on the command line


def _given_text(value: str) -> tuple[str, str]:
    """An --ssh-key value's text and how messages name it: a file that exists is a file,
    whatever its name; otherwise a key has a blank between its type (or options) and its
    data, where a file name usually has none."""
    shown = value if len(value) <= 40 else value[:37] + "..."  # noqa: PLR2004
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InputError(GIVEN, f"{shown!r}: not UTF-8") from None
    if not value.strip():
        raise InputError(GIVEN, "an empty value: give a key or the file of one")
    if os.path.lexists(value) or not re.search(r"[ \t]", value.strip()):
        try:
            return fsutil.read_untrusted(Path(value), KEY_FILE_LIMIT), shown
        except (OSError, fsutil.UnsafeFileError) as e:
            raise InputError(GIVEN, f"{shown}: {fsutil.why(e)}") from None
    return value, f"the key given ({shown})"


def given_keys(values: Sequence[str]) -> str:
    """The keys given with --ssh-key (or --nixos-images-ssh-key=), as one authorized_keys
    text: each value a key line, or the file of some (read as the old host's files are).
    InputError, naming the value, for anything that is not a key sshd would accept: a key
    typed by hand is checked now, not found missing after the kexec."""
    lines = []
    for value in values:
        text, where = _given_text(value)
        found = 0
        for number, line in enumerate(text.split("\n"), start=1):
            try:
                key = authorized_keys.parse_line(line)
            except authorized_keys.KeyLineError as e:
                raise InputError(GIVEN, f"{where}, line {number}: {e}") from None
            if key is not None:
                if key.key_type in authorized_keys.DROPPED_TYPES:
                    reason = authorized_keys.DROPPED_TYPES[key.key_type]
                    raise InputError(GIVEN, f"{where}, line {number}: {reason}")
                lines.append(key.line())
                found += 1
        if not found:
            raise InputError(GIVEN, f"{where}: no key in it")
    return "".join(f"{line}\n" for line in lines)


def collect_keys(root: Path, env: Mapping[str, str], given: str = "") -> CarriedKeys:
    """Root's and the sudo/doas user's keys, for the installer's root (the key policy), and
    the keys given on the command line (given_keys), shown as their own source."""
    sources = []
    shown_sources = []
    commands = set()
    found, notes = key_files(root, env)
    for file in found:
        user, path, settings = file.user, file.path, file.settings
        if settings.authorized_keys_command:
            commands.add(settings.authorized_keys_command)
        shown = "/" + str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        if settings.strict_modes:
            problem = strict_modes_problem(path, file.uid, file.home, root)
            if problem:
                notes.append(f"{shown}: left out (sshd would not read it: {problem})")
                continue
        try:
            text = (
                fsutil.read_untrusted(path, KEY_FILE_LIMIT)
                if file.reader is None
                else fsutil.read_as(path, KEY_FILE_LIMIT, file.reader, READ_TIMEOUT)
            )
        except FileNotFoundError:
            continue
        except (OSError, fsutil.UnsafeFileError) as e:
            notes.append(f"{shown}: left out ({fsutil.why(e)})")
            continue
        revoked = revoked_keys(settings.revoked_keys, root)
        if isinstance(revoked, str):
            notes.append(f"{shown}: left out (RevokedKeys {settings.revoked_keys}: {revoked})")
            continue
        forced_only = user == "root" and settings.permit_root_login == "forced-commands-only"
        sources.append(
            authorized_keys.Source(
                shown,
                user,
                text,
                forced_only=forced_only,
                force_command=settings.force_command,
                accepts=functools.partial(sshd_config.accepted, settings),
                revoked=revoked,
            )
        )
        shown_sources.append(shown)
    if given:
        sources.append(authorized_keys.Source(GIVEN, "root", given, given=True))
        shown_sources.append(GIVEN)
    keys, skipped, merge_notes = authorized_keys.merge(sources)
    notes += merge_notes
    if not keys:
        notes.append("no authorized keys found: nobody will be able to log in over ssh")
    notes += [
        f"the old sshd also asked {command} for keys"
        " (EC2 Instance Connect, OS Login): the installer does not"
        for command in sorted(commands)
    ]
    mode = STATE_FILES["authorizedKeys"].mode
    files = {_rel(LAYOUT.authorized_keys): (authorized_keys.render(keys).encode(), mode)}
    return CarriedKeys(
        tuple(keys),
        tuple(shown_sources),
        tuple(skipped),
        min(commands, default=None),
        files,
        tuple(notes),
    )


def collect_host_keys(root: Path) -> tuple[Files, list[str]]:
    """/etc/ssh/ssh_host_*_key and .pub, every type (private ones stay 0600), and their names."""
    files: Files = {}
    names = []
    for path in sorted((root / "etc/ssh").glob("ssh_host_*")):
        if not HOST_KEY.fullmatch(path.name) or not path.is_file():
            continue
        key_file = STATE_FILES["hostKeys"]
        mode = key_file.public_mode if path.name.endswith(".pub") else None
        files[_rel(LAYOUT.host_keys / path.name)] = (path.read_bytes(), mode or key_file.mode)
        names.append(path.name)
    return files, names


def collect_machine_id(root: Path) -> str | None:
    """/etc/machine-id, if it is a valid one."""
    try:
        # Not UTF-8 is no valid machine-id either: read as bytes, never a traceback.
        text = (root / "etc/machine-id").read_bytes().decode(errors="replace").strip()
    except OSError:
        text = ""
    return text if MACHINE_ID.fullmatch(text) else None


def collect(root: Path, env: Mapping[str, str], ip: tuple[str, ...], given: str = "") -> Collected:
    """Everything the installer carries over, read from the system at root (/ but in tests),
    with the ssh keys given on the command line (given_keys' text)."""
    host_keys, host_key_names = collect_host_keys(root)
    carried = collect_keys(root, env, given)
    machine_id = collect_machine_id(root)
    net = network.collect(root, ip)
    notes = [] if host_key_names else ["no ssh host keys in /etc/ssh: the installer makes new ones"]
    notes += carried.notes
    if machine_id is None:
        notes.append("no valid /etc/machine-id: the installer makes a new one")
    files = {**host_keys, **carried.files}
    if machine_id is not None:
        files[_rel(LAYOUT.machine_id)] = (f"{machine_id}\n".encode(), STATE_FILES["machineId"].mode)
    mode = STATE_FILES["network"].mode
    files |= {_rel(LAYOUT.network / name): (data, mode) for name, data in net.files.items()}
    return Collected(
        files=files,
        host_keys=tuple(host_key_names),
        keys=carried.keys,
        key_sources=carried.sources,
        skipped=carried.skipped,
        machine_id=machine_id,
        units=net.plan.units,
        nics=_used_nics(net),
        nic_drivers=net.state.drivers,
        notes=(*notes, *net.plan.left_behind),
        keys_command=carried.command,
    )


def _used_nics(net: network.Collected) -> tuple[str, ...]:
    """The NICs the restored network uses: those restore-network writes a unit for (an address,
    a route, DHCP, or a port of a bond, bridge or VLAN that has one). A NIC that is down, or a
    second port with nothing on it, cannot cut the installer off, so its driver is not asked."""
    restored = {unit.name for unit in net.plan.units}
    return tuple(
        link.name
        for link in networkd.kept_links(net.state.links)
        if networkd.is_nic(link, net.state.links)
        and f"{UNIT_PREFIX}{link.name}.network" in restored
    )
