"""What an EPMD knows: live registrations, creations, who counts as local. No I/O.

The decisions of :mod:`nodemesh.epmd.server` that need no socket, after OTP's
``epmd_srv.c``: one live registration per name; creations are never 0 and change each
time a name registers again; ALIVE2_REQ is taken only from this host.
"""

from __future__ import annotations

import ipaddress
import random
from collections import OrderedDict
from dataclasses import dataclass

from nodemesh.epmd.protocol import NodeInfo


@dataclass(frozen=True, slots=True)
class RegisteredNode:
    """A live registration: the node, the creation it was given, and where it came from."""

    node: NodeInfo
    creation: int
    peer: str


class Registry:
    """The names an EPMD holds and the creations it hands out. No I/O.

    A creation is never 0 (reserved) and a name registering again gets the previous
    creation plus one, so pids of its previous incarnation are told apart; names are
    remembered for that up to ``remembered`` of them.
    """

    def __init__(self, remembered: int = 1000, rng: random.Random | None = None) -> None:
        self._live: dict[str, tuple[RegisteredNode, object]] = {}
        self._creations: OrderedDict[str, int] = OrderedDict()
        self._remembered = remembered
        self._rng = rng or random.Random()

    def register(self, node: NodeInfo, peer: str, owner: object) -> RegisteredNode | None:
        """Register ``node`` for ``owner`` (its connection); None if the name is taken."""
        if node.name in self._live:
            return None
        entry = RegisteredNode(node, self._next_creation(node.name), peer)
        self._live[node.name] = (entry, owner)
        return entry

    def unregister(self, name: str, owner: object) -> RegisteredNode | None:
        """Drop ``name`` if ``owner`` holds it; return what was dropped."""
        held = self._live.get(name)
        if held is None or held[1] is not owner:
            return None
        del self._live[name]
        return held[0]

    def lookup(self, name: str) -> NodeInfo | None:
        held = self._live.get(name)
        return held[0].node if held else None

    def live(self) -> list[RegisteredNode]:
        """Live registrations, oldest first."""
        return [entry for entry, _ in self._live.values()]

    def _next_creation(self, name: str) -> int:
        previous = self._creations.pop(name, None)
        if previous is None:
            creation = self._rng.randrange(1, 1 << 32)
        else:
            creation = previous % 0xFFFFFFFF + 1  # wraps to 1, skipping the reserved 0
        self._creations[name] = creation
        while len(self._creations) > self._remembered:
            self._creations.popitem(last=False)
        return creation


def is_local_peer(peer: str, local: str) -> bool:
    """Whether a connection from ``peer`` to our address ``local`` comes from this host.

    As epmd decides it: a loopback source, or a source equal to the address it reached
    us on (only this host sends from its own address).
    """
    source = ipaddress.ip_address(peer.split("%", 1)[0])
    ours = ipaddress.ip_address(local.split("%", 1)[0])
    if isinstance(source, ipaddress.IPv6Address) and source.ipv4_mapped is not None:
        source = source.ipv4_mapped
    if isinstance(ours, ipaddress.IPv6Address) and ours.ipv4_mapped is not None:
        ours = ours.ipv4_mapped
    return source.is_loopback or source == ours
