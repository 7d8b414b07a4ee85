"""One distribution connection: handshake, then frames and ticks (asyncio shell).

The protocol work is done by the sans-I/O pieces: :mod:`nodemesh.dist.handshake` until
the peer is authenticated, then :class:`~nodemesh.dist.framing.FrameReader`,
:func:`nodemesh.dist.control.read` and :class:`~nodemesh.dist.liveness.Liveness` (ticks,
driven by ``loop.time()``). This module only moves bytes and keeps time.

A connection does not know the node: it talks to a :class:`ConnectionOwner`, the way
OTP's ``dist_util`` talks to ``net_kernel`` through a record of callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import sys
from typing import TYPE_CHECKING, Any, Protocol, cast

from nodemesh.dist import control, handshake
from nodemesh.dist.detector import PROFILES, FastDetector
from nodemesh.dist.events import ControlEvent, Message
from nodemesh.dist.flags import DistFlag, default_flags
from nodemesh.dist.framing import TICK, FrameReader
from nodemesh.dist.liveness import Liveness, LivenessAction
from nodemesh.errors import (
    HandshakeError,
    NodemeshError,
    ProtocolError,
    RemoteProtocolError,
    SupersededError,
)
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.tls import tls_dial_lost
from nodemesh.term.codec import TermCodec

if TYPE_CHECKING:
    from nodemesh.runtime.mailbox import Mailbox

__all__ = ["Connection", "ConnectionOwner", "RefusedError"]

log = logging.getLogger("nodemesh.node")

# struct tcp_info (linux/tcp.h): 8 one-byte fields, 24 u32, 4 u64, then segs_out, segs_in,
# notsent_bytes, min_rtt (u32), and tcpi_data_segs_in at byte 152.
_DATA_SEGS_IN = 152
_TCP_INFO_SIZE = 256
#: Gathered frames are written at once past this many bytes (see Connection.write).
_GATHER_LIMIT = 65536
#: Connection._gathered after a write that went at once: the next one starts a list (one
#: made per burst, not per write). Never appended to: the burst's list replaces it.
_OPEN: Any = ()


def _challenge() -> int:
    return secrets.randbits(32)


def _no_delay(transport: asyncio.Transport) -> None:
    """Send small frames at once (Nagle off), as Erlang's distribution does
    (``inet_tcp_dist`` listens and connects with ``{nodelay, true}``). asyncio sets it
    itself only on sockets whose ``proto`` says TCP, which accepted sockets do not."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # closed meanwhile: connection_lost follows
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class RefusedError(HandshakeError):
    """We answered the peer's name with ``nok`` or ``not_allowed`` (our own connection to
    it wins the tie-break, or we are closing): normal, not the peer's fault."""


class ConnectionOwner(Protocol):
    """What a :class:`Connection` needs from whoever holds it (the node's connection
    table): who we are, whether a peer may connect, and where events go."""

    @property
    def config(self) -> NodeConfig: ...
    @property
    def name(self) -> str: ...
    @property
    def cookie(self) -> str: ...
    @property
    def creation(self) -> int: ...
    @property
    def codec(self) -> TermCodec:
        """How terms are read: the node's decode limits and which atom is None."""
        ...

    def name_status(self, peer: str) -> str:
        """The handshake status for an incoming connection from ``peer``."""
        ...

    def is_connected(self, peer: str) -> bool: ...
    def handshake_started(self, conn: Connection) -> None: ...
    def handshake_ended(self, conn: Connection) -> None: ...

    def connection_up(self, conn: Connection) -> bool:
        """The handshake completed; False tells the connection to close."""
        ...

    def connection_down(self, conn: Connection, reason: str) -> None: ...

    def receive(self, conn: Connection, item: Message | ControlEvent) -> None:
        """Act on one message or control event from ``conn``'s peer."""
        ...


class Connection(asyncio.Protocol):
    """A distribution connection, from the TCP connect to the close.

    ``dialed`` is the node name we connect to (initiator), or None for an accepted
    connection. ``established`` resolves when the handshake completes or fails.
    """

    def __init__(self, owner: ConnectionOwner, dialed: str | None) -> None:
        self._owner = owner
        config = owner.config
        self._config = config
        self.peer = dialed or ""
        self.outgoing = bool(dialed)  # we dialed it (incoming ones pass the gatekeeper)
        self.peer_flags = DistFlag(0)
        self.closed = False
        self.paused = False
        self._transport: asyncio.Transport | None = None
        self._reader = FrameReader(config.max_frame_size)
        loop = asyncio.get_running_loop()
        self.established: asyncio.Future[Connection] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()
        self._drain: asyncio.Future[None] | None = None
        self._reason = "connection_closed"
        self._heard = True
        self._spoke = False
        self._liveness: Liveness | None = None
        self._detector: FastDetector | None = None  # failure_detector="fast" only
        self._ticker: asyncio.TimerHandle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._held: Mailbox | None = None  # reading paused until it drains (hold_for)
        self._stashed: list[bytes] = []  # frames read before the hold, in order
        flags = default_flags(visible=not config.hidden)
        name, cookie, creation = owner.name, owner.cookie, owner.creation
        # Inside TLS the handshake has 4-byte lengths (inet_tls_dist's {packet, 4}).
        width = 2 if config.tls is None else 4
        self._hs: handshake.Initiator | handshake.Acceptor | None
        if dialed:
            self._hs = handshake.Initiator(
                name, cookie, flags, creation, _challenge, expected_peer=dialed, prefix_width=width
            )
        else:
            self._hs = handshake.Acceptor(
                name, cookie, flags, creation, _challenge, prefix_width=width
            )

    def __repr__(self) -> str:
        return f"<Connection {self.peer or '?'} closed={self.closed}>"

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        self._transport = transport
        transport.set_write_buffer_limits(high=self._config.write_high_water)
        _no_delay(transport)
        self._owner.handshake_started(self)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._config.connect_timeout, self._handshake_timeout)
        self._flush_handshake()

    def data_received(self, data: bytes) -> None:
        self._heard = True
        if self._hs is None:
            if not self._flush_due:  # nothing gathered: the next write goes at once
                self._gathered = None
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
        if self._ticker is not None:
            self._ticker.cancel()
        self._owner.handshake_ended(self)
        if self._hs is not None:
            state = self._hs.state
            try:
                self._hs.connection_lost()
                error: NodemeshError = HandshakeError("connection closed during the handshake")
            except (HandshakeError, ProtocolError) as raised:
                error = raised
            if self._config.tls is not None and self.outgoing:
                peer = self.peer or self._peername()
                before = state is handshake.HandshakeState.AWAIT_STATUS
                text = tls_dial_lost(exc, peer=peer, before_answer=before)
                if text is not None:
                    log.warning("TLS connection to %s failed: %s", peer, text)
                    error = HandshakeError(text)
            self._fail_handshake(error)
        elif self.established.done():
            self._owner.connection_down(self, self._reason)
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake_drain()
        self._gathered = None  # what was gathered is lost with the socket, as queued bytes are
        if self._held is not None:
            self._held.cancel_drained_callback(self._schedule_release)
            self._held, self._stashed = None, []

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain()

    # -- used by the node --------------------------------------------------------------
    def write(self, frame: bytes) -> None:
        """Queue one frame (built by :mod:`nodemesh.dist.control`).

        A frame written after a read from the peer (or the first) goes to the socket at
        once; one written after another with no read in between is gathered with those
        that follow it, and they go out together when the loop comes round (or at once
        past ``_GATHER_LIMIT`` bytes, so ``pause_writing`` still reaches a sender that
        never yields). A burst of small messages then costs one socket write, not one
        each (the kernel's work per ``send()`` on loopback was most of a Python sender's
        time), while request and reply traffic, which alternates writes and reads,
        schedules nothing: a callback per write cost a turn of the loop per call.
        """
        gathered = self._gathered
        if gathered is None:
            transport = self._transport
            if transport is None or self.closed:
                return
            transport.write(frame)
            self._spoke = True
            self._gathered = _OPEN  # the next write, unless a read comes first, is gathered
            return
        if not self._flush_due:  # nothing gathered yet (_OPEN, or [] after a flush)
            self._flush_due = True
            self.established.get_loop().call_soon(self._end_gathering)
            gathered = self._gathered = []
        gathered.append(frame)
        self._gathered_size += len(frame)
        if self._gathered_size > _GATHER_LIMIT:
            self._flush_gathered()

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
            self._flush_gathered()
            self._transport.close()
        else:
            self._transport.abort()

    @property
    def held(self) -> bool:
        """True while reading is paused because a mailbox is full (:meth:`hold_for`)."""
        return self._held is not None

    def hold_for(self, mailbox: Mailbox) -> None:
        """Deliver nothing more from this peer until ``mailbox`` has drained to half its
        bound or closed: reading pauses, so TCP pushes back on the sending node (the
        never-drop policy of :mod:`nodemesh.runtime.mailbox`). Frames already read wait,
        in order, and are delivered first on release."""
        if self._held is not None or self.closed or self._transport is None:
            return
        self._held = mailbox
        self.pause_reading()
        mailbox.call_when_drained(self._schedule_release)

    def _schedule_release(self) -> None:
        # Called from inside the receiver's receive(): deliver later, from the loop.
        self.established.get_loop().call_soon(self._release)

    def _release(self) -> None:
        if self._held is None or self.closed or self._transport is None:
            return
        self._held = None
        stashed, self._stashed = self._stashed, []
        self._dispatch_frames(stashed)
        if self._held is None and not self.closed:
            self.resume_reading()

    async def wait_closed(self) -> None:
        """Wait until the socket is closed."""
        await asyncio.shield(self._closed)

    def pause_reading(self) -> None:
        """Stop reading the socket (TCP then pushes back on the peer). The peer's
        silence meanwhile is ours: it is not declared down for it."""
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()
        if self._liveness is not None:
            self._liveness.pause_reading()
        if self._detector is not None:
            self._detector.pause_reading()

    def resume_reading(self) -> None:
        """Read the socket again after :meth:`pause_reading`."""
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()
        now = asyncio.get_running_loop().time()
        if self._liveness is not None:
            self._liveness.resume_reading(now)
        if self._detector is not None:
            self._detector.resume_reading(now)

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
                status = self._owner.name_status(event.peer_name)
                self._hs.accept_name(status)
                self._flush_handshake()
                if status not in ("ok", "ok_simultaneous", "alive"):
                    # nok: our own connection to this peer wins; not_allowed: shutting down.
                    log.debug("refused connection from %s (%s)", event.peer_name, status)
                    self._hs = None
                    self.established.set_exception(RefusedError(f"refused: {status}"))
                    self.established.exception()
                    self._close_after_flush()
                    return
            elif isinstance(event, handshake.AliveQuery):
                # The peer thinks we are still connected; we are not, or we would not dial.
                assert isinstance(self._hs, handshake.Initiator)
                self._hs.answer_alive(not self._owner.is_connected(self.peer))
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
        self._owner.handshake_ended(self)
        if self._timer is not None:
            self._timer.cancel()
        # A stale connection of the same name is replaced inside connection_up, before
        # our last handshake message goes out (dist_util's wait_pending).
        if not self._owner.connection_up(self):
            self.close("shutdown")
            return
        if pending_out and self._transport is not None:
            self._transport.write(pending_out)
        self.established.set_result(self)
        now = asyncio.get_running_loop().time()
        self._liveness = Liveness(self._config.net_ticktime, now)
        profile = PROFILES[self._config.failure_detector]
        if profile is not None:
            self._detector = FastDetector(profile, now)
        self._schedule_tick()
        if trailing:
            self._frames(trailing)

    def _fail_handshake(self, exc: NodemeshError) -> None:
        if self._hs is None and self.established.done():
            return
        accepted = isinstance(self._hs, handshake.Acceptor)  # the gatekeeper logs those
        self._hs = None
        if not self.established.done():
            self.established.set_exception(exc)
            self.established.exception()  # retrieved: the dialer may have given up
        if not self.closed:
            # Losing a race to another connection with the same peer is normal.
            lost_race = isinstance(exc, SupersededError) or self._owner.is_connected(self.peer)
            level = logging.DEBUG if lost_race or accepted else logging.WARNING
            log.log(level, "handshake with %s failed: %s", self.peer or self._peername(), exc)
            self.close("handshake_failed")

    def _handshake_timeout(self) -> None:
        self._fail_handshake(
            HandshakeError(f"handshake not completed within {self._config.connect_timeout} s")
        )

    def _close_after_flush(self) -> None:
        if self._transport is not None:
            self._transport.close()  # close() flushes what is buffered, abort() does not

    def _peername(self) -> str:
        info: Any = self._transport.get_extra_info("peername") if self._transport else None
        return f"{info[0]}:{info[1]}" if info else "unknown peer"

    # -- established -------------------------------------------------------------------
    def _frames(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except RemoteProtocolError as exc:
            self._protocol_error(exc)
            return
        self._dispatch_frames(frames)

    def _dispatch_frames(self, frames: list[bytes]) -> None:
        codec = self._owner.codec
        receive = self._owner.receive
        read = control.read
        pending = iter(frames)
        for frame in pending:
            if not frame:  # a tick
                if self._detector is not None:  # its arrival time tells a fast peer
                    self._detector.tick_received(self.established.get_loop().time())
                continue
            try:
                item = read(frame, codec)
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            try:
                receive(self, item)
            except Exception:  # a bug in our handling of one message; keep the link
                log.exception("error handling %.80r from %s", item, self.peer)
            if self._held is not None:  # a mailbox filled up: the rest waits, in order
                self._stashed.extend(pending)
                return

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        log.warning("dropping connection to %s: %s", self.peer, exc)
        self.close("protocol_error")

    def _schedule_tick(self) -> None:
        assert self._liveness is not None
        loop = asyncio.get_running_loop()
        due = self._liveness.next_poll()
        if self._detector is not None:
            due = min(due, self._detector.next_poll())
        self._ticker = loop.call_at(due, self._tick)

    def _tick(self) -> None:
        liveness = self._liveness
        if self.closed or liveness is None:
            return
        now = asyncio.get_running_loop().time()
        # Reported here rather than per frame: the logic counts intervals, and a clock
        # read per message would cost on the message path.
        if self._heard:
            liveness.received(now)
        if self._spoke:
            liveness.sent(now)
        detector = self._detector
        if detector is not None and self._heard:
            detector.received(now)
        elif detector is not None and detector.suspected:
            detector.segments_received(self._data_segments_in(), now)
        self._heard = self._spoke = False
        action = liveness.poll(now)
        if action is LivenessAction.PEER_DOWN:
            log.warning("%s did not answer within net_ticktime; disconnecting", self.peer)
            self.close("net_tick_timeout")
            return
        if detector is not None and now + 0.001 >= detector.next_poll():
            if self._fast_peer_down(detector, now):
                return
            action = LivenessAction.SEND_TICK  # the fast profile ticks every interval
        if action is LivenessAction.SEND_TICK and self._transport is not None:
            self._transport.write(TICK)
            liveness.sent(now)
        self._schedule_tick()

    def _fast_peer_down(self, detector: FastDetector, now: float) -> bool:
        """The fast profile's poll; True when it closed the connection."""
        if detector.poll(now) is not LivenessAction.PEER_DOWN:
            return False
        silent = detector.silence(now)
        log.warning("%s silent for %.2f s (fast detector); disconnecting", self.peer, silent)
        self.close("net_tick_timeout")
        return True

    def _data_segments_in(self) -> int | None:
        """``TCP_INFO``'s ``tcpi_data_segs_in`` (Linux 4.6+): data segments the kernel
        received on this socket, in order or not; None where it cannot be read."""
        sock = self._transport.get_extra_info("socket") if self._transport else None
        if sock is None or not hasattr(socket, "TCP_INFO"):
            return None
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
        except OSError:
            return None
        if len(info) < _DATA_SEGS_IN + 4:
            return None
        return int.from_bytes(info[_DATA_SEGS_IN : _DATA_SEGS_IN + 4], sys.byteorder)

    @property
    def fast_watched(self) -> bool:
        """The fast profile holds this peer to its sub-second verdict (it ticks fast)."""
        return self._detector is not None and self._detector.trusted

    @property
    def suspected(self) -> bool:
        """The fast profile suspects this peer (silent past the suspicion threshold)."""
        return self._detector is not None and self._detector.suspected

    # -- gathering writes (see write) ---------------------------------------------------
    _gathered: list[bytes] | None = None  # None: the next write goes at once; else _OPEN
    _gathered_size = 0
    _flush_due = False  # an _end_gathering is scheduled

    def _flush_gathered(self) -> None:
        """Write what was gathered; gathering goes on until the iteration ends."""
        out = self._gathered
        if not out:
            return
        self._gathered, self._gathered_size = [], 0
        if self._transport is not None and not self.closed:
            self._transport.write(b"".join(out))
            self._spoke = True

    def _end_gathering(self) -> None:
        self._flush_due = False
        self._flush_gathered()
        self._gathered = None

    def _wake_drain(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
