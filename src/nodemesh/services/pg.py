"""OTP ``pg`` process groups, speaking the protocol of kernel/src/pg.erl (OTP 23+).

A scope is a process registered under the scope's name on every node that takes part.
Theory of operation, as pg.erl does it:

* A scope finds its peers by sending ``{discover, ScopePid}`` to ``{Scope, Node}``. The
  peer answers with the cast ``{'$gen_cast', {sync, PeerPid, [{Group, [Pid]}]}}`` (its
  local members) and, the first time, monitors us and sends ``{discover, PeerPid}`` back.
* Membership changes go to every known peer scope: ``{join, ScopePid, Group, PidOrPids}``
  and ``{leave, ScopePid, PidOrPids, [Group]}``. Joins and leaves from a scope that was
  never discovered are ignored.
* A peer scope's ``'DOWN'`` (it stopped, or its node went away) drops all it reported; a
  local member's ``'DOWN'`` removes it from its groups and tells the peers.

nodemesh nodes are hidden, and Erlang starts discovery only towards visible nodes
(``nodes()``, ``{nodeup, N}``), so this scope discovers every node it connects to, again
after each reconnect, and every ``rediscover_interval`` seconds the connected nodes
where it knows no scope (one that restarted, or started after the connection).

Erlang's scope crashes (``badarg``) on a message it does not expect, so only pg's exact
shapes are sent. Here a malformed message is logged (rate limited) and dropped; the
scope never crashes on input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nodemesh.errors import ConfigError, MailboxClosedError, NodeDownError, NodemeshError
from nodemesh.runtime.events import NodeUp
from nodemesh.runtime.ratelimit import RateLimitedLog
from nodemesh.runtime.streams import Publisher, Stream
from nodemesh.services._membership import (
    GroupChange,
    Joined,
    Left,
    Membership,
    RemoteView,
    group_key,
)
from nodemesh.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from collections.abc import Callable

    from nodemesh.runtime.mailbox import Mailbox
    from nodemesh.runtime.node import Node

__all__ = ["GroupChange", "Joined", "Left", "PgScope", "RemoteView"]

log = logging.getLogger("nodemesh.pg")

DISCOVER, SYNC, JOIN, LEAVE = Atom("discover"), Atom("sync"), Atom("join"), Atom("leave")
GEN_CAST, DOWN, PROCESS = Atom("$gen_cast"), Atom("DOWN"), Atom("process")


class PgScope:
    """One ``pg`` scope on ``node`` (``"pg"`` is the scope ``pg:join/2`` uses).

    Use ``async with PgScope(node) as scope:``, or :meth:`start` and :meth:`aclose`.
    Groups are any Erlang terms; a Python ``str`` group is the binary Erlang sees.
    """

    def __init__(
        self,
        node: Node,
        scope: str = "pg",
        *,
        rediscover_interval: float = 5.0,
        drop_log_interval: float = 10.0,
    ) -> None:
        if not rediscover_interval > 0:
            raise ConfigError(f"rediscover_interval must be positive, got {rediscover_interval!r}")
        self.node = node
        self.name = scope
        self.rediscover_interval = rediscover_interval
        self._table = Membership()
        self._peer_refs: dict[Pid, Reference] = {}
        self._member_refs: dict[Pid, Reference] = {}
        self._changes: Publisher[GroupChange] = Publisher(f"pg scope {scope} changes")
        self._waiters: list[asyncio.Future[None]] = []
        self._drops = RateLimitedLog(log, drop_log_interval)
        self._mailbox: Mailbox | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> Pid:
        """The scope process's pid (what peer scopes monitor). Raises
        :class:`NodemeshError` before :meth:`start`."""
        if self._mailbox is None:
            raise NodemeshError(f"the pg scope {self.name!r} is not started")
        return self._mailbox.pid

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Register the scope on the node and discover the peers connected now. Raises
        :class:`NameTakenError` when the scope's name is already registered on the node."""
        if self._mailbox is not None:
            return
        events = self.node.events(max_queued=0)  # subscribed before reading nodes(): no gap
        self._mailbox = self.node.register(self.name, max_queued=0)
        for peer in self.node.nodes():
            self._discover(peer)
        self._task = asyncio.create_task(self._run(events), name=f"pg scope {self.name}")

    async def _run(self, events: Stream[Any]) -> None:
        """Serve the scope until cancelled or the node stops."""
        async with events, asyncio.TaskGroup() as group:
            group.create_task(self._serve_mailbox())
            group.create_task(self._rediscover())
            async for event in events:
                if type(event) is NodeUp:
                    self._discover(event.node)

    async def aclose(self) -> None:
        """Leave the scope: peers see our members go (through their monitor of us)."""
        if self._mailbox is not None:
            self._mailbox.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drops.close()
        self._changes.close()

    async def __aenter__(self) -> PgScope:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- queries -------------------------------------------------------------------------
    def members(self, group: Any) -> list[Pid]:
        """Every member of ``group`` on every node of the scope (``pg:get_members/2``)."""
        return self._table.members(group_key(group))

    def local_members(self, group: Any) -> list[Pid]:
        """Members of ``group`` on this node (``pg:get_local_members/2``)."""
        return self._table.local_members(group_key(group))

    def remote_members(self, group: Any) -> list[Pid]:
        """Members of ``group`` on other nodes."""
        return list(self._table.remote_members(group_key(group)))

    def remote_view(self, group: Any) -> RemoteView:
        """The members of ``group`` on other nodes as a :class:`RemoteView` kept current:
        read its ``members`` (a tuple) and ``nodes`` each time (a broadcast's hot path:
        no call, no list per message). It lives as long as the caller holds it."""
        return self._table.remote_view(group_key(group))

    def which_groups(self) -> list[Any]:
        """Groups with a member anywhere (``pg:which_groups/1``)."""
        return self._table.which_groups()

    def peers(self) -> list[Pid]:
        """Pids of the peer scopes discovered (one per node taking part)."""
        return self._table.peers()

    def changes(self, *, max_queued: int | None = None) -> Stream[GroupChange]:
        """A stream of :class:`Joined` / :class:`Left` from now on (``pg:monitor_scope``).
        ``max_queued`` bounds it as :meth:`Node.events` streams are bounded."""
        bound = self.node.config.max_queued_events if max_queued is None else max_queued
        return self._changes.subscribe(bound or None)

    async def wait_for_members(
        self,
        group: Any,
        predicate: Callable[[list[Pid]], bool] = bool,
        timeout: float | None = None,
    ) -> list[Pid]:
        """Wait until ``predicate(members(group))`` holds (default: not empty) and return
        the members. Raises :class:`TimeoutError` after ``timeout`` seconds."""
        key = group_key(group)
        async with asyncio.timeout(timeout):
            while not predicate(members := self._table.members(key)):
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
        return members

    # -- joining and leaving ---------------------------------------------------------------
    def join(self, group: Any, pids: Pid | list[Pid]) -> None:
        """Add local pids to ``group`` and tell every peer scope (``pg:join/3``).
        Raises :class:`ValueError` for a pid of another node, :class:`TypeError` for a
        group with no hashable Erlang form."""
        key, members = group_key(group), self._local_pids(pids)
        for pid in members:
            if not self._table.is_local_member(pid):
                self._member_refs[pid] = self._monitor(pid)
        self._changed(self._table.join_local(key, members))
        self._tell_peers((JOIN, self.pid, key, pids if type(pids) is Pid else members))

    def leave(self, group: Any, pids: Pid | list[Pid]) -> bool:
        """Remove local pids from ``group`` (``pg:leave/3``); False if none was a member.
        Raises :class:`ValueError` for a pid of another node."""
        key, members = group_key(group), self._local_pids(pids)
        changes = self._table.leave_local(key, members)
        if not changes:
            return False
        for pid in members:
            if not self._table.is_local_member(pid):
                self._demonitor(self._member_refs.pop(pid, None))
        self._changed(changes)
        self._tell_peers((LEAVE, self.pid, pids if type(pids) is Pid else members, [key]))
        return True

    def _local_pids(self, pids: Pid | list[Pid]) -> list[Pid]:
        members = [pids] if isinstance(pids, Pid) else list(pids)
        for pid in members:
            if type(pid) is not Pid or pid.node != self.node.name:
                raise ValueError(f"only pids of {self.node.name} can join here, not {pid!r}")
        return members

    # -- the scope process -----------------------------------------------------------------
    async def _serve_mailbox(self) -> None:
        assert self._mailbox is not None
        with contextlib.suppress(MailboxClosedError):
            while True:
                message = await self._mailbox.receive()
                try:
                    self._handle(message)
                except (TypeError, ValueError) as exc:  # unhashable group, pid list of junk
                    self._drop(message, str(exc))

    def _handle(self, message: Any) -> None:
        # tuple(...) patterns: an Erlang list [discover, Pid] is a Python list, not a match.
        match message:
            case tuple(("discover", Pid() as peer)):
                self._on_discover(peer)
            case tuple(("$gen_cast", tuple(("sync", Pid() as peer, list() as groups)))):
                self._on_sync(peer, groups)
            case tuple(("join", Pid() as peer, group, pids)):
                self._changed(self._table.join_remote(peer, group_key(group), _pids(pids)))
            case tuple(("leave", Pid() as peer, pids, list() as groups)):
                keys = [group_key(group) for group in groups]
                self._changed(self._table.leave_remote(peer, _pids(pids), keys))
            case tuple(("DOWN", Reference() as ref, "process", Pid() as pid, _)):
                self._on_down(ref, pid)
            case _:
                self._drop(message, "not a pg message")

    def _on_discover(self, peer: Pid) -> None:
        """pg.erl ``handle_info({discover, Peer})``: sync our members to it, and on first
        contact monitor it and discover it back."""
        self._check_peer(peer)
        self._send(peer, (GEN_CAST, (SYNC, self.pid, self._table.local_snapshot())))
        if not self._table.has_peer(peer):
            self._peer_refs[peer] = self._monitor(peer)
            self._table.add_peer(peer)
            self._send(peer, (DISCOVER, self.pid))

    def _on_sync(self, peer: Pid, groups: list[Any]) -> None:
        """pg.erl ``handle_sync``: the peer's local members replace what we knew."""
        self._check_peer(peer)
        entries = []
        for entry in groups:
            if type(entry) is not tuple or len(entry) != 2 or type(entry[1]) is not list:
                raise ValueError(f"a sync entry is not {{Group, [Pid]}}: {entry!r}")
            entries.append((group_key(entry[0]), _pids(entry[1])))
        if not self._table.has_peer(peer):
            self._peer_refs[peer] = self._monitor(peer)
        self._changed(self._table.sync(peer, entries))

    def _check_peer(self, peer: Pid) -> None:
        # A pid of this node posing as a peer scope would make us our own peer.
        if peer.node == self.node.name:
            raise ValueError(f"a peer scope cannot be on this node: {peer}")

    def _on_down(self, ref: Reference, pid: Pid) -> None:
        if self._member_refs.get(pid) == ref:
            del self._member_refs[pid]
            groups, changes = self._table.drop_local(pid)
            self._changed(changes)
            if groups:
                self._tell_peers((LEAVE, self.pid, pid, groups))
        elif self._peer_refs.get(pid) == ref:
            del self._peer_refs[pid]
            self._changed(self._table.drop_peer(pid))

    async def _rediscover(self) -> None:
        """Every ``rediscover_interval``, discover the connected nodes with no known
        scope. A scope that restarts while its node stays connected sends its discover
        only to visible nodes (pg.erl ``init/1``), never to us; a node without the scope
        drops the message."""
        while True:
            await asyncio.sleep(self.rediscover_interval)
            known = {peer.node for peer in self._table.peers()}
            for node in self.node.nodes():
                if node not in known:
                    self._discover(node)

    # -- plumbing --------------------------------------------------------------------------
    def _discover(self, node: str) -> None:
        if self._mailbox is not None and node != self.node.name:
            self._send((self.name, node), (DISCOVER, self.pid))

    def _tell_peers(self, message: tuple[Any, ...]) -> None:
        for peer in self._table.peers():
            self._send(peer, message)

    def _send(self, dest: Pid | tuple[str, str], message: Any) -> None:
        # Like pg's erlang:send(.., [noconnect]): a peer whose node just went down is
        # skipped; its scope's 'DOWN' follows.
        with contextlib.suppress(NodeDownError):
            self.node.send_nowait(dest, message, sender=self.pid)

    def _monitor(self, pid: Pid) -> Reference:
        assert self._mailbox is not None
        return self._mailbox.monitor(pid)

    def _demonitor(self, ref: Reference | None) -> None:
        if ref is not None and self._mailbox is not None:
            self._mailbox.demonitor(ref)

    def _changed(self, changes: list[GroupChange]) -> None:
        if not changes:
            return
        for change in changes:
            self._changes.publish(change)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _drop(self, message: Any, why: str) -> None:
        text = repr(message)
        self._drops.warning(
            f"pg scope {self.name} dropped malformed messages",
            "pg scope %s dropped a message (%s): %s",
            self.name,
            why,
            text if len(text) <= 200 else text[:200] + "...",
        )


def _pids(value: Any) -> list[Pid]:
    """pg's ``PidOrPids``: a pid or a proper list of pids. Raises :class:`ValueError`."""
    pids = [value] if type(value) is Pid else value
    if type(pids) is not list or any(type(pid) is not Pid for pid in pids):
        raise ValueError(f"not a pid or a list of pids: {value!r}")
    return list(pids)
