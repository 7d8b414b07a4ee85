"""Which pending handshakes a node keeps when more arrive than it will hold (pure logic).

Theory of operation. A distribution handshake (erl_dist_protocol, "Distribution
Handshake") costs the accepting node a socket and a timer until it completes, and Erlang
gives it ``net_setuptime`` (7 s) to do so. A peer that connects and says nothing holds
that slot for free; 64 such sockets every 7 s used to lock every new node out. So:

- a connection counts as pending from the moment it is accepted, not when its
  protocol object is told (asyncio accepts a whole backlog before the first
  ``connection_made`` runs);
- a full table never refuses the newcomer: it evicts the pending handshake that made
  progress *least recently* (accepted, or sent its first complete message, longest
  ago). A real peer sends its ``send_name`` at once and finishes within a few round
  trips, so it is always near the back of that queue, while silent sockets and peers
  that stall after their name drift to the front. (Ranking by stage instead, "evict
  the silent first", protects an attacker that sends a name and stalls: measured, it
  let those hog the table and newcomers evicted each other.) An attacker must now keep
  ahead of a steady stream of newcomers instead of parking sockets;
- a candidate whose bytes are already waiting unread is spared and goes to the back:
  asyncio accepts a whole batch of sockets before it reads any, and after a stall of
  the event loop a real peer's ``send_name`` can sit in the kernel while newer
  sockets are admitted (the caller checks, e.g. with ``FIONREAD``);
- one source address (the gatekeeper counts an IPv6 /64 as one) holds at most
  ``max_per_address`` of the slots, evicting its own oldest when it wants more.

No sockets and no clock here: :mod:`nodemesh.runtime._gatekeeper` drives this.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from nodemesh.dist.handshake import MAX_HANDSHAKE_MESSAGE

__all__ = ["Admission", "AdmissionStatistics", "first_message_complete"]

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True, slots=True)
class AdmissionStatistics:
    """Counters since the node started (see :meth:`Admission.statistics`)."""

    pending: int  # handshakes in progress now
    peak: int  # most pending at once, after evictions
    admitted: int  # connections accepted
    evicted: int  # pending handshakes closed to make room


@dataclass(slots=True)
class _Entry:
    address: str | None = None  # unknown until the socket is set up


class Admission(Generic[T]):
    """Pending handshakes, bounded in total and per source address.

    ``admit`` and ``identify`` return the handshakes to close (already forgotten here);
    the caller closes them.
    """

    def __init__(self, max_pending: int, max_per_address: int) -> None:
        self.max_pending = max_pending
        self.max_per_address = max_per_address
        self._pending: dict[T, _Entry] = {}  # first: the least recent progress
        self._per_address: Counter[str] = Counter()
        self._peak = self._admitted = self._evicted = 0

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, item: object) -> bool:
        return item in self._pending

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._pending))

    def admit(self, item: T, spare: Callable[[T], bool] = lambda _: False) -> list[T]:
        """Count a connection the moment it is accepted; evict if over ``max_pending``.

        ``spare(candidate)`` True means the candidate is making progress that has not
        been seen yet (bytes waiting unread): it goes to the back of the queue instead.
        """
        self._pending[item] = _Entry()
        self._admitted += 1
        excess = len(self._pending) - self.max_pending
        victims = self._evict(excess, item, lambda _: True, spare)
        self._peak = max(self._peak, len(self._pending))
        return victims

    def identify(
        self, item: T, address: str, spare: Callable[[T], bool] = lambda _: False
    ) -> list[T]:
        """Record where ``item`` comes from; evict if that address has too many."""
        entry = self._pending.get(item)
        if entry is None or entry.address is not None:
            return []
        entry.address = address
        self._per_address[address] += 1
        excess = self._per_address[address] - self.max_per_address
        return self._evict(excess, item, lambda other: other.address == address, spare)

    def progressed(self, item: T) -> None:
        """``item`` made progress (sent its first complete handshake message): it goes to
        the back of the eviction queue."""
        entry = self._pending.pop(item, None)
        if entry is not None:
            self._pending[item] = entry

    def release(self, item: T) -> bool:
        """Forget ``item`` (its handshake ended either way); False if it was not here."""
        entry = self._pending.pop(item, None)
        if entry is None:
            return False
        if entry.address is not None:
            self._per_address[entry.address] -= 1
            if not self._per_address[entry.address]:
                del self._per_address[entry.address]
        return True

    def statistics(self) -> AdmissionStatistics:
        """Pending now, the peak, and how many were admitted and evicted."""
        return AdmissionStatistics(len(self._pending), self._peak, self._admitted, self._evicted)

    def _evict(
        self, excess: int, keep: T, match: Callable[[_Entry], bool], spare: Callable[[T], bool]
    ) -> list[T]:
        """The ``excess`` entries that ``match`` with the least recent progress, not
        ``keep``, passing over those ``spare`` vouches for (unless none is left)."""
        if excess <= 0:
            return []
        victims: list[T] = []
        spared: list[T] = []
        for item, entry in self._pending.items():
            if len(victims) == excess:
                break
            if item != keep and match(entry):
                (spared if spare(item) else victims).append(item)
        shortfall = excess - len(victims)
        if shortfall > 0:  # everything left is talking: the oldest of those go
            victims += spared[:shortfall]
            spared = spared[shortfall:]
        for item in spared:
            self.progressed(item)
        for victim in victims:
            self.release(victim)
        self._evicted += len(victims)
        return victims


def first_message_complete(buffer: bytes | bytearray, width: int = 2) -> bool:
    """True once ``buffer`` holds the peer's whole first handshake message, or enough to
    know it is no handshake (erl_dist_protocol: a 2-byte length, then the message; over
    TLS a 4-byte length, ``width=4``, as inet_tls_dist's ``{packet, 4}``)."""
    if len(buffer) < width:
        return False
    length = int.from_bytes(buffer[:width], "big")
    return length == 0 or length > MAX_HANDSHAKE_MESSAGE or len(buffer) >= width + length
