"""Which modules kexec/run loads, found by running it: the bundle carries those and no others.

assemble-kexec-tarball runs this module with the interpreter that goes into the bundle, as
kexec/run starts it (`-S -P -m`), with PYTHONPATH set to the launcher's search path:

    python3 -S -P -m nixos_images.tarball.trace IP

It walks the launcher's paths with stdout and stderr sent nowhere: on the command line
--help, an unknown option, a missing tarball, --dry-run --json and --debug --dry-run; in
process, against a fake host root (keys, a sudo user, host keys, machine-id, the network as
IP shows it), the plan, both reports, the state archive, the initrd copy and a kexec that
fails. Then it prints, as JSON, the file of every module loaded and every other file opened
for reading (package data such as data/layout.json). So a typer (or a launcher
path) that imports something new brings it into the bundle by itself; a path that is not
walked here is not covered, so a new launcher path belongs here too (the bundle tests run
these paths from a built bundle).
"""

# No `from __future__` import here: it would import the `__future__` module before the
# recorder below is installed, and a launcher module that imports it later would find it
# already loaded, so its file would go unrecorded.
import sys

# Not typing's: importing typing imports collections.abc (type checkers know the idiom).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

_startup: dict[str, str] = {}
_found: set[str] = set()
_opened: set[str] = set()


class _Recorder:
    """A finder placed first on sys.meta_path: it asks the real finders and notes the file of
    each module they find, as they find it.

    What a module's `__file__` says afterwards can lie: from CPython 3.13 on,
    `collections/abc.py` puts `_collections_abc` in its own place in sys.modules, so the file
    that really ran is named nowhere once the import is done (not even by `find_spec`).
    """

    def find_spec(
        self, name: str, path: "Sequence[str] | None", target: "ModuleType | None" = None
    ) -> "ModuleSpec | None":
        """The spec the next finders give, its file noted."""
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: ModuleSpec | None = find(name, path, target)
            if spec is not None:
                if spec.has_location and spec.origin:
                    _found.add(spec.origin)
                return spec
        return None


def _audit(event: str, args: tuple[object, ...]) -> None:
    """Note every file opened for reading (data files a module reads, e.g. layout.json)."""
    if event == "open" and isinstance(args[0], str) and args[1] in {None, "r", "rb"}:
        _opened.add(args[0])


def _note_startup() -> None:
    """The modules loaded before this one ran (by the interpreter and by `-m`): kexec/run
    starts the same way, so it needs them too. A name that sits in sys.modules under another
    module's spec (os.path as posixpath; collections.abc as _collections_abc from 3.13 on)
    may have a file of its own that ran and then put the other module in its place: the
    path finder says whether it has one."""
    from importlib.machinery import PathFinder  # noqa: PLC0415 - loaded by -m already

    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if name != "__main__" and spec is not None and name != spec.name:
            parent = sys.modules.get(name.rpartition(".")[0])
            own = PathFinder.find_spec(name, getattr(parent, "__path__", None))
            spec = own or spec
        if spec is not None and spec.has_location and spec.origin:
            _startup[name] = spec.origin


# Before anything else is imported: what the launcher imports must pass the recorder.
_note_startup()
sys.meta_path.insert(0, _Recorder())
sys.addaudithook(_audit)

import base64  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import struct  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from nixos_images.errors import HelperError  # noqa: E402
from nixos_images.kexec import (  # noqa: E402
    drivers,
    launcher,
    load,
    manifest,
    plan,
    preflight,
    report,
)
from nixos_images.kexec.models import SyscallChoice  # noqa: E402

_FAKE_FILES = {
    "proc/meminfo": "MemTotal: 8388608 kB\nMemAvailable: 8000000 kB\n",
    "proc/sys/kernel/kexec_load_disabled": "0\n",
    "etc/passwd": "root:x:0:0::/root:/bin/sh\nadmin:x:1000:1000::/home/admin:/bin/sh\n",
    "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
    "etc/resolv.conf": "nameserver 192.0.2.53\nsearch example.org\noptions edns0\n",
    "etc/ssh/ssh_host_ed25519_key": "not a real key\n",
    "etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAA host\n",
    # The build user owns these files; StrictModes would leave root's keys out.
    "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nStrictModes no\n",
}


def _key_line(comment: str, options: str = "") -> str:
    """A well-formed ssh-ed25519 authorized_keys line (a key nobody holds)."""

    def string(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    blob = base64.b64encode(string(b"ssh-ed25519") + string(bytes(32))).decode()
    return f"{options + ' ' if options else ''}ssh-ed25519 {blob} {comment}\n"


def fake_host(root: Path) -> None:
    """A host for the launcher to read: every kind of file it carries over, and bad lines."""
    files = {
        **_FAKE_FILES,
        "root/.ssh/authorized_keys": _key_line("root", 'from="192.0.2.0/24"') + "garbage\n",
        "home/admin/.ssh/authorized_keys": _key_line("admin"),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def fake_tarball(directory: Path, ip: Path) -> manifest.Manifest:
    """An unpacked tarball whose kexec fails and whose ip is the given one."""
    failing = directory / "bin/kexec"
    failing.parent.mkdir(parents=True)
    failing.write_text(f"#!{sys.executable} -S\nraise SystemExit(1)\n")
    failing.chmod(0o755)
    (directory / "bin/ip").symlink_to(ip)
    image = manifest.Manifest(
        machine=os.uname().machine,
        kernel="kernel",
        initrd="initrd",
        cmdline="init=/init",
        initrd_unpacked_size=1 << 20,
        reserve=0,
        loader="lib/loader",
        libdir="lib",
        tools={name: manifest.Tool(f"bin/{name}", dynamic=False) for name in manifest.TOOLS},
    )
    for name in (image.kernel, image.initrd, image.loader):
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(b"070701")
    (directory / manifest.FILE_NAME).write_text(image.to_json())
    return image


def _command_line(argv: list[str]) -> None:
    old = sys.argv
    sys.argv = [launcher.PROG, *argv]
    try:
        launcher.main()
    except SystemExit:
        pass
    finally:
        sys.argv = old


def walk(tmp: Path, ip: Path) -> None:
    """Run every launcher path; its output goes nowhere."""
    tarball, root = tmp / "kexec", tmp / "root"
    fake_tarball(tarball, ip)
    fake_host(root)
    for argv in (
        ["--help"],
        ["--no-such-option"],
        ["--tarball-dir", str(tmp / "missing")],
        ["--tarball-dir", str(tarball), "--dry-run", "--json"],
        ["--tarball-dir", str(tarball), "--dry-run", "--debug"],
    ):
        _command_line(argv)
    os.environ["SUDO_USER"] = "admin"
    facts = dataclasses.replace(preflight.gather(root), euid=0)
    found = plan.make_plan(
        tarball,
        extra_flags="--append=x --no-sync",
        syscall=SyscallChoice.AUTO,
        delay=None,
        root=root,
        facts=facts,
    )
    data = report.report(found, units=True)
    # The driver check's matching, whatever NICs the build machine has.
    known = drivers.Drivers((("pci:v0000AAAA*", "x"),), {"x": ("x.fw",)}, frozenset())
    nic = drivers.Nic("eth0", "pci:v0000AAAAd0000BBBB", "x")
    drivers.problems([nic], drivers.from_json(known.to_json(), "drivers.json"))
    json.dumps(data)
    report.render_report(data)
    if found.state is None:
        raise HelperError(f"the fake host's state was not collected: {found.checks}")
    workdir = tmp / "work"
    workdir.mkdir()
    initrd = plan.write_initrd(tarball / found.image.initrd, found.state, workdir)
    image = load.Image(kernel=tarball / found.image.kernel, initrd=initrd, cmdline="init=/init")
    kexec = found.image.tool_argv(tarball, "kexec")
    with contextlib.suppress(HelperError):
        load.load(kexec, found.syscalls, image, found.extra_flags)
    load.exec_command(kexec, found.delay, found.extra_flags)


def loaded_files() -> list[str]:
    """The files of the modules the finders found (built-in and frozen ones have none) and
    of those loaded before the trace began, and the data files opened beside them; neither
    byte-compiled caches nor the trace itself."""
    files = {p for p in _opened if not p.endswith((".pyc", ".py")) and "__pycache__" not in p}
    files |= _found | {p for name, p in _startup.items() if name != "__main__"}
    files.discard(__file__)
    return sorted({str(Path(p).resolve()) for p in files if Path(p).is_file()})


def main() -> None:
    """Walk the paths with the given ip, then print what was loaded."""
    (ip,) = sys.argv[1:]
    out = sys.stdout
    with (
        tempfile.TemporaryDirectory(prefix="nixos-images-trace-") as tmp,
        open(os.devnull, "w") as null,  # noqa: PTH123 - a text stream for redirect_stdout
        contextlib.redirect_stdout(null),
        contextlib.redirect_stderr(null),
    ):
        walk(Path(tmp), Path(ip))
    out.write(json.dumps(loaded_files()) + "\n")


if __name__ == "__main__":
    main()
