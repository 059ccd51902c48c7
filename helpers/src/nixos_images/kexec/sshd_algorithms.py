"""Which keys and certificates the old sshd's algorithm settings let in
(PubkeyAcceptedAlgorithms, CASignatureAlgorithms, RequiredRSASize), against the installer's
sshd's defaults; sshd_config.py reads the settings."""

from __future__ import annotations

import fnmatch
from typing import Protocol

from nixos_images.kexec import authorized_keys


class Settings(Protocol):
    """What of the old sshd's settings (sshd_config.Settings) these rules read."""

    @property
    def accepted_algorithms(self) -> frozenset[str] | None:
        """PubkeyAcceptedAlgorithms (None: the defaults)."""

    @property
    def ca_signature_algorithms(self) -> frozenset[str] | None:
        """CASignatureAlgorithms (None: the defaults)."""

    @property
    def required_rsa_size(self) -> int:
        """RequiredRSASize."""


# The signature algorithms: what OpenSSH 9.2 (and 10) lets a CA sign certificates with by
# default (CASignatureAlgorithms), and the plain half of PubkeyAcceptedAlgorithms'.
CA_SIGNATURES = frozenset(
    {
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "rsa-sha2-512",
        "rsa-sha2-256",
    }
)
# OpenSSH's default PubkeyAcceptedAlgorithms (sshd -T of 9.2), which sshd_config's +, - and ^
# edit: each signature algorithm, and its certificates'.
DEFAULT_PUBKEY_ALGORITHMS = CA_SIGNATURES | {
    f"{name.removesuffix('@openssh.com')}-cert-v01@openssh.com" for name in CA_SIGNATURES
}


def edited(value: str | None, default: frozenset[str]) -> frozenset[str] | None:
    """An algorithm list; None for the defaults. sshd_config's edits of the defaults: +
    appends, ^ puts first (the same set), - removes what its patterns match."""
    if not value:
        return None
    items = value[1:].split(",") if value[0] in "+-^" else value.split(",")
    if value[0] == "-":
        return frozenset(a for a in default if not any(fnmatch.fnmatchcase(a, p) for p in items))
    if value[0] in "+^":
        return default | set(items)
    return frozenset(items)


# The installer's sshd's RequiredRSASize (OpenSSH's default since 9.1).
INSTALLER_RSA_SIZE = 1024
# What the installer's sshd (OpenSSH 10, its defaults) takes a certificate of, and lets a CA
# sign with: a CA is carried only where the old sshd took at least as much.
CERT_TYPES = (
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
)


def ca_refusal(settings: Settings, *, revokes_keys: bool) -> str | None:
    """Why no CA line of this user can be carried (the old sshd refused some certificates
    of the CA that the installer's would take), or None."""
    if revokes_keys:
        return "RevokedKeys lists keys, which a certificate may hold; the installer has no list"
    refused = [t for t in CERT_TYPES if not accepted(settings, t)]
    if refused:
        return f"PubkeyAcceptedAlgorithms leaves {refused[0]} out, which its certificates may be"
    if settings.required_rsa_size > INSTALLER_RSA_SIZE:
        return (
            f"RequiredRSASize {settings.required_rsa_size}: its certificates' key sizes are unknown"
        )
    signatures = settings.ca_signature_algorithms
    if signatures is not None and not signatures >= CA_SIGNATURES:
        left_out = min(CA_SIGNATURES - signatures)
        return f"CASignatureAlgorithms leaves {left_out} out, which it may have signed with"
    return None


# A key type and the signature algorithms sshd accepts it by (PubkeyAcceptedAlgorithms).
_RSA_ALGORITHMS = ("ssh-rsa", *sorted(authorized_keys.RSA_ALIASES))


def accepted(settings: Settings, key_type: str) -> bool:
    """Whether PubkeyAcceptedAlgorithms lets a key of this type in (always, when unknown)."""
    if settings.accepted_algorithms is None:
        return True
    cert = "-cert-v01@openssh.com"
    base = key_type.removesuffix(cert)
    names = _RSA_ALGORITHMS if base in _RSA_ALGORITHMS else (base,)
    suffix = cert if key_type.endswith(cert) else ""
    return any(f"{name}{suffix}" in settings.accepted_algorithms for name in names)
