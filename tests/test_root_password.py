"""root-password: a fresh passphrase, saved root-only before chpasswd sets it
(nixos_images.root_password).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from typing import TYPE_CHECKING

import pytest

from conftest import require, run_cli
from nixos_images import banner_screen, password_file, root_password
from nixos_images.errors import InputError
from nixos_images.password_file import BootCredential

if TYPE_CHECKING:
    from pathlib import Path


def test_word_list_has_7776_distinct_words_and_a_passphrase_has_enough_entropy() -> None:
    words = root_password.load_wordlist(root_password.WORDLIST)
    assert len(set(words)) == 7776
    # A separator no word holds (four of the list's words hold "-": drop-down, t-shirt, ...).
    phrase = root_password.passphrase(words, 4, separator=" ")
    parts = phrase.split(" ")
    assert len(parts) == 4
    assert set(parts) <= set(words)
    assert 4 * math.log2(len(set(words))) > 51
    assert len({root_password.passphrase(words, 4) for _ in range(200)}) == 200


def test_a_short_or_missing_word_list_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("a\nb\nc\n")
    with pytest.raises(InputError, match="needs 7776 distinct words, this one has 3"):
        root_password.load_wordlist(short)
    with pytest.raises(InputError, match="word list not found"):
        root_password.load_wordlist(tmp_path / "none")


def fake_chpasswd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A chpasswd on PATH that records its arguments and its stdin."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "record"
    script = bindir / "chpasswd"
    script.write_text(f'#!/bin/sh\necho "argv: $*" > {record}\ncat >> {record}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return record


def test_password_goes_to_chpasswd_on_stdin_and_to_a_root_only_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = fake_chpasswd(tmp_path, monkeypatch)
    out = tmp_path / "run" / "root-password"
    assert run_cli(root_password.main, ["root-password", "--words", "5", "--output", str(out)]) == 0
    password = out.read_text().strip()
    argv, stdin = record.read_text().splitlines()
    assert len(password.split("-")) == 5
    assert password not in argv
    assert stdin == f"root:{password}"
    assert out.stat().st_mode & 0o777 == 0o600


def test_no_chpasswd_is_one_line_and_no_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "pw"
    assert run_cli(root_password.main, ["root-password", "--output", str(out)]) == 1
    assert capsys.readouterr().err == "root-password: chpasswd: command not found\n"
    assert not out.exists()


def test_unwritable_target_is_one_line_before_the_password_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record = fake_chpasswd(tmp_path, monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = run_cli(root_password.main, ["root-password", "--output", str(blocker / "pw")])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1
    assert err.startswith("root-password: ")
    assert not record.exists()


def test_the_password_is_saved_before_it_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password set but never shown locks people at the console out: chpasswd must find
    the saved file already there, the very password it is setting."""
    record = fake_chpasswd(tmp_path, monkeypatch)
    out = tmp_path / "root-password"
    script = tmp_path / "bin/chpasswd"
    script.write_text(script.read_text() + f"cat {out} >> {record}\n")
    assert run_cli(root_password.main, ["root-password", "--output", str(out)]) == 0
    _, given, saved = record.read_text().splitlines()
    assert given == f"root:{saved}"


def test_a_failed_chpasswd_leaves_no_password_file_to_mislead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_chpasswd(tmp_path, monkeypatch)
    script = tmp_path / "bin/chpasswd"
    script.write_text(script.read_text() + "echo 'chpasswd: cannot lock /etc/passwd' >&2\nexit 1\n")
    out = tmp_path / "root-password"
    assert run_cli(root_password.main, ["root-password", "--output", str(out)]) == 1
    assert "cannot lock /etc/passwd" in capsys.readouterr().err
    assert not out.exists()


def throwaway_root(tmp_path: Path, password_field: str) -> Path:
    """A root with root's passwd, group and shadow entries, for the real chpasswd --root."""
    require(
        ([] if os.geteuid() == 0 else ["root"])
        + ([] if shutil.which("chpasswd") else ["chpasswd"]),
        "chpasswd in a throwaway root",
    )
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text(f"root:{password_field}:19000:0:99999:7:::\n")
    (root / "etc/shadow").chmod(0o640)
    return root


@pytest.mark.real
def test_chpasswd_sets_a_hash_that_verifies_in_a_throwaway_root(tmp_path: Path) -> None:
    root = throwaway_root(tmp_path, "!")
    out = tmp_path / "pw"
    code = run_cli(root_password.main, ["root-password", "--root", str(root), "--output", str(out)])
    assert code == 0
    password = out.read_text().strip()
    hashed = (root / "etc/shadow").read_text().split(":")[1]
    assert hashed.startswith("$y$")  # yescrypt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # noqa: PLC0415 - deprecated, fine for checking a hash in a test

    assert crypt.crypt(password, hashed) == hashed
    assert crypt.crypt(password + "x", hashed) != hashed


# A yescrypt hash of "password" (libxcrypt's crypt(3) with this salt).
HASH = "$y$j9T$Tq7H4hUaxQqhSkUhGm0H31$WgBsjT0BHhRI1vyqsNDC2vKl./Peu4jxTvZQtMkRvs3"


@pytest.mark.parametrize(
    ("cmdline", "credential", "value"),
    [
        (f"quiet live.nixos.passwordHash={HASH} x=1", BootCredential.CMDLINE_HASH, HASH),
        ("live.nixos.password=hunter2", BootCredential.CMDLINE_PASSWORD, "hunter2"),
        # As netboot.nix's `set -- $(IFS==; echo $o)` reads it: up to the next "=".
        ("live.nixos.password=a=b", BootCredential.CMDLINE_PASSWORD, "a"),
        ("live.nixos.passwordHashX=1 init=/x", None, None),
    ],
)
def test_a_password_on_the_kernel_command_line_is_read_as_nixpkgs_reads_it(
    cmdline: str, credential: BootCredential | None, value: str | None
) -> None:
    given = root_password.from_cmdline(cmdline)
    got = (given.credential, given.value) if given else (None, None)
    assert got == (credential, value)


@pytest.mark.parametrize(
    "value",
    # A plain word, or "!" and "*" (locked), would match no password: the console had none.
    ["", "$y$a:b", "$y$a\nroot:x", "$y$ä", "$y$" + "x" * 600, "$6$a b", "hunter2", "!", "*"],
)
def test_a_hash_chpasswd_cannot_take_whole_is_refused(value: str) -> None:
    with pytest.raises(InputError, match="not a crypt\\(3\\) hash chpasswd can set"):
        root_password.check(root_password.Given(BootCredential.SYSTEMD_HASH, value))


def run_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cmdline: str, credential: str | None
) -> tuple[int, Path]:
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    if credential is not None:
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / root_password.CREDENTIAL_NAME).write_text(credential + "\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    out = tmp_path / "run" / "root-password"
    argv = ["root-password", "--output", str(out), "--cmdline", str(tmp_path / "cmdline")]
    return run_cli(root_password.main, argv), out


def test_a_hash_given_at_boot_is_set_and_the_banner_says_by_what(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The systemd credential wins over the command line; no random passphrase replaces it."""
    record = fake_chpasswd(tmp_path, monkeypatch)
    code, out = run_with(tmp_path, monkeypatch, "live.nixos.password=plain", HASH)
    assert code == 0
    argv, stdin = record.read_text().splitlines()
    assert argv == "argv: --encrypted"
    assert stdin == f"root:{HASH}"
    saved = password_file.parse(out.read_text())
    assert saved == password_file.Saved(credential=BootCredential.SYSTEMD_HASH)
    assert out.stat().st_mode & 0o777 == 0o600
    by = BootCredential.SYSTEMD_HASH.value
    snap = banner_screen.Snapshot("h", None, None, (), (), password_set_by=by)
    text = banner_screen.full_text(snap, 100)
    assert "set at boot by the systemd credential passwd.hashed-password.root" in text
    assert json.loads(next(banner_screen.payloads(snap)))["pass"] == ""


def test_a_credential_written_on_windows_is_read_as_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = fake_chpasswd(tmp_path, monkeypatch)
    code, _ = run_with(tmp_path, monkeypatch, "", HASH + "\r")
    assert code == 0
    assert record.read_text().splitlines()[1] == f"root:{HASH}"


def test_a_damaged_credential_is_one_line_and_the_console_still_gets_a_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record = fake_chpasswd(tmp_path, monkeypatch)
    code, out = run_with(tmp_path, monkeypatch, "", "$y$x:root::0:")
    assert code == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("root-password: the systemd credential passwd.hashed-password.root:")
    assert err.endswith("setting a random passphrase instead\n")
    saved = password_file.parse(out.read_text())
    assert saved.password is not None
    assert record.read_text().splitlines()[1] == f"root:{saved.password}"


@pytest.mark.real
def test_a_hash_from_the_command_line_is_roots_hash_in_a_throwaway_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = throwaway_root(tmp_path, "")
    (root / "etc/cmdline").write_text(f"live.nixos.passwordHash={HASH}\n")
    out = tmp_path / "pw"
    argv = ["root-password", "--root", str(root), "--output", str(out)]
    argv += ["--cmdline", str(root / "etc/cmdline")]
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert run_cli(root_password.main, argv) == 0
    assert (root / "etc/shadow").read_text().split(":")[1] == HASH
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # noqa: PLC0415 - deprecated, fine for checking a hash in a test

    assert crypt.crypt("password", HASH) == HASH  # "password" logs in
