"""Warnings under attack: at most one line per cause per interval, with counts.

A flood of 2,000 bad connections used to write about 3,900 WARNING lines. Here each
cause (a short phrase: "handshakes failed: RemoteProtocolError", ...) logs its first
occurrence, then stays quiet for ``interval`` seconds; when that window ends a summary
line says how many more there were. Gossip's ``drop_log_interval`` does the same for
datagrams. :class:`RateLimiter` is the pure rule (time is passed in);
:class:`RateLimitedLog` is the asyncio shell that writes the lines and the summaries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

__all__ = ["RateLimitedLog", "RateLimiter"]


class RateLimiter:
    """Per cause: one event per ``interval`` goes through, the rest are counted.

    ``interval`` 0 lets everything through.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._window_ends: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def allow(self, cause: str, now: float) -> bool:
        """True if an event of ``cause`` at ``now`` should be logged; else it is counted."""
        if now < self._window_ends.get(cause, float("-inf")):
            self._held[cause] += 1
            return False
        self._window_ends[cause] = now + self.interval
        return True

    def due(self, now: float) -> list[tuple[str, int]]:
        """Causes whose window ended with events held back, and how many; the count is
        reset, and the next event of that cause opens a new window."""
        ended = [
            (cause, count)
            for cause, count in self._held.items()
            if now >= self._window_ends.get(cause, float("-inf"))
        ]
        for cause, _ in ended:
            del self._held[cause]
        return ended

    def held(self) -> list[tuple[str, int]]:
        """Everything held back so far (emptied): for a last summary at shutdown."""
        out = list(self._held.items())
        self._held.clear()
        return out

    def next_due(self) -> float | None:
        """When the earliest window with held-back events ends, or None."""
        ends = [self._window_ends[cause] for cause in self._held]
        return min(ends) if ends else None


class RateLimitedLog:
    """WARNING lines to ``logger`` through a :class:`RateLimiter`, with summary lines."""

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self._log = logger
        self._limiter = RateLimiter(interval)
        self._timer: asyncio.TimerHandle | None = None

    def warning(self, cause: str, msg: str, *args: object) -> None:
        """Log ``msg % args`` as a WARNING unless ``cause`` was logged within the
        interval; then at DEBUG, and counted for the summary."""
        loop = asyncio.get_running_loop()
        if self._limiter.allow(cause, loop.time()):
            self._log.warning(msg, *args)
            return
        self._log.debug(msg, *args)  # still there for whoever looks closer
        if self._timer is None:
            self._schedule(loop)

    def close(self) -> None:
        """Write the summaries still held back and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._summarize(self._limiter.held())

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        when = self._limiter.next_due()
        if when is not None:
            self._timer = loop.call_at(when, self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._summarize(self._limiter.due(loop.time()))
        self._schedule(loop)

    def _summarize(self, held: list[tuple[str, int]]) -> None:
        interval = self._limiter.interval
        for cause, count in held:
            self._log.warning(
                "%s: %d more in the last %g s (not logged one by one)", cause, count, interval
            )
