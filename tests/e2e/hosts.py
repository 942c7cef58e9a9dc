"""Several "hosts" on one machine for the tests: a Linux network namespace each.

Each host gets its own network namespace with one veth link to a bridge in the test's own
namespace, where the shared services (Redis, the S3 server) listen on the bridge's address: a
process in a host namespace reaches those services and nothing else of the machine (not the
other hosts' loopback, not the test's 127.0.0.1). Needs root and iproute2 (`ip netns`), as this
project's machines and CI have; elsewhere `isolated_hosts` falls back to every host on loopback
(`Network.isolated` is then False) so the tests still run, with their own directories per host.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def namespaces_available() -> bool:
    """True when this process may create network namespaces (root with iproute2)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


@dataclass
class Network:
    """The shared services' address and each host's namespace and address."""

    server_ip: str
    isolated: bool
    namespaces: dict[str, str] = field(default_factory=dict)  # host -> namespace name
    addresses: dict[str, str] = field(default_factory=dict)  # host -> its address

    def ip(self, host: str) -> str:
        """The address of `host` (its gateway listens there)."""
        return self.addresses[host]

    def command(self, host: str, command: list[str]) -> list[str]:
        """`command` run inside `host`'s namespace."""
        if not self.isolated:
            return command
        return ["ip", "netns", "exec", self.namespaces[host], *command]


@contextmanager
def isolated_hosts(hosts: list[str]) -> Iterator[Network]:
    """A namespace per host on a private bridge (see the module docstring); removed at the end."""
    if not namespaces_available():
        yield Network("127.0.0.1", False, {}, dict.fromkeys(hosts, "127.0.0.1"))
        return
    tag = secrets.token_hex(3)
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    bridge = f"gsb{tag}"
    network = Network(f"{subnet}.1", True)
    created: list[str] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{network.server_ip}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for number, host in enumerate(hosts, start=10):
            namespace = f"gs{tag}{number}"
            outside, inside = f"gso{tag}{number}", f"gsi{tag}{number}"
            _ip("netns", "add", namespace)
            created.append(namespace)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", outside, "master", bridge)
            _ip("link", "set", outside, "up")
            _ip("link", "set", inside, "netns", namespace)
            address = f"{subnet}.{number}"
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", inside)
            _ip("-n", namespace, "link", "set", inside, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            network.namespaces[host] = namespace
            network.addresses[host] = address
        yield network
    finally:
        for namespace in created:  # its veth end goes with it, and the peer with that
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=20)
