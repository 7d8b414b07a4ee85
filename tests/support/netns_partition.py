"""Partition tests across the hosts of a :class:`~support.netns.NetnsLab`.

The partition itself is :func:`support.netns.drop_all` (every packet in and out of a
host's ``eth0`` dropped; loopback still works, so its own EPMD and processes carry on)
and :func:`support.netns.clear_filters` heals it. Here: :func:`join_bridge` gives this
process (the root namespace) an address on the lab's bridge, so Python nodes running in
the test itself reach the hosts (an ``erl`` in a host on the test's EPMD port:
``NetnsLab.erl_peer(..., epmd_port=port)``).
"""

from __future__ import annotations

import subprocess

from support.netns import NetnsLab

BRIDGE_HOST = 254  # the root namespace is 10.77.0.254 on the bridge


def join_bridge(lab: NetnsLab) -> str:
    """Give the root namespace ``10.77.0.254/24`` on the lab's bridge; return it."""
    address = lab.ip4(BRIDGE_HOST)
    subprocess.run(
        ["ip", "addr", "add", f"{address}/24", "dev", lab.bridge], check=True, timeout=30
    )
    return address
