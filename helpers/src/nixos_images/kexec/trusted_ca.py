"""TrustedUserCAKeys as the installer's root can hold it: the old sshd let a user in with a
certificate that one of its CAs signed for a principal of theirs (the user's name, or a line of
their AuthorizedPrincipalsFile); the installer's root gets the same as `cert-authority` lines,
each with its principals= (and the principal line's options), in the user's stream of lines
(collect.py), where the old sshd checked them: after the user's files (OpenSSH 8.1 and later),
before them (8.0 and older).

OpenSSH's auth2-pubkey.c (user_cert_trusted_ca): the CA file is read as root, bare keys, `#`
comments, and sshd stops at the first line that is not a key; a principals line is `[options]
principal`, `#` starts a comment, and the first line whose principal the certificate holds
decides (its options apply).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nixos_images import fsutil
from nixos_images.kexec import authorized_keys, key_files

if TYPE_CHECKING:
    from pathlib import Path


class UncarriedError(Exception):
    """The CAs cannot be carried for this user as the old sshd applied them."""


# What principals="..." cannot hold as one principal: its list separator, its quote.
_UNWRITABLE = re.compile(r'[,"\\\x00-\x1f\x7f]')


def ca_keys(text: str) -> list[str]:
    """The CA keys of a TrustedUserCAKeys file ("type base64"), up to the first line that is no
    key sshd reads (sshkey_in_file: only blanks and # lines are skipped; a line holding a CR
    alone, options, a key that does not decode as its type, or a type the installer lacks
    ends it: sshd stops reading there)."""
    keys = []
    for raw in text.split("\n"):
        line = raw.split("\0", 1)[0].lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        try:
            key = authorized_keys.parse_line(line.removesuffix("\r"))
        except authorized_keys.KeyLineError:
            break
        if key is None or key.options or key.key_type in authorized_keys.DROPPED_TYPES:
            break
        if key.key_type.startswith("ssh-xmss"):  # OpenSSH builds XMSS only when asked
            break
        keys.append(f"{key.key_type} {key.blob}")
    return keys


def principal_lines(text: str) -> list[tuple[str, str]]:
    """An AuthorizedPrincipalsFile's (options, principal) lines, as sshd's
    auth_check_principals_line splits them: `#` anywhere ends the line, blanks (space, tab;
    not CR) trimmed; the principal follows the last space, else the last tab; of what comes
    before it only the leading options count (sshauthopt_parse stops at a blank). A line
    whose options sshd would refuse never matched: it is left out, as sshd moved on."""
    lines = []
    for raw in text.split("\n"):
        line = raw.split("\0", 1)[0].split("#", 1)[0].strip(" \t")
        if not line:
            continue
        blank = line.rfind(" ")
        blank = blank if blank >= 0 else line.rfind("\t")
        if blank < 0:
            lines.append(("", line))
            continue
        try:
            options, _ = authorized_keys.split_options(line[:blank].strip(" \t"))
        except authorized_keys.KeyLineError:
            continue
        if {o.split("=", 1)[0].lower() for o in options} & {"cert-authority", "principals"}:
            continue  # sshd: not valid on a principals line
        lines.append((",".join(options), line[blank + 1 :]))
    return lines


def as_key_lines(cas: list[str], principals: list[tuple[str, str]]) -> str:
    """authorized_keys lines that let in what the CAs and principals let in: for each principal
    line in order, each CA with principals="<principal>" and the line's options."""
    out = []
    for options, principal in principals:
        if _UNWRITABLE.search(principal) or not principal:
            msg = f"the principal {principal!r} cannot be written as principals="
            raise UncarriedError(msg)
        extra = f",{options}" if options else ""
        out += [f'cert-authority,principals="{principal}"{extra} {ca}\n' for ca in cas]
    return "".join(out)


def lines(file: key_files.KeyFile, root: Path) -> str:
    """The user's CA grants (file.settings' TrustedUserCAKeys) as authorized_keys lines.
    UncarriedError (the CAs stay out) when the principals cannot be known or written;
    the errors of fsutil.read_untrusted for the CA file, read as root as sshd reads it."""
    settings = file.settings
    if settings.authorized_principals_command is not None:
        msg = f"AuthorizedPrincipalsCommand {settings.authorized_principals_command}"
        raise UncarriedError(msg + " decided the principals, which the installer cannot ask")
    cas = ca_keys(fsutil.read_untrusted(file.path, key_files.KEY_FILE_LIMIT))
    pattern = settings.authorized_principals_file
    if pattern is None:
        # The certificate must name the user (and name someone: sshd's require_principal).
        return as_key_lines(cas, [("", file.user)])
    path = key_files.expand(pattern, file.user, file.uid, file.home, root)
    if path is None:
        raise UncarriedError(f"AuthorizedPrincipalsFile {pattern} has a %-token sshd does not know")
    principals_file = key_files.KeyFile(
        file.user, file.uid, file.home, path, settings, file.reader, file.only_from
    )
    try:
        text = key_files.read(principals_file, root)
    except FileNotFoundError:
        return ""  # no principal: sshd let no certificate in
    except (OSError, fsutil.UnsafeFileError) as e:
        raise UncarriedError(f"{path}: {fsutil.why(e)}") from None
    return as_key_lines(cas, principal_lines(text))
