"""The way back, for real: kexec/run --deadman boots a stand-in installer in QEMU, whose
dead-man switch (the real nixos-images-deadman, run by the tarball's own Python as the
installer's timer would run it) reboots the machine back into the old system when nobody
logs in, and stands down when someone does.

QEMU runs without -no-reboot: a reboot starts the same kernel and initrd again, as firmware
boots the old system from its disk. The old system knows it came back by a marker it wrote on
its virtio disk the first time. The stand-in installer has no systemd: `systemctl reboot` is
busybox's `reboot -f` (the reboot itself is what is tested), and a login is the session file
systemd-logind writes. No journal: the switch then goes by the session files alone.
"""

from __future__ import annotations

import shlex
import tarfile
from typing import TYPE_CHECKING

import pytest

import planted
import qemu
from conftest import require
from nixos_images import deadman, layout
from test_kexec_qemu import CMDLINE, REPO, SOURCE_NETWORK, Host, assemble_tarball

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.real, pytest.mark.timeout(900)]

DEADLINE_MIN = 1
# The virtio disk's drivers, in the order they depend on each other (modules in Debian's kernel).
VIRTIO = (
    *("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev"),
    *("virtio_pci", "virtio_blk"),
)
LOAD_VIRTIO = "".join(f"insmod /lib/modules/{m}.ko\n" for m in VIRTIO) + (
    "for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/vda ] && break; sleep 1; done\n"
)
STOOD_DOWN = layout.DEADMAN_STATE_DIR / deadman.STOOD_DOWN
E1000 = "kernel/drivers/net/ethernet/intel/e1000/e1000.ko"

# The old system: the first boot marks its disk and runs kexec/run; a boot that finds the
# mark is the way back.
OLD_SYSTEM = (
    LOAD_VIRTIO
    + """
if dd if=/dev/vda bs=512 count=1 2>/dev/null | grep -q OLD-SYSTEM-BOOTED; then
  say OLD-SYSTEM-BACK
  poweroff -f
fi
echo OLD-SYSTEM-BOOTED | dd of=/dev/vda conv=notrunc 2>/dev/null
sync
say OLD-SYSTEM-FIRST-BOOT
"""
)

# The stand-in installer: the switch every 5 s (the timer's 15 s, shortened: TCG is slow).
INSTALLER = (
    qemu.INIT_PRELUDE
    + LOAD_VIRTIO
    + f"""
say INSTALLER-UP
say CMDLINE "$(cat /proc/cmdline)"
deadman() {{
  PYTHONPATH=/opt/helpers PYTHONHOME=/opt/kexec/python \\
    /opt/kexec/lib/ld-linux-x86-64.so.2 --library-path /opt/kexec/lib /opt/kexec/bin/python3 \\
    -S -B -P -c 'from nixos_images.deadman import main; main()' "$@"
}}
@LOGIN@
for i in $(seq 60); do
  deadman > /tmp/out 2>&1
  say DEADMAN-RC $?
  while read -r l; do say DEADMAN "$l"; done < /tmp/out
  if [ -e {STOOD_DOWN} ]; then
    say STOOD-DOWN "$(cat {STOOD_DOWN})"
    break
  fi
  sleep 5
done
# Past the deadline, still here?
while [ "$(cut -d. -f1 /proc/uptime)" -lt {DEADLINE_MIN * 60 + 20} ]; do sleep 5; done
deadman > /tmp/out 2>&1
say STILL-UP "$(cut -d. -f1 /proc/uptime)"
poweroff -f
"""
)
# An ssh login as systemd-logind records it (pam_systemd: REMOTE=1).
LOGIN = (
    "mkdir -p /run/systemd/sessions && "
    'printf "UID=0\\nUSER=root\\nSERVICE=sshd\\nREMOTE=1\\n" > /run/systemd/sessions/2'
)
SYSTEMCTL = b"""#!/bin/sh
if [ "$1" = reboot ]; then
  echo "NIT REBOOTING" > /dev/ttyS1
  reboot -f
fi
exit 1
"""


def bundle(debian: qemu.Debian, tmp: Path) -> dict[str, bytes | Path]:
    """The tarball's own Python bundle and the helpers' sources, for the stand-in installer."""
    (tmp / "first").mkdir()
    placeholder = tmp / "placeholder.cpio"
    qemu.initramfs(placeholder, {"/init": b"#!/bin/sh\n"})
    first = assemble_tarball(debian, tmp / "first", placeholder)
    unpacked = tmp / "first/unpacked"
    with tarfile.open(first) as tar:
        tar.extractall(unpacked, filter="tar")
    files: dict[str, bytes | Path] = {}
    for part in ("bin", "lib", "python"):
        for path in (unpacked / "kexec" / part).rglob("*"):
            if path.is_file():
                files[f"/opt/kexec/{path.relative_to(unpacked / 'kexec')}"] = path
    source = REPO / "helpers/src"
    for path in (source / "nixos_images").rglob("*"):
        if path.is_file() and path.suffix in {".py", ".json"}:
            files[f"/opt/helpers/{path.relative_to(source)}"] = path
    return files


def modules(debian: qemu.Debian) -> dict[str, bytes | Path]:
    root = debian.modules / "kernel/drivers"
    found = {p.stem: p for d in ("virtio", "block") for p in (root / d).glob("virtio*.ko")}
    return {f"/lib/modules/{m}.ko": found[m] for m in VIRTIO}


def way_back(debian: qemu.Debian, tmp: Path, *, login: bool) -> qemu.GuestRun:
    """The old system runs kexec/run --deadman 1 into the stand-in installer; what happened."""
    installer_init = INSTALLER.replace("@LOGIN@", LOGIN if login else "")
    standin = tmp / "standin.gz"
    files = {
        "/init": installer_init.encode(),
        "/bin/systemctl": SYSTEMCTL,
        **modules(debian),
        **bundle(debian, tmp),
    }
    qemu.initramfs(standin, files, compress=True)
    args = ["--deadman", str(DEADLINE_MIN), "--kexec-extra-flags", "--append=quiet"]
    scenario = f"run RUN {shlex.join(args)}\n"
    return old_system(debian, tmp, assemble_tarball(debian, tmp, standin), scenario)


def old_system(
    debian: qemu.Debian,
    tmp: Path,
    tarball: Path,
    scenario: str,
    *,
    before: str = "",
    extra: dict[str, bytes | Path] | None = None,
    devices: tuple[str, ...] = (),
) -> qemu.GuestRun:
    """Boot the old system (its identity and network from test_kexec_qemu, the tarball, a
    virtio disk to know a second boot by) in a QEMU that may reboot; it runs `before`, then
    the scenario, then waits 120 s for a kexec."""
    init = qemu.INIT_PRELUDE + OLD_SYSTEM + before + SOURCE_NETWORK + scenario
    init += "\nsleep 120\nsay NO-KEXEC\npoweroff -f\n"
    initrd = tmp / "source.cpio"
    qemu.initramfs(
        initrd,
        {
            **Host(tmp).files,
            **{f"/tmp/caller/{name}": body for name, body in planted.MODULES.items()},
            **modules(debian),
            **(extra or {}),
            "/init": init.encode(),
            "/lib/modules/e1000.ko": debian.modules / E1000,
            "/kexec.tar.gz": tarball,
        },
    )
    disk = tmp / "disk.img"
    disk.write_bytes(b"\0" * (1 << 20))
    return qemu.boot(
        tmp, debian.kernel, initrd, reboot=True, disks=[disk], devices=devices, timeout=420
    )


@pytest.fixture(scope="module")
def debian() -> qemu.Debian:
    require(qemu.missing_tools(), "the QEMU way-back tests")
    return qemu.debian()


def test_nobody_logs_in_and_the_installer_reboots_into_the_old_system(
    debian: qemu.Debian, tmp_path: Path
) -> None:
    run = way_back(debian, tmp_path, login=False)
    assert run.value("RUN-RC") == "0", run.values("RUN-ERR")
    assert run.values("INSTALLER-UP"), run.console[-3000:]
    # kexec/run --deadman reached the installer's command line, after its own words.
    cmdline = run.value("CMDLINE").split()
    assert cmdline == [*CMDLINE.split(), "quiet", f"{layout.DEADMAN_PARAMETER}={DEADLINE_MIN}"]
    # The disk the old system wrote to before the kexec is not one the installer touched.
    assert not run.values("STOOD-DOWN"), run.values("DEADMAN")
    # The countdown on the console, then the reboot, then the old system by itself.
    assert "rebooting to the system on disk in 1 min unless someone logs in" in run.console
    assert f"nobody logged in within {DEADLINE_MIN} min: rebooting" in run.console
    assert run.lines.index("REBOOTING") < run.lines.index("OLD-SYSTEM-BACK")
    assert run.values("OLD-SYSTEM-FIRST-BOOT") == [""]
    assert not run.values("STILL-UP")


def test_a_logged_in_installer_stays(debian: qemu.Debian, tmp_path: Path) -> None:
    run = way_back(debian, tmp_path, login=True)
    assert run.value("RUN-RC") == "0", run.values("RUN-ERR")
    assert run.value("STOOD-DOWN") == "login", run.values("DEADMAN")
    assert int(run.value("STILL-UP")) > DEADLINE_MIN * 60
    assert not run.values("REBOOTING")
    assert not run.values("OLD-SYSTEM-BACK")


# A hardware watchdog the old system armed (QEMU's i6300esb, 20 s), its daemon killed.
ARM_WATCHDOG = qemu.arm_watchdog(20)
QUIET_INSTALLER = (
    qemu.INIT_PRELUDE
    + """
say INSTALLER-UP
while [ "$(cut -d. -f1 /proc/uptime)" -lt 90 ]; do sleep 5; done
say STILL-UP
poweroff -f
"""
)


@pytest.mark.parametrize("kexec", [False, True], ids=["control", "kexec"])
def test_an_armed_watchdog_stops_when_kexec_starts_the_installer(
    debian: qemu.Debian, tmp_path: Path, *, kexec: bool
) -> None:
    """Why kexec/watchdog.py only reports watchdog-core devices: their drivers stop them on
    the way into the new kernel. The control shows the watchdog was armed: without a kexec it
    resets the old system."""
    standin = tmp_path / "standin.gz"
    qemu.initramfs(standin, {"/init": QUIET_INSTALLER.encode()}, compress=True)
    run = old_system(
        debian,
        tmp_path,
        assemble_tarball(debian, tmp_path, standin),
        "run RUN --kexec-extra-flags ''\n" if kexec else "",
        before=ARM_WATCHDOG,
        extra=qemu.watchdog_modules(debian),
        devices=("i6300esb",),
    )
    assert run.values("WATCHDOG")[0] == "active", run.console[-2000:]
    if kexec:
        assert run.value("RUN-RC") == "0", run.values("RUN-ERR")
        assert run.values("INSTALLER-UP")
        assert run.values("STILL-UP") == [""]
        assert not run.values("OLD-SYSTEM-BACK")
    else:
        assert run.values("OLD-SYSTEM-BACK") == [""]
        assert not run.values("NO-KEXEC")
