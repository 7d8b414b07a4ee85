"""An embedded EPMD: the port mapper inside a Python process, for hosts with no ``epmd``.

It behaves like OTP's ``epmd``: a registration lives exactly as long as the connection
that made it (ALIVE2_REQ); ALIVE2, DUMP and KILL are accepted only from this host;
PORT_PLEASE2 and NAMES are served to anyone, answered, and the connection closed. It
listens on the IPv4 and IPv6 any-address, or on given addresses plus loopback.

A connection that breaks the protocol (garbage, a truncated or oversized request, an
unknown tag) gets one log line on ``nodemesh.epmd`` and is closed; nothing else is
affected. A connection that is not a registration must finish within
``request_timeout`` and holds at most ``max_request_size`` bytes, and at most
``max_connections`` are open at once, so idle or slow clients cannot pile up.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import cast

from nodemesh.epmd.client import default_epmd_port, names_response
from nodemesh.epmd.protocol import (
    MAX_REQUEST_SIZE,
    Alive2Request,
    Alive2Response,
    DumpRequest,
    DumpResponse,
    KillRequest,
    KillResponse,
    NamesRequest,
    NamesResponse,
    NodeInfo,
    Port2Response,
    PortPlease2Request,
    Request,
    RequestParser,
    StopRequest,
)
from nodemesh.epmd.registry import RegisteredNode, Registry, is_local_peer
from nodemesh.errors import ConfigError, EpmdError, ProtocolError, RemoteProtocolError

log = logging.getLogger("nodemesh.epmd")


@dataclass(frozen=True, slots=True)
class EpmdServerConfig:
    """Limits of an :class:`EpmdServer`; raises ConfigError when out of range."""

    request_timeout: float = 10.0  # real epmd's packet_timeout is 60 s
    max_request_size: int = MAX_REQUEST_SIZE
    max_connections: int = 1024
    remembered_names: int = 1000  # epmd's MAX_UNREG_COUNT: names whose creation we keep

    def __post_init__(self) -> None:
        if not self.request_timeout > 0:
            raise ConfigError(f"request_timeout must be > 0, not {self.request_timeout}")
        if self.max_request_size < 64:  # a PORT_PLEASE2_REQ for a long name must fit
            raise ConfigError(f"max_request_size must be >= 64, not {self.max_request_size}")
        if self.max_connections < 1 or self.remembered_names < 0:
            raise ConfigError("max_connections must be >= 1 and remembered_names >= 0")


def _show(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


_LOCAL_ONLY: dict[type, str] = {
    Alive2Request: "ALIVE2_REQ",
    DumpRequest: "DUMP_REQ",
    KillRequest: "KILL_REQ",
}
_Reply = Alive2Response | Port2Response | NamesResponse | DumpResponse | KillResponse


class _Connection(asyncio.Protocol):
    """One client of the server: reads one request, answers it."""

    def __init__(self, server: EpmdServer) -> None:
        self._server = server
        self._parser = RequestParser(server.config.max_request_size)
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._done = False  # answered or dropped: ignore further input
        self.peer = "?"
        self.local = False
        self.registered: RegisteredNode | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        self._transport = transport
        peer, ours = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        if peer is None or ours is None:  # reset before we looked: nothing to serve
            self._done = True
            transport.abort()
            return
        self.peer = _show(peer)
        self.local = is_local_peer(peer[0], ours[0])
        if not self._server._admit(self):
            self._drop(f"{self._server.config.max_connections} connections already open")
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._server.config.request_timeout, self._timed_out)

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        try:
            if self.registered is not None:
                raise RemoteProtocolError(f"{len(data)} unexpected bytes after ALIVE2_REQ")
            requests = self._parser.feed(data)
            if requests:
                self._answer(requests[0], pipelined=len(requests) > 1 or self._parser.pending > 0)
        except ProtocolError as exc:
            self._drop(str(exc))

    def _answer(self, request: Request, *, pipelined: bool) -> None:
        server, registry = self._server, self._server._registry
        local_only = _LOCAL_ONLY.get(type(request))
        if local_only and not self.local:
            self._drop(f"{local_only} refused: it did not come from this host")
            return
        match request:
            case Alive2Request(node=node):
                if pipelined:
                    raise RemoteProtocolError("more bytes after ALIVE2_REQ")
                self._alive2(node)
            case PortPlease2Request(name=name):
                found = registry.lookup(name)
                self._reply(Port2Response(found) if found else Port2Response(None, 1))
            case NamesRequest():
                nodes = tuple((e.node.name, e.node.port) for e in registry.live())
                self._reply(NamesResponse(server.port, nodes))
            case DumpRequest():
                lines = (DumpResponse.line(e.node.name, e.node.port, -1) for e in registry.live())
                self._reply(DumpResponse(server.port, tuple(lines)))
            case KillRequest():
                self._reply(KillResponse(not registry.live()))
                if not registry.live():
                    server._kill()
            case StopRequest(name=name):
                self._drop(f"STOP_REQ for {name!r} refused (epmd allows it only when relaxed)")

    def _alive2(self, node: NodeInfo) -> None:
        extended = node.highest_version >= 6  # older nodes expect ALIVE2_RESP
        entry = self._server._registry.register(node, self.peer, self)
        if entry is None:
            log.warning("%s tried to register %r, already registered", self.peer, node.name)
            self._reply(Alive2Response(1, 0, extended))
            return
        self.registered = entry
        if self._timer is not None:
            self._timer.cancel()
        # Pre-OTP 23 nodes hold a 2-bit creation: 1..3, still changing on re-registration.
        creation = entry.creation if extended else (entry.creation - 1) % 3 + 1
        assert self._transport is not None
        self._transport.write(Alive2Response(0, creation, extended).encode())
        log.info("registered %s at port %d (creation %d)", node.name, node.port, creation)

    def _reply(self, reply: _Reply) -> None:
        assert self._transport is not None
        self._done = True
        self._transport.write(reply.encode())
        self._transport.close()  # after the buffer is flushed; the timer bounds that too

    def _drop(self, reason: str) -> None:
        log.warning("closing EPMD connection from %s: %s", self.peer, reason)
        self._done = True
        assert self._transport is not None
        self._transport.abort()

    def _timed_out(self) -> None:
        if self._done:  # answered, but the client does not read the answer
            assert self._transport is not None
            self._transport.abort()
            return
        limit = self._server.config.request_timeout
        self._drop(f"no complete request within {limit:g} s ({self._parser.pending} bytes)")

    def shutdown(self) -> None:
        """Close for a server shutdown: unregister now, let an answer still flush."""
        self._unregister()
        assert self._transport is not None
        if self._done:
            self._transport.close()
        else:
            self._done = True
            self._transport.abort()

    def _unregister(self) -> None:
        entry, self.registered = self.registered, None
        if entry is not None and self._server._registry.unregister(entry.node.name, self):
            log.info("unregistered %s", entry.node.name)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self._done and self._parser.pending:
            log.warning(
                "EPMD connection from %s closed mid-request (%d bytes)",
                self.peer,
                self._parser.pending,
            )
        self._unregister()
        self._server._forget(self)


class EpmdServer:
    """An EPMD served by this process's event loop.

    ``await start()`` binds and listens; ``await aclose()`` stops serving and drops every
    registration (their nodes see the connection close, as when epmd dies).
    """

    def __init__(
        self, config: EpmdServerConfig | None = None, *, rng: random.Random | None = None
    ) -> None:
        self.config = config or EpmdServerConfig()
        self._registry = Registry(self.config.remembered_names, rng)
        self._listeners: list[asyncio.Server] = []
        self._connections: set[_Connection] = set()
        self._port: int | None = None
        self._closed = asyncio.Event()

    async def start(self, port: int | None = None, host: str | Sequence[str] | None = None) -> None:
        """Listen on ``port`` (default: ``$ERL_EPMD_PORT`` or 4369; 0 picks a free one).

        ``host`` None listens on the IPv4 and IPv6 any-address, like epmd; otherwise on
        the given IP addresses and on loopback (so local nodes can register), like
        ``epmd -address``. Raises EpmdError if an address cannot be bound (its ``errno``
        is EADDRINUSE when another EPMD has the port), ConfigError for a bad address.
        """
        if self._listeners or self._closed.is_set():
            raise ConfigError("an EpmdServer starts only once")
        port = default_epmd_port() if port is None else port
        sockets = _bind_all(_listen_addresses(host), port)
        loop = asyncio.get_running_loop()
        try:
            for sock in sockets:
                server = await loop.create_server(lambda: _Connection(self), sock=sock)
                self._listeners.append(server)
        except BaseException:
            listeners, self._listeners = self._listeners, []
            for listener in listeners:
                listener.close()
            for sock in sockets:
                sock.close()
            raise
        self._port = sockets[0].getsockname()[1]
        log.info("EPMD listening on port %d (%s)", self._port, ", ".join(self.addresses))

    @property
    def port(self) -> int:
        """The port it listens on (set by start)."""
        if self._port is None:
            raise ConfigError("EpmdServer.port is known only after start()")
        return self._port

    @property
    def addresses(self) -> list[str]:
        """The addresses it listens on."""
        return [str(s.getsockname()[0]) for srv in self._listeners for s in srv.sockets]

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def registrations(self) -> list[RegisteredNode]:
        """The nodes registered now, oldest first."""
        return self._registry.live()

    async def aclose(self) -> None:
        """Stop listening and close every connection, dropping all registrations."""
        for listener in self._stop():
            await listener.wait_closed()

    def _stop(self) -> list[asyncio.Server]:
        """Close listeners and connections now (no await: KILL_REQ calls it from a
        protocol callback); return the listeners, for aclose to wait on."""
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()
        for conn in list(self._connections):
            conn.shutdown()
        if listeners:
            log.info("EPMD stopped serving port %d", self.port)
        self._closed.set()
        return listeners

    async def wait_closed(self) -> None:
        """Return once the server is closed (by aclose or by a KILL_REQ)."""
        await self._closed.wait()

    async def __aenter__(self) -> EpmdServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _admit(self, conn: _Connection) -> bool:
        if len(self._connections) >= self.config.max_connections:
            return False
        self._connections.add(conn)
        return True

    def _forget(self, conn: _Connection) -> None:
        self._connections.discard(conn)

    def _kill(self) -> None:
        log.info("EPMD stopping on KILL_REQ")
        self._stop()


def _listen_addresses(host: str | Sequence[str] | None) -> list[tuple[str, bool]]:
    """(address, required) pairs to bind; optional ones are skipped where unsupported."""
    if host is None:
        return [("0.0.0.0", True), ("::", False)]
    hosts = [host] if isinstance(host, str) else list(host)
    if not hosts:
        raise ConfigError("no address to listen on (None means every address)")
    for address in hosts:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"{address!r} is not an IP address") from None
    loopback = (("127.0.0.1", "0.0.0.0"), ("::1", "::"))
    extra = [lo for lo, any_ in loopback if lo not in hosts and any_ not in hosts]
    return [(h, True) for h in hosts] + [(lo, False) for lo in extra]


def _bind_all(addresses: list[tuple[str, bool]], port: int) -> list[socket.socket]:
    """Bind and listen on every address, all on one port (with 0: the first one's)."""
    for attempt in range(8):
        sockets: list[socket.socket] = []
        chosen, current = port, addresses[0][0]
        try:
            for current, required in addresses:
                sock = _bind_one(current, chosen, required)
                if sock is not None:
                    sockets.append(sock)
                    chosen = sock.getsockname()[1]
            return sockets
        except OSError as exc:
            for sock in sockets:
                sock.close()
            # With port 0 the free port of the first family may be taken in another: retry.
            if port == 0 and sockets and exc.errno == errno.EADDRINUSE and attempt < 7:
                continue
            where = f"[{current}]:{chosen}" if ":" in current else f"{current}:{chosen}"
            error = EpmdError(f"cannot listen on {where}: {exc.strerror}")
            error.errno = exc.errno  # EADDRINUSE tells ensure_epmd another EPMD has it
            raise error from exc
    raise AssertionError("unreachable")


def _bind_one(address: str, port: int, required: bool) -> socket.socket | None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        if required:
            raise
        return None  # no IPv6 here
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(128)  # now, so that a competing ensure_epmd sees us at once
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if not required and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            return None
        raise
    return sock


async def ensure_epmd(
    port: int | None = None,
    *,
    host: str | Sequence[str] | None = None,
    config: EpmdServerConfig | None = None,
    probe_timeout: float = 2.0,
) -> EpmdServer | None:
    """Make sure an EPMD serves ``port`` on this host; start an embedded one if none does.

    Returns None when an EPMD already answers on 127.0.0.1 (use it), else the started
    :class:`EpmdServer` (the caller owns it). When another process wins the race to bind
    the port, its EPMD is used. Raises EpmdError if the port is held by something that
    does not answer as an EPMD.
    """
    port = default_epmd_port() if port is None else port
    for attempt in range(6):
        if await _epmd_answers(port, probe_timeout):
            return None
        server = EpmdServer(config)
        try:
            await server.start(port, host)
        except EpmdError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            # Someone bound the port since we probed; it answers once it listens.
            await asyncio.sleep(0.01 * 2**attempt)
            continue
        return server
    raise EpmdError(f"port {port} is in use, but nothing there answers as an EPMD")


async def _epmd_answers(port: int, limit: float) -> bool:
    try:
        await names_response("127.0.0.1", epmd_port=port, timeout=limit)
    except (EpmdError, RemoteProtocolError):
        return False
    return True
