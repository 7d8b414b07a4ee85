"""Python processes: an ``async`` function run as a task with its own mailbox and pid.

A process starts here (:meth:`Node.spawn`) or because a peer sent a SPAWN_REQUEST for an
entry point this node exposed (:meth:`Node.expose_spawn`). It ends the way an Erlang
process does, and its exit reason reaches its links (EXIT) and monitors (MONITOR_P_EXIT):

* the function returns: ``normal`` (links are not killed by it, as in Erlang);
* it raises :class:`ProcessExit` ``(reason)``: that reason, like ``exit(Reason)``;
* any other exception: ``{python_exception, <<"Type">>, <<"message">>}``, logged;
* an exit signal kills it (below), or the node stops: ``shutdown``.

Exit signals (``erl_dist_protocol`` EXIT and EXIT2, and links broken by a node going
down: ``noconnection``) follow Erlang's rules for a process that does not trap exits:
``normal`` is ignored, ``kill`` sent with ``exit/2`` kills with ``killed``, any other
reason kills with that reason. With ``trap_exit=True`` they arrive as
``('EXIT', From, Reason)`` messages instead (``kill`` from ``exit/2`` still kills).
Plain mailboxes (:meth:`Node.mailbox`) always trap exits.

A SPAWN_REQUEST is ``{29, ReqId, From, GroupLeader, {M, F, Arity}, OptList}`` with the
argument list as payload; ``erlang:spawn_link/4`` puts ``link`` in OptList and
``spawn_monitor/4`` ``monitor``. SPAWN_REPLY ``{31, ReqId, To, Flags, Result}`` says with
Flags which were set up (1 link, 2 monitor). An entry point that is not exposed gets what
an Erlang node gives for a spawn of an undefined function: a pid whose process exits at
once with ``{undef, [{M, F, Args, []}]}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nodemesh.dist import control
from nodemesh.dist import events as ev
from nodemesh.errors import MailboxClosedError, ProcessExit
from nodemesh.runtime._signals import Monitor
from nodemesh.runtime.mailbox import Mailbox
from nodemesh.term.types import Atom, Pid

if TYPE_CHECKING:
    from nodemesh.runtime._dispatch import Peer
    from nodemesh.runtime._processes import ProcessTable
    from nodemesh.runtime._tasks import TaskHost

__all__ = ["EntryPoints", "ProcessFn", "ProcessMailbox", "Spawner"]

log = logging.getLogger("nodemesh.process")

NORMAL, SHUTDOWN, KILL, KILLED = Atom("normal"), Atom("shutdown"), Atom("kill"), Atom("killed")
EXIT, UNDEF = Atom("EXIT"), Atom("undef")
LINK, MONITOR = Atom("link"), Atom("monitor")
LINK_FLAG, MONITOR_FLAG = 1, 2  # SPAWN_REPLY Flags (erl_dist_protocol)

#: A process body: ``async def fn(mailbox, *args)``.
ProcessFn = Callable[..., Awaitable[Any]]


class ProcessMailbox(Mailbox):
    """The mailbox of a process: exit signals kill it unless it traps exits."""

    __slots__ = ("_kill", "_killed", "trap_exit")

    def __init__(self, *args: Any, trap_exit: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trap_exit = trap_exit
        self._killed: Any = None  # the reason an exit signal gave, once one did
        self._kill: Callable[[], object] | None = None  # cancels the running task

    def exit_signal(self, sender: Pid, reason: Any, *, link: bool = True) -> bool:
        """Erlang's exit-signal rules (see the module docstring)."""
        if reason == KILL and not link:
            self.kill(KILLED)
        elif self.trap_exit:
            return self.deliver((EXIT, sender, reason))
        elif reason != NORMAL:
            self.kill(reason)
        return False

    def kill(self, reason: Any) -> None:
        """End the process with ``reason`` (its task is cancelled)."""
        if self.closed or self._killed is not None:
            return
        self._killed = reason
        if self._kill is not None:
            self._kill()


async def run(mailbox: ProcessMailbox, fn: ProcessFn, args: tuple[Any, ...]) -> None:
    """The task of one process: run ``fn(mailbox, *args)``, then close the mailbox with
    the exit reason (which tells its links and monitors)."""
    task = asyncio.current_task()
    assert task is not None
    if mailbox._killed is not None:  # killed before it ever ran
        mailbox.close(mailbox._killed)
        return
    mailbox._kill = task.cancel
    reason: Any = NORMAL
    try:
        await fn(mailbox, *args)
    except asyncio.CancelledError:
        if mailbox._killed is None:  # the node is stopping: not ours to swallow
            mailbox.close(SHUTDOWN)
            raise
    except MailboxClosedError as exc:
        # Its own mailbox closed under it: the node is stopping, nothing crashed (the
        # close already told links and monitors). Another mailbox's: a crash as any.
        if not mailbox.closed:
            _crashed(mailbox, fn)
            reason = _crash_reason(exc)
    except ProcessExit as exc:
        reason = Atom(exc.reason) if type(exc.reason) is str else exc.reason
    except Exception as exc:  # the process crashed: its links and monitors hear why
        _crashed(mailbox, fn)
        reason = _crash_reason(exc)
    if mailbox._killed is not None:  # an exit signal's reason wins, whatever fn did
        if task.cancelling():
            task.uncancel()
        reason = mailbox._killed
    mailbox.close(reason)


def _crashed(mailbox: ProcessMailbox, fn: ProcessFn) -> None:
    log.warning("process %s (%s) crashed", mailbox.pid, _name(fn), exc_info=True)


def _crash_reason(exc: BaseException) -> Any:
    return (Atom("python_exception"), type(exc).__name__, str(exc))


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


class EntryPoints:
    """The ``(module, function)`` pairs Erlang may spawn here, and their functions."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], ProcessFn] = {}

    def expose(self, module: str, function: str, fn: ProcessFn) -> None:
        self._entries[module, function] = fn

    def get(self, module: Atom, function: Atom) -> ProcessFn | None:
        return self._entries.get((module, function))


class Spawner:
    """Starts processes: local ones and the ones peers ask for with SPAWN_REQUEST."""

    def __init__(
        self,
        processes: ProcessTable,
        tasks: TaskHost,
        new_mailbox: Callable[[bool], ProcessMailbox],
    ) -> None:
        self._processes = processes
        self._tasks = tasks
        self._new_mailbox = new_mailbox
        self.entries = EntryPoints()

    def start(self, mailbox: ProcessMailbox, fn: ProcessFn, args: tuple[Any, ...]) -> None:
        """Run ``fn(mailbox, *args)`` in the node's task group. The task runs from the
        next turn of the loop on, so links and monitors made now cannot miss its exit."""
        self._tasks.spawn(run(mailbox, fn, args), name=f"process {mailbox.pid} {_name(fn)}")

    def spawn_request(self, conn: Peer, event: ev.SpawnRequest) -> None:
        """A peer's SPAWN_REQUEST of ``{M, F, Arity}`` with a well-formed argument list."""
        module, function, _ = event.mfa
        opts = event.opts if type(event.opts) is list else []
        mailbox = self._new_mailbox(False)
        flags = 0
        if LINK in opts:
            self._processes.signals.link(mailbox.pid, event.sender)
            flags |= LINK_FLAG
        if MONITOR in opts:  # the request id is the monitor's reference
            monitor = Monitor(event.req_id, event.sender, mailbox.pid, self._processes.node)
            self._processes.signals.add_monitor(monitor)
            flags |= MONITOR_FLAG
        conn.write(control.spawn_reply(event, flags, mailbox.pid))
        fn = self.entries.get(module, function)
        if fn is None:
            log.info(
                "spawn of %s:%s/%d from %s: not exposed here, exits with undef",
                module,
                function,
                len(event.args),
                event.sender,
            )
            mailbox.close((UNDEF, [(module, function, event.args, [])]))
            return
        self.start(mailbox, fn, tuple(event.args))
