"""sshd_config read without sshd (nixos_images.kexec.sshd_config_file): Include, Match blocks
for the user, and fail closed where a block cannot be judged; compared with what Debian's
real sshd 9.2 makes of the same files (`sshd -T -C user=...`).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import sshd
from conftest import require
from nixos_images.kexec import sshd_algorithms, sshd_config, sshd_config_file
from nixos_images.kexec.sshd_config_file import Login, UnjudgedError

ROOT = Login("root", ("root",))
ADMIN = Login("admin", ("admin", "wheel"))


def values(text: str, root: Path, login: Login = ROOT) -> dict[str, str]:
    return sshd_config_file.parse_config(text, root, login, sshd_config.KEYWORDS, sshd_config.LISTS)


@pytest.mark.parametrize(
    "text",
    [
        "Include /etc/ssh/sshd_config\nPermitRootLogin prohibit-password\n",
        # 3^16 files if each were read: sshd stops at once, and so does this.
        "Include sshd_config sshd_config sshd_config\n",
    ],
)
def test_an_sshd_config_that_includes_itself_is_refused_at_once(tmp_path: Path, text: str) -> None:
    """sshd refuses a config whose Includes nest deeper than 16 ("Too many recursive
    configuration includes"): what it would grant is unknown, never a RecursionError or a
    walk through millions of files."""
    config = tmp_path / "etc/ssh/sshd_config"
    config.parent.mkdir(parents=True)
    config.write_text(text)
    started = time.monotonic()
    with pytest.raises(UnjudgedError, match="Include"):
        values(config.read_text(), tmp_path)
    with pytest.raises(UnjudgedError, match="Include"):
        sshd_config_file.connection_criteria(tmp_path)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("no # nobody as root", ["no"]),
        ('"no"', ["no"]),
        ("'no'", ["no"]),
        ('ro""ot', ["root"]),
        ('"/etc/ssh/a b.conf" c', ["/etc/ssh/a b.conf", "c"]),
        ("/etc/ssh/a\\ b.conf", ["/etc/ssh/a b.conf"]),
        ('a\\"b \\\\ \\x', ['a"b', "\\", "\\x"]),
        ("\tmixed \t blanks\t", ["mixed", "blanks"]),
        ('"#not a comment" #comment', ["#not a comment"]),
        ("x#y", ["x#y"]),
    ],
)
def test_words_are_split_as_sshds_argv_split_splits_them(line: str, words: list[str]) -> None:
    assert sshd_config_file.split_words(line) == words


def test_a_quote_left_open_is_a_config_sshd_refuses() -> None:
    with pytest.raises(UnjudgedError, match="quote"):
        sshd_config_file.split_words('"no')


@pytest.mark.parametrize("include", ["Include /", "Include /.", "Include /**", "Include ../../.."])
def test_an_include_of_no_file_is_nothing(tmp_path: Path, include: str) -> None:
    """sshd accepts `Include /` (a directory) and reads ** as *: never a traceback, nor a walk
    of the whole file system."""
    (tmp_path / "etc/ssh").mkdir(parents=True)
    text = f"{include}\nPermitRootLogin no\nMatch Address 10.0.0.1\n"
    assert values(text, tmp_path)["permitrootlogin"] == "no"
    assert sshd_config_file.match_criteria(text, tmp_path) == {"address"}


@pytest.mark.parametrize(
    ("text", "login", "expected"),
    [
        # A later Match block for the user is not lost behind an earlier one for others.
        ("Match User admin\n X11Forwarding no\nMatch User root\n PermitRootLogin no\n", ROOT,
         {"permitrootlogin": "no"}),
        ("Match User root\n PermitRootLogin no\n", ADMIN, {}),
        # The block's value wins over the global one; the first block that applies wins.
        (("PermitRootLogin yes\nMatch User *\n PermitRootLogin no\nMatch all\n"
          " PermitRootLogin forced-commands-only\n"), ROOT, {"permitrootlogin": "no"}),
        ("Match User !root,*\n ForceCommand echo others\n", ROOT, {}),
        ("Match User !root,*\n ForceCommand echo others\n", ADMIN,
         {"forcecommand": "echo others"}),
        ("Match Group wheel\n AuthenticationMethods publickey,password\n", ADMIN,
         {"authenticationmethods": "publickey,password"}),
        ("Match Group wheel,!admin\n PubkeyAuthentication no\n", ADMIN, {}),
        ('Match User="root"\n  PermitRootLogin=no\n', ROOT, {"permitrootlogin": "no"}),
        # A block that needs the connection, but sets nothing that decides: no matter.
        ("Match Address 10.0.0.0/8\n PasswordAuthentication yes\n", ROOT, {}),
        ("Match User admin Address 10.0.0.0/8\n PermitRootLogin no\n", ROOT, {}),
        # AllowUsers lines add up; a block's list stands for the global one.
        ("AllowUsers root\nAllowUsers admin\n", ROOT, {"allowusers": "root admin"}),
        # A pattern of 1023 characters or more: sshd's match_pattern_list gives up (no match).
        (f"Match User {'x' * 1100},root\n PermitRootLogin yes\n", ROOT, {}),
    ],
)  # fmt: skip
def test_match_blocks_apply_to_the_user_as_in_sshd(
    tmp_path: Path, text: str, login: Login, expected: dict[str, str]
) -> None:
    assert values(text, tmp_path, login) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Match Address 10.0.0.0/8\n PermitRootLogin no\n",
        "Match User root LocalPort 2222\n ForceCommand echo port\n",
        "Match Invalid-User\n PermitRootLogin no\n",
        "Match User\n PermitRootLogin no\n",
        # An Include in a block that cannot be judged: its own blocks cannot be either.
        "Match Host bastion\n Include /etc/ssh/more.conf\n",
    ],
)
def test_a_block_that_cannot_be_judged_leaves_the_settings_unknown(
    tmp_path: Path, text: str
) -> None:
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/more.conf").write_text("Match User root\n PermitRootLogin no\n")
    with pytest.raises(UnjudgedError, match="no sshd could be asked"):
        values(text, tmp_path)


@pytest.mark.parametrize(
    ("text", "criteria"),
    [
        ("Match User admin Address 10.0.0.0/8,!10.1.0.0/16\n", {"user", "address"}),
        ("match all\n", {"all"}),
        (
            "Match LocalPort 2222\nMatch Group wheel RDomain vrf1\n",
            {"localport", "group", "rdomain"},
        ),
        ("# Match Address 10.0.0.0/8\nPermitRootLogin no\n", set()),
        # Forms sshd 9.2 honours (a reviewer's real-sshd runs).
        ("Match User = root Address 10.0.0.1\n", {"user", "address"}),
        ("Match=Address 10.0.0.1\n", {"address"}),
        ('Match "Address" 10.0.0.1\n', {"address"}),
        ('Match User "a b" Address 10.0.0.1\n', {"user", "address"}),
        ('Match User root,"x y" Address 10.0.0.1\n', {"user", "address"}),
        # A value is no criterion, whatever it holds.
        ("Match User deploy-host Group web-address\n", {"user", "group"}),
    ],
)
def test_the_match_criteria_sshd_config_tests(
    tmp_path: Path, text: str, criteria: set[str]
) -> None:
    assert sshd_config_file.match_criteria(text, tmp_path) == criteria


@pytest.mark.parametrize(
    "include",
    [
        "sshd_config.d/*.conf",
        '"/etc/ssh/sshd_config.d/10-host.conf"',
        "sshd_config.d/10\\-host.conf",
    ],
)
def test_match_criteria_in_included_files_count(tmp_path: Path, include: str) -> None:
    """However the Include is written: a quoted path once hid a Match Address from the
    launcher while the real sshd applied it (the keys travelled without from=)."""
    (tmp_path / "etc/ssh/sshd_config.d").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config.d/10-host.conf").write_text("Match Host bastion\n")
    (tmp_path / "etc/ssh/sshd_config").write_text(f"Include {include}\n")
    assert sshd_config_file.connection_criteria(tmp_path) == {"host"}


# Configs whose Match blocks test the user only; {inc} is an included file's path, holding
# INCLUDED. Each is read by the real sshd and by the fallback, for root and for admin.
REAL = [
    "PermitRootLogin yes\nMatch User root\n  PermitRootLogin no\n",
    "Match User admin\n ForceCommand echo a\nMatch User *\n ForceCommand echo all\n",
    "Match User !root,*\n AuthenticationMethods publickey,password\n",
    "Match Group root\n PubkeyAuthentication no\n",
    "Match All\n AuthorizedKeysFile /etc/ssh/keys/%u\n",
    'Match User="root"\n  PermitRootLogin=forced-commands-only\n',
    "StrictModes no\nMatch User a?min\n AllowTcpForwarding no\n PermitTTY no\n",
    "Include {inc}\nPermitRootLogin yes\nForceCommand echo global\n",
    "Match User nobody\n Include {inc}\nMatch User root\n ForceCommand echo root\n",
    "Match User root\n Include {inc}\n",
    "DenyUsers bob\nMatch User root\n  AuthenticationMethods publickey publickey,password\n",
    # Words as sshd splits them (a reviewer's findings): comments, quotes, escapes, NUL.
    "PermitRootLogin no # nobody as root\nPubkeyAuthentication no # keys off\n",
    'PermitRootLogin "no"\nDenyUsers "root"\n',
    "PermitRootLogin no\0 trailing\n",
    "AuthorizedKeysFile /k/%u # /k/%u.2 (retired)\n",
    "PubkeyAcceptedKeyTypes ssh-ed25519\n",
    'Include "{inc}"\n',
    "Include {inc_space}\n",
    "Match User root # ops\n  PermitRootLogin no\n",
    "PermitRootLogin=no\r\n",
    "PermitRootLogin no\nMatch User " + "x" * 1100 + ",root\n  PermitRootLogin yes\n",
]
INCLUDED = "ForceCommand echo included\nMatch User root\n PermitRootLogin no\n"


def deciding(settings: sshd_config.Settings) -> tuple[object, ...]:
    """What decides whose keys counted, of the settings (not sources or algorithm lists)."""
    return (
        settings.permit_root_login,
        settings.authorized_keys_files,
        settings.strict_modes,
        settings.force_command,
        settings.pubkey_authentication,
        settings.authentication_methods,
        settings.deny_users,
        settings.session_options,
        tuple(sshd_algorithms.accepted(settings, t) for t in ("ssh-rsa", "ssh-ed25519")),
    )


@pytest.mark.real
@pytest.mark.parametrize("config", REAL)
def test_the_fallback_reads_what_the_real_sshd_makes_of_it(tmp_path: Path, config: str) -> None:
    require(sshd.missing(), "the sshd_config fallback test")
    included = tmp_path / "included.conf"
    included.write_text(INCLUDED)
    (tmp_path / "with space.conf").write_text(INCLUDED)
    spaced = str(tmp_path / "with space.conf").replace(" ", "\\ ")
    path = tmp_path / "sshd_config"
    path.write_text(config.format(inc=included, inc_space=spaced))
    argv, env = sshd.command(tmp_path)
    for login in (Login("root", ("root",)), Login("admin")):
        with sshd.environment(env):
            real = sshd_config.from_sshd([*argv, "-f", str(path)], login.user)
        assert real is not None
        read = values(path.read_text(), Path("/"), login)
        fallback = sshd_config.from_values(read, "sshd_config")
        assert deciding(fallback) == deciding(real), login.user


@pytest.mark.parametrize(
    ("text", "nones"),
    [
        ("ForceCommand none\nRevokedKeys none\n", set()),  # global: unset, as sshd reads it
        # In a Match block: a file named none; but ForceCommand's and ChrootDirectory's
        # none sshd clears after the Match too (real sshd 9.2).
        ("Match User root\n  ForceCommand none\n  RevokedKeys NONE\n", {"revokedkeys"}),
        ("Match all\n  ChrootDirectory none # no chroot?\n", set()),
        ("AuthorizedPrincipalsCommand none\n", {"authorizedprincipalscommand"}),
        ("Match User x\n  AuthorizedPrincipalsFile none\n", {"authorizedprincipalsfile"}),
        ("Match User x\n  RevokedKeys none of this\n", set()),  # a list of its own
        ("Include /etc/ssh/more.conf\nRevokedKeys none\n", {"revokedkeys"}),
    ],
)  # fmt: skip
def test_a_none_that_sshd_does_not_read_as_unset(
    tmp_path: Path, text: str, nones: set[str]
) -> None:
    """sshd clears "none" only in the global values: in a Match block it names a file or a
    command (and AuthorizedPrincipalsCommand's anywhere); sshd -T prints "none" either way."""
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/more.conf").write_text("Match User root\n  RevokedKeys none\n")
    assert sshd_config_file.literal_nones(text, tmp_path) == nones
