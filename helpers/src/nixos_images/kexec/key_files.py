"""The files the old host's sshd read keys from, for root and the user who ran sudo or doas:
each user's settings (sshd_config.py), account (accounts.py), AuthorizedKeysFile expanded as
sshd expands it, StrictModes as sshd judges it, RevokedKeys. collect.py reads them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images import fsutil
from nixos_images.kexec import (
    accounts,
    authorized_keys,
    sshd_config,
    sshd_config_file,
    sshd_daemon,
)
from nixos_images.kexec.accounts import account
from nixos_images.sizes import MiB

if TYPE_CHECKING:
    from collections.abc import Mapping

# Seconds to read one user's key file (a dead network home must not hang kexec/run).
READ_TIMEOUT = 10.0
# sshd reads any size; nobody's authorized_keys is near this, and a bigger file is a trap.
KEY_FILE_LIMIT = MiB
# The users whose keys the installer's root accepts: root, and whoever ran sudo or doas.
USER_VARIABLES = ("SUDO_USER", "DOAS_USER")
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
    only_from: str | None = None  # the grant held for this address only (Match Address, ...)
    ca: bool = False  # path is TrustedUserCAKeys' file, its CAs granted as trusted_ca.py says


def key_files(root: Path, env: Mapping[str, str]) -> tuple[list[KeyFile], list[str]]:
    """Where the old host's sshd read root's and the invoking user's keys, each user's
    settings as sshd applied them to that user (Match User blocks included); and notes on
    whose keys stay behind."""
    notes: list[str] = []
    users = ["root"]
    callers = {env[var] for var in USER_VARIABLES if env.get(var)}
    if len(callers) > 1:
        # sudo inside doas (or the other way round) with the environment kept: which of
        # them ran kexec/run is not known, and only that one's keys would count.
        notes.append(
            f"both SUDO_USER and DOAS_USER are set ({', '.join(sorted(callers))}):"
            " only root's keys count"
        )
        callers = set()
    users += sorted(callers - {"root"})
    files: list[KeyFile] = []
    daemon = sshd_daemon.find_daemon(root)  # once: it reads /proc and may run sshd
    facts = _config_facts(root, daemon)
    if isinstance(facts, str):
        return [], [facts]
    criteria, nones = facts
    # A grant that Match blocks decide by the connection holds for kexec/run's own connection
    # only: carried for its address.
    only_from = daemon.conn.addr if criteria else None
    for user in users:
        known = account(user, root)
        groups = known.groups if known is not None else ()
        settings = sshd_config.effective(root, user, daemon, groups)
        why = _refusal(settings, user, known, root)
        if why is None and "host" in criteria and settings.use_dns:
            # sshd asked with host=<address> matches Match Host against the address; the
            # real login matched the name DNS gave for it, which kexec/run cannot know.
            why = f"Match Host with UseDNS yes ({settings.source}): {user}'s keys are left out"
        if why is not None or known is None:
            notes.append(why or f"user {user} is not in /etc/passwd: their keys stay")
            continue
        if nones & {"authorizedprincipalsfile", "authorizedprincipalscommand"}:
            # The principals sshd asked for are not known: no CA of TrustedUserCAKeys travels.
            settings = dataclasses.replace(settings, trusted_user_ca_keys=None)
        files += _users_files(user, known, settings, root, notes, only_from)
    return files, notes


def _config_facts(
    root: Path, daemon: sshd_daemon.Daemon
) -> tuple[frozenset[str], frozenset[str]] | str:
    """What the daemon's config file says beyond sshd -T: the connection criteria its Match
    blocks test, and the keywords it sets to a "none" sshd takes for a name; or why no key
    can be carried at all."""
    argv = list(daemon.argv or ())
    config = argv[argv.index("-f") + 1] if "-f" in argv[:-1] else "/etc/ssh/sshd_config"
    try:
        criteria = sshd_config_file.connection_criteria(root, config)
        text = sshd_config_file.config_text(root, config)
        nones = sshd_config_file.literal_nones(text, root)
        blanks = sshd_config_file.blank_paths(text, root)
    except sshd_config_file.UnjudgedError as e:
        return f"{config}: {e}: what the old sshd granted is unknown, so no key is carried"
    if blanks:
        # sshd -T prints the paths joined by blanks: which files sshd read is not known.
        return f"sshd_config's {min(blanks)} names a path with a blank: no key is carried"
    given = "no key is carried (give yours with --ssh-key)"
    if "rdomain" in criteria:
        # sshd -T without rdomain= skips Match RDomain blocks (9.2, silently): the routing
        # domain kexec/run's connection came through would decide, and it is not known here.
        return f"sshd_config's Match blocks test RDomain, which kexec/run cannot tell: {given}"
    if criteria and not daemon.conn.known:
        listed = ", ".join(sorted(criteria))
        return (
            f"sshd_config's Match blocks test {listed}, and kexec/run did not come over ssh:"
            f" what the old sshd granted is unknown, so {given}"
        )
    if "revokedkeys" in nones:
        return (
            "sshd_config sets RevokedKeys none in a Match block, which sshd takes for a file"
            " named none, refusing every key: every key is left out"
        )
    return criteria, nones


def _users_files(
    user: str,
    known: accounts.Account,
    settings: sshd_config.Settings,
    root: Path,
    notes: list[str],
    only_from: str | None,
) -> list[KeyFile]:
    """The user's files in the order the old sshd read them: AuthorizedKeysFile's, and
    TrustedUserCAKeys' after them (OpenSSH 8.1 and later) or before them."""
    found = []
    reader = accounts.identity(user, known, root)
    # "none": sshd reads no file (sshd_config(5)).
    patterns = [p for p in settings.authorized_keys_files if p.lower() != "none"]
    for pattern in patterns:
        path = expand(pattern, user, known.uid, known.home, root)
        if path is None:
            # sshd reads the files in order and its percent_expand() is fatal here: a
            # key no earlier file let in never got in.
            notes.append(
                f"AuthorizedKeysFile {pattern} has a %-token sshd does not know"
                f" ({settings.source}): {user}'s later files are left out"
            )
            break
        found.append(KeyFile(user, known.uid, known.home, path, settings, reader, only_from))
    ca = settings.trusted_user_ca_keys
    if ca is not None:
        path = Path(ca) if Path(ca).is_relative_to(root) else root / ca.lstrip("/")
        entry = KeyFile(user, known.uid, known.home, path, settings, reader, only_from, ca=True)
        found = [*found, entry] if settings.files_first else [entry, *found]
    if settings.authorized_keys_command is not None and not settings.files_first:
        # OpenSSH 8.0 and older asked the command before reading the files: a line of the
        # command's may have decided a key the files hold too.
        notes.append(
            f"AuthorizedKeysCommand {settings.authorized_keys_command} came before the files"
            f" (OpenSSH before 8.1, {settings.source}): {user}'s keys are left out"
        )
        return []
    return found


def _refusal(
    settings: sshd_config.Settings, user: str, known: accounts.Account | None, root: Path
) -> str | None:
    """Why no key of user opened a session on the old host (a note for the report), or None."""
    if known is None:
        return None
    # sshd judges root by uid: a second uid-0 account (toor) is root to PermitRootLogin.
    if known.uid == 0 and settings.permit_root_login == "no":
        return f"PermitRootLogin no ({settings.source}): {user}'s keys are left out"
    why = sshd_config.refusal(settings, user, known.groups) or accounts.refusal(
        known, root, use_pam=settings.use_pam
    )
    if settings.chroot_directory is not None:
        why = why or f"ChrootDirectory {settings.chroot_directory} kept its sessions in a chroot"
    force = settings.force_command
    if why is None and force is not None and not authorized_keys.writable_command(force):
        why = f"ForceCommand {force!r} cannot be written as command="
    return None if why is None else f"{why} ({settings.source}): {user}'s keys are left out"


def read(file: KeyFile, root: Path) -> str:
    """The file's text, read as its user where that matters (KeyFile.reader), after sshd's
    StrictModes walk (as that user too: a hung home hangs the child, not kexec/run); the
    errors of fsutil.read_untrusted, and UnsafeFileError for what StrictModes refuses."""

    def strict() -> str | None:
        problem = strict_modes_problem(file.path, file.uid, file.home, root)
        return None if problem is None else f"sshd would not read it: {problem}"

    check = strict if file.settings.strict_modes else None
    if file.reader is not None:
        return fsutil.read_as(file.path, KEY_FILE_LIMIT, file.reader, READ_TIMEOUT, check)
    problem = check() if check is not None else None
    if problem is not None:
        raise fsutil.UnsafeFileError(problem)
    return fsutil.read_untrusted(file.path, KEY_FILE_LIMIT)
