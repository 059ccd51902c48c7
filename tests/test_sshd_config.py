"""The old sshd's settings as `sshd -T` prints them (nixos_images.kexec.sshd_config)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from nixos_images.kexec import (
    sshd_config,
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
    assert settings.permit_root_login == "without-password"
    assert settings.strict_modes is False
    assert settings.authorized_keys_files == (
        ".ssh/authorized_keys",
        "/etc/ssh/authorized_keys.d/%u",
    )
    assert settings.authorized_keys_command is None


def test_an_sshd_config_that_includes_itself_is_read_once_deep_enough(tmp_path: Path) -> None:
    """No RecursionError: Include nests 16 deep at most, as in OpenSSH."""
    config = tmp_path / "etc/ssh/sshd_config"
    config.parent.mkdir(parents=True)
    config.write_text("Include /etc/ssh/sshd_config\nPermitRootLogin prohibit-password\n")
    values = sshd_config.parse_config(config.read_text(), tmp_path)
    assert values["permitrootlogin"] == "prohibit-password"


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
    assert sshd_config.accepted(settings, "ssh-rsa")
    assert sshd_config.accepted(settings, "ssh-ed25519-cert-v01@openssh.com")
    assert not sshd_config.accepted(settings, "ssh-ed25519")
    assert sshd_config.accepted(sshd_config.Settings(), "ssh-ed25519")  # the defaults


def test_unknown_settings_leave_every_key_out() -> None:
    unknown = sshd_config.Settings(unknown="/usr/sbin/sshd -T failed")
    assert "unknown" in (sshd_config.refusal(unknown, "root", ["root"]) or "")


@pytest.mark.parametrize("include", ["Include /", "Include /.", "Include /**", "Include ../../.."])
def test_an_include_of_no_file_is_nothing(tmp_path: Path, include: str) -> None:
    """sshd accepts `Include /` (a directory) and reads ** as *: never a traceback, nor a walk
    of the whole file system."""
    (tmp_path / "etc/ssh").mkdir(parents=True)
    text = f"{include}\nPermitRootLogin no\nMatch Address 10.0.0.1\n"
    assert sshd_config.parse_config(text, tmp_path)["permitrootlogin"] == "no"
    assert sshd_config.match_criteria(text, tmp_path) == {"address"}


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
    ],
)  # fmt: skip
def test_session_restrictions_become_key_options(
    values: dict[str, str], options: tuple[str, ...]
) -> None:
    """What sshd_config took from a user's sessions travels with each key: the installer's
    sshd allows all of it."""
    assert sshd_config.from_values(values, "sshd -T").session_options == options
