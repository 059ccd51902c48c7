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
from nixos_images.kexec import (
    authorized_keys,
    key_files,
    key_policy,
    network,
    sshd_algorithms,
    trusted_ca,
)
from nixos_images.kexec import revoked as revoked_keys
from nixos_images.layout import STATE_FILES
from nixos_images.networkd_units import UNIT_PREFIX

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from nixos_images.networkd_units import Unit

HOST_KEY = re.compile(r"ssh_host_[a-z0-9]+_key(\.pub)?")
MACHINE_ID = re.compile(r"[0-9a-f]{32}")


# A part of the state: file path inside the state directory -> (content, mode).
Files = dict[str, tuple[bytes, int]]


@dataclass(frozen=True)
class Collected:
    """The state, file path inside the state directory -> (content, mode), plus a report."""

    files: Files = field(default_factory=dict)
    host_keys: tuple[str, ...] = ()
    keys: tuple[authorized_keys.Key, ...] = ()
    key_sources: tuple[str, ...] = ()
    skipped: tuple[key_policy.Skipped, ...] = ()
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
    skipped: tuple[key_policy.Skipped, ...]
    command: str | None
    files: Files
    notes: tuple[str, ...]


LAYOUT = state_layout.StateDir(Path("/"))


def _rel(path: Path) -> str:
    """A path of LAYOUT as a path inside the state directory."""
    return str(path.relative_to(LAYOUT.root))


GIVEN = "--ssh-key"  # how the report names the keys given on the command line
# Why a key file is left out where sshd read it (fsutil.read_untrusted's refusals).
NOT_SSHDS_REASONS = frozenset({"a symbolic link", f"larger than {key_files.KEY_FILE_LIMIT} bytes"})


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
            return fsutil.read_untrusted(Path(value), key_files.KEY_FILE_LIMIT), shown
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


def _read_file(
    file: key_files.KeyFile, root: Path, shown: str, notes: list[str]
) -> str | bool | None:
    """A key file's text (TrustedUserCAKeys' as lines), None when it is not there or left
    out, False when left out where sshd read it (NOT_SSHDS_REASONS); notes say why."""
    try:
        return trusted_ca.lines(file, root) if file.ca else key_files.read(file, root)
    except FileNotFoundError:
        return None
    except trusted_ca.UncarriedError as e:
        notes.append(f"{shown}: left out ({e})")
        return None
    except (OSError, fsutil.UnsafeFileError) as e:
        notes.append(f"{shown}: left out ({fsutil.why(e)})")
        return False if str(e) in NOT_SSHDS_REASONS else None


def collect_keys(root: Path, env: Mapping[str, str], given: str = "") -> CarriedKeys:
    """Root's and the sudo/doas user's keys, for the installer's root (the key policy), and
    the keys given on the command line (given_keys), shown as their own source."""
    sources = []
    shown_sources = []
    commands = set()
    stopped: set[str] = set()  # users whose later files cannot count (NOT_SSHDS_REASONS)
    found, notes = key_files.key_files(root, env)
    for file in found:
        user, path, settings = file.user, file.path, file.settings
        if user in stopped:
            continue
        if settings.authorized_keys_command:
            commands.add(settings.authorized_keys_command)
        shown = "/" + str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        shown = f"TrustedUserCAKeys {shown} for {user}" if file.ca else shown
        text = _read_file(file, root, shown, notes)
        if text is None:
            continue
        if not isinstance(text, str):
            # sshd read it (it follows links, reads any size): what it found there decided
            # before the user's later files, so those cannot stand in.
            stopped.add(user)
            notes.append(f"{user}'s later key files are left out too")
            continue
        revoked = revoked_keys.revoked_keys(settings.revoked_keys, root, key_policy.keys_in(text))
        if isinstance(revoked, str):
            notes.append(f"{shown}: left out (RevokedKeys {settings.revoked_keys}: {revoked})")
            continue
        forced_only = file.uid == 0 and settings.permit_root_login == "forced-commands-only"
        sources.append(
            key_policy.Source(
                shown,
                user,
                text,
                forced_only=forced_only,
                force_command=settings.force_command,
                accepts=functools.partial(sshd_algorithms.accepted, settings),
                revoked=revoked,
                only_from=file.only_from,
                session_options=settings.session_options,
                version=settings.version,
                pubkey_auth_options=settings.pubkey_auth_options,
                ca_refusal=sshd_algorithms.ca_refusal(
                    settings,
                    revokes_keys=bool(revoked) or revoked_keys.is_krl(settings.revoked_keys, root),
                ),
                use_dns=settings.use_dns,
                session_environment=settings.session_environment,
                required_rsa_size=settings.required_rsa_size,
            )
        )
        shown_sources.append(shown)
    if given:
        sources.append(key_policy.Source(GIVEN, "root", given, given=True))
        shown_sources.append(GIVEN)
    keys, skipped, merge_notes = key_policy.merge(sources)
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
