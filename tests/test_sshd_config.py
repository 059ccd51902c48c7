"""The old sshd's settings as `sshd -T` prints them (nixos_images.kexec.sshd_config)."""

from __future__ import annotations

from nixos_images.kexec import (
    sshd_config,
)


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
