"""Reading files on someone else's behalf (nixos_images.fsutil): as root would not be tricked,
and as the user sshd reads them as (read_as: a child that became the user, with a timeout)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import require
from nixos_images import fsutil

if TYPE_CHECKING:
    from collections.abc import Iterator

NOBODY = fsutil.Identity(65534, 65534, (65534,))


def as_root() -> None:
    require([] if os.geteuid() == 0 else ["root"], "reading as another user")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory every user can enter (pytest's temporary directories are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="fsutil-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_a_file_only_root_may_read_is_not_read_as_the_user(shared: Path) -> None:
    """A root-owned 0600 file in the user's ~/.ssh: sshd, reading as the user, never saw it."""
    as_root()
    secret = shared / "authorized_keys"
    secret.write_text("ssh-ed25519 AAAA root-only\n")
    secret.chmod(0o600)
    with pytest.raises(PermissionError):
        fsutil.read_as(secret, 1024, NOBODY, 5)
    assert fsutil.read_untrusted(secret, 1024) == "ssh-ed25519 AAAA root-only\n"
    secret.chmod(0o644)
    assert fsutil.read_as(secret, 1024, NOBODY, 5) == "ssh-ed25519 AAAA root-only\n"


def test_a_directory_link_into_a_root_only_place_leads_nowhere(shared: Path) -> None:
    """~/.ssh a symbolic link to a directory only root may enter (O_NOFOLLOW guards only the
    last component): as the user, the file behind it cannot be read."""
    as_root()
    private = shared / "private"
    private.mkdir(mode=0o700)
    (private / "authorized_keys").write_text("ssh-ed25519 AAAA behind-the-link\n")
    (private / "authorized_keys").chmod(0o644)
    home = shared / "home"
    home.mkdir(mode=0o755)
    (home / ".ssh").symlink_to(private)
    with pytest.raises(PermissionError):
        fsutil.read_as(home / ".ssh/authorized_keys", 1024, NOBODY, 5)
    private.chmod(0o755)
    assert "behind-the-link" in fsutil.read_as(home / ".ssh/authorized_keys", 1024, NOBODY, 5)


def test_what_the_user_may_read_is_read_and_errors_come_back_as_they_were(shared: Path) -> None:
    as_root()
    keys = shared / "keys"
    keys.write_bytes(b"ssh-ed25519 AAAA caf\xc3\xa9 \xff\n")  # UTF-8, and a byte that is not
    keys.chmod(0o644)
    assert fsutil.read_as(keys, 1024, NOBODY, 5) == "ssh-ed25519 AAAA caf\u00e9 \ufffd\n"
    with pytest.raises(FileNotFoundError):
        fsutil.read_as(shared / "missing", 1024, NOBODY, 5)
    (shared / "link").symlink_to(keys)
    with pytest.raises(fsutil.UnsafeFileError, match="a symbolic link"):
        fsutil.read_as(shared / "link", 1024, NOBODY, 5)
    big = shared / "big"
    big.write_text("x" * 300_000)  # more than a pipe holds at once
    big.chmod(0o644)
    with pytest.raises(fsutil.UnsafeFileError, match="larger than"):
        fsutil.read_as(big, 1024, NOBODY, 5)
    assert len(fsutil.read_as(big, 400_000, NOBODY, 5)) == 300_000


def test_a_read_that_hangs_is_given_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead network home: the child's read never returns (a sleep stands in for it here);
    the launcher goes on after the timeout, and the child is gone."""
    as_root()

    def hangs(_path: Path, _limit: int) -> str:
        time.sleep(30)
        return ""

    monkeypatch.setattr(fsutil, "read_untrusted", hangs)
    started = time.monotonic()
    with pytest.raises(fsutil.UnsafeFileError, match=r"not read within 0.5 s"):
        fsutil.read_as(tmp_path / "keys", 1024, NOBODY, 0.5)
    assert time.monotonic() - started < 3
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left behind


def test_the_check_runs_first_and_as_the_user(shared: Path) -> None:
    """sshd's StrictModes walk runs in the child, as the user: a hung home hangs the child."""
    as_root()
    keys = shared / "keys"
    keys.write_text("ssh-ed25519 AAAA k\n")
    keys.chmod(0o644)
    with pytest.raises(fsutil.UnsafeFileError, match=r"^walked as uid 65534$"):
        fsutil.read_as(keys, 1024, NOBODY, 5, check=lambda: f"walked as uid {os.geteuid()}")
    assert fsutil.read_as(keys, 1024, NOBODY, 5, check=lambda: None) == "ssh-ed25519 AAAA k\n"

    def hangs() -> str | None:
        time.sleep(30)
        return None

    started = time.monotonic()
    with pytest.raises(fsutil.UnsafeFileError, match=r"not read within 0\.5 s"):
        fsutil.read_as(keys, 1024, NOBODY, 0.5, check=hangs)
    assert time.monotonic() - started < 3
