"""The checks kexec/run makes before it changes anything (nixos_images.kexec.preflight): each
refusal says what is wrong and how to fix it.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from conftest import require
from fakehost import GOOD, plan, without_keys
from nixos_images.errors import HelperError
from nixos_images.kexec import (
    launcher,
    manifest,
    preflight,
)
from nixos_images.kexec.models import Syscall, SyscallChoice
from nixos_images.kexec.plan import make_plan

SIZES = preflight.Sizes(
    kernel=12 << 20, initrd=400 << 20, initrd_unpacked=500 << 20, state=1 << 20, reserve=256 << 20
)


def failures(
    facts: preflight.Facts, syscall: Syscall | None = None, sizes: preflight.Sizes = SIZES
) -> dict[str, str]:
    return {
        c.name: c.detail for c in preflight.check(facts, "x86_64", sizes, [], syscall) if not c.ok
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
                "needs 1446 MiB (to unpack: kernel 12 MiB + initrd 400 MiB + twice the unpacked"
                " initrd 500 MiB and state 1 MiB (its rootfs is a tmpfs of half the RAM)"
                " + 32 MiB) but MemTotal is 1024 MiB (swap does not count)"
            ),
        ),
        (
            {"mem_available": 300 << 20},
            "memory",
            "only 300 MiB available now, loading the image takes 814 MiB",
        ),
    ],
)
def test_each_refusal_says_what_is_wrong_and_how_to_fix_it(
    change: dict[str, object], name: str, says: str
) -> None:
    got = failures(dataclasses.replace(GOOD, **change))  # type: ignore[arg-type]
    assert list(got) == [name]
    assert says in got[name]


def benchmark_floors() -> list[tuple[int, int, int]]:
    """(initrd MiB, the lowest and the highest MemTotal in MiB it booted from, over the two
    syscalls) of docs/benchmarks.md's RAM table."""
    table = Path(__file__).resolve().parent.parent / "docs/benchmarks.md"
    # The Nix build's check phase has the package's sources only, no docs; CI always has them.
    require(
        [] if table.is_file() else [f"{table.name} (not in the package's sources)"],
        "the RAM floors",
    )
    text = table.read_text()
    rows = re.findall(r"^\| (\d+) \| kexec_\w+ \| [^|]+ \| \d+ \((\d+)\) \|", text, re.MULTILINE)
    floors: dict[int, list[int]] = {}
    for size, floor in rows:
        floors.setdefault(int(size), []).append(int(floor))
    return [(size, min(f), max(f)) for size, f in sorted(floors.items())]


def test_the_memory_check_follows_the_measured_boot_floors() -> None:
    """Every host at or above a measured boot floor (of both syscalls: kexec/run tries one,
    then the other) passes; one 32 MiB below either (where the installer failed to unpack,
    or booted without its state) is refused."""
    floors = benchmark_floors()
    assert [size for size, _, _ in floors] == [100, 200, 400, 600]
    for size, lowest, floor in floors:
        sizes = preflight.Sizes(
            kernel=8247232, initrd=size << 20, initrd_unpacked=size << 20, state=64 << 10,
            reserve=0,
        )  # fmt: skip
        at = dataclasses.replace(GOOD, mem_total=floor << 20, mem_available=floor << 20)
        below = dataclasses.replace(at, mem_total=(lowest - 32) << 20)
        assert "memory" not in failures(at, sizes=sizes), (size, floor)
        assert "memory" in failures(below, sizes=sizes), (size, floor)


def test_the_reserve_decides_when_running_needs_more_than_unpacking() -> None:
    small = preflight.Sizes(
        kernel=12 << 20, initrd=50 << 20, initrd_unpacked=60 << 20, state=0, reserve=512 << 20
    )
    assert small.boot == small.running == (12 + 60 + 512) << 20
    refused = failures(dataclasses.replace(GOOD, mem_total=500 << 20), sizes=small)["memory"]
    assert "(to run: kernel 12 MiB + unpacked initrd 60 MiB + state 0 MiB + reserve 512 MiB)" in (
        refused
    )
    assert refused.endswith("--kexec-extra-flags --nixos-images-skip-memory-check)")


def test_lockdown_allows_only_kexec_file_load() -> None:
    locked = dataclasses.replace(GOOD, lockdown="integrity")
    assert failures(locked) == {}
    assert preflight.syscall_order(None, locked) == [Syscall.FILE]
    assert "--syscall load cannot work here" in failures(locked, Syscall.LOAD)["lockdown"]


@pytest.mark.parametrize(
    ("release", "requested", "order"),
    [
        ("6.1.0-56-amd64", None, [Syscall.FILE, Syscall.LOAD]),
        ("6.18.2", None, [Syscall.FILE, Syscall.LOAD]),
        ("5.10.0-30-amd64", None, [Syscall.LOAD, Syscall.FILE]),
        ("4.19.0", Syscall.FILE, [Syscall.FILE]),
        ("6.1.0", Syscall.LOAD, [Syscall.LOAD]),
    ],
)
def test_syscall_order(release: str, requested: Syscall | None, order: list[Syscall]) -> None:
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


def test_no_usable_key_and_no_console_password_is_refused(
    setup: tuple[Path, Path, Path],
) -> None:
    """Else the machine boots an installer nobody can log in to, until a power cycle."""
    tb, root, log = setup
    without_keys(root)
    keys = {c.name: c for c in plan(tb, root).checks}["keys"]
    assert not keys.ok
    assert keys.detail.startswith("no usable ssh key would be carried over (read: /root/")
    assert keys.detail.endswith(
        "or pass --no-keys-ok (through nixos-anywhere: --nixos-images-no-keys-ok) if you can"
        " reach the console"
    )
    assert not plan(tb, root).ok
    assert not log.exists()


def test_no_keys_is_fine_with_a_console_password_or_when_told(
    setup: tuple[Path, Path, Path],
) -> None:
    tb, root, _ = setup
    without_keys(root)
    told = make_plan(
        tb,
        extra_flags="",
        syscall=SyscallChoice.AUTO,
        delay=0,
        root=root,
        facts=GOOD,
        no_keys_ok=True,
    )
    assert told.ok, told.checks
    # nixos-anywhere's only way to say it: a --kexec-extra-flags token.
    through = plan(tb, root, extra_flags="--nixos-images-no-keys-ok")
    assert through.ok, through.checks
    assert {c.name: c.detail for c in through.checks}["keys"] == (
        "none, and --no-keys-ok was given"
    )
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


def test_an_image_already_loaded_is_a_failed_check(setup: tuple[Path, Path, Path]) -> None:
    """After the first launcher scheduled its boot, the loaded image keeps the next one out."""
    tb, root, _ = setup
    (root / "sys/kernel").mkdir(parents=True)
    (root / "sys/kernel/kexec_loaded").write_text("1\n")
    pending = {c.name: c for c in plan(tb, root).checks}["pending"]
    assert not pending.ok
    assert "already loaded" in pending.detail
    assert "kexec -u" in pending.detail
