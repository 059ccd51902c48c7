"""The state directory's network files read into one value (nixos_images.state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from nixos_images.errors import InputError
from nixos_images.restore_network import generate
from recorded import dhcp_state

if TYPE_CHECKING:
    from pathlib import Path


def test_a_damaged_dhcp_record_is_one_clean_error(tmp_path: Path) -> None:
    state = dhcp_state(tmp_path, [{"interface": "eth-dhcp", "source": "pump", "client_id": None}])
    with pytest.raises(InputError, match=r"dhcp.json: item 0: not a DHCP client record"):
        generate(state)
