"""Recent failed connects: a send to a node that just failed fails at once (pure logic).

Without this, every send to an unreachable node starts its own connect and waits up to
``connect_timeout`` (and the EPMD lookup) for the same answer. After a failed connect,
:class:`FailedDials` remembers the reason for ``connect_retry_delay`` seconds; the dial
path raises it again at once, saying how old it is. Time is passed in.
"""

from __future__ import annotations

from nodemesh.errors import NodeDownError

__all__ = ["FailedDials"]

_PRUNE_AT = 256  # entries; expired ones are dropped when there are more


class FailedDials:
    """Failed connects younger than ``retry_delay`` seconds, by node name."""

    def __init__(self, retry_delay: float) -> None:
        self.retry_delay = retry_delay
        self._failed: dict[str, tuple[float, NodeDownError]] = {}

    def record(self, peer: str, error: NodeDownError, now: float) -> None:
        """Connecting to ``peer`` failed at ``now`` with ``error``."""
        if self.retry_delay <= 0:
            return
        if len(self._failed) >= _PRUNE_AT:
            self._failed = {
                name: entry
                for name, entry in self._failed.items()
                if now - entry[0] < self.retry_delay
            }
        self._failed[peer] = (now, error)

    def recent(self, peer: str, now: float) -> NodeDownError | None:
        """A new NodeDownError repeating a failure younger than ``retry_delay``, or None
        (the caller should try to connect)."""
        entry = self._failed.get(peer)
        if entry is None:
            return None
        when, error = entry
        age = now - when
        if age >= self.retry_delay:
            del self._failed[peer]
            return None
        again = NodeDownError(
            f"{error} (failed {age:.1f} s ago; tried again after connect_retry_delay, "
            f"{self.retry_delay:g} s)"
        )
        again.__cause__ = error.__cause__
        return again

    def forget(self, peer: str) -> None:
        """``peer`` is reachable after all (it connected to us)."""
        self._failed.pop(peer, None)
