"""The one way the helpers run other programs: argv logged, no shell, `check` always explicit."""

from __future__ import annotations

import logging
import shlex
import subprocess
from typing import TYPE_CHECKING

from nixos_images.errors import HelperError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)


def run(
    argv: Sequence[str],
    *,
    check: bool,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv; with check=True a failure is a HelperError naming the command and its stderr."""
    log.debug("$ %s", shlex.join(argv))
    try:
        result = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=capture,
            env=env,
            check=False,
        )
    except FileNotFoundError as e:
        raise HelperError(f"{argv[0]}: command not found") from e
    if check and result.returncode != 0:
        detail = (result.stderr or b"").decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit code {result.returncode}"
        raise HelperError(f"{shlex.join(argv)} failed: {reason}")
    return result
