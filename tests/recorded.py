"""The recorded and hand-written network states the network tests plan from (tests/fixtures),
and readers for the units planned from them.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

from conftest import FIXTURES
from nixos_images.state import StateDir

if TYPE_CHECKING:
    from pathlib import Path


SOURCE = StateDir(FIXTURES / "source-host")  # recorded by tests/fixtures/record.py


BOND_VLAN = StateDir(FIXTURES / "bond-vlan")  # written by hand: no bond/vlan modules here


def dhcp_state(tmp_path: Path, clients: list[dict[str, object]]) -> StateDir:
    state = StateDir(tmp_path / "state")
    shutil.copytree(SOURCE.network, state.network)
    (state.network / "dhcp.json").write_text(json.dumps(clients))
    return state
