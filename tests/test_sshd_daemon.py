"""The old host's sshd daemon and the connection kexec/run came through, read from a /proc laid
out as the kernel lays it out (nixos_images.kexec.sshd_daemon)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import require
from nixos_images.kexec import sshd_daemon


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
    conn = sshd_daemon.connection(proc, 500)
    assert conn == sshd_daemon.Connection("203.0.113.9", "192.0.2.10", "2222", known=True)
    assert conn.spec("root") == (
        "user=root,host=203.0.113.9,addr=203.0.113.9,laddr=192.0.2.10,lport=2222"
    )
    # No ssh connection (a console), or a hostile value: a login from 127.0.0.1 to port 22.
    assert sshd_daemon.connection(proc, 300 + 1000) == sshd_daemon.Connection()
    _process(proc, 600, 1, b"SSH_CONNECTION=1.2.3.4,user=x 1 5.6.7.8 22\0")
    assert sshd_daemon.connection(proc, 600) == sshd_daemon.Connection()


def _fake_process(proc: Path, pid: int, exe: Path, title: str, uid: int = 0, ppid: int = 1) -> None:
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "exe").symlink_to(exe)
    (proc / str(pid) / "cmdline").write_bytes(title.replace(" ", "\0").encode())
    (proc / str(pid) / "status").write_text(f"PPid:\t{ppid}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")


def _binary(path: Path, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    path.chmod(mode)
    return path


def test_only_root_run_sshds_from_root_only_binaries_are_asked(tmp_path: Path) -> None:
    """A user's own `sshd -D -f ~/cfg` (or a program named sshd) must not choose the answer,
    nor be what root runs: the daemon kexec/run came through first, else a root listener."""
    require([] if os.geteuid() == 0 else ["root"], "root-owned stand-in binaries")
    proc = tmp_path / "proc"
    store = _binary(tmp_path / "nix/store/0000-openssh-10.0p2/bin/sshd")
    mine = _binary(tmp_path / "home/eve/sshd", 0o777)
    _fake_process(proc, 7, store, f"sshd: {store} -D -f /etc/ssh/sshd_config [listener]")
    _fake_process(proc, 8, store, f"{store} -D -f /home/eve/cfg -p 2222", uid=1000)
    _fake_process(proc, 9, mine, f"{mine} -D -f /home/eve/cfg")
    assert sshd_daemon.running_sshd(proc) == [str(store), "-f", "/etc/ssh/sshd_config"]
    # Through a session: kexec/run (pid 50) under the listener 7's session process 40.
    _fake_process(proc, 40, store, "sshd: admin [priv]", ppid=7)
    _fake_process(proc, 50, tmp_path / "bash", "bash", ppid=40)
    assert sshd_daemon.running_sshd(proc, 50) == [str(store), "-f", "/etc/ssh/sshd_config"]
    assert sshd_daemon.running_sshd(tmp_path / "empty") is None


def test_a_listener_whose_options_cannot_be_read_back_is_not_guessed(tmp_path: Path) -> None:
    require([] if os.geteuid() == 0 else ["root"], "root-owned stand-in binaries")
    proc = tmp_path / "proc"
    sshd = _binary(tmp_path / "usr/sbin/sshd")
    _fake_process(proc, 7, sshd, f"{sshd} -D -o PermitRootLogin no [listener]")
    with pytest.raises(sshd_daemon.UnreadableDaemonError):
        sshd_daemon.running_sshd(proc)


@pytest.mark.parametrize(
    "value", ["fe80::1%a,user=admin 1 192.0.2.10 22", "10.0.0.1 1 192.0.2.10 99999"]
)
def test_a_hostile_ssh_connection_is_no_connection(tmp_path: Path, value: str) -> None:
    proc = tmp_path / "proc"
    _process(proc, 600, 1, f"SSH_CONNECTION={value}\0".encode())
    assert sshd_daemon.connection(proc, 600) == sshd_daemon.Connection()


def test_an_ssh_daemon_that_is_not_openssh_fails_closed(tmp_path: Path) -> None:
    """dropbear cannot be asked what it let in (no sshd -T): every key stays out, and the
    report says why (--ssh-key is the way through)."""
    proc = tmp_path / "proc"
    dropbear = tmp_path / "usr/sbin/dropbear"
    _fake_process(proc, 300, dropbear, "/usr/sbin/dropbear -F -E -p 22")
    _fake_process(proc, 400, tmp_path / "bin/sh", "-sh", ppid=300)
    assert sshd_daemon.other_daemon(proc, 400) == "dropbear"
    daemon = sshd_daemon.find_daemon(Path("/"), proc)
    assert daemon.unreadable == (
        "the ssh daemon is dropbear, not OpenSSH, whose judgement cannot be asked"
    )
    assert sshd_daemon.other_daemon(tmp_path / "empty", 400) is None


def test_openssh_is_asked_when_kexec_run_did_not_come_through_the_other_daemon(
    tmp_path: Path,
) -> None:
    """A dropbear on another port beside the OpenSSH listener kexec/run came through."""
    require([] if os.geteuid() == 0 else ["root"], "root-owned stand-in binaries")
    proc = tmp_path / "proc"
    sshd = _binary(tmp_path / "usr/sbin/sshd")
    _fake_process(proc, 100, sshd, "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups")
    _fake_process(proc, 300, tmp_path / "usr/sbin/dropbear", "/usr/sbin/dropbear -p 2222")
    daemon = sshd_daemon.find_daemon(Path("/"), proc)
    assert daemon.unreadable is None
    assert daemon.argv == (str(sshd),)


@pytest.mark.parametrize(
    ("title", "asked"),
    [
        ("sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", []),
        ("/usr/sbin/sshd -D -oPermitRootLogin=no", ["-o", "PermitRootLogin=no"]),
        ("/usr/sbin/sshd -Df /etc/ssh/alt", ["-f", "/etc/ssh/alt"]),
        ("/usr/sbin/sshd -D -f/etc/ssh/alt -p 2222", ["-f", "/etc/ssh/alt"]),
        ("/usr/sbin/sshd -D -e -h /k -o Port=22", ["-h", "/k", "-o", "Port=22"]),
    ],
)
def test_the_daemons_options_are_read_as_getopt_reads_them(title: str, asked: list[str]) -> None:
    exe = "/usr/sbin/sshd"
    assert sshd_daemon._asked(exe, title.split()) == [exe, *asked]  # noqa: SLF001


@pytest.mark.parametrize(
    "title",
    ["/usr/sbin/sshd -D -o Banner none", "/usr/sbin/sshd -D -Z", "/usr/sbin/sshd -D -f"],
)
def test_options_that_cannot_be_read_back_leave_the_daemon_unreadable(title: str) -> None:
    with pytest.raises(sshd_daemon.UnreadableDaemonError):
        sshd_daemon._asked("/usr/sbin/sshd", title.split())  # noqa: SLF001
