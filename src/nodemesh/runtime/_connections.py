"""The node's connections: who is connected, who is being dialed, who is handshaking.

:class:`ConnectionTable` is the :class:`~nodemesh.runtime._connection.ConnectionOwner`
every connection talks to. It knows nothing of mailboxes: what arrives goes to the
``receive`` callable it was given, and ``nodeup``/``nodedown`` to ``on_up``/``on_down``
(net_kernel's bookkeeping, without its process).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nodemesh.dist.events import ControlEvent, Message
from nodemesh.dist.handshake import simultaneous_status
from nodemesh.errors import NodeDownError
from nodemesh.runtime._connection import Connection
from nodemesh.runtime.config import NodeConfig
from nodemesh.term.codec import TermCodec

__all__ = ["ConnectionTable"]

log = logging.getLogger("nodemesh.node")

Receive = Callable[[Connection, Message | ControlEvent], None]


class ConnectionTable:
    """Connections by peer name, dials in flight, and handshakes in progress."""

    def __init__(
        self,
        name: str,
        cookie: str,
        config: NodeConfig,
        *,
        codec: TermCodec | None = None,
        receive: Receive,
        on_up: Callable[[str], None],
        on_down: Callable[[str, str], None],
    ) -> None:
        self._name, self._cookie, self._config = name, cookie, config
        # How every connection reads terms: the node's none atom and decode limits.
        self.codec = codec or TermCodec(none_atom=config.none_atom, limits=config.decode_limits)
        self.creation = 0  # set once EPMD (or the EPMD-less start) gave one
        self.closing = False
        self.receive = receive  # the node's dispatcher, called per message: no hop
        self._on_up, self._on_down = on_up, on_down
        self.connections: dict[str, Connection] = {}
        self.pending: dict[str, asyncio.Future[Connection]] = {}
        self.handshaking: set[Connection] = set()

    # -- ConnectionOwner ---------------------------------------------------------------
    @property
    def config(self) -> NodeConfig:
        return self._config

    @property
    def name(self) -> str:
        return self._name

    @property
    def cookie(self) -> str:
        return self._cookie

    def name_status(self, peer: str) -> str:
        """``erl_dist_protocol`` send_status: ``not_allowed`` while closing, ``alive``
        when connected already, the simultaneous-connect tie-break while we dial."""
        if self.closing:
            return "not_allowed"
        if peer in self.connections:
            return "alive"
        future = self.pending.get(peer)
        if future is not None and not future.done():
            return simultaneous_status(self._name, peer)
        return "ok"

    def is_connected(self, peer: str) -> bool:
        return peer in self.connections

    def handshake_started(self, conn: Connection) -> None:
        self.handshaking.add(conn)

    def handshake_ended(self, conn: Connection) -> None:
        self.handshaking.discard(conn)

    def connection_up(self, conn: Connection) -> bool:
        peer = conn.peer
        if self.closing:
            return False
        old = self.connections.get(peer)
        if old is not None and old is not conn:
            old.close("replaced")
        self.connections[peer] = conn
        future = self.pending.pop(peer, None)
        if future is not None and not future.done():
            future.set_result(conn)
        log.info("nodeup %s", peer)
        self._on_up(peer)
        return True

    def connection_down(self, conn: Connection, reason: str) -> None:
        peer = conn.peer
        if not peer or self.connections.get(peer) is not conn:
            return  # a replaced or never-established connection: no nodedown
        del self.connections[peer]
        log.info("nodedown %s (%s)", peer, reason)
        self._on_down(peer, reason)

    # -- used by the node and the transport --------------------------------------------
    def get(self, peer: str) -> Connection | None:
        """The connection to ``peer``, or None."""
        return self.connections.get(peer)

    def connected(self, peer: str) -> Connection:
        """The connection to ``peer``; raises :class:`NodeDownError` if there is none."""
        conn = self.connections.get(peer)
        if conn is None:
            raise NodeDownError(f"not connected to {peer}")
        return conn

    def dial_future(self, peer: str) -> tuple[asyncio.Future[Connection], bool]:
        """The future of the dial to ``peer``, and True if the caller must start it."""
        future = self.pending.get(peer)
        if future is not None:
            return future, False
        future = asyncio.get_running_loop().create_future()
        self.pending[peer] = future
        return future, True

    def dial_failed(
        self, peer: str, future: asyncio.Future[Connection], error: NodeDownError
    ) -> None:
        """The dial behind ``future`` failed with ``error``."""
        if self.pending.get(peer) is future:
            del self.pending[peer]
        if not future.done():
            future.set_exception(error)
            future.exception()  # may have no waiter left (a send that timed out)

    async def aclose(self, close_timeout: float) -> None:
        """Refuse newcomers, fail dials in flight, close handshakes at once, and flush
        established connections for up to ``close_timeout`` seconds before aborting them."""
        self.closing = True
        for peer, future in list(self.pending.items()):
            self.dial_failed(peer, future, NodeDownError(f"{self._name} is closing"))
        for conn in list(self.handshaking):
            conn.close("shutdown")
        connections = list(self.connections.values())
        for conn in connections:
            conn.close("shutdown", flush=True)
        try:
            async with asyncio.timeout(close_timeout):
                for conn in connections:
                    await conn.wait_closed()
        except TimeoutError:
            for conn in connections:
                conn.close("shutdown")  # a peer that does not read: abort
            for conn in connections:
                await conn.wait_closed()
