"""Network namespaces, veth cables, and systemd-networkd / dnsmasq running inside them.

Used by the real-boundary tests and by tests/fixtures/record.py. Needs root, iproute2,
Debian's systemd-networkd (252 or newer) and dnsmasq. Everything is torn down on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

NETWORKD = Path("/lib/systemd/systemd-networkd")
WAIT_ONLINE = Path("/lib/systemd/systemd-networkd-wait-online")


def sh(*argv: str, input_: str | None = None, cwd: Path | None = None) -> str:
    """Run a command, fail loudly with its stderr."""
    result = subprocess.run(
        argv, capture_output=True, text=True, input=input_, cwd=cwd, check=False
    )
    if result.returncode != 0:
        msg = f"{shlex.join(argv)} failed ({result.returncode}): {result.stderr.strip()}"
        raise RuntimeError(msg)
    return result.stdout


def missing_tools() -> list[str]:
    """What the real-boundary network tests need but this machine lacks."""
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [t for t in ("ip", "unshare", "nsenter", "dnsmasq") if shutil.which(t) is None]
    missing += [str(p) for p in (NETWORKD, WAIT_ONLINE) if not p.exists()]
    return missing


class Netns:
    """A network namespace with IPv6 duplicate address detection off (it costs ~2 s a link)."""

    def __init__(self, label: str) -> None:
        self.name = f"nit-{label}-{uuid.uuid4().hex[:6]}"
        sh("ip", "netns", "add", self.name)
        for scope in ("all", "default"):
            self.sysctl(f"net.ipv6.conf.{scope}.accept_dad", "0")
        self.ip("link", "set", "lo", "up")

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    def run(self, *argv: str) -> str:
        return sh("ip", "netns", "exec", self.name, *argv)

    def ip(self, *args: str) -> str:
        return sh("ip", "-n", self.name, *args)

    @property
    def ip_prefix(self) -> tuple[str, ...]:
        """Command prefix that runs `ip` inside this namespace."""
        return ("ip", "-n", self.name)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)


def cable(a: Netns, a_name: str, b: Netns, b_name: str, a_mac: str | None = None) -> None:
    """A veth pair from a:a_name to b:b_name, both ends up."""
    tmp_a, tmp_b = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
    sh("ip", "link", "set", tmp_a, "netns", a.name, "name", a_name)
    sh("ip", "link", "set", tmp_b, "netns", b.name, "name", b_name)
    if a_mac:
        a.ip("link", "set", a_name, "address", a_mac)
    a.ip("link", "set", a_name, "up")
    b.ip("link", "set", b_name, "up")


@contextlib.contextmanager
def namespaces(*labels: str) -> Iterator[list[Netns]]:
    made: list[Netns] = []
    try:
        made.extend(Netns(label) for label in labels)
        yield made
    finally:
        for ns in made:
            ns.delete()


# Runs inside `ip netns exec NS unshare -m`: a private view of /sys, /run/systemd and the
# unit directories, so that networkd sees only our units and does not wait for udev.
_NETWORKD_SCRIPT = """
set -e
mount --make-rprivate /
umount -l /sys
mount -t sysfs -o ro sysfs /sys
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/network /run/systemd/netif /run/systemd/networkd.conf.d
chown systemd-network:systemd-network /run/systemd/netif
cp "$1"/* /run/systemd/network/ 2>/dev/null || true
if [ -n "$2" ]; then cp "$2" /run/systemd/networkd.conf.d/; fi
for d in /etc/systemd/network /lib/systemd/network /usr/lib/systemd/network; do
  [ -d "$d" ] && mount -t tmpfs tmpfs "$d"
done
exec {networkd}
"""


class Networkd:
    """systemd-networkd running standalone in a namespace, with the given units."""

    def __init__(
        self,
        ns: Netns,
        units: Path,
        log: Path,
        conf: Path | None = None,
    ) -> None:
        self.ns = ns
        self.log_path = log
        env = {**os.environ, "SYSTEMD_LOG_LEVEL": "debug", "SYSTEMD_LOG_TARGET": "console"}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    "ip", "netns", "exec", ns.name,
                    "unshare", "-m", "sh", "-c",
                    _NETWORKD_SCRIPT.format(networkd=NETWORKD),
                    "networkd", str(units), str(conf or ""),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )  # fmt: skip

    def _networkd_pid(self) -> int:
        # `sh` execs networkd, so the child of unshare... is networkd itself after exec.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in [str(self.proc.pid), *out]:
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/exe").resolve() == NETWORKD.resolve():
                        return int(pid)
            time.sleep(0.02)
        msg = f"systemd-networkd did not start; log:\n{self.log()}"
        raise RuntimeError(msg)

    def wait_online(self, *interfaces: str, timeout: float = 20) -> bool:
        """True when the named links (all managed links if none) are configured."""
        pid = self._networkd_pid()
        args = [f"--interface={i}" for i in interfaces]
        result = subprocess.run(
            [
                "nsenter", "-t", str(pid), "-m", "-n",
                str(WAIT_ONLINE), f"--timeout={int(timeout)}", *args,
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        return result.returncode == 0

    def link_file(self, interface: str) -> str:
        """networkd's state file for a link (ADMIN_STATE=, DNS=, ...)."""
        pid = self._networkd_pid()
        (link,) = json.loads(self.ns.ip("-j", "link", "show", interface))
        return sh(
            "nsenter", "-t", str(pid), "-m", "cat", f"/run/systemd/netif/links/{link['ifindex']}"
        )

    def leases(self) -> dict[str, str]:
        """networkd's DHCP lease files: ifindex -> content."""
        pid = str(self._networkd_pid())
        leases = "/run/systemd/netif/leases"
        names = sh("nsenter", "-t", pid, "-m", "ls", leases).split()
        return {n: sh("nsenter", "-t", pid, "-m", "cat", f"{leases}/{n}") for n in names}

    def link_state(self, interface: str) -> str:
        """networkd's ADMIN_STATE for a link: configuring, configured, failed, ..."""
        for line in self.link_file(interface).splitlines():
            if line.startswith("ADMIN_STATE="):
                return line.split("=", 1)[1]
        return "unknown"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError, ProcessLookupError):
                os.kill(self._networkd_pid(), signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def networkd(ns: Netns, units: Path, log: Path, conf: Path | None = None) -> Iterator[Networkd]:
    nd = Networkd(ns, units, log, conf)
    try:
        yield nd
    finally:
        nd.stop()


@contextlib.contextmanager
def background(argv: Sequence[str], log_path: Path) -> Iterator[None]:
    """A process running while the block runs, its output in log_path; stopped after."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=5)


@contextlib.contextmanager
def dnsmasq(
    ns: Netns, interface: str, v4_range: Sequence[str], v6_prefix: str, workdir: Path
) -> Iterator[None]:
    """DHCPv4 and router advertisements (SLAAC, no DHCPv6) on one interface of ns."""
    lease = workdir / f"dnsmasq-{ns.name}.leases"
    argv = [
        "ip", "netns", "exec", ns.name, "dnsmasq", "--keep-in-foreground",
        "--conf-file=/dev/null", "--port=0", f"--interface={interface}",
        "--bind-interfaces", f"--dhcp-range={','.join(v4_range)}",
        "--enable-ra", f"--dhcp-range={v6_prefix},ra-only,64,1h", "--ra-param=*,10,1800",
        f"--dhcp-leasefile={lease}", "--user=root", "--group=root", "--log-facility=-",
        "--log-dhcp",
    ]  # fmt: skip
    with background(argv, workdir / f"dnsmasq-{ns.name}.log"):
        yield
