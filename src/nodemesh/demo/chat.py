"""One demo node: an Erlang node with its cluster and its PubSub, stopped and started
again on request while its web pages stay open.

A :class:`ChatNode` knows nothing of HTTP. Pages listen to it (``listen``) and get plain
JSON-ready dicts: ``state`` (this node, whether it runs, the nodes it sees, the people
online), ``message`` (a chat message from any node, through PubSub topic
``room:lobby``) and ``notice`` (a node joined or left, as this node saw it). Stopping
closes the node for real: its peers see the connection drop (a ``nodedown``), exactly
as if the process had died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from nodemesh.cluster import Cluster
from nodemesh.demo.config import TOPIC, DemoConfig
from nodemesh.demo.messages import chat_message, from_term, to_term
from nodemesh.demo.presence import PRESENCE_TOPIC, Presence
from nodemesh.errors import NodeDownError, NodemeshError
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.events import EventStream, NodeDown, NodeUp
from nodemesh.runtime.node import Node
from nodemesh.services import PubSub, Subscription

__all__ = ["ChatNode", "Listener"]

log = logging.getLogger("nodemesh.demo")

Listener = Callable[[dict[str, Any]], None]

PRESENCE_REFRESH = 5.0  # seconds between announcements of this node's people, unchanged
PRESENCE_POLL = 0.25  # seconds between looks for new PubSub members to announce to


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Session:
    """What one run of the node holds; closed as a whole when the node stops."""

    node: Node
    pubsub: PubSub
    events: EventStream
    room: Subscription  # to TOPIC
    people: Subscription  # to PRESENCE_TOPIC


class ChatNode:
    """The node serving the chat page on ``http_port``. ``await run()`` starts it (the
    first start's errors propagate: a taken name, a bad address) and keeps it until
    cancelled; :meth:`stop` and :meth:`start` may be called any time in between."""

    def __init__(self, config: DemoConfig, http_port: int) -> None:
        self.config = config
        self.http_port = http_port
        self.name = config.node_name(http_port)
        self.history: deque[dict[str, Any]] = deque(maxlen=config.history)
        self._listeners: set[Listener] = set()
        self._peers: dict[str, int] = {}  # node name -> when this node saw it come up (ms)
        self._session: _Session | None = None
        self._since = 0
        self._wanted = asyncio.Event()  # set: should run
        self._wanted.set()
        self._changed = asyncio.Event()
        self._running = asyncio.Event()
        self.presence = Presence(self.name)
        self._people_changed = asyncio.Event()
        self.problem = ""  # why the last start failed, shown on the page

    # -- what pages see ------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the Erlang node is up right now."""
        return self._session is not None

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns the unsubscribe."""
        self._listeners.add(listener)
        return lambda: self._listeners.discard(listener)

    def state(self) -> dict[str, Any]:
        """This node's state as the page shows it: itself first, then its peers, each
        with ``room`` true once its PubSub is known here (a message reaches it)."""
        nodes: list[dict[str, Any]] = []
        if self._session is not None:
            room = set(self._session.pubsub.remote_nodes())
            nodes.append({"name": self.name, "self": True, "since": self._since, "room": True})
            nodes += [
                {"name": n, "self": False, "since": t, "room": n in room}
                for n, t in sorted(self._peers.items())
            ]
        return {
            "type": "state",
            "self": self.name,
            "running": self.running,
            "nodes": nodes,
            "people": self.presence.people(),
            "problem": self.problem,
        }

    def _emit(self, event: dict[str, Any]) -> None:
        if event["type"] != "state":
            self.history.append(event)
        for listener in list(self._listeners):
            listener(event)

    def _notice(self, text: str) -> None:
        self._emit({"type": "notice", "text": text, "at": _now_ms()})

    # -- what pages do -----------------------------------------------------------------
    async def say(self, author: str, text: str) -> None:
        """Broadcast a chat message on the topic. Raises :class:`NodeDownError` when this
        node is stopped."""
        session = self._session
        if session is None:
            raise NodeDownError(f"{self.name} is stopped: start it to chat")
        message = chat_message(author, text, self.name)
        await session.pubsub.broadcast(TOPIC, to_term(message))

    def page_named(self, page: int, author: str) -> None:
        """A page is open under ``author`` (again, after a rename): others learn it."""
        if self.presence.named(page, author):
            self._people_changed.set()
            self._emit(self.state())

    def page_closed(self, page: int) -> None:
        """A page went away."""
        if self.presence.closed(page):
            self._people_changed.set()
            self._emit(self.state())

    def stop(self) -> None:
        """Ask the node to stop (its peers see it go); the page keeps being served."""
        self._wanted.clear()
        self._changed.set()

    def start(self) -> None:
        """Ask a stopped node to start again; gossip brings it back into the cluster."""
        self._wanted.set()
        self._changed.set()

    async def wait_running(self) -> None:
        """Return once the node has started (the first time, or again)."""
        await self._running.wait()

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self) -> None:
        """Run the node, stopping and restarting it on request, until cancelled."""
        first = True
        while True:
            await self._wanted.wait()
            try:
                async with self._opened() as session:
                    self.problem = ""
                    if not first:
                        self._notice(f"{self.name} started again")
                    first = False
                    await self._serve(session)
                self._notice(f"{self.name} stopped: what is said meanwhile will not reach it")
            except NodemeshError as exc:
                if first:
                    raise
                self.problem = f"could not start: {exc}"
                self._wanted.clear()
            except Exception as exc:  # one node's failure is shown on its page, not fatal
                if first:
                    raise
                log.warning("%s stopped after an error", self.name, exc_info=True)
                self.problem = f"stopped after an error: {exc!r}"
                self._wanted.clear()
            self._emit(self.state())

    @contextlib.asynccontextmanager
    async def _opened(self) -> AsyncIterator[_Session]:
        config = NodeConfig(listen_address=self.config.host)
        async with Node(self.name, self.config.cookie, config=config) as node:
            events = node.events()  # before the cluster runs: no nodeup missed
            async with PubSub(node) as pubsub:
                room, people = pubsub.subscribe(TOPIC), pubsub.subscribe(PRESENCE_TOPIC)
                async with Cluster(node, self.config.topologies()):
                    session = _Session(node, pubsub, events, room, people)
                    self._session, self._since = session, _now_ms()
                    try:
                        yield session
                    finally:
                        self._session = None
                        self._running.clear()
                        self._peers.clear()
                        self.presence.forget()
                        events.close()
                        room.close()
                        people.close()

    async def _serve(self, session: _Session) -> None:
        self._running.set()
        self._emit(self.state())
        log.info("%s serves http://%s:%d/", self.name, self.config.host, self.http_port)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow_nodes(session.events))
            tasks.create_task(self._follow_room(session.room))
            tasks.create_task(self._follow_people(session.people))
            announcer = tasks.create_task(self._announce(session.pubsub))
            while self._wanted.is_set():
                self._changed.clear()
                await self._changed.wait()
            announcer.cancel()
            for stream in (session.events, session.room, session.people):
                stream.close()

    async def _follow_nodes(self, events: EventStream) -> None:
        async for event in events:
            if isinstance(event, NodeUp) and event.node not in self._peers:
                self._peers[event.node] = _now_ms()
                self._emit(self.state())
                self._notice(f"{event.node} joined")
            elif isinstance(event, NodeDown) and event.node in self._peers:
                del self._peers[event.node]
                self.presence.forget(event.node)
                self._emit(self.state())
                self._notice(f"{event.node} left ({event.reason})")

    async def _follow_room(self, room: Subscription) -> None:
        async for term in room:
            message = from_term(term)
            if message is None:
                log.debug("%s: not a chat message on %s: %r", self.name, TOPIC, term)
                continue
            self._emit({"type": "message", **message})

    async def _follow_people(self, people: Subscription) -> None:
        async for term in people:
            if self.presence.heard(term):
                self._emit(self.state())

    async def _announce(self, pubsub: PubSub) -> None:
        """Broadcast this node's people when they change, when a node joins the PubSub
        (it has not heard them yet) and every PRESENCE_REFRESH seconds; tell the pages
        when the PubSub's members change."""
        loop = asyncio.get_running_loop()
        known: set[str] = set()
        last = -PRESENCE_REFRESH
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PRESENCE_POLL):
                    await self._people_changed.wait()
            remote = set(pubsub.remote_nodes())
            if remote != known:
                self._emit(self.state())  # a node joined or left the room
            due = self._people_changed.is_set() or not remote <= known
            known = remote
            if due or loop.time() - last >= PRESENCE_REFRESH:
                self._people_changed.clear()
                last = loop.time()
                await pubsub.broadcast(PRESENCE_TOPIC, self.presence.announcement())
