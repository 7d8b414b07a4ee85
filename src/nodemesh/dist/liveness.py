"""Tick liveness of a distribution connection, as pure logic (no clock, no I/O).

``erl_dist_protocol``, "Distribution Handshake" (after it) and net_kernel's
``net_ticktime``: every ``ticktime / 4`` seconds a node sends a tick (an empty frame) if
it sent nothing else, and a peer from which nothing arrived for four such intervals is
declared down (``net_tick_timeout``). The caller owns the clock: it reports what it
received and sent with the time, and calls :meth:`Liveness.poll` at
:meth:`Liveness.next_poll`. Tests drive it in virtual time.

While the caller has paused reading the socket (a full mailbox pushing back on the
sender), silence is our doing, not the peer's: the peer is not declared down then, and
the silence count restarts when reading resumes.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["SILENT_INTERVALS", "Liveness", "LivenessAction"]

SILENT_INTERVALS = 4  # net_kernel: down after 4 tick intervals without a byte


class LivenessAction(Enum):
    """What :meth:`Liveness.poll` asks of the caller."""

    NOTHING = "nothing"
    SEND_TICK = "send_tick"  # write an empty frame (then report it with sent())
    PEER_DOWN = "peer_down"  # close the connection: net_tick_timeout


class Liveness:
    """When to tick and when to give up on a silent peer.

    ``ticktime`` is ``net_ticktime`` in seconds; ``now`` the caller's clock at the start.
    """

    def __init__(self, ticktime: float, now: float) -> None:
        if ticktime <= 0:
            raise ValueError(f"ticktime must be positive, not {ticktime}")
        self.interval = ticktime / SILENT_INTERVALS
        self._heard = now
        self._sent = now
        self._paused = False
        self._next = now + self.interval

    @property
    def paused(self) -> bool:
        """True while reading is paused (see :meth:`pause_reading`)."""
        return self._paused

    def received(self, now: float) -> None:
        """Bytes (a message or a tick) arrived from the peer at ``now``."""
        self._heard = max(self._heard, now)

    def sent(self, now: float) -> None:
        """We wrote to the peer at ``now``."""
        self._sent = max(self._sent, now)

    def pause_reading(self) -> None:
        """We stopped reading the socket: the peer's silence is not its fault."""
        self._paused = True

    def resume_reading(self, now: float) -> None:
        """We read again: count the peer's silence from ``now``."""
        self._paused = False
        self._heard = max(self._heard, now)

    def next_poll(self) -> float:
        """When :meth:`poll` is due next (the caller's clock)."""
        return self._next

    def poll(self, now: float) -> LivenessAction:
        """Decide at ``now``: declare the peer down, send a tick, or nothing."""
        self._next = now + self.interval
        # A small epsilon: timers fire a hair early or late; a whole interval of slack
        # would be wrong the other way (Erlang counts intervals, not exact seconds).
        slack = self.interval / 100
        if not self._paused and now - self._heard >= SILENT_INTERVALS * self.interval - slack:
            return LivenessAction.PEER_DOWN
        if now - self._sent >= self.interval - slack:
            return LivenessAction.SEND_TICK
        return LivenessAction.NOTHING
