"""What README and docs/ show of the helpers' command lines is what the helpers accept.

Every flag written after a helper's name in a code block or a code span (`kexec/run
--dry-run`, `installer-banner --text`, a synopsis with its continuation lines) must be one
that helper's --help lists; the words inside quotes belong to someone else (kexec's own
flags in --kexec-extra-flags) and so do those after a pipe or `&&`.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import REPO, REQUIRE_REAL, run_cli
from nixos_images.kexec import flags as kexec_flags

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

if not (REPO / "README.md").is_file():
    # The Nix build's check phase has the package's sources only (nix/package.nix), no docs;
    # a CI run on the repository always has them.
    if REQUIRE_REAL:
        pytest.fail("README.md is missing: the doc tests cannot run", pytrace=False)
    pytest.skip("the docs are not in the package's sources", allow_module_level=True)
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# How the docs name each helper -> its console script.
HELPERS = {
    "kexec/run": "kexec-launcher",
    "restore-network": "restore-network",
    "root-password": "root-password",
    "installer-banner": "installer-banner",
    "assemble-kexec-tarball": "assemble-kexec-tarball",
    "nixos-images-release": "nixos-images-release",
}
SUBCOMMANDS = {"nixos-images-release": ("layout", "verify", "newest-branch")}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def snippets(text: str) -> Iterator[str]:
    """Code blocks (a statement with its continuation lines as one) and code spans."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    for block in blocks:
        statement = ""
        for line in block.splitlines():
            if statement and (statement.endswith("\\") or line.startswith(" ")):
                statement = statement.removesuffix("\\") + " " + line
                continue
            if statement:
                yield statement
            statement = line
        if statement:
            yield statement
    outside = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    yield from re.findall(r"`([^`\n]+)`", outside)


def uses(snippet: str) -> Iterator[tuple[str, str | None, list[str]]]:
    """(helper, subcommand, flags) for each helper a snippet runs."""
    for segment in re.split(r"\s\|\s|&&|;|\$\(", QUOTED.sub("''", snippet)):
        for name, script in HELPERS.items():
            match = re.search(rf"(?:^|[\s/]){re.escape(name)}(?=\s|$)", segment)
            if match is None or (name != "kexec/run" and segment[: match.start()].strip()):
                continue
            rest = segment[match.end() :]
            words = rest.split()
            sub = words[0] if words and words[0] in SUBCOMMANDS.get(name, ()) else None
            yield script, sub, FLAG.findall(rest)


def shown() -> list[tuple[str, str | None, str, str]]:
    """(script, subcommand, flag, where) for every flag the docs show."""
    found = []
    for doc in DOCS:
        for snippet in snippets(doc.read_text()):
            for script, sub, flags in uses(snippet):
                found += [(script, sub, flag, doc.name) for flag in flags]
    return found


def help_text(script: str, sub: str | None, capsys: pytest.CaptureFixture[str]) -> str:
    (entry,) = [
        ep for ep in importlib.metadata.entry_points(group="console_scripts") if ep.name == script
    ]
    main: Callable[[], None] = entry.load()
    assert run_cli(main, [script, *([sub] if sub else []), "--help"]) == 0
    return capsys.readouterr().out


def test_the_docs_show_helper_flags() -> None:
    """The reader below finds what it should: without this, an empty list would pass."""
    scripts = {script for script, _, _, _ in shown()}
    assert {"kexec-launcher", "installer-banner", "nixos-images-release"} <= scripts
    assert ("kexec-launcher", None, "--no-keys-ok", "kexec.md") in shown()


def test_a_quoted_flag_and_another_programs_flag_are_not_ours() -> None:
    line = "nixos-anywhere --kexec x --flake y && kexec/run --kexec-extra-flags '--append=q'"
    assert list(uses(line)) == [("kexec-launcher", None, ["--kexec-extra-flags"])]
    assert list(uses("nixos-images-release layout O --out D")) == [
        ("nixos-images-release", "layout", ["--out"])
    ]


@pytest.mark.parametrize(
    ("script", "sub"),
    sorted({(script, sub) for script, sub, _, _ in shown()}, key=str),
)
def test_every_flag_the_docs_show_is_in_the_helpers_help(
    script: str, sub: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(script, sub, capsys)
    listed = set(FLAG.findall(text))
    unknown = sorted(
        {f"{flag} ({where})" for s, b, flag, where in shown() if (s, b) == (script, sub)}
        - {f"{flag} ({where})" for s, b, flag, where in shown() if flag in listed}
    )
    assert unknown == []


def test_shlex_reads_every_code_block_command_line() -> None:
    """A command line shown in the docs is one a shell can parse (no unbalanced quotes)."""
    bad = []
    for doc in DOCS:
        for snippet in snippets(doc.read_text()):
            if any(True for _ in uses(snippet)):
                try:
                    shlex.split(snippet, comments=True)
                except ValueError:
                    bad.append(f"{doc.name}: {snippet}")
    assert bad == []


def test_docs_and_readme_link_to_files_that_exist() -> None:
    missing = [
        f"{doc.name}: {target}"
        for doc in DOCS
        for target in re.findall(r"\]\(([^)#]+)\)", doc.read_text())
        if not target.startswith("http") and not (doc.parent / target).exists()
    ]
    assert missing == []


def test_the_supported_nixpkgs_readme_names_are_flake_locks() -> None:
    """The quick start's nixpkgs dates and release branch follow the lock (they change with
    every weekly update; a stale line would promise what CI no longer tests)."""
    lock = json.loads((REPO / "flake.lock").read_text())["nodes"]
    readme = (REPO / "README.md").read_text()
    for name in ("nixos-unstable", "nixos-stable"):
        locked = lock[name]["locked"]
        date = dt.datetime.fromtimestamp(locked["lastModified"], dt.UTC).date().isoformat()
        assert f"{locked['ref']} of {date}" in readme, (name, locked["ref"], date)


def test_readme_is_a_front_page() -> None:
    """The rules live in docs/; README stays short enough to read first."""
    readme = (REPO / "README.md").read_text()
    assert readme.count("\n") <= 350
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    paths = [
        *("nixos-anywhere --kexec", "--print-out-paths", "dd if="),
        *("ssh root@nixos-installer.local", "torify ssh", "pixiecore", "chain "),
    ]
    for path in paths:
        assert path in quick
    assert Path(REPO / "docs").is_dir()


def test_readme_names_every_token_nixos_anywhere_can_send() -> None:
    """The ways through a refusal (kexec/flags.py's TOKENS, their one owner) are in README,
    where a nixos-anywhere user looks."""
    readme = (REPO / "README.md").read_text()
    missing = [token for token in kexec_flags.TOKENS if token not in readme]
    assert missing == []
