"""What Erlang tools expect to find on a node: ``net_kernel`` and ``rex``, and the
``erpc`` spawn requests behind ``rpc:call`` since OTP 23.

Python functions callable from Erlang are exposed per ``(module, function)`` with
:meth:`Node.expose`; they may be plain or ``async`` functions and receive the call's
arguments as Python values.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nodemesh.dist import control
from nodemesh.dist import events as ev
from nodemesh.errors import RpcError
from nodemesh.term.codec import ERLANG, TermCodec
from nodemesh.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from nodemesh.runtime._dispatch import Peer
    from nodemesh.runtime._processes import ProcessTable
    from nodemesh.runtime._tasks import TaskHost

__all__ = ["RpcRegistry", "Services"]

log = logging.getLogger("nodemesh.node")

GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")
YES = Atom("yes")
ERPC = Atom("erpc")
EXECUTE_CALL = Atom("execute_call")
EXECUTE_CAST = Atom("execute_cast")
RETURN, THROW, EXIT, ERROR = Atom("return"), Atom("throw"), Atom("exit"), Atom("error")
UNDEF = Atom("undef")
REX_CALLS = frozenset({Atom("call"), Atom("block_call")})
BADRPC = Atom("badrpc")
EXIT_TAG = Atom("EXIT")
SPAWN_MONITOR_FLAG = 2  # SPAWN_REPLY flags: 1 = link created, 2 = monitor created


RpcHandler = Callable[..., Any]


class RpcRegistry:
    """Python functions callable from Erlang, by ``(module, function)``."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], RpcHandler] = {}

    def expose(self, module: str, function: str, handler: RpcHandler) -> None:
        self._handlers[module, function] = handler

    async def call(self, module: Any, function: Any, args: Any) -> tuple[Atom, Any]:
        """Run a call; return ``(return, Value)`` or ``(error|throw|exit, Reason)``."""
        handler = self._handlers.get((module, function))
        if handler is None or type(args) is not list:
            arity = len(args) if type(args) is list else 0
            return ERROR, (UNDEF, [(module, function, arity, [])])
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                result = await result
        except RpcError as exc:
            return ERROR, exc.reason
        except Exception as exc:  # a handler's failure is the caller's error, not ours
            log.info("rpc %s:%s raised %r", module, function, exc)
            reason = (Atom("python_exception"), type(exc).__name__, str(exc))
            return ERROR, reason
        return RETURN, result


class Services:
    """The registered names every node answers for, and spawn requests."""

    NAMES = frozenset({Atom("net_kernel"), Atom("rex")})

    def __init__(
        self, processes: ProcessTable, tasks: TaskHost, *, codec: TermCodec = ERLANG
    ) -> None:
        self._codec = codec  # rpc values are the caller's: None is its none atom
        self._processes = processes
        self._tasks = tasks
        self.rpc = RpcRegistry()
        #: Where SPAWN_REQUESTs other than erpc's go (the node sets it).
        self.spawner: Callable[[Peer, ev.SpawnRequest], None] | None = None

    def handle(self, conn: Peer, name: Atom, sender: Any, message: Any) -> None:
        """A message to one of :attr:`NAMES` arrived from ``conn``'s node."""
        if type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL:
            origin = message[1]
            if type(origin) is tuple and len(origin) == 2 and type(origin[0]) is Pid:
                self._gen_call(conn, name, origin[0], origin[1], message[2])
                return
        if (
            name == "rex"
            and type(message) is tuple
            and len(message) == 2
            and message[1] == "features_request"
            and type(message[0]) is Pid
        ):  # rpc.erl asks visible peers whether they take erpc spawn requests
            reply = (Atom("features_reply"), self._processes.atom, [ERPC])
            conn.write(control.send(message[0], reply))
            return
        log.debug("ignoring %r sent to %s", message, name)

    def _gen_call(self, conn: Peer, name: Atom, caller: Pid, tag: Any, request: Any) -> None:
        if name == "net_kernel":
            if type(request) is tuple and len(request) == 2 and request[0] == "is_auth":
                # net_adm:ping. The tag is [alias | Ref], an improper list: echo it as is.
                conn.write(control.send(caller, (tag, YES)))
            return
        # rex's gen_server calls, {call, M, F, A, GroupLeader} and {block_call, ...}:
        # older callers and rpc:block_call still use them instead of erpc.
        if type(request) is tuple and len(request) >= 4 and request[0] in REX_CALLS:
            module, function, args = request[1], request[2], request[3]
            self._spawn(self._rex_call(conn, caller, tag, module, function, args))

    async def _rex_call(
        self, conn: Peer, caller: Pid, tag: Any, module: Any, function: Any, args: Any
    ) -> None:
        kind, value = await self.rpc.call(module, function, args)
        reply = value if kind == RETURN else (BADRPC, (EXIT_TAG, value))
        conn.write(control.send(caller, (tag, reply), codec=self._codec))

    def spawn_request(self, conn: Peer, event: ev.SpawnRequest) -> None:
        """SPAWN_REQUEST: ``erpc:execute_call/4`` and ``execute_cast/3`` (rpc:call,
        erpc:cast) run here; any other well-formed ``{M, F, Arity}`` goes to
        :attr:`spawner` (processes, see ``_spawn``); a malformed one gets ``notsup``."""
        mfa, args = event.mfa, event.args
        if not (
            type(mfa) is tuple
            and len(mfa) == 3
            and type(mfa[0]) is Atom
            and type(mfa[1]) is Atom
            and type(args) is list
            and mfa[2] == len(args)
        ):
            log.info("refusing malformed spawn of %r from %s", mfa, event.sender)
            conn.write(control.spawn_reply(event, 0, Atom("notsup")))
        elif mfa[0] == ERPC and mfa[1:] in ((EXECUTE_CALL, 4), (EXECUTE_CAST, 3)):
            self._erpc(conn, event)
        elif self.spawner is not None:
            self.spawner(conn, event)
        else:
            conn.write(control.spawn_reply(event, 0, Atom("notsup")))

    def _erpc(self, conn: Peer, event: ev.SpawnRequest) -> None:
        req_id, caller, mfa, args = event.req_id, event.sender, event.mfa, event.args
        monitor = type(event.opts) is list and Atom("monitor") in event.opts
        pid = self._processes.new_pid()
        flags = SPAWN_MONITOR_FLAG if monitor else 0
        conn.write(control.spawn_reply(event, flags, pid))
        if mfa[1] == EXECUTE_CALL:
            res_ref, module, function, call_args = args
            self._spawn(
                self._erpc_call(
                    conn, pid, caller, req_id, monitor, res_ref, module, function, call_args
                )
            )
        else:
            self._spawn(self.rpc.call(args[0], args[1], args[2]))

    async def _erpc_call(
        self,
        conn: Peer,
        pid: Pid,
        caller: Pid,
        req_id: Reference,
        monitor: bool,
        res_ref: Any,
        module: Any,
        function: Any,
        args: Any,
    ) -> None:
        kind, value = await self.rpc.call(module, function, args)
        if kind == ERROR and not (type(value) is tuple and value and value[0] == UNDEF):
            reason: Any = (res_ref, ERROR, value, [])
        elif kind == ERROR:
            reason = (res_ref, ERROR, value[0], value[1])
        else:
            reason = (res_ref, kind, value)
        if monitor and not conn.closed:
            conn.write(control.monitor_exit(pid, caller, req_id, reason, codec=self._codec))

    def _spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro)
