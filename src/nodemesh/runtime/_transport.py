"""The node's sockets: the listening socket, EPMD registration, and dialing peers.

OS and third-party exceptions are translated here, at the edge, into
:class:`~nodemesh.errors.NetworkError` and :class:`~nodemesh.errors.NodeDownError`.

A dial asks the peer host's EPMD for the port (``erl_dist_protocol``, PORT_PLEASE2_REQ)
unless it holds a *port hint* for the peer (gossip heartbeats carry their sender's port).
A hint only saves the lookup: the handshake still checks the peer's name and the cookie,
so a wrong or forged hint gives a failed attempt, after which the hint is dropped and the
same dial asks EPMD. A stale hint costs one connect attempt, never the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
from collections import OrderedDict

from nodemesh.dist.names import parse_node_name
from nodemesh.epmd.client import default_epmd_port, port_please
from nodemesh.epmd.keeper import EpmdKeeper
from nodemesh.errors import NetworkError, NodeDownError, NodemeshError, SupersededError
from nodemesh.runtime._connection import Connection
from nodemesh.runtime._connections import ConnectionTable
from nodemesh.runtime._failed_dials import FailedDials
from nodemesh.runtime._gatekeeper import Gatekeeper
from nodemesh.runtime._tasks import TaskHost
from nodemesh.runtime.tls import TlsContexts, describe_tls_failure

__all__ = ["NodeTransport", "PortHints"]

log = logging.getLogger("nodemesh.node")


class NodeTransport:
    """Listening, EPMD and outgoing connections for one node."""

    def __init__(self, connections: ConnectionTable, tasks: TaskHost) -> None:
        self._connections = connections
        self._tasks = tasks  # the node's: dials run there, and end with it
        self._server: asyncio.Server | None = None
        self._keeper: EpmdKeeper | None = None
        config = connections.config
        self.epmd_port = config.epmd_port or default_epmd_port()
        self.tls: TlsContexts | None = None  # set by start(), which reads the files
        self.gatekeeper = Gatekeeper(
            config, self._accepted_connection, connections.is_connected, spawn=tasks.spawn
        )
        self._failed = FailedDials(config.connect_retry_delay)
        self.hints = PortHints()

    async def start(self) -> tuple[int, int]:
        """Listen and register; return ``(port, creation)``. Raises ConfigError when
        TLS certificate files do not load."""
        config = self._connections.config
        if config.tls is not None:  # a bad certificate fails here: ConfigError naming it
            self.tls = self.gatekeeper.tls = TlsContexts(config.tls)
        sock = _listen_socket(config.listen_address, config.port)
        self._server = await asyncio.get_running_loop().create_server(
            self.gatekeeper.accept, sock=sock
        )
        port: int = sock.getsockname()[1]
        if not config.use_epmd:
            return port, secrets.randbelow(0xFFFF_FFFE) + 1
        alive = self._connections.name.split("@", 1)[0]
        self._keeper = EpmdKeeper(
            alive,
            port,
            hidden=config.hidden,
            epmd_port=self.epmd_port,
        )
        try:
            creation = await self._keeper.start()
        except BaseException:
            self._server.close()
            raise
        return port, creation

    async def aclose(self) -> None:
        """Unregister from EPMD and stop listening (dials end with the node's tasks)."""
        if self._keeper is not None:
            await self._keeper.aclose()
        if self._server is not None:
            self._server.close()
            self.gatekeeper.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()

    def _accepted_connection(self) -> Connection:
        """The Connection a gate hands an incoming socket to, once it talks."""
        conn = Connection(self._connections, None)
        conn.established.add_done_callback(self._incoming_settled)
        return conn

    def _incoming_settled(self, done: asyncio.Future[Connection]) -> None:
        if not done.cancelled() and done.exception() is None:
            self._failed.forget(done.result().peer)  # it reached us: it is up

    def dial(self, peer: str, future: asyncio.Future[Connection]) -> None:
        """Start connecting to ``peer``; ``future`` receives the connection or error.

        Within ``connect_retry_delay`` of a failed connect to ``peer`` the future gets a
        NodeDownError repeating that failure at once, without a new attempt.
        """
        earlier = self._failed.recent(peer, asyncio.get_running_loop().time())
        if earlier is not None:
            self._fail(peer, future, earlier, earlier.__cause__, remember=False)
            return
        self._tasks.spawn(self._dial(peer, future), name=f"dial {peer}")

    async def _dial(self, peer: str, future: asyncio.Future[Connection]) -> None:
        timeout = self._connections.config.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                try:
                    await self._connect(peer)
                except SupersededError:
                    # The peer is dialing us at the same moment and wins the tie-break:
                    # its incoming connection will resolve the future.
                    await asyncio.shield(future)
        except TimeoutError:
            self._fail(
                peer,
                future,
                NodeDownError(f"cannot connect to {peer}: timed out after {timeout} s"),
            )
        except NodemeshError as exc:
            self._fail(peer, future, NodeDownError(f"cannot connect to {peer}: {exc}"), exc)
        except OSError as exc:
            if self.tls is not None and isinstance(exc, ssl.SSLError | ConnectionResetError):
                # ssl.SSLError is an OSError: say which side rejected whom, in one line.
                text = describe_tls_failure(exc, peer=peer, we_dialed=True)
                # Rate-limited per peer: a strategy redialing a misconfigured peer
                # every few seconds writes one line, then a count.
                self.gatekeeper.warnings.warning(
                    f"TLS connections to {peer} failed",
                    "TLS connection to %s failed: %s",
                    peer,
                    text,
                )
                self._fail(peer, future, NodeDownError(f"cannot connect to {peer}: {text}"), exc)
                return
            reason = exc.strerror or str(exc)
            self._fail(peer, future, NodeDownError(f"cannot connect to {peer}: {reason}"), exc)

    def _fail(
        self,
        peer: str,
        future: asyncio.Future[Connection],
        error: NodeDownError,
        cause: BaseException | None = None,
        *,
        remember: bool = True,
    ) -> None:
        error.__cause__ = cause
        if remember:
            self._failed.record(peer, error, asyncio.get_running_loop().time())
        self._connections.dial_failed(peer, future, error)

    async def _connect(self, peer: str) -> None:
        table = self._connections
        name = parse_node_name(peer)
        if not table.config.use_epmd:
            await self._open(peer, name.host, table.config.port)
            return
        hinted = self.hints.get(peer)
        if hinted is not None:
            try:
                # Half the dial's time at most: the EPMD fallback keeps the other half.
                async with asyncio.timeout(table.config.connect_timeout / 2):
                    await self._open(peer, name.host, hinted)
                return
            except SupersededError:
                raise  # the hinted port is the peer's: it is dialing us too
            except (OSError, NodemeshError, TimeoutError) as exc:
                self.hints.drop(peer, hinted)
                log.debug("port hint %d for %s failed (%r): asking EPMD", hinted, peer, exc)
        info = await port_please(name.host, name.alive, epmd_port=self.epmd_port)
        if info is None:
            raise NetworkError(f"EPMD on {name.host} does not know a node named {name.alive!r}")
        await self._open(peer, name.host, info.port)

    async def _open(self, peer: str, host: str, port: int) -> None:
        """Connect to ``host:port`` and complete the handshake with ``peer``."""
        table = self._connections
        loop = asyncio.get_running_loop()
        if self.tls is None:
            _, conn = await loop.create_connection(lambda: Connection(table, peer), host, port)
        else:
            # TLS right after the TCP connect, with the node's host as SNI and as the name
            # the server's certificate must carry (inet_tls_dist's do_setup_connect).
            _, conn = await loop.create_connection(
                lambda: Connection(table, peer),
                host,
                port,
                ssl=self.tls.client(),
                server_hostname=host,
                ssl_handshake_timeout=table.config.connect_timeout,
            )
        try:
            # Shielded: a timeout must not cancel the connection's own future (its handshake
            # would later try to resolve it); the connection is closed instead.
            await asyncio.shield(conn.established)
        except asyncio.CancelledError:
            conn.close("handshake_failed")
            raise


class PortHints:
    """Distribution ports that peers announced, by node name; the least recently set is
    forgotten beyond ``max_hints`` (anyone on a gossip segment can send heartbeats)."""

    def __init__(self, max_hints: int = 4096) -> None:
        self.max_hints = max_hints
        self._ports: OrderedDict[str, int] = OrderedDict()

    def set(self, peer: str, port: int) -> None:
        self._ports.pop(peer, None)
        self._ports[peer] = port
        if len(self._ports) > self.max_hints:
            self._ports.popitem(last=False)

    def get(self, peer: str) -> int | None:
        return self._ports.get(peer)

    def drop(self, peer: str, port: int) -> None:
        """Forget ``peer``'s hint if it is still ``port`` (a newer one may have come)."""
        if self._ports.get(peer) == port:
            del self._ports[peer]

    def __len__(self) -> int:
        return len(self._ports)


def _listen_socket(address: str, port: int) -> socket.socket:
    """A listening TCP socket; ``::`` is dual-stack (IPv4 too), falling back to IPv4."""
    try:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        if address != "::":
            raise NetworkError(f"cannot open a socket for {address}") from None
        family, address = socket.AF_INET, "0.0.0.0"
        sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise NetworkError(f"cannot listen on {address} port {port}: {exc.strerror}") from exc
    return sock
