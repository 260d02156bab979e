"""A private test network: a server namespace and two host namespaces on one bridge.

::

    namespace <p>s  (servers)   bridge br0  10.200.N.1/24
        ├── veth ── namespace <p>a (host A)  eth0 10.200.N.2/24
        ├── veth ── namespace <p>b (host B)  eth0 10.200.N.3/24
        └── veth ── this (root) namespace     <p>h0 10.200.N.254/24

The root-namespace leg lets the test itself create flows and inspect results.
Every name carries a per-run tag, the subnet's third octet is one no route of
this machine uses, and :meth:`Network.close` deletes the namespaces (which
deletes every veth and the bridge with them), also after a failure.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import subprocess

__all__ = ["Network", "missing"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)


def missing() -> str | None:
    """Why namespaces cannot be made here, or None if they can."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed: no network namespaces"
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root)"
    probe = f"p7probe{os.getpid()}"
    done = _ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        return f"ip netns is unavailable here: {done.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> int:
    used = _ip("-4", "route", "show").stdout + _ip("-4", "addr", "show").stdout
    candidates = list(range(200, 250))
    random.shuffle(candidates)
    for octet in candidates:
        if f"10.200.{octet}." not in used:
            return octet
    raise RuntimeError("no free 10.200.x.0/24 subnet for the test network")


class Network:
    """The namespaces and links above; ``exec_prefix(ns)`` runs a command inside one."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10000:04d}{random.randrange(16**2):02x}"
        self.prefix = f"p7{tag}"
        self.server_ns, self.a_ns, self.b_ns = (f"{self.prefix}s", f"{self.prefix}a",
                                                f"{self.prefix}b")
        octet = _free_subnet()
        net = ipaddress.ip_network(f"10.200.{octet}.0/24")
        self.subnet = str(net)
        self.server_ip, self.a_ip, self.b_ip, self.root_ip = (
            str(net[1]), str(net[2]), str(net[3]), str(net[254]))
        self._made: list[str] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        for ns in (self.server_ns, self.a_ns, self.b_ns):
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        s = self.server_ns
        _ip("-n", s, "link", "add", "br0", "type", "bridge")
        _ip("-n", s, "addr", "add", f"{self.server_ip}/24", "dev", "br0")
        _ip("-n", s, "link", "set", "br0", "up")
        for ns, address in ((self.a_ns, self.a_ip), (self.b_ns, self.b_ip)):
            inner, outer = f"{ns}0", f"{ns}1"
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "netns", s)
            _ip("-n", ns, "link", "set", inner, "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", s, "link", "set", outer, "master", "br0")
            _ip("-n", s, "link", "set", outer, "up")
        here, there = f"{self.prefix}h0", f"{self.prefix}h1"
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        self._made.append(here)
        _ip("link", "set", there, "netns", s)
        _ip("addr", "add", f"{self.root_ip}/24", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", s, "link", "set", there, "master", "br0")
        _ip("-n", s, "link", "set", there, "up")

    def exec_prefix(self, ns: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", ns)

    def pids_in(self, ns: str) -> list[int]:
        done = _ip("netns", "pids", ns, check=False)
        return [int(p) for p in done.stdout.split()]

    def close(self) -> None:
        """Kill whatever still runs in the namespaces, then delete them (and every link)."""
        for ns in self._made:
            if not ns.endswith("h0"):
                for pid in self.pids_in(ns):
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
        for name in reversed(self._made):
            if name.endswith("h0"):
                _ip("link", "del", name, check=False)
            else:
                _ip("netns", "del", name, check=False)
        self._made.clear()
