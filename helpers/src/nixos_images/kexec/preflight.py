"""Can this host kexec into this image? Facts are gathered once; the checks are pure.

Every check that fails says what is wrong and how to fix it in one line. The launcher changes
nothing on the host unless all of them pass.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images.kexec import drivers
from nixos_images.kexec.models import Syscall
from nixos_images.sizes import MiB

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nixos_images.kexec import collect, manifest

# kexec_file_load is the better default from 6.1 on (it is what lockdown requires, and
# arm64 kernels before that could not use it with most initrds).
FILE_LOAD_FIRST_FROM = (6, 1)


@dataclass(frozen=True)
class Facts:
    """What the checks look at, read from /proc, /sys and / of the running host."""

    euid: int
    machine: str
    kernel_release: str
    kexec_load_disabled: str | None  # None: the kernel has no kexec at all
    kexec_load_limit_reboot: str | None  # None: older kernel without the limit
    lockdown: str | None  # the selected mode, None without the lockdown LSM
    container: str | None
    mem_total: int
    mem_available: int
    systemd: bool


# What the new kernel keeps beside the initrd while unpacking it, measured in QEMU: the boot
# floors of bench/kexec_ram.py (docs/benchmarks.md) lie 33 to 53 MiB above kernel + initrd
# + 2 x unpacked, on a 32 MiB grid.
UNPACK_MARGIN = 32 * MiB


@dataclass(frozen=True)
class Sizes:
    """Bytes the image takes: files in the tarball, and RAM while loading and once booted."""

    kernel: int
    initrd: int
    initrd_unpacked: int
    state: int
    reserve: int

    @property
    def load(self) -> int:
        """RAM the loaded image holds until `kexec -e`."""
        return self.kernel + self.initrd + self.state

    @property
    def loading(self) -> int:
        """RAM the old host needs free while loading: the initrd twice (kexec-tools' or the
        kernel's read buffer, and the image's pages it is copied into)."""
        return self.kernel + 2 * (self.initrd + self.state)

    @property
    def unpacking(self) -> int:
        """RAM the new kernel needs to unpack the initrd: it keeps the compressed initrd while
        it unpacks into a rootfs that is a tmpfs of half the RAM it counts (no root= on the
        command line), so the unpacked initrd and state take twice their size."""
        return self.kernel + self.initrd + 2 * (self.initrd_unpacked + self.state) + UNPACK_MARGIN

    @property
    def running(self) -> int:
        """RAM the running installer needs: its unpacked initrd and the reserve (the compressed
        initrd is freed once unpacked)."""
        return self.kernel + self.initrd_unpacked + self.state + self.reserve

    @property
    def boot(self) -> int:
        """RAM the installer needs after the kexec: to unpack, and to run."""
        return max(self.unpacking, self.running)


@dataclass(frozen=True)
class Check:
    """One check's result; detail is the line the user reads."""

    name: str
    ok: bool = field(kw_only=True)
    detail: str = field(kw_only=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _meminfo(text: str, key: str) -> int:
    m = re.search(rf"^{key}:\s+(\d+) kB$", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else 0


def lockdown_mode(text: str | None) -> str | None:
    """'none [integrity] confidentiality' -> 'integrity'."""
    if text is None:
        return None
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else None


def container_kind(root: Path) -> str | None:
    """docker, podman, LXC (and anything else systemd would call a container), OpenVZ."""
    if (root / ".dockerenv").exists():
        return "docker"
    if (root / "run/.containerenv").exists():
        return "podman"
    try:
        environ = (root / "proc/1/environ").read_bytes().split(b"\0")
    except OSError:
        environ = []
    for entry in environ:
        if entry.startswith(b"container=") and entry != b"container=":
            return entry.removeprefix(b"container=").decode(errors="replace")
    if (root / "proc/vz").exists() and not (root / "proc/bc").exists():
        return "openvz"
    return None


def gather(root: Path = Path("/")) -> Facts:
    """Read the facts from a running system (root is / except in tests)."""
    meminfo = _read(root / "proc/meminfo") or ""
    uname = os.uname()
    return Facts(
        euid=os.geteuid(),
        machine=uname.machine,
        kernel_release=uname.release,
        kexec_load_disabled=_read(root / "proc/sys/kernel/kexec_load_disabled"),
        kexec_load_limit_reboot=_read(root / "proc/sys/kernel/kexec_load_limit_reboot"),
        lockdown=lockdown_mode(_read(root / "sys/kernel/security/lockdown")),
        container=container_kind(root),
        mem_total=_meminfo(meminfo, "MemTotal"),
        mem_available=_meminfo(meminfo, "MemAvailable"),
        systemd=(root / "run/systemd/system").is_dir(),
    )


def kernel_version(release: str) -> tuple[int, int]:
    """'6.1.0-56-amd64' -> (6, 1)."""
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def locked_down(facts: Facts) -> bool:
    """Whether kernel lockdown restricts kexec."""
    return facts.lockdown not in {None, "none"}


def syscall_order(requested: Syscall | None, facts: Facts) -> list[Syscall]:
    """Which syscalls to try, in order (requested None: auto). Under lockdown only
    kexec_file_load can work."""
    if locked_down(facts):
        return [Syscall.FILE]
    if requested is not None:
        return [requested]
    if kernel_version(facts.kernel_release) >= FILE_LOAD_FIRST_FROM:
        return [Syscall.FILE, Syscall.LOAD]
    return [Syscall.LOAD, Syscall.FILE]


def _mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB"


def _root(facts: Facts) -> Check:
    if facts.euid == 0:
        return Check("root", ok=True, detail="running as root")
    detail = f"running as uid {facts.euid}: run it as root (sudo kexec/run)"
    return Check("root", ok=False, detail=detail)


def _architecture(facts: Facts, image_machine: str) -> Check:
    if facts.machine == image_machine:
        return Check("architecture", ok=True, detail=f"{facts.machine} host and image")
    detail = (
        f"this image is for {image_machine} but the host is {facts.machine}:"
        f" use the {facts.machine}-linux tarball"
    )
    return Check("architecture", ok=False, detail=detail)


def _container(facts: Facts) -> Check:
    if not facts.container:
        return Check("container", ok=True, detail="not in a container")
    detail = (
        f"this is a {facts.container} container, which cannot replace the kernel:"
        " run kexec/run on the virtual machine or server itself"
    )
    return Check("container", ok=False, detail=detail)


def _kexec(facts: Facts) -> Check:
    if facts.kexec_load_disabled is None:
        problem = (
            "the running kernel has no kexec support (no /proc/sys/kernel/kexec_load_disabled):"
            " boot a kernel built with CONFIG_KEXEC, or use the ISO or netboot image"
        )
    elif facts.kexec_load_disabled != "0":
        problem = (
            "kexec is disabled until the next reboot (kernel.kexec_load_disabled = 1):"
            " reboot, stop whatever sets it, then run this again"
        )
    elif facts.kexec_load_limit_reboot == "0":
        problem = (
            "no kexec loads are left until the next reboot (kernel.kexec_load_limit_reboot = 0):"
            " reboot, then run this again"
        )
    else:
        return Check("kexec", ok=True, detail="kexec allowed")
    return Check("kexec", ok=False, detail=problem)


def _lockdown(facts: Facts, requested_syscall: Syscall | None) -> Check:
    if not locked_down(facts):
        return Check("lockdown", ok=True, detail=f"lockdown {facts.lockdown or 'not built in'}")
    ok = requested_syscall is not Syscall.LOAD
    detail = (
        f"kernel lockdown is '{facts.lockdown}' (Secure Boot?): only kexec_file_load can"
        " work, and only with a kernel this host's keys have signed; if it is refused,"
        " disable Secure Boot in the firmware"
    )
    if not ok:
        detail += "; --syscall load cannot work here"
    return Check("lockdown", ok=ok, detail=detail)


def _memory(facts: Facts, sizes: Sizes) -> Check:
    if sizes.unpacking >= sizes.running:
        figures = (
            f"to unpack: kernel {_mib(sizes.kernel)} + initrd {_mib(sizes.initrd)} + twice the"
            f" unpacked initrd {_mib(sizes.initrd_unpacked)} and state {_mib(sizes.state)}"
            f" (its rootfs is a tmpfs of half the RAM) + {_mib(UNPACK_MARGIN)}"
        )
    else:
        figures = (
            f"to run: kernel {_mib(sizes.kernel)} + unpacked initrd"
            f" {_mib(sizes.initrd_unpacked)} + state {_mib(sizes.state)}"
            f" + reserve {_mib(sizes.reserve)}"
        )
    if facts.mem_total < sizes.boot:
        problem = (
            f"not enough RAM: the installer needs {_mib(sizes.boot)} ({figures}) but MemTotal is"
            f" {_mib(facts.mem_total)} (swap does not count): use a machine with more RAM"
            " (docs/images.md, RAM; an expert override:"
            " --kexec-extra-flags --nixos-images-skip-memory-check)"
        )
    elif facts.mem_available < sizes.loading:
        problem = (
            f"only {_mib(facts.mem_available)} available now, loading the image takes"
            f" {_mib(sizes.loading)} (the initrd twice while it is read in): stop memory-hungry"
            " services, then run this again"
        )
    else:
        detail = f"needs {_mib(sizes.boot)} ({figures}), has {_mib(facts.mem_total)}"
        return Check("memory", ok=True, detail=detail)
    return Check("memory", ok=False, detail=problem)


def _tarball(missing: list[str]) -> Check:
    if not missing:
        return Check("tarball", ok=True, detail="complete")
    detail = f"missing {', '.join(missing)}: unpack the tarball again, it is incomplete"
    return Check("tarball", ok=False, detail=detail)


def check(
    facts: Facts,
    image_machine: str,
    sizes: Sizes,
    missing: list[str],
    requested_syscall: Syscall | None,
    *,
    skip_memory: bool = False,
) -> list[Check]:
    """Every check, passed or not, in the order a user would fix them."""
    memory = _memory(facts, sizes)
    if skip_memory and not memory.ok:
        memory = Check("memory", ok=True, detail=f"{memory.detail} (skipped as told)")
    return [
        _root(facts),
        _architecture(facts, image_machine),
        _container(facts),
        _kexec(facts),
        _lockdown(facts, requested_syscall),
        memory,
        _tarball(missing),
    ]


def pending_check(root: Path) -> Check:
    """An image already loaded: an earlier kexec/run's boot is pending (or someone else's)."""
    try:
        loaded = (root / "sys/kernel/kexec_loaded").read_text().strip() == "1"
    except OSError:
        loaded = False
    if not loaded:
        return Check("pending", ok=True, detail="no kexec image loaded yet")
    return Check(
        "pending",
        ok=False,
        detail="a kexec image is already loaded (an earlier kexec/run's boot is pending):"
        " wait for it, or drop it with `kexec -u` and run this again",
    )


# Beyond the initrd copy: the cpio's headers and padding, and the file system's own needs.
SPACE_MARGIN = 8 * MiB


def space_check(tarball: Path, sizes: Sizes) -> Check:
    """Room beside the tarball for the initrd copy with the state appended (written first)."""
    need = sizes.initrd + sizes.state + SPACE_MARGIN
    try:
        free = shutil.disk_usage(tarball).free
    except OSError as e:
        return Check("space", ok=False, detail=f"{tarball}: {e.strerror}")
    if free >= need:
        return Check("space", ok=True, detail=f"{free // MiB} MiB free in {tarball}")
    return Check(
        "space",
        ok=False,
        detail=f"{tarball} has {free // MiB} MiB free, the initrd with the state needs"
        f" {need // MiB} MiB: free some space there, or unpack the tarball where there is more",
    )


def keys_check(state: collect.Collected, image: manifest.Manifest, *, no_keys_ok: bool) -> Check:
    """No ssh key carried over and no console password: nobody could log in after the kexec,
    and the machine would stay unreachable until someone power-cycles it."""
    if state.keys:
        return Check("keys", ok=True, detail=f"{len(state.keys)} authorized keys")
    if image.console_password:
        return Check("keys", ok=True, detail="none; the console shows a root password")
    if no_keys_ok:
        return Check("keys", ok=True, detail="none, and --no-keys-ok was given")
    sources = ", ".join(state.key_sources) or "none of root's or the sudo user's key files"
    command = (
        f"; your logins came from {state.keys_command}, which the installer cannot ask"
        if state.keys_command
        else ""
    )
    return Check(
        "keys",
        ok=False,
        detail=f"no usable ssh key would be carried over (read: {sources}{command}) and this"
        " installer has no console password: give your key with --ssh-key (through"
        " nixos-anywhere: --nixos-images-ssh-key=), or pass --no-keys-ok (through"
        " nixos-anywhere: --nixos-images-no-keys-ok) if you can reach the console",
    )


# The kernel's COMMAND_LINE_SIZE on x86 and arm64, its terminating NUL included: longer, and
# the installer boots with its command line cut short (no init=, or half a console=).
CMDLINE_LIMIT = 2048


def cmdline_check(cmdline: str) -> Check:
    """The installer's command line, with what --append= added, fits the kernel's limit."""
    size = len(cmdline.encode()) + 1
    if size <= CMDLINE_LIMIT:
        return Check("cmdline", ok=True, detail=f"{size} of {CMDLINE_LIMIT} bytes")
    return Check(
        "cmdline",
        ok=False,
        detail=f"the installer's command line would be {size} bytes, the kernel takes"
        f" {CMDLINE_LIMIT}: append less with --append=",
    )


def summary(state: collect.Collected) -> str:
    """One line on what is carried over."""
    return (
        f"{len(state.host_keys)} host key files, {len(state.keys)} authorized keys,"
        f" {len(state.units)} network units, machine-id {'kept' if state.machine_id else 'new'}"
    )


def state_checks(
    state: collect.Collected | None,
    problem: str | None,
    image: manifest.Manifest,
    *,
    no_keys_ok: bool,
) -> list[Check]:
    """The host's state: read (or why not), and whether anyone could log in after the kexec.
    None of it when the state was not read (not root, or the tarball is incomplete)."""
    if problem is not None:
        return [Check("state", ok=False, detail=f"cannot read the host's state: {problem}")]
    if state is None:
        return []
    return [
        Check("state", ok=True, detail=summary(state)),
        keys_check(state, image, no_keys_ok=no_keys_ok),
    ]


def driver_check(
    nics: Sequence[drivers.Nic], known: drivers.Drivers | None, *, skip: bool
) -> Check:
    """The installer's kernel drives every NIC that carries the network (kexec/drivers.py)."""
    if known is None:
        return Check("drivers", ok=True, detail="not checked: this tarball lists no drivers")
    found = drivers.problems(nics, known)
    warned = "".join(f"; {w}" for w in found.warnings)
    if not found.missing:
        names = ", ".join(n.name for n in nics if n.modalias) or "no NIC with a device"
        return Check("drivers", ok=True, detail=f"the installer's kernel drives {names}{warned}")
    missing = "; ".join(found.missing)
    if skip:
        return Check("drivers", ok=True, detail=f"{missing} (skipped as told){warned}")
    return Check(
        "drivers",
        ok=False,
        detail=f"{missing}: the installer would come up without that network; pass"
        " --kexec-extra-flags --nixos-images-skip-driver-check if another NIC carries it"
        f"{warned}",
    )
