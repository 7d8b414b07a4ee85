"""Network helpers for tests: free loopback ports and waiting for conditions."""

from __future__ import annotations

import asyncio
import errno
import random
import socket
from collections.abc import Callable

# Ports handed out come from below Linux's ephemeral range (ip_local_port_range, 32768 to
# 60999 by default): a port picked by binding to 0 comes from that range, and the source
# port of any later outgoing connection on the machine can take it before the test binds
# it ("port in use" flakes under load). Each port is handed out once per process.
_LOW, _HIGH = 20000, 32767
_given: set[int] = set()
_random = random.Random()


def _bindable(port: int) -> bool:
    kinds = [(socket.AF_INET, "127.0.0.1", socket.SOCK_STREAM)]
    kinds.append((socket.AF_INET, "127.0.0.1", socket.SOCK_DGRAM))
    if socket.has_ipv6:
        kinds.append((socket.AF_INET6, "::1", socket.SOCK_STREAM))
    for family, host, kind in kinds:
        try:
            with socket.socket(family, kind) as sock:
                sock.bind((host, port))
        except OSError as exc:
            if family == socket.AF_INET6 and exc.errno == errno.EADDRNOTAVAIL:
                continue  # no IPv6 loopback here
            return False
    return True


def free_port() -> int:
    """A port nothing uses now on the loopback addresses (TCP and UDP), below the
    ephemeral range so no outgoing connection takes it meanwhile, never given twice."""
    for _ in range(1000):
        port = _random.randint(_LOW, _HIGH)
        if port not in _given and _bindable(port):
            _given.add(port)
            return port
    raise RuntimeError(f"no free port in {_LOW}-{_HIGH}")


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` every 10 ms until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(0.01)
