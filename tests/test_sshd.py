"""The key policy, judged by Debian's real sshd 9.2 (tests/sshd.py).

A table of authorized_keys lines, each with a key of its own, hostile and ordinary. sshd is
run once with them as the old host's root file and once with what the launcher writes for
the installer's root; each key then logs in (`ssh root@127.0.0.1 echo in`). The installer's
root must let in exactly the keys the old host let in, with the same restrictions (a forced
command prints its own output), but for cloud-init's refusal, which the policy removes.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

import sshd
from conftest import require
from nixos_images.kexec import authorized_keys

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.real

CLOUD_INIT = (
    "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as"
    ' the user \\"debian\\" rather than the user \\"root\\".\';echo;sleep 10;exit 142"'
)
# name -> (how the line is written, given "{key}"); the key's comment is the name.
LINES = {
    "plain": "{key}",
    "forced": 'command="echo forced" {key}',
    "forced-upper": 'COMMAND="echo upper",NO-PTY {key}',
    "restrict-forced": 'restrict,command="echo restricted" {key}',
    "from-elsewhere": 'from="192.0.2.0/24" {key}',
    "from-here": 'from="127.0.0.1" {key}',
    "cloud-init": CLOUD_INIT + " {key}",
    "unquoted-command": "command=/bin/true {key}",
    "unknown-option": "no-such-option {key}",
    "vertical-tab": "{key}",  # separators replaced below
    "line-separator": "{key}",
    "carriage-return": "{key}\r",
    "commented": "# {key}",
}
SEPARATORS = {"vertical-tab": "\x0b", "line-separator": "\u2028"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """name -> (private key, authorized_keys line)."""
    require(sshd.missing(), "the sshd key policy test")
    tmp = tmp_path_factory.mktemp("keys")
    out = {}
    for name, template in LINES.items():
        private = tmp / name
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(private)]
        subprocess.run(keygen, check=True)
        public = private.with_suffix(".pub").read_text().strip()
        if name in SEPARATORS:
            public = public.replace(" ", SEPARATORS[name])
        out[name] = (private, template.format(key=public))
    return out


def logins(tmp: Path, text: str, keys: dict[str, tuple[Path, str]]) -> dict[str, str]:
    with sshd.running(tmp, text.encode()) as port:
        return {name: sshd.login(port, private) for name, (private, _) in keys.items()}


def test_the_installers_root_accepts_what_the_old_sshd_accepted(
    tmp_path: Path, keys: dict[str, tuple[Path, str]]
) -> None:
    old_file = "".join(line + "\n" for _, line in keys.values())
    old = logins(tmp_path / "old", old_file, keys)
    carried, skipped, _ = authorized_keys.merge(
        [authorized_keys.Source("/root/.ssh/authorized_keys", "root", old_file)]
    )
    new = logins(tmp_path / "new", authorized_keys.render(carried), keys)

    # What the old sshd decided: the table's expectations hold for real.
    assert old["plain"] == old["from-here"] == old["carriage-return"] == "in"
    assert (old["forced"], old["forced-upper"], old["restrict-forced"]) == (
        "forced",
        "upper",
        "restricted",
    )
    assert old["cloud-init"].startswith('Please login as the user "debian"')
    refused = (
        "from-elsewhere",
        "unquoted-command",
        "unknown-option",
        "vertical-tab",
        "line-separator",
        "commented",
    )
    assert {name: old[name] for name in refused} == dict.fromkeys(refused, "REFUSED")

    # The installer's root: the same, but for cloud-init's refusal.
    assert new == {**old, "cloud-init": "in"}
    assert {s.line_number for s in skipped} == {
        list(keys).index(name) + 1
        for name in ("unquoted-command", "unknown-option", "vertical-tab", "line-separator")
    }
