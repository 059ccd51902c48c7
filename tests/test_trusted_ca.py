"""TrustedUserCAKeys as the installer's root holds it (nixos_images.kexec.trusted_ca); the
real-sshd table is in tests/test_sshd.py."""

from __future__ import annotations

import pytest

from nixos_images.kexec import trusted_ca

CA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFp1M8Jq1Tn8dN0bYH3ci6UvUbdXJOo1mM2OSCHbiWO6"


OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGt6ZX5SRhpUnNLIGxrdGSovxFVCyLyUL6x6j4tRmIuQ"


@pytest.mark.parametrize(
    "stop",
    [
        f"cert-authority {OTHER}",  # options: no key to sshkey_read
        "\r",  # a CRLF file's blank line is no blank line to sshd
        "ssh-ed25519 AAAAnot-a-key",
        f"ssh-rsa {OTHER.split()[1]}",  # an ed25519 key typed as RSA
        "ssh-xmss@openssh.com AAAAFHNzaC14bXNzQG9wZW5zc2guY29tAAAA",
    ],
)
def test_the_ca_file_is_read_up_to_its_first_line_that_is_no_key(stop: str) -> None:
    """sshd stops reading TrustedUserCAKeys at a line it cannot read: later CAs never
    counted, so they are not carried."""
    text = f"# our CA\n\n  {CA} ops-ca\r\n{stop}\n{OTHER}\n"
    assert trusted_ca.ca_keys(text) == [CA]


def test_principal_lines_are_split_as_sshd_splits_them() -> None:
    text = (
        'backup\n  command="echo x",from="10.0.0.0/8" ops # comment\n\n# none\nroot#x\n'
        # Only the leading options count: a key in the middle is no CA of the line's.
        f"no-pty {OTHER} admin\n"
        # The last space, not the last tab: the principal is `b"<tab>root` (never matched).
        'command="echo a b"\troot\n'
        # Options sshd refuses on a principals line: that line never matched.
        f"cert-authority,no-pty deploy\nno-such-option ops\nwindows\r\n"
    )
    assert trusted_ca.principal_lines(text) == [
        ("", "backup"),
        ('command="echo x",from="10.0.0.0/8"', "ops"),
        ("", "root"),
        ("no-pty", "admin"),
        ("", "windows\r"),  # sshd keeps the CR: no certificate names it
    ]


def test_each_principal_line_becomes_a_line_per_ca_in_its_order() -> None:
    lines = trusted_ca.as_key_lines([CA, "ssh-rsa AAAAB3"], [("no-pty", "a"), ("", "b")])
    assert lines == (
        f'cert-authority,principals="a",no-pty {CA}\n'
        'cert-authority,principals="a",no-pty ssh-rsa AAAAB3\n'
        f'cert-authority,principals="b" {CA}\n'
        'cert-authority,principals="b" ssh-rsa AAAAB3\n'
    )


@pytest.mark.parametrize("principal", ["a,b", 'a"b', "a\\b", "a\x1bb"])
def test_a_principal_that_principals_cannot_hold_leaves_the_cas_out(principal: str) -> None:
    """Dropping that one line would let a later one grant more to a certificate naming both."""
    with pytest.raises(trusted_ca.UncarriedError, match="cannot be written"):
        trusted_ca.as_key_lines([CA], [("", "ok"), ("", principal)])
