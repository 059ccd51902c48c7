"""Timing helpers shared by the benchmark scripts: best-of-N wall time of whole commands."""

from __future__ import annotations

import compileall
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def best_ms(argv: Sequence[str], runs: int = 20) -> float:
    """The fastest of `runs` runs of argv, in milliseconds (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def python_ms(runs: int = 20) -> float:
    """Bare interpreter start-up on this machine: the yardstick for every helper."""
    return best_ms([sys.executable, "-c", "pass"], runs)


def helper(module: str, *args: str) -> list[str]:
    """Argv that runs a helper's entry point with this interpreter, as its console script does.

    The package's bytecode is brought up to date first: the images ship it compiled (Nix
    builds the .pyc files), and PYTHONDONTWRITEBYTECODE here would otherwise make every
    timed run compile the modules edited since the last import.
    """
    import nixos_images  # noqa: PLC0415

    compileall.compile_dir(Path(nixos_images.__file__).parent, quiet=1)
    return [sys.executable, "-c", f"from nixos_images.{module} import main; main()", *args]
