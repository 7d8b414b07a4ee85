"""The accept path: holds each new socket until its first handshake message (asyncio).

The listening server's protocol factory is :meth:`Gatekeeper.accept`. It counts the
socket as a pending handshake at once (:class:`~nodemesh.runtime._admission.Admission`
decides whom to evict) and returns a small :class:`_Gate` protocol. The gate closes
the socket if no complete first message (``send_name``, erl_dist_protocol) arrives
within ``handshake_first_message_timeout``; when one does, it hands the socket to a
:class:`~nodemesh.runtime._connection.Connection` (``transport.set_protocol``), which
runs the handshake under ``connect_timeout``. The slot is freed when the handshake
ends. Silent sockets never cost a Connection. Warnings are rate-limited per cause.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from collections.abc import Callable
from typing import Any, cast

from nodemesh.errors import NodemeshError
from nodemesh.runtime._admission import Admission, AdmissionStatistics, first_message_complete
from nodemesh.runtime._connection import Connection, RefusedError
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.ratelimit import RateLimitedLog

try:
    import fcntl
    import termios

    _FIONREAD: int | None = termios.FIONREAD
except ImportError:  # pragma: no cover - Windows: no peeking, plain oldest-first
    _FIONREAD = None

__all__ = ["Gatekeeper"]

log = logging.getLogger("nodemesh.node")

EVICTED = "pending handshakes evicted (max_pending_handshakes)"
EVICTED_PER_ADDRESS = "pending handshakes evicted (max_pending_handshakes_per_address)"
SILENT = "connections closed without a handshake (handshake_first_message_timeout)"


class Gatekeeper:
    """Admits incoming distribution connections; ``accept`` is the protocol factory.

    ``make_connection`` builds the accepting :class:`Connection`; ``is_connected`` tells
    a lost simultaneous-connect race (logged at debug) from a failure.
    """

    def __init__(
        self,
        config: NodeConfig,
        make_connection: Callable[[], Connection],
        is_connected: Callable[[str], bool],
    ) -> None:
        self._config = config
        self._make_connection = make_connection
        self._is_connected = is_connected
        self._admission: Admission[_Gate] = Admission(
            config.max_pending_handshakes, config.max_pending_handshakes_per_address
        )
        self.warnings = RateLimitedLog(log, config.warning_interval)

    @property
    def pending(self) -> int:
        """Handshakes in progress on accepted sockets."""
        return len(self._admission)

    def statistics(self) -> AdmissionStatistics:
        """Pending now, the peak, admitted and evicted since the start."""
        return self._admission.statistics()

    def accept(self) -> asyncio.Protocol:
        """The server's protocol factory: one call per accepted socket."""
        gate = _Gate(self)
        self._evict(self._admission.admit(gate, _has_unread_bytes), EVICTED)
        return gate

    def close(self) -> None:
        """Close every pending handshake (the node is stopping)."""
        for gate in self._admission:
            self._admission.release(gate)
            gate.close()
        self.warnings.close()

    # -- called by gates ---------------------------------------------------------------
    def _identified(self, gate: _Gate, address: str) -> None:
        victims = self._admission.identify(gate, address, _has_unread_bytes)
        self._evict(victims, EVICTED_PER_ADDRESS)

    def _silent(self, gate: _Gate) -> None:
        if self._admission.release(gate):
            timeout = self._config.handshake_first_message_timeout
            self.warnings.warning(
                SILENT, "%s sent no handshake within %g s; closed", gate.peer, timeout
            )
            gate.close()

    def _talking(self, gate: _Gate, transport: asyncio.Transport, data: bytes) -> None:
        """Hand the socket over to a Connection, which sees ``data`` as its first bytes."""
        self._admission.progressed(gate)
        conn = self._make_connection()
        gate.conn = conn
        conn.established.add_done_callback(lambda done: self._settled(gate, done))
        transport.set_protocol(conn)
        conn.connection_made(transport)
        conn.data_received(data)

    def _gone(self, gate: _Gate) -> None:
        self._admission.release(gate)

    def _settled(self, gate: _Gate, done: asyncio.Future[Connection]) -> None:
        if not self._admission.release(gate) or done.cancelled():
            return  # evicted (already counted) or the node is stopping
        exc = done.exception()
        if exc is None or not isinstance(exc, NodemeshError):
            return
        conn = gate.conn
        peer = conn.peer if conn is not None and conn.peer else gate.peer
        # Losing a simultaneous-connect race, or answering nok/not_allowed to the peer's
        # name (RefusedError), is normal: debug only.
        lost_race = conn is not None and self._is_connected(conn.peer)
        if lost_race or isinstance(exc, RefusedError):
            log.debug("handshake with %s ended: %s", peer, exc)
            return
        cause = f"handshakes failed: {type(exc).__name__}"
        self.warnings.warning(cause, "handshake with %s failed: %s", peer, exc)

    def _evict(self, victims: list[_Gate], cause: str) -> None:
        for victim in victims:
            if cause == EVICTED:
                what = f"{self._config.max_pending_handshakes} handshakes pending"
            else:
                what = f"{self._config.max_pending_handshakes_per_address} from one address"
            self.warnings.warning(cause, "%s; closed the oldest, from %s", what, victim.peer)
            victim.close()


def _has_unread_bytes(gate: _Gate) -> bool:
    """True if the kernel holds bytes from this peer that we have not read yet."""
    return gate.transport is not None and unread_bytes(gate.transport) > 0


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """Bytes waiting in the socket's receive queue (``FIONREAD``); 0 where unknown."""
    sock = transport.get_extra_info("socket")
    if sock is None or _FIONREAD is None:
        return 0
    try:
        answer = fcntl.ioctl(sock.fileno(), _FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", answer)[0])


def source_of(address: str) -> str:
    """What the per-address limit counts: the IPv4 address (also when IPv4-mapped), or
    the IPv6 /64, since one IPv6 host usually holds a whole /64 to choose from."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Gate(asyncio.Protocol):
    """One accepted socket until its first handshake message arrives."""

    def __init__(self, keeper: Gatekeeper) -> None:
        self.keeper = keeper
        self.peer = "unknown peer"
        self.conn: Connection | None = None
        self.transport: asyncio.Transport | None = None  # kept after the hand-over
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        if self._closed:  # evicted between accept and now (asyncio accepts in batches)
            transport.abort()
            return
        self.transport = transport
        info: Any = transport.get_extra_info("peername")
        self.peer = f"{info[0]}:{info[1]}" if info else "unknown peer"
        timeout = self.keeper._config.handshake_first_message_timeout
        self._timer = asyncio.get_running_loop().call_later(timeout, self.keeper._silent, self)
        self.keeper._identified(self, source_of(str(info[0]) if info else "?"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self.transport is not None and first_message_complete(self._buffer):
            self._cancel_timer()
            self.keeper._talking(self, self.transport, bytes(self._buffer))
            self._buffer.clear()

    def eof_received(self) -> bool:
        log.debug("%s closed before its first handshake message", self.peer)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_timer()
        self.keeper._gone(self)

    def close(self) -> None:
        """Close the socket, or the handshake it was handed to."""
        self._closed = True
        self._cancel_timer()
        if self.conn is not None:
            self.conn.close("handshake_evicted")
        elif self.transport is not None:
            self.transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
