"""The kexec hand-off for real: a busybox "host" in QEMU runs kexec/run from a tarball made by
assemble-kexec-tarball and kexecs into a stand-in installer, which runs nix/kexec/handoff.sh.

The source host has no Python and no dynamic loader, like Alpine or a minimal NixOS: the
bundled interpreter must bring its own. Debian's kernel plays both the host's and the
installer's kernel; the stand-in initrd (busybox and the hand-off script, gzip-compressed)
replaces the NixOS initrd, which cannot be built here. Each guest boot takes 20-40 s.
"""

from __future__ import annotations

import base64
import json
import secrets
import shlex
import struct
import subprocess
from pathlib import Path

import pytest

import planted
import qemu
from conftest import require
from nixos_images.kexec import manifest
from nixos_images.restore_network import generate
from nixos_images.state import StateDir
from nixos_images.tarball import assemble, elf

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parent.parent
CMDLINE = "console=ttyS0 panic=-1 loglevel=4"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1000::/home/admin:/bin/sh\n"
FORCED = (
    "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as"
    ' the user \\"admin\\" rather than the user \\"root\\".\';echo;sleep 10;exit 142"'
)


@pytest.fixture(scope="module")
def debian() -> qemu.Debian:
    require(qemu.missing_tools(), "the QEMU kexec tests")
    return qemu.debian()


def keygen(tmp: Path, kind: str, name: str) -> tuple[bytes, bytes]:
    path = tmp / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return path.read_bytes(), path.with_suffix(".pub").read_bytes()


def sk_key() -> str:
    """A security-key public key line (no hardware needed to write one down)."""

    def string(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    kind = b"sk-ssh-ed25519@openssh.com"
    blob = string(kind) + string(secrets.token_bytes(32)) + string(b"ssh:")
    return f"{kind.decode()} {base64.b64encode(blob).decode()} yubikey"


class Host:
    """The source host's identity, and what the installer should end up with."""

    def __init__(self, tmp: Path) -> None:
        keydir = tmp / "keys"
        keydir.mkdir()
        self.host_keys: dict[str, bytes] = {}
        for kind in ("ed25519", "ecdsa", "rsa"):
            private, public = keygen(keydir, kind, f"ssh_host_{kind}_key")
            self.host_keys[f"ssh_host_{kind}_key"] = private
            self.host_keys[f"ssh_host_{kind}_key.pub"] = public
        cloud = keygen(keydir, "ed25519", "cloud")[1].decode().strip()
        limited = keygen(keydir, "ed25519", "limited")[1].decode().strip()
        admin = keygen(keydir, "ecdsa", "admin")[1].decode().strip()
        sk = sk_key()
        self.machine_id = secrets.token_hex(16)
        self.files: dict[str, bytes | Path] = {
            "/etc/passwd": PASSWD,
            "/etc/machine-id": f"{self.machine_id}\n".encode(),
            "/etc/resolv.conf": b"nameserver 192.0.2.53\n",
            "/root/.ssh/authorized_keys": f"{FORCED} {cloud}\n".encode(),
            "/root/.ssh/authorized_keys2": f'from="192.0.2.0/24",restrict {limited}\n{sk}\n'.encode(),  # noqa: E501
            # Not among OpenSSH's default AuthorizedKeysFile (this host has no sshd_config).
            "/etc/ssh/authorized_keys.d/root": keygen(keydir, "ed25519", "unread")[1],
            "/home/admin/.ssh/authorized_keys": f"# admin\n{admin}\nnot a key\n".encode(),
        }
        self.files.update({f"/etc/ssh/{n}": data for n, data in self.host_keys.items()})
        # The key policy: what the old sshd accepted for root or the sudo user, restrictions kept.
        self.expected_keys = [
            admin,  # the sudo user's unrestricted key first
            cloud,  # cloud-init's refusal gone, with its template's options
            sk,
            f'from="192.0.2.0/24",restrict {limited}',  # restrictions kept
        ]


def tarball(debian: qemu.Debian, tmp: Path, target_init: str) -> Path:
    """A kexec tarball from our assembly code: Debian's kernel, a stand-in installer initrd."""
    standin = tmp / "standin.gz"
    # A compressed initrd whose length is not a multiple of 4, as real ones mostly are: the
    # state archive only survives if the launcher pads the initrd before appending it.
    for filler in range(16):
        files: dict[str, bytes | Path] = {
            "/init": target_init.encode(),
            "/handoff.sh": qemu.handoff_script(),
            "/filler": b"x" * filler,
        }
        qemu.initramfs(standin, files, compress=True)
        if standin.stat().st_size % 4:
            break
    assert standin.stat().st_size % 4
    return assemble_tarball(debian, tmp, standin)


def assemble_tarball(
    debian: qemu.Debian,
    tmp: Path,
    standin: Path,
    *,
    initrd_unpacked_size: int | None = None,
    reserve: int = manifest.DEFAULT_RESERVE,
) -> Path:
    """tmp/kexec.tar.gz from our assembly code: Debian's kernel and the stand-in initrd given.
    A zstd initrd needs its unpacked size given, as the Nix build gives it (bench/kexec_ram.py
    passes both sizes)."""
    out = tmp / "kexec.tar.gz"
    assemble.assemble(
        out,
        kernel=debian.kernel,
        initrd=standin,
        cmdline=CMDLINE,
        python=qemu.BUNDLE_PYTHON,
        python_path=[REPO / "helpers/src", *qemu.site_packages()],
        tools={"kexec": debian.kexec, "ip": Path("/usr/bin/ip")},
        library_path=[*qemu.MULTIARCH, debian.kexec_libs],
        initrd_unpacked_size=initrd_unpacked_size,
        reserve=reserve,
    )
    return out


TARGET_INIT = (
    qemu.INIT_PRELUDE
    + """
say TARGET-UP
say CMDLINE "$(cat /proc/cmdline)"
[ -d /nixos-images/state ] && say STATE-FOUND
mkdir -p /target
sh /handoff.sh /nixos-images/state /target /run/nixos-images/state
tar -C / -czf /tmp/handed.tgz target run/nixos-images
base64 /tmp/handed.tgz | while read -r line; do say HANDED "$line"; done
say DONE
poweroff -f
"""
)

SOURCE_NETWORK = """
insmod /lib/modules/e1000.ko
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
ip link set eth0 up
ip addr add 192.0.2.10/24 dev eth0
ip -6 addr add 2001:db8:1::10/64 dev eth0
ip route add default via 192.0.2.1
say MAC "$(cat /sys/class/net/eth0/address)"
say MEMTOTAL "$(sed -n 's/^MemTotal: *\\([0-9]*\\) kB$/\\1/p' /proc/meminfo)"
[ -e /lib64/ld-linux-x86-64.so.2 ] && say HOST-HAS-LOADER
command -v python3 > /dev/null && say HOST-HAS-PYTHON
mkdir -p /root/kexec && tar -C /root/kexec -xzf /kexec.tar.gz
state() { find /root/kexec | sort | md5sum | cut -d' ' -f1; }
# run KEY ARGS...: kexec/run as nixos-anywhere starts it, then report what happened. It runs
# from /tmp/caller, where modules are planted (PLANTED says how many of them Python imported).
run() {
  key=$1
  shift
  (cd /tmp/caller && SUDO_USER=admin TMPDIR=/root/kexec setsid /root/kexec/kexec/run "$@") \
    > /tmp/out 2> /tmp/err
  say "$key-RC" $?
  say "$key-PLANTED" "$(find /tmp/caller -name '*.ran' | wc -l)"
  while read -r l; do say "$key-OUT" "$l"; done < /tmp/out
  while read -r l; do say "$key-ERR" "$l"; done < /tmp/err
  say "$key-LOADED" "$(cat /sys/kernel/kexec_loaded)"
  say "$key-LEFTOVERS" "$(ls -a /root/kexec/kexec | grep -c '^\\.state')"
}
"""


def source_host(
    debian: qemu.Debian,
    tmp: Path,
    host: Host,
    scenario: str,
    wait: int = 120,
    extra: dict[str, bytes | Path] | None = None,
) -> Path:
    """The host's initramfs: network, identity, the tarball (and extra files); after the
    scenario it waits `wait` seconds for a kexec, then says NO-KEXEC and powers off."""
    end = f"\nsleep {wait}\nsay NO-KEXEC\npoweroff -f\n"
    init = qemu.INIT_PRELUDE + SOURCE_NETWORK + scenario + end
    e1000 = debian.modules / "kernel/drivers/net/ethernet/intel/e1000/e1000.ko"
    out = tmp / "source.cpio"
    files = {
        **host.files,
        **{f"/tmp/caller/{name}": body for name, body in planted.MODULES.items()},
        "/init": init.encode(),
        "/lib/modules/e1000.ko": e1000,
        **(extra or {}),
    }
    if "/kexec.tar.gz" not in files:  # extra may bring a tarball of its own
        files["/kexec.tar.gz"] = tarball(debian, tmp, TARGET_INIT)
    qemu.initramfs(out, files)
    return out


def handed_over(run: qemu.GuestRun) -> dict[str, tuple[int, int, bytes | None]]:
    """What the stand-in installer received: path -> (mode, uid, content)."""
    files = run.tar("HANDED")
    return {
        name: (member.mode & 0o7777, member.uid, data) for name, (member, data) in files.items()
    }


@pytest.mark.parametrize(
    ("args", "syscall"),
    [
        # --append= adds to the installer's own command line.
        (["--kexec-extra-flags", "--append=nit.extra=yes"], "kexec_file_load"),
        # What nixos-anywhere passes when it has no extra flags; and a key given with
        # --ssh-key (the test adds it), beside the old host's.
        (["--kexec-extra-flags", "", "--syscall", "load", "--ssh-key"], "kexec_load"),
    ],
    ids=["file-load", "load"],
)
def test_kexec_hands_identity_and_network_to_the_installer(
    debian: qemu.Debian, tmp_path: Path, args: list[str], syscall: str
) -> None:
    host = Host(tmp_path)
    expected_keys = host.expected_keys
    if args[-1] == "--ssh-key":
        given = keygen(tmp_path / "keys", "ed25519", "given")[1].decode().strip()
        args = [*args, given]
        # Unrestricted, so among the keys that open a shell, after the old host's.
        expected_keys = [*expected_keys[:3], given, *expected_keys[3:]]
    initrd = source_host(debian, tmp_path, host, f"run RUN {shlex.join(args)}\n")
    run = qemu.boot(tmp_path, debian.kernel, initrd)

    # The source side: nixos-anywhere's contract, a loaded image, no secrets left behind.
    assert run.value("RUN-RC") == "0", run.values("RUN-ERR")
    assert run.value("RUN-PLANTED") == "0"
    out = run.values("RUN-OUT")
    assert out[-1] == "machine will boot into nixos in 6s..."
    assert any(f"loaded with {syscall}" in line for line in out), out
    assert run.value("RUN-LOADED") == "1"
    assert run.value("RUN-LEFTOVERS") == "0"
    assert not run.values("HOST-HAS-LOADER")
    assert not run.values("HOST-HAS-PYTHON")

    # The installer side, after the real kexec.
    assert run.values("TARGET-UP"), run.console[-3000:]
    assert run.values("STATE-FOUND")
    extra = ["nit.extra=yes"] if "nit.extra=yes" in shlex.join(args) else []
    assert run.value("CMDLINE").split() == [*CMDLINE.split(), *extra]
    got = handed_over(run)
    for name, data in host.host_keys.items():
        mode = 0o644 if name.endswith(".pub") else 0o600
        assert got[f"target/etc/ssh/{name}"] == (mode, 0, data), name
    mode, uid, keys_file = got["target/root/.ssh/authorized_keys"]
    assert (mode, uid) == (0o600, 0)
    assert keys_file is not None
    assert keys_file.decode().splitlines() == expected_keys
    assert got["target/root/.ssh"][:2] == (0o700, 0)
    assert got["target/root"][:2] == (0o700, 0)
    assert got["target/etc/machine-id"] == (0o444, 0, f"{host.machine_id}\n".encode())
    assert got["target/etc"][0] == 0o755

    # The network state, read the way restore-network will read it on the installer.
    state = StateDir(tmp_path / "state")
    state.network.mkdir(parents=True)
    prefix = "run/nixos-images/state/network/"
    for name, (_, _, content) in got.items():
        if name.startswith(prefix) and content is not None:
            (state.network / name.removeprefix(prefix)).write_bytes(content)
    units = {u.name: u.text for u in generate(state)}
    (eth0,) = [text for text in units.values() if run.value("MAC") in text]
    for line in (
        "Address=192.0.2.10/24",
        "Address=2001:db8:1::10/64",
        "Gateway=192.0.2.1",
        "DNS=192.0.2.53",
    ):
        assert line in eth0.splitlines(), eth0


# A hardware watchdog the host armed (QEMU's i6300esb): its daemon killed, it keeps counting.
REFUSALS = (
    qemu.arm_watchdog(600)
    + """
run SMALL
echo 1 > /proc/sys/kernel/kexec_load_disabled
run DISABLED
SUDO_USER=admin /root/kexec/kexec/run --dry-run --json > /tmp/dry; say DRY-RC $?
base64 /tmp/dry | while read -r line; do say DRY "$line"; done
say AFTER "$(state)"
say SLEEPERS "$(ps | grep -c '[s]leep [0-9]')"
"""
)


def test_refusals_change_nothing(debian: qemu.Debian, tmp_path: Path) -> None:
    """Too little RAM, then kexec disabled: one clear line each, no kexec, nothing left."""
    host = Host(tmp_path)
    scenario = 'say BEFORE "$(state)"\n' + REFUSALS
    # Longer than the default 6 s delay: a boot scheduled by mistake would happen meanwhile.
    extra = qemu.watchdog_modules(debian)
    initrd = source_host(debian, tmp_path, host, scenario, wait=10, extra=extra)
    run = qemu.boot(tmp_path, debian.kernel, initrd, memory_mib=256, devices=["i6300esb"])

    assert run.values("NO-KEXEC"), run.console[-3000:]
    assert not run.values("TARGET-UP")
    total_mib = round(int(run.value("MEMTOTAL")) / 1024)
    assert run.value("SMALL-RC") == "1"
    # One line per refusal; a bigger bundle (CPython 3.13's) also runs short of space in
    # the small guest's tmpfs, which is a refusal of its own.
    small = run.values("SMALL-ERR")
    ram = [line for line in small if "not enough RAM" in line]
    assert len(ram) == 1, small
    assert ram[0].startswith("kexec/run: not enough RAM: the installer needs ")
    assert f"MemTotal is {total_mib} MiB" in ram[0]
    assert all(line.startswith("kexec/run: ") for line in small)
    disabled = run.values("DISABLED-ERR")
    assert run.value("DISABLED-RC") == "1"
    assert any("kexec is disabled until the next reboot" in line for line in disabled)
    assert any("not enough RAM" in line for line in disabled)
    assert all(line.startswith("kexec/run: ") for line in disabled)
    for key in ("SMALL", "DISABLED"):
        assert run.value(f"{key}-LOADED") == "0"
        assert run.value(f"{key}-LEFTOVERS") == "0"
        assert run.value(f"{key}-PLANTED") == "0"
        assert not run.values(f"{key}-OUT")
    assert run.value("BEFORE") == run.value("AFTER")
    assert run.value("SLEEPERS") == "0"

    # The dry run names every check and what would have been carried over.
    assert run.value("DRY-RC") == "1"
    report = json.loads(run.blob("DRY"))
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    # kexec disabled and too little RAM; in 256 MiB a CPython 3.13 bundle also leaves too
    # little room in the guest's tmpfs for the initrd copy (3.11's does not).
    assert failed - {"space"} == {"kexec", "memory"}
    carry = report["carry_over"]
    assert carry["authorized_keys"] == host.expected_keys
    assert sorted(carry["host_keys"]) == sorted(host.host_keys)
    assert carry["machine_id"] == host.machine_id
    (skipped,) = carry["skipped_key_lines"]
    assert (skipped["source"], skipped["line_number"]) == ("/home/admin/.ssh/authorized_keys", 3)

    # The armed watchdog, read from the kernel's sysfs, and reported: its driver stops it on
    # the way into the installer (test_way_back_qemu.py shows it), so nothing is added.
    assert run.value("WATCHDOG") == "active"
    assert "watchdog" not in report["kexec"]["cmdline"]
    (dog,) = [c for c in report["checks"] if c["name"] == "watchdog"]
    assert dog["detail"] == (
        "watchdog0 (i6300ESB timer) running: Linux stops it when it starts the installer"
    )


def test_lockdown_tries_only_kexec_file_load_and_shows_the_kernels_reason(
    debian: qemu.Debian, tmp_path: Path
) -> None:
    """Booted with lockdown=integrity, as Secure Boot does: only kexec_file_load may load, and
    it takes only kernels signed by a key the host trusts, which this one is not."""
    host = Host(tmp_path)
    scenario = 'say BEFORE "$(state)"\nrun LOCKED\nsay AFTER "$(state)"\n'
    initrd = source_host(debian, tmp_path, host, scenario, wait=10)
    run = qemu.boot(tmp_path, debian.kernel, initrd, append="lockdown=integrity")

    assert run.values("NO-KEXEC"), run.console[-3000:]
    assert run.value("LOCKED-RC") == "1"
    err = run.values("LOCKED-ERR")
    *kernel_log, last = err
    assert kernel_log[0] == "kernel log:", err
    assert any("lockdown" in line.lower() for line in kernel_log[1:]), err
    assert last.startswith("kexec/run: kexec could not load the installer (kexec_file_load: ")
    assert "kexec_load:" not in last
    assert last.endswith("disable Secure Boot in the firmware, then run this again")
    assert run.value("LOCKED-LOADED") == "0"
    assert run.value("LOCKED-LEFTOVERS") == "0"
    assert run.value("BEFORE") == run.value("AFTER")


# nixos-anywhere's kexec step as it runs on the target (src/nixos-anywhere.sh, runKexec, at
# the commit fetched on 2026-12-02): as the ssh user, here the non-root `admin`, in
# $HOME/kexec, which that user owns; the uploaded tarball unpacked with tar; kexec/run started
# through sudo under util-linux `setsid --wait`, with TMPDIR=$HOME/kexec and the flags quoted;
# everything through tee into a log, and the step judged by the log line alone (the ssh
# connection may drop with the kexec).
NIXOS_ANYWHERE_STEP = """\
{
  set -eu
  cd "$HOME/kexec"
  cat "$HOME/kexec/kexec-tarball.tar.gz" | tar -xv --gzip
  TMPDIR="$HOME/kexec" sudo setsid --wait "$HOME/kexec/kexec/run" --kexec-extra-flags %s
} 2>&1 | tee "$HOME/kexec/nixos-anywhere.log" || true
grep -q 'machine will boot into nixos' "$HOME/kexec/nixos-anywhere.log"
"""

# sudo as the step uses it: the command as root, SUDO_USER set, the environment reset (sudo's
# env_reset; so TMPDIR does not reach kexec/run), PATH from Debian's secure_path. Busybox's
# su (setuid) does the switch.
SUDO = """#!/bin/sh
user=$(id -un)
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin  # Debian's secure_path
# Resolved here, as sudo does: busybox's shell would run its own applet of the same name.
command=$1
shift
for dir in $(echo "$path" | tr : ' '); do
  [ -x "$dir/$command" ] && command=$dir/$command && break
done
exec su -c 'u=$1; shift; exec env -i PATH="$0" HOME=/root SUDO_USER="$u" "$@"' \\
  -- root "$path" "$user" "$command" "$@"
"""

# util-linux's setsid (busybox's has no --wait), started through its own loader and libc:
# the host still has no /lib64 loader of its own.
SETSID = """#!/bin/sh
exec /opt/util-linux/ld.so --library-path /opt/util-linux /opt/util-linux/setsid "$@"
"""

# sync(2) and syncfs(2), whoever calls them, as the kernel traces them. A plain `sync` first
# shows the tracer sees them; the marker orders what follows in the same buffer, which is
# read once kexec/run has loaded the installer and scheduled its boot (the scheduled script's
# own `sync` and kexec -e's flags are read from its command line).
SYNC_TRACE = """
mount -t tracefs nodev /sys/kernel/tracing
echo 1 > /sys/kernel/tracing/events/syscalls/sys_enter_sync/enable
echo 1 > /sys/kernel/tracing/events/syscalls/sys_enter_syncfs/enable
sync
echo nixos-images-armed > /sys/kernel/tracing/trace_marker
"""
SYNC_DUMP = """
grep -v '^#' /sys/kernel/tracing/trace | while read -r l; do say TRACE "$l"; done
"""

NIXOS_ANYWHERE = (
    SYNC_TRACE
    + """
chmod 4755 /bin/busybox
chmod 755 /usr/local/bin/sudo /usr/local/bin/setsid /opt/util-linux/ld.so /opt/util-linux/setsid
export PATH=/usr/local/bin:/bin
mkdir -p /home/admin/kexec
cp /kexec.tar.gz /home/admin/kexec/kexec-tarball.tar.gz
cp /nixos-anywhere-kexec.sh /home/admin/kexec/
chown -R 1000:1000 /home/admin
su admin -c 'bash "$HOME/kexec/nixos-anywhere-kexec.sh"' > /tmp/na.out 2>&1
say NA-RC $?
grep -v '^kexec/' /tmp/na.out | while read -r l; do say NA-OUT "$l"; done
say NA-OWNER $(stat -c %U /home/admin/kexec/kexec /home/admin/kexec/nixos-anywhere.log)
"""
    + SYNC_DUMP
    + """
for p in /proc/[0-9]*; do
  c=$(tr '\\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
  case "$c" in *" --exec"*) say SCHEDULED "$c" ;; esac
done
"""
)


def nixos_anywhere_host(tmp: Path, flags: str) -> tuple[Host, dict[str, bytes | Path]]:
    """The source host for nixos-anywhere's step: root with no password (for the sudo
    stand-in), bash, util-linux setsid, and the step's script for these flags."""
    host = Host(tmp)
    setsid = Path("/usr/bin/setsid")
    loader = elf.read(setsid).interpreter
    assert loader is not None
    extra: dict[str, bytes | Path] = {
        "/etc/passwd": PASSWD.replace(b"root:x:", b"root::"),
        "/bin/bash": qemu.static_bash(),
        "/usr/local/bin/sudo": SUDO.encode(),
        "/usr/local/bin/setsid": SETSID.encode(),
        "/opt/util-linux/setsid": setsid,
        "/opt/util-linux/ld.so": Path(loader),
        "/opt/util-linux/libc.so.6": Path("/lib/x86_64-linux-gnu/libc.so.6"),
        "/nixos-anywhere-kexec.sh": (NIXOS_ANYWHERE_STEP % shlex.quote(flags)).encode(),
    }
    return host, extra


def syncs_after_arming(run: qemu.GuestRun) -> list[str]:
    """The sync(2)/syncfs(2) calls traced after the marker; none before it fails the test:
    then the tracer saw nothing, not even the control `sync`."""
    trace = run.values("TRACE")
    armed = next((n for n, line in enumerate(trace) if "nixos-images-armed" in line), None)
    assert armed is not None, trace
    assert any("sys_sync(" in line for line in trace[:armed]), trace
    return [line for line in trace[armed:] if "sys_sync" in line]


@pytest.mark.parametrize(
    "flags",
    ["--no-sync", "--append=nit.appended=yes"],
    ids=["no-sync", "append"],
)
def test_nixos_anywhere_kexec_step_as_it_runs_it(
    debian: qemu.Debian, tmp_path: Path, flags: str
) -> None:
    """--no-sync: no sync(2) from kexec/run, kexec --load or the scheduled boot, as the
    kernel traces it; --append=: the installer boots with its own command line and that
    word after it; the machine boots the installer either way."""
    host, extra = nixos_anywhere_host(tmp_path, flags)
    host.files.update(extra)
    initrd = source_host(debian, tmp_path, host, NIXOS_ANYWHERE)
    run = qemu.boot(tmp_path, debian.kernel, initrd)

    assert run.value("NA-RC") == "0", run.values("NA-OUT")
    assert "machine will boot into nixos in 6s..." in run.values("NA-OUT")
    assert run.value("NA-OWNER").split() == ["admin", "admin"]
    (scheduled,) = run.values("SCHEDULED")
    synced = syncs_after_arming(run)
    if flags == "--no-sync":
        assert scheduled.rstrip().endswith("--exec --no-sync")
        assert "sync;" not in scheduled
        assert synced == []
    else:
        assert scheduled.rstrip().endswith("--exec")
        assert "sync;" in scheduled
        assert "--append" not in scheduled
        assert synced  # kexec --load syncs when nobody says otherwise
    assert run.values("TARGET-UP"), run.console[-3000:]
    appended = ["nit.appended=yes"] if flags.startswith("--append") else []
    assert run.value("CMDLINE").split() == [*CMDLINE.split(), *appended]
    mode, uid, keys = handed_over(run)["target/root/.ssh/authorized_keys"]
    assert (mode, uid) == (0o600, 0)
    assert keys is not None
    assert keys.decode().splitlines() == host.expected_keys
