"""The house's layers: each module of nixos_images in one, imports only downwards, no circles.

Read from the source with `ast`, so imports under `if TYPE_CHECKING:` count too: a circle
that only types close is still a circle for whoever reads the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "helpers/src/nixos_images"

# Lowest first. A module may import from its own layer and the ones before it.
LAYERS = {
    # What every helper leans on: errors, the one subprocess wrapper, files, the shared
    # layout (data/layout.json), text for terminals, the command-line glue.
    "foundation": {"errors", "sizes", "process", "fsutil", "terminal", "layout", "cli"},
    # Values and their parsers: the old host's dumps and files, the screen, the manifest.
    "values": {
        "iproute",
        "iprule",
        "dhcp",
        "state",
        "password_file",
        "banner_screen",
        "kexec.models",
        "kexec.flags",
        "kexec.authorized_keys",
        "kexec.key_options",
        "kexec.key_policy",
        "kexec.sshd_daemon",
        "kexec.sshd_algorithms",
        "kexec.sshd_config_file",
        "kexec.sshd_config",
        "kexec.accounts",
        "kexec.manifest",
        "kexec.cpio",
        "tarball.elf",
    },
    # Pure planners and the checks and actions built on the values.
    "plans": {
        "routing",
        "networkd_units",
        "nixos_network",
        "networkd",
        "disks",
        "kexec.network",
        "kexec.drivers",
        "kexec.watchdog",
        "kexec.key_files",
        "kexec.revoked",
        "kexec.trusted_ca",
        "kexec.collect",
        "kexec.preflight",
        "kexec.load",
        "kexec.plan",
        "kexec.report",
        "tarball.bundle",
        "release_ram",
    },
    # The programs: one command line each.
    "commands": {
        "restore_network",
        "root_password",
        "root_keys",
        "deadman",
        "installer_banner",
        "kexec.launcher",
        "tarball.assemble",
        "tarball.trace",
        "release",
    },
}
PACKAGES = {"", "kexec", "tarball"}  # the __init__ modules, which import nothing


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def is_module(name: str) -> bool:
    """Whether a dotted name within the package is a module of it (a file or a package)."""
    path = PACKAGE.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> set[str]:
    """The nixos_images modules a file imports, by name within the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the package imports absolutely")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nixos_images"):
            module = (node.module or "").removeprefix("nixos_images").removeprefix(".")
            if module in PACKAGES:  # from nixos_images import x: x a module, or a name in it
                names = {f"{module}.{a.name}".lstrip(".") for a in node.names}
                found |= {n for n in names if is_module(n)} or {module}
            else:
                found.add(module)
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("nixos_images.")
                for a in node.names
                if a.name.startswith("nixos_images.")
            }
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    (index,) = [i for i, members in enumerate(LAYERS.values()) if module in members]
    return index


def test_every_module_has_a_layer() -> None:
    modules = set(graph()) - PACKAGES
    assigned = set().union(*LAYERS.values())
    assert modules == assigned


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Each import from a module into a higher layer, in words."""
    names = list(LAYERS)
    return [
        f"{module} ({names[layer_of(module)]}) imports {dep} ({names[layer_of(dep)]})"
        for module, deps in edges.items()
        if module not in PACKAGES
        for dep in sorted(deps - PACKAGES)
        if layer_of(dep) > layer_of(module)
    ]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that comes back to where it started."""
    found: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for dep in sorted(edges.get(module, set())):
            if dep in path:
                found.append([*path[path.index(dep) :], dep])
            else:
                visit(dep, [*path, dep])

    for module in sorted(edges):
        visit(module, [module])
    return found


def test_imports_only_go_down_or_sideways() -> None:
    assert upward(graph()) == []


# A command may use another only where it runs it: the trace walks the launcher's paths.
COMMAND_USES = {("tarball.trace", "kexec.launcher")}


def test_no_command_imports_another() -> None:
    """What two programs share belongs below them, not in one of them."""
    commands = LAYERS["commands"]
    shared = [
        (module, dep)
        for module, deps in graph().items()
        if module in commands
        for dep in deps
        if dep in commands and (module, dep) not in COMMAND_USES
    ]
    assert shared == []


def test_no_circles() -> None:
    assert circles(graph()) == []


def test_the_checks_catch_a_circle_and_an_upward_import() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}})[0] == ["a", "b", "c", "a"]
    assert upward({"state": {"networkd"}, "networkd": {"state"}}) == [
        "state (values) imports networkd (plans)"
    ]
