"""RevokedKeys (nixos_images.kexec.revoked): a KRL judged by the host's real ssh-keygen -Q,
key by key, in batches; a list it cannot read keeps every key out."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from conftest import require
from nixos_images.kexec import revoked

if TYPE_CHECKING:
    from pathlib import Path


def keygen(path: Path) -> tuple[str, str]:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    key_type, blob = path.with_suffix(".pub").read_text().split()[:2]
    return key_type, blob


@pytest.fixture
def keys(tmp_path: Path) -> list[tuple[str, str]]:
    require([] if shutil.which("ssh-keygen") else ["ssh-keygen"], "the KRL tests")
    return [keygen(tmp_path / f"k{i}") for i in range(3)]


def test_a_krl_revokes_what_ssh_keygen_says_across_batches(
    tmp_path: Path, keys: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three batches of one key: each key judged where it is."""
    monkeypatch.setattr(revoked, "BATCH", 1)
    krl = tmp_path / "krl"
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(krl), str(tmp_path / "k1.pub")], check=True)
    assert revoked.revoked_keys(str(krl), tmp_path, keys) == frozenset({keys[1]})
    monkeypatch.setattr(revoked, "BATCH", 100)
    assert revoked.revoked_keys(str(krl), tmp_path, keys) == frozenset({keys[1]})
    assert revoked.is_krl(str(krl), tmp_path)


def test_a_krl_ssh_keygen_cannot_read_keeps_every_key_out(
    tmp_path: Path, keys: list[tuple[str, str]]
) -> None:
    (tmp_path / "krl").write_bytes(b"SSHKRL\n\0\1not a list")
    why = revoked.revoked_keys(str(tmp_path / "krl"), tmp_path, keys)
    assert isinstance(why, str)
    assert why.startswith("a key revocation list that ssh-keygen could not read")


def test_a_key_ssh_keygen_cannot_load_is_out_and_no_other(
    tmp_path: Path, keys: list[tuple[str, str]]
) -> None:
    """A key type ssh-keygen does not load (here: a blob that is no key) ends its run: that
    key alone counts as revoked, the others are judged."""
    krl = tmp_path / "krl"
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(krl), str(tmp_path / "k2.pub")], check=True)
    broken = ("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5")
    got = revoked.revoked_keys(str(krl), tmp_path, [broken, *keys])
    assert got == frozenset({broken, keys[2]})


@pytest.mark.parametrize("line", ["no-pty {key}", "{key_type}-cert-v01@openssh.com {blob}"])
def test_a_list_line_sshd_reads_otherwise_keeps_every_key_out(
    tmp_path: Path, keys: list[tuple[str, str]], line: str
) -> None:
    """sshd's sshkey_in_file stops at a line with options (refusing every key) and matches a
    certificate by the key inside it, which this does not decode: every key stays out."""
    key_type, blob = keys[0]
    text = line.format(key=f"{key_type} {blob}", key_type=key_type, blob=blob)
    (tmp_path / "revoked").write_text(f"{text}\n")
    why = revoked.revoked_keys(str(tmp_path / "revoked"), tmp_path, keys)
    assert isinstance(why, str)
