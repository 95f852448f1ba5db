"""Three test hosts on one machine: a public host, a NAT router and a host behind it, in network namespaces.

``NatLab()`` makes them with ``ip netns`` and veth pairs, and removes them on exit::

    pub  198.18.7.1/24 ---- 198.18.7.2/24  nat  198.19.7.1/24 ---- 198.19.7.2/24  lan (default route via nat)

The router translates UDP from ``lan`` with nftables (source NAT to 198.18.7.2, ports in a range); ``rebind()``
moves the mapping to another port range and flushes the connection-tracking table, so the next packet of every
flow leaves from a new public port: what a home router does when its mapping expires or it restarts. ``pub`` has
no route beyond its own link, so a packet for the private address in an SDP offer never leaves the machine.
The addresses are in the benchmarking range (RFC 2544) and exist only inside these namespaces.

Needs root, iproute2, nftables and conntrack: ``require_netlab()`` skips on a laptop without them and fails
under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import List, Sequence

from helpers import skip_or_fail

PUB_ADDR = "198.18.7.1"
NAT_PUBLIC = "198.18.7.2"
NAT_PRIVATE = "198.19.7.1"
LAN_ADDR = "198.19.7.2"
FIRST_PORTS = (20000, 20099)
REBOUND_PORTS = (30000, 30099)


def require_netlab() -> None:
    """Skip on a laptop that cannot make the namespaces, fail under ``CI=true``."""
    if os.geteuid() != 0:
        skip_or_fail("network namespaces need root")
    for tool in ("ip", "nft", "conntrack"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} is not installed (iproute2, nftables, conntrack)")


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")


class NatLab:
    """The three namespaces; ``in_ns(name, argv)`` is the command line that runs ``argv`` on that host."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.pub, self.nat, self.lan = f"pvpub{tag}", f"pvnat{tag}", f"pvlan{tag}"
        self._nat_out = f"pvn{tag}"  # the router's public-side interface

    def __enter__(self) -> "NatLab":
        try:
            self._build()
        except Exception:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        tag = self._nat_out[3:]
        pub_if, lan_if, nat_in = f"pvp{tag}", f"pvl{tag}", f"pvm{tag}"
        for ns in (self.pub, self.nat, self.lan):
            _run(["ip", "netns", "add", ns])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "link", "add", pub_if, "netns", self.pub, "type", "veth", "peer", "name", self._nat_out,
              "netns", self.nat])
        _run(["ip", "link", "add", lan_if, "netns", self.lan, "type", "veth", "peer", "name", nat_in,
              "netns", self.nat])
        for ns, dev, addr in ((self.pub, pub_if, PUB_ADDR), (self.nat, self._nat_out, NAT_PUBLIC),
                              (self.nat, nat_in, NAT_PRIVATE), (self.lan, lan_if, LAN_ADDR)):
            _run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev])
            _run(["ip", "-n", ns, "link", "set", dev, "up"])
        _run(["ip", "-n", self.lan, "route", "add", "default", "via", NAT_PRIVATE])
        _run(["ip", "netns", "exec", self.nat, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        _run(["ip", "netns", "exec", self.nat, "nft", "add", "table", "ip", "nat"])
        _run(["ip", "netns", "exec", self.nat, "nft",
              "add chain ip nat post { type nat hook postrouting priority 100 ; }"])
        self._map(FIRST_PORTS)

    def _map(self, ports: tuple) -> None:
        """One nftables transaction: no packet ever sees the chain empty between the old rules and the new."""
        script = (f"flush chain ip nat post\n"
                  f"add rule ip nat post oifname {self._nat_out} meta l4proto udp snat to "
                  f"{NAT_PUBLIC}:{ports[0]}-{ports[1]}\n"
                  f"add rule ip nat post oifname {self._nat_out} masquerade\n")
        done = subprocess.run(["ip", "netns", "exec", self.nat, "nft", "-f", "-"], input=script,
                              capture_output=True, text=True, timeout=20)
        if done.returncode != 0:
            raise RuntimeError(f"nft: {done.stderr.strip()}")

    def rebind(self) -> None:
        """Every flow from ``lan`` gets a new public port (in ``REBOUND_PORTS``) from its next packet on."""
        self._map(REBOUND_PORTS)
        done = subprocess.run(["ip", "netns", "exec", self.nat, "conntrack", "-F"], capture_output=True,
                              text=True, timeout=20)
        if done.returncode != 0:
            raise RuntimeError(f"conntrack -F: {done.stderr.strip()}")

    def in_ns(self, ns: str, argv: Sequence[str]) -> List[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def python(self, ns: str, *args: str) -> List[str]:
        """This interpreter on host ``ns`` (the same virtualenv and installed package)."""
        return self.in_ns(ns, [sys.executable, *args])

    def close(self) -> None:
        for ns in (self.pub, self.nat, self.lan):  # deleting a namespace deletes its veth ends
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
