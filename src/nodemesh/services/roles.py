"""Roles: which processes of the cluster do a kind of work, and calls to any one of them.

A role is a ``pg`` group in the scope ``nodemesh_roles`` (by default), so Erlang and
Elixir see the same members: ``pg:get_members(nodemesh_roles, <<"b">>)`` (a Python
``str`` role is the binary Erlang sees) — and an Erlang process that joins that group is
a member Python calls. A member's small metadata (``{"zone": "eu-1"}``) rides in a
second group, ``{'$role_meta', Role, Metadata}``, which the member joins too: it spreads
and disappears with the member, and needs no protocol of its own.

:meth:`Roles.call_any` makes a gen_server call (:meth:`Node.call`) to one live member,
taking members in turn (round robin over the members sorted by node and pid), and skips
members whose node is gone. When the call fails because the member or its node went away
(:class:`NoProcError`, :class:`NodeDownError`, also mid-call) it is tried once more on
another member, on another node where there is one. That retry means a request may run
twice (the first member may have handled it before its node died): requests sent with
``call_any`` should be idempotent. A timeout or a server crash is never retried: the
member may have done the work.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nodemesh.errors import NodeDownError, NoMembersError, NoProcError
from nodemesh.services._membership import group_key
from nodemesh.services.pg import PgScope
from nodemesh.term.types import Atom, FrozenMap, Pid

if TYPE_CHECKING:
    from nodemesh.runtime.gen_server import GenServer
    from nodemesh.runtime.node import Node

__all__ = ["Member", "Roles", "RolesStatistics"]

log = logging.getLogger("nodemesh.roles")

META = Atom("$role_meta")
NOPROC = Atom("noproc")
Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a role: its pid, node and metadata (strings come back as ``str``)."""

    pid: Pid
    node: str
    metadata: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RolesStatistics:
    """Counts since start: calls made with :meth:`Roles.call_any`, second tries, and
    calls that raised."""

    calls: int
    retries: int
    failures: int


class Roles:
    """Roles of the cluster over a :class:`PgScope` (started and closed with this object
    unless you pass one already running)."""

    def __init__(
        self, node: Node, *, scope: PgScope | None = None, scope_name: str = "nodemesh_roles"
    ) -> None:
        self.node = node
        self._own_scope = scope is None
        self.scope = scope if scope is not None else PgScope(node, scope_name)
        self._turn: dict[Any, int] = {}
        self._calls = self._retries = self._failures = 0

    async def start(self) -> None:
        """Start the scope (when this object made it). Raises :class:`NameTakenError`
        if the scope's name is registered on the node already."""
        if self._own_scope:
            await self.scope.start()

    async def aclose(self) -> None:
        """Close the scope when this object made it: peers see our members go."""
        if self._own_scope:
            await self.scope.aclose()

    async def __aenter__(self) -> Roles:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- advertising -----------------------------------------------------------------------
    def advertise(self, role: Any, pid: Pid, metadata: Mapping[str, Scalar] | None = None) -> None:
        """Make the local process ``pid`` a member of ``role``, with ``metadata`` (a small
        flat mapping of ``str`` to ``str``/``int``/``float``/``bool``). It stays a member
        until :meth:`withdraw` or until it exits. Raises :class:`ValueError` for a pid of
        another node, :class:`TypeError` for metadata of another shape."""
        meta = _check_metadata(metadata or {})
        self.scope.join(role, pid)
        if meta:
            self.scope.join((META, role, meta), pid)

    def withdraw(self, role: Any, pid: Pid) -> bool:
        """Remove the local process ``pid`` from ``role``; False if it was not a member
        (or is not a process of this node)."""
        if pid.node != self.node.name:
            return False
        key = self.scope.leave(role, pid)
        for group in self._meta_groups(role):
            if pid in self.scope.local_members(group):
                self.scope.leave(group, pid)
        return key

    async def serve(
        self, role: Any, server: GenServer, *, metadata: Mapping[str, Scalar] | None = None
    ) -> Pid:
        """Start ``server`` (:meth:`Node.start_server`) and advertise it in ``role``;
        return its pid. Raises what :meth:`Node.start_server` and :meth:`advertise` raise."""
        pid = await self.node.start_server(server)
        self.advertise(role, pid, metadata)
        return pid

    # -- looking up ------------------------------------------------------------------------
    def members(self, role: Any) -> list[Member]:
        """The live members of ``role`` on every node, sorted by node and pid."""
        metadata: dict[Pid, Mapping[str, Scalar]] = {}
        for group in self._meta_groups(role):
            for pid in self.scope.members(group):
                metadata[pid] = _read_metadata(group[2])
        pids = sorted(set(self.scope.members(role)), key=_order)
        return [Member(pid, pid.node, metadata.get(pid, {})) for pid in pids]

    async def wait_for_members(
        self, role: Any, count: int = 1, timeout: float | None = None
    ) -> list[Member]:
        """Wait until ``role`` has at least ``count`` members; return them. Raises
        :class:`TimeoutError` after ``timeout`` seconds."""
        await self.scope.wait_for_members(role, lambda pids: len(set(pids)) >= count, timeout)
        return self.members(role)

    def statistics(self) -> RolesStatistics:
        """A frozen snapshot of the call counters."""
        return RolesStatistics(self._calls, self._retries, self._failures)

    # -- calling ---------------------------------------------------------------------------
    async def call_any(self, role: Any, request: Any, *, timeout: float | None = 5.0) -> Any:
        """Call one live member of ``role`` (:meth:`Node.call`) and return its reply.

        Members are taken in turn; one whose node is not connected is skipped. If the
        member or its node goes away before replying, the call is made once more on
        another member (so requests should be idempotent). Raises
        :class:`NoMembersError` when no member is left to try, what :meth:`Node.call`
        raises otherwise (the second failure when the retry fails too)."""
        self._calls += 1
        tried: set[Pid] = set()
        dead_nodes: set[str] = set()
        failure: Exception | None = None
        for attempt in range(2):
            pid = self._pick(role, tried, dead_nodes)
            if pid is None:
                break
            if attempt:
                self._retries += 1
                log.info("call to role %r: retrying on %s after: %s", role, pid, failure)
            try:
                return await self.node.call(pid, request, timeout=timeout)
            except NodeDownError as exc:
                dead_nodes.add(pid.node)
                failure = exc
            except NoProcError as exc:
                failure = exc
            except Exception:
                self._failures += 1
                raise
            tried.add(pid)
        self._failures += 1
        if failure is not None:
            raise failure
        raise NoMembersError(f"no live member of role {role!r}", NOPROC)

    def _pick(self, role: Any, tried: set[Pid], dead_nodes: set[str]) -> Pid | None:
        """The next member in turn, skipping ``tried`` ones, nodes that failed, nodes not
        connected; a member on a node not tried yet is preferred."""
        here = self.node.name
        live = [
            m.pid
            for m in self.members(role)
            if m.pid not in tried
            and m.node not in dead_nodes
            and (m.node == here or self.node.is_connected(m.node))
        ]
        fresh = [pid for pid in live if pid.node not in {p.node for p in tried}]
        choices = fresh or live
        if not choices:
            return None
        turn = self._turn.get(role, 0)
        self._turn[role] = turn + 1
        return choices[turn % len(choices)]

    def _meta_groups(self, role: Any) -> list[tuple[Any, ...]]:
        key = group_key(role)
        return [
            g
            for g in self.scope.which_groups()
            if type(g) is tuple and len(g) == 3 and g[0] == META and g[1] == key
        ]


def _order(pid: Pid) -> tuple[str, int, int]:
    return (pid.node, pid.id, pid.serial)


def _check_metadata(metadata: Mapping[str, Scalar]) -> FrozenMap:
    """Metadata as the group term it travels in. Raises :class:`TypeError`."""
    items: dict[Any, Any] = {}
    for k, v in metadata.items():
        if type(k) is not str or type(v) not in (str, int, float, bool):
            raise TypeError(f"role metadata maps str to str/int/float/bool, got {k!r}: {v!r}")
        items[k.encode()] = v.encode() if type(v) is str else v
    return FrozenMap(items)


def _read_metadata(term: Any) -> Mapping[str, Scalar]:
    """Metadata read back from its group term (Erlang binaries become ``str``)."""
    if not isinstance(term, Mapping):
        return {}
    out: dict[str, Scalar] = {}
    for k, v in term.items():
        if type(k) is bytes and type(v) in (bytes, int, float, bool):
            out[k.decode(errors="replace")] = v.decode(errors="replace") if type(v) is bytes else v
    return out
