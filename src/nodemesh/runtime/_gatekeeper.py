"""The accept path: holds each new socket until its first handshake message (asyncio).

The listening server's protocol factory is :meth:`Gatekeeper.accept`. It counts the
socket as a pending handshake at once (:class:`~nodemesh.runtime._admission.Admission`
decides whom to evict) and returns a small :class:`_Gate` protocol. The gate closes
the socket if no complete first message (``send_name``, erl_dist_protocol) arrives
within ``handshake_first_message_timeout``; when one does, it hands the socket to a
:class:`~nodemesh.runtime._connection.Connection` (``transport.set_protocol``), which
runs the handshake under ``connect_timeout``. The slot is freed when the handshake
ends. Silent sockets never cost a Connection. Warnings are rate-limited per cause.

With TLS the gate first upgrades the accepted TCP socket (``loop.start_tls``, as
inet_tls_dist's ``ssl:handshake`` on the accepted socket) and then waits for the first
message inside TLS, with 4-byte lengths; ``handshake_first_message_timeout`` covers
both. The upgrade is ours rather than ``create_server(ssl=...)``'s because asyncio
drops a failed server-side TLS handshake without a word (and without telling the
protocol), and the log must say who rejected whom.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from collections.abc import Callable, Coroutine
from typing import Any, cast

from nodemesh.errors import NodemeshError
from nodemesh.runtime._admission import Admission, AdmissionStatistics, first_message_complete
from nodemesh.runtime._connection import Connection, RefusedError
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.ratelimit import RateLimitedLog
from nodemesh.runtime.tls import TlsContexts, describe_tls_failure

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
TLS_FAILED = "TLS handshakes failed"

Spawn = Callable[[Coroutine[Any, Any, Any], str], None]


class Gatekeeper:
    """Admits incoming distribution connections; ``accept`` is the protocol factory.

    ``make_connection`` builds the accepting :class:`Connection`; ``is_connected`` tells
    a lost simultaneous-connect race (logged at debug) from a failure. With ``tls``,
    each socket's TLS upgrade runs as a task given to ``spawn`` (the node's TaskHost).
    """

    def __init__(
        self,
        config: NodeConfig,
        make_connection: Callable[[], Connection],
        is_connected: Callable[[str], bool],
        tls: TlsContexts | None = None,
        spawn: Spawn | None = None,
    ) -> None:
        self._config = config
        self._make_connection = make_connection
        self._is_connected = is_connected
        self.tls = tls  # set before the server starts; None: plain TCP
        self._spawn = spawn
        self._admission: Admission[_Gate] = Admission(
            config.max_pending_handshakes, config.max_pending_handshakes_per_address
        )
        self.warnings = RateLimitedLog(log, config.warning_interval)

    @property
    def prefix_width(self) -> int:
        """Bytes of the first message's length: 4 inside TLS ({packet, 4}), else 2."""
        return 2 if self.tls is None else 4

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

    def _upgrade(self, gate: _Gate, transport: asyncio.Transport) -> None:
        assert self.tls is not None and self._spawn is not None
        self._spawn(self._start_tls(gate, transport, self.tls), f"tls accept {gate.peer}")

    async def _start_tls(self, gate: _Gate, raw: asyncio.Transport, tls: TlsContexts) -> None:
        """Run the server side of the TLS handshake, then let the gate read inside TLS.
        A failure is logged (who rejected whom) and the socket closed."""
        loop = asyncio.get_running_loop()
        try:
            upgraded = await loop.start_tls(
                raw,
                gate,
                tls.server(),
                server_side=True,
                ssl_handshake_timeout=self._config.connect_timeout,
            )
        except OSError as exc:  # ssl.SSLError, ConnectionResetError, ...
            if not gate.shut:  # else evicted or silent: already counted and logged
                text = describe_tls_failure(exc, peer=gate.peer, we_dialed=False)
                # Rate-limited per kind of failure, so one kind cannot hide another.
                reason = getattr(exc, "reason", None)
                cause = f"{TLS_FAILED} ({type(exc).__name__}{f' {reason}' if reason else ''})"
                self.warnings.warning(cause, "TLS connection from %s refused: %s", gate.peer, text)
            self._admission.release(gate)
            gate.close()
            return
        if upgraded is None or gate.shut:  # closed during the upgrade
            self._admission.release(gate)
            return
        gate.upgraded(upgraded)

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
        self._tls_pending = False  # the TLS upgrade runs: bytes wait for its transport
        self.shut = False  # closed by us (evicted, silent, node stopping)
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
        if self.keeper.tls is not None and not self._closed:
            # start_tls takes the socket over in the task's first step, which runs before
            # any read callback of this new socket (both are queued behind this call), so
            # every byte we get from now on comes decrypted, through the TLS layer.
            self._tls_pending = True
            self.keeper._upgrade(self, transport)

    def upgraded(self, transport: asyncio.Transport) -> None:
        """The TLS handshake is done: bytes already decrypted may complete the message."""
        self._tls_pending = False
        self.transport = transport
        self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._tls_pending:  # the TLS layer passes data on before start_tls returns
            return
        if self.transport is not None and first_message_complete(
            self._buffer, self.keeper.prefix_width
        ):
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
        self._closed = self.shut = True
        self._cancel_timer()
        if self.conn is not None:
            self.conn.close("handshake_evicted")
        elif self.transport is not None:
            self.transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
