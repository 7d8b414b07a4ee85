"""Event streams: one subscriber's queue of events, fed by a publisher that never waits.

:meth:`Node.events` and :meth:`Cluster.events` both hand out a :class:`Stream`. A stream
holds every event published after it was opened until it is read; it is an async
iterator, and an async context manager that ends the subscription on exit.

Bounds. A publisher is the node's or the cluster's own code and must never wait for a
slow reader, and an event must never vanish unnoticed (a reader that missed a NodeDown
would believe a dead node alive). So a stream at its ``max_queued`` bound stops taking
events: it logs one warning and unsubscribes, its reader first gets the events queued
before, then :class:`~nodemesh.errors.StreamOverflowError`. Subscribe again to go on,
and re-read the state the events describe (``node.nodes()``), as after any gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from nodemesh.errors import ConfigError, StreamOverflowError

__all__ = ["Publisher", "Stream", "StreamStatistics"]

log = logging.getLogger("nodemesh.node")

T = TypeVar("T")
_CLOCK_SLACK = 0.001  # a timer may fire this early by the loop's clock (uvloop: ms)


@dataclass(frozen=True, slots=True)
class StreamStatistics:
    """A snapshot of one stream, from :meth:`Stream.statistics`: events waiting to be
    read, the bound, events published to it so far, and whether it has ended."""

    queued: int
    max_queued: int | None
    published: int
    closed: bool
    overflowed: bool


class Stream(Generic[T]):
    """One subscriber's queue of events, an async iterator.

    ``on_close`` (called once, with the stream) is how the publisher forgets it;
    ``max_queued`` bounds the queue (None: unbounded) with the policy of this module.
    It is read on one event loop: the one its first wait ran on.
    """

    def __init__(
        self,
        on_close: Callable[[Stream[T]], None] | None = None,
        *,
        max_queued: int | None = None,
        label: str = "event stream",
    ) -> None:
        if max_queued is not None and (type(max_queued) is not int or max_queued < 1):
            raise ConfigError(f"max_queued must be a positive integer or None, got {max_queued!r}")
        self._on_close = on_close
        self._max = max_queued
        self._label = label
        self._events: deque[T] = deque()
        self._waiters: list[asyncio.Future[None]] = []
        self._end: type[EOFError] | type[StreamOverflowError] | None = None
        self._published = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timed: dict[asyncio.Future[None], float] = {}  # timed waits' deadlines
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def __repr__(self) -> str:
        return f"<Stream {self._label} queued={len(self._events)}>"

    @property
    def closed(self) -> bool:
        """True once the stream takes no more events (closed or overflowed)."""
        return self._end is not None

    # -- publisher side ------------------------------------------------------------------
    def put_nowait(self, event: T) -> None:
        """Queue ``event`` (never waits). An ended stream ignores it; a full one ends
        with :class:`StreamOverflowError` instead of queuing it."""
        if self._end is not None:
            return
        if self._max is not None and len(self._events) >= self._max:
            log.warning(
                "%s reached max_queued=%d: its reader fell behind; it ends here",
                self._label,
                self._max,
            )
            self._finish(StreamOverflowError)
            return
        self._published += 1
        self._events.append(event)
        for waiter in self._waiters:  # _wake() inlined: once per event
            if not waiter.done():
                waiter.set_result(None)

    # -- reader side ---------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Coroutine[Any, Any, T]:
        """The next event (``await stream.get()``). Raises :class:`TimeoutError` after
        ``timeout`` seconds, :class:`EOFError` once the stream (or its node or cluster)
        is closed and :class:`StreamOverflowError` after the last event queued before an
        overflow. A function that returns the coroutine that waits: one coroutine per
        event, not two (a subscriber's loop, measured: docs/benchmarks.md, session 5)."""
        if timeout is None or self._events:  # an event to take: no deadline to reckon
            return self._next(False)
        return self._next(False, self._event_loop().time() + timeout)

    async def _next(self, iterating: bool = True, deadline: float | None = None) -> T:
        """The next event, waiting for it until ``deadline`` (the loop's clock) if one is
        given (see :meth:`_time`); at the end, ``iterating`` (``async for``) stops at a
        close where a ``get`` raises EOFError."""
        while not self._events:
            if self._end is not None:
                if iterating and self._end is EOFError:
                    raise StopAsyncIteration
                self._raise_end()
            loop = self._loop or self._event_loop()
            waiter = loop.create_future()
            self._waiters.append(waiter)
            if deadline is not None:
                self._time(waiter, deadline)
            try:
                await waiter
            finally:
                if deadline is not None:
                    self._timed.pop(waiter, None)
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return self._events.popleft()

    def _time(self, waiter: asyncio.Future[None], deadline: float) -> None:
        """Fail ``waiter`` with TimeoutError at ``deadline``. Not an ``asyncio.timeout``
        scope (a Python context manager that cancels and uncancels the task: ~28,000
        instructions per get, session 6) nor a timer per wait: one timer per stream, at
        the earliest deadline, left to fire when a wait ends (it re-arms for the waits
        still timed), so a reader calling ``get(timeout)`` in a loop arms one per
        ``timeout`` seconds."""
        self._timed[waiter] = deadline
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        assert self._loop is not None, "armed by a wait, which set the loop"
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        """The timer: waits past their deadline get TimeoutError (give or take the loop's
        clock resolution, as asyncio's timers); re-armed for the earliest one left."""
        assert self._loop is not None, "armed by a wait, which set the loop"
        self._timer = None
        now = self._loop.time() + _CLOCK_SLACK
        later: float | None = None
        for waiter, deadline in list(self._timed.items()):
            if deadline <= now:
                del self._timed[waiter]
                if not waiter.done():
                    waiter.set_exception(TimeoutError())
            elif later is None or deadline < later:
                later = deadline
        if later is not None:
            self._arm(later)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        # The loop of the first wait, kept: asyncio.get_running_loop() is a getpid()
        # system call per wait on Python 3.11 (a subscriber waits once per message).
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def __aiter__(self) -> Stream[T]:
        return self

    # The next event; iteration ends at close, an overflow raises. _next itself, not a
    # function returning its coroutine: async for runs no Python frame before waiting.
    __anext__ = _next

    def statistics(self) -> StreamStatistics:
        """A frozen snapshot of this stream."""
        return StreamStatistics(
            queued=len(self._events),
            max_queued=self._max,
            published=self._published,
            closed=self._end is not None,
            overflowed=self._end is StreamOverflowError,
        )

    # -- ending --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop receiving events; those already queued can still be read."""
        self._finish(EOFError)

    async def __aenter__(self) -> Stream[T]:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _finish(self, end: type[EOFError] | type[StreamOverflowError]) -> None:
        if self._end is not None:
            return
        self._end = end
        if self._on_close is not None:
            self._on_close(self)
        if self._timer is not None:  # the woken waits end now: nothing left to time
            self._timer.cancel()
            self._timer = None
        self._wake()

    def _raise_end(self) -> None:
        if self._end is StreamOverflowError:
            raise StreamOverflowError(
                f"the {self._label} reached max_queued={self._max} and ended; subscribe again"
            )
        if self._end is EOFError:
            raise EOFError(f"the {self._label} is closed")

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)


class Publisher(Generic[T]):
    """Publishes each event to every open :class:`Stream` it handed out."""

    def __init__(self, label: str = "event stream") -> None:
        self._label = label
        self._streams: set[Stream[T]] = set()
        self._closed = False

    def subscribe(self, max_queued: int | None = None) -> Stream[T]:
        """A new stream of the events published from now on (ended at once if the
        publisher is closed). Raises :class:`ConfigError` for a bad ``max_queued``."""
        stream: Stream[T] = Stream(self._streams.discard, max_queued=max_queued, label=self._label)
        if self._closed:
            stream.close()
        else:
            self._streams.add(stream)
        return stream

    def publish(self, event: T) -> None:
        """Queue ``event`` on every open stream."""
        for stream in list(self._streams):
            stream.put_nowait(event)

    def close(self) -> None:
        """End every stream (after their queued events) and every later subscription."""
        self._closed = True
        for stream in list(self._streams):
            stream.close()
