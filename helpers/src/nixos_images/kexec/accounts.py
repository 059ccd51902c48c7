"""The old host's accounts as sshd saw them: a user's uid, home and groups, from the root's
/etc/passwd and /etc/group, and on the live system (root /) also through NSS (LDAP, SSSD,
systemd-userdb users are in neither file). Read once per user (an NSS lookup can be slow)."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Account:
    """What sshd knew of a user: uid (StrictModes), home (AuthorizedKeysFile), group names,
    primary and supplementary (AllowGroups, DenyGroups)."""

    uid: int
    home: Path
    groups: tuple[str, ...]


def _lines(path: Path) -> list[list[str]]:
    try:
        return [line.split(":") for line in path.read_text(errors="replace").split("\n")]
    except OSError:
        return []


def account(user: str, root: Path) -> Account | None:
    """User's account from <root>/etc/passwd and /etc/group, else (on the live system)
    through NSS; None when neither knows the user."""
    entry = next(
        (f for f in _lines(root / "etc/passwd") if len(f) >= 6 and f[0] == user),  # noqa: PLR2004
        None,
    )
    live = root == Path("/")
    if entry is not None and entry[2].isdigit() and entry[3].isdigit():
        uid, gid, home = int(entry[2]), int(entry[3]), root / entry[5].lstrip("/")
    elif live:
        try:
            found = pwd.getpwnam(user)
        except KeyError:
            return None
        uid, gid, home = found.pw_uid, found.pw_gid, Path(found.pw_dir)
    else:
        return None
    groups = {
        f[0]
        for f in _lines(root / "etc/group")
        if len(f) >= 4 and (user in f[3].split(",") or f[2] == str(gid))  # noqa: PLR2004
    }
    if live:
        with contextlib.suppress(KeyError, OSError):
            groups |= {grp.getgrgid(g).gr_name for g in os.getgrouplist(user, gid)}
    return Account(uid, home, tuple(sorted(groups)))
