"""QEMU guests booting Debian's kernel with a busybox initramfs, for the kexec end-to-end tests.

Debian packages are fetched with `apt-get download` and unpacked with `dpkg -x` (never
installed: installing kexec-tools would change this machine) into a cache directory that
later runs reuse. Guests run under software emulation (`-accel tcg`: /dev/kvm may exist
here, but guests hang under it). Each guest has two serial ports: ttyS0 is the console, ttyS1
carries the test's own output lines, so kernel messages never interleave with them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

from netlab import sh
from nixos_images.layout import STATE_FILES
from nixos_images.tarball import elf

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

CACHE = Path(os.environ.get("NIXOS_IMAGES_TEST_CACHE", Path.home() / ".cache/nixos-images-tests"))
BUSYBOX = Path("/bin/busybox")
# The Python the test tarballs bundle. The assembler compiles the bundle's modules with the
# Python that runs it, so the two are of one version: Debian's 3.11 for the main suite, and
# in `tests/run --ci`'s second pass CPython 3.13 (nixpkgs' python3 at both pins), set here.
BUNDLE_PYTHON = Path(os.environ.get("NIXOS_IMAGES_BUNDLE_PYTHON", "/usr/bin/python3.11"))
MULTIARCH = (Path("/lib/x86_64-linux-gnu"), Path("/usr/lib/x86_64-linux-gnu"))
# kexec-tools links libxenctrl; these packages hold it and the libraries it needs in turn.
KEXEC_PACKAGES = (
    "kexec-tools",
    "libxenmisc4.17",
    "libxentoollog1",
    "libxencall1",
    "libxenevtchn1",
    "libxengnttab1",
    "libxenforeignmemory1",
    "libxendevicemodel1",
    "libxentoolcore1",
)
GUEST_TIMEOUT = 240


HANDOFF = Path(__file__).resolve().parent.parent / "nix/kexec/handoff.sh"


def handoff_script() -> bytes:
    """handoff.sh as the installer's initrd holds it: the placeholders for the state's file
    names and modes filled in from layout.json, as nix/lib.nix's renderHandoff does
    (test_shared_facts.py checks that the two agree)."""
    text = HANDOFF.read_text()
    for key, f in STATE_FILES.items():
        text = text.replace(f"@{key}Mode@", f"{f.mode:04o}")
        if f.public_mode is not None:
            text = text.replace(f"@{key}PublicMode@", f"{f.public_mode:04o}")
        text = text.replace(f"@{key}@", f.path)
    return text.encode()


def bundle_python_version() -> str:
    """BUNDLE_PYTHON's version, as "3.13"."""
    out = subprocess.run(
        [str(BUNDLE_PYTHON), "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def missing_tools() -> list[str]:
    """What the QEMU tests need but this machine lacks."""
    missing = [] if os.geteuid() == 0 else ["root"]
    tools = ("qemu-system-x86_64", "apt-get", "apt-cache", "dpkg", "cpio", "gzip", "ssh-keygen")
    missing += [t for t in tools if shutil.which(t) is None]
    missing += [str(p) for p in (BUSYBOX, BUNDLE_PYTHON) if not p.exists()]
    if BUSYBOX.exists() and elf.read(BUSYBOX).interpreter is not None:
        missing.append("busybox-static (this busybox is dynamically linked)")
    return missing


def unpacked(package: str) -> Path:
    """A Debian package downloaded and `dpkg -x`-ed into the cache; reused when present."""
    root = CACHE / "debian" / package
    if not (root / ".done").exists():
        downloads = CACHE / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        for old in downloads.glob(f"{package}_*.deb"):
            old.unlink()
        sh("apt-get", "download", "-q", package, cwd=downloads)
        (deb,) = downloads.glob(f"{package}_*.deb")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        sh("dpkg", "-x", str(deb), str(root))
        (root / ".done").touch()
    return root


def arm_watchdog(seconds: int) -> str:
    """Guest shell lines: load QEMU's i6300esb watchdog (-device i6300esb), arm it for seconds
    and kill its daemon, so that it keeps counting; say its state."""
    return f"""
insmod /lib/modules/watchdog.ko
insmod /lib/modules/i6300esb.ko
watchdog -T {seconds} -t 300 /dev/watchdog0
sleep 1
killall -9 watchdog
say WATCHDOG "$(cat /sys/class/watchdog/watchdog0/state)"
"""


def watchdog_modules(debian: Debian) -> dict[str, bytes | Path]:
    """The guest files arm_watchdog loads: watchdog core and the i6300esb driver."""
    drivers = debian.modules / "kernel/drivers/watchdog"
    return {f"/lib/modules/{m}.ko": drivers / f"{m}.ko" for m in ("watchdog", "i6300esb")}


def site_packages() -> list[Path]:
    """This interpreter's site-packages (typer, click): the bundle's third-party modules."""
    return [Path(p) for p in sys.path if p.endswith("site-packages")]


def static_bash() -> Path:
    """Debian's statically linked bash (bash-static): runs on a host with no loader."""
    return unpacked("bash-static") / "bin/bash-static"


@dataclass(frozen=True)
class Debian:
    kernel: Path
    modules: Path
    kexec: Path
    kexec_libs: Path


def debian() -> Debian:
    """Debian's current amd64 kernel and kexec-tools (with the libraries kexec links)."""
    depends = sh("apt-cache", "depends", "linux-image-amd64")
    package = next(
        line.split(":", 1)[1].strip()
        for line in depends.splitlines()
        if line.strip().startswith("Depends: linux-image-")
    )
    image = unpacked(package)
    (kernel,) = (image / "boot").glob("vmlinuz-*")
    (modules,) = (image / "lib/modules").iterdir()
    roots = [unpacked(p) for p in KEXEC_PACKAGES]
    libs = CACHE / "debian/kexec-libs"
    libs.mkdir(parents=True, exist_ok=True)
    for root in roots:
        for lib in (root / "usr/lib/x86_64-linux-gnu").glob("*.so*"):
            target = libs / lib.name
            if not target.exists():
                shutil.copy2(lib, target, follow_symlinks=True)
    return Debian(kernel, modules, roots[0] / "sbin/kexec", libs)


def initramfs(out: Path, files: dict[str, bytes | Path], *, compress: bool = False) -> None:
    """A newc initramfs made with GNU cpio: busybox at /bin/busybox plus files (path -> data).

    Executable files: /init and anything under /bin, or a source Path that is executable.
    """
    stage = out.with_suffix(".d")
    shutil.rmtree(stage, ignore_errors=True)
    for d in ("bin", "dev", "proc", "sys", "run", "tmp", "etc", "root"):
        (stage / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, stage / "bin/busybox")
    for name, content in files.items():
        dest = stage / name.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy2(content, dest)
        else:
            dest.write_bytes(content)
        if name == "/init" or name.startswith("/bin/"):
            dest.chmod(0o755)
    listing = sh("find", ".", "-mindepth", "1", cwd=stage)
    archive = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
        input=listing.encode(),
        capture_output=True,
        cwd=stage,
        check=True,
    ).stdout
    if compress:
        archive = subprocess.run(
            ["gzip", "-9n"], input=archive, capture_output=True, check=True
        ).stdout
    out.write_bytes(archive)
    shutil.rmtree(stage)


# The start of every guest's /init: busybox applets, the pseudo file systems, the data port.
INIT_PRELUDE = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
stty -F /dev/ttyS1 raw -echo 115200
say() { echo "NIT $*" > /dev/ttyS1; }
"""


@dataclass(frozen=True)
class GuestRun:
    console: str
    lines: list[str]  # what the guest said on ttyS1 with `say`, without the "NIT " prefix

    def values(self, key: str) -> list[str]:
        return [
            line.split(" ", 1)[1] if " " in line else ""
            for line in self.lines
            if line.split(" ", 1)[0] == key
        ]

    def value(self, key: str) -> str:
        found = self.values(key)
        if len(found) != 1:
            msg = f"expected one {key} line, got {found}\n--- console ---\n{self.console[-4000:]}"
            raise AssertionError(msg)
        return found[0]

    def blob(self, key: str) -> bytes:
        """Base64 the guest said line by line under key."""
        return base64.b64decode("".join(self.values(key)))

    def tar(self, key: str) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
        """A tar.gz the guest sent as base64 lines: name -> (member, content of files)."""
        out: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
        with tarfile.open(fileobj=io.BytesIO(self.blob(key)), mode="r:gz") as tar:
            for member in tar.getmembers():
                f = tar.extractfile(member) if member.isfile() else None
                out[member.name] = (member, f.read() if f else None)
        return out


class Machine(TypedDict, total=False):
    """A guest's hardware and kernel command line, beside its kernel and initrd. With reboot,
    a reboot starts the same kernel and initrd again, as firmware would boot the disk's
    system again; disks are raw images on virtio (vda, vdb, ...); devices are QEMU's -device
    arguments; nic its network card (-nic)."""

    memory_mib: int
    append: str
    reboot: bool
    disks: Sequence[Path]
    devices: Sequence[str]
    nic: str


def _argv(workdir: Path, kernel: Path, initrd: Path, machine: Machine) -> list[str]:
    """QEMU's command line for a guest whose two serial lines go to workdir's files."""
    console, data = workdir / "console.log", workdir / "data.log"
    append, disks = machine.get("append", ""), machine.get("disks", ())
    return [
        "qemu-system-x86_64",
        "-accel", "tcg",
        "-m", str(machine.get("memory_mib", 512)),
        "-smp", "1",
        "-display", "none",
        *([] if machine.get("reboot") else ["-no-reboot"]),
        *(a for d in disks for a in ("-drive", f"file={d},format=raw,if=virtio")),
        *(a for d in machine.get("devices", ()) for a in ("-device", d)),
        "-kernel", str(kernel),
        "-initrd", str(initrd),
        "-append", f"console=ttyS0 panic=-1 loglevel=4 {append}".strip(),
        "-nic", machine.get("nic", "user,model=e1000"),
        "-serial", f"file:{console}",
        "-serial", f"file:{data}",
    ]  # fmt: skip


def said(workdir: Path) -> GuestRun:
    """What the guest has said so far (its console, and its `say` lines)."""
    console, data = workdir / "console.log", workdir / "data.log"
    text = data.read_text(errors="replace") if data.exists() else ""
    lines = [line.strip()[4:] for line in text.splitlines() if line.strip().startswith("NIT ")]
    return GuestRun(console.read_text(errors="replace") if console.exists() else "", lines)


def boot(
    workdir: Path,
    kernel: Path,
    initrd: Path,
    *,
    timeout: int = GUEST_TIMEOUT,
    **machine: Unpack[Machine],
) -> GuestRun:
    """Boot a guest until it powers off (or the timeout), return what it said."""
    argv = _argv(workdir, kernel, initrd, machine)
    # On a timeout, what the guest said so far tells the test what went wrong.
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(argv, check=True, timeout=timeout, capture_output=True)
    return said(workdir)


@dataclass(frozen=True)
class Running:
    """A guest that is up: its QEMU process, where it writes, and the host port that reaches
    its port 22."""

    process: subprocess.Popen[bytes]
    workdir: Path
    ssh_port: int

    def wait_for(self, key: str, timeout: float = GUEST_TIMEOUT) -> GuestRun:
        """What the guest said, once it has said key (AssertionError, with its console, when
        it powers off or the time runs out first)."""
        deadline = time.monotonic() + timeout
        while True:
            run = said(self.workdir)
            if run.values(key):
                return run
            if self.process.poll() is not None or time.monotonic() > deadline:
                msg = f"the guest never said {key}: {run.lines}\n{run.console[-4000:]}"
                raise AssertionError(msg)
            time.sleep(0.5)


@contextlib.contextmanager
def running(
    workdir: Path, kernel: Path, initrd: Path, *, guest: str, net: str = ""
) -> Iterator[Running]:
    """Boot a guest and let the test talk to it while it runs: the host's 127.0.0.1:PORT is
    the guest's guest:22 (user networking, net: more of its options, such as the subnet); the
    guest is killed when the block ends, if it has not powered off by then."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    nic = f"user,model=e1000{net},hostfwd=tcp:127.0.0.1:{port}-{guest}:22"
    argv = _argv(workdir, kernel, initrd, {"nic": nic})
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield Running(process, workdir, port)
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        if process.poll() is None:
            process.kill()
            process.wait()
