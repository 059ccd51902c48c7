"""kexec/run's plan, report and launch (nixos_images.kexec.plan, report, launcher, load) against
a recording stand-in for kexec: what reaches kexec, what is left behind on every failure, and
signals and a second launcher.
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import json
import os
import pickle
import secrets
import shlex
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, require, run_cli
from fakehost import ECDSA, ED25519, GOOD, PRISTINE, extract, on_fake_host, plan
from nixos_images import deadman, process
from nixos_images.errors import HelperError, InputError
from nixos_images.kexec import (
    launcher,
    report,
)
from nixos_images.kexec.models import SyscallChoice
from nixos_images.kexec.plan import make_plan


def state_in(initrd: bytes, dest: Path) -> Path:
    """The state archive appended to the pristine initrd, extracted under dest."""
    assert initrd.startswith(PRISTINE)
    rest = initrd[len(PRISTINE) :]
    pad = -len(PRISTINE) % 4
    assert rest[:pad] == b"\0" * pad
    assert rest[pad:].count(b"TRAILER!!!") == 1
    extract(rest[pad:], dest)
    return dest / "nixos-images/state"


def wait_for(path: Path, seconds: float = 5) -> None:
    """Until the detached process has written path (created is not written: under load the
    shell's `echo >` may be read between the two)."""
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_launch_appends_the_state_and_boots_in_a_new_session(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    tb, root, log = setup
    # What an earlier run killed by the OOM killer left: the next run removes it.
    left = tb / ".state-k1lled00"
    left.mkdir(mode=0o700)
    (left / "initrd").write_bytes(b"the old host's keys")
    p = plan(tb, root)
    assert p.ok, p.checks
    assert launcher.launch(p) == "loaded with kexec_file_load, boot scheduled via setsid"
    assert not left.exists()
    calls = log.read_text().splitlines()
    assert calls[0].startswith(f"--load {tb}/bzImage --initrd={tb}/.state-")
    assert "--command-line=init=/nix/store/x/init --kexec-file-syscall" in calls[0]
    assert (tb / "initrd").read_bytes() == PRISTINE
    assert not list(tb.glob(".state-*")), "the initrd with secrets must not stay behind"

    state = state_in(Path(f"{log}.initrd").read_bytes(), tmp_path / "x")
    key = state / "ssh/host-keys/ssh_host_ed25519_key"
    assert key.read_text() == "PRIVATE\n"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (state / "ssh/host-keys/ssh_host_ed25519_key.pub").stat().st_mode & 0o777 == 0o644
    assert not (state / "ssh/host-keys/ssh_host_ed25519_key-cert.pub").exists()
    # The sudo user's unrestricted key first; root's forced command stays forced.
    assert (state / "ssh/authorized_keys").read_text() == (
        f'{ECDSA} admin\ncommand="echo no" {ED25519} root\n'
    )
    assert (state / "ssh/authorized_keys").stat().st_mode & 0o777 == 0o600
    assert (state / "machine-id").read_text() == "0123456789abcdef0123456789abcdef\n"
    assert (state / "network/dns").read_text() == "192.0.2.53\n"  # behind resolved's stub
    recorded = FIXTURES / "source-host/network/addresses.json"
    assert (state / "network/addresses.json").read_bytes() == recorded.read_bytes()

    # The boot: `kexec --exec` ran detached, in a session of its own.
    wait_for(Path(f"{log}.exec-sid"))
    assert int(Path(f"{log}.exec-sid").read_text()) != os.getsid(0)


def test_running_twice_does_not_stack_state(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    tb, root, log = setup
    launcher.launch(plan(tb, root))
    (root / "root/.ssh/authorized_keys").unlink()
    launcher.launch(plan(tb, root))
    state = state_in(Path(f"{log}.initrd").read_bytes(), tmp_path / "x")
    assert (state / "ssh/authorized_keys").read_text() == f"{ECDSA} admin\n"


def test_kexec_load_is_tried_when_kexec_file_load_fails(
    setup: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    monkeypatch.setenv("FAIL", "file")
    assert launcher.launch(plan(tb, root)).startswith("loaded with kexec_load,")
    loads = [c for c in log.read_text().splitlines() if c.startswith("--load")]
    flags = [[w for w in c.split() if w.startswith("--kexec")] for c in loads]
    assert flags == [["--kexec-file-syscall"], ["--kexec-syscall"]]
    # kexec_load without hashing what it loaded, as upstream; kexec_file_load hashes anyway.
    assert ["--no-checks" in c.split() for c in loads] == [False, True]


def test_when_no_syscall_loads_it_says_why_and_leaves_nothing(
    setup: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    monkeypatch.setenv("FAIL", "file load")
    with pytest.raises(HelperError) as e:
        launcher.launch(plan(tb, root, extra_flags="--mem-min=0x1000"))
    assert str(e.value) == (
        "kexec could not load the installer (kexec_file_load: file: Invalid argument;"
        " kexec_load: load: Operation not permitted)"
    )
    calls = log.read_text().splitlines()
    assert all(c.endswith("--mem-min=0x1000") for c in calls)
    assert not any("--exec" in c for c in calls)
    assert not list(tb.glob(".state-*"))


def fake_systemd_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """A systemd-run on PATH that records its arguments (one line a call) and runs script."""
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    tool = bin_dir / "systemd-run"
    tool.write_text(f'#!/bin/sh\necho "$*" >> "$LOG.systemd-run"\n{script}\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return Path(f"{os.environ['LOG']}.systemd-run")


def test_systemd_run_without_collect_is_tried_when_it_is_refused(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd before 236 (Ubuntu 16.04, Debian 9) has no --collect."""
    tb, root, _ = setup
    refuses_collect = (
        'case "$*" in *--collect*) echo "unrecognized option \'--collect\'" >&2; exit 1;; esac'
    )
    calls = fake_systemd_run(tmp_path, monkeypatch, refuses_collect)
    p = dataclasses.replace(plan(tb, root), facts=GOOD)  # systemd is PID 1
    assert launcher.launch(p).endswith("boot scheduled via systemd-run (without --collect)")
    first, second = calls.read_text().splitlines()
    assert first.startswith("--quiet --collect --unit=nixos-images-kexec-")
    assert second.startswith("--quiet --unit=nixos-images-kexec-")
    assert f'/bin/sh -c sleep "$0" || exit; sync; exec "$@" 0 {tb}/bin/kexec --exec' in second


def test_a_refusing_systemd_run_falls_back_to_a_session_of_its_own(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    calls = fake_systemd_run(tmp_path, monkeypatch, "exit 1")
    p = dataclasses.replace(plan(tb, root), facts=GOOD)
    assert launcher.launch(p).endswith("boot scheduled via setsid")
    assert len(calls.read_text().splitlines()) == 2
    wait_for(Path(f"{log}.exec-sid"))
    assert int(Path(f"{log}.exec-sid").read_text()) != os.getsid(0)


def test_a_hanging_systemd_run_is_killed_and_a_session_of_its_own_boots(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    monkeypatch.setitem(process.TIMEOUTS, process.Call.SYSTEMD_RUN, 0.3)
    calls = fake_systemd_run(tmp_path, monkeypatch, "exec sleep 30")
    p = dataclasses.replace(plan(tb, root), facts=GOOD)
    assert launcher.launch(p).endswith("boot scheduled via setsid")
    assert len(calls.read_text().splitlines()) == 2
    wait_for(Path(f"{log}.exec-sid"))


def test_a_failed_schedule_unloads_the_image(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    fake_systemd_run(tmp_path, monkeypatch, "exit 1")

    def no_session(*_: object) -> None:
        raise HelperError("/bin/sh: command not found")

    monkeypatch.setattr(process, "detach", no_session)
    p = dataclasses.replace(plan(tb, root), facts=GOOD)
    with pytest.raises(HelperError, match="command not found"):
        launcher.launch(p)
    assert log.read_text().splitlines()[-1] == "--kexec-file-syscall --unload"


@pytest.mark.parametrize(
    ("flags", "load_flags", "exec_flags", "appended"),
    [
        ("", (), (), ""),
        # kexec-tools syncs at the end of every run: --no-sync goes to each of them.
        ("--no-sync", ("--no-sync",), ("--no-sync",), ""),
        ("-y", ("--no-sync",), ("--no-sync",), ""),
        ("-x --no-ifdown", (), ("-x", "--no-ifdown"), ""),
        ("-xy", ("--no-sync",), ("--no-sync", "-x"), ""),
        # Added to the installer's own command line, which kexec-tools would have replaced.
        ("--append='console=ttyS1 quiet'", (), (), " console=ttyS1 quiet"),
        ("--command-line nomodeset --append=a=b", (), (), " nomodeset a=b"),
        (
            "-d --no-sync --mem-min=0x1000",
            ("--no-sync", "-d", "--mem-min=0x1000"),
            ("--no-sync", "-d"),
            "",
        ),
        ("-t bzImage", ("-t", "bzImage"), (), ""),
        ("--nixos-images-reserve-mib=128 --no-sync", ("--no-sync",), ("--no-sync",), ""),
        # getopt_long reads an unambiguous prefix as the whole name; so does kexec/run.
        ("--app=quiet --comm nomodeset", (), (), " quiet nomodeset"),
        ("--no-s --no-if", ("--no-sync",), ("--no-sync", "--no-ifdown"), ""),
        ("--mem-mi=0x1000", ("--mem-min=0x1000",), (), ""),
        # A value is the next word even when it looks like options (getopt's pairing).
        ("--append -xy", (), (), " -xy"),
        (
            "--serial ttyS0 --serial-baud 115200",
            ("--serial", "ttyS0", "--serial-baud", "115200"),
            (),
            "",
        ),
        ("-dt bzImage", ("-d", "-t", "bzImage"), ("-d",), ""),
        ("--noefi --reuse-video", ("--noefi", "--reuse-video-type"), (), ""),
    ],
)
def test_extra_flags_reach_the_kexec_call_they_belong_to(
    setup: tuple[Path, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: str,
    load_flags: tuple[str, ...],
    exec_flags: tuple[str, ...],
    appended: str,
) -> None:
    """Each flag reaches the kexec run where kexec-tools means what its caller meant: loader
    options never reach `kexec -e` (which refuses them: no reboot), and with --no-sync
    nothing calls sync."""
    tb, root, log = setup
    calls = fake_systemd_run(tmp_path, monkeypatch, "")
    p = dataclasses.replace(plan(tb, root, extra_flags=flags), facts=GOOD)
    launcher.launch(p)
    (load_call,) = [c for c in log.read_text().splitlines() if c.startswith("--load")]
    assert load_call.endswith(" ".join(("--kexec-file-syscall", *load_flags)))
    assert f"--command-line=init=/nix/store/x/init{appended} --kexec-file-syscall" in load_call
    scheduled = calls.read_text()
    assert scheduled.rstrip().endswith(" ".join((f"{tb}/bin/kexec", "--exec", *exec_flags)))
    assert ("sync;" in scheduled) is ("--no-sync" not in exec_flags)
    assert "nixos-images-reserve" not in load_call + scheduled


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        ("--reuse-cmdline", "--reuse-cmdline cannot be passed on: the installer needs its own"),
        ("--initrd=/boot/initrd", "--initrd cannot be passed on: the installer's initrd is"),
        ("-e", "-e cannot be passed on: kexec/run boots the installer itself"),
        ("-lx", "-l cannot be passed on: kexec/run loads the installer itself"),
        ("/boot/vmlinuz", "'/boot/vmlinuz': a file for kexec"),
        ("--append", "--append needs a value"),
        ("--nixos-images-reserve=1", "--nixos-images-reserve is not a kexec/run token"),
        # Abbreviations are read as kexec-tools reads them, then judged whole.
        ("--ini=/boot/initrd", "--initrd cannot be passed on: the installer's initrd is"),
        ("--reuse-c", "--reuse-cmdline cannot be passed on"),
        ("--load-pa", "--load-panic cannot be passed on: a crash kernel"),
        ("--he", "--help cannot be passed on: not a load"),
        ("--ver", "--version cannot be passed on: not a load"),
        ("--no-", "--no- could mean --no-checks, --no-cma, --no-ifdown, --no-sync: write the"),
        ("--f", "--f could mean --force, --force-dtb: write the option in full"),
        ("--frobnicate", "--frobnicate is not a kexec-tools option kexec/run knows"),
        ("--", "-- cannot be passed on"),
        ("-", "'-': a file for kexec"),
        ("-?", "-? cannot be passed on: not a load"),
        ("--entr=0x100", "--entr could mean --entry, --entry-32bit: write the option in full"),
        ("--append=live.nixos.password=hunter2", "live.nixos.password= would put a password"),
    ],
)
def test_flags_that_would_not_boot_this_installer_are_refused_in_one_line(
    setup: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str], flags: str, says: str
) -> None:
    tb, _, log = setup
    argv = ["kexec/run", "--tarball-dir", str(tb), "--kexec-extra-flags", flags]
    assert run_cli(launcher.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kexec/run: --kexec-extra-flags: {says}")
    assert err.count("\n") == 1
    assert not log.exists()


@pytest.mark.parametrize(
    ("flags", "syscall", "tried"),
    [
        ("-s", "auto", ["--kexec-file-syscall"]),
        ("-c", "auto", ["--kexec-syscall"]),
        ("--kexec-syscall", "load", ["--kexec-syscall"]),
        ("-a", "auto", ["--kexec-file-syscall", "--kexec-syscall"]),
    ],
)
def test_syscall_flags_choose_as_syscall_does(
    setup: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    flags: str,
    syscall: str,
    tried: list[str],
) -> None:
    """-s, -c and -a pick what --syscall picks (kexec/run passes its own flag: theirs would
    come after it and win, and the fallback and the unload would use the other one)."""
    tb, root, log = setup
    monkeypatch.setenv("FAIL", "file load")
    p = make_plan(
        tb,
        extra_flags=flags,
        syscall=SyscallChoice(syscall),
        delay=0,
        root=root,
        facts=dataclasses.replace(GOOD, systemd=False),
    )
    with pytest.raises(HelperError):
        launcher.launch(p)
    loads = [c.split() for c in log.read_text().splitlines() if c.startswith("--load")]
    assert [[w for w in c if w.startswith("--kexec")] for c in loads] == [[t] for t in tried]
    assert not [c for c in loads if {"-s", "-c", "-a"} & set(c)]


def test_a_syscall_flag_that_contradicts_syscall_is_one_line(
    setup: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tb, _, log = setup
    argv = ["kexec/run", "--tarball-dir", str(tb), "--syscall", "file", "--kexec-extra-flags", "-c"]
    assert run_cli(launcher.main, argv) == 2
    assert "asks for syscall load, --syscall for file" in capsys.readouterr().err
    assert not log.exists()


def test_json_without_dry_run_boots_nothing(
    setup: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tb, _, log = setup
    for flag in ("--json", "--show-units"):
        assert run_cli(launcher.main, ["kexec/run", "--tarball-dir", str(tb), flag]) == 2
        boots = "without it, kexec/run boots the installer"
        assert capsys.readouterr().err == f"kexec/run: {flag}: only with --dry-run: {boots}\n"
    assert not log.exists()


def test_the_dry_run_shows_both_kexec_command_lines_and_the_units(
    setup: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tb, root, log = setup
    on_fake_host(monkeypatch, root)
    argv = ["kexec/run", "--tarball-dir", str(tb), "--dry-run", "--json", "--show-units"]
    argv += ["--kexec-extra-flags", "--no-sync --append=nomodeset -x"]
    run_cli(launcher.main, argv)
    data = json.loads(capsys.readouterr().out)
    k = data["kexec"]
    assert k["cmdline"] == "init=/nix/store/x/init nomodeset"
    assert "--command-line=init=/nix/store/x/init nomodeset" in k["load_command"]
    assert k["load_command"][-1] == "--no-sync"
    assert k["exec_command"][-3:] == ["--exec", "--no-sync", "-x"]
    assert k["sync"] is False
    assert set(data["unit_files"]) == set(data["carry_over"]["network_units"])
    assert all(text.startswith("# ") for text in data["unit_files"].values())
    run_cli(launcher.main, [a for a in argv if a != "--json"])
    text = capsys.readouterr().out
    assert "load: " in text
    assert "boot: (no sync) " in text
    assert "[Match]" in text  # the units, in full
    assert not log.exists()


def test_the_dead_man_switch_is_set_for_the_installer_by_flag_or_token(
    setup: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--deadman and nixos-anywhere's --nixos-images-deadman= land on the installer's command
    line, which its switch reads (the flag last: the switch takes the last one)."""
    tb, root, log = setup
    on_fake_host(monkeypatch, root)
    argv = ["kexec/run", "--tarball-dir", str(tb), "--dry-run", "--json"]
    argv += ["--kexec-extra-flags", "--nixos-images-deadman=off --append=quiet"]
    run_cli(launcher.main, [*argv, "--deadman", "45"])
    k = json.loads(capsys.readouterr().out)["kexec"]
    assert k["cmdline"] == (
        "init=/nix/store/x/init nixos-images.deadman=off quiet nixos-images.deadman=45"
    )
    minutes, _ = deadman.boot_minutes(k["cmdline"], 30)
    assert minutes == 45
    assert not log.exists()


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (["--deadman", "soon"], "--deadman"),
        (["--deadman", "-5"], "--deadman"),
        (["--kexec-extra-flags", "--nixos-images-deadman=30m"], "--kexec-extra-flags"),
        (["--kexec-extra-flags", "--nixos-images-deadman="], "--kexec-extra-flags"),
        (["--kexec-extra-flags", "--append=nixos-images.deadman=soon"], "--kexec-extra-flags"),
    ],
)
def test_a_bad_dead_man_value_is_one_line_and_loads_nothing(
    setup: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    where: str,
) -> None:
    tb, _, log = setup
    assert run_cli(launcher.main, ["kexec/run", "--tarball-dir", str(tb), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kexec/run: {where}: --nixos-images-deadman: ")
    assert "not a number of minutes (1 to 99999) or off" in err
    assert err.count("\n") == 1
    assert not log.exists()


def test_the_dead_man_token_without_its_value_says_how(
    setup: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tb, _, log = setup
    argv = [
        "kexec/run",
        "--tarball-dir",
        str(tb),
        "--kexec-extra-flags",
        "--nixos-images-deadman 5",
    ]
    assert run_cli(launcher.main, argv) == 2
    err = capsys.readouterr().err
    assert err == (
        "kexec/run: --kexec-extra-flags: --nixos-images-deadman needs =MINUTES or =off,"
        " in one word\n"
    )
    assert not log.exists()


def test_the_reserve_override_changes_the_memory_check(setup: tuple[Path, Path, Path]) -> None:
    tb, root, _ = setup
    small = dataclasses.replace(GOOD, mem_total=3 << 30, mem_available=3 << 30)
    default = plan(tb, root, facts=small)
    overridden = plan(tb, root, facts=small, extra_flags="--nixos-images-reserve-mib=4096")
    memory = {c.name: c for c in overridden.checks}["memory"]
    assert {c.name: c for c in default.checks}["memory"].ok
    assert not memory.ok
    assert "reserve 4096 MiB" in memory.detail
    assert report.report(overridden)["kexec"]["reserve_override_mib"] == 4096


@pytest.mark.parametrize(
    "flags",
    [
        "--nixos-images-reserve-mib=lots",
        "--nixos-images-reserve-mib",
        "--nixos-images-reserve-mib=\u00b2",  # a digit to str.isdigit, not to int()
        "--nixos-images-reserve-mib=\u0663",  # Arabic-Indic three
    ],
)
def test_a_bad_reserve_override_is_one_line(setup: tuple[Path, Path, Path], flags: str) -> None:
    tb, root, _ = setup
    with pytest.raises(InputError, match="--nixos-images-reserve-mib=N needs a number"):
        plan(tb, root, extra_flags=flags)


def test_refusals_list_every_failed_check_and_change_nothing(
    setup: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tb, root, log = setup
    p = plan(tb, root, dataclasses.replace(GOOD, kexec_load_disabled="1", mem_total=64 << 20))
    assert not p.ok
    failed = {c.name for c in p.checks if not c.ok}
    assert failed == {"kexec", "memory"}
    data = report.report(p)
    carry = data["carry_over"]
    assert carry is not None
    assert carry["authorized_keys"] == [
        f"{ECDSA} admin",
        f'command="echo no" {ED25519} root',
    ]
    assert carry["dropped_options"] == []  # no cloud-init refusal to drop
    assert data["kexec"]["syscalls"] == ["kexec_file_load", "kexec_load"]
    text = report.render_report(data)
    assert "FAIL  kexec: kexec is disabled" in text
    assert "  network   10-restored-" in text
    assert not log.exists()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--syscall", "both"], "--syscall: 'both' is not one of auto, file, load"),
        (["--kexec-extra-flags", "--append='x"], "--kexec-extra-flags: No closing quotation"),
        ([], "--tarball-dir: missing: start the launcher through kexec/run"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    setup: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    says: str,
) -> None:
    tb, _, _ = setup
    tarball = [] if not argv else ["--tarball-dir", str(tb)]
    assert run_cli(launcher.main, ["kexec/run", *tarball, *argv]) == 2
    assert capsys.readouterr().err == f"kexec/run: {says}\n"


def test_a_damaged_manifest_is_one_line(
    setup: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tb, _, _ = setup
    data = json.loads((tb / "manifest.json").read_text())
    del data["tools"]["ip"]
    (tb / "manifest.json").write_text(json.dumps(data))
    assert run_cli(launcher.main, ["kexec/run", "--tarball-dir", str(tb), "--dry-run"]) == 2
    assert capsys.readouterr().err == f"kexec/run: {tb}/manifest.json: no 'ip' in tools\n"


def test_missing_tarball_files_are_a_failed_check(setup: tuple[Path, Path, Path]) -> None:
    tb, root, _ = setup
    (tb / "bin/ip").unlink()
    p = plan(tb, root)
    (tarball,) = [c for c in p.checks if not c.ok]
    assert tarball.detail == "missing bin/ip: unpack the tarball again, it is incomplete"
    assert p.state is None


def test_launch_refuses_a_plan_that_failed_its_checks(setup: tuple[Path, Path, Path]) -> None:
    tb, root, log = setup
    p = plan(tb, root, dataclasses.replace(GOOD, container="docker"))
    with pytest.raises(HelperError, match="not every check passed"):
        launcher.launch(p)
    assert not log.exists()


def test_the_delay_defaults_to_the_tarballs(setup: tuple[Path, Path, Path]) -> None:
    tb, root, _ = setup
    data = json.loads((tb / "manifest.json").read_text())
    facts = dataclasses.replace(GOOD, systemd=False)

    def delay() -> int:
        (tb / "manifest.json").write_text(json.dumps(data))
        p = make_plan(
            tb, extra_flags="", syscall=SyscallChoice.AUTO, delay=None, root=root, facts=facts
        )
        return p.delay

    assert delay() == 6
    data["delay"] = 9  # built with nixos-images.kexec.delay = 9
    assert delay() == 9
    del data["delay"]  # a tarball from before the field existed
    assert delay() == 6
    data["delay"] = -1
    with pytest.raises(InputError, match="'delay' must not be negative"):
        delay()


def test_a_refused_load_shows_what_the_kernel_logged(
    setup: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The kernel's own log (/dev/kmsg, read without dmesg) explains most refusals."""
    require([] if os.access("/dev/kmsg", os.W_OK) else ["a writable /dev/kmsg"], "the kmsg test")
    tb, root, _ = setup
    mark = f"nixos-images test {os.getpid()} {time.time_ns()}: image rejected"
    earlier = f"{mark} (before the launcher ran)"
    Path("/dev/kmsg").write_text(earlier + "\n")
    monkeypatch.setenv("FAIL", "file load")
    monkeypatch.setenv("KMSG_MARK", mark)
    with pytest.raises(HelperError, match="kexec could not load the installer"):
        launcher.launch(plan(tb, root))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "kernel log:"
    # Both attempts logged it; what the kernel logged before the launcher ran is left out.
    assert err.count(f"  {mark}") == 2
    assert f"  {earlier}" not in err


def test_under_lockdown_only_file_load_is_tried_and_the_error_says_why(
    setup: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    monkeypatch.setenv("FAIL", "file")
    locked = dataclasses.replace(GOOD, lockdown="integrity")
    with pytest.raises(HelperError) as e:
        launcher.launch(plan(tb, root, locked))
    assert str(e.value).startswith("kexec could not load the installer (kexec_file_load: ")
    assert str(e.value).endswith("disable Secure Boot in the firmware, then run this again")
    loads = [c for c in log.read_text().splitlines() if c.startswith("--load")]
    assert [c.split()[-1] for c in loads] == ["--kexec-file-syscall"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_while_loading_leaves_the_host_as_it_was(
    setup: tuple[Path, Path, Path], tmp_path: Path, sig: signal.Signals
) -> None:
    """Killed (or the ssh connection dropped) before the boot is scheduled: no state copy
    with the host keys stays behind, and whatever got loaded is unloaded."""
    tb, root, log = setup
    saved = tmp_path / "plan.pickle"
    saved.write_bytes(pickle.dumps(plan(tb, root)))
    driver = (
        "import pickle, sys; from nixos_images import cli; from nixos_images.kexec import launcher;"
        " p = pickle.loads(open(sys.argv[1], 'rb').read());"
        " cli.run(lambda: print(launcher.launch(p)), 'kexec/run')"
    )
    env = {**os.environ, "SLOW": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-c", driver, str(saved)], env=env, stderr=subprocess.PIPE, text=True
    )
    wait_for(log)  # kexec --load has started, with the state copy written
    assert list(tb.glob(".state-*"))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    if sig != signal.SIGINT:
        assert (
            err == f"kexec/run: stopped by {sig.name}: the host is as it was, nothing will boot\n"
        )
    assert not list(tb.glob(".state-*"))
    calls = log.read_text().splitlines()
    assert "--kexec-file-syscall --unload" in calls
    assert not [c for c in calls if "--exec" in c]


def test_a_second_launcher_refuses_while_the_first_holds_the_lock(
    setup: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tb, root, log = setup
    monkeypatch.setattr(launcher, "LOCK_DIRS", (tmp_path,))
    with (tmp_path / launcher.LOCK_NAME).open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(HelperError, match="another kexec/run is loading the installer"):
            launcher.launch(plan(tb, root))
    assert not log.exists()
    assert not list(tb.glob(".state-*"))
    launcher.launch(plan(tb, root))  # and once the first is done, it goes ahead


def _new_key(comment: str) -> str:
    """An ed25519 public key line nobody on the fake host has."""
    kind = b"ssh-ed25519"
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + secrets.token_bytes(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def dry_run(root: Path, tb: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """kexec/run --dry-run --json on the fake host; its exit code (the report on stdout)."""
    on_fake_host(monkeypatch, root)
    return run_cli(
        launcher.main, ["kexec/run", "--tarball-dir", str(tb), "--dry-run", "--json", *args]
    )


def test_a_key_given_with_ssh_key_is_carried_and_named_apart(
    setup: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """For a host whose own keys are not the ones to use (headless credentials, issue 21):
    the key given on the command line, as a line, a file (whatever its name), or
    nixos-anywhere's token; kept exactly as given (no cloud-init stripping for the operator's
    own line)."""
    tb, root, log = setup
    laptop, desk, token = _new_key("laptop"), _new_key("desk"), _new_key("token")
    keyfile = tmp_path / "ssh-ed25519 my keys.pub"
    keyfile.write_text(f"# mine\n{desk}\n")
    flags = f"--nixos-images-ssh-key={shlex.quote(token)}"
    args = ["--ssh-key", laptop, "--ssh-key", str(keyfile), "--kexec-extra-flags", flags]
    dry_run(root, tb, monkeypatch, *args)
    carry = json.loads(capsys.readouterr().out)["carry_over"]
    assert {laptop, desk, token} <= set(carry["authorized_keys"])
    assert carry["key_sources"][-1] == "--ssh-key"
    assert not log.exists()


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("ssh-ed25519 AAAA!", "the key given (ssh-ed25519 AAAA!), line 1: the key is not"),
        ("", "an empty value"),
        ("ssh-ed25519 caf\udcff", "'ssh-ed25519 caf\\udcff': not UTF-8"),
        ("/nonexistent/key.pub", "/nonexistent/key.pub: "),
        ("ssh-dss AAAAB3NzaC1kc3MAAAAA c", "a DSA key"),
    ],
)
def test_a_bad_key_given_is_one_line_before_anything_changes(
    setup: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    given: str,
    says: str,
) -> None:
    tb, root, log = setup
    code = dry_run(root, tb, monkeypatch, "--ssh-key", given)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("kexec/run: --ssh-key: ")
    assert says in err
    assert err.count("\n") == 1
    assert not log.exists()
