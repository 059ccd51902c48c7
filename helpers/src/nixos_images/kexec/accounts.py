"""The old host's accounts as sshd saw them: a user's uid, groups and home, from the root's
/etc/passwd and /etc/group, and on the live system (root /) also through NSS (LDAP, SSSD,
systemd-userdb users are in neither file)."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path


def uid_of(user: str, root: Path) -> int:
    """A user's uid from <root>/etc/passwd; on the live system (root /) also through NSS
    (LDAP, SSSD, systemd-userdb users are not in /etc/passwd). 0 when unknown: only root then
    passes StrictModes."""
    for line in _passwd(root):
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == user and fields[2].isdigit():  # noqa: PLR2004
            return int(fields[2])
    if root == Path("/"):
        try:
            return pwd.getpwnam(user).pw_uid
        except KeyError:
            pass
    return 0


def _passwd(root: Path) -> list[str]:
    try:
        return (root / "etc/passwd").read_text(errors="replace").split("\n")
    except OSError:
        return []


def groups_of(user: str, root: Path) -> list[str]:
    """A user's group names, primary and supplementary: from <root>/etc/passwd and
    /etc/group, and on the live system (root /) also through NSS."""
    names: list[str] = []
    gid = None
    for line in _passwd(root):
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == user and fields[3].isdigit():  # noqa: PLR2004
            gid = int(fields[3])
    try:
        lines = (root / "etc/group").read_text(errors="replace").split("\n")
    except OSError:
        lines = []
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 4 and (  # noqa: PLR2004 - group(5) fields
            user in fields[3].split(",") or (fields[2].isdigit() and int(fields[2]) == gid)
        ):
            names.append(fields[0])
    if root == Path("/"):
        try:
            entry = pwd.getpwnam(user)
            names += [grp.getgrgid(g).gr_name for g in os.getgrouplist(user, entry.pw_gid)]
        except (KeyError, OSError):
            pass
    return sorted(set(names))


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
