"""gen_server calls out of this node, and the replies its servers send (client side).

A call is made the way OTP's ``gen:do_call/4`` makes one (``stdlib/src/gen.erl``): monitor
the server (MONITOR_P, by pid or by registered name), send ``{'$gen_call', {From, Tag},
Request}``, wait for ``{Tag, Reply}`` or the monitor's DOWN, then demonitor. The tag is
the monitor reference itself, as in gen.erl, so one reference names both.

Every call made from this node has the same ``From``: the :class:`CallRouter`, a mailbox
that hands each reply (or DOWN) to the future of the call waiting for that reference. A
reply whose call already gave up (timed out) finds no future and is dropped: what OTP
24+ uses process aliases for (``[alias | Ref]`` tags), without one more message to wait for.

The reply path serves the other direction: OTP 24+ callers send ``[alias | Ref]`` tags
and are answered at the alias (ALIAS_SEND), exactly as ``gen:reply/2`` does, so a reply
that comes after the caller timed out is dropped by the caller's node instead of landing
in its mailbox. Older tags (a plain reference, multi_call's ``{Ref, Node}``) are answered
with an ordinary SEND to the caller's pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from nodemesh.dist import control
from nodemesh.dist.flags import DistFlag
from nodemesh.dist.gen_call import CallFrames, ReplyFrames, reference_prefix
from nodemesh.errors import (
    CallError,
    CallExitError,
    CallTimeoutError,
    NodeDownError,
    NodemeshError,
    NoProcError,
)
from nodemesh.runtime._deadlines import Deadlines
from nodemesh.runtime._signals import NOCONNECTION, Monitor
from nodemesh.runtime.mailbox import Mailbox
from nodemesh.term.codec import TermCodec
from nodemesh.term.types import Atom, ImproperList, Pid, Reference

if TYPE_CHECKING:
    from nodemesh.runtime._processes import ProcessTable

__all__ = ["GEN_CALL", "GEN_CAST", "CallPeer", "CallRouter", "GenCalls"]

log = logging.getLogger("nodemesh.node")

GEN_CALL, GEN_CAST = Atom("$gen_call"), Atom("$gen_cast")
DOWN, NOPROC, ALIAS, PROCESS = Atom("DOWN"), Atom("noproc"), Atom("alias"), Atom("process")

Target = Pid | str | tuple[str, str]
Ids = tuple[int, int, int]  # a call reference's ID words
_IDS = struct.Struct(">III")
T = TypeVar("T")


class CallPeer(Protocol):
    """The side of a connection calls need (a :class:`Connection` is one)."""

    @property
    def peer(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def paused(self) -> bool: ...
    @property
    def peer_flags(self) -> DistFlag: ...
    def write(self, frame: bytes) -> None: ...
    async def drain(self) -> None: ...


class _Down:
    """What a call's future holds when its monitor fired instead of a reply."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


TIMEOUT = Atom("timeout")
_STOPPED = _Down(Atom("shutdown"))  # this node closed the router: it is stopping
_TIMED_OUT = _Down(TIMEOUT)  # the call's timer fired first


_MAX_TIMEOUTS = 64
#: Seconds a call's DEMONITOR_P may wait for the next call to its node (GenCalls._defer).
_DEFER_FLUSH = 0.1


async def _before(deadline: float | None, waiting: Awaitable[T]) -> T:
    """Await ``waiting`` until ``deadline`` (loop time; None: no limit); TimeoutError
    after. Only for the rare waits of a call: a connect, a full mailbox, a full socket."""
    async with asyncio.timeout_at(deadline):
        return await waiting


class CallRouter(Mailbox):
    """The pid every call of this node comes from: hands ``{Tag, Reply}`` and
    ``('DOWN', Tag, ...)`` to the call waiting on ``Tag``; drops anything else.

    ``pending`` maps each call's reference, by its ID words (the router makes every
    reference it waits on, so they tell them apart, and a tuple hashes in C), to its
    future and the server's node (None for a server on this node). Calls to other nodes
    keep their monitor here, not in the node's signal table: their MONITOR_P_EXIT comes
    to the router (:meth:`Dispatcher._monitor_exit`), and :meth:`node_down` fails them
    when their node's connection drops, which is what those monitors were for.
    """

    __slots__ = ("pending",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: dict[Any, tuple[asyncio.Future[Any], str | None]] = {}

    def deliver(self, message: Any) -> bool:
        if type(message) is tuple:
            if len(message) == 2 and type(message[0]) is Reference:  # a reply: _end, inline
                ids = message[0].ids
                entry = self.pending.pop(ids, None) if type(ids) is tuple else None
                if entry is not None and not entry[0].done():
                    entry[0].set_result(message[1])
            elif len(message) == 5 and message[0] == DOWN and type(message[1]) is Reference:
                self._end(message[1].ids, _Down(message[4]))
        return False  # never queues, so never full

    def _end(self, ids: Any, result: Any) -> None:
        if type(ids) is tuple:
            entry = self.pending.pop(ids, None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(result)

    def node_down(self, node: str) -> None:
        """The connection to ``node`` dropped: its calls end as ``noconnection``."""
        for ids, (_, where) in list(self.pending.items()):
            if where == node:
                self._end(ids, _Down(NOCONNECTION))

    def close(self, reason: Any = "normal") -> None:
        pending, self.pending = self.pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_result(_STOPPED)
        super().close(reason)


class GenCalls:
    """``call``/``cast``/``multi_call`` from this node and the reply path of its servers.

    ``peers`` is the node's live connections by name; ``connect`` dials one (raising
    :class:`NodeDownError`); ``spawn`` runs a coroutine in the node's task group.
    """

    def __init__(
        self,
        processes: ProcessTable,
        router: CallRouter,
        peers: Mapping[str, CallPeer],
        connect: Callable[[str], Awaitable[CallPeer]],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        codec: TermCodec,
    ) -> None:
        self._processes = processes
        self._node = processes.node
        self._router = router
        self._peers = peers
        self._connect = connect
        self._spawn = spawn
        self._codec = codec
        self._deferred: dict[CallPeer, bytes] = {}  # DEMONITOR_Ps not yet written
        self._flush_timer: asyncio.TimerHandle | None = None
        self._frames = CallFrames(router.pid, codec)
        # Call references: the node's ids with the top bit of the second word set, so they
        # never meet ProcessTable.make_ref's (its counter would need 2**49 refs to get
        # there), and one random word drawn once, not one os.urandom per call.
        self._ref_count = 0
        self._ref_word = secrets.randbits(32)
        self._replies = ReplyFrames(codec)
        # Made after the node got its creation (Node.start), like the router's pid.
        self._ref_prefix = reference_prefix(processes.atom, processes.creation)
        self._deadlines: dict[Any, Deadlines] = {}  # by timeout value
        # The node's loop, kept: made in Node.start, and asyncio.get_running_loop() costs
        # a getpid() system call on Python 3.11, twice per call.
        self._loop = asyncio.get_running_loop()

    def _where(self, dest: Target) -> tuple[Pid | Atom, str]:
        """``dest`` as (pid or registered name, node)."""
        if type(dest) is Pid:
            return dest, dest.node
        if isinstance(dest, tuple):
            return Atom(dest[0]), dest[1]
        if isinstance(dest, str):
            return Atom(dest), self._node
        raise TypeError(f"not a destination: {dest!r} (a Pid, a name or (name, node))")

    # -- call ------------------------------------------------------------------------------
    async def call(self, dest: Target, request: Any, timeout: float | None) -> Any:
        """See :meth:`Node.call`."""
        proc: Pid | Atom
        if type(dest) is tuple:  # (name, node): _where's common case, inline
            proc, node = Atom(dest[0]), dest[1]
        else:
            proc, node = self._where(dest)
        loop = self._loop
        # The reference's ID words (a Reference only if local; see __init__).
        n = self._ref_count = self._ref_count + 1
        ids = (n & 0x3FFFF, 0x8000_0000 | ((n >> 18) & 0x7FFF_FFFF), self._ref_word)
        future: asyncio.Future[Any] = loop.create_future()
        pending = self._router.pending
        local = node == self._node
        pending[ids] = (future, None if local else node)
        deadline = None
        if timeout is not None:  # one timer per timeout value, not one per call
            deadline = loop.time() + timeout
            deadlines = self._deadlines.get(timeout) or self._deadlines_for(timeout)
            deadlines.add(deadline, future)
        sent: tuple[CallPeer, bytes] | None = None  # the connection, the DEMONITOR_P
        result: Any = _TIMED_OUT
        try:
            if local:
                await self._call_local(proc, self._reference(ids), request, deadline)
            else:
                peer = self._peers.get(node)
                if peer is None or peer.paused:  # the rare case: dial, or wait for room
                    sent = await self._call_remote(proc, node, ids, request, deadline)
                else:
                    sent = self._send_call(peer, proc, ids, request)
            result = await future
        except TimeoutError:
            pass
        finally:
            if not future.done():  # cancelled, or failed before its wait
                future.cancel()
            if result is _TIMED_OUT:  # the router took the others' futures out already
                pending.pop(ids, None)
            # A reply (or a timeout) leaves the monitor in place, a DOWN removed it.
            if sent is None:
                if local:  # a local call's monitor, if it got one
                    self._processes.signals.remove_monitor(self._reference(ids))
            elif (result is _TIMED_OUT or type(result) is not _Down) and not sent[0].closed:
                self._defer(*sent)
        if type(result) is _Down:
            raise self._failure(dest, node, result, timeout)
        return result

    def _deadlines_for(self, timeout: Any) -> Deadlines:
        """A new queue of deadlines for calls with ``timeout``."""
        if len(self._deadlines) >= _MAX_TIMEOUTS:  # many distinct timeouts: forget idle ones
            self._deadlines = {t: d for t, d in self._deadlines.items() if d.busy}
        deadlines = self._deadlines[timeout] = Deadlines(self._loop, _TIMED_OUT)
        return deadlines

    async def _call_remote(
        self, proc: Pid | Atom, node: str, ids: Ids, request: Any, deadline: float | None
    ) -> tuple[CallPeer, bytes]:
        """Connect to ``node`` if needed, send the call, wait while the connection is
        paused. Raises EncodeError, NodeDownError, TimeoutError (``deadline`` passed)."""
        peer = self._peers.get(node) or await self._dial(node, deadline)
        sent = self._send_call(peer, proc, ids, request)
        if peer.paused:
            await _before(deadline, peer.drain())
        return sent

    def _send_call(
        self, peer: CallPeer, proc: Pid | Atom, ids: Ids, request: Any
    ) -> tuple[CallPeer, bytes]:
        """Monitor ``proc`` and send the request; return the connection and the call's
        DEMONITOR_P. Raises EncodeError (nothing sent). The monitor's local half is the
        router's pending entry (see CallRouter)."""
        ref_bytes = self._ref_prefix + _IDS.pack(*ids)
        # The last call's DEMONITOR_P goes after the request, not before it: the server
        # then replies first and removes the old monitor while this side reads the reply
        # (off the round trip's critical path). Its reference differs from the new one,
        # so the order of the two is not observable: the old monitor just lives a little
        # longer, and a DOWN for it finds no pending call here and is dropped.
        after = self._deferred.get(peer, b"")
        frames, demonitor = self._frames.call_then(proc, ref_bytes, request, after)
        if after:  # taken only now: if the request raised EncodeError, it waits on
            del self._deferred[peer]
        peer.write(frames)
        return peer, demonitor

    def node_down(self, node: str) -> None:
        """The connection to ``node`` dropped (called by the node): calls to it fail."""
        self._router.node_down(node)

    def _failure(self, dest: Any, node: str, down: _Down, timeout: float | None) -> Exception:
        """The exception for a call that ended without a reply."""
        if down is _TIMED_OUT:
            return CallTimeoutError(f"{_show(dest)} did not reply within {timeout} s", TIMEOUT)
        if down is _STOPPED:
            return NodeDownError(f"{self._node} stopped during a call to {_show(dest)}")
        return _down_error(dest, node, down.reason)

    def _reference(self, ids: Ids) -> Reference:
        return Reference(self._processes.atom, self._processes.creation, ids)

    def _defer(self, conn: CallPeer, frame: bytes) -> None:
        """Write ``frame`` with the next call to ``conn``, or when the deferral timer
        fires: a caller calling again sends the MONITOR_P and request of its next call
        and the DEMONITOR_P of its last in one write (one syscall, one read there), and
        a call schedules nothing of its own (a callback per call cost a turn of the loop).
        The timer is armed by the first deferral after it fired, so calls in a row arm
        it once per ``_DEFER_FLUSH``; the server's monitor then lives at most that long
        after a reply, which no one can tell from a slow DEMONITOR_P."""
        queued = self._deferred.get(conn)
        self._deferred[conn] = frame if queued is None else queued + frame
        if self._flush_timer is None:
            self._flush_timer = self._loop.call_later(_DEFER_FLUSH, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        deferred, self._deferred = self._deferred, {}
        for conn, frame in deferred.items():
            if not conn.closed:
                conn.write(frame)

    async def _dial(self, node: str, deadline: float | None) -> CallPeer:
        async with asyncio.timeout_at(deadline):
            return await self._connect(node)

    async def _call_local(
        self, proc: Pid | Atom, ref: Reference, request: Any, deadline: float | None
    ) -> None:
        """A server on this node: no encoding, straight into its mailbox."""
        processes = self._processes
        mailbox = processes.get(proc) if isinstance(proc, Pid) else processes.whereis(proc)
        if mailbox is None or mailbox.closed:
            self._router.deliver((DOWN, ref, PROCESS, proc, NOPROC))
            return
        processes.signals.add_monitor(Monitor(ref, self._router.pid, proc, self._node))
        if mailbox.full:
            await _before(deadline, mailbox.wait_room())
        mailbox.deliver((GEN_CALL, (self._router.pid, ref), request))

    # -- cast ------------------------------------------------------------------------------
    def cast(self, dest: Target, request: Any) -> None:
        """See :meth:`Node.cast`."""
        proc, node = self._where(dest)
        message = (GEN_CAST, request)
        if node == self._node:
            processes = self._processes
            mailbox = processes.get(proc) if isinstance(proc, Pid) else processes.whereis(proc)
            if mailbox is not None:
                mailbox.deliver(message)
            return
        me = self._router.pid
        if isinstance(proc, Pid):
            frame = control.send(proc, message, me, codec=self._codec)
        else:
            frame = control.reg_send(me, proc, message, codec=self._codec)
        conn = self._peers.get(node)
        if conn is not None:
            conn.write(frame)
        else:  # gen_server:cast connects too, and never tells the caller it failed
            self._spawn(self._cast_later(node, frame))

    async def _cast_later(self, node: str, frame: bytes) -> None:
        try:
            conn = await self._connect(node)
        except NodemeshError as exc:
            log.debug("cast to %s dropped: %s", node, exc)
            return
        conn.write(frame)

    # -- multi_call ------------------------------------------------------------------------
    async def multi_call(
        self, nodes: Iterable[str], name: str, request: Any, timeout: float | None
    ) -> tuple[dict[str, Any], list[str]]:
        """See :meth:`Node.multi_call`."""
        targets = list(dict.fromkeys(nodes))
        replies: dict[str, Any] = {}

        async def one(node: str) -> None:
            with contextlib.suppress(CallError, NodeDownError):
                replies[node] = await self.call((name, node), request, timeout)

        async with asyncio.TaskGroup() as group:
            for node in targets:
                group.create_task(one(node))
        return replies, [node for node in targets if node not in replies]

    # -- the reply path of servers here -------------------------------------------------------
    def reply(self, sender: Pid, to: Any, tag: Any, value: Any) -> None:
        """Answer the call ``{to, tag}`` with ``value`` from the server ``sender``, as
        ``gen:reply/2`` does; dropped when the caller's node is gone (as in Erlang)."""
        if type(to) is not Pid:
            return
        if to.node == self._node:
            self._processes.deliver(to, (tag, value))
            return
        conn = self._peers.get(to.node)
        if conn is None or conn.closed:
            log.debug("reply to %s dropped: %s is not connected", to, to.node)
            return
        if type(tag) is Reference:  # a plain tag (nodemesh's and pre-OTP-24 callers)
            conn.write(self._replies.to_pid(sender, to, tag, value))
            return
        alias = _alias_of(tag)
        if alias is not None and conn.peer_flags & DistFlag.ALIAS:
            conn.write(self._replies.to_alias(sender, alias, tag, value))
        else:
            conn.write(self._replies.to_pid(sender, to, tag, value))


def _alias_of(tag: Any) -> Reference | None:
    """The alias of an OTP 24+ tag, ``[alias | Alias]`` or ``[[alias | Alias] | _]``
    (the two forms ``gen:reply/2`` sends to the alias)."""
    if type(tag) is ImproperList:
        if tag.elements == (ALIAS,) and type(tag.tail) is Reference:
            return tag.tail
        head = tag.elements[0] if tag.elements else None
    elif type(tag) is list and tag:
        head = tag[0]
    else:
        return None
    if type(head) is ImproperList and head.elements == (ALIAS,) and type(head.tail) is Reference:
        return head.tail
    return None


def _down_error(dest: Any, node: str, reason: Any) -> NodemeshError:
    """The error for a call whose monitor fired: gen:call's exits, as Python errors."""
    if reason == NOPROC:
        return NoProcError(f"no process at {_show(dest)}", reason)
    if reason == NOCONNECTION:
        return NodeDownError(f"{node} is not connected (or went down during the call)")
    return CallExitError(f"{_show(dest)} exited during the call: {reason!r:.200}", reason)


def _show(dest: Any) -> str:
    return str(dest) if type(dest) is Pid else repr(dest)
