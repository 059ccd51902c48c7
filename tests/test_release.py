"""nixos-images-release: asset layout from fake build outputs, checksums, branch discovery.

Build outputs are small stand-in files in the layout `nix build -o` leaves; the remote is a
local bare git repository with nixpkgs-like branches; checksums are verified with GNU
sha256sum as well as by the tool itself.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, nix_eval, require, run_cli
from nixos_images import layout, release, release_ram
from nixos_images.errors import HelperError, InputError
from nixos_images.kexec import preflight

IPXE = """#!ipxe
# Use the cmdline variable to allow the user to specify custom kernel params
# when chainloading this script from other iPXE scripts like netboot.xyz
kernel bzImage init=/nix/store/abc-nixos-system/init initrd=initrd loglevel=4 ${cmdline}
initrd initrd
boot
"""
URL = "https://github.com/example/nixos-images/releases/download/nixos-unstable"
DAY = dt.date(2026, 11, 26)


# The stand-in initrds' content: what they unpack to (bytes), per system; unequal on purpose.
UNPACKED = {"x86_64-linux": 3 << 20, "aarch64-linux": 5 << 20}
KEXEC_RESERVE = 256 << 20


def fake_outputs(
    root: Path, systems: tuple[str, ...] = ("x86_64-linux",), suffix: str = ""
) -> Path:
    """Build outputs as `nix build .#<package> -o outputs/<package>` leaves them, shaped like
    the real ones: the netboot initrd zstd-compressed (by the zstd program, as NixOS's), the
    kexec tarball a tar.gz holding kexec/manifest.json, its kernel and its initrd."""
    require([] if shutil.which("zstd") else ["zstd"], "the release tests' stand-in initrds")
    for system in systems:
        for asset in layout.assets(system):
            path = root / (asset.package + suffix) / asset.path
            path.parent.mkdir(parents=True, exist_ok=True)
            if asset.path == "netboot.ipxe":
                path.write_text(IPXE)
            elif asset.key == "initrd":
                cpio = os.urandom(UNPACKED[system] // 2) * 2  # compresses to about half
                subprocess.run(["zstd", "-q", "-o", str(path)], input=cpio, check=True)
            elif asset.key == "kexec":
                kexec_tarball(path, UNPACKED[system])
            elif asset.key.startswith("kexec"):
                # A reserve so small that unpacking, not running, decides what it needs.
                kexec_tarball(path, UNPACKED[system], reserve=1 << 20)
            else:
                path.write_text(f"{asset.name} bytes\n")
    return root


def kexec_tarball(path: Path, unpacked: object, reserve: object = KEXEC_RESERVE) -> None:
    """A tarball with what release_ram reads of one: its manifest, kernel and initrd."""
    members = {
        "kexec/manifest.json": json.dumps(
            {"kernel": "bzImage", "initrd": "initrd", "initrd_unpacked_size": unpacked,
             "reserve": reserve}
        ).encode(),
        "kexec/bzImage": b"k" * 1000,
        "kexec/initrd": b"i" * 2000,
    }  # fmt: skip
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_asset_names_agree_with_the_flake() -> None:
    for system in layout.SYSTEMS:
        flake = nix_eval(f'(import ./nix/lib.nix).assetNames "{system}"')
        assert sorted(a.name for a in layout.assets(system)) == sorted(flake.values())


def test_ipxe_loads_kernel_and_initrd_from_the_release() -> None:
    text = release.rewrite_ipxe(IPXE, f"{URL}/bzImage-x86_64-linux", f"{URL}/initrd-x86_64-linux")
    lines = text.splitlines()
    assert lines[3] == (
        f"kernel {URL}/bzImage-x86_64-linux init=/nix/store/abc-nixos-system/init"
        " initrd=initrd loglevel=4 ${cmdline}"
    )
    assert lines[4] == f"initrd --name initrd {URL}/initrd-x86_64-linux"
    assert lines[5] == "boot"


@pytest.mark.parametrize(
    "text",
    ["kernel bzImage\ninitrd initrd\n", "#!ipxe\nboot\n", "#!ipxe\nkernel a\ninitrd --name x y\n"],
)
def test_an_unexpected_ipxe_script_is_refused(text: str) -> None:
    with pytest.raises(InputError):
        release.rewrite_ipxe(text, "k", "i")


def test_layout_names_checksums_and_manifest(tmp_path: Path) -> None:
    outputs = fake_outputs(tmp_path / "outputs", layout.SYSTEMS, "-nixos-stable")
    out = tmp_path / "release"
    manifest = release.layout(
        outputs,
        out,
        base_url=URL + "/",
        channel="nixos-26.05",
        nixpkgs_rev="b18a4b905f8d028dc4476412e6d6891728695379",
        date=DAY,
        suffix="-nixos-stable",
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [a.name for s in layout.SYSTEMS for a in layout.assets(s)] + ["SHA256SUMS", "manifest.json"]
    )
    assert (out / "Image-aarch64-linux").read_text() == "Image-aarch64-linux bytes\n"
    assert (
        "initrd --name initrd " + URL + "/initrd-aarch64-linux"
        in (out / "netboot-aarch64-linux.ipxe").read_text()
    )
    assert manifest["tags"] == ["nixos-26.05", "nixos-26.05-2026-11-26"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    sizes = {a["name"]: a["size"] for a in manifest["assets"]}
    assert sizes["initrd-x86_64-linux"] == (out / "initrd-x86_64-linux").stat().st_size

    # GNU coreutils agrees with the checksum file, and so does verify.
    require([] if shutil.which("sha256sum") else ["sha256sum"], "the checksum cross-check")
    subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=out, check=True)
    assert release.verify(out) == sorted(a["name"] for a in manifest["assets"])


def test_the_manifest_says_how_much_ram_each_image_needs(tmp_path: Path) -> None:
    """Netboot's figure from its initrd as built (decompressed to count), kexec's from its
    tarball's manifest: kexec/run's formula (kernel + initrd + twice the unpacked initrd and
    a margin, or what running needs, whichever is more)."""
    out = tmp_path / "release"
    manifest = release.layout(
        fake_outputs(tmp_path / "o", layout.SYSTEMS),
        out,
        base_url=URL,
        channel="c",
        nixpkgs_rev="r",
        date=DAY,
    )
    ram = {(e["system"], e["image"]): e for e in manifest["ram"]}
    assert set(ram) == {
        (system, image)
        for system in layout.SYSTEMS
        for image in ("ipxe", "kexec", "kexecNoninteractive")
    }
    netboot = ram["aarch64-linux", "ipxe"]
    initrd = (out / "initrd-aarch64-linux").stat().st_size
    kernel = (out / "Image-aarch64-linux").stat().st_size
    assert (netboot["initrd_unpacked_size"], netboot["initrd_size"]) == (5 << 20, initrd)
    unpacking = kernel + initrd + 2 * (5 << 20) + preflight.UNPACK_MARGIN
    running = kernel + (5 << 20) + KEXEC_RESERVE
    assert netboot["needs"] == max(unpacking, running)
    kexec = ram["x86_64-linux", "kexec"]
    assert (kexec["kernel_size"], kexec["initrd_size"]) == (1000, 2000)
    assert kexec["needs"] == max(1000 + 2000 + 2 * (3 << 20) + preflight.UNPACK_MARGIN,
                                 1000 + (3 << 20) + KEXEC_RESERVE)  # fmt: skip
    # With a small reserve, unpacking decides: twice the unpacked initrd and the margin.
    unattended = ram["x86_64-linux", "kexecNoninteractive"]
    assert unattended["needs"] == 1000 + 2000 + 2 * (3 << 20) + preflight.UNPACK_MARGIN
    assert json.loads((out / "manifest.json").read_text())["ram"] == manifest["ram"]


@pytest.mark.parametrize(
    ("data", "unpacked"),
    [
        (gzip.compress(b"g" * 4096), 4096),
        (lzma.compress(b"x" * 5000), 5000),
    ],
)
def test_an_initrd_of_another_compression_is_counted_too(
    tmp_path: Path, data: bytes, unpacked: int
) -> None:
    (tmp_path / "initrd").write_bytes(data)
    assert release_ram.unpacked_size(tmp_path / "initrd") == unpacked


def newc(files: dict[str, bytes]) -> bytes:
    """An uncompressed newc archive, as `cpio -o -H newc` writes it (a microcode update's)."""
    require([] if shutil.which("cpio") else ["cpio"], "the microcode-first initrd test")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_bytes(data)
        listing = "".join(f"{name}\n" for name in files).encode()
        return subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet"], input=listing, cwd=tmp,
            capture_output=True, check=True,
        ).stdout  # fmt: skip


def zstd(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


def test_an_initrd_is_counted_as_the_kernel_unpacks_it(tmp_path: Path) -> None:
    """Archives one after another: an uncompressed one first (a microcode update, counted as
    it is, with the zeros after it), then NixOS's stage 1 and store archives, each zstd."""
    require([] if shutil.which("zstd") else ["zstd"], "the concatenated initrd test")
    microcode = newc({"kernel/x86/microcode/GenuineIntel.bin": os.urandom(3000)})
    stage1, store = os.urandom(70_000), b"s" * 900_000
    initrd = tmp_path / "initrd"
    initrd.write_bytes(microcode + b"\0" * 512 + zstd(stage1) + zstd(store))
    assert release_ram.unpacked_size(initrd) == len(microcode) + 512 + len(stage1) + len(store)
    initrd.write_bytes(microcode)
    assert release_ram.unpacked_size(initrd) == len(microcode)
    initrd.write_bytes(microcode[:200] + zstd(store))
    with pytest.raises(InputError, match="cut short"):
        release_ram.unpacked_size(initrd)


@pytest.mark.parametrize("unpacked", [float("inf"), -5, True, "12"])
def test_a_kexec_tarball_whose_manifest_lies_is_one_line(tmp_path: Path, unpacked: object) -> None:
    kexec_tarball(tmp_path / "k.tar.gz", unpacked)
    with pytest.raises(InputError, match="not what it holds"):
        release_ram.kexec("kexec", "x86_64-linux", tmp_path / "k.tar.gz")


def test_a_cut_off_kexec_tarball_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = fake_outputs(tmp_path / "o")
    tarball = next(outputs.glob("kexec-installer-x86_64-linux/*.tar.gz"))
    tarball.write_bytes(tarball.read_bytes()[: tarball.stat().st_size // 2])
    argv = ["nixos-images-release", "layout", str(outputs), "--out", str(tmp_path / "r")]
    argv += ["--base-url", URL, "--channel", "c", "--nixpkgs-rev", "r"]
    assert run_cli(release.main, argv) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "not a kexec tarball" in err


@pytest.mark.parametrize(
    "data",
    [b"", b"not an initrd", b"\x28\xb5\x2f\xfd broken", b"\x1f\x8b\x08", b"070701" + b"0" * 100],
)
def test_an_initrd_that_cannot_be_read_is_one_line(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "initrd").write_bytes(data)
    with pytest.raises(HelperError):
        release_ram.unpacked_size(tmp_path / "initrd")


def test_verify_finds_a_changed_an_extra_and_a_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "release"
    release.layout(
        fake_outputs(tmp_path / "o"), out, base_url=URL, channel="c", nixpkgs_rev="r", date=DAY
    )
    (out / "initrd-x86_64-linux").write_text("tampered\n")
    with pytest.raises(HelperError, match="checksum mismatch: initrd-x86_64-linux"):
        release.verify(out)
    (out / "stray.txt").write_text("x")
    with pytest.raises(HelperError, match=r"does not list stray\.txt"):
        release.verify(out)
    (out / "stray.txt").unlink()
    (out / "bzImage-x86_64-linux").unlink()
    with pytest.raises(HelperError, match="lists missing files bzImage-x86_64-linux"):
        release.verify(out)


def laid_out(tmp_path: Path) -> Path:
    out = tmp_path / "release"
    release.layout(
        fake_outputs(tmp_path / "o"), out, base_url=URL, channel="c", nixpkgs_rev="r", date=DAY
    )
    return out


def test_verify_is_as_strict_as_sha256sum_about_duplicates(tmp_path: Path) -> None:
    """A name listed twice: the last line would win, `sha256sum -c --strict` says no."""
    out = laid_out(tmp_path)
    sums = out / "SHA256SUMS"
    first = sums.read_text().splitlines()[0]
    name = first.split()[1]
    sums.write_text(sums.read_text() + f"{'0' * 64}  {name}\n")
    require([] if shutil.which("sha256sum") else ["sha256sum"], "the checksum cross-check")
    gnu = subprocess.run(
        ["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"],
        cwd=out,
        capture_output=True,
        check=False,
    )
    assert gnu.returncode != 0
    with pytest.raises(InputError, match=f"lists {re.escape(name)} a second time"):
        release.verify(out)


def test_verify_checks_the_manifest_and_refuses_subdirectories(tmp_path: Path) -> None:
    out = laid_out(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["assets"][0]["sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HelperError, match="differs from the file or SHA256SUMS"):
        release.verify(out)
    laid = laid_out(tmp_path / "again")
    (laid / "sub").mkdir()
    with pytest.raises(HelperError, match="holds more than release files: sub"):
        release.verify(laid)


def test_the_ipxe_rewrite_keeps_every_kernel_argument_whatever_the_blanks() -> None:
    text = (
        "#!ipxe\nkernel bzImage\tinit=/nix/store/x/init  initrd=initrd loglevel=4\ninitrd initrd\n"
    )
    rewritten = release.rewrite_ipxe(text, f"{URL}/k", f"{URL}/i")
    assert f"kernel {URL}/k\tinit=/nix/store/x/init  initrd=initrd loglevel=4" in rewritten


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/x",
        "https://example.org/x y",
        "https://example.org/x\nchain http://evil",
        "",
    ],
)
def test_the_base_url_is_an_https_url_and_nothing_more(tmp_path: Path, url: str) -> None:
    with pytest.raises(InputError, match="is not an https URL without spaces"):
        release.layout(
            fake_outputs(tmp_path / "o"),
            tmp_path / "r",
            base_url=url,
            channel="c",
            nixpkgs_rev="r",
            date=DAY,
        )


def test_missing_and_extra_outputs_are_named(tmp_path: Path) -> None:
    outputs = fake_outputs(tmp_path / "outputs")
    (outputs / "netboot-x86_64-linux/initrd").unlink()
    with pytest.raises(InputError, match=r"missing netboot-x86_64-linux/initrd"):
        release.plan(outputs, "")
    (outputs / "netboot-x86_64-linux/initrd").write_text("x")
    (outputs / "result").mkdir()
    with pytest.raises(InputError, match=r"unexpected result \(not a release asset\)"):
        release.plan(outputs, "")


def test_layout_refuses_a_used_directory_and_empty_outputs(tmp_path: Path) -> None:
    out = tmp_path / "release"
    out.mkdir()
    (out / "old").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        release.layout(
            fake_outputs(tmp_path / "o"), out, base_url=URL, channel="c", nixpkgs_rev="r", date=DAY
        )
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match="no build outputs"):
        release.plan(tmp_path / "none", "")


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository with nixpkgs' kinds of branches."""
    require([] if shutil.which("git") else ["git"], "the branch discovery test")
    work, bare = tmp_path / "work", tmp_path / "nixpkgs.git"
    work.mkdir()
    git("init", "-q", "-b", "master", cwd=work)
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
        cwd=work,
    )
    for branch in (
        "nixos-25.11",
        "nixos-26.05",
        "nixos-26.05-small",
        "nixos-unstable",
        "release-26.11",
        "nixos-9.99x",
    ):
        git("branch", branch, cwd=work)
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare


def test_newest_release_branch_from_a_remote(
    remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(release.main, ["nixos-images-release", "newest-branch", str(remote)]) == 0
    assert capsys.readouterr().out == "nixos-26.05\n"


def test_newest_branch_sorts_by_year_then_month() -> None:
    listing = "a\trefs/heads/nixos-26.05\nb\trefs/heads/nixos-25.11\nc\trefs/heads/nixos-27.05\n"
    assert release.newest_branch(listing) == "nixos-27.05"
    with pytest.raises(HelperError, match=r"no nixos-YY\.MM branch"):
        release.newest_branch("a\trefs/heads/master\n")


def test_prefetch_output_becomes_lock_facts() -> None:
    # The fields nix-prefetch-git prints (among others).
    output = json.dumps({"url": "u", "rev": "b18a4b9", "hash": "sha256-gwrP=", "date": "x"})
    assert release.prefetched(output, "nixos-26.05") == {
        "branch": "nixos-26.05",
        "rev": "b18a4b9",
        "narHash": "sha256-gwrP=",
    }
    with pytest.raises(HelperError, match="unexpected"):
        release.prefetched("not json", "nixos-26.05")


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "nixos-images-release",
        "layout",
        str(tmp_path / "nothing"),
        "--out",
        str(tmp_path / "o"),
    ]
    argv += ["--base-url", URL, "--channel", "c", "--nixpkgs-rev", "r", "--date", "2026-13-01"]
    assert run_cli(release.main, argv) == 2
    assert capsys.readouterr().err.startswith(
        "nixos-images-release: --date: month must be in 1..12"
    )
    argv[-1] = "2026-11-26"
    assert run_cli(release.main, argv) == 2
    err = capsys.readouterr().err
    assert err == f"nixos-images-release: {tmp_path}/nothing: not a directory of build outputs\n"


WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    # The workflows are not part of the package's source (nix/package.nix): the Nix build's
    # check phase skips these tests, tests/run --ci runs them.
    require([] if WORKFLOWS.is_dir() else [".github/workflows"], "the workflow checks")
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    return data


def test_workflows_build_every_system_on_both_inputs() -> None:
    for name in ("build.yml", "release.yml"):
        jobs = workflow(name)["jobs"]
        job = jobs["nix" if name == "build.yml" else "build"]
        matrix = job["strategy"]["matrix"]
        assert tuple(matrix["system"]) == layout.SYSTEMS
        assert matrix["nixpkgs"] == ["unstable", "stable"]
        assert {i["system"] for i in matrix["include"]} == set(layout.SYSTEMS)


def test_release_builds_exactly_the_packages_the_assets_come_from() -> None:
    """release.yml reads the package list from layout.json with jq: run that jq."""
    require([] if shutil.which("jq") else ["jq"], "the release workflow check")
    steps = workflow("release.yml")["jobs"]["build"]["steps"]
    (script,) = [s["run"] for s in steps if "nix build" in s.get("run", "")]
    listing = script.split("packages=$(", 1)[1].split(")\n", 1)[0]
    build = workflow("build.yml")["jobs"]["nix"]["steps"]
    (build_script,) = [s["run"] for s in build if "nix build" in s.get("run", "")]
    for system in layout.SYSTEMS:
        result = subprocess.run(
            ["sh", "-c", listing],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={"SYSTEM": system, "PATH": os.environ["PATH"]},
            check=True,
        )
        built = set(result.stdout.split())
        assert built == {a.package for a in layout.assets(system)}
        generic = {p.removesuffix(f"-{system}") for p in built}
        assert {f'".#{p}-$SYSTEM$SUFFIX"' for p in generic} <= set(build_script.split())
