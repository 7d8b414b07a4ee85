"""Node's process methods: Python processes (spawn, exit signals, entry points Erlang may
spawn; docs/processes.md) and names served by a function.

A mixin of :class:`~nodemesh.runtime.node.Node`, kept apart so ``node.py`` stays the
node's core (lifecycle, mailboxes, sending, links, connections). It reads the node's
parts through the attributes declared below and imports nothing of ``Node``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nodemesh.dist import control
from nodemesh.errors import NodeDownError
from nodemesh.runtime._handler import HandlerMailbox
from nodemesh.runtime._spawn import ProcessFn, ProcessMailbox
from nodemesh.runtime.mailbox import Mailbox
from nodemesh.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from nodemesh.runtime._connections import ConnectionTable
    from nodemesh.runtime._processes import ProcessTable
    from nodemesh.runtime._spawn import Spawner
    from nodemesh.runtime.config import NodeConfig
    from nodemesh.term.codec import TermCodec

__all__ = ["ProcessMethods"]


class ProcessMethods:
    """Spawning processes, exit signals and function-served names (part of ``Node``)."""

    if TYPE_CHECKING:  # provided by Node
        name: str
        config: NodeConfig
        _processes: ProcessTable
        _connections: ConnectionTable
        _codec: TermCodec
        _spawner: Spawner

        @property
        def running(self) -> bool: ...
        def link(self, local: Pid, other: Pid) -> None: ...
        def monitor(self, watcher: Pid, target: Pid | tuple[str, str]) -> Reference: ...
        def _system_pid(self) -> Pid: ...
        def _mailbox_closed(self, mailbox: Mailbox, reason: Any) -> None: ...

    def spawn(
        self,
        fn: ProcessFn,
        *args: Any,
        link: Pid | None = None,
        trap_exit: bool = False,
        max_queued: int | None = None,
    ) -> Pid:
        """Run ``async def fn(mailbox, *args)`` as a process and return its pid.

        The process ends with reason ``normal`` when ``fn`` returns, with
        :class:`ProcessExit`'s reason when it raises that, and with ``{python_exception,
        Type, Message}`` when it raises anything else; links and monitors hear that
        reason. ``link`` links it to that pid (local or remote) before it runs. Exit
        signals kill it unless ``trap_exit`` (see docs/processes.md). Raises
        :class:`NodeDownError` if the node is not started."""
        mailbox = self._start_process(trap_exit, max_queued)
        if link is not None:
            self.link(mailbox.pid, link)
        self._spawner.start(mailbox, fn, args)
        return mailbox.pid

    def spawn_monitor(
        self,
        fn: ProcessFn,
        *args: Any,
        watcher: Pid,
        trap_exit: bool = False,
        max_queued: int | None = None,
    ) -> tuple[Pid, Reference]:
        """Like :meth:`spawn`, and ``watcher`` (a local pid) monitors the process: it gets
        ``('DOWN', Ref, 'process', Pid, Reason)``. Returns ``(pid, ref)``."""
        mailbox = self._start_process(trap_exit, max_queued)
        ref = self.monitor(watcher, mailbox.pid)
        self._spawner.start(mailbox, fn, args)
        return mailbox.pid, ref

    def expose_spawn(self, module: str, function: str, fn: ProcessFn) -> None:
        """Let Erlang's ``spawn(ThisNode, module, function, Args)`` (and ``spawn_link``,
        ``spawn_monitor``, ``spawn_opt``) run ``fn(mailbox, *Args)`` as a process here.
        Entry points not exposed behave as undefined functions do in Erlang: the new
        process exits at once with ``{undef, ...}``."""
        self._spawner.entries.expose(module, function, fn)

    def exit(self, pid: Pid, reason: Any, *, sender: Pid | None = None) -> None:
        """Send an exit signal to ``pid``, like Erlang's ``exit(Pid, Reason)``: a process
        that does not trap exits dies of it (``kill``: always, with ``killed``). Dropped if
        ``pid``'s node is not connected, as Erlang drops it."""
        source = sender or self._system_pid()
        value = Atom(reason) if type(reason) is str else reason
        if pid.node == self.name:
            self._processes.exit_signal(pid, source, value, link=False)
            return
        conn = self._connections.get(pid.node)
        if conn is not None:
            conn.write(control.exit2_signal(source, pid, value, codec=self._codec))

    def _start_process(self, trap_exit: bool, max_queued: int | None) -> ProcessMailbox:
        if not self.running:
            raise NodeDownError(f"node {self.name} is not started")
        return self._new_process_mailbox(trap_exit, max_queued)

    def _new_process_mailbox(
        self, trap_exit: bool, max_queued: int | None = None
    ) -> ProcessMailbox:
        bound = self.config.max_queued_messages if max_queued is None else max_queued
        mailbox = ProcessMailbox(
            self,
            self._processes.new_pid(),
            on_close=self._mailbox_closed,
            max_queued=bound or None,
            trap_exit=trap_exit,
        )
        self._processes.add(mailbox)
        return mailbox

    def register_handler(self, name: str, handle: Callable[[Any], None]) -> Mailbox:
        """Register ``name`` served by ``handle(message)``, called at once for each message
        that arrives (from a peer or this node), in place of a queue and a receiving task.
        ``handle`` must return quickly and not block; an exception it raises is logged and
        the message dropped. Close the returned mailbox to unregister.

        Raises :class:`NameTakenError` if the name is taken.
        """
        pid = self._processes.new_pid()
        mailbox = HandlerMailbox(self, pid, on_close=self._mailbox_closed, handle=handle)
        self._processes.register(name, mailbox)
        self._processes.add(mailbox)
        return mailbox
