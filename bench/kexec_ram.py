"""The RAM floor of the kexec hand-off (issue #20, part a): in QEMU, the smallest guest RAM at
which the real kexec/run loads a stand-in installer initrd of realistic size and content and
hands off, so that the stand-in installer boots with the old host's state.

Run as root: .venv/bin/python bench/kexec_ram.py [--sizes 100,200,400,600] [--syscalls file,load]
Not part of `tests/run --ci`: on the development machine (2 cores) the four sizes took 32
QEMU runs and 22 minutes. --logs DIR keeps every run's serial output.

What runs, all of it from the QEMU end-to-end test's harness (tests/qemu.py,
tests/test_kexec_qemu.py), under software emulation, one vCPU, Debian's kernel on both sides:

- The stand-in installer initrd: a newc cpio holding busybox, an /init and handoff.sh as the
  installer's initrd holds it, and /nix-store.squashfs, SIZE MiB of random bytes standing in
  for the installer's squashfs store (itself zstd -19 compressed, so incompressible); the cpio
  compressed with `zstd -10`, as nixpkgs compresses a zstd initrd. Random data stays its size
  through zstd, so the initrd and what it unpacks to are both about SIZE MiB, as with the
  real one.
- The tarball: assemble-kexec-tarball's code with Debian's kernel, kexec-tools and python3.11
  (test_kexec_qemu.assemble_tarball).
- The old host: a busybox initramfs with the test's identity (host keys, authorized keys,
  machine-id) and static network (test_kexec_qemu.Host, SOURCE_NETWORK). The tarball is not in
  its initramfs: it is unpacked, on this machine before the boot, onto an ext4 virtio disk
  mounted at /root/kexec, as on a host whose /root is on a disk. kexec/run writes its copy of
  the initrd (with the state appended) beside it, on that disk: neither counts against RAM
  except as page cache. (Unpacking the tarball in the guest is left out: it only writes files.)
- kexec/run --syscall file|load, started as the test starts it. In a boot run, --delay 1: the
  scheduled `kexec -e` boots the stand-in installer, which says it is up, checks that its whole
  squashfs arrived, finds the appended state, runs handoff.sh and reports the machine-id it
  got. In a load run, --delay 30 and the old host powers off once kexec/run has returned.

Two floors per initrd size and syscall, each searched on a 32 MiB grid of QEMU's -m:

- boots from: the smallest RAM at which the stand-in installer reports all of the above.
- loads from: the smallest RAM at which kexec/run loads the installer (exit 0, an image loaded),
  the old host's own floor. `kexec -e` allocates nothing: the loaded pages are moved into place.
  Every boot run also says whether the load worked, and loading cannot need more RAM than
  booting, so this search starts below "boots from" and adds load runs, which are quicker.

Each search tries a first guess, then steps of doubling length (32, 64, 128 MiB ...) down from
a success or up from a failure until the floor is bracketed, then bisects; guesses after the
first come from earlier floors. Every QEMU run has a timeout (scaled with the initrd size);
one QEMU runs at a time.

What the numbers include and not:

- The old host holds the initrd twice while loading: kexec_file_load reads it into a kernel
  buffer and copies it into the image's pages; with kexec_load, kexec-tools reads it into its
  own memory and the kernel copies it. The new kernel keeps the compressed initrd in RAM while
  it unpacks it into a rootfs that is a tmpfs limited to half the RAM the kernel counts then,
  and the initrd is not counted yet (it is freed after unpacking); the real installer's kernel
  does the same with no root= on its command line. So from 200 MiB up "boots from" is about
  initrd + 2 x unpacked + what the kernel keeps, above the old host's floor; the "32 MiB below"
  columns say what failed there. (Checked once: with rootfstype=ramfs added to the stand-in's
  command line, the 600 MiB stand-in booted with -m 1504 instead of 1920.) Just below that
  floor the rootfs can fill up after /init but before the appended state: the installer then
  boots without part of the state ("machine-id not handed over"), and only the console's
  "Initramfs unpacking failed" says why.
- kexec/run's memory check (MemTotal >= kernel + initrd + unpacked initrd + state + reserve)
  would refuse before anything is tried. By default the tarball's manifest declares the
  unpacked size and the reserve as 0 so that the check does not decide and the searches find
  what the machine can do; its MemAvailable half (>= kernel + initrd + state) still applies.
  --memory-check keeps the real unpacked size and the default reserve (256 MiB). The table
  shows what the check would have asked for.
- RAM is QEMU's -m. The kernel keeps part of it: MemTotal (shown) is what userland and the
  check see.
- Not the real installer: NixOS's kernel, its stage 1 (mounting the squashfs, switching root)
  and the running system are not measured, only that the stand-in initrd is unpacked whole and
  its /init runs. The old host is a minimal busybox system with no services.
- Debian's 6.1 kernel under TCG; other kernels reserve and use memory differently.
- Near a floor an outcome can depend on timing (page cache writeback, the OOM killer): each
  point is booted once, so a floor may be off by a step.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import planted  # noqa: E402
import qemu  # noqa: E402
import test_kexec_qemu as harness  # noqa: E402

from nixos_images.kexec import manifest  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

MiB = 1 << 20
STEP = 32  # MiB: the grid the floors are searched on
SIZES = (100, 200, 400, 600)
SYSCALLS = ("file", "load")
SQUASHFS = "/nix-store.squashfs"
CALLER = "/tmp/caller"  # noqa: S108 - a path in the guest, where the test plants modules

# The virtio disk and ext4, as modules of Debian's kernel, in dependency order.
DISK_MODULES = (
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/block/virtio_blk.ko",
    "lib/crc16.ko",
    "crypto/crc32c_generic.ko",
    "fs/mbcache.ko",
    "fs/jbd2/jbd2.ko",
    "fs/ext4/ext4.ko",
)
DISK = "\n".join(
    [f"insmod /lib/modules/{Path(m).name}" for m in DISK_MODULES]
    + ["for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/vda ] && break; sleep 1; done"]
)
# The test's host unpacks the tarball from its initramfs; this one mounts the disk instead.
UNPACK = "mkdir -p /root/kexec && tar -C /root/kexec -xzf /kexec.tar.gz"
MOUNT = "mkdir -p /root/kexec && mount -t ext4 /dev/vda /root/kexec || say NO-DISK"

UNPACKING_FAILED = "Initramfs unpacking failed"
MEMINFO = "sed -n 's/^{0}: *\\([0-9]*\\) kB$/\\1/p' /proc/meminfo"

# The old host: kexec/run; in a boot run, then wait for the scheduled boot.
SCENARIO = """
say MEMAVAILABLE "$({avail})"
run RUN --syscall {syscall} --delay {delay}
[ {boot} = 1 ] && [ "$(cat /sys/kernel/kexec_loaded)" = 1 ] && sleep 60
say NO-KEXEC
poweroff -f
"""

# The stand-in installer: up, its squashfs whole, the state found and handed over.
STANDIN_INIT = (
    qemu.INIT_PRELUDE
    + f"""
say TARGET-UP
say TARGET-MEMTOTAL "$({MEMINFO.format("MemTotal")})"
say SQUASHFS-SIZE "$(stat -c %s {SQUASHFS} 2>/dev/null)"
[ -d /nixos-images/state ] && say STATE-FOUND
mkdir -p /target
sh /handoff.sh /nixos-images/state /target /run/nixos-images/state
say HANDOFF-RC $?
say MACHINE-ID "$(cat /target/etc/machine-id 2>/dev/null)"
poweroff -f
"""
)


@dataclass(frozen=True)
class Image:
    """One initrd size's pieces: the sizes, and the old host's pristine disk."""

    size: int  # MiB of squashfs stand-in
    initrd: int  # bytes of the zstd initrd in the tarball
    unpacked: int  # bytes it unpacks to
    kernel: int  # bytes of the kernel
    disk: Path


@dataclass(frozen=True)
class Outcome:
    """One QEMU run."""

    loaded: bool  # kexec/run returned 0 with the image loaded
    booted: bool | None  # the stand-in reported everything; None: a load run
    what: str  # "booted", "loaded", or what went wrong
    seconds: float
    memtotal: int | None  # the old host's MemTotal, MiB


def standin(work: Path, size: int) -> tuple[Path, int]:
    """The stand-in installer initrd (zstd) and the bytes it unpacks to."""
    blob = work / "squashfs"
    with blob.open("wb") as f:
        for _ in range(size):
            f.write(os.urandom(MiB))
    cpio = work / "standin.cpio"
    files: dict[str, bytes | Path] = {
        "/init": STANDIN_INIT.encode(),
        "/handoff.sh": qemu.handoff_script(),
        SQUASHFS: blob,
    }
    qemu.initramfs(cpio, files)
    blob.unlink()
    unpacked = cpio.stat().st_size
    out = work / "initrd.zst"
    subprocess.run(["zstd", "-q", "-f", "-10", "-T0", str(cpio), "-o", str(out)], check=True)
    cpio.unlink()
    return out, unpacked


def build(debian: qemu.Debian, work: Path, size: int, *, memory_check: bool) -> Image:
    """The tarball for this size, unpacked onto an ext4 image with room for kexec/run's copy."""
    work.mkdir(parents=True, exist_ok=True)
    initrd, unpacked = standin(work, size)
    tarball = harness.assemble_tarball(
        debian,
        work,
        initrd,
        initrd_unpacked_size=unpacked if memory_check else 0,
        reserve=manifest.DEFAULT_RESERVE if memory_check else 0,
    )
    initrd_bytes = initrd.stat().st_size
    initrd.unlink()
    tree = work / "disk.d"
    shutil.rmtree(tree, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(tree, filter="tar")
    tarball.unlink()
    used = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    disk = work / "disk.img"
    disk.unlink(missing_ok=True)
    # Room for the tarball's files, the initrd copy, and the file system's own (journal, inodes).
    mib = (used + initrd_bytes) * 11 // 10 // MiB + 128
    subprocess.run(
        [
            *("mkfs.ext4", "-q", "-F", "-m", "0", "-L", "kexec", "-d", str(tree)),
            # Initialized now: no ext4lazyinit writing in the guest while it is measured.
            *("-E", "lazy_itable_init=0,lazy_journal_init=0", str(disk), f"{mib}M"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(tree)
    return Image(size, initrd_bytes, unpacked, debian.kernel.stat().st_size, disk)


def source_initramfs(
    debian: qemu.Debian, host: harness.Host, out: Path, syscall: str, *, boot: bool
) -> None:
    """The old host's initramfs: the test's identity and network, the disk, the scenario."""
    network = harness.SOURCE_NETWORK
    if UNPACK not in network:
        sys.exit("kexec_ram.py: the test's host no longer unpacks the tarball as this expects")
    scenario = SCENARIO.format(
        avail=MEMINFO.format("MemAvailable"),
        syscall=syscall,
        delay=1 if boot else 30,
        boot=int(boot),
    )
    init = qemu.INIT_PRELUDE + DISK + network.replace(UNPACK, MOUNT) + scenario
    modules = debian.modules / "kernel"
    files: dict[str, bytes | Path] = {
        **host.files,
        **{f"{CALLER}/{name}": body for name, body in planted.MODULES.items()},
        "/init": init.encode(),
        "/lib/modules/e1000.ko": modules / "drivers/net/ethernet/intel/e1000/e1000.ko",
        **{f"/lib/modules/{Path(m).name}": modules / m for m in DISK_MODULES},
    }
    qemu.initramfs(out, files)


def installer_problem(run: qemu.GuestRun, image: Image, host: harness.Host) -> str | None:
    """What the stand-in installer missed, once it is up."""
    size = run.values("SQUASHFS-SIZE")
    checks = (
        (size == [str(image.size * MiB)], f"squashfs {size} bytes, not whole"),
        (bool(run.values("STATE-FOUND")), "no state"),
        (run.values("HANDOFF-RC") == ["0"], f"handoff.sh rc {run.values('HANDOFF-RC')}"),
        (run.values("MACHINE-ID") == [host.machine_id], "machine-id not handed over"),
    )
    failed = [what for ok, what in checks if not ok]
    if not failed:
        return None
    # The rootfs filled up after /init was unpacked: the installer runs without what followed.
    unpacking = ", initramfs unpacking failed" if UNPACKING_FAILED in run.console else ""
    return f"installer: {failed[0]}{unpacking}"


def load_problem(run: qemu.GuestRun, *, timed_out: bool) -> str | None:
    """What went wrong in the old host before the image was loaded, if anything."""
    errors = run.values("RUN-ERR")
    rc = run.values("RUN-RC")
    oom = "Out of memory" in run.console or "oom-kill" in run.console
    if rc == ["0"] and run.values("RUN-LOADED") == ["1"]:
        return None
    known = (
        ("NO-DISK" in run.lines, "disk not mounted"),
        (any("not enough RAM" in e or "available now" in e for e in errors), "memory check"),
        (any("MiB free, the initrd with the state" in e for e in errors), "space check"),
        (any("kexec could not load" in e for e in errors), "kexec failed to load"),
        (bool(rc) and oom, f"kexec/run rc {rc[0] if rc else ''}, OOM killer"),
        (bool(rc), f"kexec/run rc {rc[0] if rc else ''}"),
        (oom, "OOM killer, kexec/run never returned"),
        ("Kernel panic" in run.console, "kernel panic"),
        (timed_out, "timed out"),
    )
    return "old host: " + next((what for hit, what in known if hit), "no result")


def new_kernel_problem(run: qemu.GuestRun, *, timed_out: bool) -> str:
    """Why the stand-in installer never came up, the image being loaded."""
    console = run.console
    if UNPACKING_FAILED in console:
        return "new kernel: initramfs unpacking failed"
    if "Kernel panic" in console:
        # Both kernels write to the same console; the old one is past its load.
        return "new kernel: panic"
    if run.values("NO-KEXEC"):
        return "old host: loaded, but never kexeced"
    return "new kernel: timed out" if timed_out else "new kernel: never reported"


def judge(
    run: qemu.GuestRun, image: Image, host: harness.Host, *, boot: bool, timed_out: bool
) -> tuple[bool, bool | None, str]:
    """(loaded, booted, what): booted is None in a load run."""
    problem = load_problem(run, timed_out=timed_out)
    if problem is not None:
        return False, (False if boot else None), problem
    if not boot:
        return True, None, "loaded"
    if not run.values("TARGET-UP"):
        return True, False, new_kernel_problem(run, timed_out=timed_out)
    problem = installer_problem(run, image, host)
    return True, problem is None, problem or "booted"


def timeout_for(size: int, *, boot: bool) -> int:
    """Seconds a run may take: a boot run of a 600 MiB initrd takes about 80 s here."""
    return 90 + size // 2 if boot else 60 + size // 4


@dataclass
class Prober:
    """Runs the old host (and the stand-in) with the RAM asked for, once per RAM and kind."""

    debian: qemu.Debian
    host: harness.Host
    logs: Path | None
    runs: list[Outcome] = field(default_factory=list)

    def __call__(self, image: Image, syscall: str, memory: int, *, boot: bool) -> Outcome:
        """One run of the old host with `memory` MiB; a boot run goes on into the stand-in."""
        with tempfile.TemporaryDirectory(dir=image.disk.parent) as tmp:
            work = Path(tmp)
            disk = work / "disk.img"
            # A fresh copy per run: a run killed mid-launch leaves no initrd copy for the next.
            subprocess.run(["cp", "--sparse=always", str(image.disk), str(disk)], check=True)
            initrd = work / "source.cpio"
            source_initramfs(self.debian, self.host, initrd, syscall, boot=boot)
            timeout = timeout_for(image.size, boot=boot)
            start = time.monotonic()
            run = qemu.boot(
                work, self.debian.kernel, initrd, memory_mib=memory, timeout=timeout, disks=[disk]
            )
            seconds = time.monotonic() - start
            loaded, booted, what = judge(
                run, image, self.host, boot=boot, timed_out=seconds >= timeout
            )
            if self.logs is not None:
                dest = self.logs / f"{image.size}-{syscall}-{memory}-{'boot' if boot else 'load'}"
                dest.mkdir(parents=True, exist_ok=True)
                for name in ("console.log", "data.log"):
                    with contextlib.suppress(FileNotFoundError):
                        shutil.copy(work / name, dest / name)
        total = run.values("MEMTOTAL")
        memtotal = round(int(total[0]) / 1024) if total and total[0].isdigit() else None
        outcome = Outcome(loaded, booted, what, seconds, memtotal)
        self.runs.append(outcome)
        kind = "boot" if boot else "load"
        print(
            f"  {image.size} MiB, {syscall}, -m {memory}, {kind} run: {what}"
            f" (MemTotal {memtotal} MiB, {seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        return outcome


def search(
    works: Callable[[int], bool], guess: int, fail: int, ok: int | None, ceiling: int
) -> int | None:
    """The smallest multiple of STEP at which works() is true, fail < it <= ok (ok None: not
    known, up to ceiling; None when even ceiling fails). From guess, steps of doubling length
    until the floor is bracketed, then bisection. Assumes that more RAM never hurts."""
    stride = STEP
    if ok is None:
        m = min(max(round(guess / STEP) * STEP, fail + STEP), ceiling)
        while not works(m):
            fail = m
            if m >= ceiling:
                return None
            m, stride = min(m + stride, ceiling), stride * 2
        ok = m
    else:
        m = min(round(guess / STEP) * STEP, ok)
        if m > fail and m < ok:
            if works(m):
                ok = m
            else:
                fail = m
    while ok - stride > fail:  # down from a success
        if not works(ok - stride):
            fail = ok - stride
            break
        ok, stride = ok - stride, stride * 2
    while ok - fail > STEP:
        mid = fail + (ok - fail) // 2 // STEP * STEP
        if works(mid):
            ok = mid
        else:
            fail = mid
    return ok


@dataclass(frozen=True)
class Row:
    """One size and syscall's floors, as the table shows them."""

    size: int
    syscall: str
    loads: str  # "-m (MemTotal)"
    boots: str
    below_loads: str  # what happened 32 MiB below
    below_boots: str
    boot_seconds: str  # the boot run at "boots from"
    runs: int
    seconds: float


def row(series: Series, loads: int | None, boots: int | None, runs: int, seconds: float) -> Row:
    """The table's row for one series."""

    def at(memory: int | None, *, boot: bool = False) -> Outcome | None:
        if memory is None:
            return None
        return series.boot_runs.get(memory) or (None if boot else series.load_runs.get(memory))

    def floor(memory: int | None) -> str:
        found = at(memory)
        if memory is None or found is None:
            return "not found"
        return f"{memory} ({found.memtotal or '?'})"

    def below(memory: int | None) -> str:
        found = at(memory - STEP) if memory is not None else None
        return found.what if found else "-"

    boot_run = at(boots, boot=True)
    return Row(
        series.image.size,
        series.syscall,
        floor(loads),
        floor(boots),
        below(loads),
        below(boots),
        f"{boot_run.seconds:.0f} s" if boot_run else "-",
        runs,
        seconds,
    )


@dataclass
class Series:
    """The runs of one size and syscall, each RAM run at most once per kind."""

    probe: Prober
    image: Image
    syscall: str
    boot_runs: dict[int, Outcome] = field(default_factory=dict)
    load_runs: dict[int, Outcome] = field(default_factory=dict)

    def booted(self, memory: int) -> bool:
        """Whether the stand-in installer boots with this RAM."""
        if memory not in self.boot_runs:
            self.boot_runs[memory] = self.probe(self.image, self.syscall, memory, boot=True)
        return bool(self.boot_runs[memory].booted)

    def loaded(self, memory: int) -> bool:
        """Whether kexec/run loads the installer with this RAM (a boot run says so too)."""
        seen = self.boot_runs.get(memory) or self.load_runs.get(memory)
        if seen is None:
            seen = self.probe(self.image, self.syscall, memory, boot=False)
            self.load_runs[memory] = seen
        return seen.loaded

    def load_bounds(self, boots: int | None) -> tuple[int, int | None]:
        """The highest RAM known not to load and the lowest known to, from every run."""
        runs = {**self.load_runs, **self.boot_runs}
        fail = max((m for m, o in runs.items() if not o.loaded), default=0)
        ok = min((m for m, o in runs.items() if o.loaded and m > fail), default=boots)
        return fail, ok


Floors = dict[tuple[int, str], tuple[int, int]]  # (size, syscall) -> (loads, boots)


def load_guess(floors: Floors, size: int, syscall: str) -> int:
    """Where the old host's floor probably is: the other syscall's at this size, else a line
    through this syscall's floors at smaller sizes (through one of them, or none, about 2.3
    MiB a MiB: the old host holds the initrd twice while loading, and then some)."""
    same = [f[0] for (s, _), f in floors.items() if s == size]
    if same:
        return same[0]
    known = sorted((s, f[0]) for (s, c), f in floors.items() if s < size and c == syscall)
    if len(known) >= 2:  # noqa: PLR2004
        (s0, f0), (s1, f1) = known[-2:]
        return f1 + (f1 - f0) * (size - s1) // (s1 - s0)
    if known:
        s, f = known[-1]
        return f + 23 * (size - s) // 10
    return 23 * size // 10 + 190


def boot_guess(floors: Floors, image: Image, syscall: str) -> int:
    """Where the stand-in's floor probably is: the other syscall's at this size, else the
    larger of the old host's guess and the new kernel's need: its rootfs tmpfs may hold half
    of what the kernel counts while the initrd is still reserved, so initrd + 2 x unpacked,
    plus what the kernel keeps of -m (~80 MiB here)."""
    same = [f[1] for (s, _), f in floors.items() if s == image.size]
    if same:
        return same[0]
    new_kernel = (image.initrd + 2 * image.unpacked) // MiB + 96
    return max(load_guess(floors, image.size, syscall), new_kernel)


def measure(series: Series, floors: Floors) -> tuple[int | None, int | None]:
    """Both floors of one series: where it boots, then where it loads (at or below that)."""
    size = series.image.size
    ceiling = 4 * size + 1024
    boots = search(
        series.booted, boot_guess(floors, series.image, series.syscall), 0, None, ceiling
    )
    fail, ok = series.load_bounds(boots)
    loads = search(series.loaded, load_guess(floors, size, series.syscall), fail, ok, ceiling)
    if boots is not None and loads is not None:
        floors[size, series.syscall] = (loads, boots)
    return loads, boots


def report(rows: list[Row], needs: dict[int, int], total: float, *, memory_check: bool) -> str:
    """The markdown table, and what its columns mean."""
    lines = [
        (
            "| initrd MiB | syscall | loads from | boots from | 32 MiB below loads from"
            " | 32 MiB below boots from | memory check needs | boot run at the floor | runs, time |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.size} | {'kexec_file_load' if r.syscall == 'file' else 'kexec_load'}"
        f" | {r.loads} | {r.boots} | {r.below_loads} | {r.below_boots} | {needs[r.size]}"
        f" | {r.boot_seconds} | {r.runs}, {r.seconds / 60:.1f} min |"
        for r in rows
    ]
    check = "kexec/run's memory check on" if memory_check else "kexec/run's memory check off"
    lines += [
        "",
        f"Total {total / 60:.1f} min, {sum(r.runs for r in rows)} QEMU runs; {check}.",
        (
            "loads from, boots from: QEMU's -m in MiB (the old host's MemTotal there). Memory"
            " check needs: the MemTotal in MiB kexec/run asks for with the real unpacked size"
            " and the default reserve (kernel + initrd + unpacked initrd + 256 MiB; the state's"
            " few KiB left out)."
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    """Build each size's tarball and disk, search both floors per syscall, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="initrd MiB, ...")
    parser.add_argument("--syscalls", default=",".join(SYSCALLS), help="file,load")
    parser.add_argument("--memory-check", action="store_true", help="keep kexec/run's check on")
    parser.add_argument("--logs", type=Path, help="keep every run's serial logs here")
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    missing = qemu.missing_tools() + [t for t in ("zstd", "mkfs.ext4") if not shutil.which(t)]
    if missing:
        sys.exit(f"kexec_ram.py: missing {', '.join(missing)}")
    debian = qemu.debian()
    rows: list[Row] = []
    floors: Floors = {}
    needs: dict[int, int] = {}
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        top = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ram-")))
        top.mkdir(parents=True, exist_ok=True)
        probe = Prober(debian, harness.Host(Path(tempfile.mkdtemp(dir=top))), args.logs)
        for size in map(int, args.sizes.split(",")):
            t = time.monotonic()
            image = build(debian, top / f"size-{size}", size, memory_check=args.memory_check)
            print(
                f"{size} MiB: initrd {image.initrd / MiB:.1f} MiB, unpacks to"
                f" {image.unpacked / MiB:.1f} MiB (built in {time.monotonic() - t:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            needs[size] = round(
                (image.kernel + image.initrd + image.unpacked + manifest.DEFAULT_RESERVE) / MiB
            )
            for syscall in args.syscalls.split(","):
                t, first = time.monotonic(), len(probe.runs)
                series = Series(probe, image, syscall)
                loads, boots = measure(series, floors)
                rows.append(
                    row(series, loads, boots, len(probe.runs) - first, time.monotonic() - t)
                )
            shutil.rmtree(top / f"size-{size}", ignore_errors=True)
    print(report(rows, needs, time.monotonic() - start, memory_check=args.memory_check))


if __name__ == "__main__":
    main()
