"""The old sshd's settings as `sshd -T` prints them (nixos_images.kexec.sshd_config)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from nixos_images.kexec import (
    sshd_algorithms,
    sshd_config,
    sshd_daemon,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_sshd_t_output_is_read_as_the_effective_settings() -> None:
    output = (
        "port 22\npermitrootlogin without-password\nstrictmodes no\n"
        "authorizedkeysfile .ssh/authorized_keys /etc/ssh/authorized_keys.d/%u\n"
        "authorizedkeyscommand none\n"
    )
    settings = sshd_config.from_values(sshd_config.parse_sshd_t(output), "sshd -T")
    assert settings.permit_root_login == "prohibit-password"  # without-password's new name
    assert settings.strict_modes is False
    assert settings.authorized_keys_files == (
        ".ssh/authorized_keys",
        "/etc/ssh/authorized_keys.d/%u",
    )
    assert settings.authorized_keys_command is None


@pytest.mark.parametrize(
    ("config", "user", "groups", "why"),
    [
        ("", "admin", ["admin"], None),
        ("pubkeyauthentication no", "root", ["root"], "PubkeyAuthentication no"),
        ("authenticationmethods publickey,password", "root", [], "asks for more than a key"),
        ("authenticationmethods publickey,password publickey", "root", [], None),
        ("denyusers bob\ndenyusers adm*", "admin", [], "DenyUsers adm*"),
        ("allowusers root", "admin", [], "does not name admin"),
        ("allowusers admin@10.0.0.0/8", "admin", [], "from some addresses only"),
        ("allowusers admin@10.0.0.0/8\nallowusers ad?in", "admin", [], None),
        ("denygroups wheel", "admin", ["admin", "wheel"], "DenyGroups wheel"),
        ("allowgroups sudo", "admin", ["admin", "users"], "names none of admin's groups"),
        ("allowgroups sudo", "admin", ["sudo"], None),
    ],
)
def test_whose_key_alone_opened_a_session(
    config: str, user: str, groups: list[str], why: str | None
) -> None:
    """sshd's refusals for a user (sshd -T's lines, as the launcher reads them)."""
    settings = sshd_config.from_values(sshd_config.parse_sshd_t(config), "sshd -T")
    got = sshd_config.refusal(settings, user, groups)
    assert (got is None) == (why is None), got
    assert why is None or why in (got or "")


def test_accepted_algorithms_are_signature_names_for_rsa_keys() -> None:
    line = "pubkeyacceptedalgorithms rsa-sha2-512,ssh-ed25519-cert-v01@openssh.com"
    settings = sshd_config.from_values(sshd_config.parse_sshd_t(line), "sshd -T")
    assert sshd_algorithms.accepted(settings, "ssh-rsa")
    assert sshd_algorithms.accepted(settings, "ssh-ed25519-cert-v01@openssh.com")
    assert not sshd_algorithms.accepted(settings, "ssh-ed25519")
    assert sshd_algorithms.accepted(sshd_config.Settings(), "ssh-ed25519")  # the defaults


def test_unknown_settings_leave_every_key_out() -> None:
    unknown = sshd_config.Settings(unknown="/usr/sbin/sshd -T failed")
    assert "unknown" in (sshd_config.refusal(unknown, "root", ["root"]) or "")


@pytest.mark.parametrize(
    ("values", "options"),
    [
        ({}, ()),
        ({"permittty": "no"}, ("no-pty",)),
        ({"allowtcpforwarding": "local"}, ("no-port-forwarding",)),
        ({"allowtcpforwarding": "no", "allowagentforwarding": "no"},
         ("no-port-forwarding", "no-agent-forwarding")),
        ({"disableforwarding": "yes", "allowtcpforwarding": "no"},
         ("no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding")),
        ({"permitopen": "any", "permitlisten": "any"}, ()),
        ({"permitopen": "db:5432 127.0.0.1:*"},
         ('permitopen="db:5432"', 'permitopen="127.0.0.1:*"')),
        ({"permitlisten": "localhost:8080"}, ('permitlisten="localhost:8080"',)),
        ({"permitopen": "none"}, ("no-port-forwarding",)),
        ({"permitopen": 'a"b:1'}, ("no-port-forwarding",)),
        ({"permituserrc": "no"}, ("no-user-rc",)),
        ({"allowstreamlocalforwarding": "local"}, ("no-port-forwarding",)),
        ({"allowstreamlocalforwarding": "all", "allowtcpforwarding": "yes"}, ()),
    ],
)  # fmt: skip
def test_session_restrictions_become_key_options(
    values: dict[str, str], options: tuple[str, ...]
) -> None:
    """What sshd_config took from a user's sessions travels with each key: the installer's
    sshd allows all of it."""
    assert sshd_config.from_values(values, "sshd -T").session_options == options


def test_an_sshd_that_cannot_answer_t_still_tells_its_version(tmp_path: Path) -> None:
    """-T fails (no host keys, say) and no daemon runs: the config file is read, and the
    binary's version still says in which order it checked files and CAs."""
    fake = tmp_path / "sshd"
    fake.write_text(
        '#!/bin/sh\n[ "$1" = -V ] && echo "OpenSSH_8.0p1, OpenSSL 1.1.1k" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text("TrustedUserCAKeys /etc/ssh/ca.pub\n")
    daemon = sshd_daemon.Daemon((str(fake),), running=False)
    settings = sshd_config.effective(tmp_path, "root", daemon)
    assert (settings.source, settings.version) == ("/etc/ssh/sshd_config", (8, 0))
    assert settings.trusted_user_ca_keys == "/etc/ssh/ca.pub"
    assert not settings.files_first


@pytest.mark.parametrize(
    ("values", "environment"),
    [
        ({}, False),
        ({"permituserenvironment": "no", "setenv": "none", "exposeauthinfo": "no"}, False),
        ({"permituserenvironment": "yes"}, True),
        ({"permituserenvironment": "LANG,LC_*"}, True),
        ({"setenv": "ONLY=/srv/backup"}, True),
        ({"exposeauthinfo": "yes"}, True),
    ],
)
def test_a_session_environment_the_installer_lacks_is_noticed(
    values: dict[str, str], *, environment: bool
) -> None:
    """A forced command may have relied on it: such lines stay out (key_policy)."""
    assert sshd_config.from_values(values, "sshd -T").session_environment is environment


@pytest.mark.parametrize(
    ("written", "rsa", "ed25519_cert"),
    [
        ("-ssh-rsa*,rsa-sha2-*", False, True),
        ("-*-cert-v01@openssh.com", True, False),
        ("^ssh-ed25519", True, True),
        ("+ssh-dss", True, True),
        ("ssh-ed25519", False, False),
    ],
)
def test_an_edited_algorithm_list_is_the_defaults_edited(
    written: str, *, rsa: bool, ed25519_cert: bool
) -> None:
    """sshd_config's -, ^ and + edit OpenSSH's defaults (read without sshd: -ssh-rsa* once
    counted as the defaults, and RSA keys travelled)."""
    settings = sshd_config.from_values({"pubkeyacceptedalgorithms": written}, "sshd_config")
    assert sshd_algorithms.accepted(settings, "ssh-rsa") is rsa
    assert sshd_algorithms.accepted(settings, "ssh-ed25519-cert-v01@openssh.com") is ed25519_cert
