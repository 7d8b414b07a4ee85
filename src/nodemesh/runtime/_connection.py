"""One distribution connection: handshake, then frames and ticks (asyncio shell).

The protocol work is done by the sans-I/O pieces: :mod:`nodemesh.dist.handshake` until
the peer is authenticated, then :class:`~nodemesh.dist.framing.FrameReader` and
:func:`nodemesh.dist.control.parse`. This module only moves bytes and keeps time.

Liveness follows Erlang's net_kernel: every ``net_ticktime / 4`` seconds we send a tick
if we sent nothing else, and a peer from which nothing arrived in four consecutive
intervals is declared down (``net_tick_timeout``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any

from nodemesh.dist import control, handshake
from nodemesh.dist.flags import DistFlag, default_flags
from nodemesh.dist.framing import TICK, FrameReader
from nodemesh.errors import (
    HandshakeError,
    NodemeshError,
    ProtocolError,
    RemoteProtocolError,
    SupersededError,
)
from nodemesh.runtime._dispatch import dispatch

if TYPE_CHECKING:
    from nodemesh.runtime.node import Node

__all__ = ["Connection"]

log = logging.getLogger("nodemesh.node")

SILENT_INTERVALS = 4  # net_kernel declares a peer down after 4 silent tick intervals


def _challenge() -> int:
    return secrets.randbits(32)


class Connection(asyncio.Protocol):
    """A distribution connection, from the TCP connect to the close.

    ``dialed`` is the node name we connect to (initiator), or None for an accepted
    connection. ``established`` resolves when the handshake completes or fails.
    """

    def __init__(self, node: Node, dialed: str | None) -> None:
        self._node = node
        self.peer = dialed or ""
        self.peer_flags = DistFlag(0)
        self.closed = False
        self.paused = False
        self._transport: asyncio.Transport | None = None
        self._reader = FrameReader(node.config.max_frame_size)
        loop = asyncio.get_running_loop()
        self.established: asyncio.Future[Connection] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()
        self._drain: asyncio.Future[None] | None = None
        self._reason = "connection_closed"
        self._heard = True
        self._spoke = False
        self._silent = 0
        self._timer: asyncio.TimerHandle | None = None
        flags = default_flags(visible=not node.config.hidden)
        self._hs: handshake.Initiator | handshake.Acceptor | None
        if dialed:
            self._hs = handshake.Initiator(
                node.name, node.cookie, flags, node.creation, _challenge, expected_peer=dialed
            )
        else:
            self._hs = handshake.Acceptor(node.name, node.cookie, flags, node.creation, _challenge)

    def __repr__(self) -> str:
        return f"<Connection {self.peer or '?'} closed={self.closed}>"

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=self._node.config.write_high_water)
        self._node._handshaking.add(self)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._node.config.connect_timeout, self._handshake_timeout)
        self._flush_handshake()

    def data_received(self, data: bytes) -> None:
        self._heard = True
        if self._hs is None:
            self._frames(data)
            return
        try:
            self._hs.receive_data(data)
            self._pump_handshake()
        except (HandshakeError, ProtocolError) as exc:
            self._fail_handshake(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._node._handshaking.discard(self)
        if self._hs is not None:
            try:
                self._hs.connection_lost()
                error: NodemeshError = HandshakeError("connection closed during the handshake")
            except (HandshakeError, ProtocolError) as raised:
                error = raised
            self._fail_handshake(error)
        elif self.established.done():
            self._node._connection_down(self, self._reason)
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake_drain()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain()

    # -- used by the node --------------------------------------------------------------
    def write(self, frame: bytes) -> None:
        """Queue one frame (built by :mod:`nodemesh.dist.control`)."""
        if self._transport is not None and not self.closed:
            self._transport.write(frame)
            self._spoke = True

    async def drain(self) -> None:
        """Wait until the socket's write buffer is below its high-water mark."""
        while self.paused and not self.closed:
            if self._drain is None or self._drain.done():
                self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    def close(self, reason: str = "disconnect", *, flush: bool = False) -> None:
        """Close the connection; the node sees ``nodedown`` with ``reason``.

        With ``flush`` what is already queued is sent first (a peer that never reads can
        hold that forever: callers bound it and call again without ``flush``).
        """
        self._reason = reason
        if self._transport is None:
            return
        if flush:
            self._transport.close()
        else:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the socket is closed."""
        await asyncio.shield(self._closed)

    # -- handshake ---------------------------------------------------------------------
    def _flush_handshake(self) -> None:
        if self._hs is not None and self._transport is not None:
            out = self._hs.data_to_send()
            if out:
                self._transport.write(out)

    def _pump_handshake(self) -> None:
        while self._hs is not None:
            event = self._hs.next_event()
            if event is handshake.NEED_DATA:
                self._flush_handshake()
                return
            if isinstance(event, handshake.NameReceived):
                assert isinstance(self._hs, handshake.Acceptor)
                self.peer = event.peer_name
                status = self._node._name_status(event.peer_name)
                self._hs.accept_name(status)
                self._flush_handshake()
                if status not in ("ok", "ok_simultaneous", "alive"):
                    # nok: our own connection to this peer wins; not_allowed: shutting down.
                    log.debug("refused connection from %s (%s)", event.peer_name, status)
                    self._hs = None
                    self.established.set_exception(HandshakeError(f"refused: {status}"))
                    self.established.exception()
                    self._close_after_flush()
                    return
            elif isinstance(event, handshake.AliveQuery):
                # The peer thinks we are still connected; we are not, or we would not dial.
                assert isinstance(self._hs, handshake.Initiator)
                self._hs.answer_alive(not self._node.is_connected(self.peer))
                self._flush_handshake()
            elif isinstance(event, handshake.Superseded):
                raise SupersededError(f"{self.peer} is connecting to us at the same time")
            elif isinstance(event, handshake.Established):
                self._on_established(event)
                return

    def _on_established(self, event: handshake.Established) -> None:
        assert self._hs is not None
        trailing = self._hs.trailing_data()
        pending_out = self._hs.data_to_send()
        self._hs = None
        self.peer = event.peer_name
        self.peer_flags = event.peer_flags
        self._node._handshaking.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        # A stale connection of the same name is replaced inside _connection_up, before
        # our last handshake message goes out (dist_util's wait_pending).
        if not self._node._connection_up(self):
            self.close("shutdown")
            return
        if pending_out and self._transport is not None:
            self._transport.write(pending_out)
        self.established.set_result(self)
        self._schedule_tick()
        if trailing:
            self._frames(trailing)

    def _fail_handshake(self, exc: NodemeshError) -> None:
        if self._hs is None and self.established.done():
            return
        self._hs = None
        if not self.established.done():
            self.established.set_exception(exc)
            self.established.exception()  # retrieved: the dialer may have given up
        if not self.closed:
            # Losing a race to another connection with the same peer is normal.
            lost_race = isinstance(exc, SupersededError) or self._node.is_connected(self.peer)
            level = logging.DEBUG if lost_race else logging.WARNING
            log.log(level, "handshake with %s failed: %s", self.peer or self._peername(), exc)
            self.close("handshake_failed")

    def _handshake_timeout(self) -> None:
        self._fail_handshake(
            HandshakeError(f"handshake not completed within {self._node.config.connect_timeout} s")
        )

    def _close_after_flush(self) -> None:
        if self._transport is not None:
            self._transport.close()  # close() flushes what is buffered, abort() does not

    def _peername(self) -> str:
        info: Any = self._transport.get_extra_info("peername") if self._transport else None
        return f"{info[0]}:{info[1]}" if info else "unknown peer"

    # -- established -------------------------------------------------------------------
    def _frames(self, data: bytes) -> None:
        node = self._node
        try:
            frames = self._reader.feed(data)
        except RemoteProtocolError as exc:
            self._protocol_error(exc)
            return
        limits = node.config.decode_limits
        for frame in frames:
            if not frame:
                continue  # a tick
            try:
                ctrl, payload = control.parse(frame, limits)
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            try:
                dispatch(node, self, ctrl, payload)
            except Exception:  # a bug in our handling of one message; keep the link
                log.exception("error handling %r from %s", ctrl[:1], self.peer)

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        log.warning("dropping connection to %s: %s", self.peer, exc)
        self.close("protocol_error")

    def _schedule_tick(self) -> None:
        interval = self._node.config.net_ticktime / SILENT_INTERVALS
        self._timer = asyncio.get_running_loop().call_later(interval, self._tick)

    def _tick(self) -> None:
        if self.closed:
            return
        if self._heard:
            self._silent = 0
        else:
            self._silent += 1
            if self._silent >= SILENT_INTERVALS:
                log.warning("%s did not answer within net_ticktime; disconnecting", self.peer)
                self.close("net_tick_timeout")
                return
        self._heard = False
        if not self._spoke and self._transport is not None:
            self._transport.write(TICK)
        self._spoke = False
        self._schedule_tick()

    def _wake_drain(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
