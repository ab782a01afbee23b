"""Separate test hosts on one machine: Linux network namespaces on a private bridge.

Each host is a namespace with its own network stack (loopback, one veth interface,
one address on a bridge in the root namespace); a registry's every process runs
inside its host (``ip netns exec``), so it binds and is reached at that address only,
and its loopback (chaincode servers) is its own. The root namespace keeps the bridge's
first address (``.1``): the auditor's and the test driver's host. Cutting a host's link
(:meth:`Hosts.cut`) is a network partition; :meth:`Hosts.heal` ends it.

Only addresses made here are used (a /24 of 10.0.0.0/8 chosen by the caller); needs root.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass, field


class HostsError(RuntimeError):
    """A namespace, link or address could not be made (not root? name taken?)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ip")
    if exe is None:
        raise HostsError("the `ip` command (iproute2) is not installed")
    out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise HostsError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out


@dataclass
class Hosts:
    """``n`` hosts ``<prefix>-h1..n`` at ``<net>.11..`` on bridge ``<prefix>br``."""

    n: int
    prefix: str = "sr"
    subnet: str = "10.231.7.0/24"
    made: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.subnet)
        if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen != 24 \
                or not net.subnet_of(ipaddress.IPv4Network("10.0.0.0/8")):
            raise HostsError(f"subnet {self.subnet} must be a /24 inside 10.0.0.0/8")
        if not 1 <= self.n <= 9:
            raise HostsError("between 1 and 9 hosts")

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br0"

    def name(self, i: int) -> str:
        return f"{self.prefix}-h{i}"

    def _veth(self, i: int) -> str:
        return f"{self.prefix}-v{i}"

    def address(self, i: int) -> str:
        """Host ``i``'s address (1-based); ``0`` is the root namespace's (the bridge)."""
        base = ipaddress.ip_network(self.subnet).network_address
        return str(base + (1 if i == 0 else 10 + i))

    def exec_prefix(self, i: int) -> list[str]:
        """argv prefix that runs a command inside host ``i``."""
        return ["ip", "netns", "exec", self.name(i)]

    @classmethod
    def free(cls, n: int, prefix: str = "sr", subnet: str = "10.231.7.0/24", tries: int = 8) -> Hosts:
        """The first of ``(prefix, subnet)``, ``(prefix1, subnet + 16)``, ... whose names and
        addresses nobody on this machine uses (not yet up). A set left by a killed run, or
        up for another run, is never touched: it is stepped over."""
        first = ipaddress.ip_network(subnet)
        for k in range(tries):
            net = ipaddress.ip_network((int(first.network_address) + 16 * 256 * k, 24))
            hosts = cls(n, prefix=prefix if k == 0 else f"{prefix}{k}", subnet=str(net))
            if not hosts._taken():
                return hosts
        raise HostsError(f"no free host set among {tries} tried from {prefix}/{subnet}: "
                         f"remove stale ones with `ip netns del` / `ip link del`")

    def _taken(self) -> list[str]:
        """Names of this set that exist already, and addresses of its subnet in use."""
        existing = set(_ip("netns", "list").stdout.split())
        taken = [self.name(i) for i in range(1, self.n + 1) if self.name(i) in existing]
        if _ip("link", "show", self.bridge, check=False).returncode == 0:
            taken.append(self.bridge)
        net = ipaddress.ip_network(self.subnet)
        for line in _ip("-o", "-4", "addr", "show").stdout.splitlines():
            fields = line.split()
            if "inet" in fields:
                iface = ipaddress.ip_interface(fields[fields.index("inet") + 1])
                if iface.network.overlaps(net):
                    taken.append(str(iface))
        return taken

    def up(self) -> Hosts:
        taken = self._taken()
        if taken:
            raise HostsError(f"{', '.join(taken)} already exist(s): another test host set is up "
                             f"(remove it with `ip netns del` / `ip link del {self.bridge}`, "
                             f"or take Hosts.free())")
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self.made.append(f"link:{self.bridge}")
            _ip("addr", "add", f"{self.address(0)}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i in range(1, self.n + 1):
                ns = self.name(i)
                _ip("netns", "add", ns)
                self.made.append(f"netns:{ns}")
                _ip("link", "add", self._veth(i), "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("link", "set", self._veth(i), "master", self.bridge, "up")
                _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except HostsError:
            self.down()
            raise
        return self

    def cut(self, i: int) -> None:
        """Take host ``i``'s link down (its processes keep running, unreachable)."""
        _ip("link", "set", self._veth(i), "down")

    def heal(self, i: int) -> None:
        _ip("link", "set", self._veth(i), "up")

    def down(self) -> None:
        """Remove every namespace and the bridge made here (the veths go with them).
        Processes still inside a namespace keep it alive: stop them first."""
        for item in reversed(self.made):
            kind, name = item.split(":", 1)
            if kind == "netns":
                _ip("netns", "del", name, check=False)
            else:
                _ip("link", "del", name, check=False)
        self.made.clear()

    def __enter__(self) -> Hosts:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
