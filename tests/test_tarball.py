"""Building the kexec tarball: ELF reading, the interpreter bundle, the tarball itself.

The bundle test runs kexec/run from an unpacked tarball inside a chroot that holds nothing
but the tarball and busybox: no /lib64 loader, no libc, no Python. If the bundle leaned on
anything of this machine's, it would fail there.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import json
import lzma
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import planted
import qemu
from conftest import require
from nixos_images.errors import InputError
from nixos_images.tarball import assemble, elf
from nixos_images.tarball.bundle import BuildError, resolve_libraries

REPO = Path(__file__).resolve().parent.parent


def readelf_needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out.stdout)


def test_elf_agrees_with_readelf_on_a_dynamic_program() -> None:
    require([t for t in ("readelf", "ip") if not shutil.which(t)], "the ELF check")
    ip = Path(shutil.which("ip") or "")
    info = elf.read(ip)
    assert info.machine == "x86_64"
    assert info.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert list(info.needed) == readelf_needed(ip)


def test_static_busybox_has_no_interpreter() -> None:
    require([] if qemu.BUSYBOX.exists() else ["busybox-static"], "the static ELF check")
    info = elf.read(qemu.BUSYBOX)
    assert info.interpreter is None
    assert info.needed == ()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"#!/bin/sh\n", "not an ELF file"),
        (b"\x7fELF\x01\x01" + bytes(60), "only 64-bit little-endian"),
        (b"\x7fELF\x02\x01" + bytes(10), "truncated or damaged"),
    ],
)
def test_what_is_not_a_readable_elf_is_an_elf_error(tmp_path: Path, data: bytes, says: str) -> None:
    (tmp_path / "f").write_bytes(data)
    with pytest.raises(elf.ElfError, match=says):
        elf.read(tmp_path / "f")


def test_a_library_nowhere_to_be_found_names_who_needs_it(tmp_path: Path) -> None:
    require([] if shutil.which("ip") else ["ip"], "the library resolution check")
    with pytest.raises(BuildError, match=r"libbpf\.so\.1, needed by .*/ip, is in none of: "):
        resolve_libraries([Path(shutil.which("ip") or "")], [tmp_path])


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, lzma.compress, lambda b: b],
    ids=["gzip", "xz", "none"],
)
def test_unpacked_size_of_an_initrd(compress: object) -> None:
    payload = b"070701" + bytes(range(256)) * 999
    data = compress(payload)  # type: ignore[operator]
    assert assemble.unpacked_size(io.BytesIO(data)) == len(payload)


def test_zstd_initrd_needs_its_size_given() -> None:
    with pytest.raises(InputError, match="give --initrd-unpacked-size"):
        assemble.unpacked_size(io.BytesIO(b"\x28\xb5\x2f\xfd" + bytes(20)))


def unpack(tar: tarfile.TarFile, dest: Path) -> None:
    """extractall with the "tar" filter where this Python has it (3.11.4+; Debian 12's
    3.11.2, which the sandbox check runs, has not)."""
    if hasattr(tarfile, "tar_filter"):
        tar.extractall(dest, filter="tar")
    else:
        tar.extractall(dest)  # noqa: S202 - our own tarball, built by the test


def build(tmp: Path, name: str, source_date_epoch: str | None = None) -> Path:
    """A tarball of the bundled Python (qemu.BUNDLE_PYTHON), this machine's ip, and static
    busybox standing in for kexec; SOURCE_DATE_EPOCH as given (unset: none)."""
    out = tmp / name
    (tmp / "kernel").write_bytes(b"kernel")
    (tmp / "initrd").write_bytes(gzip.compress(b"070701 initrd", mtime=0))
    with pytest.MonkeyPatch.context() as env:
        if source_date_epoch is None:
            env.delenv("SOURCE_DATE_EPOCH", raising=False)
        else:
            env.setenv("SOURCE_DATE_EPOCH", source_date_epoch)
        _assemble(tmp, out)
    return out


def _assemble(tmp: Path, out: Path) -> None:
    site = [Path(p) for p in sys.path if p.endswith("site-packages")]
    assemble.assemble(
        out,
        kernel=tmp / "kernel",
        initrd=tmp / "initrd",
        cmdline="init=/init",
        python=qemu.BUNDLE_PYTHON,
        python_path=[REPO / "helpers/src", *site],
        tools={"kexec": qemu.BUSYBOX, "ip": Path(shutil.which("ip") or "ip")},
        library_path=list(qemu.MULTIARCH),
    )


def tarball_missing() -> list[str]:
    """What building a test tarball needs but this machine lacks."""
    missing = [str(p) for p in (qemu.BUNDLE_PYTHON, qemu.BUSYBOX) if not p.exists()]
    return missing + ([] if shutil.which("ip") else ["ip"])


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(tarball_missing(), "building a tarball")
    return build(tmp_path_factory.mktemp("tarball"), "kexec.tar.gz")


def test_tarball_layout_and_manifest(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        image = json.load(tar.extractfile("kexec/manifest.json"))  # type: ignore[arg-type]
    assert {"kexec/run", "kexec/bzImage", "kexec/initrd", "kexec/bin/python3"} <= set(members)
    assert members["kexec/run"].mode == 0o755
    assert all(m.uid == 0 and m.gid == 0 and m.mtime == 1 for m in members.values())
    assert image["machine"] == "x86_64"
    assert image["tools"] == {
        "kexec": {"path": "bin/kexec", "dynamic": False},
        "ip": {"path": "bin/ip", "dynamic": True},
    }
    assert f"kexec/{image['loader']}" in members
    assert image["initrd_unpacked_size"] == len(b"070701 initrd")
    assert not [n for n in members if "/tkinter/" in n or n.endswith("_ssl.so")]


def test_tarball_dates_follow_source_date_epoch(tmp_path: Path) -> None:
    """The Nix sandbox sets SOURCE_DATE_EPOCH=315532800; every member then carries it."""
    require(tarball_missing(), "building a tarball")
    with tarfile.open(build(tmp_path, "dated.tar.gz", "315532800")) as tar:
        assert {m.mtime for m in tar.getmembers()} == {315532800}


def test_tarball_is_reproducible(tarball: Path, tmp_path: Path) -> None:
    again = build(tmp_path, "again.tar.gz")
    assert (
        hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(tarball.read_bytes()).digest()
    )


@pytest.fixture(scope="module")
def bare_root(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with nothing but busybox and the unpacked tarball: no loader, libc or Python."""
    missing = [] if shutil.which("chroot") else ["chroot"]
    require(missing + (["root"] if os.geteuid() else []), "the chroot tests")
    root = tmp_path_factory.mktemp("bare") / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(qemu.BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "env", "dirname"):
        (root / "bin" / applet).symlink_to("busybox")
    with tarfile.open(tarball) as tar:
        unpack(tar, root)
    assert not (root / "lib64").exists()
    return root


def run_bare(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """kexec/run in the bare root, from a directory of planted modules (root's cwd may be
    anyone's /tmp); fails the test if any of them ran."""
    caller = planted.plant(root / "caller")
    result = subprocess.run(
        [
            shutil.which("chroot") or "chroot",
            str(root),
            "/bin/sh",
            "-c",
            f"cd /caller && /kexec/run {shlex.join(args)}",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/bin", "PYTHONPATH": "/nonexistent", "SUDO_USER": "nobody"},
        check=False,
    )
    assert planted.ran(caller) == []
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.real
def test_dry_run_works_in_a_root_with_nothing_but_the_tarball(bare_root: Path) -> None:
    result = run_bare(bare_root, "--dry-run", "--json")
    assert result.stderr == ""
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    # No /proc in the chroot: no kexec, no meminfo. The tools and the bundle are fine.
    assert not checks["kexec"]["ok"]
    assert checks["tarball"] == {"name": "tarball", "ok": True, "detail": "complete"}
    assert checks["state"]["ok"], checks["state"]
    assert result.returncode == 1


# The launcher's paths (those nixos_images.tarball.trace walks to choose the bundled modules)
# run from the bundle: exit code, and a line each that only a working path prints.
BARE_PATHS = {
    "help": (["--help"], 0, "stdout", "--kexec-extra-flags"),
    # The option's name, not click's wording of the refusal (it changed in click 8.4).
    "bad option": (["--no-such-option"], 2, "stderr", "--no-such-option"),
    "debug dry run": (["--debug", "--dry-run"], 1, "stdout", "FAIL  kexec: "),
    "refused run": ([], 1, "stderr", "kexec/run: "),
}


@pytest.mark.real
@pytest.mark.parametrize("path", BARE_PATHS.values(), ids=BARE_PATHS.keys())
def test_every_launcher_path_runs_from_the_bundle(
    bare_root: Path, path: tuple[list[str], int, str, str]
) -> None:
    args, code, stream, says = path
    result = run_bare(bare_root, *args)
    assert result.returncode == code, result
    assert says in getattr(result, stream), result


def typer_version() -> tuple[int, int]:
    major, minor = importlib.metadata.version("typer").split(".")[:2]
    return int(major), int(minor)


def test_the_bundle_holds_what_the_launcher_loads_and_little_else(tarball: Path) -> None:
    """The traced module set: typer and its dependencies, and no large stdlib package the
    launcher never imports."""
    with tarfile.open(tarball) as tar:
        (zip_name,) = (
            n for n in tar.getnames() if re.fullmatch(r"kexec/python/lib/python3\d+\.zip", n)
        )
        member = tar.extractfile(zip_name)
        assert member is not None
        names = set(zipfile.ZipFile(io.BytesIO(member.read())).namelist())
    assert zip_name == f"kexec/python/lib/python{qemu.bundle_python_version().replace('.', '')}.zip"
    # typing imports it; from CPython 3.13 on it hides its own file once imported.
    assert "collections/abc.pyc" in names
    tops = {n.split("/")[0].removesuffix(".pyc") for n in names}
    assert {"nixos_images", "typer", "shellingham", "annotated_doc", "encodings"} <= tops
    # typer 0.29 validates options with pydantic (which imports email.utils); older typers
    # never import either.
    pydantic = typer_version() >= (0, 29)
    assert ("pydantic" in tops) == pydantic
    assert ("email" in tops) <= pydantic
    assert not {"asyncio", "http", "unittest", "xml", "rich"} & tops
    assert "nixos_images/installer_banner.pyc" not in names


@pytest.mark.parametrize("shell", [["dash"], [str(qemu.BUSYBOX), "sh"], ["bash", "--posix"]])
def test_run_starts_under_every_posix_shell(
    tarball: Path, tmp_path: Path, shell: list[str]
) -> None:
    require([] if shutil.which(shell[0]) else [shell[0]], "the shell check")
    with tarfile.open(tarball) as tar:
        unpack(tar, tmp_path)
    caller = planted.plant(tmp_path / "caller")
    result = subprocess.run(
        [*shell, str(tmp_path / "kexec/run"), "--help"],
        capture_output=True,
        text=True,
        cwd=caller,
        check=True,
    )
    assert "--kexec-extra-flags" in result.stdout
    assert "--dry-run" in result.stdout
    assert planted.ran(caller) == []


def test_run_ignores_an_exported_cdpath(tarball: Path, tmp_path: Path) -> None:
    """With CDPATH exported, cd prints where it went: kexec/run must still find itself."""
    with tarfile.open(tarball) as tar:
        unpack(tar, tmp_path)
    result = subprocess.run(
        ["sh", "kexec/run", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "CDPATH": f"{tmp_path}:."},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--kexec-extra-flags" in result.stdout


def test_run_gives_the_launcher_a_fixed_path_and_a_clean_environment(tmp_path: Path) -> None:
    """Root runs what PATH finds (systemd-run): never from the caller's PATH or environment.
    The real kexec/run, with a loader that prints what it was started with."""
    (tmp_path / "run").write_text(assemble.render_run("loader"))
    (tmp_path / "loader").write_text('#!/bin/sh\necho "PATH=$PATH"; env | sort\n')
    (tmp_path / "loader").chmod(0o755)
    caller = {"PATH": f"{tmp_path}/evil:/usr/bin:/bin", "LD_PRELOAD": "x.so", "SUDO_USER": "ann"}
    result = subprocess.run(
        ["sh", str(tmp_path / "run"), "--dry-run"],
        capture_output=True,
        text=True,
        env=caller,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ":/run/current-system/sw/bin"
    )
    names = {line.split("=", 1)[0] for line in lines[1:]}
    assert names <= {"PATH", "PYTHONHOME", "SUDO_USER", "DOAS_USER", "PWD", "SHLVL", "_"}
    assert "SUDO_USER=ann" in lines


def test_a_program_that_is_not_elf_is_one_line(tmp_path: Path) -> None:
    script = tmp_path / "python3"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (tmp_path / "k").write_bytes(b"k")
    (tmp_path / "i").write_bytes(b"070701")
    argv = ["assemble-kexec-tarball", "--out", str(tmp_path / "o.tar.gz"), "--kernel"]
    argv += [str(tmp_path / "k"), "--initrd", str(tmp_path / "i"), "--cmdline", "x"]
    argv += ["--python", str(script), "--python-path", str(tmp_path)]
    argv += ["--tool", f"kexec={script}", "--tool", f"ip={script}"]
    result = subprocess.run(
        [sys.executable, "-c", "from nixos_images.tarball.assemble import main; main()", *argv[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("assemble-kexec-tarball: ")
