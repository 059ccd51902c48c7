"""The one way the helpers run other programs: argv logged, no shell, `check` always explicit."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from pathlib import Path
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


def detach(argv: Sequence[str], output: Path) -> None:
    """Start argv in a new session, in /, with no terminal, writing to output; do not wait.

    It outlives this process and the ssh session that started it (no SIGHUP reaches a new
    session), and holds none of that session's file descriptors open.
    """
    log.debug("$ %s &", shlex.join(argv))
    try:
        out = output.open("wb", buffering=0)
    except OSError:
        out = Path(os.devnull).open("wb", buffering=0)  # noqa: SIM115 - closed below
    with out:
        try:
            subprocess.Popen(
                list(argv),
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError as e:
            raise HelperError(f"{argv[0]}: command not found") from e
