"""The state archive appended to the installer's initrd (nixos_images.kexec.cpio), read back
with GNU cpio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakehost import extract
from nixos_images.kexec import (
    cpio,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_archive_reads_back_with_gnu_cpio(tmp_path: Path) -> None:
    archive = cpio.archive(
        [
            cpio.Member.file("a/secret", b"key\n", 0o600),
            cpio.Member.file("a/b/c.pub", b"odd length!", 0o644),
            cpio.Member.file("empty", b"", 0o444),
        ]
    )
    extract(archive, tmp_path / "x")
    assert (tmp_path / "x/a/secret").read_bytes() == b"key\n"
    assert (tmp_path / "x/a/secret").stat().st_mode & 0o7777 == 0o600
    assert (tmp_path / "x/a/b/c.pub").read_bytes() == b"odd length!"
    assert (tmp_path / "x/empty").stat().st_mode & 0o7777 == 0o444
    assert (tmp_path / "x/a/b").is_dir()
    assert len(archive) % 4 == 0


@pytest.mark.parametrize("path", ["/etc/x", "../x", "a/../../x", "."])
def test_archive_refuses_paths_outside_itself(path: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        cpio.archive([cpio.Member.file(path, b"", 0o644)])


@given(st.binary(max_size=64), st.binary(min_size=1, max_size=16))
def test_appended_archive_starts_on_a_4_byte_boundary_after_zeros(
    initrd: bytes, extra: bytes
) -> None:
    import io  # noqa: PLC0415 - only this property needs it

    out = io.BytesIO()
    written = cpio.append(out, io.BytesIO(initrd), extra)
    data = out.getvalue()
    assert written == len(data)
    assert data.startswith(initrd)
    assert data.endswith(extra)
    start = len(data) - len(extra)
    assert start % 4 == 0
    assert set(data[len(initrd) : start]) <= {0}
    assert start - len(initrd) < 4
