"""The login banner as a terminal shows it: the exact bytes installer-banner writes, fed into an
emulated terminal of each real screen size, and the QR code decoded off the emulated screen
(tests/screen.py): zbar and zxing-cpp, dark and light terminal themes, nothing inverted."""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import sys
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import screen
from conftest import require, run_cli
from nixos_images import banner_screen, installer_banner
from nixos_images.banner_screen import Interface, Snapshot

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

ONION = "p53lf57qovyuvwsc6xnrppyply3vtqm7l6pcobkmyqsiofyeznfu5uqd.onion"
PASSWORD = "correct-horse-battery-staple"
# Real screens: a serial console, VGA text mode, 1024x768 with an 11x22 and an 8x16 font,
# 1920x1080 with 8x16.
SIZES = [(80, 24), (80, 25), (93, 34), (128, 48), (240, 67)]
NICS = [
    ("ens3", "203.0.113.10/24", "2001:db8:2::10/64", "fe80::ff:fe00:202/64"),
    ("ens4", "198.51.100.20/24", "2001:db8:3:4:5:6:7:20/64", "fe80::5054:ff:fe12:3456/64"),
    ("enp1s0f1", "192.0.2.30/26", "2001:db8:ffff:1::30/64", "fe80::21b:21ff:fe3c:4d5e/64"),
]
KEYS = ("ed25519", "ecdsa", "rsa")
GATHER = installer_banner.gather  # the real one, with the tests' `ip`
# What getty prints on a serial console before the autologin shell shows the banner.
GETTY = (
    b"\n\n<<< Welcome to NixOS 26.05.20260819.abcdef0 (x86_64) - ttyS0 >>>\n\n"
    b"Run 'nixos-help' for the NixOS manual.\n\nnixos-installer login: root (automatic login)\n\n"
)


def host(tmp_path: Path, nics: int, keys: int) -> list[str]:
    """Files and a fake `ip` for a host with that many NICs and host keys; the CLI's options."""
    rng = random.Random(nics * 10 + keys)  # noqa: S311 - test data, not secrets
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    (tmp_path / "onion").write_text(ONION + "\n")
    ssh = tmp_path / "ssh"
    ssh.mkdir()
    for kind in KEYS[:keys]:
        blob = bytes(rng.randrange(256) for _ in range(51))
        (ssh / f"ssh_host_{kind}_key.pub").write_text(
            f"ssh-{kind} {base64.b64encode(blob).decode()} root@old\n"
        )
    dump = [
        {
            "ifname": name,
            "addr_info": [
                {"family": "inet6" if ":" in a else "inet", "local": a.split("/")[0],
                 "prefixlen": int(a.split("/")[1]),
                 "scope": "link" if a.startswith("fe80") else "global"}
                for a in addresses
            ],
        }
        for name, *addresses in NICS[:nics]
    ]  # fmt: skip
    ip = tmp_path / "ip"
    ip.write_text(f"import json\nprint(json.dumps({dump!r}))\n")
    return ["--password-file", str(tmp_path / "pw"), "--onion-file", str(tmp_path / "onion"),
            "--ssh-dir", str(ssh)]  # fmt: skip


def written(
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    enter: Sequence[bool] = (True,),
) -> bytes:
    """The bytes installer-banner writes with argv; with --watch, enter says, poll by poll,
    whether Enter was pressed (by default at the first: the first frame alone)."""
    answers = iter(enter)
    monkeypatch.setattr(installer_banner, "_enter_pressed", lambda _: next(answers))
    fake_ip = (sys.executable, str(tmp_path / "ip"))
    monkeypatch.setattr(installer_banner, "gather", lambda **kw: GATHER(ip=fake_ip, **kw))
    capsysbinary.readouterr()
    assert run_cli(installer_banner.main, ["installer-banner", *argv]) == 0
    return capsysbinary.readouterr().out


def tokens(nics: int, keys: int, *, password: bool = True) -> dict[str, list[str]]:
    """Item -> the tokens the screen must show whole (unless the item is left out)."""
    out = {"root password": [PASSWORD] if password else [], "onion address": [ONION]}
    for name, glob4, glob6, local in NICS[:nics]:
        out[f"{name} addresses"] = [glob4, glob6]
        out[f"{name} link-local"] = [local]
    out["host keys"] = [f"ssh {k.upper() if k != 'ecdsa' else 'ECDSA'}:" for k in KEYS[:keys]]
    return out


def check_screen(term: screen.Terminal, expected_payload: str, nics: int, keys: int, *,
                 password: bool = True) -> None:  # fmt: skip
    lines = term.lines()
    assert term.scrolled == 0, "\n".join(lines)
    decoded = screen.decoded(term)
    assert decoded == {k: [expected_payload] for k in decoded}, "\n".join(lines)
    shown = "\n".join(lines)
    note = [line for line in lines if "not shown:" in line or "more: installer-banner" in line]
    for what, words in tokens(nics, keys, password=password).items():
        for word in words:
            if word in shown:
                assert any(word in line for line in lines)  # whole, on one row
            else:
                assert note, f"{word} ({what}) is missing and no line says so:\n{shown}"
    # The password and the global addresses are always there (they come right after the code).
    for word in ([PASSWORD] if password else []) + [n[1] for n in NICS[:nics]]:
        assert word in shown, shown


@pytest.mark.real
@pytest.mark.parametrize(
    ("width", "height", "nics", "keys"),
    [(w, h, n, k) for w, h in SIZES for n in (1, 2, 3) for k in (2, 3)],
)
def test_tty1_every_screen_decodes_and_nothing_scrolls(
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
    height: int,
    nics: int,
    keys: int,
) -> None:
    """tty1: `installer-banner --watch` on a screen of that size (the console's own size)."""
    require(screen.missing(), "decoding the emulated screen")
    options = host(tmp_path, nics, keys)
    size = ["--for-screen", f"{width}x{height}"]
    out = written(tmp_path, capsysbinary, monkeypatch, ["--watch", *size, *options])
    payload = written(tmp_path, capsysbinary, monkeypatch, ["--json", *size, *options])
    term = screen.terminal(width, height, out)
    check_screen(term, payload.decode().strip(), nics, keys)


# A serial console's size: unknown (None: the terminal says 0x0, taken as 80x24), or set.
SERIAL = [(False, None), *[(False, f"{w}x{h}") for w, h in SIZES[1:]],
          (True, None), (True, "128x48"), (True, "240x67")]  # fmt: skip


@pytest.mark.real
@pytest.mark.parametrize(("nics", "keys"), [(1, 2), (2, 3), (3, 3)])
@pytest.mark.parametrize(
    ("ascii_only", "size"),
    SERIAL,
    ids=[f"{'ascii' if a else 'unicode'}-{s or 'unknown'}" for a, s in SERIAL],
)
def test_serial_console_after_getty_decodes_and_shows_no_password(
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
    nics: int,
    keys: int,
    ascii_only: bool,
    size: str | None,
) -> None:
    """ttyS0: getty's issue text and autologin line, then the autologin shell's banner,
    without the password (as NixOS runs it)."""
    require(screen.missing(), "decoding the emulated screen")
    options = [*host(tmp_path, nics, keys), "--no-password", *(["--ascii"] if ascii_only else [])]
    sized = ["--for-screen", size] if size else []
    out = written(tmp_path, capsysbinary, monkeypatch, ["--watch", *sized, *options])
    width, height = installer_banner.parse_size(size or "80x24")
    payload = written(
        tmp_path,
        capsysbinary,
        monkeypatch,
        ["--json", "--for-screen", f"{width}x{height}", *options],
    )
    term = screen.terminal(width, height, GETTY, out)
    assert PASSWORD.encode() not in out
    if ascii_only and size is None:
        # An ASCII code takes two columns and a row a module: even the smallest (41 modules
        # with its quiet zone) needs 82x41. The screen says so, --json --for-screen says no
        # code, and the text is still there (why Unicode is the serial default).
        assert json.loads(payload) is None
        assert term.scrolled == 0
        assert "(QR code left out: the screen is too small)" in term.lines()
        assert any("203.0.113.10/24" in line for line in term.lines())
        return
    check_screen(term, payload.decode().strip(), nics, keys, password=False)
    assert any(banner_screen.HIDDEN in line for line in term.lines())


@pytest.mark.real
def test_a_redraw_replaces_the_screen_without_scrolling(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """tor comes up after the banner was drawn: the redraw shows its address and still fits."""
    require(screen.missing(), "decoding the emulated screen")
    options = host(tmp_path, 2, 3)
    (tmp_path / "onion").unlink()
    answers = iter([False, True])
    monkeypatch.setattr(installer_banner, "_enter_pressed", lambda _: next(answers))
    fake_ip = (sys.executable, str(tmp_path / "ip"))
    calls = []

    def gather(**kw: object) -> Snapshot:
        calls.append(1)
        if len(calls) == 2:
            (tmp_path / "onion").write_text(ONION + "\n")
        return GATHER(ip=fake_ip, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(installer_banner, "gather", gather)
    argv = ["installer-banner", "--watch", "--for-screen", "128x48", *options]
    assert run_cli(installer_banner.main, argv) == 0
    out = capsysbinary.readouterr().out
    assert out.count(installer_banner.CLEAR.encode()) == 2
    term = screen.terminal(128, 48, out)
    assert term.scrolled == 0
    assert any(ONION in line for line in term.lines())
    (found,) = screen.payloads(term)
    assert json.loads(found)["tor"] == ONION


def test_json_is_the_full_payload_and_for_screen_what_that_code_encodes(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    options = host(tmp_path, 1, 2)
    full = json.loads(written(tmp_path, capsysbinary, monkeypatch, ["--json", *options]))
    small = json.loads(
        written(tmp_path, capsysbinary, monkeypatch, ["--json", "--for-screen", "80x25", *options])
    )
    assert full["addrs"] == ["203.0.113.10", "2001:db8:2::10", "fe80::ff:fe00:202"]
    assert small["addrs"] == ["203.0.113.10", "2001:db8:2::10"]  # link-local first to go
    assert small["pass"] == full["pass"] == PASSWORD


def test_what_is_left_out_is_named_with_the_command_that_shows_it() -> None:
    snap = Snapshot(
        "nixos-installer", PASSWORD, ONION,
        (Interface(*NICS[0][:1], NICS[0][1:3], NICS[0][3:]),),
        (("ED25519", "SHA256:" + "A" * 43), ("RSA", "SHA256:" + "B" * 43)),
    )  # fmt: skip
    shown = banner_screen.layout(snap, 80, 25)
    assert shown.left_out == ("onion address", "ED25519 host key", "RSA host key")
    # In the 29 columns beside the code: three lines, each part whole.
    note = [r.split("\x1b[0m")[-1].strip() for r in shown.rows if "\x1b[0m  " in r][-3:]
    assert note == ["not shown:", "onion address, host keys;", "see installer-banner --text"]
    everything = banner_screen.full_text(snap, 80)
    assert ONION in everything
    assert "SHA256:" + "B" * 43 in everything
    # Where the password is left out (a logged serial console), the command named keeps it out.
    hidden = dataclasses.replace(snap, password=None, password_hidden=True)
    rows = [r.split("\x1b[0m")[-1].strip() for r in banner_screen.layout(hidden, 80, 25).rows]
    assert "installer-banner --text --no-password" in " ".join(rows)
    assert PASSWORD not in banner_screen.full_text(hidden, 80)
    # Where Tor is off, the command named does not wait for an onion address forever.
    assert banner_screen.more_command(dataclasses.replace(hidden, tor=False)) == (
        "installer-banner --text --no-password --no-tor"
    )
    assert banner_screen.more_command(snap) == "installer-banner --text"


def test_no_onion_address_where_tor_does_not_run() -> None:
    snap = Snapshot("nixos-installer", PASSWORD, None, (), (), tor=False)
    assert "tor:" not in banner_screen.full_text(snap, 80)
    assert "tor:" in banner_screen.full_text(dataclasses.replace(snap, tor=True), 80)


def test_a_token_wider_than_the_screen_is_wrapped_at_a_visible_mark() -> None:
    snap = Snapshot("h", PASSWORD, ONION, (), ())
    rows = banner_screen.layout(snap, 40, 12).rows  # no code fits: text only
    assert "QR code left out" in rows[-1]
    assert all(len(r) <= 40 for r in rows)
    wrapped = [r for r in rows if r.endswith("\\")]
    assert wrapped
    joined = "".join(r[:-1] if r.endswith("\\") else r + "\n" for r in rows)
    assert ONION in joined


@pytest.mark.real
def test_run_by_hand_it_leaves_room_for_the_prompt(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --watch the shell's prompt follows (NixOS's starts with an empty line)."""
    require(screen.missing(), "decoding the emulated screen")
    options = host(tmp_path, 1, 3)
    out = written(tmp_path, capsysbinary, monkeypatch, ["--for-screen", "80x25", *options])
    assert out.endswith(b"\n")
    prompt = b"\n\x1b[1;31m[root@nixos-installer:~]#\x1b[0m "
    term = screen.terminal(80, 25, out, prompt)
    assert term.scrolled == 0
    assert len(screen.payloads(term)) == 1


def test_kernel_messages_over_the_banner_are_drawn_over_again(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel writes to the same consoles: with nothing changed, the banner is still drawn
    again after REFRESH seconds, so a scrolled code comes back."""
    options = host(tmp_path, 1, 2)
    argv = ["--watch", "--for-screen", "80x25", *options]
    clear = installer_banner.CLEAR.encode()
    polls = (False, False, True)  # two polls, nothing changes, then Enter
    monkeypatch.setattr(installer_banner, "REFRESH", 0.0)
    assert written(tmp_path, capsysbinary, monkeypatch, argv, polls).count(clear) == 3
    monkeypatch.setattr(installer_banner, "REFRESH", 3600.0)
    assert written(tmp_path, capsysbinary, monkeypatch, argv, polls).count(clear) == 1


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:./-", min_size=1, max_size=70)


@settings(max_examples=100, deadline=None)
@given(
    width=st.integers(10, 250),
    height=st.integers(3, 80),
    password=st.one_of(st.none(), _WORD),
    onion=st.one_of(st.none(), _WORD),
    interfaces=st.lists(
        st.tuples(
            _WORD.map(lambda w: w[:15]), st.lists(_WORD, max_size=3), st.lists(_WORD, max_size=2)
        ),
        max_size=4,
    ),
    keys=st.lists(st.tuples(st.sampled_from(["ED25519", "ECDSA", "RSA"]), _WORD), max_size=3),
    ascii_only=st.booleans(),
)
def test_any_screen_any_text_fits(
    width: int,
    height: int,
    password: str | None,
    onion: str | None,
    interfaces: list[tuple[str, list[str], list[str]]],
    keys: list[tuple[str, str]],
    ascii_only: bool,
) -> None:
    """Fit, always: never more rows or wider rows than the screen, whatever there is to show."""
    snap = Snapshot(
        "nixos-installer", password, onion,
        tuple(Interface(n, tuple(g), tuple(ll)) for n, g, ll in interfaces), tuple(keys),
    )  # fmt: skip
    shown = banner_screen.layout(snap, width, height, ascii_only=ascii_only)
    visible = [r.replace(banner_screen.QR_COLOURS, "").replace(banner_screen.RESET, "")
               for r in shown.rows]  # fmt: skip
    assert len(visible) <= height
    assert all(len(r) <= width for r in visible), visible
