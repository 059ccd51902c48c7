"""The one subprocess wrapper (nixos_images.process): one line for a failure, a time limit per
kind of call, none for kexec --load."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from nixos_images import process
from nixos_images.errors import HelperError

if TYPE_CHECKING:
    from pathlib import Path


def test_every_kind_of_call_has_a_limit_but_the_load() -> None:
    assert set(process.TIMEOUTS) == set(process.Call)
    unlimited = [call for call, limit in process.TIMEOUTS.items() if limit is None]
    assert unlimited == [process.Call.KEXEC_LOAD]


def test_a_call_that_outlasts_its_limit_is_killed_and_said_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(process.TIMEOUTS, process.Call.SSHD_TEST, 0.5)
    started = time.monotonic()
    with pytest.raises(HelperError, match=r"^sshd -T did not finish in 0\.5 s: sleep 30$"):
        process.run(["sleep", "30"], call=process.Call.SSHD_TEST, check=False)
    assert time.monotonic() - started < 10


def test_a_failure_names_the_command_and_its_last_line_of_stderr() -> None:
    argv = ["sh", "-c", "echo first >&2; echo 'the reason' >&2; exit 3"]
    with pytest.raises(HelperError, match=r"failed: the reason$"):
        process.run(argv, call=process.Call.IP, check=True)
    assert process.run(argv, call=process.Call.IP, check=False).returncode == 3


def test_a_missing_program_is_one_line() -> None:
    with pytest.raises(HelperError, match=r"^no-such-program-here: command not found$"):
        process.run(["no-such-program-here"], call=process.Call.IP, check=False)


def test_output_is_counted_not_held_whatever_stderr_says(tmp_path: Path) -> None:
    """A child that fills stderr (more than a pipe holds) does not hang the count; stdin
    is read from the file's position."""
    data = tmp_path / "data"
    data.write_bytes(b"skip" + b"x" * 300_000)
    argv = ["sh", "-c", "head -c 200000 /dev/zero >&2; cat"]
    with data.open("rb") as f:
        f.read(2)  # Python's buffer now holds the file: its position is not the descriptor's
        f.seek(4)
        assert process.output_size(argv, call=process.Call.DECOMPRESS, stdin=f) == 300_000
    with pytest.raises(HelperError, match=r"failed: the reason$"):
        process.output_size(["sh", "-c", "echo 'the reason' >&2; exit 1"], call=process.Call.IP)


def test_a_stalled_count_is_killed_at_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(process.TIMEOUTS, process.Call.DECOMPRESS, 0.5)
    started = time.monotonic()
    with pytest.raises(HelperError, match=r"^zstd -dc did not finish in 0\.5 s"):
        process.output_size(["sh", "-c", "echo x; sleep 30"], call=process.Call.DECOMPRESS)
    assert time.monotonic() - started < 10
