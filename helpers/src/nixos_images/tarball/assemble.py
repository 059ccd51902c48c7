"""assemble-kexec-tarball: kernel, initrd, interpreter bundle and tools -> the kexec tarball.

The Nix build calls this with the installer's kernel and initrd; the end-to-end test calls it
with a Debian kernel and a stand-in initrd. The result unpacks into kexec/, and `kexec/run`
starts the launcher. Output is reproducible: sorted entries, fixed owners and times.
"""

from __future__ import annotations

import gzip
import lzma
import os
import tarfile
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from nixos_images import cli, layout
from nixos_images.errors import InputError
from nixos_images.kexec import drivers, manifest
from nixos_images.tarball import bundle

if TYPE_CHECKING:
    import io
    from collections.abc import Mapping, Sequence

TOP = "kexec"


def unpacked_size(initrd: BinaryIO) -> int:
    """Bytes an initrd unpacks to (gzip, xz or plain cpio); zstd needs the size given."""
    magic = initrd.read(6)
    initrd.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        with gzip.GzipFile(fileobj=initrd) as stream:
            return _length(stream)
    if magic.startswith(b"\xfd7zXZ\x00"):
        with lzma.LZMAFile(initrd) as stream:
            return _length(stream)
    if magic.startswith(b"070701"):
        return _length(initrd)
    raise InputError("initrd", "compression not gzip, xz or none: give --initrd-unpacked-size")


def _length(stream: io.BufferedIOBase | BinaryIO) -> int:
    size = 0
    while chunk := stream.read(1 << 20):
        size += len(chunk)
    return size


def render_run(loader: str) -> str:
    """kexec/run with the bundle's loader filled in."""
    template = resources.files("nixos_images").joinpath("data/kexec-run.sh").read_text()
    return template.replace("@loader@", loader)


def _add(tar: tarfile.TarFile, path: Path, name: str, mtime: int) -> None:
    info = tar.gettarinfo(str(path), name)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = mtime
    if info.isdir() or os.access(path, os.X_OK):
        info.mode = 0o755
    else:
        info.mode = 0o644
    if info.isfile():
        with path.open("rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)


def write_tarball(out: Path, staging: Path, extra: Mapping[str, Path], mtime: int) -> None:
    """staging/* and extra (name -> file) under kexec/, gzip-compressed, written atomically."""
    members = {p.relative_to(staging).as_posix(): p for p in staging.rglob("*")}
    members.update(extra)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
        ):
            _add(tar, staging, TOP, mtime)
            for name in sorted(members, key=lambda n: n.split("/")):
                _add(tar, members[name], f"{TOP}/{name}", mtime)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def assemble(
    out: Path,
    *,
    kernel: Path,
    initrd: Path,
    cmdline: str,
    python: Path,
    python_path: Sequence[Path],
    tools: Mapping[str, Path],
    library_path: Sequence[Path] = (),
    initrd_unpacked_size: int | None = None,
    reserve: int = manifest.DEFAULT_RESERVE,
    delay: int = manifest.DEFAULT_DELAY,
    console_password: bool = False,
    modules: Path | None = None,
    firmware: Sequence[Path] = (),
) -> manifest.Manifest:
    """Build the tarball at out; returns the manifest written into it. With modules (the
    installer kernel's /lib/modules/<version>) and firmware (its firmware directories), the
    tarball lists the kernel's network drivers, for kexec/run's driver check."""
    missing = sorted(set(manifest.TOOLS) - set(tools))
    if missing:
        raise InputError("tools", f"missing {', '.join(missing)}")
    for what, path in {"kernel": kernel, "initrd": initrd, "python": python, **tools}.items():
        if not path.is_file():
            raise InputError(path, f"the {what} is not a file")
    if initrd_unpacked_size is None:
        with initrd.open("rb") as f:
            initrd_unpacked_size = unpacked_size(f)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        made = bundle.build(staging, python, python_path, tools, library_path)
        listed = None
        if modules is not None:
            if not modules.is_dir():
                raise InputError(modules, "not a kernel's module directory")
            known = drivers.build(modules, firmware)
            (staging / drivers.FILE_NAME).write_text(known.to_json())
            listed = drivers.FILE_NAME
        image = manifest.Manifest(
            machine=made.machine,
            kernel=layout.kernel_file(f"{made.machine}-linux"),
            initrd="initrd",
            cmdline=cmdline,
            initrd_unpacked_size=initrd_unpacked_size,
            reserve=reserve,
            delay=delay,
            console_password=console_password,
            drivers=listed,
            loader=made.loader,
            libdir=made.libdir,
            tools={name: made.programs[name] for name in tools},
        )
        (staging / manifest.FILE_NAME).write_text(image.to_json())
        run = staging / "run"
        run.write_text(render_run(made.loader))
        run.chmod(0o755)
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "1"))
        write_tarball(out, staging, {image.kernel: kernel, image.initrd: initrd}, mtime)
    return image


def _tool(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise InputError("--tool", f"{spec!r} is not NAME=PATH")
    return name, Path(path)


app = cli.new_app(__doc__ or "")


@app.command()
def main_command(
    out: Annotated[Path, typer.Option(help="The .tar.gz to write.")],
    kernel: Annotated[Path, typer.Option(help="The installer's kernel (bzImage or Image).")],
    initrd: Annotated[Path, typer.Option(help="The installer's initrd.")],
    cmdline: Annotated[str, typer.Option(help="Its kernel command line (init=... etc.).")],
    python: Annotated[Path, typer.Option(help="The Python interpreter to bundle.")],
    python_path: Annotated[
        list[Path],
        typer.Option(help="Where the launcher and its dependencies are (site-packages)."),
    ],
    tool: Annotated[list[str], typer.Option(help="kexec=PATH and ip=PATH: programs to bundle.")],
    library_path: Annotated[
        list[Path] | None,
        typer.Option(help="Where to look for libraries before each program's RUNPATH."),
    ] = None,
    initrd_unpacked_size: Annotated[
        int | None, typer.Option(help="Bytes the initrd unpacks to (needed for zstd).")
    ] = None,
    reserve: Annotated[
        int, typer.Option(help="Bytes of RAM the running installer needs beyond its initrd.")
    ] = manifest.DEFAULT_RESERVE,
    delay: Annotated[
        int,
        typer.Option(min=0, help="Default seconds from loading to booting (kexec/run --delay)."),
    ] = manifest.DEFAULT_DELAY,
    console_password: Annotated[
        bool,
        typer.Option(
            "--console-password",
            help="The installer shows a root password on its console (another way in).",
        ),
    ] = False,
    modules: Annotated[
        Path | None,
        typer.Option(
            help="The installer kernel's module directory (/lib/modules/<version>): its"
            " network drivers are listed for kexec/run's driver check."
        ),
    ] = None,
    firmware: Annotated[
        list[Path] | None,
        typer.Option(help="A firmware directory of the installer (lib/firmware), repeatable."),
    ] = None,
    debug: cli.DebugOption = False,
    version: cli.VersionOption = False,  # noqa: ARG001 - its callback prints and exits
) -> None:
    """Write a kexec tarball."""
    cli.setup(debug=debug)
    image = assemble(
        out,
        kernel=kernel,
        initrd=initrd,
        cmdline=cmdline,
        python=python,
        python_path=python_path,
        tools=dict(_tool(t) for t in tool),
        library_path=library_path or [],
        initrd_unpacked_size=initrd_unpacked_size,
        reserve=reserve,
        delay=delay,
        console_password=console_password,
        modules=modules,
        firmware=firmware or [],
    )
    typer.echo(f"{out}: {image.machine} kexec tarball")


def main() -> None:
    """Entry point of assemble-kexec-tarball."""
    cli.run(lambda: app(prog_name="assemble-kexec-tarball"), "assemble-kexec-tarball")
