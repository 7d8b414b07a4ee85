"""Node membership events; :mod:`nodemesh.runtime.streams` fans them out."""

from __future__ import annotations

from dataclasses import dataclass

from nodemesh.runtime.streams import Publisher, Stream

__all__ = ["EventHub", "EventStream", "NodeDown", "NodeEvent", "NodeUp"]


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


EventStream = Stream[NodeEvent]
"""What :meth:`Node.events` returns: a :class:`~nodemesh.runtime.streams.Stream` of node
events."""

EventHub = Publisher[NodeEvent]
"""The node's publisher of :class:`NodeUp` / :class:`NodeDown`."""
