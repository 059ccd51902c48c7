"""The old host's accounts as sshd saw them (nixos_images.kexec.accounts): read from a root's
/etc/passwd, /etc/group and /etc/shadow, and whether sshd opened a session for them at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from fakehost import ECDSA, ED25519, fake_root
from nixos_images.kexec import accounts, collect

if TYPE_CHECKING:
    from pathlib import Path

DAY = 86400
NOW = 20000 * DAY  # 2024-10-04


ADMIN = "admin:$y$j9T$x:19000:0:99999:7:::"


def host(tmp: Path, *, login_shell: str = "/bin/sh", shadow: str = ADMIN) -> Path:
    root = fake_root(tmp)
    passwd = (
        (root / "etc/passwd")
        .read_text()
        .replace("/home/admin:/bin/sh", f"/home/admin:{login_shell}")
    )
    (root / "etc/passwd").write_text(passwd)
    (root / "etc/shadow").write_text(f"root:!:19000:0:99999:7:::\n{shadow}\n")
    (root / "usr/sbin").mkdir(parents=True)
    for name in ("nologin", "false", "not-executable"):
        (root / "usr/sbin" / name).write_text("#!/bin/sh\nexit 1\n")
        (root / "usr/sbin" / name).chmod(0o644 if name == "not-executable" else 0o755)
    return root


def test_an_account_is_read_with_its_shell_and_shadow_line(tmp_path: Path) -> None:
    root = host(tmp_path, shadow="admin:!$y$j9T$x:19000:0:99999:7::20001:")
    admin = accounts.account("admin", root)
    assert admin is not None
    assert (admin.shell, admin.password, admin.expires) == ("/bin/sh", "!$y$j9T$x", 20001)
    root_account = accounts.account("root", root)
    assert root_account is not None
    assert (root_account.password, root_account.expires) == ("!", None)


@pytest.mark.parametrize(
    ("shell", "reason"),
    [
        ("/bin/sh", None),
        ("", None),  # sshd takes /bin/sh
        ("/usr/sbin/nologin", "its shell /usr/sbin/nologin ends every session"),
        ("/usr/sbin/false", "its shell /usr/sbin/false ends every session"),
        (
            "/usr/sbin/not-executable",
            "its shell /usr/sbin/not-executable is not an executable file",
        ),
        ("/usr/bin/zsh", "its shell /usr/bin/zsh is not an executable file"),  # not installed
    ],
)
def test_a_shell_that_opens_no_session(tmp_path: Path, shell: str, reason: str | None) -> None:
    root = host(tmp_path, login_shell=shell)
    admin = accounts.account("admin", root)
    assert admin is not None
    assert accounts.refusal(admin, root, use_pam=True, now=NOW) == reason


@pytest.mark.parametrize(
    ("shadow", "use_pam", "reason"),
    [
        # A locked password stops a key only where sshd judges the account itself.
        ("admin:!$y$j9T$x:19000:0:99999:7:::", False, "its password is locked and UsePAM is off"),
        ("admin:!$y$j9T$x:19000:0:99999:7:::", True, None),
        ("admin:*:19000:0:99999:7:::", False, None),  # no password: not locked
        ("admin:$y$x:19000:0:99999:7::19999:", False, "the account expired"),
        ("admin:$y$x:19000:0:99999:7::20000:", False, None),  # expires at the end of today
        ("admin:$y$x:19000:0:99999:7::19999:", True, "the account expired"),  # pam_unix too
    ],
)
def test_locked_and_expired_accounts_without_pam(
    tmp_path: Path, shadow: str, use_pam: bool, reason: str | None
) -> None:
    root = host(tmp_path, shadow=shadow)
    admin = accounts.account("admin", root)
    assert admin is not None
    assert accounts.refusal(admin, root, use_pam=use_pam, now=NOW) == reason


def test_a_user_whose_shell_opens_no_session_contributes_no_key(tmp_path: Path) -> None:
    root = host(tmp_path, login_shell="/usr/sbin/nologin")
    (root / "etc/ssh/sshd_config").write_text("StrictModes no\nUsePAM yes\n")
    out = collect.collect_keys(root, {"SUDO_USER": "admin"})
    assert [k.line() for k in out.keys] == [f'command="echo no" {ED25519} root']
    assert ECDSA not in "".join(k.line() for k in out.keys)
    assert any("its shell /usr/sbin/nologin ends every session" in n for n in out.notes)


def test_roots_locked_password_counts_only_without_pam(tmp_path: Path) -> None:
    """Root's password is "!" (Debian's cloud images): with UsePAM yes its keys log in."""
    root = host(tmp_path)
    (root / "etc/ssh/sshd_config").write_text("StrictModes no\nUsePAM yes\n")
    assert collect.collect_keys(root, {}).keys
    (root / "etc/ssh/sshd_config").write_text("StrictModes no\nUsePAM no\n")
    out = collect.collect_keys(root, {})
    assert out.keys == ()
    assert any("its password is locked and UsePAM is off" in n for n in out.notes)


@pytest.mark.parametrize("uid", ["\u00b2", "4294967296", "-1", ""])
def test_an_id_that_is_not_the_kernels_is_no_account(tmp_path: Path, uid: str) -> None:
    """A uid or gid the kernel could not have (a superscript digit, 2**32): not a traceback."""
    root = host(tmp_path)
    (root / "etc/passwd").write_text(f"admin:x:{uid}:1000::/home/admin:/bin/sh\n")
    assert accounts.account("admin", root) is None


@pytest.mark.parametrize("shell", ["/bin/sh\r", "/bin/sh\0"])
def test_a_shell_with_a_stray_character_is_no_shell(tmp_path: Path, shell: str) -> None:
    root = host(tmp_path, login_shell=shell)
    admin = accounts.account("admin", root)
    assert admin is not None
    assert accounts.refusal(admin, root, use_pam=True, now=NOW) == (
        f"its shell {shell} is not an executable file"
    )


@pytest.mark.parametrize(
    "shell",
    ["/usr/bin/git-shell", "/bin/rbash", "/usr/bin/scponly", "/usr/local/bin/backup-menu"],
)
def test_a_narrow_shell_is_no_root_shell(tmp_path: Path, shell: str) -> None:
    """git-shell, a restricted shell, a menu script: the user's key opened no full session
    (only the shells known to be full ones count)."""
    root = host(tmp_path, login_shell=shell)
    (root / shell.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (root / shell.lstrip("/")).write_text("#!/bin/sh\necho 'backups only'\n")
    (root / shell.lstrip("/")).chmod(0o755)
    admin = accounts.account("admin", root)
    assert admin is not None
    assert accounts.refusal(admin, root, use_pam=True, now=NOW) == (
        f"its shell {shell} is not a full shell: it gave a narrow session, if any"
    )


CHANGE_DUE = "its password must be changed before a session opens"


@pytest.mark.parametrize(
    ("shadow", "use_pam", "reason"),
    [
        # pam_unix counts an account expired on its last day already; sshd itself the day after.
        ("admin:$y$x:19000:0:99999:7::20000:", True, "the account expired"),
        ("admin:$y$x:19000:0:99999:7::20000:", False, None),
        # A password change due: never changed, or older than its maximum age.
        ("admin:$y$x:0:0:99999:7:::", True, CHANGE_DUE),
        ("admin:$y$x:19000:0:30:7:::", True, CHANGE_DUE),
        ("admin:*::0:90:7:::", True, CHANGE_DUE),  # no date, a maximum age: pam_unix asks
        # Without PAM, sshd asks for a password change only where a password logs in.
        ("admin:$y$x:0:0:99999:7:::", False, None),
        ("admin:$y$x:19000:0:30:7:::", False, None),
        ("admin:$y$x:19990:0:30:7:::", True, None),
        ("admin:$y$x::0:::::", True, None),  # no ageing at all
    ],
)  # fmt: skip
def test_an_account_that_sshd_or_pam_would_stop_before_a_session(
    tmp_path: Path, shadow: str, *, use_pam: bool, reason: str | None
) -> None:
    root = host(tmp_path, shadow=shadow)
    admin = accounts.account("admin", root)
    assert admin is not None
    today = 20000 * 86400 + 3600
    assert accounts.refusal(admin, root, use_pam=use_pam, now=today) == reason


def test_a_nologin_file_stops_everyone_but_root(tmp_path: Path) -> None:
    """pam_nologin reads /run/nologin and /etc/nologin; sshd without PAM /etc/nologin."""
    root = host(tmp_path)
    (root / "run").mkdir(exist_ok=True)
    (root / "run/nologin").write_text("maintenance\n")
    admin, superuser = accounts.account("admin", root), accounts.account("root", root)
    assert admin is not None
    assert superuser is not None
    nologin = "a nologin file lets nobody but root in"
    assert accounts.refusal(admin, root, use_pam=True, now=NOW) == nologin
    assert accounts.refusal(admin, root, use_pam=False, now=NOW) is None
    assert accounts.refusal(superuser, root, use_pam=True, now=NOW) is None
    (root / "etc/nologin").write_text("maintenance\n")
    assert accounts.refusal(admin, root, use_pam=False, now=NOW) == nologin
