"""Node membership events and their fan-out to subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["EventStream", "NodeDown", "NodeEvent", "NodeUp"]


@dataclass(frozen=True, slots=True)
class NodeUp:
    """A distribution connection to ``node`` was established."""

    node: str


@dataclass(frozen=True, slots=True)
class NodeDown:
    """The connection to ``node`` was lost; ``reason`` says why (e.g. ``connection_closed``,
    ``net_tick_timeout``, ``disconnect``, ``protocol_error``)."""

    node: str
    reason: str


NodeEvent = NodeUp | NodeDown


class EventStream:
    """One subscriber's queue of node events, an async iterator.

    Events published after the stream was opened are kept in order until read. Closing
    the stream (or the node stopping) ends the iteration.
    """

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[NodeEvent | None] = asyncio.Queue()

    def _put(self, event: NodeEvent | None) -> None:
        self._queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> NodeEvent:
        """The next event. Raises :class:`TimeoutError` after ``timeout`` seconds and
        :class:`EOFError` once the stream is closed (or the node stopped)."""
        event = await asyncio.wait_for(self._queue.get(), timeout)
        if event is None:
            self._queue.put_nowait(None)  # every later get() sees the end too
            raise EOFError("the event stream is closed")
        return event

    def __aiter__(self) -> AsyncIterator[NodeEvent]:
        return self

    async def __anext__(self) -> NodeEvent:
        try:
            return await self.get()
        except EOFError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving events."""
        self._hub._streams.discard(self)
        self._put(None)


class EventHub:
    """Publishes each event to every open :class:`EventStream`."""

    def __init__(self) -> None:
        self._streams: set[EventStream] = set()

    def subscribe(self) -> EventStream:
        stream = EventStream(self)
        self._streams.add(stream)
        return stream

    def publish(self, event: NodeEvent) -> None:
        for stream in list(self._streams):
            stream._put(event)

    def close(self) -> None:
        for stream in list(self._streams):
            stream.close()
