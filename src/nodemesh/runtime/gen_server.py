"""GenServers written in Python that Erlang and Elixir call as they call their own.

Subclass :class:`GenServer` and start it with :meth:`Node.start_server`. Its mailbox
takes messages one at a time, in order, as a ``gen_server`` process does
(``stdlib/src/gen_server.erl``, ``decode_msg``/``handle_msg``):

- ``{'$gen_call', {From, Tag}, Request}`` (``gen_server:call``, ``GenServer.call``,
  ``multi_call``, :meth:`Node.call`) → :meth:`GenServer.handle_call`; its return value is
  the reply, or :data:`NO_REPLY` to answer later with :meth:`Caller.reply`;
- ``{'$gen_cast', Request}`` (``gen_server:cast``, :meth:`Node.cast`) →
  :meth:`GenServer.handle_cast`;
- anything else → :meth:`GenServer.handle_info`.

Each callback may be a plain function or a coroutine; the next message waits until it is
done. An exception escaping a callback crashes the server like an Erlang process: it is
logged, :meth:`GenServer.terminate` runs, and the server exits with the reason
``{python_exception, <<"Type">>, <<"message">>}``; callers waiting on it see that exit
(in Elixir ``GenServer.call`` exits with ``{Reason, {GenServer, :call, [...]}}``; in
Python :class:`~nodemesh.errors.CallExitError` with that ``reason``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Final

from nodemesh.term.types import Atom, Pid

if TYPE_CHECKING:
    from nodemesh.runtime.mailbox import Mailbox
    from nodemesh.runtime.node import Node

__all__ = ["NO_REPLY", "Caller", "GenServer"]

log = logging.getLogger("nodemesh.gen_server")

GEN_CALL, GEN_CAST, SYSTEM = Atom("$gen_call"), Atom("$gen_cast"), Atom("system")
TERMINATE, UNKNOWN_SYSTEM_MSG = Atom("terminate"), Atom("unknown_system_msg")
NORMAL, SHUTDOWN = Atom("normal"), Atom("shutdown")
PYTHON_EXCEPTION = Atom("python_exception")


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_REPLY"


#: Return this from :meth:`GenServer.handle_call` to reply later with :meth:`Caller.reply`
#: (Erlang's ``{noreply, State}`` from ``handle_call``).
NO_REPLY: Final = _NoReply()

Replier = Callable[[Pid, Any, Any, Any], None]


class Caller:
    """Who made a call (Erlang's ``From``): ``pid`` and ``tag``. :meth:`reply` answers it."""

    __slots__ = ("_replier", "_server", "pid", "tag")

    def __init__(self, pid: Pid, tag: Any, server: Pid, replier: Replier) -> None:
        self.pid = pid
        self.tag = tag
        self._server = server
        self._replier = replier

    def __repr__(self) -> str:
        return f"<Caller {self.pid}>"

    def reply(self, value: Any) -> None:
        """Send ``value`` as the call's reply (``gen_server:reply/2``). Never raises: a
        caller that is gone, or whose node is, never gets it, as in Erlang."""
        self._replier(self._server, self.pid, self.tag, value)


class GenServer:
    """Base class of Python gen_servers; override the callbacks you need.

    While running, ``self.node`` is the :class:`Node` it runs on and ``self.pid`` its pid.
    """

    node: Node
    pid: Pid

    def init(self) -> Any:
        """Called once by :meth:`Node.start_server` before any message; an exception
        here makes ``start_server`` raise it."""

    def handle_call(self, request: Any, caller: Caller) -> Any:
        """Answer a call: return the reply, or :data:`NO_REPLY` and reply later with
        ``caller.reply(value)``. Not overriding it crashes the server on the first call,
        as in Elixir."""
        raise NotImplementedError(f"{type(self).__name__} has no handle_call")

    def handle_cast(self, request: Any) -> Any:
        """Handle a cast (no answer is sent). By default logged and ignored."""
        log.warning("%s: unexpected cast %.200r", type(self).__name__, request)

    def handle_info(self, message: Any) -> Any:
        """Handle any other message. By default logged and ignored (as Elixir does)."""
        log.warning("%s: unexpected message %.200r", type(self).__name__, message)

    def terminate(self, reason: Any) -> Any:
        """Called once when the server stops (:meth:`Node.stop_server`, a crash, the
        node closing) with the exit reason; exceptions here are logged and ignored."""


class _Stop:
    """Queued by :meth:`ServerProcess.stop`: handled after the messages before it."""

    __slots__ = ("done", "reason")

    def __init__(self, reason: Any) -> None:
        self.reason = reason
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class _Resume:
    """Queued by :meth:`ServerProcess.serve_now`: the rest of a message it began."""

    __slots__ = ("error", "pending")

    def __init__(self, pending: Awaitable[Any] | None, error: Exception | None) -> None:
        self.pending = pending
        self.error = error


class _Terminate(Exception):
    """``sys:terminate/2`` (what ``gen_server:stop/1`` from Erlang sends) asked us to stop."""

    def __init__(self, reason: Any) -> None:
        self.reason = reason


class ServerProcess:
    """The loop running one :class:`GenServer` over its mailbox (used by :class:`Node`)."""

    def __init__(self, server: GenServer, mailbox: Mailbox, replier: Replier) -> None:
        self.server = server
        self.mailbox = mailbox
        self._replier = replier
        self.finished: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._async_call = inspect.iscoroutinefunction(server.handle_call)
        self._async_cast = inspect.iscoroutinefunction(server.handle_cast)
        self._async_info = inspect.iscoroutinefunction(server.handle_info)

    async def init(self) -> None:
        """Run ``init``; on an exception close the mailbox with it and raise it."""
        try:
            await _maybe_await(self.server.init())
        except BaseException as exc:
            self.mailbox.close(exit_reason(exc))
            self.finished.set_result(exit_reason(exc))
            raise

    async def run(self) -> None:
        """Handle messages until stopped, crashed or the mailbox closes; then terminate."""
        reason: Any = NORMAL
        stop: _Stop | None = None
        try:
            async for message in self.mailbox:
                if type(message) is _Stop:
                    stop, reason = message, message.reason
                    break
                if type(message) is _Resume:  # begun by serve_now
                    if message.error is not None:
                        raise message.error
                    pending: Awaitable[Any] | None = message.pending
                else:
                    pending = self._start(message)
                if pending is not None:
                    await pending
            else:
                reason = SHUTDOWN  # the mailbox was closed under us: the node is stopping
        except asyncio.CancelledError:
            reason = SHUTDOWN
            raise
        except _Terminate as stop_request:
            reason = stop_request.reason
        except Exception as exc:
            reason = exit_reason(exc)
            log.error("%s %s crashed", type(self.server).__name__, self.mailbox.pid, exc_info=exc)
        finally:
            await self._terminate(reason)
            if stop is not None and not stop.done.done():
                stop.done.set_result(None)

    def serve_now(self, message: Any) -> Any:
        """Begin ``message`` at once (the :class:`ServerMailbox` offers each message that
        finds the server idle): None when that finished it (a plain-function callback),
        else what the task must take: a stop, or a :class:`_Resume` with the rest (the
        awaitable of a coroutine callback, or the exception that stops the server)."""
        if type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL:
            if self._async_call:  # the common case, a call, tested once (hot path)
                return message  # a coroutine made here could be dropped unawaited at a close
        elif type(message) is _Stop or self._coroutine_callback(message):
            return message
        try:
            pending = self._start(message)
        except Exception as exc:  # the task crashes (or stops) the server with it
            return _Resume(None, exc)
        return None if pending is None else _Resume(pending, None)

    def _coroutine_callback(self, message: Any) -> bool:
        """True when ``message`` goes to an ``async def`` callback: a guess by its first
        element (a malformed call or cast goes to ``handle_info``: if the guess is wrong
        the coroutine begun by serve_now is still finished by the task)."""
        if type(message) is tuple and message:
            if message[0] == GEN_CALL:
                return self._async_call
            if message[0] == GEN_CAST:
                return self._async_cast
        return self._async_info

    def _start(self, message: Any) -> Awaitable[Any] | None:
        """Run the callback for ``message``; return what is left to await, if anything."""
        server = self.server
        if type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL:
            origin = message[1]
            if type(origin) is tuple and len(origin) == 2 and type(origin[0]) is Pid:
                me, replier = self.mailbox.pid, self._replier
                caller = Caller(origin[0], origin[1], me, replier)
                result = server.handle_call(message[2], caller)
                kind = type(result)  # _awaitable(result), inline: once per call
                if kind is CoroutineType or (kind not in _PLAIN and inspect.isawaitable(result)):
                    return _reply_later(result, caller)
                if result is not NO_REPLY:
                    replier(me, origin[0], origin[1], result)  # caller.reply(result), inline
                return None
            result = server.handle_info(message)  # not a well-formed call
        elif type(message) is tuple and len(message) == 3 and message[0] == SYSTEM:
            self._system(message)
            return None
        elif type(message) is tuple and len(message) == 2 and message[0] == GEN_CAST:
            result = server.handle_cast(message[1])
        else:
            result = server.handle_info(message)
        return result if _awaitable(result) else None

    def _system(self, message: tuple[Any, ...]) -> None:
        """``{system, From, Request}`` (``sys.erl``): ``{terminate, Reason}`` is answered
        ``ok`` and stops the server with Reason (``gen_server:stop/1,3`` from Erlang);
        other requests get ``{error, {unknown_system_msg, Request}}`` as sys answers."""
        origin, request = message[1], message[2]
        if type(origin) is not tuple or len(origin) != 2 or type(origin[0]) is not Pid:
            return
        caller = Caller(origin[0], origin[1], self.mailbox.pid, self._replier)
        if type(request) is tuple and len(request) == 2 and request[0] == TERMINATE:
            caller.reply(Atom("ok"))
            raise _Terminate(request[1])
        caller.reply((Atom("error"), (UNKNOWN_SYSTEM_MSG, request)))

    async def _terminate(self, reason: Any) -> None:
        try:
            await _maybe_await(self.server.terminate(reason))
        except Exception:  # terminate's failure changes nothing: the server is stopping
            log.exception("%s.terminate failed", type(self.server).__name__)
        finally:
            self.mailbox.close(reason)
            if not self.finished.done():
                self.finished.set_result(reason)

    async def stop(self, reason: Any) -> None:
        """Stop after the messages already queued (``gen_server:stop/3``); wait for it."""
        if self.finished.done():
            return
        request = _Stop(reason)
        self.mailbox.deliver(request)
        await asyncio.wait([request.done, self.finished], return_when=asyncio.FIRST_COMPLETED)


async def _reply_later(result: Awaitable[Any], caller: Caller) -> None:
    """The end of a call whose ``handle_call`` returned an awaitable."""
    value = await result
    if value is not NO_REPLY:
        caller.reply(value)


async def _maybe_await(result: Any) -> Any:
    if inspect.isawaitable(result):
        return await result
    return result


def _awaitable(result: Any) -> bool:
    """``inspect.isawaitable``, with the common answers (a coroutine, a plain value)
    found without its ABC check: this runs once per message."""
    kind = type(result)
    if kind is CoroutineType:
        return True
    if kind in _PLAIN:
        return False
    return inspect.isawaitable(result)


_PLAIN = frozenset({type(None), bool, int, float, str, bytes, tuple, list, dict, Atom, Pid})


def exit_reason(exc: BaseException) -> Any:
    """The Erlang exit reason of a server whose callback raised ``exc``."""
    if isinstance(exc, asyncio.CancelledError):
        return SHUTDOWN
    return (PYTHON_EXCEPTION, type(exc).__name__, str(exc))
