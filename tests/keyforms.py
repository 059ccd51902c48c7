"""The same ssh key written other ways that sshd still reads as that key (tests of the key
policy: the launcher must compare keys as sshd does, not as text)."""

from __future__ import annotations

import base64
import struct


def wire(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


def other_forms(key_type: str, blob: str) -> list[str]:
    """The same key written other ways sshd reads as that key (a reviewer's list): the type
    inside the data as a signature or short name, blanks sshd's base64 decoder skips, a NUL
    ending the data, an RSA number with a needless leading zero."""
    raw = base64.b64decode(blob)
    fields = []
    while raw:
        (n,) = struct.unpack(">I", raw[:4])
        fields.append(raw[4 : 4 + n])
        raw = raw[4 + n :]
    forms = [f"{key_type} {blob[:20]}\f{blob[20:]}", f"{key_type} {blob[:20]}\r{blob[20:]}",
             f"{key_type} {blob}\0"]  # fmt: skip
    if key_type == "ssh-rsa":
        padded = wire(fields[0], bytes(1) + fields[1], fields[2])
        forms += [f"ssh-rsa {wire(b'rsa-sha2-512', *fields[1:])}", f"ssh-rsa {padded}"]
    else:
        forms.append(f"{key_type} {wire(b'ED25519', *fields[1:])}")
    return forms
