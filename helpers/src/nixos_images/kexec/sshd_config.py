"""What the old host's sshd made of authorized_keys: which files it read, whether root could log
in, whether it checked the files' modes (the key policy: docs/kexec.md, "Key policy").

From `sshd -T -C user=...` (the effective settings, Match blocks applied, for each user whose
keys count), asked of the running daemon (running_sshd) or of an sshd at a usual path, else
from its sshd_config as sshd_config_file.py reads it (Match User/Group blocks applied), else
OpenSSH's defaults; and whose key alone sshd let in (refusal, accepted).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nixos_images import process
from nixos_images.errors import HelperError
from nixos_images.kexec import sshd_algorithms, sshd_config_file
from nixos_images.kexec.sshd_daemon import Connection, Daemon, find_daemon

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

KEYWORDS = (
    "permitrootlogin",
    "authorizedkeysfile",
    "strictmodes",
    "authorizedkeyscommand",
    "pubkeyauthentication",
    "authenticationmethods",
    "forcecommand",
    "pubkeyacceptedalgorithms",
    "revokedkeys",
    "usepam",
    *("chrootdirectory", "permittty", "allowtcpforwarding", "disableforwarding"),
    "allowagentforwarding",
    *("allowusers", "denyusers", "allowgroups", "denygroups"),
    *("trustedusercakeys", "authorizedprincipalsfile", "authorizedprincipalscommand"),
    "pubkeyauthoptions",
    *("permitopen", "permitlisten", "permituserrc"),
    "usedns",
    "casignaturealgorithms",
    "allowstreamlocalforwarding",
    *("maxsessions", "permituserenvironment", "setenv", "requiredrsasize", "exposeauthinfo"),
)
# Keywords whose lines add up (sshd -T prints an entry a line; sshd_config may repeat them).
LISTS = ("allowusers", "denyusers", "allowgroups", "denygroups")


# The check order changed in OpenSSH 8.1 (auth2-pubkey.c, "check AuthorizedKeysFiles files
# before consulting AuthorizedKeysCommand", openssh-portable c95b90d40).
FILES_FIRST_SINCE = (8, 1)


@dataclass(frozen=True)
class Settings:
    """The settings that decide whose keys counted, OpenSSH's defaults unless told otherwise."""

    permit_root_login: str = "prohibit-password"
    authorized_keys_files: tuple[str, ...] = (".ssh/authorized_keys", ".ssh/authorized_keys2")
    strict_modes: bool = True
    authorized_keys_command: str | None = None
    source: str = "OpenSSH's defaults"
    pubkey_authentication: bool = True
    # Why the old sshd's settings are not known, when they are not: every key stays out.
    unknown: str | None = None
    # AuthenticationMethods' lists ("publickey,password" is a list of two); () for "any".
    authentication_methods: tuple[tuple[str, ...], ...] = ()
    force_command: str | None = None
    # PubkeyAcceptedAlgorithms as sshd -T prints it (signature names); None: the defaults.
    accepted_algorithms: frozenset[str] | None = None
    revoked_keys: str | None = None  # RevokedKeys' file, when set
    allow_users: tuple[str, ...] = ()
    deny_users: tuple[str, ...] = ()
    allow_groups: tuple[str, ...] = ()
    deny_groups: tuple[str, ...] = ()
    # UsePAM: without PAM, sshd itself refuses locked and expired accounts (accounts.py).
    use_pam: bool = False
    chroot_directory: str | None = None
    # What sshd_config took away from every session of the user, as key options: the
    # installer's sshd allows all of it, so they travel with each key (key_policy.Source).
    session_options: tuple[str, ...] = ()
    # TrustedUserCAKeys and how it named the principals (trusted_ca.py).
    trusted_user_ca_keys: str | None = None
    authorized_principals_file: str | None = None
    authorized_principals_command: str | None = None
    # The old sshd's OpenSSH version (sshd -V), where it could be asked.
    version: tuple[int, int] | None = None
    # PubkeyAuthOptions (touch-required, verify-required): what security keys had to show.
    pubkey_auth_options: frozenset[str] = frozenset()
    # UseDNS: Match Host (and from= patterns) matched the client's name, not its address.
    use_dns: bool = False
    # CASignatureAlgorithms (sshd -T's list): what a CA may have signed certificates with.
    ca_signature_algorithms: frozenset[str] | None = None
    # MaxSessions 0: forwarding only, no session at all.
    no_sessions: bool = False
    # PermitUserEnvironment, SetEnv or ExposeAuthInfo: sessions had an environment the
    # installer's do not, which a forced command may have relied on.
    session_environment: bool = False
    # RequiredRSASize: the smallest RSA key sshd took (the installer's: 1024 bits).
    required_rsa_size: int = 1024

    @property
    def files_first(self) -> bool:
        """Whether sshd checked the AuthorizedKeysFile files before TrustedUserCAKeys and
        AuthorizedKeysCommand: OpenSSH 8.1 and later (the version unknown: the same)."""
        return self.version is None or self.version >= FILES_FIRST_SINCE

    def key_alone_logs_in(self) -> bool:
        """Whether a key by itself opened a session: public keys on, and no method list that
        asks for a second factor (a password, another key)."""
        if not self.pubkey_authentication:
            return False
        return not self.authentication_methods or ("publickey",) in self.authentication_methods


def from_values(values: dict[str, str], source: str) -> Settings:
    """Settings from keyword -> value (keywords lower case, values as written)."""
    command = values.get("authorizedkeyscommand", "none")
    files = tuple(values["authorizedkeysfile"].split()) if "authorizedkeysfile" in values else None
    methods = values.get("authenticationmethods", "any")
    force = values.get("forcecommand", "none")
    algorithms = values.get("pubkeyacceptedalgorithms")
    return Settings(
        # without-password: prohibit-password's old name, which sshd -T still prints.
        permit_root_login=values.get("permitrootlogin", "prohibit-password")
        .lower()
        .replace("without-password", "prohibit-password"),
        authorized_keys_files=files or Settings.authorized_keys_files,
        strict_modes=values.get("strictmodes", "yes").lower() != "no",
        authorized_keys_command=None if command.lower() == "none" else command,
        source=source,
        pubkey_authentication=values.get("pubkeyauthentication", "yes").lower() != "no",
        authentication_methods=()
        if methods.lower() == "any"
        else tuple(tuple(m.split(",")) for m in methods.split()),
        force_command=None if force.lower() == "none" else force,
        accepted_algorithms=sshd_algorithms.edited(
            algorithms, sshd_algorithms.DEFAULT_PUBKEY_ALGORITHMS
        ),
        revoked_keys=None
        if values.get("revokedkeys", "none").lower() == "none"
        else values["revokedkeys"],
        allow_users=tuple(values.get("allowusers", "").split()),
        deny_users=tuple(values.get("denyusers", "").split()),
        allow_groups=tuple(values.get("allowgroups", "").split()),
        deny_groups=tuple(values.get("denygroups", "").split()),
        use_pam=values.get("usepam", "no").lower() == "yes",
        chroot_directory=None
        if values.get("chrootdirectory", "none").lower() == "none"
        else values["chrootdirectory"],
        session_options=_session_options(values),
        trusted_user_ca_keys=_unless_none(values, "trustedusercakeys"),
        authorized_principals_file=_unless_none(values, "authorizedprincipalsfile"),
        authorized_principals_command=_unless_none(values, "authorizedprincipalscommand"),
        use_dns=values.get("usedns", "no").lower() == "yes",
        no_sessions=values.get("maxsessions", "10").strip() == "0",
        session_environment=values.get("permituserenvironment", "no").lower() != "no"
        or values.get("setenv", "none").lower() != "none"
        or values.get("exposeauthinfo", "no").lower() == "yes",
        required_rsa_size=_int(values.get("requiredrsasize", ""), 1024),
        ca_signature_algorithms=sshd_algorithms.edited(
            values.get("casignaturealgorithms"), sshd_algorithms.CA_SIGNATURES
        ),
        pubkey_auth_options=frozenset(
            o for o in values.get("pubkeyauthoptions", "none").lower().split() if o != "none"
        ),
    )


def _int(value: str, default: int) -> int:
    """A small decimal number of sshd -T's, else default."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 7 else default  # noqa: PLR2004


def _unless_none(values: dict[str, str], key: str) -> str | None:
    """A value that sshd reads as unset when it is "none" (or missing)."""
    value = values.get(key, "none")
    return None if value.lower() == "none" else value


def version(sshd: Sequence[str]) -> tuple[int, int] | None:
    """Sshd's OpenSSH version, from `sshd -V` (older ones print it in their usage message on
    the unknown option); None when it says none."""
    try:
        done = process.run([*sshd, "-V"], call=process.Call.SSHD_TEST, check=False)
    except (HelperError, OSError):
        return None
    found = re.search(rb"OpenSSH_(\d+)\.(\d+)", done.stdout + done.stderr)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _session_options(values: dict[str, str]) -> tuple[str, ...]:
    """sshd_config's session restrictions as the key options that give the same."""
    off = {k for k, v in values.items() if v.lower() == "no"}
    options = []
    if "permittty" in off:
        options.append("no-pty")
    if values.get("disableforwarding", "no").lower() == "yes":
        options += ["no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding"]
    # Unix-socket forwarding too: no-port-forwarding takes both (and more: never less).
    for keyword in ("allowtcpforwarding", "allowstreamlocalforwarding"):
        if values.get(keyword, "yes").lower() not in {"yes", "all"}:
            options.append("no-port-forwarding")
    if "allowagentforwarding" in off:
        options.append("no-agent-forwarding")
    if "permituserrc" in off:
        options.append("no-user-rc")
    return tuple(dict.fromkeys(options + _forwarding_targets(values)))


def _forwarding_targets(values: dict[str, str]) -> list[str]:
    """PermitOpen and PermitListen: where a session could forward to, or listen, as the key
    options permitopen= and permitlisten= (one each); `none` as no-port-forwarding (which
    takes the other direction too: stricter, never more)."""
    options = []
    for keyword in ("permitopen", "permitlisten"):
        targets = values.get(keyword, "any").split()
        if not targets or [t.lower() for t in targets] == ["any"]:
            continue
        if any(t.lower() == "none" or '"' in t or "\\" in t for t in targets):
            options.append("no-port-forwarding")
        else:
            options += [f'{keyword}="{t}"' for t in targets]
    return options


def parse_sshd_t(output: str) -> dict[str, str]:
    """`sshd -T` prints one lower-case keyword and its value a line."""
    values: dict[str, str] = {}
    for line in output.splitlines():
        key, _, value = line.partition(" ")
        if key in LISTS and key in values:
            values[key] += f" {value.strip()}"
        elif key in KEYWORDS:
            values[key] = value.strip()
    return values


def from_sshd(sshd: Sequence[str], user: str, conn: Connection | None = None) -> Settings | None:
    """A user's settings as sshd itself works them out for a login over conn; None when it
    cannot (no host keys, a broken config)."""
    argv = [*sshd, "-T", "-C", (conn or Connection()).spec(user)]
    try:
        done = process.run(argv, call=process.Call.SSHD_TEST, check=True)
    except (HelperError, OSError):
        return None
    settings = from_values(parse_sshd_t(done.stdout.decode(errors="replace")), f"{sshd[0]} -T")
    return dataclasses.replace(settings, version=version(sshd))


def effective(
    root: Path,
    user: str = "root",
    daemon: Daemon | None = None,
    groups: Sequence[str] = (),
) -> Settings:
    """The old host's settings for a user's logins (a member of groups): from the daemon
    (find_daemon), else from the config file, else OpenSSH's defaults."""
    daemon = daemon or find_daemon(root)
    if daemon.unreadable is not None:
        return Settings(unknown=daemon.unreadable, source="the running sshd")
    if daemon.argv is not None:
        asked = from_sshd(daemon.argv, user, daemon.conn)
        if asked is not None:
            return asked
        if daemon.running:
            return Settings(unknown=f"{daemon.argv[0]} -T failed", source=daemon.argv[0])
    # Its version still orders the checks (files or CAs first), where the binary answers -V.
    known = version(daemon.argv) if daemon.argv is not None else None
    config = root / "etc/ssh/sshd_config"
    try:
        text = config.read_text(errors="replace")
    except OSError:
        return Settings(version=known)
    source = "/etc/ssh/sshd_config"
    login = sshd_config_file.Login(user, tuple(groups))
    try:
        values = sshd_config_file.parse_config(text, root, login, KEYWORDS, LISTS)
    except sshd_config_file.UnjudgedError as e:
        return Settings(unknown=str(e), source=source)
    return dataclasses.replace(from_values(values, source), version=known)


def refusal(settings: Settings, user: str, groups: Sequence[str]) -> str | None:
    """Why the old sshd would not have let a key alone log in as user, or None.

    Fails closed: an AllowUsers/DenyUsers entry for user that names hosts (user@host) decided
    by where a login came from, which the installer cannot tell, so it counts as a refusal.
    """
    return (
        _methods_refusal(settings)
        or _users_refusal(settings, user)
        or _groups_refusal(settings, user, groups)
    )


def _methods_refusal(settings: Settings) -> str | None:
    if settings.unknown is not None:
        return f"the old sshd's settings are unknown: {settings.unknown}"
    if settings.no_sessions:
        return "MaxSessions 0: its logins forwarded ports, no session"
    if not settings.pubkey_authentication:
        return "PubkeyAuthentication no"
    if not settings.key_alone_logs_in():
        listed = " ".join(",".join(m) for m in settings.authentication_methods)
        return f"AuthenticationMethods {listed} asks for more than a key"
    return None


def _users_refusal(settings: Settings, user: str) -> str | None:
    denied = [p for p in settings.deny_users if sshd_config_file.matches(p.split("@", 1)[0], user)]
    if denied:
        return f"DenyUsers {denied[0]}"
    if not settings.allow_users:
        return None
    allowed = [
        p for p in settings.allow_users if sshd_config_file.matches(p.split("@", 1)[0], user)
    ]
    if not allowed:
        return f"AllowUsers {' '.join(settings.allow_users)} does not name {user}"
    if all("@" in p for p in allowed):
        return f"AllowUsers {allowed[0]} lets {user} in from some addresses only"
    return None


def _groups_refusal(settings: Settings, user: str, groups: Sequence[str]) -> str | None:
    denied = [
        p for p in settings.deny_groups if any(sshd_config_file.matches(p, g) for g in groups)
    ]
    if denied:
        return f"DenyGroups {denied[0]}"
    if settings.allow_groups and not any(
        sshd_config_file.matches(p, g) for p in settings.allow_groups for g in groups
    ):
        return f"AllowGroups {' '.join(settings.allow_groups)} names none of {user}'s groups"
    return None
