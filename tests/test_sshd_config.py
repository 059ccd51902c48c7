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


def _process(proc: Path, pid: int, ppid: int, environ: bytes) -> None:
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "status").write_text(f"Name:\tx\nPPid:\t{ppid}\n")
    (proc / str(pid) / "environ").write_bytes(environ)


def test_the_connection_is_the_one_kexec_run_came_through(tmp_path: Path) -> None:
    """kexec/run (env -i) under sudo (env reset) under the login shell sshd started, which
    has SSH_CONNECTION: the nearest ancestor's, as sshd -T's addr, laddr and lport."""
    proc = tmp_path / "proc"
    _process(proc, 300, 1, b"SSH_CONNECTION=203.0.113.9 51000 192.0.2.10 2222\0HOME=/root\0")
    _process(proc, 400, 300, b"SUDO_USER=admin\0")
    _process(proc, 500, 400, b"PATH=/bin\0")
    conn = sshd_config.connection(proc, 500)
    assert conn == sshd_config.Connection("203.0.113.9", "192.0.2.10", "2222")
    assert conn.spec("root") == (
        "user=root,host=203.0.113.9,addr=203.0.113.9,laddr=192.0.2.10,lport=2222"
    )
    # No ssh connection (a console), or a hostile value: a login from 127.0.0.1 to port 22.
    assert sshd_config.connection(proc, 300 + 1000) == sshd_config.Connection()
    _process(proc, 600, 1, b"SSH_CONNECTION=1.2.3.4,user=x 1 5.6.7.8 22\0")
    assert sshd_config.connection(proc, 600) == sshd_config.Connection()
