"""The kexec launcher on this machine: authorized keys, preflight, the state archive, loading.

kexec itself is a recording stand-in here (this machine cannot kexec); the real thing runs in
QEMU (test_kexec_qemu.py). The archive is read back with GNU cpio, the keys with ssh-keygen.
"""

from __future__ import annotations

import dataclasses
import fcntl
import gzip
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import FIXTURES, require, run_cli
from nixos_images import process
from nixos_images.errors import HelperError, InputError
from nixos_images.kexec import (
    authorized_keys,
    collect,
    cpio,
    launcher,
    manifest,
    preflight,
    sshd_config,
)
from nixos_images.kexec.authorized_keys import KeyLineError, parse_line

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFp1M8Jq1Tn8dN0bYH3ci6UvUbdXJOo1mM2OSCHbiWO6"
ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPz2mFAuBTsLk"
    "C4qmq8bnaT9jCsSzE5mt1n7GpkmK4uHgjxXSFyKyWj/OUtw+5vnwJn9JYjZNmcmYtX6KBrFoUc="
)


# --- authorized keys -----------------------------------------------------------------------


CLOUD_INIT_OLD = (
    "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as"
    ' the user \\"debian\\" rather than the user \\"root\\".\';echo;sleep 10"'
)
CLOUD_INIT = CLOUD_INIT_OLD[:-1] + ';exit 142"'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # cloud-init's refusal, both variants: removed with its template's options.
        (f"{CLOUD_INIT} {ED25519} cloud", f"{ED25519} cloud"),
        (f"{CLOUD_INIT_OLD} {ED25519} cloud", f"{ED25519} cloud"),
        (f'{CLOUD_INIT},from="192.0.2.0/24" {ED25519}', f'from="192.0.2.0/24" {ED25519}'),
        # Every other restriction stays: the installer's root accepts what the old sshd did.
        (
            f'restrict,from="10.0.0.0/8,192.0.2.1" {ECDSA}',
            f'restrict,from="10.0.0.0/8,192.0.2.1" {ECDSA}',
        ),
        (
            f'command="borg serve --restrict-to-path /b" {ED25519}',
            f'command="borg serve --restrict-to-path /b" {ED25519}',
        ),
        (
            f'Command="x",NO-PTY,permitopen="h:22" {ED25519}',
            f'Command="x",NO-PTY,permitopen="h:22" {ED25519}',
        ),
        (
            f'command="echo \'Please login as the user \\"x\\"\'" {ED25519}',
            f'command="echo \'Please login as the user \\"x\\"\'" {ED25519}',
        ),
        # Blanks are spaces and tabs; a carriage return at the end is no part of the line.
        (f" \t{ED25519}\t spaced  comment \r", f"{ED25519} spaced  comment"),
    ],
)
def test_restrictions_are_kept_and_only_cloud_inits_refusal_goes(line: str, expected: str) -> None:
    key = parse_line(line)
    assert key is not None
    assert key.line() == expected


@pytest.mark.parametrize(
    "line",
    [
        "ssh-ed25519",  # no key
        "ssh-ed25519 not-base64!",
        f"ssh-rsa {ED25519.split()[1]}",  # the data says ed25519
        'command="unterminated ssh-ed25519 AAAA',
        f"from=x,,no-pty {ED25519}",  # an empty option
        f"command=/bin/sh {ED25519}",  # sshd wants the value quoted: it rejects the line
        f"no-such-option {ED25519}",  # sshd rejects unknown options
        f'no-pty="x" {ED25519}',  # a flag with a value
        f"{ED25519.replace(' ', chr(0x0B))}",  # \v is no blank for sshd
        f"{ED25519.replace(' ', chr(0x1F))}",
        f"{ED25519.replace(' ', chr(0x2028))}",  # a Unicode line separator is no line end
        f"{ED25519.replace(' ', chr(0xA0))}",  # nor is a Unicode space a blank
        "just some words",
        "ssh-ed25519 AAAA",  # too short to hold a type
    ],
)
def test_lines_sshd_would_not_accept_are_skipped(line: str) -> None:
    with pytest.raises(KeyLineError):
        parse_line(line)


@pytest.mark.parametrize("mark", ["\x1b[2J", "\x0b", "\x1f", "\x85", "\u2028", "\u2029", "\x00"])
def test_a_comment_is_free_text_written_back_as_one_plain_line(mark: str) -> None:
    """sshd never reads the comment (test_sshd.py logs in with such lines): the key is
    carried, and what other readers would take as a line end or an escape becomes a space."""
    key = parse_line(f"{ED25519} before{mark}after")
    assert key is not None
    assert key.line().splitlines() == [key.line()]
    assert key.line().startswith(ED25519)
    assert key.comment.startswith("before ")
    assert key.comment.endswith("after")


def source(path: str, text: str) -> authorized_keys.Source:
    user = "root" if path.startswith(("/root/", "/etc/ssh/authorized_keys.d/root")) else "admin"
    return authorized_keys.Source(path, user, text)


def test_merge_keeps_every_distinct_line_the_callers_unrestricted_key_first() -> None:
    keys, skipped, _ = authorized_keys.merge(
        [
            source(
                "/root/.ssh/authorized_keys",
                f'# comment\n\nfrom="192.0.2.0/24" {ED25519} limited\n{ED25519} first\n'
                f'command="backup" {ECDSA} backup\n',
            ),
            source(
                "/home/admin/.ssh/authorized_keys",
                f'{ECDSA}\ngarbage line\n{ED25519} again\r\ncommand="rsync" {ED25519} x\n',
            ),
        ]
    )
    assert [k.line() for k in keys] == [
        ECDSA,  # the sudo user's unrestricted key first
        f"{ED25519} again",
        f"{ED25519} first",
        f'from="192.0.2.0/24" {ED25519} limited',
        # root's forced-command copy is dropped: the caller's unrestricted copy is carried
    ]
    assert [(s.source, s.line_number, s.reason) for s in skipped] == [
        (
            "/home/admin/.ssh/authorized_keys",
            2,
            "option 'garbage' is not one sshd accepts",
        ),
        ("/home/admin/.ssh/authorized_keys", 4, "sshd never reached it: line 3 has the same key"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # sshd takes the first line that applies: root got the forced command, never a shell.
        (f'command="echo first" {ED25519}\n{ED25519}\n', [f'command="echo first" {ED25519}']),
        # from 192.0.2.0/24 the forced command, from elsewhere a shell: the order is the meaning.
        (
            f'from="192.0.2.0/24",command="echo near" {ED25519}\n{ED25519}\n',
            [f'from="192.0.2.0/24",command="echo near" {ED25519}', ED25519],
        ),
    ],
)
def test_a_files_first_matching_line_decides_as_in_sshd(text: str, expected: list[str]) -> None:
    keys, _, _ = authorized_keys.merge([source("/root/.ssh/authorized_keys", text)])
    assert [k.line() for k in keys] == expected


def test_a_forced_command_key_without_an_unrestricted_copy_stays_forced() -> None:
    keys, _, _ = authorized_keys.merge(
        [source("/root/.ssh/authorized_keys", f'command="borg serve" {ED25519} backup\n')]
    )
    assert [k.line() for k in keys] == [f'command="borg serve" {ED25519} backup']


def test_a_users_cert_authority_keeps_meaning_that_users_certificates() -> None:
    keys, _, notes = authorized_keys.merge(
        [
            source("/home/admin/.ssh/authorized_keys", f"cert-authority {ED25519} ca\n"),
            source(
                "/home/admin/.ssh/authorized_keys2", f'cert-authority,principals="ops" {ECDSA}\n'
            ),
            source("/root/.ssh/authorized_keys", f"cert-authority {ECDSA} root-ca\n"),
        ]
    )
    assert [k.line() for k in keys] == [
        f'cert-authority,principals="admin" {ED25519} ca',
        f'cert-authority,principals="ops" {ECDSA}',
        f"cert-authority {ECDSA} root-ca",
    ]
    assert notes == [
        (
            "/home/admin/.ssh/authorized_keys:1: cert-authority limited to certificates for"
            " admin (principals added)"
        )
    ]


def test_rewritten_keys_parse_in_openssh(tmp_path: Path) -> None:
    """ssh-keygen reads authorized_keys files, options included: every line must still parse."""
    require([] if shutil.which("ssh-keygen") else ["ssh-keygen"], "the OpenSSH check")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
    )
    real = (tmp_path / "k.pub").read_text().strip()
    text = f'restrict,command="a \\"b\\"",from="192.0.2.0/24" {real}\n{CLOUD_INIT} {real}\n'
    keys, _, _ = authorized_keys.merge([source("/root/.ssh/authorized_keys", text)])
    (tmp_path / "authorized_keys").write_text(authorized_keys.render(keys))
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "authorized_keys")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.count("SHA256:") == 2
    # From 192.0.2.0/24 the forced command came first on the old host, and still does.
    assert authorized_keys.render(keys) == f"{text.splitlines()[0]}\n{real}\n"


# --- the state archive ---------------------------------------------------------------------


def extract(archive: bytes, dest: Path) -> None:
    require([] if shutil.which("cpio") else ["cpio"], "reading archives back with GNU cpio")
    dest.mkdir()
    subprocess.run(
        ["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
        input=archive,
        cwd=dest,
        check=True,
    )


def test_archive_reads_back_with_gnu_cpio(tmp_path: Path) -> None:
    archive = cpio.archive(
        [
            cpio.Member.file("a/secret", b"key\n", 0o600),
            cpio.Member.file("a/b/c.pub", b"odd length!", 0o644),
            cpio.Member.file("empty", b"", 0o444),
        ]
    )
    extract(archive, tmp_path / "x")
    assert (tmp_path / "x/a/secret").read_bytes() == b"key\n"
    assert (tmp_path / "x/a/secret").stat().st_mode & 0o7777 == 0o600
    assert (tmp_path / "x/a/b/c.pub").read_bytes() == b"odd length!"
    assert (tmp_path / "x/empty").stat().st_mode & 0o7777 == 0o444
    assert (tmp_path / "x/a/b").is_dir()
    assert len(archive) % 4 == 0


@pytest.mark.parametrize("path", ["/etc/x", "../x", "a/../../x", "."])
def test_archive_refuses_paths_outside_itself(path: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        cpio.archive([cpio.Member.file(path, b"", 0o644)])


@given(st.binary(max_size=64), st.binary(min_size=1, max_size=16))
def test_appended_archive_starts_on_a_4_byte_boundary_after_zeros(
    initrd: bytes, extra: bytes
) -> None:
    import io  # noqa: PLC0415 - only this property needs it

    out = io.BytesIO()
    written = cpio.append(out, io.BytesIO(initrd), extra)
    data = out.getvalue()
    assert written == len(data)
    assert data.startswith(initrd)
    assert data.endswith(extra)
    start = len(data) - len(extra)
    assert start % 4 == 0
    assert set(data[len(initrd) : start]) <= {0}
    assert start - len(initrd) < 4


# --- preflight -----------------------------------------------------------------------------

GOOD = preflight.Facts(
    euid=0,
    machine="x86_64",
    kernel_release="6.1.0-56-amd64",
    kexec_load_disabled="0",
    kexec_load_limit_reboot=None,
    lockdown="none",
    container=None,
    mem_total=2048 << 20,
    mem_available=1536 << 20,
    systemd=True,
)
SIZES = preflight.Sizes(
    kernel=12 << 20, initrd=400 << 20, initrd_unpacked=500 << 20, state=1 << 20, reserve=256 << 20
)


def failures(facts: preflight.Facts, syscall: str = "auto") -> dict[str, str]:
    return {
        c.name: c.detail for c in preflight.check(facts, "x86_64", SIZES, [], syscall) if not c.ok
    }


def test_a_suitable_host_passes_every_check() -> None:
    assert failures(GOOD) == {}


@pytest.mark.parametrize(
    ("change", "name", "says"),
    [
        ({"euid": 1000}, "root", "run it as root"),
        ({"machine": "aarch64"}, "architecture", "use the aarch64-linux tarball"),
        ({"container": "lxc"}, "container", "this is a lxc container"),
        ({"kexec_load_disabled": None}, "kexec", "no kexec support"),
        ({"kexec_load_disabled": "1"}, "kexec", "disabled until the next reboot"),
        ({"kexec_load_limit_reboot": "0"}, "kexec", "no kexec loads are left"),
        (
            {"mem_total": 1024 << 20},
            "memory",
            (
                "needs 1169 MiB (kernel 12 MiB + initrd 400 MiB + unpacked initrd 500 MiB"
                " + state 1 MiB + reserve 256 MiB) but MemTotal is 1024 MiB (swap does not count)"
            ),
        ),
        (
            {"mem_available": 300 << 20},
            "memory",
            "only 300 MiB available now, loading the image takes 413 MiB",
        ),
    ],
)
def test_each_refusal_says_what_is_wrong_and_how_to_fix_it(
    change: dict[str, object], name: str, says: str
) -> None:
    got = failures(dataclasses.replace(GOOD, **change))  # type: ignore[arg-type]
    assert list(got) == [name]
    assert says in got[name]


def test_lockdown_allows_only_kexec_file_load() -> None:
    locked = dataclasses.replace(GOOD, lockdown="integrity")
    assert failures(locked) == {}
    assert preflight.syscall_order("auto", locked) == ["file"]
    assert "--syscall load cannot work here" in failures(locked, "load")["lockdown"]


@pytest.mark.parametrize(
    ("release", "requested", "order"),
    [
        ("6.1.0-56-amd64", "auto", ["file", "load"]),
        ("6.18.2", "auto", ["file", "load"]),
        ("5.10.0-30-amd64", "auto", ["load", "file"]),
        ("4.19.0", "file", ["file"]),
        ("6.1.0", "load", ["load"]),
    ],
)
def test_syscall_order(release: str, requested: str, order: list[str]) -> None:
    facts = dataclasses.replace(GOOD, kernel_release=release)
    assert preflight.syscall_order(requested, facts) == order


def test_lockdown_mode_is_the_bracketed_word() -> None:
    assert preflight.lockdown_mode("none [integrity] confidentiality") == "integrity"
    assert preflight.lockdown_mode("[none] integrity confidentiality") == "none"
    assert preflight.lockdown_mode(None) is None


@pytest.mark.parametrize(
    ("files", "kind"),
    [
        ({".dockerenv": b""}, "docker"),
        ({"run/.containerenv": b""}, "podman"),
        ({"proc/1/environ": b"PATH=/bin\0container=lxc\0"}, "lxc"),
        ({"proc/1/environ": b"container=systemd-nspawn\0"}, "systemd-nspawn"),
        ({"proc/vz/veinfo": b""}, "openvz"),
        ({"proc/vz/veinfo": b"", "proc/bc/0": b""}, None),  # the OpenVZ host node itself
        ({"proc/1/environ": b"TERM=linux\0"}, None),
    ],
)
def test_container_detection(tmp_path: Path, files: dict[str, bytes], kind: str | None) -> None:
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    assert preflight.container_kind(tmp_path) == kind


def test_gather_reads_meminfo_and_the_kexec_switches(tmp_path: Path) -> None:
    for name, text in {
        "proc/meminfo": "MemTotal:        2048000 kB\nMemFree: 1 kB\nMemAvailable:    1024000 kB\n",
        "proc/sys/kernel/kexec_load_disabled": "1\n",
        "sys/kernel/security/lockdown": "none [integrity] confidentiality\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    facts = preflight.gather(tmp_path)
    assert (facts.mem_total, facts.mem_available) == (2048000 * 1024, 1024000 * 1024)
    assert (facts.kexec_load_disabled, facts.kexec_load_limit_reboot) == ("1", None)
    assert facts.lockdown == "integrity"
    assert not facts.systemd


# --- the launcher, with a recording kexec ----------------------------------------------------

FAKE_KEXEC = """#!/bin/sh
# Records each call; copies the initrd it is given; fails a syscall named in $FAIL.
echo "$*" >> "$LOG"
# A slow load (for interrupting it): $SLOW seconds.
case " $* " in *" --load "*) [ -n "${SLOW:-}" ] && exec sleep "$SLOW" ;; esac
# Stands in for what the kernel logs when it refuses an image.
if [ -n "${KMSG_MARK:-}" ]; then echo "$KMSG_MARK" > /dev/kmsg; fi
for a; do
  case $a in --initrd=*) cp "${a#--initrd=}" "$LOG.initrd" ;; esac
  case $a in --exec) cut -d' ' -f6 /proc/self/stat > "$LOG.exec-sid" ;; esac
done
case " $* " in
  *" --kexec-file-syscall --unload "* | *" --kexec-syscall --unload "*) exit 0 ;;
  *" --kexec-file-syscall "*)
    case ${FAIL:-} in *file*) echo "file: Invalid argument" >&2 && exit 1 ;; esac ;;
  *" --kexec-syscall "*)
    case ${FAIL:-} in *load*) echo "load: Operation not permitted" >&2 && exit 1 ;; esac ;;
esac
"""
FAKE_IP = f"""#!/bin/sh
# Answers like iproute2 on the recorded source host.
case "$*" in
  "--json addr") cat {FIXTURES}/source-host/network/addresses.json ;;
  "-N -4 --json route show table all") cat {FIXTURES}/source-host/network/routes-v4.json ;;
  "-N -6 --json route show table all") cat {FIXTURES}/source-host/network/routes-v6.json ;;
  "-N -4 --json rule") cat {FIXTURES}/source-host/network/rules-v4.json ;;
  "-N -6 --json rule") cat {FIXTURES}/source-host/network/rules-v6.json ;;
  "--json -details link") cat {FIXTURES}/source-host/network/links.json ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""
PRISTINE = gzip.compress(b"the installer's initrd", mtime=0)


def fake_tarball(tmp: Path) -> Path:
    tb = tmp / "kexec"
    (tb / "bin").mkdir(parents=True)
    (tb / "lib").mkdir()
    (tb / "lib/ld.so").write_bytes(b"")
    (tb / "bzImage").write_bytes(b"kernel" * 1000)
    (tb / "initrd").write_bytes(PRISTINE)
    for name, script in {"kexec": FAKE_KEXEC, "ip": FAKE_IP}.items():
        (tb / "bin" / name).write_text(script)
        (tb / "bin" / name).chmod(0o755)
    image = manifest.Manifest(
        machine="x86_64",
        kernel="bzImage",
        initrd="initrd",
        cmdline="init=/nix/store/x/init",
        initrd_unpacked_size=1 << 20,
        reserve=64 << 20,
        loader="lib/ld.so",
        libdir="lib",
        tools={n: manifest.Tool(f"bin/{n}", dynamic=False) for n in manifest.TOOLS},
    )
    (tb / manifest.FILE_NAME).write_text(image.to_json())
    return tb


def fake_root(tmp: Path) -> Path:
    root = tmp / "root"
    files = {
        # The files here belong to whoever runs the tests (nobody in the sandbox check, a build
        # user in Nix): admin is made that user, and StrictModes is off, as sshd would refuse
        # root's files of another owner; the StrictModes tests say otherwise themselves.
        "etc/passwd": "root:x:0:0::/root:/bin/sh\n"
        f"admin:x:{os.getuid()}:1000::/home/admin:/bin/sh\n",
        "etc/ssh/sshd_config": "StrictModes no\n",
        "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
        "etc/ssh/ssh_host_ed25519_key": "PRIVATE\n",
        "etc/ssh/ssh_host_ed25519_key.pub": "PUBLIC\n",
        "etc/ssh/ssh_host_ed25519_key-cert.pub": "not a host key\n",
        "root/.ssh/authorized_keys": f'command="echo no" {ED25519} root\n',
        "home/admin/.ssh/authorized_keys2": f"{ECDSA} admin\n",
        "etc/resolv.conf": "nameserver 127.0.0.53\n",
        "run/systemd/resolve/resolv.conf": "nameserver 192.0.2.53\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    log = tmp_path / "kexec.log"
    monkeypatch.setenv("LOG", str(log))
    monkeypatch.setenv("SUDO_USER", "admin")
    monkeypatch.delenv("FAIL", raising=False)
    return fake_tarball(tmp_path), fake_root(tmp_path), log


def plan(
    tb: Path, root: Path, facts: preflight.Facts = GOOD, extra_flags: str = ""
) -> launcher.Plan:
    """The launcher's plan on the fake root, with systemd not PID 1 (so: setsid)."""
    facts = dataclasses.replace(facts, systemd=False)
    return launcher.make_plan(
        tb, extra_flags=extra_flags, syscall="auto", delay=0, root=root, facts=facts
    )


def state_in(initrd: bytes, dest: Path) -> Path:
    """The state archive appended to the pristine initrd, extracted under dest."""
    assert initrd.startswith(PRISTINE)
    rest = initrd[len(PRISTINE) :]
    pad = -len(PRISTINE) % 4
    assert rest[:pad] == b"\0" * pad
    assert rest[pad:].count(b"TRAILER!!!") == 1
    extract(rest[pad:], dest)
    return dest / "nixos-images/state"


def wait_for(path: Path, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path} never appeared"


def test_launch_appends_the_state_and_boots_in_a_new_session(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    tb, root, log = setup
    p = plan(tb, root)
    assert p.ok, p.checks
    assert launcher.launch(p) == "loaded with kexec_file_load, boot scheduled via setsid"
    calls = log.read_text().splitlines()
    assert calls[0].startswith(f"--load {tb}/bzImage --initrd={tb}/.state-")
    assert "--command-line=init=/nix/store/x/init --kexec-file-syscall" in calls[0]
    assert (tb / "initrd").read_bytes() == PRISTINE
    assert not list(tb.glob(".state-*")), "the initrd with secrets must not stay behind"

    state = state_in(Path(f"{log}.initrd").read_bytes(), tmp_path / "x")
    key = state / "ssh/host-keys/ssh_host_ed25519_key"
    assert key.read_text() == "PRIVATE\n"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (state / "ssh/host-keys/ssh_host_ed25519_key.pub").stat().st_mode & 0o777 == 0o644
    assert not (state / "ssh/host-keys/ssh_host_ed25519_key-cert.pub").exists()
    # The sudo user's unrestricted key first; root's forced command stays forced.
    assert (state / "ssh/authorized_keys").read_text() == (
        f'{ECDSA} admin\ncommand="echo no" {ED25519} root\n'
    )
    assert (state / "ssh/authorized_keys").stat().st_mode & 0o777 == 0o600
    assert (state / "machine-id").read_text() == "0123456789abcdef0123456789abcdef\n"
    assert (state / "network/dns").read_text() == "192.0.2.53\n"  # behind resolved's stub
    recorded = FIXTURES / "source-host/network/addresses.json"
    assert (state / "network/addresses.json").read_bytes() == recorded.read_bytes()

    # The boot: `kexec --exec` ran detached, in a session of its own.
    wait_for(Path(f"{log}.exec-sid"))
    assert int(Path(f"{log}.exec-sid").read_text()) != os.getsid(0)


def test_running_twice_does_not_stack_state(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    tb, root, log = setup
    launcher.launch(plan(tb, root))
    (root / "root/.ssh/authorized_keys").unlink()
    launcher.launch(plan(tb, root))
    state = state_in(Path(f"{log}.initrd").read_bytes(), tmp_path / "x")
    assert (state / "ssh/authorized_keys").read_text() == f"{ECDSA} admin\n"


def test_kexec_load_is_tried_when_kexec_file_load_fails(
    setup: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    monkeypatch.setenv("FAIL", "file")
    assert launcher.launch(plan(tb, root)).startswith("loaded with kexec_load,")
    loads = [c for c in log.read_text().splitlines() if c.startswith("--load")]
    assert [c.split()[-1] for c in loads] == ["--kexec-file-syscall", "--kexec-syscall"]


def test_when_no_syscall_loads_it_says_why_and_leaves_nothing(
    setup: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    monkeypatch.setenv("FAIL", "file load")
    with pytest.raises(HelperError) as e:
        launcher.launch(plan(tb, root, extra_flags="--debug-flag 'a b'"))
    assert str(e.value) == (
        "kexec could not load the installer (kexec_file_load: file: Invalid argument;"
        " kexec_load: load: Operation not permitted)"
    )
    calls = log.read_text().splitlines()
    assert all(c.endswith("--debug-flag a b") for c in calls)
    assert not any("--exec" in c for c in calls)
    assert not list(tb.glob(".state-*"))


def fake_systemd_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """A systemd-run on PATH that records its arguments (one line a call) and runs script."""
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    tool = bin_dir / "systemd-run"
    tool.write_text(f'#!/bin/sh\necho "$*" >> "$LOG.systemd-run"\n{script}\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return Path(f"{os.environ['LOG']}.systemd-run")


def test_systemd_run_without_collect_is_tried_when_it_is_refused(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd before 236 (Ubuntu 16.04, Debian 9) has no --collect."""
    tb, root, _ = setup
    refuses_collect = (
        'case "$*" in *--collect*) echo "unrecognized option \'--collect\'" >&2; exit 1;; esac'
    )
    calls = fake_systemd_run(tmp_path, monkeypatch, refuses_collect)
    p = dataclasses.replace(plan(tb, root), facts=GOOD)  # systemd is PID 1
    assert launcher.launch(p).endswith("boot scheduled via systemd-run (without --collect)")
    first, second = calls.read_text().splitlines()
    assert first.startswith("--quiet --collect --unit=nixos-images-kexec-")
    assert second.startswith("--quiet --unit=nixos-images-kexec-")
    assert f'/bin/sh -c sleep "$0" || exit; sync; exec "$@" 0 {tb}/bin/kexec --exec' in second


def test_a_refusing_systemd_run_falls_back_to_a_session_of_its_own(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    calls = fake_systemd_run(tmp_path, monkeypatch, "exit 1")
    p = dataclasses.replace(plan(tb, root), facts=GOOD)
    assert launcher.launch(p).endswith("boot scheduled via setsid")
    assert len(calls.read_text().splitlines()) == 2
    wait_for(Path(f"{log}.exec-sid"))
    assert int(Path(f"{log}.exec-sid").read_text()) != os.getsid(0)


def test_a_failed_schedule_unloads_the_image(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    fake_systemd_run(tmp_path, monkeypatch, "exit 1")

    def no_session(*_: object) -> None:
        raise HelperError("/bin/sh: command not found")

    monkeypatch.setattr(process, "detach", no_session)
    p = dataclasses.replace(plan(tb, root), facts=GOOD)
    with pytest.raises(HelperError, match="command not found"):
        launcher.launch(p)
    assert log.read_text().splitlines()[-1] == "--kexec-file-syscall --unload"


@pytest.mark.parametrize(
    ("flags", "load_flags", "exec_flags"),
    [
        ("", (), ()),
        ("--no-sync", (), ("--no-sync",)),
        ("-x --no-ifdown", (), ("-x", "--no-ifdown")),
        (
            "--append='console=ttyS1 quiet' --reuse-cmdline",
            ("--append=console=ttyS1 quiet", "--reuse-cmdline"),
            (),
        ),
        ("-d --no-sync --initrd=/x", ("-d", "--initrd=/x"), ("-d", "--no-sync")),
        ("--nixos-images-reserve-mib=128 --no-sync", (), ("--no-sync",)),
    ],
)
def test_extra_flags_reach_the_kexec_call_they_belong_to(
    setup: tuple[Path, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: str,
    load_flags: tuple[str, ...],
    exec_flags: tuple[str, ...],
) -> None:
    """Loader options never reach `kexec -e` (which refuses them: no reboot), exec options
    do, and with --no-sync nothing calls sync."""
    tb, root, log = setup
    calls = fake_systemd_run(tmp_path, monkeypatch, "")
    p = dataclasses.replace(plan(tb, root, extra_flags=flags), facts=GOOD)
    launcher.launch(p)
    (load_call,) = [c for c in log.read_text().splitlines() if c.startswith("--load")]
    assert load_call.endswith(" ".join(("--kexec-file-syscall", *load_flags)))
    scheduled = calls.read_text()
    assert scheduled.rstrip().endswith(" ".join((f"{tb}/bin/kexec", "--exec", *exec_flags)))
    assert ("sync;" in scheduled) is ("--no-sync" not in exec_flags)
    assert "nixos-images-reserve" not in load_call + scheduled


def test_the_reserve_override_changes_the_memory_check(setup: tuple[Path, Path, Path]) -> None:
    tb, root, _ = setup
    small = dataclasses.replace(GOOD, mem_total=3 << 30, mem_available=3 << 30)
    default = plan(tb, root, facts=small)
    overridden = plan(tb, root, facts=small, extra_flags="--nixos-images-reserve-mib=4096")
    memory = {c.name: c for c in overridden.checks}["memory"]
    assert {c.name: c for c in default.checks}["memory"].ok
    assert not memory.ok
    assert "reserve 4096 MiB" in memory.detail
    assert launcher.report(overridden)["kexec"]["reserve_override_mib"] == 4096


@pytest.mark.parametrize("flags", ["--nixos-images-reserve-mib=lots", "--nixos-images-reserve-mib"])
def test_a_bad_reserve_override_is_one_line(setup: tuple[Path, Path, Path], flags: str) -> None:
    tb, root, _ = setup
    with pytest.raises(InputError, match="--nixos-images-reserve-mib=MIB needs a number"):
        plan(tb, root, extra_flags=flags)


def test_refusals_list_every_failed_check_and_change_nothing(
    setup: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tb, root, log = setup
    p = plan(tb, root, dataclasses.replace(GOOD, kexec_load_disabled="1", mem_total=64 << 20))
    assert not p.ok
    failed = {c.name for c in p.checks if not c.ok}
    assert failed == {"kexec", "memory"}
    data = launcher.report(p)
    assert data["carry_over"]["authorized_keys"] == [
        f"{ECDSA} admin",
        f'command="echo no" {ED25519} root',
    ]
    assert data["carry_over"]["dropped_options"] == []  # no cloud-init refusal to drop
    assert data["kexec"]["syscalls"] == ["kexec_file_load", "kexec_load"]
    text = launcher.render_report(data)
    assert "FAIL  kexec: kexec is disabled" in text
    assert "  network   10-restored-" in text
    assert not log.exists()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--syscall", "both"], "--syscall: 'both' is not one of auto, file, load"),
        (["--kexec-extra-flags", "--append='x"], "--kexec-extra-flags: No closing quotation"),
        ([], "--tarball-dir: missing: start the launcher through kexec/run"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    setup: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    says: str,
) -> None:
    tb, _, _ = setup
    tarball = [] if not argv else ["--tarball-dir", str(tb)]
    assert run_cli(launcher.main, ["kexec/run", *tarball, *argv]) == 2
    assert capsys.readouterr().err == f"kexec/run: {says}\n"


def test_a_damaged_manifest_is_one_line(
    setup: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tb, _, _ = setup
    data = json.loads((tb / "manifest.json").read_text())
    del data["tools"]["ip"]
    (tb / "manifest.json").write_text(json.dumps(data))
    assert run_cli(launcher.main, ["kexec/run", "--tarball-dir", str(tb), "--dry-run"]) == 2
    assert capsys.readouterr().err == f"kexec/run: {tb}/manifest.json: no 'ip' in tools\n"


def test_missing_tarball_files_are_a_failed_check(setup: tuple[Path, Path, Path]) -> None:
    tb, root, _ = setup
    (tb / "bin/ip").unlink()
    p = plan(tb, root)
    (tarball,) = [c for c in p.checks if not c.ok]
    assert tarball.detail == "missing bin/ip: unpack the tarball again, it is incomplete"
    assert p.state is None


def test_manifest_round_trips_and_rejects_wrong_types(tmp_path: Path) -> None:
    tb = fake_tarball(tmp_path)
    image = manifest.load(tb / manifest.FILE_NAME)
    assert image.tool_argv(tb, "kexec") == [f"{tb}/bin/kexec"]
    dynamic = dataclasses.replace(image, tools={"kexec": manifest.Tool("bin/kexec", dynamic=True)})
    assert dynamic.tool_argv(tb, "kexec") == [
        f"{tb}/lib/ld.so",
        "--library-path",
        f"{tb}/lib",
        f"{tb}/bin/kexec",
    ]
    data = json.loads(image.to_json())
    data["reserve"] = True
    (tb / manifest.FILE_NAME).write_text(json.dumps(data))
    with pytest.raises(InputError, match="'reserve' must be a int"):
        manifest.load(tb / manifest.FILE_NAME)


def test_launch_refuses_a_plan_that_failed_its_checks(setup: tuple[Path, Path, Path]) -> None:
    tb, root, log = setup
    p = plan(tb, root, dataclasses.replace(GOOD, container="docker"))
    with pytest.raises(HelperError, match="not every check passed"):
        launcher.launch(p)
    assert not log.exists()


def test_the_delay_defaults_to_the_tarballs(setup: tuple[Path, Path, Path]) -> None:
    tb, root, _ = setup
    data = json.loads((tb / "manifest.json").read_text())
    facts = dataclasses.replace(GOOD, systemd=False)

    def delay() -> int:
        (tb / "manifest.json").write_text(json.dumps(data))
        p = launcher.make_plan(
            tb, extra_flags="", syscall="auto", delay=None, root=root, facts=facts
        )
        return p.delay

    assert delay() == 6
    data["delay"] = 9  # built with nixos-images.kexec.delay = 9
    assert delay() == 9
    del data["delay"]  # a tarball from before the field existed
    assert delay() == 6
    data["delay"] = -1
    with pytest.raises(InputError, match="'delay' must not be negative"):
        delay()


def test_a_refused_load_shows_what_the_kernel_logged(
    setup: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The kernel's own log (/dev/kmsg, read without dmesg) explains most refusals."""
    require([] if os.access("/dev/kmsg", os.W_OK) else ["a writable /dev/kmsg"], "the kmsg test")
    tb, root, _ = setup
    mark = f"nixos-images test {os.getpid()} {time.time_ns()}: image rejected"
    earlier = f"{mark} (before the launcher ran)"
    Path("/dev/kmsg").write_text(earlier + "\n")
    monkeypatch.setenv("FAIL", "file load")
    monkeypatch.setenv("KMSG_MARK", mark)
    with pytest.raises(HelperError, match="kexec could not load the installer"):
        launcher.launch(plan(tb, root))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "kernel log:"
    # Both attempts logged it; what the kernel logged before the launcher ran is left out.
    assert err.count(f"  {mark}") == 2
    assert f"  {earlier}" not in err


def test_under_lockdown_only_file_load_is_tried_and_the_error_says_why(
    setup: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    monkeypatch.setenv("FAIL", "file")
    locked = dataclasses.replace(GOOD, lockdown="integrity")
    with pytest.raises(HelperError) as e:
        launcher.launch(plan(tb, root, locked))
    assert str(e.value).startswith("kexec could not load the installer (kexec_file_load: ")
    assert str(e.value).endswith("disable Secure Boot in the firmware, then run this again")
    loads = [c for c in log.read_text().splitlines() if c.startswith("--load")]
    assert [c.split()[-1] for c in loads] == ["--kexec-file-syscall"]


# --- reading the sudo user's files as root ----------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "symlink to a secret", "symlink to /dev/zero", "huge"])
def test_a_hostile_key_file_is_left_out_with_a_reason(tmp_path: Path, kind: str) -> None:
    """The sudo user controls their ~/.ssh: a FIFO must not hang the launcher, a link must
    not make root read (and report) a root-only file, a huge file must not eat the RAM."""
    root = fake_root(tmp_path)
    keys = root / "home/admin/.ssh/authorized_keys2"
    keys.unlink()
    secret = root / "etc/shadow"
    secret.write_text(f"root:{ED25519}:19000::::::\n")
    secret.chmod(0o600)
    if kind == "fifo":
        os.mkfifo(keys)
    elif kind == "symlink to a secret":
        keys.symlink_to(secret)
    elif kind == "symlink to /dev/zero":
        keys.symlink_to("/dev/zero")
    else:
        with keys.open("wb") as f:
            f.truncate(64 << 30)  # sparse: 64 GiB that take no disk
    out = collect.Collected()
    started = time.monotonic()
    collect.collect_keys(root, {"SUDO_USER": "admin"}, out)
    assert time.monotonic() - started < 5
    assert [k.line() for k in out.keys] == [f'command="echo no" {ED25519} root']
    (note,) = [n for n in out.notes if "authorized_keys2" in n]
    reason = {"fifo": "not a regular file", "huge": "larger than 1048576 bytes"}
    assert note.endswith(f"left out ({reason.get(kind, 'a symbolic link')})")
    assert "19000" not in repr(out)


def test_a_key_file_that_is_not_utf8_is_read_with_replacement(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "home/admin/.ssh/authorized_keys2").write_bytes(
        f"# caf\xe9 in Latin-1\n{ECDSA} admin\n".encode("latin-1")
    )
    out = collect.Collected()
    collect.collect_keys(root, {"SUDO_USER": "admin"}, out)
    assert f"{ECDSA} admin" in [k.line() for k in out.keys]


# --- no way in after the kexec ------------------------------------------------------------


def without_keys(root: Path) -> None:
    (root / "root/.ssh/authorized_keys").write_text("# nothing\n")
    (root / "home/admin/.ssh/authorized_keys2").write_text(f"{ED25519.split(maxsplit=1)[0]} AAAA\n")


def test_no_usable_key_and_no_console_password_is_refused(
    setup: tuple[Path, Path, Path],
) -> None:
    """Else the machine boots an installer nobody can log in to, until a power cycle."""
    tb, root, log = setup
    without_keys(root)
    keys = {c.name: c for c in plan(tb, root).checks}["keys"]
    assert not keys.ok
    assert keys.detail.startswith("no usable ssh key would be carried over (read: /root/")
    assert keys.detail.endswith("or pass --no-keys-ok if you can reach the console")
    assert not plan(tb, root).ok
    assert not log.exists()


def test_no_keys_is_fine_with_a_console_password_or_when_told(
    setup: tuple[Path, Path, Path],
) -> None:
    tb, root, _ = setup
    without_keys(root)
    told = launcher.make_plan(
        tb, extra_flags="", syscall="auto", delay=0, root=root, facts=GOOD, no_keys_ok=True
    )
    assert told.ok, told.checks
    image = manifest.load(tb / manifest.FILE_NAME)
    (tb / manifest.FILE_NAME).write_text(
        dataclasses.replace(image, console_password=True).to_json()
    )
    shown = plan(tb, root)
    assert shown.ok, shown.checks
    assert {c.name: c.detail for c in shown.checks}["keys"] == (
        "none; the console shows a root password"
    )


def test_a_full_disk_beside_the_tarball_is_refused_before_anything_is_written(
    setup: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 20))
    p = plan(tb, root)
    space = {c.name: c for c in p.checks}["space"]
    assert not space.ok
    assert space.detail.startswith(f"{tb} has 1 MiB free, the initrd with the state needs ")
    with pytest.raises(HelperError):
        launcher.launch(p)
    assert not list(tb.glob(".state-*"))
    assert not log.exists()


# --- interrupted and concurrent runs ---------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_while_loading_leaves_the_host_as_it_was(
    setup: tuple[Path, Path, Path], tmp_path: Path, sig: signal.Signals
) -> None:
    """Killed (or the ssh connection dropped) before the boot is scheduled: no state copy
    with the host keys stays behind, and whatever got loaded is unloaded."""
    tb, root, log = setup
    saved = tmp_path / "plan.pickle"
    saved.write_bytes(pickle.dumps(plan(tb, root)))
    driver = (
        "import pickle, sys; from nixos_images import cli; from nixos_images.kexec import launcher;"
        " p = pickle.loads(open(sys.argv[1], 'rb').read());"
        " cli.run(lambda: print(launcher.launch(p)), 'kexec/run')"
    )
    env = {**os.environ, "SLOW": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-c", driver, str(saved)], env=env, stderr=subprocess.PIPE, text=True
    )
    wait_for(log)  # kexec --load has started, with the state copy written
    assert list(tb.glob(".state-*"))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    if sig != signal.SIGINT:
        assert (
            err == f"kexec/run: stopped by {sig.name}: the host is as it was, nothing will boot\n"
        )
    assert not list(tb.glob(".state-*"))
    calls = log.read_text().splitlines()
    assert "--kexec-file-syscall --unload" in calls
    assert not [c for c in calls if "--exec" in c]


def test_a_second_launcher_refuses_while_the_first_holds_the_lock(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    monkeypatch.setattr(launcher, "LOCK_DIRS", (tmp_path,))
    with (tmp_path / launcher.LOCK_NAME).open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(HelperError, match="another kexec/run is loading the installer"):
            launcher.launch(plan(tb, root))
    assert not log.exists()
    assert not list(tb.glob(".state-*"))
    launcher.launch(plan(tb, root))  # and once the first is done, it goes ahead


def test_an_image_already_loaded_is_a_failed_check(setup: tuple[Path, Path, Path]) -> None:
    """After the first launcher scheduled its boot, the loaded image keeps the next one out."""
    tb, root, _ = setup
    (root / "sys/kernel").mkdir(parents=True)
    (root / "sys/kernel/kexec_loaded").write_text("1\n")
    pending = {c.name: c for c in plan(tb, root).checks}["pending"]
    assert not pending.ok
    assert "already loaded" in pending.detail
    assert "kexec -u" in pending.detail


# --- which files the old sshd read, and whose logins it allowed (finding 13) --------------


def collected_keys(root: Path) -> tuple[list[str], list[str]]:
    out = collect.Collected()
    collect.collect_keys(root, {"SUDO_USER": "admin"}, out)
    return [k.line() for k in out.keys], out.notes


def test_permit_root_login_no_leaves_roots_keys_out(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text("# Debian\nPermitRootLogin no\n")
    keys, notes = collected_keys(root)
    assert keys == [f"{ECDSA} admin"]
    assert "PermitRootLogin no (/etc/ssh/sshd_config): root's keys are left out" in notes


def test_forced_commands_only_carries_only_roots_forced_command_keys(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text(
        "PermitRootLogin forced-commands-only\nStrictModes no\n"
    )
    (root / "root/.ssh/authorized_keys2").write_text(f"{ECDSA} plain-root\n")
    keys, _ = collected_keys(root)
    assert keys == [f"{ECDSA} admin", f'command="echo no" {ED25519} root']


def test_only_the_files_authorized_keys_file_names_count(tmp_path: Path) -> None:
    """RHEL's sshd_config names .ssh/authorized_keys alone: authorized_keys2 never counted."""
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text(
        "Include /etc/ssh/sshd_config.d/*.conf\nAuthorizedKeysFile .ssh/authorized_keys\n"
        "Match User admin\n  AuthorizedKeysFile .ssh/authorized_keys2\n"
    )
    (root / "etc/ssh/sshd_config.d").mkdir()
    (root / "etc/ssh/sshd_config.d/50-site.conf").write_text("StrictModes no\n")
    keys, _ = collected_keys(root)
    assert keys == [f'command="echo no" {ED25519} root']  # admin's key is in authorized_keys2


def test_each_user_is_read_with_the_settings_sshd_gave_that_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Match User block gave admin /etc/ssh/keys/%u: that file counts for admin alone."""
    root = fake_root(tmp_path)
    (root / "etc/ssh/keys").mkdir()
    (root / "etc/ssh/keys/admin").write_text(f"{ECDSA} from-match\n")
    (root / "etc/ssh/keys/root").write_text(f"{ED25519} never-read\n")
    plain = sshd_config.Settings(strict_modes=False, source="sshd -T")
    matched = sshd_config.Settings(
        authorized_keys_files=("/etc/ssh/keys/%u",), strict_modes=False, source="sshd -T"
    )
    asked: list[str] = []

    def effective(_: Path, user: str = "root") -> sshd_config.Settings:
        asked.append(user)
        return matched if user == "admin" else plain

    monkeypatch.setattr(sshd_config, "effective", effective)
    keys, _ = collected_keys(root)
    assert asked == ["root", "admin"]
    assert keys == [f"{ECDSA} from-match", f'command="echo no" {ED25519} root']


def test_strict_modes_leaves_out_what_sshd_would_not_read(tmp_path: Path) -> None:
    require([] if os.geteuid() == 0 else ["root"], "the StrictModes check (files of root)")
    root = fake_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text("# StrictModes yes: OpenSSH's default\n")
    (root / "home/admin/.ssh").chmod(0o777)
    keys, notes = collected_keys(root)
    assert keys == [f'command="echo no" {ED25519} root']
    assert any("StrictModes: " in n and "writable by group or others" in n for n in notes)
    (root / "etc/ssh/sshd_config").write_text("StrictModes no\n")
    assert collected_keys(root)[0] == [f"{ECDSA} admin", f'command="echo no" {ED25519} root']


def test_an_authorized_keys_command_is_named_when_no_key_is_left(
    setup: tuple[Path, Path, Path],
) -> None:
    """EC2 Instance Connect, OS Login: the old sshd asked a program; the installer cannot."""
    tb, root, _ = setup
    without_keys(root)
    (root / "etc/ssh/sshd_config").write_text(
        "AuthorizedKeysCommand /opt/aws/bin/eic_run_authorized_keys %u %f\n"
    )
    keys = {c.name: c for c in plan(tb, root).checks}["keys"]
    assert not keys.ok
    assert "your logins came from /opt/aws/bin/eic_run_authorized_keys %u %f" in keys.detail


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


def test_a_latin1_resolv_conf_and_passwd_are_read_not_refused(
    setup: tuple[Path, Path, Path],
) -> None:
    tb, root, _ = setup
    (root / "etc/resolv.conf").write_bytes(b"# r\xe9seau du bureau\nnameserver 127.0.0.53\n")
    passwd = (root / "etc/passwd").read_bytes()
    (root / "etc/passwd").write_bytes(passwd + b"j\xf6rg:x:1001:1001:J\xf6rg:/home/j:/bin/sh\n")
    p = plan(tb, root)
    assert p.ok, p.checks
    assert p.state is not None
    assert p.state.files["network/dns"][0] == b"192.0.2.53\n"


LINE_PARTS = st.sampled_from(
    [ED25519, ECDSA, "command=", '"echo x"', "from=", '"192.0.2.0/24"', "restrict", ",", " ",
     "\t", "\r", "\x0b", "\x1b[2J", "\u2028", "\xa0", "#", "no-pty", "cert-authority", "x"]
)  # fmt: skip


@given(st.lists(LINE_PARTS, max_size=8).map("".join))
# Found by a random seed in a Nix build: a comment ending in a line break only Python sees.
@example(f"{ED25519} x\u2028")
@example(f"{ED25519}\t\x85\u2029")
def test_any_line_is_skipped_or_written_back_as_sshd_reads_it(line: str) -> None:
    """Whatever the line: no crash; a key that is written back parses to itself, with no
    control character and nothing but single spaces between its fields."""
    try:
        key = parse_line(line)
    except KeyLineError:
        return
    if key is None:
        return
    written = key.line()
    assert not re.search(r"[\x00-\x1f\x7f\u2028\u2029]", written)
    assert parse_line(written) == key


def test_a_network_dump_that_does_not_restore_names_the_dump_not_a_temp_path(
    setup: tuple[Path, Path, Path],
) -> None:
    tb, root, _ = setup
    broken = FAKE_IP.replace(
        '"--json -details link") cat',
        '"--json -details link") echo \'[{"ifindex": "x"}]\'; true ||',
    )
    (tb / "bin/ip").write_text(broken)
    state = {c.name: c for c in plan(tb, root).checks}["state"]
    assert not state.ok
    assert state.detail == (
        "cannot read the host's state: the network as the tarball's ip shows it:"
        " links.json: item 0: 'ifindex' must be an integer"
    )
    assert "/tmp" not in state.detail
