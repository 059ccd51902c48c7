"""Benchmark the kexec launcher: time to "machine will boot", and what the bundle costs.

Run as root: .venv/bin/python bench/kexec.py  (figures go into docs/benchmarks.md)

The tarball bundles Debian's python3.11 and this machine's `ip`; `kexec` is /bin/true, so
loading takes no time and nothing is booted: what is timed is the launcher itself (start,
checks, `ip` dumps, planning the network units, the cpio, the initrd copy, scheduling).
This machine is a container without kexec, so the driver replaces the host facts with a
suitable host's; everything else is the real code path, started through the bundled loader.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path

from common import best_ms
from nixos_images.tarball import assemble

REPO = Path(__file__).resolve().parent.parent
DEBIAN_PYTHON = Path("/usr/bin/python3.11")
MULTIARCH = [Path("/lib/x86_64-linux-gnu"), Path("/usr/lib/x86_64-linux-gnu")]
DRIVER = """
import dataclasses, sys
from nixos_images.kexec import launcher, preflight
real = preflight.gather
def gather(root):
    return dataclasses.replace(
        real(root), container=None, kexec_load_disabled="0", lockdown="none", systemd=False
    )
preflight.gather = gather
# This machine has no authorized keys: the keys check would refuse, as it should.
sys.argv = ["kexec/run", "--tarball-dir", sys.argv[1], "--no-keys-ok", *sys.argv[2:]]
launcher.main()
"""


def build(work: Path, initrd_mib: int, kernel_mib: int = 12) -> Path:
    """A tarball with a random (incompressible, like a real one) kernel and initrd; with
    both at 0 MiB the tarball is what the bundle adds to the download."""
    (work / "kernel").write_bytes(os.urandom(kernel_mib << 20))
    with gzip.GzipFile(work / "initrd", "wb", compresslevel=1, mtime=0) as f:
        f.write(os.urandom(initrd_mib << 20))
    out = work / f"kexec-{kernel_mib}-{initrd_mib}.tar.gz"
    site = [Path(p) for p in sys.path if p.endswith("site-packages")]
    assemble.assemble(
        out,
        kernel=work / "kernel",
        initrd=work / "initrd",
        cmdline="init=/init",
        python=DEBIAN_PYTHON,
        python_path=[REPO / "helpers/src", *site],
        tools={"kexec": Path("/bin/true"), "ip": Path("/usr/bin/ip")},
        library_path=MULTIARCH,
    )
    return out


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack a tarball under dest; returns its kexec/ directory."""
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="tar")
    return dest / "kexec"


def bundle_sizes(tarball: Path) -> dict[str, int]:
    """Unpacked bytes by part of the bundle (kernel and initrd left out)."""
    parts: dict[str, int] = {}
    with tarfile.open(tarball) as tar:
        for m in tar.getmembers():
            if not m.isfile() or m.name in {"kexec/bzImage", "kexec/initrd"}:
                continue
            name = m.name.removeprefix("kexec/")
            part = (
                "stdlib + our code (zip)"
                if name.endswith(".zip")
                else "extension modules"
                if "lib-dynload" in name
                else name
                if name.startswith("bin/")
                else "libraries + loader"
                if name.startswith("lib/")
                else "run, manifest"
            )
            parts[part] = parts.get(part, 0) + m.size
    return parts


def main() -> None:
    """Print the report."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small = build(work, 0)
        kexec = unpack(small, work / "small")
        image = json.loads((kexec / "manifest.json").read_text())
        python = [
            str(kexec / image["loader"]),
            "--library-path",
            str(kexec / "lib"),
            str(kexec / "bin/python3"),
            "-S",
            "-B",
        ]
        os.environ["PYTHONHOME"] = str(kexec / "python")  # as kexec/run sets it
        bare = best_ms([*python, "-c", "pass"])
        helps = best_ms(["sh", str(kexec / "run"), "--help"])
        dry = best_ms([*python, "-c", DRIVER, str(kexec), "--dry-run", "--json"])
        launch = best_ms([*python, "-c", DRIVER, str(kexec), "--delay", "0"])
        big = unpack(build(work, 300), work / "big")
        launch_big = best_ms([*python, "-c", DRIVER, str(big), "--delay", "0"], runs=5)
        empty = build(work, 0, kernel_mib=0)
        parts = bundle_sizes(small)
        compressed = empty.stat().st_size

    print(f"bundled python -c pass (via loader):        {bare:7.1f} ms")
    print(f"kexec/run --help:                           {helps:7.1f} ms")
    print(f"launcher --dry-run --json:                  {dry:7.1f} ms")
    print(f"launcher to 'machine will boot', 0 MiB:     {launch:7.1f} ms")
    print(f"launcher to 'machine will boot', 300 MiB:   {launch_big:7.1f} ms")
    print(f"bundle in the .tar.gz (compressed):         {compressed / 2**20:7.1f} MiB")
    print(f"bundle unpacked:                            {sum(parts.values()) / 2**20:7.1f} MiB")
    for part, size in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {part:42s} {size / 2**20:7.2f} MiB")


if __name__ == "__main__":
    main()
