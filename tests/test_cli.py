"""Every helper's command line on the typer this suite runs on, without rich (as in the images).

tests/run --ci runs this module on each typer the helpers support (0.25.1, 0.27.2, 0.28.0).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import TYPE_CHECKING

import pytest
from packaging.requirements import Requirement

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


def test_rich_is_not_installed() -> None:
    """typer declares rich, the images leave it out: so must this suite, or it proves nothing."""
    assert importlib.util.find_spec("rich") is None
    assert importlib.util.find_spec("pydantic") is None


def test_typer_is_in_the_supported_range() -> None:
    """The range in pyproject.toml, which nixpkgs' runtime-dependency check enforces too."""
    (typer,) = [
        Requirement(r) for r in importlib.metadata.requires(DIST) or [] if r.startswith("typer")
    ]
    assert typer.specifier.contains(importlib.metadata.version("typer"))


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_is_plain_text(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    main: Callable[[], None] = SCRIPTS[name].load()
    assert run_cli(main, [name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: ")
    assert "[OPTIONS]" in out.splitlines()[0]
    assert "Show this message and exit." in out
    assert "\x1b[" not in out
    assert "╭" not in out  # rich's boxes


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_bad_option_is_a_usage_error(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    main: Callable[[], None] = SCRIPTS[name].load()
    assert run_cli(main, [name, "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "Error: No such option: --no-such-option"
    assert "Traceback" not in err
