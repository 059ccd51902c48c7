"""Read what the installer carries over from the old system, into memory; nothing is written.

The result is the state directory (nixos_images.state) as file contents, ready to be packed
into the cpio the launcher appends to the installer's initrd.
"""

from __future__ import annotations

import contextlib
import json
import pwd
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images import dhcp, fsutil, iproute, networkd
from nixos_images import state as state_layout
from nixos_images.errors import InputError
from nixos_images.kexec import authorized_keys, sshd_config

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from nixos_images.networkd import Unit

HOST_KEY = re.compile(r"ssh_host_[a-z0-9]+_key(\.pub)?")
MACHINE_ID = re.compile(r"[0-9a-f]{32}")
# The users whose keys the installer's root accepts: root, and whoever ran sudo or doas.
USER_VARIABLES = ("SUDO_USER", "DOAS_USER")
# sshd reads any size; nobody's authorized_keys is near this, and a bigger file is a trap.
KEY_FILE_LIMIT = 1 << 20


@dataclass
class Collected:
    """The state, file path inside the state directory -> (content, mode), plus a report."""

    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    host_keys: list[str] = field(default_factory=list)
    keys: list[authorized_keys.Key] = field(default_factory=list)
    key_sources: list[str] = field(default_factory=list)
    skipped: list[authorized_keys.Skipped] = field(default_factory=list)
    machine_id: str | None = None
    units: list[Unit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keys_command: str | None = None  # the old sshd's AuthorizedKeysCommand, if it had one

    @property
    def size(self) -> int:
        """Bytes of state, as the memory check counts them."""
        return sum(len(data) for data, _ in self.files.values())


LAYOUT = state_layout.StateDir(Path("/"))


def _rel(path: Path) -> str:
    """A path of LAYOUT as a path inside the state directory."""
    return str(path.relative_to(LAYOUT.root))


def uid_of(user: str, root: Path) -> int:
    """A user's uid from <root>/etc/passwd (0 when unknown: only root then passes)."""
    for line in _passwd(root):
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == user and fields[2].isdigit():  # noqa: PLR2004
            return int(fields[2])
    return 0


def _passwd(root: Path) -> list[str]:
    try:
        return (root / "etc/passwd").read_text(errors="replace").split("\n")
    except OSError:
        return []


def home_of(user: str, root: Path) -> Path | None:
    """A user's home from <root>/etc/passwd; on the live system (root /) also through NSS."""
    try:
        for line in _passwd(root):
            fields = line.split(":")
            if len(fields) >= 6 and fields[0] == user:  # noqa: PLR2004 - passwd(5) fields
                return root / fields[5].lstrip("/")
    except OSError:
        pass
    if root == Path("/"):
        try:
            return Path(pwd.getpwnam(user).pw_dir)
        except KeyError:
            return None
    return None


def expand(pattern: str, user: str, home: Path, root: Path) -> Path:
    """An AuthorizedKeysFile pattern for a user: %h, %u, %% expanded, relative to home."""
    path = pattern.replace("%%", "\0").replace("%h", str(home)).replace("%u", user)
    path = path.replace("\0", "%")
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


@dataclass(frozen=True)
class KeyFile:
    """A file sshd read for a user, with what StrictModes judges it by."""

    user: str
    uid: int
    home: Path
    path: Path
    settings: sshd_config.Settings


def key_files(root: Path, env: Mapping[str, str], notes: list[str]) -> list[KeyFile]:
    """Where the old host's sshd read root's and the invoking user's keys, each user's
    settings as sshd applied them to that user (Match User blocks included)."""
    users = ["root"]
    for var in USER_VARIABLES:
        user = env.get(var, "")
        if user and user not in users:
            users.append(user)
    files = []
    for user in users:
        settings = sshd_config.effective(root, user)
        if user == "root" and settings.permit_root_login == "no":
            notes.append(f"PermitRootLogin no ({settings.source}): root's keys are left out")
            continue
        home = home_of(user, root)
        if home is None:
            notes.append(f"user {user} is not in /etc/passwd: their keys stay")
            continue
        uid = uid_of(user, root)
        patterns = settings.authorized_keys_files
        files += [KeyFile(user, uid, home, expand(p, user, home, root), settings) for p in patterns]
    return files


def collect_keys(root: Path, env: Mapping[str, str], out: Collected) -> None:
    """Root's and the sudo/doas user's keys, for the installer's root (the key policy)."""
    sources = []
    commands = set()
    for file in key_files(root, env, out.notes):
        user, path, settings = file.user, file.path, file.settings
        if settings.authorized_keys_command:
            commands.add(settings.authorized_keys_command)
        shown = "/" + str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        if settings.strict_modes:
            problem = strict_modes_problem(path, file.uid, file.home, root)
            if problem:
                out.notes.append(f"{shown}: left out (sshd would not read it: {problem})")
                continue
        try:
            text = fsutil.read_untrusted(path, KEY_FILE_LIMIT)
        except FileNotFoundError:
            continue
        except (OSError, fsutil.UnsafeFileError) as e:
            out.notes.append(f"{shown}: left out ({fsutil.why(e)})")
            continue
        forced_only = user == "root" and settings.permit_root_login == "forced-commands-only"
        sources.append(authorized_keys.Source(shown, user, text, forced_only=forced_only))
        out.key_sources.append(shown)
    out.keys, out.skipped, notes = authorized_keys.merge(sources)
    out.notes += notes
    if not out.keys:
        out.notes.append("no authorized keys found: nobody will be able to log in over ssh")
    for command in sorted(commands):
        out.notes.append(
            f"the old sshd also asked {command} for keys"
            " (EC2 Instance Connect, OS Login): the installer does not"
        )
    out.keys_command = min(commands, default=None)
    out.files[_rel(LAYOUT.authorized_keys)] = (authorized_keys.render(out.keys).encode(), 0o600)


def collect_host_keys(root: Path, out: Collected) -> None:
    """/etc/ssh/ssh_host_*_key and .pub, every type; private ones stay 0600."""
    for path in sorted((root / "etc/ssh").glob("ssh_host_*")):
        if not HOST_KEY.fullmatch(path.name) or not path.is_file():
            continue
        mode = 0o644 if path.name.endswith(".pub") else 0o600
        out.files[_rel(LAYOUT.host_keys / path.name)] = (path.read_bytes(), mode)
        out.host_keys.append(path.name)
    if not out.host_keys:
        out.notes.append("no ssh host keys in /etc/ssh: the installer makes new ones")


def collect_machine_id(root: Path, out: Collected) -> None:
    """/etc/machine-id, if it is a valid one."""
    try:
        text = (root / "etc/machine-id").read_text().strip()
    except OSError:
        text = ""
    if MACHINE_ID.fullmatch(text):
        out.machine_id = text
        out.files[_rel(LAYOUT.machine_id)] = (f"{text}\n".encode(), 0o444)
    else:
        out.notes.append("no valid /etc/machine-id: the installer makes a new one")


# Where DHCP clients leave their leases: (glob under the root, which client, its format).
NETWORKD_LEASES = "run/systemd/netif/leases/*"
NM_LEASES = "var/lib/NetworkManager/internal-*.lease"
NM_PROFILES = (
    "etc/NetworkManager/system-connections/*.nmconnection",
    "run/NetworkManager/system-connections/*.nmconnection",
    "usr/lib/NetworkManager/system-connections/*.nmconnection",
)
NM_CONFIGS = ("etc/NetworkManager/NetworkManager.conf", "etc/NetworkManager/conf.d/*.conf")
DHCPCD_DIRS = ("var/lib/dhcpcd", "var/db/dhcpcd")
DHCPCD_DUIDS = ("var/lib/dhcpcd/duid", "var/db/dhcpcd/duid", "etc/dhcpcd.duid")
DHCLIENT_LEASES = (
    "var/lib/dhcp/dhclient*.lease*",
    "var/lib/dhclient/*.lease*",
    "var/lib/NetworkManager/dhclient-*.lease",
)
LEASE_LIMIT = 1 << 20


def _read_lease(path: Path) -> str | None:
    try:
        return fsutil.read_untrusted(path, LEASE_LIMIT)
    except (OSError, fsutil.UnsafeFileError):
        return None  # what cannot be read safely tells nothing: networkd's default applies


def _texts(root: Path, patterns: tuple[str, ...]) -> list[str]:
    """The files matching patterns under root, read safely; what cannot be read is skipped."""
    return [
        text
        for pattern in patterns
        for path in sorted(root.glob(pattern))
        if (text := _read_lease(path)) is not None
    ]


def dhcp_clients(root: Path, links: list[iproute.Link]) -> list[dhcp.DhcpClient]:
    """What each interface's DHCP client sent, from the lease files it left: networkd's
    first, then NetworkManager's, then dhclient's (the running client's is the freshest)."""
    names = {link.name for link in links}
    found: dict[str, dhcp.DhcpClient] = {}
    found_by = (*_networkd(root, links), *_network_manager(root, links), *_dhcpcd(root, links))
    for client in (*found_by, *_dhclient(root)):
        if client.interface in names:
            found.setdefault(client.interface, client)
    return list(found.values())


def _networkd(root: Path, links: list[iproute.Link]) -> Iterator[dhcp.DhcpClient]:
    names = {str(link.index): link.name for link in links}
    for path in sorted(root.glob(NETWORKD_LEASES)):
        text = _read_lease(path)
        if text is not None and path.name in names and "CLIENTID=" in text:
            client_id = dhcp.networkd_client_id(text)
            yield dhcp.DhcpClient(names[path.name], dhcp.Source.NETWORKD, client_id)


def _network_manager(root: Path, links: list[iproute.Link]) -> Iterator[dhcp.DhcpClient]:
    by_name = {link.name: link for link in links}
    for path in sorted(root.glob(NM_LEASES)):
        text = _read_lease(path)
        lease = dhcp.NM_LEASE.fullmatch(path.name)
        if text is None or lease is None or lease.group(2) not in by_name:
            continue
        uuid, interface = lease.groups()
        if "CLIENTID=" in text:
            client_id = dhcp.networkd_client_id(text)
            yield dhcp.DhcpClient(interface, dhcp.Source.NETWORK_MANAGER, client_id)
            continue
        profiles, configs = _texts(root, NM_PROFILES), _texts(root, NM_CONFIGS)
        setting = dhcp.nm_client_id_setting(uuid, profiles, configs)
        link = by_name[interface]
        known, client_id = dhcp.nm_client_id(setting, link.mac, link.permanent_mac)
        if known:
            yield dhcp.DhcpClient(interface, dhcp.Source.NETWORK_MANAGER, client_id)


def _dhcpcd(root: Path, links: list[iproute.Link]) -> Iterator[dhcp.DhcpClient]:
    """Interfaces dhcpcd leased on (its lease files are binary: only their names are used)."""
    conf = _texts(root, ("etc/dhcpcd.conf",))
    duid = next(iter(_texts(root, DHCPCD_DUIDS)), None)
    for link in links:
        names = (f"{link.name}.lease", f"dhcpcd-{link.name}.lease")
        if not any((root / d / n).is_file() for d in DHCPCD_DIRS for n in names):
            continue
        known, client_id = dhcp.dhcpcd_client_id("".join(conf), link.name, link.mac, duid)
        if known:
            yield dhcp.DhcpClient(link.name, dhcp.Source.DHCPCD, client_id)


def _dhclient(root: Path) -> Iterator[dhcp.DhcpClient]:
    for pattern in DHCLIENT_LEASES:
        for path in sorted(root.glob(pattern)):
            text = _read_lease(path)
            for interface, client_id in dhcp.dhclient_client_ids(text or "").items():
                yield dhcp.DhcpClient(interface, dhcp.Source.DHCLIENT, client_id)


def drivers(root: Path, links: list[iproute.Link]) -> dict[str, str]:
    """Interface -> the driver bound to its device (sysfs), for links that have one."""
    out = {}
    for link in links:
        driver = root / "sys/class/net" / link.name / "device/driver"
        with contextlib.suppress(OSError):
            out[link.name] = driver.readlink().name
    return out


def network_files(root: Path, ip: tuple[str, ...]) -> dict[str, bytes]:
    """The network part of the state, file name -> content: the dumps of the tarball's ip,
    the DNS servers and search domains in use, the NICs' drivers and DHCP identities."""
    files = state_layout.network_state(
        ip,
        resolv_conf=root / "etc/resolv.conf",
        resolved_upstream=root / "run/systemd/resolve/resolv.conf",
    )
    try:
        links = iproute.links_from(iproute.decode(files["links.json"], "links.json"), "links.json")
    except InputError:
        links = []  # read_network() says what is wrong with it
    files[state_layout.DRIVERS] = json.dumps(drivers(root, links), indent=1).encode()
    files[state_layout.DHCP] = state_layout.dhcp_json(dhcp_clients(root, links))
    return files


def collect_network(root: Path, ip: tuple[str, ...], out: Collected) -> None:
    """Dump the network with the bundled ip and plan the units now, as the installer will.

    Planning here means a state the installer could not restore stops the launcher while the
    old system is still running, instead of leaving a host without network after the kexec.
    """
    files = network_files(root, ip)
    for name, data in files.items():
        out.files[_rel(LAYOUT.network / name)] = (data, 0o644)
    network = state_layout.read_network(files, "the network as the tarball's ip shows it: ")
    out.units = networkd.plan(network)
    out.notes += networkd.left_behind(network)


def collect(root: Path, env: Mapping[str, str], ip: tuple[str, ...]) -> Collected:
    """Everything the installer carries over, read from the system at root (/ but in tests)."""
    out = Collected()
    collect_host_keys(root, out)
    collect_keys(root, env, out)
    collect_machine_id(root, out)
    collect_network(root, ip, out)
    return out
