"""The old host's DNS as kexec/run collects it (nixos_images.kexec.network)."""

from __future__ import annotations

from nixos_images.kexec.network import dns_servers


def test_dns_servers_are_the_upstream_ones_behind_resolved_stub() -> None:
    assert dns_servers("nameserver 127.0.0.53\n", "nameserver 9.9.9.9\n") == ["9.9.9.9"]
    assert dns_servers("nameserver 1.1.1.1\nnameserver 127.0.0.53\n", None) == ["1.1.1.1"]
    assert dns_servers("# nothing\n", "nameserver 9.9.9.9\n") == []


def test_a_nameserver_glibc_ignores_is_ignored() -> None:
    assert dns_servers("nameserver not-an-ip\nnameserver 9.9.9.9\n", None) == ["9.9.9.9"]
