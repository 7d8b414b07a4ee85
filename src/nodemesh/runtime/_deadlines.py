"""Deadlines of gen_server calls: one timer per timeout value, not one per call.

Loop time never goes back, so calls made with the same timeout reach their deadlines in
the order they started: a queue, whose head alone needs a timer. Each call added first
takes out the finished calls at the head (for sequential calls: the one before), so a
call costs an append and a pop instead of a timer handle armed and cancelled (a heap
push, a handle object, a cancelled entry for the loop to skip), and nothing when it
ends; the timer fires at most once per timeout, expires what is due and re-arms for the
rest. A finished call thus stays queued until the next call or the timer: the queue holds
the calls of at most one timeout's span, as it did when each call took itself out.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

__all__ = ["Deadlines"]


class Deadlines:
    """The deadlines of calls with one timeout value; an expired call's future gets
    ``expired`` as its result."""

    __slots__ = ("_expired", "_loop", "_queue", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, expired: Any) -> None:
        self._loop = loop
        self._expired = expired
        self._queue: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def busy(self) -> bool:
        """True while some call added here has not ended."""
        return any(not future.done() for _, future in self._queue)

    def add(self, deadline: float, future: asyncio.Future[Any]) -> None:
        """A call waiting on ``future`` until ``deadline`` (loop time, not before the
        deadline of the previous call added). The finished calls at the head go first:
        for sequential calls, the previous one (no call at the end of each call)."""
        queue = self._queue
        while queue and queue[0][1].done():
            queue.popleft()
        queue.append((deadline, future))
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        queue, now = self._queue, self._loop.time()
        while queue:
            deadline, future = queue[0]
            if deadline > now and not future.done():
                self._timer = self._loop.call_at(deadline, self._fire)
                return
            queue.popleft()
            if not future.done():
                future.set_result(self._expired)
