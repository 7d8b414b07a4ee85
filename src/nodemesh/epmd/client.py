"""Talking to an EPMD: register a node, look one up, list names.

A thin asyncio shell over :mod:`nodemesh.epmd.protocol`: each call opens one TCP
connection, sends one request and reads the reply. OS and timeout errors become
:class:`~nodemesh.errors.EpmdError` naming the EPMD's ``host:port``; replies that break the
format raise :class:`~nodemesh.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar, cast

from nodemesh.epmd.protocol import (
    EPMD_PORT,
    Alive2Request,
    Alive2Response,
    NamesRequest,
    NamesResponse,
    NodeInfo,
    NodeType,
    Port2Response,
    PortPlease2Request,
)
from nodemesh.errors import (
    ConfigError,
    EpmdError,
    EpmdNameInUseError,
    NodeNameError,
    RemoteProtocolError,
)

T = TypeVar("T")
MAX_REPLY_SIZE = 1 << 20  # a NAMES reply for thousands of nodes; more is not an EPMD


def default_epmd_port() -> int:
    """The EPMD port: ``$ERL_EPMD_PORT`` when set (as ``erl`` and ``epmd`` do), else 4369.

    Raises ConfigError if the variable is not a port number.
    """
    raw = os.environ.get("ERL_EPMD_PORT", "").strip()
    if not raw:
        return EPMD_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"ERL_EPMD_PORT={raw!r} is not a TCP port number")
    return int(raw)


def check_alive_name(name: str) -> str:
    """Check the part of a node name before ``@``, which is what EPMD holds."""
    if not name or len(name) > 255 or "@" in name:
        raise NodeNameError(f"{name!r} is not the name part of a node name (before '@')")
    if any(c.isspace() or not c.isprintable() for c in name):
        raise NodeNameError(f"node name {name!r} contains spaces or control characters")
    return name


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Link(asyncio.Protocol):
    """One connection to EPMD: collects what it sends and signals news and the close."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost = asyncio.Event()
        self._news = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_REPLY_SIZE:
            self.abort()  # not an EPMD reply; receive() reports it as truncated
        self._news.set()

    def eof_received(self) -> bool:
        self.eof = True
        self._news.set()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.lost.set()
        self._news.set()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def receive(self, parse: Callable[[bytes], T | None], what: str) -> T:
        """Wait until ``parse`` makes a reply of the bytes so far (None means: not yet)."""
        while True:
            reply = parse(bytes(self.buffer))
            if reply is not None:
                return reply
            if self.eof:
                if not self.buffer:
                    raise EpmdError(f"closed the connection without answering {what}")
                raise RemoteProtocolError(f"{what} reply truncated at {len(self.buffer)} bytes")
            self._news.clear()
            await self._news.wait()

    async def receive_all(self, what: str) -> bytes:
        """Wait for EPMD to close the connection; return all it sent."""
        while not self.eof:
            self._news.clear()
            await self._news.wait()
        if not self.buffer:
            raise EpmdError(f"closed the connection without answering {what}")
        if len(self.buffer) > MAX_REPLY_SIZE:
            raise RemoteProtocolError(f"reply exceeds {MAX_REPLY_SIZE} bytes")
        return bytes(self.buffer)


def _abort(link: _Link | None) -> None:
    if link is not None:
        link.abort()


async def _exchange(
    host: str,
    epmd_port: int,
    limit: float,
    request: bytes,
    what: str,
    read: Callable[[_Link], Awaitable[T]],
) -> tuple[_Link, T]:
    """Connect, send ``request``, ``read`` the reply; errors name EPMD's address."""
    where = _where(host, epmd_port)
    link: _Link | None = None
    try:
        async with asyncio.timeout(limit):
            loop = asyncio.get_running_loop()
            _, link = await loop.create_connection(_Link, host, epmd_port)
            assert link.transport is not None
            link.transport.write(request)
            return link, await read(link)
    except TimeoutError as exc:
        _abort(link)
        raise EpmdError(f"EPMD at {where} did not answer {what} within {limit:g} s") from exc
    except EpmdError as exc:
        _abort(link)
        raise EpmdError(f"EPMD at {where} {exc}") from exc
    except OSError as exc:
        _abort(link)
        # asyncio words a refusal "Connect call failed (addr)"; the errno says it better.
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror
        raise EpmdError(f"cannot reach EPMD at {where}: {reason or exc}") from exc
    except RemoteProtocolError as exc:
        _abort(link)
        raise RemoteProtocolError(f"EPMD at {where}: {exc}") from exc
    except BaseException:
        _abort(link)
        raise


class Registration:
    """A node registered with EPMD: it stays registered exactly while this is open."""

    def __init__(self, link: _Link, node: NodeInfo, creation: int, where: str) -> None:
        self._link = link
        self.node = node
        self.creation = creation
        self.epmd = where

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Registration {self.node.name!r} port={self.node.port} at {self.epmd} {state}>"

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def port(self) -> int:
        return self.node.port

    @property
    def closed(self) -> bool:
        """Whether the connection to EPMD is gone, so the node is no longer registered."""
        return self._link.lost.is_set()

    def close(self) -> None:
        """Unregister: close the connection (it completes in the background)."""
        self._link.abort()

    async def aclose(self) -> None:
        """Unregister and wait until the connection is closed."""
        self.close()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Return once the connection is gone: closed by us, or dropped by EPMD (it died)."""
        await self._link.lost.wait()

    async def __aenter__(self) -> Registration:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _resolve_port(epmd_port: int | None) -> int:
    return default_epmd_port() if epmd_port is None else epmd_port


async def register(
    name: str,
    port: int,
    *,
    hidden: bool = True,
    host: str = "127.0.0.1",
    epmd_port: int | None = None,
    timeout: float = 5.0,
) -> Registration:
    """Register node ``name`` listening on ``port`` with the EPMD at ``host`` (ALIVE2_REQ).

    Advertises distribution versions 6 down to 5. Raises NodeNameError or ConfigError for
    a bad name or port, EpmdNameInUseError (an EpmdError and a NameInUseError) if EPMD
    refuses the name, EpmdError if EPMD is unreachable or times out, RemoteProtocolError
    if its reply is malformed.
    """
    if not 0 < port < 65536:
        raise ConfigError(f"distribution port {port} is not a TCP port number")
    node_type = NodeType.HIDDEN if hidden else NodeType.NORMAL
    node = NodeInfo(check_alive_name(name), port, node_type)
    epmd_port = _resolve_port(epmd_port)
    where = _where(host, epmd_port)
    link, reply = await _exchange(
        host,
        epmd_port,
        timeout,
        Alive2Request(node).encode(),
        "ALIVE2_REQ",
        lambda link: link.receive(Alive2Response.parse, "ALIVE2_REQ"),
    )
    if not reply.ok:
        link.abort()
        raise _name_in_use(name, where, reply.result)
    if reply.creation == 0:  # 0 is reserved: "no creation" in pids, refs and ports
        link.abort()
        raise RemoteProtocolError(f"EPMD at {where} assigned the reserved creation 0")
    return Registration(link, node, reply.creation, where)


def _name_in_use(name: str, where: str, result: int) -> EpmdNameInUseError:
    """erl_dist_protocol, ALIVE2_RESP: Result 0 is success. epmd refuses (result 1) a name
    a live connection holds; the name frees itself when that node's connection closes."""
    return EpmdNameInUseError(
        f"EPMD at {where} refused to register the node name {name!r} (ALIVE2 result "
        f"{result}): it is already registered by another live node on this host. Give this "
        f"node another name, or stop the node called {name!r} ('epmd -names' lists them)",
        name,
    )


async def port_please(
    host: str,
    name: str,
    *,
    epmd_port: int | None = None,
    timeout: float = 5.0,
) -> NodeInfo | None:
    """Ask the EPMD at ``host`` where node ``name`` listens (PORT_PLEASE2_REQ).

    Returns None if EPMD does not know the name. Raises EpmdError if EPMD is unreachable,
    refuses or times out, RemoteProtocolError if its reply is malformed.
    """
    request = PortPlease2Request(check_alive_name(name)).encode()
    link, reply = await _exchange(
        host,
        _resolve_port(epmd_port),
        timeout,
        request,
        "PORT_PLEASE2_REQ",
        lambda link: link.receive(Port2Response.parse, "PORT_PLEASE2_REQ"),
    )
    link.abort()
    return reply.node


async def names_response(
    host: str,
    *,
    epmd_port: int | None = None,
    timeout: float = 5.0,
) -> NamesResponse:
    """The NAMES_REQ reply of the EPMD at ``host``: its own port and the live nodes.

    Raises EpmdError if EPMD is unreachable, refuses or times out, RemoteProtocolError if
    its reply is malformed.
    """
    link, reply = await _exchange(
        host,
        _resolve_port(epmd_port),
        timeout,
        NamesRequest().encode(),
        "NAMES_REQ",
        _read_names,
    )
    link.abort()
    return reply


async def _read_names(link: _Link) -> NamesResponse:
    return NamesResponse.decode(await link.receive_all("NAMES_REQ"))


async def names(
    host: str,
    *,
    epmd_port: int | None = None,
    timeout: float = 5.0,
) -> list[tuple[str, int]]:
    """The (name, port) of every node registered with the EPMD at ``host`` (NAMES_REQ).

    Raises as :func:`names_response`.
    """
    reply = await names_response(host, epmd_port=epmd_port, timeout=timeout)
    return list(reply.nodes)
