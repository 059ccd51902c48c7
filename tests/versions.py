"""helpers/versions.toml read, for tests/run and the tests: which version of each package.

    python3 tests/versions.py requirements COLUMN ROLE... [NAME=COLUMN ...]

prints pip requirement lines (`name==version`) for the packages with any of the roles, at the
column (nixpkgs, nixpkgs-master, nixpkgs-unstable, nixos-stable, newest); a package that does
not list the column takes the next one to the right. NAME=COLUMN takes one package from
another column. What only some typers need comes with those typers alone: pydantic (0.29 and
newer), click (older than 0.26, which vendor no click of their own).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

FILE = Path(__file__).resolve().parent.parent / "helpers/versions.toml"
COLUMNS = ("nixpkgs", "nixpkgs-master", "nixpkgs-unstable", "nixos-stable", "newest")
# Which typer first needs which extra package (its Requires-Dist; pydantic from 0.29).
TYPER_NEEDS = {"pydantic": (0, 29)}
CLICK_VENDORED_FROM = (0, 26)  # typer vendors click as typer._click from 0.26.0


def packages() -> dict[str, dict[str, Any]]:
    """Every [packages.NAME] table."""
    data: dict[str, dict[str, Any]] = tomllib.loads(FILE.read_text())["packages"]
    return data


def version(name: str, column: str) -> str:
    """The package's version in the column, or in the next column to the right that it lists."""
    table = packages()[name]
    for col in COLUMNS[COLUMNS.index(column) :]:
        if col in table:
            return str(table[col])
    msg = f"{FILE.name}: {name} lists no version at {column} or right of it"
    raise KeyError(msg)


def listed(name: str) -> list[str]:
    """Every version the file lists for a package, whatever the column."""
    table = packages()[name]
    return sorted({str(table[c]) for c in COLUMNS if c in table})


def release(text: str) -> tuple[int, ...]:
    """ "0.29.2" as (0, 29, 2)."""
    return tuple(int(part) for part in text.split("."))


def requirements(column: str, roles: set[str], chosen: dict[str, str]) -> list[str]:
    """name==version lines for the packages with any of the roles."""
    picked = {
        name: version(name, chosen.get(name, column))
        for name, table in packages().items()
        if roles & set(table["roles"])
    }
    if "typer" in picked:
        typer = release(picked["typer"])
        for extra, since in TYPER_NEEDS.items():
            if typer < since:
                picked.pop(extra, None)
        if typer >= CLICK_VENDORED_FROM:
            picked.pop("click", None)
    return [f"{name}=={v}" for name, v in sorted(picked.items())]


def main(argv: list[str]) -> int:
    """The command line in the module docstring."""
    if len(argv) < 3 or argv[0] != "requirements" or argv[1] not in COLUMNS:
        sys.stderr.write(__doc__ or "")
        return 2
    column, rest = argv[1], argv[2:]
    roles = {r for r in rest if "=" not in r}
    chosen = dict(r.split("=", 1) for r in rest if "=" in r)
    print("\n".join(requirements(column, roles, chosen)))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
