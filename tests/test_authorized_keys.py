"""authorized_keys lines as sshd reads them, merged by the key policy, written back as sshd
reads them (nixos_images.kexec.authorized_keys); the keys also parse in ssh-keygen.
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
import subprocess
import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import keyforms
from conftest import require
from fakehost import ECDSA, ED25519
from nixos_images.kexec import (
    authorized_keys,
    key_policy,
)
from nixos_images.kexec.authorized_keys import KeyLineError, parse_line

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CLOUD_INIT_OLD = (
    "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as"
    ' the user \\"debian\\" rather than the user \\"root\\".\';echo;sleep 10"'
)


CLOUD_INIT = CLOUD_INIT_OLD[:-1] + ';exit 142"'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # cloud-init's refusal, both variants: removed with its template's options.
        (f"{CLOUD_INIT} {ED25519} cloud", f"{ED25519} cloud"),
        (f"{CLOUD_INIT_OLD} {ED25519} cloud", f"{ED25519} cloud"),
        (f'{CLOUD_INIT},from="192.0.2.0/24" {ED25519}', f'from="192.0.2.0/24" {ED25519}'),
        # Every other restriction stays: the installer's root accepts what the old sshd did.
        (
            f'restrict,from="10.0.0.0/8,192.0.2.1" {ECDSA}',
            f'restrict,from="10.0.0.0/8,192.0.2.1" {ECDSA}',
        ),
        (
            f'command="borg serve --restrict-to-path /b" {ED25519}',
            f'command="borg serve --restrict-to-path /b" {ED25519}',
        ),
        (
            f'Command="x",NO-PTY,permitopen="h:22" {ED25519}',
            f'Command="x",NO-PTY,permitopen="h:22" {ED25519}',
        ),
        (
            f'command="echo \'Please login as the user \\"x\\"\'" {ED25519}',
            f'command="echo \'Please login as the user \\"x\\"\'" {ED25519}',
        ),
        # Blanks are spaces and tabs; a carriage return at the end is no part of the line.
        (f" \t{ED25519}\t spaced  comment \r", f"{ED25519} spaced  comment"),
    ],
)
def test_restrictions_are_kept_and_only_cloud_inits_refusal_goes(line: str, expected: str) -> None:
    """In root's own file: cloud-init's refusal there says "log in as the user", and the
    installer has no such user."""
    keys, skipped, _ = key_policy.merge([source("/root/.ssh/authorized_keys", line)])
    assert skipped == []
    assert [k.line() for k in keys] == [expected]


def test_cloud_inits_refusal_on_another_users_line_stays_out() -> None:
    """On the sudo user's own line it is what that key did on the old host, a forced
    command: as the installer's root it would run as root, so the line stays out."""
    line = f"{CLOUD_INIT} {ED25519} cloud"
    admin = key_policy.Source("/home/admin/.ssh/authorized_keys", "admin", line)
    keys, skipped, _ = key_policy.merge([admin])
    assert keys == []
    assert skipped[0].reason == "a forced command of admin's would run as root on the installer"


@pytest.mark.parametrize(
    "line",
    [
        "ssh-ed25519",  # no key
        "ssh-ed25519 not-base64!",
        f"ssh-rsa {ED25519.split()[1]}",  # the data says ed25519
        'command="unterminated ssh-ed25519 AAAA',
        f"from=x,,no-pty {ED25519}",  # an empty option
        f"command=/bin/sh {ED25519}",  # sshd wants the value quoted: it rejects the line
        f"no-such-option {ED25519}",  # sshd rejects unknown options
        f'no-pty="x" {ED25519}',  # a flag with a value
        f"{ED25519.replace(' ', chr(0x0B))}",  # \v is no blank for sshd
        f"{ED25519.replace(' ', chr(0x1F))}",
        f"{ED25519.replace(' ', chr(0x2028))}",  # a Unicode line separator is no line end
        f"{ED25519.replace(' ', chr(0xA0))}",  # nor is a Unicode space a blank
        "just some words",
        "ssh-ed25519 AAAA",  # too short to hold a type
    ],
)
def test_lines_sshd_would_not_accept_are_skipped(line: str) -> None:
    with pytest.raises(KeyLineError):
        parse_line(line)


@pytest.mark.parametrize("mark", ["\x1b[2J", "\x0b", "\x1f", "\x85", "\u2028", "\u2029", "\x00"])
def test_a_comment_is_free_text_written_back_as_one_plain_line(mark: str) -> None:
    """sshd never reads the comment (test_sshd.py logs in with such lines): the key is
    carried, and what other readers would take as a line end or an escape becomes a space."""
    key = parse_line(f"{ED25519} before{mark}after")
    assert key is not None
    assert key.line().splitlines() == [key.line()]
    assert key.line().startswith(ED25519)
    assert key.comment.startswith("before ")
    assert key.comment.endswith("after")


def source(path: str, text: str) -> key_policy.Source:
    user = "root" if path.startswith(("/root/", "/etc/ssh/authorized_keys.d/root")) else "admin"
    return key_policy.Source(path, user, text)


def test_merge_keeps_every_distinct_line_the_callers_unrestricted_key_first() -> None:
    keys, skipped, _ = key_policy.merge(
        [
            source(
                "/root/.ssh/authorized_keys",
                f'# comment\n\nfrom="192.0.2.0/24" {ED25519} limited\n{ED25519} first\n'
                f'command="backup" {ECDSA} backup\n',
            ),
            source(
                "/home/admin/.ssh/authorized_keys",
                f'{ECDSA}\ngarbage line\n{ED25519} again\r\ncommand="rsync" {ED25519} x\n',
            ),
        ]
    )
    assert [k.line() for k in keys] == [
        ECDSA,  # the sudo user's unrestricted key first
        f"{ED25519} again",
        f"{ED25519} first",
        f'from="192.0.2.0/24" {ED25519} limited',
        # root's forced-command copy is dropped: the caller's unrestricted copy is carried
    ]
    assert [(s.source, s.line_number, s.reason) for s in skipped] == [
        (
            "/home/admin/.ssh/authorized_keys",
            2,
            "option 'garbage' is not one sshd accepts",
        ),
        ("/home/admin/.ssh/authorized_keys", 4, "sshd never reached it: line 3 has the same key"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # sshd takes the first line that applies: root got the forced command, never a shell.
        (f'command="echo first" {ED25519}\n{ED25519}\n', [f'command="echo first" {ED25519}']),
        # from 192.0.2.0/24 the forced command, from elsewhere a shell: the order is the meaning.
        (
            f'from="192.0.2.0/24",command="echo near" {ED25519}\n{ED25519}\n',
            [f'from="192.0.2.0/24",command="echo near" {ED25519}', ED25519],
        ),
    ],
)
def test_a_files_first_matching_line_decides_as_in_sshd(text: str, expected: list[str]) -> None:
    keys, _, _ = key_policy.merge([source("/root/.ssh/authorized_keys", text)])
    assert [k.line() for k in keys] == expected


def test_a_forced_command_key_without_an_unrestricted_copy_stays_forced() -> None:
    keys, _, _ = key_policy.merge(
        [source("/root/.ssh/authorized_keys", f'command="borg serve" {ED25519} backup\n')]
    )
    assert [k.line() for k in keys] == [f'command="borg serve" {ED25519} backup']


def test_a_users_cert_authority_keeps_meaning_that_users_certificates() -> None:
    keys, _, notes = key_policy.merge(
        [
            source("/home/admin/.ssh/authorized_keys", f"cert-authority {ED25519} ca\n"),
            source(
                "/home/admin/.ssh/authorized_keys2", f'cert-authority,principals="ops" {ECDSA}\n'
            ),
            source("/root/.ssh/authorized_keys", f"cert-authority {ECDSA} root-ca\n"),
        ]
    )
    assert [k.line() for k in keys] == [
        f'cert-authority,principals="admin" {ED25519} ca',
        f'cert-authority,principals="ops" {ECDSA}',
        f"cert-authority {ECDSA} root-ca",
    ]
    assert notes == [
        (
            "/home/admin/.ssh/authorized_keys:1: cert-authority limited to certificates for"
            " admin (principals added)"
        )
    ]


def test_rewritten_keys_parse_in_openssh(tmp_path: Path) -> None:
    """ssh-keygen reads authorized_keys files, options included: every line must still parse."""
    require([] if shutil.which("ssh-keygen") else ["ssh-keygen"], "the OpenSSH check")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
    )
    real = (tmp_path / "k.pub").read_text().strip()
    text = f'restrict,command="a \\"b\\"",from="192.0.2.0/24" {real}\n{CLOUD_INIT} {real}\n'
    keys, _, _ = key_policy.merge([source("/root/.ssh/authorized_keys", text)])
    (tmp_path / "authorized_keys").write_text(authorized_keys.render(keys))
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "authorized_keys")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.count("SHA256:") == 2
    # From 192.0.2.0/24 the forced command came first on the old host, and still does.
    assert authorized_keys.render(keys) == f"{text.splitlines()[0]}\n{real}\n"


LINE_PARTS = st.sampled_from(
    [ED25519, ECDSA, "command=", '"echo x"', "from=", '"192.0.2.0/24"', "restrict", ",", " ",
     "\t", "\r", "\x0b", "\x1b[2J", "\u2028", "\xa0", "#", "no-pty", "cert-authority", "x"]
)  # fmt: skip


@given(st.lists(LINE_PARTS, max_size=8).map("".join))
# Found by a random seed in a Nix build: a comment ending in a line break only Python sees.
@example(f"{ED25519} x\u2028")
@example(f"{ED25519}\t\x85\u2029")
@example(f"{ED25519} \r{ED25519}")  # found by CI's exploring seed: a comment starting with \r
@example(f"{ED25519} {ED25519}\t{ED25519}")  # and one with a tab inside
def test_any_line_is_skipped_or_written_back_as_sshd_reads_it(line: str) -> None:
    """Whatever the line: no crash; a key that is written back parses to itself, with no
    control character and nothing but single spaces between its fields."""
    try:
        key = parse_line(line)
    except KeyLineError:
        return
    if key is None:
        return
    written = key.line()
    assert not re.search(r"[\x00-\x1f\x7f\u2028\u2029]", written)
    assert parse_line(written) == key


def blob(key_type: str) -> str:
    """A key blob that claims key_type (what check_blob reads), with filler key data."""
    name = key_type.encode()
    return base64.b64encode(struct.pack(">I", len(name)) + name + b"\x00" * 16).decode()


def test_a_dsa_key_is_reported_not_counted_as_a_way_in() -> None:
    """OpenSSH 10 (the installer's) refuses DSA: a DSA line would be a key that no longer opens
    the door, so it is skipped with the reason, and the other keys still count."""
    text = f"ssh-dss {blob('ssh-dss')} old\n{ED25519} new\n"
    keys, skipped, _ = key_policy.merge([source("/root/.ssh/authorized_keys", text)])
    assert [k.key_type for k in keys] == ["ssh-ed25519"]
    assert [(s.line_number, s.reason) for s in skipped] == [
        (1, authorized_keys.DROPPED_TYPES["ssh-dss"])
    ]


@pytest.mark.parametrize(
    "line",
    [
        f"rsa-sha2-256 {blob('ssh-rsa')} written with a signature name",
        f"rsa-sha2-512 {blob('ssh-rsa')}",
        f"touch-required {ED25519}",
        f"no-verify-required,no-touch-required {ED25519}",
    ],
)
def test_lines_sshd_accepts_are_carried_as_they_are(line: str) -> None:
    """sshd takes an RSA key's signature names as its type (sshkey.c), and touch-required and
    no-verify-required as flags (auth-options.c): skipping them would drop a working key."""
    key = parse_line(line)
    assert key is not None
    assert key.line() == line


def test_a_signature_name_on_another_keys_data_is_still_refused() -> None:
    with pytest.raises(KeyLineError, match="not a rsa-sha2-256 key"):
        parse_line(f"rsa-sha2-256 {blob('ssh-ed25519')}")


def test_the_operators_own_line_keeps_even_cloud_inits_refusal() -> None:
    """--ssh-key's lines are the operator's: kept as written, never given more rights."""
    line = f"{CLOUD_INIT} {ED25519} given"
    given = key_policy.Source("--ssh-key", "root", line, given=True)
    keys, _, _ = key_policy.merge([given])
    assert [k.line() for k in keys] == [line]


def test_a_ca_line_is_judged_by_certificate_types_and_revoked_keys_stay_out() -> None:
    """PubkeyAcceptedAlgorithms without certificates refused every certificate a CA line
    would let in; with them only, it let them in. A key RevokedKeys lists never logged in."""
    text = f"cert-authority {ED25519} ca\n{ECDSA} plain\n"
    plain_only = {"ssh-ed25519", "ecdsa-sha2-nistp256"}

    def carried(accepted: set[str], revoked: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
        source = key_policy.Source(
            "/root/.ssh/authorized_keys",
            "root",
            text,
            accepts=accepted.__contains__,
            revoked=revoked,
        )
        return [k.comment for k in key_policy.merge([source])[0]]

    assert carried(plain_only) == ["plain"]
    assert carried({"ssh-ed25519-cert-v01@openssh.com"}) == ["ca"]
    blob = ECDSA.split()[1]
    assert carried(plain_only, frozenset({("ecdsa-sha2-nistp256", blob)})) == []


def test_a_force_command_is_written_as_sshd_reads_it_back() -> None:
    """Only a quote is escaped (sshd reads a backslash before a quote as one): a backslash
    at the very end cannot be written."""
    key = parse_line(ED25519)
    assert key is not None
    written = authorized_keys.with_command(key, 'echo a\\"b "c"')
    assert written.options == ('command="echo a\\\\"b \\"c\\""',)
    assert authorized_keys.writable_command('echo a\\"b')
    assert not authorized_keys.writable_command("echo \\")


# An RSA key (sshd takes it written as ssh-rsa, rsa-sha2-256 or rsa-sha2-512 alike).
RSA_BLOB = (
    "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDQxgx3Nxg9wR5frszOK0/KsUZeg+3bT5I/JKu4IU0X9vF8VhGMxborP7IW"
    "/H6gppwPSNVDLh3usDajnHKYG4UiiVPiYCDhmeLHjD6kWGyiqs9+xsFZuIEXx+9iRUrQI6m7oWnEpeyZ/pvRF2Vv"
    "iYL3/74OLDRfxy7ekAF+asbgLQ=="
)


def test_an_rsa_key_is_one_key_whatever_its_type_is_written_as() -> None:
    """sshd 9.2: a forced line for ssh-rsa B, then rsa-sha2-256 B: the forced command runs
    (a reviewer's real-sshd run). The second line is never reached; RevokedKeys' ssh-rsa B
    revokes rsa-sha2-512 B."""
    text = f'command="echo forced" ssh-rsa {RSA_BLOB}\nrsa-sha2-256 {RSA_BLOB}\n'
    keys, skipped, _ = key_policy.merge([source("/root/.ssh/authorized_keys", text)])
    assert [k.line() for k in keys] == [f'command="echo forced" ssh-rsa {RSA_BLOB}']
    assert skipped[0].reason == "sshd never reached it: line 1 has the same key"
    revoked = key_policy.Source(
        "/root/.ssh/authorized_keys",
        "root",
        f"rsa-sha2-512 {RSA_BLOB}\n",
        revoked=frozenset({("ssh-rsa", RSA_BLOB)}),
    )
    keys, skipped, _ = key_policy.merge([revoked])
    assert keys == []
    assert skipped[0].reason == "RevokedKeys lists it"


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        # Left out for its own from= beside a Match on the address (only_from below).
        (f'from="127.0.0.2",command="echo forced" {ED25519}', "cannot be carried together"),
        # A control character in an option: sshd reads it (a reviewer's real-sshd run).
        (f'command="echo forced\x1b" {ED25519}', "a control character in its options"),
    ],
)
def test_a_line_left_out_does_not_let_a_later_one_take_its_place(first: str, reason: str) -> None:
    text = f"{first}\n{ED25519}\n"
    src = key_policy.Source("/root/.ssh/authorized_keys", "root", text, only_from="127.0.0.1")
    keys, skipped, _ = key_policy.merge([src])
    assert keys == []
    assert reason in skipped[0].reason
    assert "could not be judged" in skipped[1].reason


def test_forced_commands_only_judges_the_line_as_written_not_with_force_command() -> None:
    """sshd: PermitRootLogin forced-commands-only looks at the key's own command=; a
    ForceCommand does not make a plain line pass (a reviewer's real-sshd run: REFUSED)."""
    src = key_policy.Source(
        "/root/.ssh/authorized_keys",
        "root",
        f'{ED25519}\nfrom="10.0.0.0/8" {ECDSA}\ncommand="echo ok" {ECDSA}\n',
        forced_only=True,
        force_command="echo FC",
    )
    keys, skipped, _ = key_policy.merge([src])
    assert keys == []  # the from= line without command blocks the key's later line too
    assert [s.reason for s in skipped][:2] == ["PermitRootLogin forced-commands-only"] * 2


@pytest.mark.parametrize(
    ("version", "carried"),
    [
        # OpenSSH 7.4 knew restrict (7.2), not expiry-time (7.7): it skipped that line, and
        # the plain one let the key in.
        ((7, 4), [ED25519]),
        ((7, 7), [f'expiry-time="29991231Z",command="echo x" {ED25519}', ED25519]),
        (None, [f'expiry-time="29991231Z",command="echo x" {ED25519}', ED25519]),
    ],
)
def test_a_line_the_old_sshds_version_did_not_know_never_counted(
    version: tuple[int, int] | None, carried: list[str]
) -> None:
    """The installer's newer sshd knows every option: a line the old one skipped for an
    option it did not know must not start to count (nor shadow what it let in)."""
    text = f'expiry-time="29991231Z",command="echo x" {ED25519}\n{ED25519}\n'
    source = key_policy.Source("/root/.ssh/authorized_keys", "root", text, version=version)
    keys, skipped, _ = key_policy.merge([source])
    assert [k.line() for k in keys] == carried
    if version == (7, 4):
        assert [s.reason for s in skipped] == [
            "OpenSSH 7.4 did not know expiry-time: sshd skipped the line"
        ]


@pytest.mark.parametrize(
    ("version", "known"),
    [((8, 1), False), ((8, 2), True), ((8, 3), True)],
)
def test_touch_and_verify_options_count_from_the_release_that_knew_them(
    version: tuple[int, int], *, known: bool
) -> None:
    line = parse_line(f"no-touch-required {ED25519}")
    assert line is not None
    assert (authorized_keys.unknown_to(line, version) == []) is known
    verify = parse_line(f"verify-required {ED25519}")
    assert verify is not None
    assert authorized_keys.unknown_to(verify, version) == ["verify-required"]


@pytest.mark.parametrize(
    ("required", "line", "carried"),
    [
        (frozenset(), f"no-touch-required {ED25519}", f"no-touch-required {ED25519}"),
        (frozenset({"touch-required"}), f"no-touch-required {ED25519}", ED25519),
        (frozenset({"verify-required"}), ED25519, f"verify-required {ED25519}"),
        (frozenset({"touch-required", "verify-required"}),
         f"NO-TOUCH-REQUIRED,verify-required {ED25519}", f"verify-required {ED25519}"),
        # The last of verify-required and its no- form wins: the line cannot take it back.
        (frozenset({"verify-required"}), f"verify-required,no-verify-required {ED25519}",
         f"verify-required {ED25519}"),
    ],
)  # fmt: skip
def test_pubkey_auth_options_travel_with_every_key(
    required: frozenset[str], line: str, carried: str
) -> None:
    """The old sshd asked every security key for a touch (whatever the line said) or for
    user verification: so does the installer's root, by key options."""
    source = key_policy.Source(
        "/root/.ssh/authorized_keys", "root", f"{line}\n", pubkey_auth_options=required
    )
    keys, _, _ = key_policy.merge([source])
    assert [k.line() for k in keys] == [carried]


@pytest.mark.parametrize(
    ("options", "line", "carried"),
    [
        # sshd_config's restriction goes at the end, where it wins over the line's own.
        (("no-pty",), f"no-pty,pty {ED25519}", f"no-pty,pty,no-pty {ED25519}"),
        (("no-pty",), f"pty,no-pty {ED25519}", f"pty,no-pty {ED25519}"),
        (("no-port-forwarding",), f"restrict,port-forwarding {ED25519}",
         f"restrict,port-forwarding,no-port-forwarding {ED25519}"),
        (('permitopen="db:5432"',), f'permitopen="x:1" {ED25519}',
         f'permitopen="x:1",no-port-forwarding {ED25519}'),
    ],
)  # fmt: skip
def test_session_restrictions_win_over_the_lines_own_options(
    options: tuple[str, ...], line: str, carried: str
) -> None:
    source = key_policy.Source(
        "/root/.ssh/authorized_keys", "root", f"{line}\n", session_options=options
    )
    keys, _, _ = key_policy.merge([source])
    assert [k.line() for k in keys] == [carried]


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        (f'from="!localhost,*" {ED25519}', False),
        (f'from="*.example.org" {ED25519}', False),
        (f'from="10.0.0.0/8,192.168.*,!192.168.1.?" {ED25519}', True),
        (f'from="2001:db8::/32,fe80::*" {ED25519}', True),
        (ED25519, True),
    ],
)
def test_under_use_dns_a_from_that_names_hosts_is_not_judged(line: str, *, kept: bool) -> None:
    """With UseDNS yes, sshd matched from= against the client's DNS name: a pattern that can
    match a name cannot be judged here, and the key is left out."""
    source = key_policy.Source("/root/.ssh/authorized_keys", "root", f"{line}\n", use_dns=True)
    keys, skipped, _ = key_policy.merge([source])
    assert bool(keys) is kept
    assert kept or "UseDNS yes" in skipped[0].reason


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[None]:
    """The old host's local time zone for the test (TZ, as indirect parameter)."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ["Europe/Berlin"], indirect=True)
@pytest.mark.usefixtures("zone")
def test_an_expiry_is_read_as_standard_time_as_sshd_reads_it() -> None:
    """sshd's parse_absolute_time fills a zeroed struct tm (no summer time) for mktime: in
    July in Berlin, 12:00 is 11:00 UTC to it, not 10:00."""
    line = f'expiry-time="20300701120000" {ED25519}\n'
    keys, _, _ = key_policy.merge([key_policy.Source("/root/.ssh/authorized_keys", "root", line)])
    assert [k.line() for k in keys] == [f'expiry-time="20300701110000Z" {ED25519}']


@pytest.mark.parametrize("zone", ["JST-9"], indirect=True)
@pytest.mark.usefixtures("zone")
@pytest.mark.parametrize(
    ("written", "carried"),
    [
        ('expiry-time="20300101090000"', 'expiry-time="20300101000000Z"'),
        ('EXPIRY-TIME="203001011000"', 'expiry-time="20300101010000Z"'),
        ('expiry-time="20300102"', 'expiry-time="20300101150000Z"'),
        ('expiry-time="20300101090000Z"', 'expiry-time="20300101090000Z"'),  # UTC already
        # mktime rolls a second 60 over, as glibc's does for sshd.
        ('expiry-time="20261206033560"', 'expiry-time="20261205183600Z"'),
    ],
)
def test_an_expiry_in_the_old_hosts_local_time_travels_in_utc(written: str, carried: str) -> None:
    """sshd reads expiry-time without Z in its host's time zone; the installer has none of
    its own (UTC): written in UTC, the key expires at the same moment."""
    source = key_policy.Source("/root/.ssh/authorized_keys", "root", f"{written} {ED25519}\n")
    keys, _, _ = key_policy.merge([source])
    assert [k.line() for k in keys] == [f"{carried} {ED25519}"]


@pytest.mark.parametrize(
    "options",
    [
        'command="echo a",command="echo b"',  # sshd 7.7+: "multiple command clauses"
        'from="10.0.0.1",FROM="10.0.0.2"',
    ],
)
def test_a_line_sshd_may_have_read_otherwise_blocks_its_key(options: str) -> None:
    """Refused by this sshd, taken (the last clause) by older ones, or mangled by a rewrite
    (ForceCommand drops every command=): the key's later lines must not stand in."""
    text = f"{options} {ED25519}\nrestrict {ED25519}\n"
    source = key_policy.Source("/root/.ssh/authorized_keys", "root", text, force_command="echo fc")
    keys, skipped, _ = key_policy.merge([source])
    assert keys == []
    assert [s.line_number for s in skipped] == [1, 2]


def test_a_value_with_more_after_its_quote_is_a_line_sshd_skips() -> None:
    """sshd's opt_dequote takes nothing after the closing quote: it skipped the line, and the
    next one decided, restricted; ForceCommand, which drops every command=, must not turn
    the first into a valid line."""
    text = f'command="a"b"c" {ED25519}\nrestrict {ED25519}\n'
    source = key_policy.Source("/root/.ssh/authorized_keys", "root", text, force_command="echo fc")
    keys, _, _ = key_policy.merge([source])
    assert [k.line() for k in keys] == [f'restrict,command="echo fc" {ED25519}']


def test_a_comma_before_the_blank_is_a_line_sshd_reads() -> None:
    key = authorized_keys.parse_line(f'command="echo forced", {ED25519}')
    assert key is not None
    assert key.options == ('command="echo forced"',)


@pytest.mark.parametrize("expiry", ["20991301", "20990100", "20990101250000", "20990101126000"])
def test_an_expiry_sshd_cannot_read_is_not_rolled_into_one_it_can(expiry: str) -> None:
    """glibc's strptime refuses month 13, day 0, hour 25, minute 60: sshd skipped such a line;
    mktime would have rolled it into a valid time."""
    text = f'expiry-time="{expiry}" {ED25519}\n'
    keys, skipped, _ = key_policy.merge([key_policy.Source("/root/x", "root", text)])
    assert keys == []
    assert "is no time sshd reads" in skipped[0].reason


@pytest.mark.parametrize(
    ("kind", "index"), [*(("ed25519", i) for i in range(4)), *(("rsa", i) for i in range(5))]
)
def test_a_key_written_another_way_is_the_same_key(tmp_path: Path, kind: str, index: int) -> None:
    """sshd compares decoded keys: a forced line for K written another way decides before a
    plain K line; the plain one must not be carried unrestricted."""
    require([] if shutil.which("ssh-keygen") else ["ssh-keygen"], "the key-forms test")
    path = tmp_path / "k"
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)]
    subprocess.run([*argv, *(["-b", "2048"] if kind == "rsa" else [])], check=True)
    key_type, blob = path.with_suffix(".pub").read_text().split()[:2]
    text = (
        f'command="echo forced" {keyforms.other_forms(key_type, blob)[index]}\n{key_type} {blob}\n'
    )
    keys, _, _ = key_policy.merge([key_policy.Source("/root/.ssh/authorized_keys", "root", text)])
    assert f"{key_type} {blob}" not in [k.line() for k in keys]
