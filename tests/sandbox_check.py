"""Run the package's tests the way the Nix build's check phase (pytestCheckHook) will.

    python tests/sandbox_check.py VENV

What nix/package.nix declares is read by evaluating it (tests/nix/package-facts.nix), so this
follows package.nix instead of a copy of its lists. Like the Nix sandbox, the run has:
  - only the files of package.nix's source fileset (those git tracks: a flake's source),
    copied to a fresh directory, cwd its sourceRoot, the tests from enabledTestPaths;
  - an unprivileged user (nobody), no network (a namespace with only loopback), HOME,
    TMPDIR and SOURCE_DATE_EPOCH as Nix sets them, and package.nix's `env`;
  - PATH = stdenv's default tools and the programs among nativeCheckInputs, nothing else;
  - Python from VENV (pytest and the runtime, no helpers installed), our package from the
    copy. VENV's Python must be readable by nobody (tests/run makes it from /usr/bin).
Every test must pass or skip with its reason; pytest-timeout stops any that hangs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TypedDict

from conftest import nix_eval

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
# stdenv's default build tools (pkgs/stdenv/generic/common-path.nix), as Debian packages.
STDENV = (
    "coreutils", "findutils", "diffutils", "sed", "grep", "gawk", "tar", "gzip", "bzip2",
    "xz-utils", "bash", "patch", "make", "file",
)  # fmt: skip
FACTS_EXPR = "import ./tests/nix/package-facts.nix { }"
# nixpkgs package -> the Debian package with the same programs.
DEBIAN_NAMES = {"iproute2": "iproute2", "shadow": "passwd", "zstd": "zstd"}


class PackageFacts(TypedDict):
    """tests/nix/package-facts.nix's answer."""

    files: list[str]
    sourceRoot: str
    enabledTestPaths: list[str]
    checkPrograms: list[str]
    checkModules: list[str]
    checkEnv: dict[str, str]


def package_facts() -> PackageFacts:
    """nix/package.nix's source files, sourceRoot, test paths and check inputs."""
    facts: PackageFacts = nix_eval(FACTS_EXPR)
    return facts


def programs(package: str) -> list[Path]:
    """The programs a Debian package installs (in bin and sbin directories)."""
    listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True)
    paths = [Path(line) for line in listing.stdout.splitlines()]
    return [
        p
        for p in paths
        if p.parent.name in {"bin", "sbin"} and p.is_file() and os.access(p, os.X_OK)
    ]


def source_tree(work: Path, files: list[str]) -> Path:
    """The fileset's files that git tracks, copied under work/source."""
    tracked = set(
        subprocess.run(
            ["git", "ls-files", "-z"], capture_output=True, text=True, cwd=REPO, check=True
        ).stdout.split("\0")
    )
    source = work / "source"
    for name in sorted(set(files) & tracked):
        dest = source / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest)
    return source


def bin_dir(work: Path, packages: list[str], python: Path) -> Path:
    """A PATH directory holding only the given packages' programs and python3."""
    bin_path = work / "bin"
    bin_path.mkdir()
    for package in packages:
        for program in programs(package):
            link = bin_path / program.name
            if not link.exists():
                link.symlink_to(program)
    (bin_path / "python3").symlink_to(python)
    # stdenv's bash is also its sh (Debian's sh is dash, in another package).
    if not (bin_path / "sh").exists() and (bin_path / "bash").exists():
        (bin_path / "sh").symlink_to((bin_path / "bash").resolve())
    return bin_path


def main() -> int:
    """Set the sandbox up, run the tests in it, return pytest's exit code."""
    (venv,) = sys.argv[1:]
    facts = package_facts()
    work = Path(tempfile.mkdtemp(prefix="nixos-images-sandbox-"))
    try:
        work.chmod(0o755)
        source_tree(work, facts["files"])
        cwd = work / facts["sourceRoot"]
        check_programs = [DEBIAN_NAMES[p] for p in facts["checkPrograms"]]
        # Like Nix: the interpreter on PATH, its packages on PYTHONPATH (a venv's own
        # python3 would not find its venv through a symlink of another name).
        python = Path(venv).absolute() / "bin/python3"
        (site,) = Path(venv).absolute().glob("lib/python3*/site-packages")
        bin_path = bin_dir(work, [*STDENV, *check_programs], python.resolve())
        # Installed from the copy, as the build installs the wheel before the check phase.
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-deps", "--target", str(work / "site"), str(cwd)], check=True)
        (work / "tmp").mkdir()
        for path in [work, *work.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)
        env = {
            "PATH": str(bin_path),
            "HOME": "/homeless-shelter",
            "TMPDIR": str(work / "tmp"),
            "PYTHONPATH": f"{work / 'site'}:{site}",
            "PYTHONDONTWRITEBYTECODE": "1",
            # The sandbox's own (no CI): reproducible builds' date, 1980-01-01.
            "SOURCE_DATE_EPOCH": "315532800",
            **facts["checkEnv"],
        }
        pytest = ["python3", "-m", "pytest", "-p", "no:cacheprovider", "-rs"]
        pytest += facts["enabledTestPaths"]
        drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
        inner = 'ip link set lo up && exec "$@"'
        argv = ["unshare", "--net", "--", "sh", "-c", inner, "sh", *drop, "env", "-i"]
        argv += [f"{k}={v}" for k, v in env.items()]
        programs_on_path = len(list(bin_path.iterdir()))
        print(f"sandbox-check: {len(facts['files'])} files, {programs_on_path} programs")  # noqa: T201
        return subprocess.run([*argv, *pytest], cwd=cwd, check=False, timeout=1800).returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
