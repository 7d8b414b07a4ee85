"""A frozen snapshot of a node, from :meth:`Node.statistics` (trio's ``statistics()``:
plain values read at one moment, cheap enough to poll from a metrics endpoint)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nodemesh._build import implementation

if TYPE_CHECKING:
    from nodemesh.runtime._connection import Connection
    from nodemesh.runtime.mailbox import Mailbox

__all__ = ["NodeStatistics", "collect"]


@dataclass(frozen=True, slots=True)
class NodeStatistics:
    """What a node holds right now.

    ``queued_messages`` is the total over all mailboxes and ``largest_queue`` the longest
    one; ``paused_connections`` counts connections whose reading is paused until a full
    mailbox drains (see ``max_queued`` in :class:`~nodemesh.runtime.mailbox.Mailbox`),
    ``write_paused_connections`` those whose peer is not reading fast enough (more than
    ``write_high_water`` bytes wait to be sent: ``await node.send`` to it waits).
    With ``failure_detector="fast"``, ``fast_watched_peers`` counts peers seen to tick
    fast (held to the sub-second verdict; the others keep Erlang's rule) and
    ``suspected_peers`` those of them silent beyond the suspicion threshold right now.
    """

    connections: int
    pending_handshakes: int
    mailboxes: int
    queued_messages: int
    largest_queue: int
    paused_connections: int
    write_paused_connections: int
    fast_watched_peers: int = 0
    suspected_peers: int = 0
    #: Which build of the message path runs: "compiled (Cython)" or "pure Python".
    implementation: str = "pure Python"


def collect(
    connections: Iterable[Connection], pending_handshakes: int, mailboxes: Iterable[Mailbox]
) -> NodeStatistics:
    """Count what a node holds (its connection and process tables are passed in)."""
    conns = list(connections)
    lengths = [len(mailbox) for mailbox in mailboxes]
    return NodeStatistics(
        connections=len(conns),
        pending_handshakes=pending_handshakes,
        mailboxes=len(lengths),
        queued_messages=sum(lengths),
        largest_queue=max(lengths, default=0),
        paused_connections=sum(1 for conn in conns if conn.held),
        write_paused_connections=sum(1 for conn in conns if conn.paused),
        fast_watched_peers=sum(1 for conn in conns if conn.fast_watched),
        suspected_peers=sum(1 for conn in conns if conn.suspected),
        implementation=implementation(),
    )
