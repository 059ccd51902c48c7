"""Debian's real sshd, unpacked (never installed), run in the foreground on loopback: the judge of
which authorized_keys lines let whom in, with what restrictions (tests/test_sshd.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import qemu

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

# openssh-server and the one library this machine lacks for it.
PACKAGES = ("openssh-server", "libwrap0")


def missing() -> list[str]:
    """What running Debian's sshd here needs but this machine lacks."""
    lacking = [] if os.geteuid() == 0 else ["root"]
    tools = ("ssh", "ssh-keygen", "apt-get", "dpkg", "unshare", "mount")
    return lacking + [t for t in tools if shutil.which(t) is None]


def initramfs_files() -> dict[str, Path]:
    """Debian's sshd for a guest's initramfs: the binary at /usr/sbin/sshd and the loader and
    libraries ldd names, at their own paths (sshd re-executes itself by its path, so it cannot
    run through the loader with a library path)."""
    roots = [qemu.unpacked(p) for p in PACKAGES]
    binary = roots[0] / "usr/sbin/sshd"
    env = {"LD_LIBRARY_PATH": str(roots[1] / "usr/lib/x86_64-linux-gnu")}
    out = subprocess.run(["ldd", str(binary)], env=env, capture_output=True, text=True, check=True)
    files = {"/usr/sbin/sshd": binary}
    for line in out.stdout.splitlines():
        words = line.split()
        if "=>" in words:
            files[f"/lib/x86_64-linux-gnu/{words[0]}"] = Path(words[2])
        elif words and words[0].startswith("/"):
            files[words[0]] = Path(words[0])  # the loader
    return files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# Users the tests log in as, beside root: uid, and a home of their own under the test's tmp.
USERS = {"admin": 65530}


def command(tmp: Path) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run Debian's sshd here, with a host key in tmp.

    sshd wants its privilege separation user, which Debian's package would add, and the test
    users: this machine's passwd plus those, bind-mounted over /etc/passwd for sshd alone.
    """
    roots = [qemu.unpacked(p) for p in PACKAGES]
    libs = ":".join(str(r / "usr/lib/x86_64-linux-gnu") for r in roots)
    tmp.mkdir(parents=True, exist_ok=True)
    host_key = tmp / "host_key"
    if not host_key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
        )
    passwd = tmp / "passwd"
    lines = [Path("/etc/passwd").read_text(), "sshd:x:65533:65534::/run/sshd:/bin/false\n"]
    for user, uid in USERS.items():
        home = tmp / f"home-{user}"
        home.mkdir(exist_ok=True)
        os.chown(home, uid, uid)
        lines.append(f"{user}:x:{uid}:{uid}::{home}:/bin/sh\n")
    passwd.write_text("".join(lines))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    argv = ["unshare", "--mount", "--", "sh", "-c", 'mount --bind "$0" /etc/passwd && exec "$@"']
    argv += [str(passwd), str(roots[0] / "usr/sbin/sshd"), "-h", str(host_key)]
    return argv, {"LD_LIBRARY_PATH": libs, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


@contextlib.contextmanager
def running(
    tmp: Path,
    authorized_keys: Mapping[str, bytes],
    extra: Mapping[str, str | None] | None = None,
    config: str = "",
) -> Iterator[int]:
    """sshd on 127.0.0.1, each user's keys files (root or USERS; USER.2 the second) as given,
    with extra sshd_config options (None: leave the default out) and a config file's text
    (for Match blocks, which -o cannot give); yields its port."""
    argv, env = command(tmp)
    # sshd reads a user's file as that user: a directory every user can reach (pytest's
    # temporary directories are root's alone), removed afterwards.
    keys = Path(tempfile.mkdtemp(prefix="sshd-keys-"))
    keys.chmod(0o755)
    for user, text in authorized_keys.items():
        (keys / user).write_bytes(text)
        (keys / user).chmod(0o644)
    port = _free_port()
    options = {
        "Port": str(port),
        "ListenAddress": "127.0.0.1",
        "PidFile": "none",
        "UsePAM": "no",
        "StrictModes": "no",
        # Two files per user, as OpenSSH's default has (authorized_keys, authorized_keys2):
        # "USER" and "USER.2" in authorized_keys.
        "AuthorizedKeysFile": f"{keys}/%u {keys}/%u.2",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "PermitRootLogin": "prohibit-password",
        "LogLevel": "ERROR",
        **(extra or {}),
    }
    config_file = keys / "sshd_config"
    config_file.write_text(config)
    argv += ["-D", "-e", "-f", str(config_file)]
    for key, value in options.items():
        if value is not None:
            argv += ["-o", f"{key}={value}"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"sshd did not start: {err}")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(keys)


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """command()'s environment for this process, for as long as the block runs: what the
    launcher's own `sshd -T` calls (which inherit it) need to run Debian's sshd here."""
    old = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def login(port: int, private_key: Path, user: str = "root", source: str = "127.0.0.1") -> str:
    """What `ssh user@127.0.0.1 echo in` prints with this key, coming from source (another
    loopback address: -b): "in" for a shell, a forced command's output, or "REFUSED"."""
    result = subprocess.run(
        ["ssh", "-i", str(private_key), "-p", str(port), "-b", source, "-o", "IdentitiesOnly=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-o", "PasswordAuthentication=no", "-o", "LogLevel=ERROR",
         "-o", "ConnectTimeout=5", f"{user}@127.0.0.1", "echo in"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    return "REFUSED" if result.returncode == 255 else result.stdout.strip()
