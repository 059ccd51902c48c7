"""The old sshd's settings as `sshd -T` prints them (nixos_images.kexec.sshd_config)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
