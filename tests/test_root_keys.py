"""root-keys: the ssh.authorized_keys.root credential added to root's keys
(nixos_images.root_keys); the key then logs in to a real sshd."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

import sshd
from conftest import require, run_cli
from fakehost import ECDSA, ED25519
from nixos_images import root_keys

if TYPE_CHECKING:
    from pathlib import Path


def test_given_keys_are_added_once_and_a_line_sshd_would_refuse_is_named() -> None:
    existing = f"{ED25519} from-the-old-host"  # no newline at its end
    given = f"{ED25519} again\n\n# a comment\nno-such-option {ECDSA}\n{ECDSA} laptop\n"
    text, problems = root_keys.merged(existing, given)
    # The given key without options first: sshd takes the first line with a key.
    assert text == f"{ECDSA} laptop\n{ED25519} from-the-old-host\n"
    refused = "option 'no-such-option' is not one sshd accepts"
    assert problems == [f"ssh.authorized_keys.root, line 4: left out ({refused})"]


def test_a_given_unrestricted_key_is_not_shadowed_by_a_restricted_line_already_there() -> None:
    existing = f'command="true" {ED25519} old\n'
    text, _ = root_keys.merged(existing, f"{ED25519} given\nrestrict {ECDSA} r\n")
    assert text == f'{ED25519} given\ncommand="true" {ED25519} old\nrestrict {ECDSA} r\n'


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, credential: str | None) -> Path:
    creds = tmp_path / "credentials"
    creds.mkdir()
    if credential is not None:
        (creds / root_keys.CREDENTIAL).write_text(credential)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    keys = tmp_path / "root/.ssh/authorized_keys"
    assert run_cli(root_keys.main, ["root-keys", "--authorized-keys", str(keys)]) == 0
    return keys


def test_no_credential_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not run(tmp_path, monkeypatch, None).exists()
    assert not (tmp_path / "root").exists()


def test_a_hostile_credential_is_one_line_a_key_and_never_a_second_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A comment with a line break only other readers see, a control character in the key:
    the file stays one key a line, and what is left out is said on stderr."""
    credential = f"{ED25519} a\u2028{ECDSA} smuggled\n{ECDSA}\x1b[2J x\n"
    keys = run(tmp_path, monkeypatch, credential)
    assert keys.read_text().splitlines() == [f"{ED25519} a {ECDSA} smuggled"]
    assert keys.stat().st_mode & 0o777 == 0o600
    assert keys.parent.stat().st_mode & 0o777 == 0o700
    err = capsys.readouterr().err
    assert err.startswith("root-keys: ssh.authorized_keys.root, line 2: left out (")
    assert err.count("\n") == 1


@pytest.mark.real
def test_the_given_key_logs_in_beside_the_old_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(sshd.missing(), "the root-keys login test")
    for name in ("old", "given"):
        argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name]
        subprocess.run([*argv, "-f", str(tmp_path / name)], check=True)
    keys = tmp_path / "root/.ssh/authorized_keys"
    keys.parent.mkdir(parents=True)
    keys.write_text((tmp_path / "old.pub").read_text())
    run(tmp_path, monkeypatch, (tmp_path / "given.pub").read_text())
    with sshd.running(tmp_path / "sshd", {"root": keys.read_bytes()}) as port:
        assert sshd.login(port, tmp_path / "given") == "in"
        assert sshd.login(port, tmp_path / "old") == "in"
