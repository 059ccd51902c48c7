"""Shared test setup: the `real` marker and the rule that CI may not skip real-boundary tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from collections.abc import Callable

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent

# Set by `tests/run --ci`: a real-boundary test that cannot run is a failure, not a skip.
REQUIRE_REAL = os.environ.get("NIXOS_IMAGES_REQUIRE_REAL") == "1"
# No test may hang the suite, nor the Nix build's check phase, which has no time limit of
# its own: each test gets this many seconds (pytest-timeout) unless it is marked otherwise.
DEFAULT_TIMEOUT = 300


# The Nix build's check phase must give the same answer every build: with a fresh seed each
# time, a property test that finds a rare bug fails one build in N. nix/package.nix selects
# this profile (tests/test_nix.py checks that it does); CI and developers keep exploring.
DERANDOMIZED = "derandomized"
settings.register_profile(DERANDOMIZED, derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "real: exercises a real boundary (netns, networkd, QEMU); CI must not skip it",
    )
    if not config.pluginmanager.hasplugin("timeout"):
        raise pytest.UsageError("pytest-timeout is missing: without it a hung test hangs the run")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test without a timeout mark the default one."""
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """A fake kexec tarball, host root and the recording kexec's log (fakehost.py)."""
    from fakehost import kexec_setup  # noqa: PLC0415 - fakehost imports this module

    return kexec_setup(tmp_path, monkeypatch)


def require(missing: list[str], what: str) -> None:
    """Skip (or, in CI mode, fail) a real-boundary test when its prerequisites are missing."""
    if not missing:
        return
    reason = f"{what} needs: {', '.join(missing)}"
    if REQUIRE_REAL:
        pytest.fail(f"{reason} (real-boundary tests may not be skipped in CI)")
    pytest.skip(reason)


def run_cli(main: Callable[[], None], argv: list[str]) -> int:
    """Run a helper's entry point with argv as its command line; returns the exit code."""
    old = sys.argv
    sys.argv = argv
    try:
        main()
    except SystemExit as e:
        return int(e.code or 0)
    finally:
        sys.argv = old
    return 0


def nix_eval(expr: str) -> Any:
    """Evaluate a Nix expression in the repository with Debian's nix-instantiate, as JSON."""
    require([] if shutil.which("nix-instantiate") else ["nix-instantiate (nix-bin)"], "Nix")
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "--expr", expr],
        capture_output=True,
        text=True,
        cwd=REPO,
        # No daemon and no nixbld group here: evaluating needs neither.
        env={**os.environ, "NIX_CONFIG": "build-users-group ="},
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    return json.loads(result.stdout)
