"""The node: a Python process that is a member of an Erlang distribution cluster.

A :class:`Node` listens for distribution connections, registers its name with EPMD
(starting an embedded EPMD when none runs), connects to peers on demand, and routes
messages between its mailboxes and processes on other nodes. It is built from parts
that do not know it: a :class:`~nodemesh.runtime._processes.ProcessTable` (pids,
names, links, monitors), a :class:`~nodemesh.runtime._connections.ConnectionTable`
(the owner every :class:`~nodemesh.runtime._connection.Connection` talks to), a
:class:`~nodemesh.runtime._dispatch.Dispatcher` for what arrives, and a
:class:`~nodemesh.runtime._tasks.TaskHost` for the tasks it runs for peers.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from nodemesh.cookie import resolve_cookie
from nodemesh.dist import control
from nodemesh.dist.flags import DistFlag
from nodemesh.dist.names import parse_node_name
from nodemesh.errors import MailboxClosedError, NodeDownError, NodemeshError
from nodemesh.runtime import _calls as calls
from nodemesh.runtime._connection import Connection
from nodemesh.runtime._connections import ConnectionTable
from nodemesh.runtime._dispatch import Dispatcher
from nodemesh.runtime._gen_calls import GenCalls
from nodemesh.runtime._global_names import GlobalNames
from nodemesh.runtime._global_proc import NodeParts
from nodemesh.runtime._hostname import default_host
from nodemesh.runtime._node_processes import ProcessMethods
from nodemesh.runtime._node_services import CallMethods, GlobalMethods
from nodemesh.runtime._processes import ProcessTable
from nodemesh.runtime._services import RpcHandler, Services
from nodemesh.runtime._signals import NOCONNECTION, Monitor
from nodemesh.runtime._spawn import Spawner
from nodemesh.runtime._tasks import TaskHost
from nodemesh.runtime._transport import NodeTransport
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.events import EventHub, EventStream, NodeDown, NodeUp
from nodemesh.runtime.gen_server import ServerProcess
from nodemesh.runtime.mailbox import Mailbox
from nodemesh.runtime.statistics import NodeStatistics, collect
from nodemesh.term.codec import TermCodec
from nodemesh.term.types import Atom, Pid, Reference

__all__ = ["Node"]

log = logging.getLogger("nodemesh.node")

Destination = Pid | str | tuple[str, str]
EXIT, NOPROC = Atom("EXIT"), Atom("noproc")
PUBLISHED = DistFlag.PUBLISHED


class Node(ProcessMethods, CallMethods, GlobalMethods):
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
        self._processes = ProcessTable(self.name, reserved=Services.NAMES)
        self._tasks = TaskHost(self.name)
        # Which atom is None (undefined, or nil for Elixir), both ways; the decode limits.
        self._codec = TermCodec(none_atom=self.config.none_atom, limits=self.config.decode_limits)
        self.services = Services(self._processes, self._tasks, codec=self._codec)
        self._connections = ConnectionTable(
            self.name,
            self.cookie,
            self.config,
            codec=self._codec,
            receive=Dispatcher(self._processes, self.services).receive,
            on_up=self._node_up,
            on_down=self._node_down,
        )
        # The table's dict itself, read once per message sent: no attribute hop, no call.
        self._peers = self._connections.connections
        self._events = EventHub("node event stream")
        self._transport: NodeTransport | None = None
        self._system: Mailbox | None = None
        self._spawner = Spawner(self._processes, self._tasks, self._new_process_mailbox)
        self.services.spawner = self._spawner.spawn_request
        self._gen: GenCalls | None = None  # gen_server calls out (made at start)
        self._servers: dict[Pid, ServerProcess] = {}  # GenServers started here
        self._global: GlobalNames | None = None  # visible nodes speak global (docs/global.md)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Listen, register with EPMD and become reachable. Raises :class:`NetworkError`
        or :class:`EpmdError` when the port cannot be bound or the name is taken."""
        if self._started:
            return
        await self._tasks.start()
        self._transport = NodeTransport(self._connections, self._tasks)
        try:
            self.port, self.creation = await self._transport.start()
        except BaseException:
            await self._tasks.aclose()
            raise
        self._processes.creation = self._connections.creation = self.creation
        self._started = True
        self._system = self.mailbox(max_queued=0)  # a sender pid only: never read, never full
        self._start_calls()
        if not self.config.hidden:
            self._global = GlobalNames(
                self, NodeParts(self._tasks, self._processes, self._connections)
            )
            self._global.start()
        log.info("node %s listening on port %d (creation %d)", self.name, self.port, self.creation)

    async def aclose(self) -> None:
        """Close every connection and mailbox, unregister from EPMD, stop listening."""
        if not self._started or self._closing:
            return
        self._closing = True
        for mailbox in list(self._processes.mailboxes.values()):
            mailbox.close(Atom("shutdown"))
        # Flush what was sent before aclose(); a peer that does not read gets aborted.
        await self._connections.aclose(self.config.close_timeout)
        await self._tasks.aclose()
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
    def make_ref(self) -> Reference:
        """A new reference, unique on this node's incarnation."""
        return self._processes.make_ref()

    def mailbox(self, *, max_queued: int | None = None) -> Mailbox:
        """A new anonymous mailbox with its own pid. ``max_queued`` bounds its queue
        (None: ``config.max_queued_messages``; 0: unbounded); see :class:`Mailbox` for
        the policy. Raises :class:`ConfigError` for a negative bound."""
        mailbox = self._new_mailbox(max_queued)
        self._processes.add(mailbox)
        return mailbox

    def register(self, name: str, *, max_queued: int | None = None) -> Mailbox:
        """A new mailbox registered as ``name``: Erlang reaches it as ``{name, node}``.
        ``max_queued`` as for :meth:`mailbox`.

        Raises :class:`NameTakenError` (also a :class:`ValueError`) if the name is taken.
        """
        mailbox = self._new_mailbox(max_queued)
        self._processes.register(name, mailbox)
        self._processes.add(mailbox)
        return mailbox

    def _new_mailbox(self, max_queued: int | None) -> Mailbox:
        bound = self.config.max_queued_messages if max_queued is None else max_queued
        pid = self._processes.new_pid()
        return Mailbox(self, pid, on_close=self._mailbox_closed, max_queued=bound or None)

    def whereis(self, name: str) -> Pid | None:
        """The pid registered as ``name`` here, or None."""
        mailbox = self._processes.whereis(name)
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
        :class:`NodeDownError` when the node is unreachable, the connection drops or this
        node stops during the call, and :class:`ReceiveTimeoutError` after ``timeout``
        seconds."""
        conn = await self._connection(node)
        mfa = (module, function, list(args))
        return await calls.call(
            self._processes, conn, self.mailbox(), mfa, timeout, codec=self._codec
        )

    def _mailbox_closed(self, mailbox: Mailbox, reason: Any) -> None:
        """The mailbox's ``on_close``: forget it and tell its links and monitors."""
        links, monitors = self._processes.remove(mailbox, reason)
        for other in links:
            self._signal_exit(mailbox.pid, other, reason)
        for mon in monitors:
            self._notify_down(mon, reason)

    # -- sending -----------------------------------------------------------------------
    async def send(self, dest: Destination, message: Any, *, sender: Pid | None = None) -> None:
        """Send ``message`` to a pid, a local registered name, or ``(name, node)``.

        Connects to the node first if needed. Like Erlang, sending to a process that does
        not exist is not an error, and success means the message is queued on the
        connection, not that it was delivered (see "Delivery: at most once" in
        docs/node.md). A full local mailbox (``max_queued``) makes this wait for room.
        Raises :class:`NodeDownError` when the node cannot be reached.
        """
        node: str
        if type(dest) is Pid and dest.node != self.name:  # the common case, first
            node = dest.node
            frame = control.send(dest, message, sender, codec=self._codec)
        else:
            routed = self._remote(dest, message, sender)
            if routed is None:
                local = self._local(dest)
                if local is not None:
                    await local.wait_room()  # a full local mailbox: wait, as TCP makes peers wait
                    local.deliver(message)
                return
            node, frame = routed
        conn = self._peers.get(node) or await self._connection(node)
        conn.write(frame)
        if conn.paused:
            await conn.drain()

    def send_nowait(self, dest: Destination, message: Any, *, sender: Pid | None = None) -> None:
        """Like :meth:`send`, for nodes already connected: raises :class:`NodeDownError`
        instead of connecting, and never waits for the socket to drain (nor for room in a
        full local mailbox: the message is queued beyond the bound)."""
        routed = self._remote(dest, message, sender)
        if routed is not None:
            self._connections.connected(routed[0]).write(routed[1])
            return
        local = self._local(dest)
        if local is not None:
            local.deliver(message)

    def send_connected(self, to: Pid, message: Any) -> bool:
        """:meth:`send` to a pid of a node connected now, without a coroutine: for
        callers that send in a loop (a PubSub broadcast). True when that connection is
        now paused (its socket buffer is full): ``await node.drain(to.node)`` before
        sending it more, as :meth:`send` waits. Raises :class:`NodeDownError` when the
        node is not connected (:meth:`send` would dial it)."""
        conn = self._peers.get(to.node)
        if conn is None:
            raise NodeDownError(f"not connected to {to.node}")
        conn.write(control.send(to, message, None, codec=self._codec))
        return conn.paused

    async def drain(self, node: str) -> None:
        """Wait until the connection to ``node`` is not paused (at once if it is not, or
        there is none): what :meth:`send` waits for after writing."""
        conn = self._peers.get(node)
        if conn is not None and conn.paused:
            await conn.drain()

    def _remote(
        self, dest: Destination, message: Any, sender: Pid | None
    ) -> tuple[str, bytes] | None:
        """The remote node and the frame for ``dest``; None when ``dest`` is here."""
        if type(dest) is Pid:
            if dest.node == self.name:
                return None
            return dest.node, control.send(dest, message, sender, codec=self._codec)
        if isinstance(dest, tuple):
            name, node = dest
            if node == self.name:
                return None
            # the name as given: control.reg_send makes it an Atom once per (sender, name)
            return node, control.reg_send(
                sender or self._system_pid(), name, message, codec=self._codec
            )
        return None

    def _local(self, dest: Destination) -> Mailbox | None:
        """The mailbox of a destination on this node, or None (nobody there: dropped)."""
        if type(dest) is Pid:
            return self._processes.get(dest)
        name = dest[0] if isinstance(dest, tuple) else dest
        assert isinstance(name, str), f"not a destination: {dest!r}"
        return self._processes.whereis(name)

    def _system_pid(self) -> Pid:
        assert self._system is not None, "node not started"
        return self._system.pid

    # -- links and monitors ------------------------------------------------------------
    def link(self, local: Pid, other: Pid) -> None:
        """Link a local mailbox to ``other``; an unreachable node gives ``noconnection``."""
        if other.node == self.name:
            if other in self._processes.mailboxes:
                self._processes.signals.link(local, other)
            else:
                self._processes.exit_signal(local, other, NOPROC)
            return
        conn = self._connections.get(other.node)
        if conn is None:
            self._processes.exit_signal(local, other, NOCONNECTION)
            return
        self._processes.signals.link(local, other)
        conn.write(control.link(local, other))

    def unlink(self, local: Pid, other: Pid) -> None:
        """Remove a link made with :meth:`link`."""
        if self._processes.signals.unlink(local, other) and other.node != self.name:
            conn = self._connections.get(other.node)
            if conn is not None:
                conn.write(control.unlink_id(self._processes.unlink_id(), local, other))

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
            if self._processes.exists(proc):
                self._processes.signals.add_monitor(monitor)
            else:
                self._notify_down(monitor, NOPROC)
            return ref
        conn = self._connections.get(node)
        if conn is None:
            self._notify_down(monitor, NOCONNECTION)
            return ref
        self._processes.signals.add_monitor(monitor)
        conn.write(control.monitor_p(watcher, proc, ref))
        return ref

    def demonitor(self, watcher: Pid, ref: Reference) -> None:
        """Remove a monitor made with :meth:`monitor` (no-op if already gone)."""
        monitor = self._processes.signals.remove_monitor(ref)
        if monitor is not None and monitor.node != self.name:
            conn = self._connections.get(monitor.node)
            if conn is not None:
                conn.write(control.demonitor_p(watcher, monitor.target, ref))

    def _notify_down(self, monitor: Monitor, reason: Any) -> None:
        """Tell a watcher, local or remote, that its monitor fired."""
        if monitor.watcher.node == self.name:
            self._processes.deliver(monitor.watcher, monitor.down_message(reason))
            return
        conn = self._connections.get(monitor.watcher.node)
        if conn is not None:
            conn.write(
                control.monitor_exit(
                    monitor.target, monitor.watcher, monitor.ref, reason, codec=self._codec
                )
            )

    def _signal_exit(self, source: Pid, target: Pid, reason: Any) -> None:
        """Send a link exit signal from ``source`` (exited) to ``target``."""
        if target.node == self.name:
            self._processes.exit_signal(target, source, reason)
            return
        conn = self._connections.get(target.node)
        if conn is not None:
            conn.write(control.exit_signal(source, target, reason, codec=self._codec))

    # -- connections -------------------------------------------------------------------
    def nodes(self) -> list[str]:
        """Names of the nodes connected now."""
        return list(self._connections.connections)

    def is_connected(self, node: str) -> bool:
        """True when a distribution connection to ``node`` is up."""
        return self._connections.is_connected(node)

    async def connect(self, node: str) -> bool:
        """Connect to ``node`` (like ``net_kernel:connect_node/1``); False if that fails."""
        try:
            await self._connection(node)
        except NodemeshError as exc:
            text = str(exc)  # the dial's errors already say "cannot connect to X: why"
            log.info(
                "%s", text if text.startswith("cannot") else f"cannot connect to {node}: {text}"
            )
            return False
        return True

    def hint_port(self, node: str, port: int) -> None:
        """Connect to ``node`` at ``port`` (on its host) instead of asking its EPMD, as
        gossip heartbeats tell. A hint that fails is dropped and that connect asks EPMD."""
        if self._transport is not None and 0 < port < 65536:
            self._transport.hints.set(node, port)

    async def ping(self, node: str, timeout: float | None = None) -> bool:
        """``net_adm:ping/1``: connect, then ask the peer's ``net_kernel`` whether we are
        allowed in. True for ``pong``."""
        return (await self.ping_result(node, timeout)) is None

    async def ping_result(self, node: str, timeout: float | None = None) -> str | None:
        """Like :meth:`ping`, but say why: None for ``pong``, else the reason for ``pang``."""
        timeout = timeout or self.config.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                conn = await self._connection(node)
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
        except MailboxClosedError:
            return f"{self.name} stopped while waiting for {node} to answer"
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

    def statistics(self) -> NodeStatistics:
        """A frozen snapshot: connections, pending handshakes, mailboxes, queued messages
        (total and largest queue), connections paused by a full mailbox or a slow peer."""
        table = self._connections
        # Incoming handshakes are the gatekeeper's from accept to the end; outgoing ours.
        pending = sum(1 for conn in table.handshaking if conn.outgoing)
        if self._transport is not None:
            pending += self._transport.gatekeeper.pending
        return collect(table.connections.values(), pending, self._processes.mailboxes.values())

    def events(self, *, max_queued: int | None = None) -> EventStream:
        """Subscribe to :class:`NodeUp` / :class:`NodeDown` events from now on.

        ``max_queued`` bounds the stream (None: ``config.max_queued_events``; 0:
        unbounded); a reader that falls that far behind gets ``StreamOverflowError``
        after the queued events. Raises :class:`ConfigError` for a negative bound."""
        bound = self.config.max_queued_events if max_queued is None else max_queued
        return self._events.subscribe(bound or None)

    async def _connection(self, node: str) -> Connection:
        conn = self._connections.get(node)
        if conn is not None:
            return conn
        if not self._started:
            raise NodeDownError(f"node {self.name} is not started")
        if node == self.name:
            raise NodeDownError("a node cannot connect to itself")
        future, start = self._connections.dial_future(node)
        if start:
            assert self._transport is not None
            self._transport.dial(node, future)
        return await asyncio.shield(future)

    # -- told by the connection table --------------------------------------------------
    def _node_up(self, peer: str) -> None:
        conn = self._connections.get(peer)
        if self._global is not None and conn is not None and conn.peer_flags & PUBLISHED:
            self._global.node_up(peer)  # global, like Erlang's, ignores hidden peers
        self._events.publish(NodeUp(peer))

    def _node_down(self, peer: str, reason: str) -> None:
        """The connection to ``peer`` is gone: links to it break, monitors fire."""
        links, monitors = self._processes.signals.take_node(peer)
        if self._gen is not None:  # calls to peer: their monitors are the router's
            self._gen.node_down(peer)
        for local, remote in links:
            self._processes.exit_signal(local, remote, NOCONNECTION)
        for monitor in monitors:
            if monitor.watcher.node == self.name:
                self._processes.deliver(monitor.watcher, monitor.down_message(NOCONNECTION))
        if self._global is not None:
            self._global.node_down(peer)
        self._events.publish(NodeDown(peer, reason))
