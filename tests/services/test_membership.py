"""The pure group table behind a pg scope (no node, no sockets)."""

from __future__ import annotations

import pytest

from nodemesh.services._membership import Joined, Left, Membership, group_key
from nodemesh.term.types import Atom, FrozenList, FrozenMap, Pid

A = Atom("a@h")
B = Atom("b@h")
SCOPE_B = Pid(B, 1, 0, 1)
P1, P2 = Pid(A, 10, 0, 1), Pid(A, 11, 0, 1)
R1, R2 = Pid(B, 20, 0, 1), Pid(B, 21, 0, 1)


def test_group_key_matches_what_erlang_sends_back() -> None:
    """str groups become the binary Erlang sees; lists and maps become hashable twins."""
    assert group_key("room") == b"room"
    assert group_key(Atom("g")) == Atom("g") and type(group_key(Atom("g"))) is Atom
    assert group_key([1, [2]]) == FrozenList([1, FrozenList([2])])
    assert group_key(("t", {"k": [1]})) == (b"t", FrozenMap({b"k": FrozenList([1])}))
    with pytest.raises(TypeError):
        group_key({1, 2})


def test_local_join_leave_and_duplicates() -> None:
    """A pid may join twice (listed twice, as in pg); leave removes one entry at a time."""
    table = Membership()
    assert table.join_local("g", [P1]) == [Joined("g", (P1,))]
    table.join_local("g", [P1, P2])
    assert table.members("g") == [P1, P2, P1]
    assert table.leave_local("g", [P1]) == [Left("g", (P1,))]
    assert table.local_members("g") == [P2, P1]
    assert table.leave_local("other", [P1]) == []
    groups, changes = table.drop_local(P1)
    assert groups == ["g"] and changes == [Left("g", (P1,))]
    assert table.local_snapshot() == [("g", [P2])]


def test_remote_join_from_unknown_peer_is_ignored() -> None:
    """Joins and leaves from a scope never discovered change nothing (pg.erl does the same)."""
    table = Membership()
    assert table.join_remote(SCOPE_B, "g", [R1]) == []
    assert table.leave_remote(SCOPE_B, [R1], ["g"]) == []
    assert table.members("g") == []


def test_sync_replaces_what_the_peer_reported() -> None:
    """A sync is the whole truth about the peer: missing groups leave, new ones join."""
    table = Membership()
    table.add_peer(SCOPE_B)
    table.join_remote(SCOPE_B, "old", [R1])
    changes = table.sync(SCOPE_B, [("new", [R1, R2]), ("old", [R1])])
    assert changes == [Joined("new", (R1, R2))]
    changes = table.sync(SCOPE_B, [("new", [R2])])
    assert sorted(changes, key=repr) == sorted([Left("old", (R1,)), Left("new", (R1,))], key=repr)
    assert list(table.remote_members("new")) == [R2]
    assert table.which_groups() == ["new"]


def test_drop_peer_forgets_its_members() -> None:
    """A peer scope's DOWN removes every member it reported, and only those."""
    table = Membership()
    table.join_local("g", [P1])
    table.add_peer(SCOPE_B)
    table.join_remote(SCOPE_B, "g", [R1])
    assert table.drop_peer(SCOPE_B) == [Left("g", (R1,))]
    assert table.members("g") == [P1]
    assert table.peers() == []


def test_remote_view_follows_every_remote_change() -> None:
    """A remote view is renewed by each join, leave, sync and peer down, and only
    holds the group's members on other nodes."""
    table = Membership()
    table.add_peer(SCOPE_B)
    view = table.remote_view("g")
    assert (view.members, view.nodes) == ((), 0)
    table.join_remote(SCOPE_B, "g", [R1])
    assert (view.members, view.nodes) == ((R1,), 1)
    assert table.remote_view("g") is view
    table.join_remote(SCOPE_B, "g", [R2])
    assert (view.members, view.nodes) == ((R2, R1), 1)
    table.leave_remote(SCOPE_B, [R2], ["g"])
    assert view.members == (R1,)
    table.sync(SCOPE_B, [("g", [R1, R2]), ("other", [R2])])
    assert view.members == (R1, R2)
    table.join_local("g", [P1])  # local members are not remote ones
    assert view.members == (R1, R2)
    table.drop_peer(SCOPE_B)
    assert (view.members, view.nodes) == ((), 0)


def test_remote_views_go_with_their_holders() -> None:
    """The table holds views weakly: one nobody holds is dropped, a new one is current."""
    table = Membership()
    table.add_peer(SCOPE_B)
    table.remote_view("g")
    table.join_remote(SCOPE_B, "g", [R1])
    assert len(table._views) == 0
    assert table.remote_view("g").members == (R1,)


def test_remote_members_come_in_pgs_order_newest_first() -> None:
    """OTP's pg lists a group newest join first ([Pid | All]) and a sync puts the
    peer's pids first (Pids ++ (All -- OldPids)): pg:get_members' order on an Erlang
    node, and the order a broadcast sends in."""
    c = Atom("c@h")
    scope_c = Pid(c, 1, 0, 1)
    p1, p2, p3, p4 = Pid(B, 11, 0, 1), Pid(c, 12, 0, 1), Pid(B, 13, 0, 1), Pid(c, 14, 0, 1)
    table = Membership()
    table.add_peer(SCOPE_B)
    table.add_peer(scope_c)
    table.join_remote(SCOPE_B, "g", [p1])
    table.join_remote(scope_c, "g", [p2])
    table.join_remote(SCOPE_B, "g", [p3])
    assert table.remote_members("g") == (p3, p2, p1)
    assert table.members("g") == [p3, p2, p1]
    table.sync(SCOPE_B, [("g", [p1])])  # [p1] ++ ([p3, p2, p1] -- [p3, p1])
    assert table.remote_members("g") == (p1, p2)
    table.sync(scope_c, [("g", [p4, p2])])  # [p4, p2] ++ ([p1, p2] -- [p2])
    assert table.remote_members("g") == (p4, p2, p1)
    table.leave_remote(scope_c, [p2], ["g"])
    assert table.remote_members("g") == (p4, p1)
    table.drop_peer(SCOPE_B)
    assert table.remote_members("g") == (p4,)
    assert table.remote_view("g").members == (p4,)
    table.drop_peer(scope_c)
    assert table.remote_members("g") == () and table.which_groups() == []
