"""A host and a kexec tarball to run the launcher against, in a temporary directory: keys,
an sshd_config, a network as a stand-in ip shows it, and a recording stand-in for kexec (this
machine cannot kexec; the real one runs in QEMU, test_kexec_qemu.py).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from conftest import FIXTURES, require
from nixos_images.kexec import launcher, manifest, preflight
from nixos_images.kexec.models import SyscallChoice
from nixos_images.kexec.plan import Plan, make_plan

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFp1M8Jq1Tn8dN0bYH3ci6UvUbdXJOo1mM2OSCHbiWO6"


ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPz2mFAuBTsLk"
    "C4qmq8bnaT9jCsSzE5mt1n7GpkmK4uHgjxXSFyKyWj/OUtw+5vnwJn9JYjZNmcmYtX6KBrFoUc="
)


def extract(archive: bytes, dest: Path) -> None:
    require([] if shutil.which("cpio") else ["cpio"], "reading archives back with GNU cpio")
    dest.mkdir()
    subprocess.run(
        ["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
        input=archive,
        cwd=dest,
        check=True,
    )


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


# admin owns the files the tests create where that is not root (the sandbox's nobody); as
# root, admin is a uid of its own: a second uid 0 would be root to sshd.
ADMIN_UID = os.getuid() or 1000


def fake_root(tmp: Path) -> Path:
    root = tmp / "root"
    files = {
        # The files here belong to whoever runs the tests (nobody in the sandbox check, a build
        # user in Nix): admin is made that user, and StrictModes is off, as sshd would refuse
        # root's files of another owner; the StrictModes tests say otherwise themselves.
        "etc/passwd": f"root:x:0:0::/root:/bin/sh\nadmin:x:{ADMIN_UID}:1000::/home/admin:/bin/sh\n",
        "etc/ssh/sshd_config": "StrictModes no\n",
        "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
        "etc/ssh/ssh_host_ed25519_key": "PRIVATE\n",
        "etc/ssh/ssh_host_ed25519_key.pub": "PUBLIC\n",
        "etc/ssh/ssh_host_ed25519_key-cert.pub": "not a host key\n",
        "root/.ssh/authorized_keys": f'command="echo no" {ED25519} root\n',
        "home/admin/.ssh/authorized_keys2": f"{ECDSA} admin\n",
        "etc/resolv.conf": "nameserver 127.0.0.53\n",
        "run/systemd/resolve/resolv.conf": "nameserver 192.0.2.53\n",
        # The users' login shell: sshd opens no session without it.
        "bin/sh": "#!/bin/dash\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "bin/sh").chmod(0o755)
    return root


def kexec_setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """The fake tarball, the fake root and the recording kexec's log, with the environment
    kexec/run sees under sudo."""
    log = tmp / "kexec.log"
    # The lock of this test's launcher, not of every kexec/run on the machine (/run's): two
    # test runs at once must not refuse each other.
    monkeypatch.setattr(launcher, "LOCK_DIRS", (tmp,))
    monkeypatch.setenv("LOG", str(log))
    monkeypatch.setenv("SUDO_USER", "admin")
    monkeypatch.delenv("FAIL", raising=False)
    return fake_tarball(tmp), fake_root(tmp), log


def plan(tb: Path, root: Path, facts: preflight.Facts = GOOD, extra_flags: str = "") -> Plan:
    """The launcher's plan on the fake root, with systemd not PID 1 (so: setsid)."""
    facts = dataclasses.replace(facts, systemd=False)
    return make_plan(
        tb, extra_flags=extra_flags, syscall=SyscallChoice.AUTO, delay=0, root=root, facts=facts
    )


def without_keys(root: Path) -> None:
    (root / "root/.ssh/authorized_keys").write_text("# nothing\n")
    (root / "home/admin/.ssh/authorized_keys2").write_text(f"{ED25519.split(maxsplit=1)[0]} AAAA\n")


def on_fake_host(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """kexec/run's command line plans on the fake host, with its facts (root, no systemd):
    not this machine's, which an unprivileged build (the Nix check phase) cannot read."""
    facts = dataclasses.replace(GOOD, systemd=False)
    monkeypatch.setattr(launcher, "make_plan", functools.partial(make_plan, root=root, facts=facts))
