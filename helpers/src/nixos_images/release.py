"""release: lay out the release assets, check them, and find the newest NixOS release branch.

\b
nixos-images-release layout OUTPUTS --out DIR --base-url URL
                            --channel C --nixpkgs-rev R
    OUTPUTS holds one directory per built package, named like the flake's
    packages (kexec-installer-x86_64-linux/, ...: `nix build -o`). DIR gets
    the assets under their stable names, netboot-<system>.ipxe pointing at
    URL, SHA256SUMS and a manifest.json (nixpkgs revision, sizes, checksums,
    tags).
nixos-images-release verify DIR
    SHA256SUMS matches the files, and lists all of them.
nixos-images-release newest-branch REMOTE [--prefetch]
    The newest nixos-YY.MM branch of REMOTE (git ls-remote), and with
    --prefetch its revision and NAR hash (nix-prefetch-git).

Asset names are data/layout.json's, as nix/lib.nix's assetNames are (tests/test_release.py).
"""  # noqa: D301 - \b is click's mark for a paragraph it must not rewrap

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import Annotated, TypedDict

import typer

from nixos_images import cli, process, release_ram
from nixos_images.errors import HelperError, InputError
from nixos_images.fsutil import write_atomic
from nixos_images.layout import SYSTEMS, Asset, assets

SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"
BRANCH = re.compile(r"nixos-(\d{2})\.(\d{2})")


def rewrite_ipxe(text: str, kernel_url: str, initrd_url: str) -> str:
    """Nixpkgs' netboot.ipxe loads `bzImage` and `initrd` from beside itself; the released one
    loads them from the release URLs. `--name` keeps the initrd's name, which the kernel
    command line (initrd=...) refers to."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "#!ipxe":
        raise InputError("netboot.ipxe", "does not start with #!ipxe")
    kernels = [i for i, line in enumerate(lines) if line.split()[:1] == ["kernel"]]
    initrds = [i for i, line in enumerate(lines) if line.split()[:1] == ["initrd"]]
    if len(kernels) != 1 or len(initrds) != 1:
        raise InputError("netboot.ipxe", "expected one `kernel` and one `initrd` line")
    # `kernel <file> <arguments...>`, separated by any blanks: every argument is kept as is.
    kernel = re.match(r"\s*kernel\s+\S+(?P<rest>.*)", lines[kernels[0]])
    if kernel is None:
        raise InputError("netboot.ipxe", "the kernel line names no kernel")
    lines[kernels[0]] = f"kernel {kernel_url}{kernel.group('rest')}"
    initrd = lines[initrds[0]].split()
    if len(initrd) != 2:  # noqa: PLR2004 - `initrd <name>`
        raise InputError("netboot.ipxe", f"unexpected initrd line: {lines[initrds[0]]!r}")
    lines[initrds[0]] = f"initrd --name {initrd[1]} {initrd_url}"
    return "\n".join(lines) + "\n"


def sha256(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tags(channel: str, date: dt.date) -> list[str]:
    """The rolling tag (the channel's name) and the immutable dated one."""
    return [channel, f"{channel}-{date:%Y-%m-%d}"]


def plan(outputs: Path, suffix: str) -> list[tuple[Asset, Path]]:
    """Match the build outputs to the asset list: every system with any output must have all
    of its assets, and nothing else may be there."""
    if not outputs.is_dir():
        raise InputError(outputs, "not a directory of build outputs")
    found = {p.name for p in outputs.iterdir()}
    expected: set[str] = set()
    matched: list[tuple[Asset, Path]] = []
    missing: list[str] = []
    for system in SYSTEMS:
        wanted = assets(system)
        packages = {a.package + suffix for a in wanted}
        if not packages & found:
            continue
        expected |= packages
        for asset in wanted:
            path = outputs / (asset.package + suffix) / asset.path
            if path.is_file():
                matched.append((asset, path))
            else:
                missing.append(f"{asset.package + suffix}/{asset.path}")
    if missing:
        raise InputError(outputs, f"missing {', '.join(missing)}")
    extra = sorted(found - expected)
    if extra:
        raise InputError(outputs, f"unexpected {', '.join(extra)} (not a release asset)")
    if not matched:
        raise InputError(outputs, f"no build outputs for {' or '.join(SYSTEMS)}")
    return matched


class AssetEntry(TypedDict):
    """One asset in manifest.json."""

    name: str
    system: str
    size: int
    sha256: str


class Manifest(TypedDict):
    """manifest.json: what a release holds (docs/releases.md); keys are only ever added."""

    channel: str
    nixpkgs_rev: str
    date: str
    tags: list[str]
    base_url: str
    assets: list[AssetEntry]
    # The RAM each netboot and kexec image needs to boot (release_ram.py).
    ram: list[release_ram.RamEntry]


def layout(
    outputs: Path,
    out: Path,
    *,
    base_url: str,
    channel: str,
    nixpkgs_rev: str,
    date: dt.date,
    suffix: str = "",
) -> Manifest:
    """Write the release directory; returns its manifest."""
    check_base_url(base_url)
    matched = plan(outputs, suffix)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise InputError(out, "not empty: lay out a release into a new directory")
    url = base_url.rstrip("/")
    entries: list[AssetEntry] = []
    for asset, path in matched:
        dest = out / asset.name
        if asset.key == "ipxe":
            # The kernel and initrd by their release names (layout.json's, like every name).
            names = {a.key: a.name for a in assets(asset.system)}
            text = rewrite_ipxe(
                path.read_text(), f"{url}/{names['kernel']}", f"{url}/{names['initrd']}"
            )
            write_atomic(dest, text)
        else:
            shutil.copyfile(path, dest)
            dest.chmod(0o644)
        entries.append(
            {
                "name": asset.name,
                "system": asset.system,
                "size": dest.stat().st_size,
                "sha256": sha256(dest),
            }
        )
    ram = ram_figures({(a.system, a.key): out / a.name for a, _ in matched})
    by_name = sorted(entries, key=lambda e: e["name"])
    sums = "".join(f"{e['sha256']}  {e['name']}\n" for e in by_name)
    write_atomic(out / SUMS, sums)
    manifest: Manifest = {
        "channel": channel,
        "nixpkgs_rev": nixpkgs_rev,
        "date": date.isoformat(),
        "tags": tags(channel, date),
        "base_url": url,
        "assets": entries,
        "ram": ram,
    }
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def ram_figures(files: dict[tuple[str, str], Path]) -> list[release_ram.RamEntry]:
    """The RAM figures of the laid-out images, (system, asset key) -> file."""
    figures = []
    for system in SYSTEMS:
        if (system, "ipxe") in files:
            kernel, initrd = files[system, "kernel"], files[system, "initrd"]
            figures.append(release_ram.netboot(system, kernel, initrd))
        figures += [
            release_ram.kexec(key, system, files[system, key])
            for key in ("kexec", "kexecNoninteractive")
            if (system, key) in files
        ]
    return figures


def check_base_url(url: str) -> None:
    """The URL the iPXE script downloads from: https, no blanks, no control characters (it
    is written into the script, where those would start commands of their own)."""
    if not re.fullmatch(r"https://[\x21-\x7e]+", url):
        raise InputError("--base-url", f"{url!r} is not an https URL without spaces")


def verify(directory: Path) -> list[str]:
    """Check SHA256SUMS against the files beside it, at least as strictly as
    `sha256sum -c --strict`, and manifest.json against both; returns the names checked."""
    sums = directory / SUMS
    try:
        lines = sums.read_text().split("\n")
    except FileNotFoundError as e:
        raise InputError(sums, "missing") from e
    if lines[-1] != "":
        raise InputError(sums, "does not end with a newline")
    listed: dict[str, str] = {}
    for number, line in enumerate(lines[:-1], start=1):
        m = re.fullmatch(r"([0-9a-f]{64})  ([A-Za-z0-9._+-]+)", line)
        if not m:
            raise InputError(sums, f"line {number} is not '<sha256>  <name>'")
        if m.group(2) in listed:
            raise InputError(sums, f"line {number} lists {m.group(2)} a second time")
        listed[m.group(2)] = m.group(1)
    if others := sorted(p.name for p in directory.iterdir() if not p.is_file()):
        raise HelperError(f"{directory}: holds more than release files: {', '.join(others)}")
    present = {p.name for p in directory.iterdir() if p.is_file()} - {SUMS, MANIFEST}
    if unlisted := sorted(present - set(listed)):
        raise HelperError(f"{sums}: does not list {', '.join(unlisted)}")
    if absent := sorted(set(listed) - present):
        raise HelperError(f"{sums}: lists missing files {', '.join(absent)}")
    bad = [name for name, digest in listed.items() if sha256(directory / name) != digest]
    if bad:
        raise HelperError(f"checksum mismatch: {', '.join(sorted(bad))}")
    check_manifest(directory / MANIFEST, listed)
    return sorted(listed)


def check_manifest(path: Path, listed: dict[str, str]) -> None:
    """manifest.json must name exactly the files SHA256SUMS lists, with the same digests."""
    try:
        data = json.loads(path.read_text())
        assets_ = {a["name"]: (a["sha256"], a["size"]) for a in data["assets"]}
    except FileNotFoundError as e:
        raise InputError(path, "missing") from e
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(path, f"not a release manifest ({e})") from e
    if set(assets_) != set(listed):
        raise HelperError(f"{path}: lists other files than {SUMS}")
    for name, (digest, size) in sorted(assets_.items()):
        if digest != listed[name] or size != (path.parent / name).stat().st_size:
            raise HelperError(f"{path}: {name} differs from the file or {SUMS}")


def newest_branch(ls_remote: str) -> str:
    """The newest nixos-YY.MM branch in `git ls-remote --heads` output."""
    branches = []
    for line in ls_remote.splitlines():
        ref = line.split("\t")[-1].removeprefix("refs/heads/")
        if m := BRANCH.fullmatch(ref):
            branches.append(((int(m.group(1)), int(m.group(2))), ref))
    if not branches:
        raise HelperError("no nixos-YY.MM branch on the remote")
    return max(branches)[1]


def prefetched(output: str, branch: str) -> dict[str, str]:
    """The parts of nix-prefetch-git's JSON a flake.lock entry needs."""
    try:
        data = json.loads(output)
        return {"branch": branch, "rev": data["rev"], "narHash": data["hash"]}
    except (ValueError, KeyError, TypeError) as e:
        raise HelperError(f"nix-prefetch-git printed something unexpected: {e}") from e


app = cli.new_app(__doc__ or "")


@app.callback()
def release(version: cli.VersionOption = False) -> None:
    """Lay out the release assets, check them, and find the newest NixOS release branch."""


@app.command("layout")
def layout_command(
    outputs: Annotated[Path, typer.Argument(help="Directory of build outputs (nix build -o).")],
    out: Annotated[Path, typer.Option(help="New directory for the release assets.")],
    base_url: Annotated[str, typer.Option(help="Where the assets will be downloadable.")],
    channel: Annotated[str, typer.Option(help="nixos-unstable or nixos-YY.MM: the rolling tag.")],
    nixpkgs_rev: Annotated[str, typer.Option(help="The nixpkgs revision the images are from.")],
    suffix: Annotated[
        str, typer.Option(help="Package name suffix of the outputs (-nixos-stable).")
    ] = "",
    date: Annotated[
        str | None, typer.Option(help="Release date, YYYY-MM-DD (default: today, UTC).")
    ] = None,
    debug: cli.DebugOption = False,
) -> None:
    """Lay out the assets with stable names, SHA256SUMS and manifest.json."""
    cli.setup(debug=debug)
    try:
        day = dt.date.fromisoformat(date) if date else dt.datetime.now(dt.UTC).date()
    except ValueError as e:
        raise InputError("--date", str(e)) from e
    manifest = layout(
        outputs,
        out,
        base_url=base_url,
        channel=channel,
        nixpkgs_rev=nixpkgs_rev,
        date=day,
        suffix=suffix,
    )
    for asset in manifest["assets"]:
        sys.stdout.write(f"{asset['name']}  {asset['size']}\n")


@app.command("verify")
def verify_command(
    directory: Annotated[Path, typer.Argument(help="A release directory.")],
    debug: cli.DebugOption = False,
) -> None:
    """Check every file against SHA256SUMS."""
    cli.setup(debug=debug)
    for name in verify(directory):
        sys.stdout.write(f"{name}: OK\n")


@app.command("newest-branch")
def newest_branch_command(
    remote: Annotated[str, typer.Argument(help="nixpkgs' git URL (or a local mirror).")],
    prefetch: Annotated[
        bool, typer.Option("--prefetch", help="Also print its revision and NAR hash (JSON).")
    ] = False,
    debug: cli.DebugOption = False,
) -> None:
    """Print the newest nixos-YY.MM branch."""
    cli.setup(debug=debug)
    listing = process.run(
        ["git", "ls-remote", "--heads", remote], call=process.Call.GIT_LS_REMOTE, check=True
    ).stdout.decode()
    branch = newest_branch(listing)
    if not prefetch:
        sys.stdout.write(f"{branch}\n")
        return
    argv = ["nix-prefetch-git", "--quiet", "--url", remote, "--rev", f"refs/heads/{branch}"]
    output = process.run(argv, call=process.Call.NIX_PREFETCH_GIT, check=True).stdout.decode()
    sys.stdout.write(json.dumps(prefetched(output, branch)) + "\n")


def main() -> None:
    """Entry point of the release command."""
    cli.run(lambda: app(prog_name="nixos-images-release"), "nixos-images-release")
