"""An interpreter bundle: a Python that runs on any Linux of its architecture.

The host may have no Python, a different libc, or no dynamic loader at the path our binaries
were linked for (/nix/store/..., or /lib64 on Alpine). So the bundle carries its own loader
and libraries, and kexec/run starts every program through that loader:

    lib/ld-linux-x86-64.so.2 --library-path lib bin/python3 ...

    bin/python3, bin/kexec, bin/ip              the programs
    lib/                                        the loader and every library they need
    python/lib/python3XY.zip                    trimmed stdlib + our modules, compiled
    python/lib/python3.XY/lib-dynload/          extension modules kept from the stdlib

PYTHONHOME=python makes the interpreter find its zip and lib-dynload there.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from nixos_images.errors import HelperError
from nixos_images.kexec.manifest import Tool
from nixos_images.tarball import elf

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

# Stdlib packages and modules the helpers never import (checked by the bundle tests, which
# run the launcher from a built bundle). Leaving them out saves ~75% of the stdlib.
EXCLUDED_STDLIB = frozenset(
    {
        "__phello__", "_aix_support", "_osx_support", "_pydecimal", "_pyio", "aifc",
        "asynchat", "asyncio", "asyncore", "audioop", "bdb", "cgi", "cgitb", "chunk",
        "concurrent", "cProfile", "ctypes", "curses", "dbm", "decimal", "distutils",
        "doctest", "email", "ensurepip", "ftplib", "html", "http", "idlelib", "imaplib",
        "imghdr", "lib2to3", "mailbox", "mailcap", "msilib", "multiprocessing", "nntplib",
        "nturl2path", "pdb", "pickletools", "poplib", "profile", "pstats", "pydoc",
        "pydoc_data", "site-packages", "dist-packages", "smtpd", "smtplib", "sndhdr",
        "sqlite3", "sunau", "telnetlib", "test", "tkinter", "tomllib", "trace",
        "tracemalloc", "turtle", "turtledemo", "unittest", "venv", "wave", "wsgiref", "xml",
        "xmlrpc", "zoneinfo",
    }
)  # fmt: skip
# Extension modules left out: they pull in libraries (ssl, sqlite, ncurses, readline, tk,
# lzma, bz2, uuid) or serve only the excluded modules above. Matched by name prefix.
EXCLUDED_EXTENSIONS = (
    "_asyncio", "_bz2", "_codecs_", "_crypt", "_ctypes", "_curses", "_dbm", "_decimal",
    "_elementtree", "_gdbm", "_hashlib", "_lsprof", "_lzma", "_multibytecodec",
    "_multiprocessing", "_posixshmem", "_sqlite3", "_ssl", "_test", "_tkinter", "_uuid",
    "_xx", "_zoneinfo", "audioop", "nis", "ossaudiodev", "pyexpat", "readline", "spwd",
    "unicodedata", "xx",
)  # fmt: skip
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

_QUERY = """\
import importlib.util, json, sys, sysconfig
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "stdlib": sysconfig.get_paths()["stdlib"],
    "dynload": sysconfig.get_config_var("DESTSHARED"),
}))
"""


class BuildError(HelperError):
    """The inputs cannot make a working bundle; the message says which input and why."""


@dataclass(frozen=True)
class Interpreter:
    """Where a Python keeps its stdlib, and the bytecode version it reads."""

    executable: Path
    version: str
    magic: bytes
    stdlib: Path
    dynload: Path

    @property
    def zip_name(self) -> str:
        """The zip on sys.path by default: python3XY.zip."""
        return f"python{self.version.replace('.', '')}.zip"


@dataclass(frozen=True)
class Bundle:
    """What a built bundle holds, for the manifest."""

    machine: str
    loader: str
    libdir: str
    programs: dict[str, Tool]


def query(python: Path) -> Interpreter:
    """Ask an interpreter where its stdlib is (it is run, so it must run on the build host)."""
    try:
        out = subprocess.run(
            [str(python), "-I", "-S", "-c", _QUERY], capture_output=True, check=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise BuildError(f"{python}: cannot run it to find its stdlib ({e})") from e
    data = json.loads(out)
    return Interpreter(
        python.resolve(),
        data["version"],
        bytes.fromhex(data["magic"]),
        Path(data["stdlib"]),
        Path(data["dynload"]),
    )


def _excluded(rel: PurePosixPath) -> bool:
    top = rel.parts[0].removesuffix(".py")
    if top in EXCLUDED_STDLIB or top.startswith("config-"):
        return True
    return any(p in {"test", "tests", "idle_test", "__pycache__"} for p in rel.parts[:-1])


def stdlib_files(stdlib: Path) -> Iterator[tuple[PurePosixPath, Path]]:
    """The stdlib's .py files that the bundle keeps, as (path in the zip, path on disk)."""
    for path in sorted(stdlib.rglob("*.py")):
        rel = PurePosixPath(path.relative_to(stdlib).as_posix())
        if rel.parts[0] != "lib-dynload" and not _excluded(rel):
            yield rel, path


def module_files(name: str, search: Sequence[Path]) -> Iterator[tuple[PurePosixPath, Path]]:
    """A top-level module or package (with its data files) from the first directory holding it."""
    for base in search:
        if (base / name).is_dir():
            for path in sorted((base / name).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    yield PurePosixPath(path.relative_to(base).as_posix()), path
            return
        if (base / f"{name}.py").is_file():
            yield PurePosixPath(f"{name}.py"), base / f"{name}.py"
            return
    raise BuildError(f"module {name} is in none of: {', '.join(map(str, search)) or '(none)'}")


def compiled(source: bytes, name: PurePosixPath, magic: bytes) -> bytes:
    """A sourceless .pyc (PEP 552 header, timestamp 0): zipimport loads it without the .py."""
    code = compile(source, str(name), "exec", dont_inherit=True)
    return magic + bytes(12) + marshal.dumps(code)


def write_zip(path: Path, files: Iterable[tuple[PurePosixPath, Path]], magic: bytes) -> None:
    """Modules compiled to .pyc, other files as they are, stored uncompressed (the tarball is
    compressed as a whole, and zipimport then needs no zlib)."""  # noqa: D205, D209
    if magic != importlib.util.MAGIC_NUMBER:
        raise BuildError(
            "the bundled Python compiles to another bytecode version than the one running"
            " this build: run the build with the Python that goes into the bundle"
        )
    entries: dict[str, bytes] = {}
    for rel, source in files:
        if rel.suffix == ".py":
            try:
                entries[str(rel.with_suffix(".pyc"))] = compiled(source.read_bytes(), rel, magic)
            except SyntaxError as e:
                raise BuildError(f"{source}: does not compile: {e}") from e
        else:
            entries[str(rel)] = source.read_bytes()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.external_attr = 0o644 << 16
            z.writestr(info, entries[name])


def resolve_libraries(programs: Iterable[Path], library_path: Sequence[Path]) -> dict[str, Path]:
    """Soname -> file, for every library the programs need, transitively.

    Looked up in library_path first, then in each ELF's own RUNPATH ($ORIGIN expanded): in a
    Nix build the RUNPATHs point into the store, on Debian library_path names /lib/<triplet>.
    """
    found: dict[str, Path] = {}
    loader_names = set()
    queue = [(p, elf.read(p)) for p in programs]
    while queue:
        path, info = queue.pop()
        if info.interpreter:
            loader_names.add(PurePosixPath(info.interpreter).name)
        origin = str(path.resolve().parent)
        search = [*library_path, *(Path(d.replace("$ORIGIN", origin)) for d in info.runpath)]
        for soname in info.needed:
            if soname in found or soname in loader_names:
                continue
            candidate = next((d / soname for d in search if (d / soname).is_file()), None)
            if candidate is None:
                raise BuildError(
                    f"{soname}, needed by {path}, is in none of: {', '.join(map(str, search))}"
                )
            found[soname] = candidate
            queue.append((candidate, elf.read(candidate)))
    return {k: v for k, v in found.items() if k not in loader_names}


def _copy(src: Path, dest: Path, mode: int = 0o755) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    dest.chmod(mode)


def build(
    out: Path,
    python: Path,
    modules: Sequence[str],
    python_path: Sequence[Path],
    tools: Mapping[str, Path],
    library_path: Sequence[Path] = (),
) -> Bundle:
    """Fill out (an empty directory) with the bundle; returns what the manifest records."""
    interp = query(python)
    extensions = sorted(
        p for p in interp.dynload.glob("*.so") if not p.name.startswith(EXCLUDED_EXTENSIONS)
    )
    programs = {"python3": interp.executable, **tools}
    infos = {name: elf.read(path) for name, path in programs.items()}
    machine = infos["python3"].machine
    loaders = {i.interpreter for i in infos.values() if i.interpreter}
    if len(loaders) != 1 or not infos["python3"].interpreter:
        raise BuildError(
            f"the programs must share one dynamic loader (python3's), found: {sorted(loaders)}"
        )
    for name, info in infos.items():
        if info.machine != machine:
            raise BuildError(f"{name} is built for {info.machine}, python3 for {machine}")
    loader = Path(loaders.pop())

    _copy(loader, out / "lib" / loader.name)
    for soname, path in resolve_libraries([*programs.values(), *extensions], library_path).items():
        _copy(path, out / "lib" / soname)
    for name, path in programs.items():
        _copy(path, out / "bin" / name)
    dynload = out / "python/lib" / f"python{interp.version}" / "lib-dynload"
    for ext in extensions:
        _copy(ext, dynload / ext.name)
    files = list(stdlib_files(interp.stdlib))
    for name in modules:
        files += module_files(name, python_path)
    write_zip(out / "python/lib" / interp.zip_name, files, interp.magic)
    return Bundle(
        machine=machine,
        loader=f"lib/{loader.name}",
        libdir="lib",
        programs={
            name: Tool(f"bin/{name}", dynamic=infos[name].interpreter is not None)
            for name in programs
        },
    )
