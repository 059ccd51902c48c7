"""How sshd_config's settings and the old host's clock travel with a key as its options (the
key policy, key_policy.py, decides which lines travel at all)."""

from __future__ import annotations

import re
import time

from nixos_images.kexec.authorized_keys import Key

_EXPIRY = re.compile(r'expiry-time="(\d{8}(?:\d{4}(?:\d{2})?)?)"', re.IGNORECASE)


def expiry_in_utc(key: Key) -> Key:
    """expiry-time= without Z or UTC is the old host's local time (OpenSSH's
    parse_absolute_time): written in UTC, as the installer (which has no time zone of the
    host's) reads it the same. ValueError for one that cannot be converted."""
    options = tuple(_utc_option(option) for option in key.options)
    if options == key.options:
        return key
    return Key(options, key.key_type, key.blob, key.comment)


def _utc_option(option: str) -> str:
    """An expiry-time= in local time as one in UTC; any other option as it is. As sshd:
    strptime's fields into a zeroed struct tm (standard time: tm_isdst 0) and mktime, which
    rolls a second 60 or a 31 November over."""
    found = _EXPIRY.fullmatch(option)
    if found is None:
        return option
    digits = found.group(1).ljust(14, "0")
    year, month, day, hour, minute, second = (
        int(digits[i:j]) for i, j in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14))
    )
    # strptime's ranges (sshd refuses the line outside them); mktime rolls over within.
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 61):  # noqa: PLR2004
        msg = f"its expiry-time {found.group(1)} is no time sshd reads"
        raise ValueError(msg)
    try:
        moment = time.mktime((year, month, day, hour, minute, second, 0, 0, 0))
        utc = time.strftime("%Y%m%d%H%M%S", time.gmtime(moment))
    except (OverflowError, ValueError, OSError) as e:
        msg = f"its expiry-time {found.group(1)} cannot be read in UTC"
        raise ValueError(msg) from e
    return f'expiry-time="{utc}Z"'


def session_options(key: Key, options: tuple[str, ...]) -> list[str]:
    """sshd_config's session options, to go at the end of the line: sshd reads key options
    left to right and the last of a flag and its no- form wins, so `no-pty,pty` allows a
    terminal; a flag is left out only where the line already ends on it. A permitopen= or
    permitlisten= beside the line's own would widen its list (sshd took both: only what
    both allowed), so forwarding goes instead."""
    names = key.option_names()
    last: dict[str, str] = {}
    for option in key.options:
        name = option.split("=", 1)[0].lower()
        last[name.removeprefix("no-")] = name
    added = []
    for option in options:
        name = option.split("=", 1)[0].lower()
        if "=" in option:
            added.append("no-port-forwarding" if name in names else option)
        elif last.get(name.removeprefix("no-")) != name:
            added.append(option)
    return list(dict.fromkeys(added))


def with_pubkey_auth_options(key: Key, required: frozenset[str]) -> Key:
    """The line with what sshd_config's PubkeyAuthOptions asked of every security key: a touch
    whatever the line said (its no-touch-required goes), user verification (verify-required,
    which a key that is no security key is not asked for)."""
    options = key.options
    if "touch-required" in required:
        options = tuple(o for o in options if o.lower() != "no-touch-required")
    if "verify-required" in required:
        # The last of verify-required and no-verify-required wins: the no- forms go.
        options = tuple(o for o in options if o.lower() != "no-verify-required")
        if "verify-required" not in {o.lower() for o in options}:
            options = (*options, "verify-required")
    if options == key.options:
        return key
    return Key(options, key.key_type, key.blob, key.comment)
