"""The tarball's manifest (nixos_images.kexec.manifest)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import pytest

from fakehost import fake_tarball
from nixos_images.errors import InputError
from nixos_images.kexec import (
    manifest,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_manifest_round_trips_and_rejects_wrong_types(tmp_path: Path) -> None:
    tb = fake_tarball(tmp_path)
    image = manifest.load(tb / manifest.FILE_NAME)
    assert image.tool_argv(tb, "kexec") == [f"{tb}/bin/kexec"]
    dynamic = dataclasses.replace(image, tools={"kexec": manifest.Tool("bin/kexec", dynamic=True)})
    assert dynamic.tool_argv(tb, "kexec") == [
        f"{tb}/lib/ld.so",
        "--library-path",
        f"{tb}/lib",
        f"{tb}/bin/kexec",
    ]
    data = json.loads(image.to_json())
    data["reserve"] = True
    (tb / manifest.FILE_NAME).write_text(json.dumps(data))
    with pytest.raises(InputError, match="'reserve' must be a int"):
        manifest.load(tb / manifest.FILE_NAME)
