"""An interpreter bundle: a Python that runs on any Linux of its architecture.

The host may have no Python, a different libc, or no dynamic loader at the path our binaries
were linked for (/nix/store/..., or /lib64 on Alpine). So the bundle carries its own loader
and libraries, and kexec/run starts every program through that loader:

    lib/ld-linux-x86-64.so.2 --library-path lib bin/python3 ...

    bin/python3, bin/kexec, bin/ip              the programs
    lib/                                        the loader and every library they need
    python/lib/python3XY.zip                    the modules the launcher loads, compiled
    python/lib/python3.XY/lib-dynload/          the stdlib's extension modules it loads
    python/lib/python3.XY/<package>/            a package with extension modules of its own

PYTHONHOME=python makes the interpreter find its zip and lib-dynload there. Which modules:
those the launcher loads when its paths are run in this very interpreter (tarball/trace.py),
plus the whole `encodings` package, whose codecs are looked up by name at run time.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from nixos_images import process
from nixos_images.errors import HelperError
from nixos_images.kexec.manifest import Tool
from nixos_images.tarball import elf

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

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
    argv = [str(python), "-I", "-S", "-c", _QUERY]
    try:
        out = process.run(argv, call=process.Call.PYTHON_QUERY, check=True).stdout
    except (OSError, HelperError) as e:
        raise BuildError(f"{python}: cannot run it to find its stdlib ({e})") from e
    try:
        data = json.loads(out)
    except ValueError as e:
        raise BuildError(
            f"{python}: not a Python interpreter (it did not say where its stdlib is)"
        ) from e
    return Interpreter(
        python.resolve(),
        data["version"],
        bytes.fromhex(data["magic"]),
        Path(data["stdlib"]),
        Path(data["dynload"]),
    )


def traced(interp: Interpreter, python_path: Sequence[Path], ip: Path) -> list[Path]:
    """The files of the modules the launcher loads, found by running its paths (trace.py)."""
    argv = [str(interp.executable), "-S", "-P", "-m", "nixos_images.tarball.trace", str(ip)]
    env = {"PYTHONPATH": os.pathsep.join(map(str, python_path)), "PATH": os.environ.get("PATH", "")}
    try:
        done = process.run(argv, call=process.Call.PYTHON_TRACE, check=True, env=env)
    except (OSError, HelperError) as e:
        raise BuildError(f"tracing the launcher's modules failed: {e}") from e
    try:
        return [Path(p) for p in json.loads(done.stdout)]
    except ValueError as e:
        raise BuildError("tracing the launcher's modules printed no list of files") from e


@dataclass(frozen=True)
class PythonFiles:
    """The traced files, by where they go in the bundle."""

    # (path in the zip, file): modules, compiled, and the data files they read.
    zipped: list[tuple[PurePosixPath, Path]]
    # The stdlib's extension modules, for lib-dynload.
    extensions: list[Path]
    # (path under the stdlib directory, file): a package or module with native code outside
    # the stdlib (pydantic_core, which typer 0.29 loads): zipimport cannot load it, so it is
    # laid out as files in a directory on sys.path, its modules compiled.
    tree: list[tuple[PurePosixPath, Path]]


def python_files(
    files: Iterable[Path], interp: Interpreter, python_path: Sequence[Path]
) -> PythonFiles:
    """Traced files sorted by where they go in the bundle.

    Modules and the data files they read go into the zip, but for packages with extension
    modules of their own; what lies outside the stdlib and the search path (the host's own
    files, which the trace reads too) goes nowhere.

    The stdlib's `encodings` package is added whole: a codec is imported the first time
    something asks for it by name.
    """
    dynload = interp.dynload.resolve()
    bases = [interp.stdlib.resolve(), *(p.resolve() for p in python_path)]
    modules: dict[PurePosixPath, Path] = {}
    extensions = []
    for path in files:
        if path.parent == dynload:
            extensions.append(path)
            continue
        base = next((b for b in bases if path.is_relative_to(b)), None)
        if base is None:
            continue  # read from the host (/proc, /etc) or the trace's own fake host
        modules[PurePosixPath(path.relative_to(base).as_posix())] = path
    for path in sorted((interp.stdlib / "encodings").glob("*.py")):
        modules.setdefault(PurePosixPath("encodings", path.name), path)
    native = {rel.parts[0] for rel in modules if rel.suffix == ".so"}
    tree = sorted((rel, path) for rel, path in modules.items() if rel.parts[0] in native)
    zipped = sorted((rel, path) for rel, path in modules.items() if rel.parts[0] not in native)
    return PythonFiles(zipped, sorted(extensions), tree)


def compiled(source: bytes, name: PurePosixPath, magic: bytes) -> bytes:
    """A sourceless .pyc (PEP 552 header, timestamp 0): zipimport loads it without the .py."""
    code = compile(source, str(name), "exec", dont_inherit=True)
    return magic + bytes(12) + marshal.dumps(code)


def _compiled_entries(
    files: Iterable[tuple[PurePosixPath, Path]], magic: bytes
) -> dict[PurePosixPath, bytes]:
    """Modules compiled to sourceless .pyc, other files as they are."""
    if magic != importlib.util.MAGIC_NUMBER:
        raise BuildError(
            "the bundled Python compiles to another bytecode version than the one running"
            " this build: run the build with the Python that goes into the bundle"
        )
    entries: dict[PurePosixPath, bytes] = {}
    for rel, source in files:
        if rel.suffix == ".py":
            try:
                entries[rel.with_suffix(".pyc")] = compiled(source.read_bytes(), rel, magic)
            except SyntaxError as e:
                raise BuildError(f"{source}: does not compile: {e}") from e
        else:
            entries[rel] = source.read_bytes()
    return entries


def write_zip(path: Path, files: Iterable[tuple[PurePosixPath, Path]], magic: bytes) -> None:
    """Modules compiled to .pyc, other files as they are, stored uncompressed (the tarball is
    compressed as a whole, and zipimport then needs no zlib)."""
    entries = _compiled_entries(files, magic)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name in sorted(entries):
            info = zipfile.ZipInfo(str(name), ZIP_DATE)
            info.external_attr = 0o644 << 16
            z.writestr(info, entries[name])


def write_tree(directory: Path, files: Iterable[tuple[PurePosixPath, Path]], magic: bytes) -> None:
    """The same as files in a directory on sys.path: sourceless .pyc load from there too."""
    for rel, data in _compiled_entries(files, magic).items():
        dest = directory / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        dest.chmod(0o755 if rel.suffix == ".so" else 0o644)


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
    python_path: Sequence[Path],
    tools: Mapping[str, Path],
    library_path: Sequence[Path] = (),
) -> Bundle:
    """Fill out (an empty directory) with the bundle; returns what the manifest records."""
    interp = query(python)
    files = python_files(traced(interp, python_path, tools["ip"]), interp, python_path)
    extensions = [*files.extensions, *(path for rel, path in files.tree if rel.suffix == ".so")]
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
    stdlib = out / "python/lib" / f"python{interp.version}"
    for ext in files.extensions:
        _copy(ext, stdlib / "lib-dynload" / ext.name)
    write_tree(stdlib, files.tree, interp.magic)
    write_zip(out / "python/lib" / interp.zip_name, files.zipped, interp.magic)
    return Bundle(
        machine=machine,
        loader=f"lib/{loader.name}",
        libdir="lib",
        programs={
            name: Tool(f"bin/{name}", dynamic=infos[name].interpreter is not None)
            for name in programs
        },
    )
