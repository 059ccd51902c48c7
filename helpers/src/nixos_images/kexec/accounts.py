"""The old host's accounts as sshd saw them: a user's uid, home and groups, from the root's
/etc/passwd and /etc/group, and on the live system (root /) also through NSS (LDAP, SSSD,
systemd-userdb users are in neither file). Read once per user (an NSS lookup can be slow)."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import time
from dataclasses import dataclass
from pathlib import Path

from nixos_images import fsutil


@dataclass(frozen=True)
class Account:
    """What sshd knew of a user: uid (StrictModes), home (AuthorizedKeysFile), group names,
    primary and supplementary (AllowGroups, DenyGroups), login shell, and /etc/shadow's
    password field and expiry day (None when the user has no line there)."""

    uid: int
    home: Path
    groups: tuple[str, ...]
    gid: int = 0  # the primary group
    shell: str = ""
    password: str | None = None
    expires: int | None = None  # days since 1970-01-01
    changed: int | None = None  # the password's last change (0: a change is due), in days
    max_days: int | None = None  # how long a password lasts, in days


# Shells that end every session at once (a key opened nothing with them, nor can a forced
# command run: sshd runs it through the shell). And the full shells: any other (git-shell,
# rbash, scponly, a menu script, jailkit's) gave only a narrow session, which the
# installer's root shell would not be.
NO_SESSION_SHELLS = frozenset({"nologin", "false", "true", "sync", "halt", "shutdown"})
FULL_SHELLS = frozenset(
    {"sh", "bash", "dash", "ash", "zsh", "ksh", "ksh93", "mksh", "oksh", "loksh", "pdksh"}
    | {"yash", "fish", "csh", "tcsh", "elvish", "nu", "xonsh", "pwsh"}
)
# Where sshd (without PAM) and pam_nologin look: while one exists, no user but root logs in.
NOLOGIN_FILES = ("etc/nologin", "run/nologin", "var/run/nologin")
_DAY = 86400


def identity(user: str, known: Account, root: Path) -> fsutil.Identity | None:
    """Whom to read the user's files as (sshd reads them as the user): on the live system,
    run as root, for a user other than root; None to read them as this process."""
    if root != Path("/") or os.geteuid() != 0 or known.uid == 0:
        return None
    try:
        groups = tuple(os.getgrouplist(user, known.gid))
    except (OSError, OverflowError):
        groups = (known.gid,)
    return fsutil.Identity(known.uid, known.gid, groups)


def refusal(user: Account, root: Path, *, use_pam: bool, now: float | None = None) -> str | None:
    """Why sshd opened no session for the account with a key alone, or None.

    sshd's allowed_user() (auth.c): a login shell that is not an executable file; and, only
    without PAM (which judges the account itself, and lets a key in past a locked password),
    a password field locked with "!" (Linux's LOCKED_PASSWD_PREFIX). An account past its
    expiry day or due a password change, either way; a nologin file for all but root. A
    nologin or false shell passes sshd but ends the session before it starts."""
    return _shell_refusal(user, root) or _account_refusal(user, root, use_pam=use_pam, now=now)


def _shell_refusal(user: Account, root: Path) -> str | None:
    shell = user.shell or "/bin/sh"  # sshd: an empty shell is _PATH_BSHELL
    if Path(shell).name in NO_SESSION_SHELLS:
        return f"its shell {shell} ends every session"
    target = root / shell.lstrip("/")
    try:
        executable = target.is_file() and os.access(target, os.X_OK)
    except ValueError:  # a NUL in the field: no path at all
        executable = False
    if not executable:
        return f"its shell {shell} is not an executable file"
    if Path(shell).name not in FULL_SHELLS:
        return f"its shell {shell} is not a full shell: it gave a narrow session, if any"
    return None


def _account_refusal(user: Account, root: Path, *, use_pam: bool, now: float | None) -> str | None:
    # An expired account: sshd refuses it without PAM (after its day), pam_unix's account
    # check with it (on its day already).
    today = int((time.time() if now is None else now) // _DAY)
    if user.expires is not None and (today >= user.expires if use_pam else today > user.expires):
        return "the account expired"
    # A password change due (never changed, no date with a maximum age set, or past that
    # age): pam_unix asks for it before any session, and a key alone cannot give the old
    # password. Without PAM, sshd asks only password logins.
    if use_pam and (
        user.changed == 0
        or (user.max_days is not None and (user.changed or -1) + user.max_days < today)
    ):
        return "its password must be changed before a session opens"
    # sshd itself reads /etc/nologin; pam_nologin /run/nologin (/var/run/) as well.
    nologin = NOLOGIN_FILES if use_pam else NOLOGIN_FILES[:1]
    if user.uid != 0 and any((root / f).exists() for f in nologin):
        return "a nologin file lets nobody but root in"
    if not use_pam and user.password is not None and user.password.startswith("!"):
        return "its password is locked and UsePAM is off"
    return None


def _lines(path: Path) -> list[list[str]]:
    try:
        # Bytes, not text: text mode would turn a stray CR into a line end.
        text = path.read_bytes().decode(errors="replace")
        return [line.split(":") for line in text.split("\n")]
    except OSError:
        return []


def _id(text: str) -> int | None:
    """A uid or gid as the kernel has them: ASCII digits, below 2**32."""
    if not (text.isascii() and text.isdigit()) or int(text) >= 2**32:
        return None
    return int(text)


def account(user: str, root: Path) -> Account | None:
    """User's account from <root>/etc/passwd and /etc/group, else (on the live system)
    through NSS; None when neither knows the user."""
    entry = next(
        (f for f in _lines(root / "etc/passwd") if len(f) >= 6 and f[0] == user),  # noqa: PLR2004
        None,
    )
    live = root == Path("/")
    if entry is not None and _id(entry[2]) is not None and _id(entry[3]) is not None:
        uid, gid, home = int(entry[2]), int(entry[3]), root / entry[5].lstrip("/")
        # As written: a shell with a stray blank or CR is no file, and sshd refuses it.
        shell = entry[6] if len(entry) > 6 else ""  # noqa: PLR2004
    elif live:
        try:
            found = pwd.getpwnam(user)
        except KeyError:
            return None
        uid, gid, home, shell = found.pw_uid, found.pw_gid, Path(found.pw_dir), found.pw_shell
    else:
        return None
    shadow = next(
        (f for f in _lines(root / "etc/shadow") if len(f) >= 8 and f[0] == user),  # noqa: PLR2004
        None,
    )
    groups = {
        f[0]
        for f in _lines(root / "etc/group")
        if len(f) >= 4 and (user in f[3].split(",") or f[2] == str(gid))  # noqa: PLR2004
    }
    if live:
        with contextlib.suppress(KeyError, OSError, OverflowError):
            groups |= {grp.getgrgid(g).gr_name for g in os.getgrouplist(user, gid)}
    password = shadow[1] if shadow else None
    expires, changed, max_days = (_days(shadow[i]) if shadow else None for i in (7, 2, 4))
    return Account(
        uid, home, tuple(sorted(groups)), gid, shell, password, expires, changed, max_days
    )


def _days(field: str) -> int | None:
    """A day count of /etc/shadow (empty: none)."""
    return int(field) if field.isascii() and field.isdigit() and len(field) < 10 else None  # noqa: PLR2004
