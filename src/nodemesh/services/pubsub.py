"""Phoenix.PubSub over pg: the protocol of phoenix_pubsub's PG2 adapter.

What an Elixir node running ``{Phoenix.PubSub, name: MyApp.PubSub}`` does, and so what
this module does (phoenix_pubsub ``lib/phoenix/pubsub/pg2.ex``):

* The application's pg scope is ``'Elixir.Phoenix.PubSub'``. The adapter of a PubSub
  named ``MyApp.PubSub`` is ``'Elixir.MyApp.PubSub.Adapter'``; its ``pool_size`` workers
  join the groups ``[Adapter, Adapter_2, ..., Adapter_N]``, each worker registered locally
  under its group's name (``direct_broadcast`` sends to ``{Group, Node}``).
* ``broadcast`` delivers to local subscribers directly and sends
  ``{forward_to_local, Topic, Message, Dispatcher}`` (Topic a binary, Dispatcher the
  atom ``'Elixir.Phoenix.PubSub'`` by default) to every member of ONE group that is not
  on this node: every node has exactly one worker in each group, so each node gets one
  copy. The worker hands it to that node's local subscribers and ignores anything else.

Here each worker is a registered name joined to its group and served by a function
(``Node.register_handler``): a ``forward_to_local`` is handed to the subscribers as it
arrives, in the dispatcher, with no worker task in between (one trip through the event
loop fewer per message, issue 8's round-trip goal); subscribers are
:class:`Subscription` streams, bounded like node event streams (a subscriber that
falls ``max_queued`` behind gets :class:`StreamOverflowError` after its queued messages).
Every node of one PubSub must use the same ``pool_size``, as in Phoenix. Messages from
one publisher (here: one :class:`PubSub`) arrive in the order they were broadcast.
"""

from __future__ import annotations

import logging
import zlib
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nodemesh.errors import ConfigError, NodeDownError
from nodemesh.runtime.streams import Stream
from nodemesh.services.pg import PgScope
from nodemesh.term.encode import encode_once
from nodemesh.term.types import Atom, Pid

if TYPE_CHECKING:
    from collections.abc import Callable

    from nodemesh.runtime.mailbox import Mailbox
    from nodemesh.runtime.node import Node

__all__ = ["PHOENIX_SCOPE", "PubSub", "Subscription", "adapter_groups"]

log = logging.getLogger("nodemesh.pubsub")

PHOENIX_SCOPE = "Elixir.Phoenix.PubSub"
FORWARD_TO_LOCAL = Atom("forward_to_local")
DEFAULT_DISPATCHER = Atom(PHOENIX_SCOPE)  # Phoenix.PubSub.dispatch/3: send to each subscriber


def adapter_groups(name: str, pool_size: int = 1) -> list[str]:
    """The pg groups of PubSub ``name``'s adapter: ``Module.concat(name, "Adapter")`` and
    its ``_2`` ... ``_N`` siblings (pg2.ex ``groups/2``). ``"MyApp.PubSub"`` and
    ``"Elixir.MyApp.PubSub"`` name the same server."""
    adapter = f"Elixir.{name.removeprefix('Elixir.')}.Adapter"
    return [adapter] + [f"{adapter}_{n}" for n in range(2, pool_size + 1)]


class Subscription(Stream[Any]):
    """Messages broadcast on one topic: an async iterator; ``get(timeout)``; ``close()``
    (or ``async with``) unsubscribes."""

    def __init__(
        self, topic: str, on_close: Callable[[Stream[Any]], None], max_queued: int | None
    ) -> None:
        super().__init__(on_close, max_queued=max_queued, label=f"subscription to {topic!r}")
        self.topic = topic


class PubSub:
    """A Phoenix.PubSub server named ``name`` on ``node``.

    ``async with PubSub(node) as ps:`` joins the adapter's groups in the
    ``'Elixir.Phoenix.PubSub'`` scope (its own :class:`PgScope` unless ``scope`` is
    given: share one scope between several PubSub servers of a node).
    """

    def __init__(
        self,
        node: Node,
        name: str = "nodemesh",
        *,
        pool_size: int = 1,
        scope: PgScope | None = None,
    ) -> None:
        if type(pool_size) is not int or pool_size < 1:
            raise ConfigError(f"pool_size must be a positive integer, got {pool_size!r}")
        self.node = node
        self.name = name.removeprefix("Elixir.")
        self.groups = [Atom(group) for group in adapter_groups(self.name, pool_size)]
        self._own_scope = scope is None
        self.scope = scope if scope is not None else PgScope(node, PHOENIX_SCOPE)
        # Subscribers by topic, a tuple replaced on (un)subscribe: a message is handed to
        # each without copying the collection first (a full one closes, i.e. forgets, itself).
        self._topics: dict[bytes, tuple[Subscription, ...]] = {}
        self._workers: list[Mailbox] = []
        self._started = False
        # One group for all our broadcasts, as Phoenix picks one per publishing process
        # (phash2(self())): the receiving node's workers run concurrently, so spreading
        # one publisher's messages over several groups would reorder them.
        self._broadcast_group = self.groups[zlib.crc32(node.name.encode()) % pool_size]
        self._remote = self.scope.remote_view(self._broadcast_group)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the scope (if ours) and the workers. Raises :class:`NameTakenError` when a
        worker's name is already registered on the node (the same PubSub started twice)."""
        if self._started:
            return
        if self._own_scope:
            await self.scope.start()
        for group in self.groups:
            worker = self.node.register_handler(group, self._forward)
            self._workers.append(worker)
            self.scope.join(group, worker.pid)
        self._started = True

    async def aclose(self) -> None:
        """Stop the workers (peers see them leave), end every subscription."""
        for worker in self._workers:
            worker.close()
        self._workers = []
        self._started = False
        if self._own_scope:
            await self.scope.aclose()
        for subscriptions in list(self._topics.values()):
            for subscription in subscriptions:
                subscription.close()

    async def __aenter__(self) -> PubSub:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- subscribing ---------------------------------------------------------------------
    def subscribe(self, topic: str, *, max_queued: int | None = None) -> Subscription:
        """Receive every message broadcast on ``topic`` from now on, from any node.
        ``max_queued`` (None: the node's ``max_queued_messages``; 0: unbounded) bounds
        how far the reader may fall behind. Raises :class:`ConfigError` for a bad bound."""
        key = topic.encode()
        bound = self.node.config.max_queued_messages if max_queued is None else max_queued

        def forget(stream: Stream[Any]) -> None:
            rest = tuple(s for s in self._topics.get(key, ()) if s is not stream)
            if rest:
                self._topics[key] = rest
            else:
                self._topics.pop(key, None)

        subscription = Subscription(topic, forget, bound or None)
        self._topics[key] = (*self._topics.get(key, ()), subscription)
        return subscription

    def subscribers(self, topic: str) -> int:
        """How many subscriptions to ``topic`` are open on this node."""
        return len(self._topics.get(topic.encode(), ()))

    # -- broadcasting --------------------------------------------------------------------
    async def broadcast(self, topic: str, message: Any) -> int:
        """Deliver ``message`` to every subscriber of ``topic`` on every node: local ones
        directly, each other node once. Returns the number of other nodes it was sent to
        (a node that went down meanwhile is skipped). Raises :class:`EncodeError` when
        ``message`` has no Erlang form."""
        key = topic.encode()
        if key in self._topics:
            self._dispatch(key, message)
        remote = self._remote
        members = remote.members
        if not members:
            return 0
        frame: Any = (FORWARD_TO_LOCAL, key, message, DEFAULT_DISPATCHER)
        node = self.node
        if len(members) == 1:  # one other node: no loop, nothing to count (measured)
            pid = members[0]
            try:
                if node.send_connected(pid, frame):
                    await node.drain(pid.node)
            except NodeDownError:
                return await self._send_dialing(members, [pid], frame)
            return 1
        frame = encode_once(frame, none_atom=node.config.none_atom)  # most of each frame
        # Written at once to the connected nodes (no coroutine per member), waiting for
        # room on a paused connection as node.send does; one that is not connected is
        # dialed after the others, as node.send would.
        missed: list[Pid] | None = None
        for pid in members:
            try:
                if node.send_connected(pid, frame):
                    await node.drain(pid.node)
            except NodeDownError:
                missed = [pid] if missed is None else [*missed, pid]
        if missed is not None:
            return await self._send_dialing(members, missed, frame)
        return remote.nodes if members is remote.members else len({p.node for p in members})

    async def _send_dialing(self, members: tuple[Pid, ...], missed: list[Pid], frame: Any) -> int:
        """Send to the members whose nodes were not connected (node.send dials); the
        number of nodes reached."""
        if type(frame) is tuple:  # an EncodeError before any dial, as with more members
            frame = encode_once(frame, none_atom=self.node.config.none_atom)
        reached = {pid.node for pid in members if pid not in missed}
        for pid in missed:
            try:
                await self.node.send(pid, frame)
            except NodeDownError:
                continue
            reached.add(pid.node)
        return len(reached)

    def local_broadcast(self, topic: str, message: Any) -> int:
        """Deliver ``message`` to this node's subscribers of ``topic`` only; returns how
        many subscriptions got it."""
        return self._dispatch(topic.encode(), message)

    def remote_nodes(self) -> list[str]:
        """Other nodes with a worker of this PubSub (those a broadcast reaches)."""
        mine = self.node.name
        nodes = {str(pid.node) for pid in self.scope.remote_members(self.groups[0])}
        return sorted(node for node in nodes if node != mine)

    async def wait_for_remote(self, n: int = 1, timeout: float | None = None) -> list[str]:
        """Wait until at least ``n`` other nodes run this PubSub; returns them. Raises
        :class:`TimeoutError` after ``timeout`` seconds."""
        mine = self.node.name

        def enough(members: list[Any]) -> bool:
            return len({pid.node for pid in members} - {mine}) >= n

        await self.scope.wait_for_members(self.groups[0], enough, timeout)
        return self.remote_nodes()

    # -- the workers ---------------------------------------------------------------------
    def _dispatch(self, key: bytes, message: Any) -> int:
        subscribers = self._topics.get(key)
        if not subscribers:
            return 0
        for subscription in subscribers:
            subscription.put_nowait(message)
        return len(self._topics.get(key, ()))  # less any that overflowed just now

    def _forward(self, message: Any) -> None:
        """PG2Worker.handle_info: ``forward_to_local`` is dispatched, anything else ignored."""
        if (
            type(message) is tuple
            and len(message) == 4
            and message[0] == FORWARD_TO_LOCAL
            and type(message[1]) is bytes
        ):
            # _dispatch() inlined: this runs for every message from another node.
            for subscription in self._topics.get(message[1], ()):
                subscription.put_nowait(message[2])
        else:
            log.debug("pubsub %s ignored %.200r", self.name, message)
