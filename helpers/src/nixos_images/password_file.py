"""The root password's file (layout.json `rootPasswordFile`): root-password writes it, the
login banner reads it. It holds the passphrase root-password set, or, when a credential given
at boot set root's password instead, which credential did (no passphrase is shown then: the
person who gave it knows it). A passphrase is words joined by "-", so it never starts with
the marker.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MARKER = "set at boot by "


class BootCredential(enum.Enum):
    """A credential given at boot that sets root's password, and how the banner names it."""

    CMDLINE_HASH = "live.nixos.passwordHash= on the kernel command line"
    CMDLINE_PASSWORD = "live.nixos.password= on the kernel command line"  # noqa: S105 - a name
    SYSTEMD_HASH = "the systemd credential passwd.hashed-password.root"


@dataclass(frozen=True)
class Saved:
    """What the file says: a passphrase, or the credential that set the password."""

    password: str | None = None
    credential: BootCredential | None = None


def render(saved: Saved) -> str:
    """The file's text."""
    if saved.credential is not None:
        return f"{MARKER}{saved.credential.value}\n"
    return f"{saved.password or ''}\n"


def parse(text: str) -> Saved:
    """The file's text read back; an unknown credential line is shown as no password."""
    line = text.strip()
    if line.startswith(MARKER):
        named = line.removeprefix(MARKER)
        known = {c.value: c for c in BootCredential}
        return Saved(credential=known.get(named))
    return Saved(password=line or None)
