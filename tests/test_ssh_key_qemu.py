"""`kexec/run --ssh-key`: the key given logs in to the installer after the hand-off.

The old host (a busybox initramfs on Debian's kernel, tests/test_kexec_qemu.py) runs the real
kexec/run with a key of the test's own; the stand-in installer it boots runs the real hand-off
script (nix/kexec/handoff.sh, which puts the carried keys in root's authorized_keys) and
Debian's real sshd, configured as the installer's (keys only, root by key). The test then logs
in from outside the guest, through QEMU's port forwarding, checking the host key the old host
had; a key nobody gave is refused.
"""

from __future__ import annotations

import shlex
import subprocess
from typing import TYPE_CHECKING

import pytest

import qemu
import sshd
from conftest import require
from test_kexec_qemu import Host, assemble_tarball, keygen, source_host

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.real

ADDRESS = "192.0.2.10"  # the old host's (SOURCE_NETWORK), set again by the stand-in
# QEMU's user network shaped like the old host's: 192.0.2.0/24, its gateway at .1.
NET = ",net=192.0.2.0/24,host=192.0.2.1,dns=192.0.2.53"

STANDIN = (
    qemu.INIT_PRELUDE
    + f"""
say TARGET-UP
insmod /lib/modules/e1000.ko
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
ip link set lo up
ip link set eth0 up
ip addr add {ADDRESS}/24 dev eth0
ip route add default via 192.0.2.1
sh /handoff.sh /nixos-images/state / /run/nixos-images/state
mkdir -p /run/sshd && chmod 0755 /run/sshd
/usr/sbin/sshd -E /tmp/sshd.log
say SSHD-UP $?
while [ ! -e /tmp/done ] && [ "$(cut -d. -f1 /proc/uptime)" -lt 200 ]; do sleep 1; done
poweroff -f
"""
)
# The installer's sshd as NixOS configures it (nix/installer.nix): keys only, root by key.
SSHD_CONFIG = b"UsePAM no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n"


def ssh(port: int, key: Path, known_hosts: Path, command: str) -> subprocess.CompletedProcess[str]:
    """`ssh root@` the guest with key, its host key checked against known_hosts."""
    argv = [
        "ssh", "-i", str(key), "-p", str(port), "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "HostKeyAlgorithms=ssh-ed25519", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "root@127.0.0.1", command,
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)


def test_the_key_given_logs_in_to_the_installer(tmp_path: Path) -> None:
    require(qemu.missing_tools() + sshd.missing(), "the --ssh-key QEMU test")
    debian = qemu.debian()
    e1000 = debian.modules / "kernel/drivers/net/ethernet/intel/e1000/e1000.ko"
    standin = tmp_path / "standin.gz"
    files: dict[str, bytes | Path] = {
        "/init": STANDIN.encode(),
        "/handoff.sh": qemu.handoff_script(),
        "/lib/modules/e1000.ko": e1000,
        "/etc/passwd": PASSWD,
        "/etc/ssh/sshd_config": SSHD_CONFIG,
        **sshd.initramfs_files(),
    }
    qemu.initramfs(standin, files, compress=True)
    tarball = assemble_tarball(debian, tmp_path, standin)
    host = Host(tmp_path)
    keys = tmp_path / "given"
    keys.mkdir()
    _, given = keygen(keys, "ed25519", "given")
    keygen(keys, "ed25519", "stranger")
    scenario = f"run RUN --ssh-key {shlex.quote(given.decode().strip())}\n"
    initrd = source_host(debian, tmp_path, host, scenario, extra={"/kexec.tar.gz": tarball})
    known_hosts = tmp_path / "known_hosts"
    with qemu.running(tmp_path, debian.kernel, initrd, guest=ADDRESS, net=NET) as guest:
        known_hosts.write_text(
            f"[127.0.0.1]:{guest.ssh_port} "
            + " ".join(host.host_keys["ssh_host_ed25519_key.pub"].decode().split()[:2])
            + "\n"
        )
        run = guest.wait_for("SSHD-UP")
        assert run.values("SSHD-UP") == ["0"], run.lines
        stranger = ssh(guest.ssh_port, keys / "stranger", known_hosts, "true")
        logged_in = ssh(guest.ssh_port, keys / "given", known_hosts, "id -u; touch /tmp/done")
    assert run.values("TARGET-UP") == [""], run.lines  # the old host kexec'ed into it
    assert stranger.returncode == 255, stranger
    assert "Permission denied" in stranger.stderr
    # The given key logs in as root, and the host key is the old host's (checked strictly).
    assert (logged_in.returncode, logged_in.stdout) == (0, "0\n"), logged_in.stderr
