"""installer-banner, the program: what it gathers (addresses from a real ip, fingerprints as
ssh-keygen prints them, the onion once Tor writes it), --json and --no-password, the terminal
it draws on, and hostile inputs (nixos_images.installer_banner). The screen's layout and the
codes decoded from an emulated terminal are test_banner_screen.py's.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import termios
import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netlab
import screen
from conftest import require, run_cli
from nixos_images import banner_screen, installer_banner
from nixos_images.banner_screen import Interface, Snapshot
from nixos_images.installer_banner import fingerprint, gather

if TYPE_CHECKING:
    from pathlib import Path
    from typing import IO


ONION = "p53lf57qovyuvwsc6xnrppyply3vtqm7l6pcobkmyqsiofyeznfu5uqd.onion"


TYPICAL = Snapshot(
    hostname="nixos-installer",
    password="correct-horse-battery-staple",
    onion=ONION,
    interfaces=(
        Interface("ens3", ("203.0.113.10/32", "2001:db8:2::10/64"), ("fe80::ff:fe00:202/64",)),
    ),
    fingerprints=(("ED25519", "SHA256:" + "A" * 43),),
)


def shown(snap: Snapshot, width: int, height: int) -> str:
    """The banner's text as a width x height terminal shows it."""
    term = screen.terminal(width, height, banner_screen.layout(snap, width, height).text().encode())
    return "\n".join(term.lines())


def test_tor_still_starting_and_no_password_yet() -> None:
    snap = Snapshot("h", None, None, (), ())
    text = banner_screen.full_text(snap, 80)
    assert "root password: (not set yet)" in text
    assert "tor: (tor is still starting)" in text


@pytest.mark.real
def test_fingerprints_match_ssh_keygen(tmp_path: Path) -> None:
    require([] if shutil.which("ssh-keygen") else ["ssh-keygen (openssh-client)"], "fingerprints")
    for kind in ("ed25519", "ecdsa", "rsa"):
        key = tmp_path / f"ssh_host_{kind}_key"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
        listed = subprocess.run(
            ["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True, text=True, check=True
        ).stdout.split()
        name, digest = fingerprint((tmp_path / f"{key.name}.pub").read_text())
        assert digest == listed[1]
        assert name == listed[-1].strip("()")


@pytest.mark.real
def test_banner_from_a_real_ip_dump_in_a_namespace(tmp_path: Path) -> None:
    require(netlab.missing_tools() + screen.missing(), "a banner from a network namespace")
    (tmp_path / "pw").write_text("alpha-beta-gamma-delta\n")
    with netlab.namespaces("banner", "peer") as (host, peer):
        netlab.cable(host, "ens3", peer, "p0")
        host.ip("addr", "add", "192.0.2.10/24", "dev", "ens3")
        host.ip("addr", "add", "2001:db8::10/64", "dev", "ens3")
        snap = gather(
            ip=host.ip_prefix,
            password_file=tmp_path / "pw",
            onion_file=tmp_path / "none",
            ssh_dir=tmp_path,
        )
    (ens3,) = snap.interfaces
    assert ens3.addresses == ("192.0.2.10/24", "2001:db8::10/64")
    assert len(ens3.link_local) == 1
    assert ens3.link_local[0].startswith("fe80::")
    term = screen.terminal(100, 40, banner_screen.layout(snap, 100, 40).text().encode())
    (found,) = screen.payloads(term)
    decoded = json.loads(found)
    assert decoded["pass"] == "alpha-beta-gamma-delta"
    assert decoded["addrs"] == ["192.0.2.10", "2001:db8::10", ens3.link_local[0].split("/")[0]]


def test_json_prints_the_payload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pw").write_text("a-b-c-d\n")
    (tmp_path / "onion").write_text(ONION + "\n")
    argv = ["installer-banner", "--json", "--password-file", str(tmp_path / "pw")]
    argv += ["--onion-file", str(tmp_path / "onion"), "--ssh-dir", str(tmp_path)]
    assert run_cli(installer_banner.main, argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pass"] == "a-b-c-d"
    assert data["tor"] == ONION
    assert isinstance(data["addrs"], list)


@pytest.mark.parametrize("argv", [["--json"], ["--ascii", "--for-screen", "80x24"], ["--text"]])
def test_no_password_leaves_it_out_of_the_text_and_the_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """What serial consoles get by default: providers log them."""
    (tmp_path / "pw").write_text("a-b-c-d\n")
    argv = ["installer-banner", *argv, "--no-password", "--password-file", str(tmp_path / "pw")]
    argv += ["--onion-file", str(tmp_path / "onion"), "--ssh-dir", str(tmp_path)]
    assert run_cli(installer_banner.main, argv) == 0
    out = capsys.readouterr().out
    assert "a-b-c-d" not in out
    if "--json" in argv:
        assert json.loads(out)["pass"] == ""
    else:
        assert banner_screen.HIDDEN in out


def read_until(stream: IO[str], text: str, seconds: float) -> str:
    """Lines from stream until one holds text; fails at EOF or after seconds, never hangs
    (the stream must be non-blocking or the writer alive: readline waits for a line)."""
    deadline = time.monotonic() + seconds
    seen = ""
    while text not in seen:
        line = stream.readline()
        if not line:
            pytest.fail(f"EOF before {text!r}; got:\n{seen}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} within {seconds} s; got:\n{seen}")
        seen += line
    return seen


def test_watch_redraws_when_the_onion_hostname_appears(tmp_path: Path) -> None:
    onion = tmp_path / "hostname"
    (tmp_path / "pw").write_text("a-b-c-d\n")
    argv = [sys.executable, "-c", "from nixos_images.installer_banner import main; main()"]
    argv += ["--watch", "--interval", "0.1", "--for-screen", "120x50"]
    argv += ["--password-file", str(tmp_path / "pw"), "--onion-file", str(onion)]
    argv += ["--ssh-dir", str(tmp_path)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        read_until(proc.stdout, "(tor is still starting)", 10)
        onion.write_text(ONION + "\n")
        read_until(proc.stdout, ONION[:20], 10)
    finally:
        proc.kill()
        proc.wait()


def banner_on_a_terminal(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """installer-banner --watch with a pseudo-terminal as its controlling terminal, as on tty1;
    returns the process and the terminal's master side."""
    (tmp_path / "pw").write_text("a-b-c-d\n")
    argv = [sys.executable, "-c", "from nixos_images.installer_banner import main; main()"]
    argv += ["--watch", "--interval", "0.1", "--for-screen", "120x50"]
    argv += ["--password-file", str(tmp_path / "pw"), "--onion-file", str(tmp_path / "none")]
    argv += ["--ssh-dir", str(tmp_path)]
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,  # noqa: PLW1509 - a controlling terminal, nothing else
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 10
    while b"a-b-c-d" not in seen and time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            seen += os.read(master, 65536)
    assert b"a-b-c-d" in seen, seen
    return proc, master


@pytest.mark.parametrize(("key", "code"), [(b"\r", 0), (b"\x03", 130)], ids=["enter", "ctrl-c"])
def test_enter_or_ctrl_c_on_the_terminal_ends_the_banner(
    tmp_path: Path, key: bytes, code: int
) -> None:
    """On tty1 the banner runs in front of root's shell: Enter or Ctrl-C must reach it."""
    proc, master = banner_on_a_terminal(tmp_path)
    try:
        os.write(master, key)
        assert proc.wait(timeout=10) == code
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    password=st.binary(max_size=64),
    onion=st.binary(max_size=80),
    pub=st.binary(max_size=120),
    ifname=st.text(min_size=1, max_size=20),
)
def test_whatever_the_inputs_the_banner_draws_and_shows_no_control_characters(
    tmp_path: Path, password: bytes, onion: bytes, pub: bytes, ifname: str
) -> None:
    (tmp_path / "pw").write_bytes(password)
    (tmp_path / "onion").write_bytes(onion)
    (tmp_path / "ssh_host_ed25519_key.pub").write_bytes(pub)
    (tmp_path / "ssh_host_rsa_key.pub").write_bytes(b"ssh-\x1b[2Jrsa AAAA \x1b]0;pwned\x07\n")
    dump = [{"ifname": ifname, "addr_info": [{"family": "inet", "local": "192.0.2.7",
             "prefixlen": 24, "scope": "global"}]},
            {"ifname": "eth1", "addr_info": [{"family": "inet", "local": "198.51.100.9",
             "prefixlen": 24, "scope": "global"}]}]  # fmt: skip
    fake_ip = tmp_path / "ip"
    fake_ip.write_text(f"import json, sys\nprint(json.dumps({dump!r}))\n")
    snap = installer_banner.gather(
        ip=(sys.executable, str(fake_ip)),
        password_file=tmp_path / "pw",
        onion_file=tmp_path / "onion",
        ssh_dir=tmp_path,
    )
    drawn = banner_screen.layout(snap, 120, 50).text()
    own = drawn.replace(banner_screen.QR_COLOURS, "").replace(banner_screen.RESET, "")
    assert not CONTROL.search(own)  # nothing but the code's own colours
    assert "198.51.100.9/24" in drawn  # a bad neighbour does not hide the good interface


def test_no_ip_at_all_still_draws_the_banner(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("a-b-c-d\n")
    snap = installer_banner.gather(
        ip=(str(tmp_path / "no-such-ip"),),
        password_file=tmp_path / "pw",
        onion_file=tmp_path / "none",
        ssh_dir=tmp_path,
    )
    assert snap.interfaces == ()
    assert "a-b-c-d" in banner_screen.layout(snap, 120, 50).text()
