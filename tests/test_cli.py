"""Every helper's command line on the typer this suite runs on, without rich (as in the images).

tests/run --ci runs this module on the newest typer helpers/versions.toml lists, and the Nix
check phase's stand-in (sandbox_check.py) on each of its columns' typers.
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer
from packaging.requirements import Requirement

import versions
from conftest import run_cli

if TYPE_CHECKING:
    from collections.abc import Callable

DIST = "nixos-images-helpers"
SCRIPTS = {
    ep.name: ep
    for ep in importlib.metadata.entry_points(group="console_scripts")
    if ep.dist and ep.dist.name == DIST
}


def test_every_script_is_covered() -> None:
    assert set(SCRIPTS) >= {"restore-network", "kexec-launcher", "assemble-kexec-tarball"}


def typer_requirement() -> Requirement:
    """pyproject.toml's typer range, which nixpkgs' runtime-dependency check enforces too."""
    (requirement,) = [
        Requirement(r) for r in importlib.metadata.requires(DIST) or [] if r.startswith("typer")
    ]
    return requirement


def test_rich_is_not_installed() -> None:
    """typer declares rich, the images leave it out: so must this suite, or it proves nothing.
    pydantic is there exactly when this typer needs it (0.29 on), as in the images."""
    assert importlib.util.find_spec("rich") is None
    needs = (
        versions.release(importlib.metadata.version("typer")) >= versions.TYPER_NEEDS["pydantic"]
    )
    assert (importlib.util.find_spec("pydantic") is not None) == needs


def test_typer_is_in_the_supported_range() -> None:
    assert typer_requirement().specifier.contains(importlib.metadata.version("typer"))


def test_every_typer_the_versions_file_lists_is_in_the_supported_range() -> None:
    """A typer the next lock update brings (nixpkgs master, PyPI's newest) that pyproject.toml
    does not admit would break every build there: it fails here first."""
    outside = [v for v in versions.listed("typer") if not typer_requirement().specifier.contains(v)]
    assert outside == []


def command_of(script: str) -> Any:
    """The click command behind a helper's entry point (its module's typer app)."""
    module = importlib.import_module(SCRIPTS[script].module)
    return typer.main.get_command(module.app)


def kind(param: Any) -> str:
    """What the parameter's value is: click's type name where the parameter has one (typer
    before 0.29), else the annotation typer 0.29 keeps in its type descriptor."""
    click_type = getattr(param, "type", None)
    if click_type is not None:
        name: str = click_type.name
        return {"filename": "path", "directory": "path", "file": "path"}.get(name, name)
    annotation = param.type_descriptor.annotation
    origin = getattr(annotation, "__args__", (annotation,))[0] if param.multiple else annotation
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return "choice"
    names = {bool: "boolean", int: "integer", float: "float", Path: "path"}
    return names.get(origin, "text") if isinstance(origin, type) else "text"


def sample(param: Any, tmp: Path) -> list[str]:
    """Command-line words that give the parameter a value of its type."""
    name = kind(param)
    if name == "choice":
        value = str(next(iter(getattr(param, "type", None).choices)))  # type: ignore[union-attr]
    elif name in {"integer", "integer range", "float", "float range"}:
        low = getattr(getattr(param, "type", None), "min", None) or getattr(param, "min", None)
        value = str(low or 1)
    elif name == "path":
        value = str(tmp)
    else:
        value = "x"
    if not param.opts[0].startswith("-"):
        return [value]
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return [param.opts[0]]
    return [param.opts[0], value] * (2 if getattr(param, "multiple", False) else 1)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_option_of_every_helper_parses(name: str, tmp_path: Path) -> None:
    """Each option given a value of its type is parsed and converted, as a run would do before
    the helper acts (typer 0.29 converts through pydantic: without it, the first option of any
    kind crashed). Nothing runs: only the command line is read."""
    outcomes = {
        f"{where} {words}": parse(command, where, words)
        for where, command in commands(name, command_of(name))
        for words in option_lines(command, tmp_path)
    }
    assert outcomes  # every helper has options
    # A usage error (a path that must exist, say) is an answer; a crash is not.
    crashes = {k: v for k, v in outcomes.items() if v.startswith("crash")}
    assert crashes == {}


def commands(name: str, command: Any) -> list[tuple[str, Any]]:
    """The command and, for a group (nixos-images-release), each of its subcommands."""
    subcommands = getattr(command, "commands", {})
    return [(f"{name} {sub}", c) for sub, c in sorted(subcommands.items())] or [(name, command)]


def option_lines(command: Any, tmp: Path) -> list[list[str]]:
    """One command line per option: that option with a value of its type, and the
    arguments the command needs."""
    arguments = [w for p in command.params if not p.opts[0].startswith("-") for w in sample(p, tmp)]
    return [
        [*sample(param, tmp), *arguments]
        for param in command.params
        if param.opts[0].startswith("-")
    ]


def parse(command: Any, name: str, words: list[str]) -> str:
    """What reading the words as the command's line comes to, in words."""
    try:
        command.make_context(name, words)
    except Exception as e:  # noqa: BLE001 - what it is, is the answer
        code = getattr(e, "exit_code", None)
        if code == 0:
            return "parsed"  # an eager option's answer (--version) ends the run here
        return f"usage error: {e}" if code == 2 else f"crash: {e!r}"
    return "parsed"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_is_plain_text(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    main: Callable[[], None] = SCRIPTS[name].load()
    assert run_cli(main, [name, "--help"]) == 0
    out = capsys.readouterr().out
    # The helper's own words and options, whatever click calls the sections around them.
    summary = " ".join((command_of(name).help or "").split("\n\n")[0].split())
    assert summary
    assert summary[:40] in " ".join(out.split())
    assert "--help" in out
    assert "\x1b[" not in out
    assert "╭" not in out  # rich's boxes
    assert [line for line in out.splitlines() if len(line) > 80] == []  # an 80-column console


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_bad_option_is_a_usage_error(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    main: Callable[[], None] = SCRIPTS[name].load()
    assert run_cli(main, [name, "--no-such-option"]) == 2
    err = capsys.readouterr().err
    # The option named on the last line; the wording around it is click's (8.4 changed it).
    assert "--no-such-option" in err.splitlines()[-1]
    assert "Traceback" not in err


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_keeps_the_synopsis_lines_as_written(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Indented lines of a helper's help text (its synopsis) are printed as lines, not
    rewrapped into one paragraph."""
    module = importlib.import_module(SCRIPTS[name].module)
    indented = [
        line.strip() for line in (module.__doc__ or "").splitlines() if line.startswith("    ")
    ]
    main: Callable[[], None] = SCRIPTS[name].load()
    assert run_cli(main, [name, "--help"]) == 0
    printed = {line.strip() for line in capsys.readouterr().out.splitlines()}
    assert [line for line in indented if line not in printed] == []
