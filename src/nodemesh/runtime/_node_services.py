"""Node's service methods: gen_server calls and servers (docs/gen_server.md) and
``global`` names (visible nodes only; docs/global.md).

A mixin of :class:`~nodemesh.runtime.node.Node`, kept apart so ``node.py`` stays the
node's core. It reads the node's parts through the attributes declared below and
imports nothing of ``Node``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from nodemesh.errors import NodeDownError, NodemeshError, NoProcError
from nodemesh.runtime._gen_calls import CallRouter, GenCalls
from nodemesh.runtime._handler import ServerMailbox
from nodemesh.runtime.gen_server import GenServer, ServerProcess
from nodemesh.term.types import Atom, Pid

if TYPE_CHECKING:
    from nodemesh.runtime._connection import Connection
    from nodemesh.runtime._global_names import GlobalNames
    from nodemesh.runtime._processes import ProcessTable
    from nodemesh.runtime._tasks import TaskHost
    from nodemesh.runtime.config import NodeConfig
    from nodemesh.runtime.mailbox import Mailbox
    from nodemesh.term.codec import TermCodec

__all__ = ["CallMethods", "GlobalMethods"]

Destination = Pid | str | tuple[str, str]
NOPROC = Atom("noproc")


class CallMethods:
    """``gen_server`` calls out and Python gen_servers (part of ``Node``)."""

    if TYPE_CHECKING:  # provided by Node
        name: str
        config: NodeConfig
        _processes: ProcessTable
        _tasks: TaskHost
        _codec: TermCodec
        _peers: dict[str, Connection]
        _gen: GenCalls | None
        _servers: dict[Pid, ServerProcess]
        _started: bool
        _closing: bool

        @property
        def running(self) -> bool: ...
        def mailbox(self, *, max_queued: int | None = None) -> Mailbox: ...
        def register(self, name: str, *, max_queued: int | None = None) -> Mailbox: ...
        def whereis(self, name: str) -> Pid | None: ...
        def _mailbox_closed(self, mailbox: Mailbox, reason: Any) -> None: ...
        async def _connection(self, node: str) -> Connection: ...

    def _start_calls(self) -> None:
        router = CallRouter(self, self._processes.new_pid(), on_close=self._mailbox_closed)
        self._processes.add(router)
        self._gen = GenCalls(
            self._processes, router, self._peers, self._connection, self._tasks.spawn, self._codec
        )

    def _calls(self) -> GenCalls:
        if self._gen is None or not self.running:
            raise NodeDownError(f"node {self.name} is not started")
        return self._gen

    def call(
        self, dest: Destination, request: Any, *, timeout: float | None = 5.0
    ) -> Coroutine[Any, Any, Any]:
        """``gen_server:call(Dest, Request, Timeout)``: send ``request`` to the gen_server
        at ``dest`` (a pid, a local name, or ``(name, node)``) and return its reply.
        ``timeout`` is in seconds (None: wait forever; Erlang's default is 5 s).

        Raises :class:`NoProcError` when no process is there, :class:`CallExitError` when
        the server exits (or crashes) before replying, :class:`CallTimeoutError` after
        ``timeout``, and :class:`NodeDownError` when its node cannot be reached or goes
        down during the call (or this node stops). A late reply is dropped. A request
        with no term form raises :class:`EncodeError` (nothing is sent).
        """
        # A plain function returning GenCalls.call's coroutine: one coroutine per call,
        # not a second one wrapping it. Not running: a coroutine raising NodeDownError,
        # so the error still comes from the await, as from an ``async def``.
        gen = self._gen
        if gen is None or not self._started or self._closing:
            return _raise(NodeDownError(f"node {self.name} is not started"))
        return gen.call(dest, request, timeout)

    def cast(self, dest: Destination, request: Any) -> None:
        """``gen_server:cast(Dest, Request)``: send ``{'$gen_cast', request}`` and return
        at once. Never raises for a missing process or node (connects in the background
        when needed, as Erlang does); raises :class:`NodeDownError` only when this node
        is not running."""
        self._calls().cast(dest, request)

    async def multi_call(
        self, nodes: list[str], name: str, request: Any, *, timeout: float | None = 5.0
    ) -> tuple[dict[str, Any], list[str]]:
        """``gen_server:multi_call(Nodes, Name, Request, Timeout)``: call the server
        registered as ``name`` on each node at once; return ``(replies, bad_nodes)``,
        replies by node name, and the nodes that did not answer in time, have no such
        server, crashed or are down. Raises only :class:`NodeDownError` when this node
        is not running."""
        return await self._calls().multi_call(nodes, name, request, timeout)

    async def start_server(
        self, server: GenServer, *, name: str | None = None, max_queued: int | None = None
    ) -> Pid:
        """Run ``server``'s ``init`` and start handling its messages; return its pid.
        With ``name`` it is registered (Erlang calls ``{name, node}``); ``max_queued`` as
        for :meth:`mailbox`.

        Raises :class:`NameTakenError` if the name is taken, :class:`NodeDownError` if
        this node is not running, and whatever ``init`` raised.
        """
        calls = self._calls()
        bound = self.config.max_queued_messages if max_queued is None else max_queued
        pid = self._processes.new_pid()
        mailbox = ServerMailbox(self, pid, on_close=self._mailbox_closed, max_queued=bound or None)
        if name is not None:
            self._processes.register(name, mailbox)  # raises NameTakenError
        self._processes.add(mailbox)
        server.node = self  # type: ignore[assignment]  # self is the Node this mixes into
        server.pid = mailbox.pid
        process = ServerProcess(server, mailbox, calls.reply)
        mailbox.serve_with(process.serve_now)  # plain callbacks run as messages arrive
        await process.init()
        self._servers[mailbox.pid] = process
        process.finished.add_done_callback(lambda _: self._servers.pop(mailbox.pid, None))
        self._tasks.spawn(process.run(), name=f"gen_server {name or mailbox.pid}")
        return mailbox.pid

    async def stop_server(self, server: Pid | str, reason: Any = "normal") -> None:
        """``gen_server:stop/2``: stop a server started here after the messages already
        queued, run its ``terminate(reason)`` and wait for it; its monitors and links
        see ``reason``. Raises :class:`NoProcError` if no such server runs here."""
        pid = self.whereis(server) if isinstance(server, str) else server
        process = self._servers.get(pid) if pid is not None else None
        if process is None:
            raise NoProcError(f"no server {server!r} on {self.name}", NOPROC)
        await process.stop(Atom(reason) if type(reason) is str else reason)


class GlobalMethods:
    """``global`` names across a visible cluster (part of ``Node``)."""

    if TYPE_CHECKING:  # provided by Node
        _global: GlobalNames | None

    def _global_names(self) -> GlobalNames:
        if self._global is None:
            raise NodemeshError(
                "global names need a visible node: NodeConfig(hidden=False), started"
            )
        return self._global

    async def global_register(self, name: Any, pid: Pid) -> bool:
        """``global:register_name(Name, Pid)`` across the visible cluster: True when
        registered, False when the name is taken or ``pid`` already has a global name.
        A ``str`` name is an atom. Raises :class:`NodemeshError` on a hidden node."""
        return await self._global_names().register(_global_name(name), pid)

    async def global_unregister(self, name: Any) -> None:
        """``global:unregister_name(Name)``. Raises :class:`NodemeshError` on a hidden node."""
        await self._global_names().unregister(_global_name(name))

    def global_whereis(self, name: Any) -> Pid | None:
        """``global:whereis_name(Name)``: the pid, or None. Raises :class:`NodemeshError`
        on a hidden node."""
        return self._global_names().whereis(_global_name(name))

    def global_names(self) -> list[Any]:
        """``global:registered_names()``. Raises :class:`NodemeshError` on a hidden node."""
        return self._global_names().names()

    async def global_sync(self, timeout: float | None = None) -> None:
        """``global:sync()``: wait until the name tables agree with every visible node
        connected now. Raises :class:`TimeoutError` after ``timeout`` seconds and
        :class:`NodemeshError` on a hidden node."""
        async with asyncio.timeout(timeout):
            await self._global_names().sync()


async def _raise(error: Exception) -> Any:
    raise error


def _global_name(name: Any) -> Any:
    """Global names are terms; a Python ``str`` is taken as the atom, as in Erlang code."""
    return Atom(name) if type(name) is str else name
