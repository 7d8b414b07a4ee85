"""The node: a Python process that is a member of an Erlang distribution cluster.

A :class:`Node` listens for distribution connections, registers its name with EPMD
(starting an embedded EPMD when none runs), connects to peers on demand, and routes
messages between its mailboxes and processes on other nodes. Incoming control messages
are dispatched in :meth:`Node._dispatch`; the per-peer socket work is in
:mod:`nodemesh.runtime._connection`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from types import TracebackType
from typing import Any

from nodemesh.cookie import resolve_cookie
from nodemesh.dist import control
from nodemesh.dist.control import Op
from nodemesh.dist.names import parse_node_name
from nodemesh.errors import NameTakenError, NodeDownError, NodemeshError
from nodemesh.runtime import _calls as calls
from nodemesh.runtime import _transport as transport
from nodemesh.runtime._connection import Connection
from nodemesh.runtime._hostname import default_host
from nodemesh.runtime._services import RpcHandler, Services
from nodemesh.runtime._signals import NOCONNECTION, Monitor, SignalTable
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.events import EventHub, EventStream, NodeDown, NodeUp
from nodemesh.runtime.mailbox import Mailbox
from nodemesh.term.types import Atom, Pid, Reference

__all__ = ["Node"]

log = logging.getLogger("nodemesh.node")

Destination = Pid | str | tuple[str, str]


class Node:
    """A distributed Erlang node implemented in Python.

    ``name`` is ``"alive@host"`` (or just ``"alive"``: the host is filled in). The cookie
    defaults to ``$NODEMESH_COOKIE``, then ``~/.erlang.cookie``. Use as
    ``async with Node(...) as node:`` or call :meth:`start` and :meth:`aclose`.
    """

    def __init__(
        self, name: str, cookie: str | None = None, *, config: NodeConfig | None = None
    ) -> None:
        self.config = config or NodeConfig()
        if "@" not in name:
            name = f"{name}@{default_host(self.config.longnames is not False)}"
        parsed = parse_node_name(name, longnames=self.config.longnames)
        self.name = str(parsed)
        self.atom = Atom(self.name)
        self.longnames = parsed.is_long
        self.cookie = resolve_cookie(cookie)
        self.creation = 0
        self.port = 0
        self._started = False
        self._closing = False
        self._connections: dict[str, Connection] = {}
        self._pending: dict[str, asyncio.Future[Connection]] = {}
        self._handshaking: set[Connection] = set()
        self._mailboxes: dict[Pid, Mailbox] = {}
        self._names: dict[str, Mailbox] = {}
        self._next_id = 1
        self._next_ref = 1
        self.signals = SignalTable()
        self.services = Services(self)
        self._events = EventHub()
        self._transport: transport.NodeTransport | None = None
        self._system: Mailbox | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Listen, register with EPMD and become reachable. Raises :class:`NetworkError`
        or :class:`EpmdError` when the port cannot be bound or the name is taken."""
        if self._started:
            return
        self._transport = transport.NodeTransport(self)
        self.port, self.creation = await self._transport.start()
        self._started = True
        self._system = self.mailbox()
        log.info("node %s listening on port %d (creation %d)", self.name, self.port, self.creation)

    async def aclose(self) -> None:
        """Close every connection and mailbox, unregister from EPMD, stop listening."""
        if not self._started or self._closing:
            return
        self._closing = True
        for mailbox in list(self._mailboxes.values()):
            mailbox.close(Atom("shutdown"))
        for conn in list(self._handshaking):
            conn.close("shutdown")
        # Flush what was sent before aclose(); a peer that does not read gets aborted.
        connections = list(self._connections.values())
        for conn in connections:
            conn.close("shutdown", flush=True)
        closing = [asyncio.ensure_future(conn.wait_closed()) for conn in connections]
        if closing:
            _, stuck = await asyncio.wait(closing, timeout=self.config.close_timeout)
            if stuck:
                for conn in connections:
                    conn.close("shutdown")
                await asyncio.wait(closing)
        await self.services.aclose()
        if self._transport is not None:
            await self._transport.aclose()
        self._events.close()
        self._started = False

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`aclose`."""
        return self._started and not self._closing

    # -- processes ---------------------------------------------------------------------
    def _new_pid(self) -> Pid:
        ident = self._next_id
        self._next_id = ident + 1 if ident < 0x7FFF_FFFF else 1
        return Pid(self.atom, ident, 0, self.creation)

    def make_ref(self) -> Reference:
        """A new reference, unique on this node's incarnation."""
        n = self._next_ref
        self._next_ref += 1
        return Reference(
            self.atom, self.creation, (n & 0x3FFFF, (n >> 18) & 0xFFFFFFFF, secrets.randbits(32))
        )

    def mailbox(self) -> Mailbox:
        """A new anonymous mailbox with its own pid."""
        mailbox = Mailbox(self, self._new_pid())
        self._mailboxes[mailbox.pid] = mailbox
        return mailbox

    def register(self, name: str) -> Mailbox:
        """A new mailbox registered as ``name``: Erlang reaches it as ``{name, node}``.

        Raises :class:`NameTakenError` (also a :class:`ValueError`) if the name is taken.
        """
        if name in self._names or name in Services.NAMES:
            raise NameTakenError(f"the name {name!r} is already registered on {self.name}")
        mailbox = self.mailbox()
        mailbox.name = Atom(name)
        self._names[name] = mailbox
        return mailbox

    def whereis(self, name: str) -> Pid | None:
        """The pid registered as ``name`` here, or None."""
        mailbox = self._names.get(name)
        return None if mailbox is None else mailbox.pid

    def expose(self, module: str, function: str, handler: RpcHandler) -> None:
        """Make ``handler`` answer ``rpc:call(ThisNode, module, function, Args)``."""
        self.services.rpc.expose(module, function, handler)

    async def rpc(
        self,
        node: str,
        module: str,
        function: str,
        args: list[Any] | tuple[Any, ...] = (),
        *,
        timeout: float | None = None,
    ) -> Any:
        """Call ``module:function(*args)`` on ``node`` (like ``erpc:call``) and return the
        value. Raises :class:`RemoteCallError` when it raises, throws or exits there,
        :class:`NodeDownError` when the node is unreachable or the connection drops, and
        :class:`ReceiveTimeoutError` after ``timeout`` seconds."""
        return await calls.call(self, node, module, function, list(args), timeout)

    def _mailbox_closed(self, mailbox: Mailbox, reason: Any) -> None:
        self._mailboxes.pop(mailbox.pid, None)
        if mailbox.name is not None and self._names.get(mailbox.name) is mailbox:
            del self._names[mailbox.name]
        for other in self.signals.take_links(mailbox.pid):
            self._signal_exit(mailbox.pid, other, reason)
        for mon in self.signals.take_monitors_of(self.name, mailbox.pid, mailbox.name):
            self._notify_down(mon, reason)

    # -- sending -----------------------------------------------------------------------
    async def send(self, dest: Destination, message: Any, *, sender: Pid | None = None) -> None:
        """Send ``message`` to a pid, a local registered name, or ``(name, node)``.

        Connects to the node first if needed. Like Erlang, sending to a process that does
        not exist is not an error. Raises :class:`NodeDownError` when the node cannot be
        reached.
        """
        routed = self._route(dest, message, sender)
        if routed is None:
            return
        node, frame = routed
        conn = self._connections.get(node) or await self._connection(node)
        conn.write(frame)
        if conn.paused:
            await conn.drain()

    def send_nowait(self, dest: Destination, message: Any, *, sender: Pid | None = None) -> None:
        """Like :meth:`send`, for nodes already connected: raises :class:`NodeDownError`
        instead of connecting, and never waits for the socket to drain."""
        routed = self._route(dest, message, sender)
        if routed is not None:
            self._connected(routed[0]).write(routed[1])

    def _route(
        self, dest: Destination, message: Any, sender: Pid | None
    ) -> tuple[str, bytes] | None:
        """Deliver to a local destination (None), or give the remote node and the frame."""
        if type(dest) is Pid:
            if dest.node == self.name:
                self._deliver(dest, message)
                return None
            return dest.node, control.send(dest, message, sender)
        if isinstance(dest, tuple):
            name, node = dest
            if node == self.name:
                self._deliver_named(name, message)
                return None
            return node, control.reg_send(sender or self._system_pid(), Atom(name), message)
        assert isinstance(dest, str), f"not a destination: {dest!r}"
        self._deliver_named(dest, message)
        return None

    def _connected(self, node: str) -> Connection:
        conn = self._connections.get(node)
        if conn is None:
            raise NodeDownError(f"not connected to {node}")
        return conn

    def _system_pid(self) -> Pid:
        assert self._system is not None, "node not started"
        return self._system.pid

    def _deliver(self, pid: Pid, message: Any) -> None:
        mailbox = self._mailboxes.get(pid)
        if mailbox is not None:
            mailbox.deliver(message)

    def _deliver_named(self, name: str, message: Any) -> None:
        mailbox = self._names.get(name)
        if mailbox is not None:
            mailbox.deliver(message)

    # -- links and monitors ------------------------------------------------------------
    def link(self, local: Pid, other: Pid) -> None:
        """Link a local mailbox to ``other``; an unreachable node gives ``noconnection``."""
        if other.node == self.name:
            if other in self._mailboxes:
                self.signals.link(local, other)
            else:
                self._deliver(local, (Atom("EXIT"), other, Atom("noproc")))
            return
        conn = self._connections.get(other.node)
        if conn is None:
            self._deliver(local, (Atom("EXIT"), other, NOCONNECTION))
            return
        self.signals.link(local, other)
        conn.write(control.build((Op.LINK.value, local, other)))

    def unlink(self, local: Pid, other: Pid) -> None:
        """Remove a link made with :meth:`link`."""
        if self.signals.unlink(local, other) and other.node != self.name:
            conn = self._connections.get(other.node)
            if conn is not None:
                unlink_id = self._next_ref
                self._next_ref += 1
                conn.write(control.build((Op.UNLINK_ID.value, unlink_id, local, other)))

    def monitor(self, watcher: Pid, target: Pid | tuple[str, str]) -> Reference:
        """Monitor ``target`` for ``watcher``; returns the monitor reference."""
        ref = self.make_ref()
        if isinstance(target, tuple):
            proc: Pid | Atom = Atom(target[0])
            node = target[1]
        else:
            proc, node = target, target.node
        monitor = Monitor(ref, watcher, proc, node)
        if node == self.name:
            exists = proc in self._mailboxes or proc in self._names
            if exists:
                self.signals.add_monitor(monitor)
            else:
                self._notify_down(monitor, Atom("noproc"))
            return ref
        conn = self._connections.get(node)
        if conn is None:
            self._notify_down(monitor, NOCONNECTION)
            return ref
        self.signals.add_monitor(monitor)
        conn.write(control.build((Op.MONITOR_P.value, watcher, proc, ref)))
        return ref

    def demonitor(self, watcher: Pid, ref: Reference) -> None:
        """Remove a monitor made with :meth:`monitor` (no-op if already gone)."""
        monitor = self.signals.remove_monitor(ref)
        if monitor is not None and monitor.node != self.name:
            conn = self._connections.get(monitor.node)
            if conn is not None:
                ctrl = (Op.DEMONITOR_P.value, watcher, monitor.target, ref)
                conn.write(control.build(ctrl))

    def _notify_down(self, monitor: Monitor, reason: Any) -> None:
        """Tell a watcher, local or remote, that its monitor fired."""
        if monitor.watcher.node == self.name:
            self._deliver(monitor.watcher, monitor.down_message(reason))
            return
        conn = self._connections.get(monitor.watcher.node)
        if conn is not None:
            conn.write(control.monitor_exit(monitor.target, monitor.watcher, monitor.ref, reason))

    def _signal_exit(self, source: Pid, target: Pid, reason: Any) -> None:
        """Send a link exit signal from ``source`` (exited) to ``target``."""
        if target.node == self.name:
            self._deliver(target, (Atom("EXIT"), source, reason))
            return
        conn = self._connections.get(target.node)
        if conn is not None:
            conn.write(control.exit_signal(source, target, reason))

    # -- connections -------------------------------------------------------------------
    def nodes(self) -> list[str]:
        """Names of the nodes connected now."""
        return list(self._connections)

    def is_connected(self, node: str) -> bool:
        """True when a distribution connection to ``node`` is up."""
        return node in self._connections

    async def connect(self, node: str) -> bool:
        """Connect to ``node`` (like ``net_kernel:connect_node/1``); False if that fails."""
        try:
            await self._connection(node)
        except NodemeshError as exc:
            log.info("cannot connect to %s: %s", node, exc)
            return False
        return True

    async def ping(self, node: str, timeout: float | None = None) -> bool:
        """``net_adm:ping/1``: connect, then ask the peer's ``net_kernel`` whether we are
        allowed in. True for ``pong``."""
        return (await self.ping_result(node, timeout)) is None

    async def ping_result(self, node: str, timeout: float | None = None) -> str | None:
        """Like :meth:`ping`, but say why: None for ``pong``, else the reason for ``pang``."""
        timeout = timeout or self.config.connect_timeout
        try:
            conn = await asyncio.wait_for(self._connection(node), timeout)
        except TimeoutError:
            return f"no connection to {node} within {timeout} s"
        except NodemeshError as exc:
            return str(exc)
        mailbox = self.mailbox()
        try:
            ref = self.make_ref()
            request = (Atom("$gen_call"), (mailbox.pid, ref), (Atom("is_auth"), self.atom))
            conn.write(control.reg_send(mailbox.pid, Atom("net_kernel"), request))
            reply = await mailbox.receive(timeout)
        except NodemeshError as exc:
            return f"{node} did not answer: {exc}"
        finally:
            mailbox.close()
        if reply != (ref, "yes"):
            return f"{node} answered {reply!r}"
        return None

    async def disconnect(self, node: str) -> bool:
        """Drop the connection to ``node``; False if there was none."""
        conn = self._connections.get(node)
        if conn is None:
            return False
        conn.close("disconnect")
        await conn.wait_closed()
        return True

    def events(self) -> EventStream:
        """Subscribe to :class:`NodeUp` / :class:`NodeDown` events from now on."""
        return self._events.subscribe()

    async def _connection(self, node: str) -> Connection:
        conn = self._connections.get(node)
        if conn is not None:
            return conn
        if not self._started:
            raise NodeDownError(f"node {self.name} is not started")
        if node == self.name:
            raise NodeDownError("a node cannot connect to itself")
        future = self._pending.get(node)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[node] = future
            assert self._transport is not None
            self._transport.dial(node, future)
        return await asyncio.shield(future)

    # -- called by connections ---------------------------------------------------------
    def _name_status(self, peer: str) -> str:
        """Handshake status for an incoming connection from ``peer``."""
        from nodemesh.dist.handshake import simultaneous_status

        if self._closing:
            return "not_allowed"
        if peer in self._connections:
            return "alive"
        future = self._pending.get(peer)
        if future is not None and not future.done():
            return simultaneous_status(self.name, peer)
        return "ok"

    def _connection_up(self, conn: Connection) -> bool:
        """A handshake completed; False tells the connection to close (we are closing)."""
        peer = conn.peer
        if self._closing:
            return False
        old = self._connections.get(peer)
        if old is not None and old is not conn:
            old.close("replaced")
        self._connections[peer] = conn
        future = self._pending.pop(peer, None)
        if future is not None and not future.done():
            future.set_result(conn)
        log.info("nodeup %s", peer)
        self._events.publish(NodeUp(peer))
        return True

    def _connection_down(self, conn: Connection, reason: str) -> None:
        peer = conn.peer
        if not peer or self._connections.get(peer) is not conn:
            return
        del self._connections[peer]
        links, monitors = self.signals.take_node(peer)
        for local, remote in links:
            self._deliver(local, (Atom("EXIT"), remote, NOCONNECTION))
        for monitor in monitors:
            if monitor.watcher.node == self.name:
                self._deliver(monitor.watcher, monitor.down_message(NOCONNECTION))
        log.info("nodedown %s (%s)", peer, reason)
        self._events.publish(NodeDown(peer, reason))
