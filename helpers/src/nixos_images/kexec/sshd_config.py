"""What the old host's sshd made of authorized_keys: which files it read, whether root could log
in, whether it checked the files' modes (the key policy: docs/kexec.md, "Key policy").

From `sshd -T -C user=...` (the effective settings, Match blocks applied, for each user whose
keys count) when the host has sshd at one of the usual paths, else from its sshd_config
(first value wins, Include followed, Match blocks left out), else OpenSSH's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images import process
from nixos_images.errors import HelperError

if TYPE_CHECKING:
    from collections.abc import Sequence

SSHD_PATHS = (Path("/usr/sbin/sshd"), Path("/usr/bin/sshd"), Path("/sbin/sshd"))
KEYWORDS = ("permitrootlogin", "authorizedkeysfile", "strictmodes", "authorizedkeyscommand")


@dataclass(frozen=True)
class Settings:
    """The settings that decide whose keys counted, OpenSSH's defaults unless told otherwise."""

    permit_root_login: str = "prohibit-password"
    authorized_keys_files: tuple[str, ...] = (".ssh/authorized_keys", ".ssh/authorized_keys2")
    strict_modes: bool = True
    authorized_keys_command: str | None = None
    source: str = "OpenSSH's defaults"


def from_values(values: dict[str, str], source: str) -> Settings:
    """Settings from keyword -> value (keywords lower case, values as written)."""
    command = values.get("authorizedkeyscommand", "none")
    files = tuple(values["authorizedkeysfile"].split()) if "authorizedkeysfile" in values else None
    return Settings(
        permit_root_login=values.get("permitrootlogin", "prohibit-password").lower(),
        authorized_keys_files=files or Settings.authorized_keys_files,
        strict_modes=values.get("strictmodes", "yes").lower() != "no",
        authorized_keys_command=None if command.lower() == "none" else command,
        source=source,
    )


def parse_sshd_t(output: str) -> dict[str, str]:
    """`sshd -T` prints one lower-case keyword and its value a line."""
    values = {}
    for line in output.splitlines():
        key, _, value = line.partition(" ")
        if key in KEYWORDS:
            values[key] = value.strip()
    return values


# How deep Include may nest before the rest is left out (OpenSSH's readconf.c allows 16): a
# config that includes itself ends there instead of in a RecursionError.
INCLUDE_DEPTH = 16


def parse_config(
    text: str, root: Path, values: dict[str, str] | None = None, depth: int = 0
) -> dict[str, str]:
    """sshd_config's values: the first one of each keyword counts; Include is followed
    (relative to /etc/ssh, INCLUDE_DEPTH deep at most); what follows a Match line applies
    conditionally and is skipped."""
    values = {} if values is None else values
    for raw in text.split("\n"):
        words = raw.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        key = words[0].lower().rstrip("=")
        value = words[1].strip().lstrip("= ") if len(words) > 1 else ""
        if key == "match":
            break
        if key == "include" and depth < INCLUDE_DEPTH:
            for pattern in value.split():
                base = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
                for path in sorted(root.glob(base.lstrip("/"))):
                    try:
                        parse_config(path.read_text(errors="replace"), root, values, depth + 1)
                    except OSError:
                        continue
        elif key in KEYWORDS and key not in values:
            values[key] = value
    return values


def from_sshd(sshd: Sequence[str], user: str) -> Settings | None:
    """A user's settings as sshd itself works them out; None when it cannot (no host keys,
    a broken config)."""
    argv = [*sshd, "-T", "-C", f"user={user},host=localhost,addr=127.0.0.1"]
    try:
        done = process.run(argv, call=process.Call.SSHD_TEST, check=True)
    except (HelperError, OSError):
        return None
    return from_values(parse_sshd_t(done.stdout.decode(errors="replace")), f"{sshd[0]} -T")


def effective(root: Path, user: str = "root") -> Settings:
    """The old host's settings for a user's logins."""
    if root == Path("/"):
        sshd = next((p for p in SSHD_PATHS if p.is_file()), None)
        settings = from_sshd([str(sshd)], user) if sshd else None
        if settings:
            return settings
    config = root / "etc/ssh/sshd_config"
    try:
        text = config.read_text(errors="replace")
    except OSError:
        return Settings()
    return from_values(parse_config(text, root), "/etc/ssh/sshd_config")
