"""The group table of one ``pg`` scope: who is in which group, no I/O.

Mirrors the state of OTP's ``pg`` gen_server (kernel/src/pg.erl, OTP 23+): local members
(pids of this node, each with the groups it joined) and, per discovered peer scope, the
groups that peer reported. A pid may join a group more than once and is then listed
more than once, as in pg. Every change returns the :class:`Joined` / :class:`Left` events
it caused, which the scope publishes.

Group keys are made hashable the way the term decoder does it (lists become
:class:`FrozenList`, maps :class:`FrozenMap`) and a Python ``str`` becomes the UTF-8
binary it is sent as, so a group joined here under ``"room"`` is the group Erlang knows
as ``<<"room">>``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nodemesh.term.types import Atom, FrozenList, FrozenMap, Pid

__all__ = ["GroupChange", "Joined", "Left", "Membership", "RemoteView", "group_key"]


@dataclass(frozen=True, slots=True)
class Joined:
    """``pids`` joined ``group`` (on this node or on a peer scope's node)."""

    group: Any
    pids: tuple[Pid, ...]


@dataclass(frozen=True, slots=True)
class Left:
    """``pids`` left ``group``: they left, exited, or their node's scope went away."""

    group: Any
    pids: tuple[Pid, ...]


GroupChange = Joined | Left


class RemoteView:
    """The members of one group on other nodes, replaced on every change of them: what
    a broadcast reads per message, with no call and no collection built. ``members`` is
    a tuple of pids, ``nodes`` the number of nodes they are on."""

    __slots__ = ("__weakref__", "group", "members", "nodes")

    def __init__(self, group: Any) -> None:
        self.group = group
        self.members: tuple[Pid, ...] = ()
        self.nodes = 0

    def __repr__(self) -> str:
        return f"<RemoteView {self.group!r}: {len(self.members)} on {self.nodes} nodes>"


def group_key(group: Any) -> Any:
    """The hashable form of a group term. Raises :class:`TypeError` for a value that has
    no hashable Erlang form."""
    kind = type(group)
    if kind in _ATOMIC:
        return group
    if kind is str:
        return group.encode()
    if kind is list or kind is FrozenList:
        return FrozenList(map(group_key, group))
    if kind is tuple:
        return tuple(map(group_key, group))
    if isinstance(group, Mapping) and kind is not FrozenMap:
        return FrozenMap({group_key(k): group_key(v) for k, v in group.items()})
    hash(group)
    return group


#: Types whose values are their own key (the common groups: atoms, binaries, numbers).
_ATOMIC = frozenset({Atom, bytes, int, float, bool, Pid, type(None)})


class Membership:
    """Local and remote members of every group of one scope."""

    def __init__(self) -> None:
        self._local: dict[Pid, list[Any]] = {}
        self._local_groups: dict[Any, list[Pid]] = {}
        self._remote: dict[Pid, dict[Any, list[Pid]]] = {}
        # Every group's remote members in OTP pg's order, the newest join first (pg's
        # ets list: [Pid | All] on a join, Pids ++ (All -- OldPids) on a sync): what
        # pg:get_members gives on an Erlang node, and the order a broadcast sends in.
        self._order: dict[Any, list[Pid]] = {}
        # Views of groups' remote members that callers hold (a PubSub's broadcast group),
        # renewed on every remote change: weakly held, so they go with their holders.
        self._views: weakref.WeakValueDictionary[Any, RemoteView] = weakref.WeakValueDictionary()

    # -- queries -------------------------------------------------------------------------
    def members(self, group: Any) -> list[Pid]:
        """Every member of ``group``: local ones first, then the remote ones in pg's order."""
        return [*self._local_groups.get(group, ()), *self._order.get(group, ())]

    def local_members(self, group: Any) -> list[Pid]:
        """Members of ``group`` on this node."""
        return list(self._local_groups.get(group, ()))

    def remote_members(self, group: Any) -> tuple[Pid, ...]:
        """Members of ``group`` on other nodes, the most recently joined first (as pg)."""
        return tuple(self._order.get(group, ()))

    def remote_view(self, group: Any) -> RemoteView:
        """The remote members of ``group`` as a :class:`RemoteView`, kept current."""
        view = self._views.get(group)
        if view is None:
            view = self._views[group] = RemoteView(group)
            self._refresh(view)
        return view

    def which_groups(self) -> list[Any]:
        """Groups with at least one member anywhere."""
        seen = dict.fromkeys(self._local_groups)
        for groups in self._remote.values():
            seen.update(dict.fromkeys(groups))
        return list(seen)

    def is_local_member(self, pid: Pid) -> bool:
        return pid in self._local

    def local_snapshot(self) -> list[tuple[Any, list[Pid]]]:
        """``[{Group, [Pid]}]`` of local members: the body of pg's ``sync`` cast."""
        return [(group, list(pids)) for group, pids in self._local_groups.items()]

    def peers(self) -> list[Pid]:
        """The peer scopes discovered so far."""
        return list(self._remote)

    def has_peer(self, peer: Pid) -> bool:
        return peer in self._remote

    # -- local changes -------------------------------------------------------------------
    def join_local(self, group: Any, pids: list[Pid]) -> list[GroupChange]:
        """Add local ``pids`` to ``group`` (the caller monitors pids that were not
        members of any group yet: see :meth:`is_local_member`)."""
        for pid in pids:
            self._local.setdefault(pid, []).append(group)
        self._local_groups[group] = pids + self._local_groups.get(group, [])
        return [Joined(group, tuple(pids))]

    def leave_local(self, group: Any, pids: list[Pid]) -> list[GroupChange]:
        """Remove local ``pids`` from ``group``; only those that were members count."""
        gone = [pid for pid in pids if group in self._local.get(pid, ())]
        for pid in gone:
            groups = self._local[pid]
            groups.remove(group)
            if not groups:
                del self._local[pid]
        return self._drop_from(self._local_groups, group, gone)

    def drop_local(self, pid: Pid) -> tuple[list[Any], list[GroupChange]]:
        """A local member exited: remove it from every group it joined."""
        groups = self._local.pop(pid, [])
        changes: list[GroupChange] = []
        for group in groups:
            changes += self._drop_from(self._local_groups, group, [pid])
        return groups, changes

    # -- remote changes ------------------------------------------------------------------
    def add_peer(self, peer: Pid) -> None:
        self._remote.setdefault(peer, {})  # no members yet: nothing kept changes

    def sync(self, peer: Pid, groups: Iterable[tuple[Any, list[Pid]]]) -> list[GroupChange]:
        """Replace what ``peer`` reported with ``groups`` (pg's ``handle_sync``)."""
        old = self._remote.get(peer, {})
        new: dict[Any, list[Pid]] = {}
        for group, pids in groups:
            new[group] = pids + new.get(group, [])
        self._remote[peer] = new
        changes: list[GroupChange] = []
        for group in old.keys() | new.keys():
            before, after = old.get(group, []), new.get(group, [])
            if before != after:
                self._reorder(group, before, after)
                changes += _diff(group, before, after)
        self._remote_changed()
        return changes

    def join_remote(self, peer: Pid, group: Any, pids: list[Pid]) -> list[GroupChange]:
        """``peer`` says ``pids`` joined ``group``; ignored from an unknown peer, as pg does."""
        groups = self._remote.get(peer)
        if groups is None:
            return []
        groups[group] = pids + groups.get(group, [])
        self._reorder(group, [], pids)
        self._remote_changed()
        return [Joined(group, tuple(pids))]

    def leave_remote(self, peer: Pid, pids: list[Pid], groups: list[Any]) -> list[GroupChange]:
        """``peer`` says ``pids`` left ``groups``; ignored from an unknown peer."""
        known = self._remote.get(peer)
        if known is None:
            return []
        changes: list[GroupChange] = []
        for group in groups:
            gone = [p for p in pids if p in known.get(group, ())]
            changes += self._drop_from(known, group, gone)
            self._reorder(group, gone, [])
        self._remote_changed()
        return changes

    def drop_peer(self, peer: Pid) -> list[GroupChange]:
        """A peer scope went down (or its node did): forget everything it reported."""
        groups = self._remote.pop(peer, {})
        for group, pids in groups.items():
            self._reorder(group, pids, [])
        self._remote_changed()
        return [Left(group, tuple(pids)) for group, pids in groups.items() if pids]

    def _reorder(self, group: Any, gone: list[Pid], came: list[Pid]) -> None:
        """pg's order of ``group`` after ``gone`` left it and ``came`` joined it: Erlang's
        ``Came ++ (All -- Gone)`` (each of ``gone`` removed once, first occurrence)."""
        order = self._order.get(group, [])
        for pid in gone:
            if pid in order:
                order.remove(pid)
        order = came + order
        if order:
            self._order[group] = order
        else:
            self._order.pop(group, None)

    def _remote_changed(self) -> None:
        for view in self._views.values():
            self._refresh(view)

    def _refresh(self, view: RemoteView) -> None:
        view.members = self.remote_members(view.group)
        view.nodes = len({pid.node for pid in view.members})

    @staticmethod
    def _drop_from(table: dict[Any, list[Pid]], group: Any, pids: list[Pid]) -> list[GroupChange]:
        members = table.get(group)
        if not members or not pids:
            return []
        for pid in pids:
            members.remove(pid)
        if not members:
            del table[group]
        return [Left(group, tuple(pids))]


def _diff(group: Any, before: list[Pid], after: list[Pid]) -> list[GroupChange]:
    left = [pid for pid in before if pid not in after]
    joined = [pid for pid in after if pid not in before]
    changes: list[GroupChange] = []
    if left:
        changes.append(Left(group, tuple(left)))
    if joined:
        changes.append(Joined(group, tuple(joined)))
    return changes
