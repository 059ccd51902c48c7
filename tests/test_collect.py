"""What kexec/run carries over from the old host (nixos_images.kexec.collect): whose key files
the old sshd read, read safely, and the host's other files.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import recorded
from conftest import require
from fakehost import ECDSA, ED25519, FAKE_IP, fake_root, plan, without_keys
from nixos_images import fsutil, networkd
from nixos_images.kexec import (
    accounts,
    collect,
    key_files,
    network,
    sshd_config,
    sshd_daemon,
)
from nixos_images.state import read_network_dir

if TYPE_CHECKING:
    from collections.abc import Sequence


@pytest.mark.parametrize("kind", ["fifo", "symlink to a secret", "symlink to /dev/zero", "huge"])
def test_a_hostile_key_file_is_left_out_with_a_reason(tmp_path: Path, kind: str) -> None:
    """The sudo user controls their ~/.ssh: a FIFO must not hang the launcher, a link must
    not make root read (and report) a root-only file, a huge file must not eat the RAM."""
    root = fake_root(tmp_path)
    keys = root / "home/admin/.ssh/authorized_keys2"
    keys.unlink()
    secret = root / "etc/shadow"
    secret.write_text(f"root:{ED25519}:19000::::::\n")
    secret.chmod(0o600)
    if kind == "fifo":
        os.mkfifo(keys)
    elif kind == "symlink to a secret":
        keys.symlink_to(secret)
    elif kind == "symlink to /dev/zero":
        keys.symlink_to("/dev/zero")
    else:
        with keys.open("wb") as f:
            f.truncate(64 << 30)  # sparse: 64 GiB that take no disk
    started = time.monotonic()
    out = collect.collect_keys(root, {"SUDO_USER": "admin"})
    assert time.monotonic() - started < 5
    assert [k.line() for k in out.keys] == [f'command="echo no" {ED25519} root']
    (note,) = [n for n in out.notes if "authorized_keys2" in n]
    reason = {"fifo": "not a regular file", "huge": "larger than 1048576 bytes"}
    assert note.endswith(f"left out ({reason.get(kind, 'a symbolic link')})")
    assert "19000" not in repr(out)


def test_a_key_file_that_is_not_utf8_is_read_with_replacement(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "home/admin/.ssh/authorized_keys2").write_bytes(
        f"# caf\xe9 in Latin-1\n{ECDSA} admin\n".encode("latin-1")
    )
    out = collect.collect_keys(root, {"SUDO_USER": "admin"})
    assert f"{ECDSA} admin" in [k.line() for k in out.keys]


def collected_keys(root: Path) -> tuple[list[str], list[str]]:
    out = collect.collect_keys(root, {"SUDO_USER": "admin"})
    return [k.line() for k in out.keys], list(out.notes)


def test_permit_root_login_no_leaves_roots_keys_out(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text("# Debian\nPermitRootLogin no\n")
    keys, notes = collected_keys(root)
    assert keys == [f"{ECDSA} admin"]
    assert "PermitRootLogin no (/etc/ssh/sshd_config): root's keys are left out" in notes


def test_sshds_refusals_leave_a_users_keys_out_and_force_command_travels(tmp_path: Path) -> None:
    """DenyUsers refused the sudo user's logins: their key does not become root's. The
    ForceCommand that ran for every key login runs for the carried keys too."""
    root = fake_root(tmp_path)
    config = root / "etc/ssh/sshd_config"
    config.write_text("StrictModes no\nDenyUsers admin\nForceCommand /usr/bin/backup\n")
    keys, notes = collected_keys(root)
    assert keys == [f'command="/usr/bin/backup" {ED25519} root']
    assert "DenyUsers admin (/etc/ssh/sshd_config): admin's keys are left out" in notes
    # A command that command= cannot hold as it is: fail closed, say so.
    config.write_text("StrictModes no\nForceCommand echo \\\n")
    keys, notes = collected_keys(root)
    assert keys == []
    assert any("cannot be written as command=" in n for n in notes)


def test_revoked_keys_stay_out_and_an_unreadable_list_keeps_every_key_out(tmp_path: Path) -> None:
    """sshd refuses a listed key, and every key when it cannot read the list (auth.c)."""
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text("StrictModes no\nRevokedKeys /etc/ssh/revoked\n")
    keys, notes = collected_keys(root)
    assert keys == []
    assert any("RevokedKeys /etc/ssh/revoked" in n for n in notes)
    (root / "etc/ssh/revoked").write_text(f"{ED25519} stolen laptop\n")
    keys, _ = collected_keys(root)
    assert keys == [f"{ECDSA} admin"]
    (root / "etc/ssh/revoked").write_bytes(b"SSHKRL\n\0\1binary")
    keys, notes = collected_keys(root)
    assert keys == []
    assert any("key revocation list" in n for n in notes)


def test_forced_commands_only_carries_only_roots_forced_command_keys(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text(
        "PermitRootLogin forced-commands-only\nStrictModes no\n"
    )
    (root / "root/.ssh/authorized_keys2").write_text(f"{ECDSA} plain-root\n")
    keys, _ = collected_keys(root)
    assert keys == [f"{ECDSA} admin", f'command="echo no" {ED25519} root']


def test_only_the_files_authorized_keys_file_names_count(tmp_path: Path) -> None:
    """RHEL's sshd_config names .ssh/authorized_keys alone: authorized_keys2 never counted,
    but for a user whose Match block names it (read without sshd, as sshd applies it)."""
    root = fake_root(tmp_path)
    config = "Include /etc/ssh/sshd_config.d/*.conf\nAuthorizedKeysFile .ssh/authorized_keys\n"
    (root / "etc/ssh/sshd_config").write_text(config)
    (root / "etc/ssh/sshd_config.d").mkdir()
    (root / "etc/ssh/sshd_config.d/50-site.conf").write_text("StrictModes no\n")
    keys, _ = collected_keys(root)
    assert keys == [f'command="echo no" {ED25519} root']  # admin's key is in authorized_keys2
    matched = "Match User admin\n  AuthorizedKeysFile .ssh/authorized_keys2\n"
    (root / "etc/ssh/sshd_config").write_text(config + matched)
    keys, _ = collected_keys(root)
    assert keys == [f"{ECDSA} admin", f'command="echo no" {ED25519} root']


def test_every_token_sshd_expands_in_authorized_keys_file(tmp_path: Path) -> None:
    """%U is the uid (keys kept per uid, e.g. /etc/ssh/keys/0), %% a percent sign; %h and %u
    as before; expanded in one pass, so a home holding "%u" stays as it is."""
    root = fake_root(tmp_path)
    (root / "etc/ssh/keys").mkdir()
    (root / "etc/ssh/keys/0%").write_text(f"{ED25519} root-by-uid\n")
    (root / "etc/ssh/sshd_config").write_text(
        "AuthorizedKeysFile /etc/ssh/keys/%U%%\nStrictModes no\n"
    )
    keys, _ = collected_keys(root)
    assert f"{ED25519} root-by-uid" in keys
    assert key_files.expand("%h/%u", "u", 7, root / "home/%u", root) == root / "home/%u/u"
    assert key_files.expand("/k/%U.%%", "u", 1000, root / "h", root) == root / "k/1000.%"
    assert key_files.expand("keys-%u", "u", 1000, root / "h", root) == root / "h/keys-u"


@pytest.mark.parametrize("pattern", [".ssh/%Q", ".ssh/keys%", "%d/keys"])
def test_a_token_sshd_cannot_expand_ends_the_search_there(tmp_path: Path, pattern: str) -> None:
    """sshd reads the files in order and dies on an unknown token (percent_expand): the files
    before it count, none after (test_sshd.py shows the real sshd doing so)."""
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text(
        f"StrictModes no\nAuthorizedKeysFile .ssh/authorized_keys {pattern} .ssh/authorized_keys2\n"
    )
    keys, notes = collected_keys(root)
    assert keys == [f'command="echo no" {ED25519} root']  # admin's is in authorized_keys2
    assert sum(f"AuthorizedKeysFile {pattern} has a %-token" in n for n in notes) == 2


def test_each_user_is_read_with_the_settings_sshd_gave_that_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Match User block gave admin /etc/ssh/keys/%u: that file counts for admin alone."""
    root = fake_root(tmp_path)
    (root / "etc/ssh/keys").mkdir()
    (root / "etc/ssh/keys/admin").write_text(f"{ECDSA} from-match\n")
    (root / "etc/ssh/keys/root").write_text(f"{ED25519} never-read\n")
    plain = sshd_config.Settings(strict_modes=False, source="sshd -T")
    matched = sshd_config.Settings(
        authorized_keys_files=("/etc/ssh/keys/%u",), strict_modes=False, source="sshd -T"
    )
    asked: list[str] = []

    def effective(
        _: Path,
        user: str = "root",
        _daemon: sshd_daemon.Daemon | None = None,
        _groups: Sequence[str] = (),
    ) -> sshd_config.Settings:
        asked.append(user)
        return matched if user == "admin" else plain

    monkeypatch.setattr(sshd_config, "effective", effective)
    keys, _ = collected_keys(root)
    assert asked == ["root", "admin"]
    assert keys == [f"{ECDSA} from-match", f'command="echo no" {ED25519} root']


def test_strict_modes_leaves_out_what_sshd_would_not_read(tmp_path: Path) -> None:
    require([] if os.geteuid() == 0 else ["root"], "the StrictModes check (files of root)")
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text("# StrictModes yes: OpenSSH's default\n")
    (root / "home/admin/.ssh").chmod(0o777)
    keys, notes = collected_keys(root)
    assert keys == [f'command="echo no" {ED25519} root']
    assert any("StrictModes: " in n and "writable by group or others" in n for n in notes)
    (root / "etc/ssh/sshd_config").write_text("StrictModes no\n")
    assert collected_keys(root)[0] == [f"{ECDSA} admin", f'command="echo no" {ED25519} root']


def test_strict_modes_judges_a_linked_ssh_directory_by_what_it_points_to(tmp_path: Path) -> None:
    """A ~/.ssh that is a symbolic link (its own mode is always 0777) is judged as sshd judges
    it, by the real directory: the sudo user's keys are not refused for the link."""
    require([] if os.geteuid() == 0 else ["root"], "the StrictModes check (files of root)")
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text("StrictModes yes\n")
    home = root / "home/admin"
    (home / ".ssh").rename(home / "dotfiles-ssh")
    (home / ".ssh").symlink_to("dotfiles-ssh")
    keys, notes = collected_keys(root)
    assert f"{ECDSA} admin" in keys, notes
    (home / "dotfiles-ssh").chmod(0o777)  # the real directory is what counts
    keys, notes = collected_keys(root)
    assert f"{ECDSA} admin" not in keys
    assert any("dotfiles-ssh is writable by group or others" in n for n in notes)


def test_an_authorized_keys_command_is_named_when_no_key_is_left(
    setup: tuple[Path, Path, Path],
) -> None:
    """EC2 Instance Connect, OS Login: the old sshd asked a program; the installer cannot."""
    tb, root, _ = setup
    without_keys(root)
    (root / "etc/ssh/sshd_config").write_text(
        "AuthorizedKeysCommand /opt/aws/bin/eic_run_authorized_keys %u %f\n"
    )
    keys = {c.name: c for c in plan(tb, root).checks}["keys"]
    assert not keys.ok
    assert "your logins came from /opt/aws/bin/eic_run_authorized_keys %u %f" in keys.detail


def test_a_latin1_resolv_conf_and_passwd_are_read_not_refused(
    setup: tuple[Path, Path, Path],
) -> None:
    tb, root, _ = setup
    (root / "etc/resolv.conf").write_bytes(b"# r\xe9seau du bureau\nnameserver 127.0.0.53\n")
    passwd = (root / "etc/passwd").read_bytes()
    (root / "etc/passwd").write_bytes(passwd + b"j\xf6rg:x:1001:1001:J\xf6rg:/home/j:/bin/sh\n")
    p = plan(tb, root)
    assert p.ok, p.checks
    assert p.state is not None
    assert p.state.files["network/dns"][0] == b"192.0.2.53\n"


def test_a_network_dump_that_does_not_restore_names_the_dump_not_a_temp_path(
    setup: tuple[Path, Path, Path],
) -> None:
    tb, root, _ = setup
    broken = FAKE_IP.replace(
        '"--json -details link") cat',
        '"--json -details link") echo \'[{"ifindex": "x"}]\'; true ||',
    )
    (tb / "bin/ip").write_text(broken)
    state = {c.name: c for c in plan(tb, root).checks}["state"]
    assert not state.ok
    assert state.detail == (
        "cannot read the host's state: the network as the tarball's ip shows it:"
        " links.json: item 0: 'ifindex' must be an integer"
    )
    assert "/tmp" not in state.detail


def test_a_machine_id_that_is_not_utf8_is_not_carried_and_no_traceback(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "etc/machine-id").write_bytes(b"\xff" * 32 + b"\n")
    assert collect.collect_machine_id(root) is None


def test_only_the_nics_the_restored_network_uses_are_checked_for_drivers() -> None:
    """A NIC with nothing on it (down, or a spare port) cannot cut the installer off: its
    driver is not asked about, so an exotic spare card does not refuse the kexec."""
    state = read_network_dir(recorded.SOURCE)
    nic = next(link for link in state.links if link.name == "eth-up")
    idle = dataclasses.replace(nic, index=999, name="eth-idle", mac="02:00:00:00:09:09")
    state = dataclasses.replace(state, links=(*state.links, idle))
    net = network.Collected({}, state, networkd.plan(state))
    used = collect._used_nics(net)  # noqa: SLF001 - the rule itself
    assert "eth-idle" not in used
    assert {"eth-up", "eth-static", "eth-dhcp"} <= set(used)


def test_the_sudo_users_files_are_read_as_that_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the live system each user's files are read by a child that became the user
    (accounts.identity, fsutil.read_as): here admin is made nobody, who cannot enter the
    test's root-only directory, so admin's file is left out as sshd would have left it."""
    require([] if os.geteuid() == 0 else ["root"], "reading as another user")
    root = fake_root(tmp_path)
    nobody = fsutil.Identity(65534, 65534, (65534,))

    def identity(user: str, _known: object, _root: Path) -> fsutil.Identity | None:
        return nobody if user == "admin" else None

    monkeypatch.setattr(accounts, "identity", identity)
    keys, notes = collected_keys(root)
    assert keys == [f'command="echo no" {ED25519} root']
    assert "/home/admin/.ssh/authorized_keys2: left out (Permission denied)" in notes


def test_whom_a_users_files_are_read_as(tmp_path: Path) -> None:
    known = accounts.Account(uid=1000, home=tmp_path, groups=("users",), gid=100)
    assert accounts.identity("nosuchuser", known, tmp_path) is None  # not the live system
    live = accounts.identity("nosuchuser", known, Path("/"))
    if os.geteuid() == 0:
        assert live is not None
        assert (live.uid, live.gid) == (1000, 100)
        assert 100 in live.groups
    else:
        assert live is None  # not root: read as this process, which is no one else
    root_account = accounts.Account(uid=0, home=tmp_path, groups=("root",))
    assert accounts.identity("root", root_account, Path("/")) is None


def test_a_grant_that_depends_on_the_connection_needs_the_connection(tmp_path: Path) -> None:
    """Match Address blocks and no ssh connection to go by (kexec/run run at a console): what
    the old sshd granted is unknown, so nothing is carried, and the report says why."""
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text(
        "StrictModes no\nMatch Address 10.0.0.0/8\n  PermitRootLogin no\n"
    )
    keys, notes = collected_keys(root)
    assert keys == []
    assert notes[0].startswith(
        "sshd_config's Match blocks test address, and kexec/run did not come over ssh"
    )


def test_a_key_with_its_own_from_is_not_narrowed_but_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text(
        "StrictModes no\nMatch Host *.example.org\n  X11Forwarding no\n"
    )
    (root / "root/.ssh/authorized_keys").write_text(f'from="10.0.0.0/8" {ED25519} root\n')
    came = sshd_daemon.Connection("192.0.2.7", "192.0.2.10", "22", known=True)
    monkeypatch.setattr(sshd_daemon, "find_daemon", lambda _root: sshd_daemon.Daemon(conn=came))
    out = collect.collect_keys(root, {"SUDO_USER": "admin"})
    assert [k.line() for k in out.keys] == [f'from="192.0.2.7" {ECDSA} admin']
    (skipped,) = out.skipped
    assert skipped.reason == (
        "its own from= and sshd_config's Match on the address cannot be carried together"
    )


@pytest.mark.parametrize("use_dns", ["yes", "no"])
def test_match_host_under_use_dns_matched_a_name_nobody_knows_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_dns: str
) -> None:
    """With UseDNS yes, Match Host compared the client's DNS name (sshd -T is asked with its
    address): what it granted is unknown, and no key is carried; with UseDNS no it compared
    the address, and the keys travel for that address."""
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text(
        f"StrictModes no\nUseDNS {use_dns}\nMatch Host *.example.org\n  X11Forwarding no\n"
    )
    came = sshd_daemon.Connection("192.0.2.7", "192.0.2.10", "22", known=True)
    monkeypatch.setattr(sshd_daemon, "find_daemon", lambda _root: sshd_daemon.Daemon(conn=came))
    out = collect.collect_keys(root, {})
    if use_dns == "yes":
        assert out.keys == ()
        assert "Match Host with UseDNS yes (/etc/ssh/sshd_config)" in out.notes[0]
    else:
        assert [k.line() for k in out.keys] == [
            f'command="echo no",from="192.0.2.7" {ED25519} root'
        ]


@pytest.mark.parametrize(
    ("config", "note"),
    [
        # sshd -T skips a Match RDomain block unless told the routing domain, which
        # kexec/run's connection does not say.
        ("Match RDomain vrf-mgmt\n  PermitRootLogin no\n", "Match blocks test RDomain"),
        # sshd -T prints AuthorizedKeysFile's paths joined by blanks: one path with a blank
        # in it reads as two, one of them a file sshd never read.
        ('AuthorizedKeysFile "/etc/ssh/keys dir/%u"\n', "names a path with a blank"),
        ("AuthorizedKeysFile /k\\ d/%u\n", "names a path with a blank"),
        # RevokedKeys none in a Match block: sshd read a file named none, refusing every key.
        ("Match User root\n  RevokedKeys none\n", "sets RevokedKeys none in a Match block"),
    ],
)
def test_a_config_whose_grant_cannot_be_told_leaves_every_key_out(
    tmp_path: Path, config: str, note: str
) -> None:
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text(f"StrictModes no\n{config}")
    keys, notes = collected_keys(root)
    assert keys == []
    assert note in notes[0]


def test_a_second_uid_0_account_is_root_to_permit_root_login(tmp_path: Path) -> None:
    """sshd judges root by uid: toor (uid 0) under PermitRootLogin no gets nothing in."""
    root = fake_root(tmp_path)
    with (root / "etc/passwd").open("a") as f:
        f.write("toor:x:0:0::/home/toor:/bin/sh\n")
    (root / "home/toor/.ssh").mkdir(parents=True)
    (root / "home/toor/.ssh/authorized_keys").write_text(f"{ECDSA} toor\n")
    (root / "etc/ssh/sshd_config").write_text("PermitRootLogin no\nStrictModes no\n")
    out = collect.collect_keys(root, {"SUDO_USER": "toor"})
    assert out.keys == ()
    assert "PermitRootLogin no (/etc/ssh/sshd_config): toor's keys are left out" in out.notes


def test_authorized_keys_file_none_reads_nothing(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "root/none").write_text(f"{ECDSA} not-a-keys-file\n")
    (root / "etc/ssh/sshd_config").write_text("StrictModes no\nAuthorizedKeysFile none\n")
    keys, _ = collected_keys(root)
    assert keys == []


def test_session_restrictions_and_a_chroot_are_carried_or_refused(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text("StrictModes no\nPermitTTY no\n")
    keys, _ = collected_keys(root)
    assert keys == [f"no-pty {ECDSA} admin", f'command="echo no",no-pty {ED25519} root']
    (root / "etc/ssh/sshd_config").write_text("StrictModes no\nChrootDirectory /srv/%u\n")
    keys, notes = collected_keys(root)
    assert keys == []
    assert any("ChrootDirectory /srv/%u kept its sessions in a chroot" in n for n in notes)


@pytest.mark.parametrize("files_first", [True, False])
def test_trusted_cas_stand_where_that_openssh_checked_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, files_first: bool
) -> None:
    """OpenSSH 8.1 and later read the files before TrustedUserCAKeys, 8.0 and older after:
    the first line that takes a certificate decides, so the order travels."""
    root = fake_root(tmp_path)
    (root / "etc/ssh/ca.pub").write_text(f"{ED25519} ca\n")
    filed = f'cert-authority,principals="root",command="echo file" {ED25519} ca'
    (root / "root/.ssh/authorized_keys").write_text(f"{filed}\n")
    settings = sshd_config.Settings(
        strict_modes=False,
        trusted_user_ca_keys="/etc/ssh/ca.pub",
        version=(9, 2) if files_first else (8, 0),
    )
    monkeypatch.setattr(sshd_config, "effective", lambda *_: settings)
    keys = [k.line() for k in collect.collect_keys(root, {}).keys]
    trusted = f'cert-authority,principals="root" {ED25519}'
    assert keys == ([filed, trusted] if files_first else [trusted, filed])


def test_openssh_8_0_asked_the_keys_command_before_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's answer (unknown here) came first and may have restricted a key that the
    files hold plainly: the user's keys stay out, and the report says why."""
    root = fake_root(tmp_path)
    settings = sshd_config.Settings(
        strict_modes=False, authorized_keys_command="/usr/bin/ec2-keys", version=(8, 0)
    )
    monkeypatch.setattr(sshd_config, "effective", lambda *_: settings)
    carried = collect.collect_keys(root, {})
    assert carried.keys == ()
    assert any("came before the files (OpenSSH before 8.1" in n for n in carried.notes)


def test_the_sshd_version_is_read_from_its_banner(tmp_path: Path) -> None:
    """`sshd -V` (9.x), or the usage message older ones print on the unknown option."""
    for banner, expected in (
        ("OpenSSH_9.2, OpenSSL 3.0.19 27 Jan 2026", (9, 2)),
        ("unknown option -- V\nOpenSSH_8.0p1, OpenSSL 1.1.1k  FIPS 25 Mar 2021\nusage:", (8, 0)),
        ("dropbear v2022.83", None),
    ):
        fake = tmp_path / "sshd"
        fake.write_text(f"#!/bin/sh\nprintf '%s\\n' '{banner}' >&2\nexit 1\n")
        fake.chmod(0o755)
        assert sshd_config.version([str(fake)]) == expected


def test_a_file_sshd_read_but_the_launcher_does_not_ends_the_users_files(tmp_path: Path) -> None:
    """sshd follows a symbolic link (and reads any size): what the linked file held decided
    before root's later files, so those cannot stand in for it."""
    root = fake_root(tmp_path)
    for name in ("k1", "k2"):
        (root / "etc/ssh" / name).mkdir()
    (root / "etc/ssh/forced").write_text(f'command="echo forced" {ED25519} root\n')
    (root / "etc/ssh/k1/root").symlink_to(root / "etc/ssh/forced")
    (root / "etc/ssh/k2/root").write_text(f"{ED25519} root\n")
    (root / "etc/ssh/sshd_config").write_text(
        "StrictModes no\nAuthorizedKeysFile /etc/ssh/k1/%u /etc/ssh/k2/%u\n"
    )
    carried = collect.collect_keys(root, {})
    assert carried.keys == ()
    assert "root's later key files are left out too" in carried.notes


def test_two_different_callers_count_as_none(tmp_path: Path) -> None:
    """SUDO_USER and DOAS_USER naming different users: which one ran kexec/run is unknown."""
    root = fake_root(tmp_path)
    carried = collect.collect_keys(root, {"SUDO_USER": "admin", "DOAS_USER": "deploy"})
    assert [k.line() for k in carried.keys] == [f'command="echo no" {ED25519} root']
    assert any("both SUDO_USER and DOAS_USER" in n for n in carried.notes)
    same = collect.collect_keys(root, {"SUDO_USER": "admin", "DOAS_USER": "admin"})
    assert f"{ECDSA} admin" in [k.line() for k in same.keys]
