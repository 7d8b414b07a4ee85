"""The pure tables of global (runtime/_global_state.py): locks, names, known nodes."""

from __future__ import annotations

from nodemesh.runtime._global_state import (
    DELETE,
    INSERT,
    RANDOM_EXIT_NAME,
    GlobalState,
    lock_id,
    pid_order,
)
from nodemesh.term.types import Atom, Pid

A = Atom


def pid(node: str, number: int, serial: int = 0) -> Pid:
    return Pid(A(node), number, serial, 1)


def test_pid_order_is_erlangs() -> None:
    """Pids sort by serial, then number, then node, as lists:sort/1 does on OTP 25."""
    pids = [pid("a@h", 5), pid("b@h", 1), pid("a@h", 1, 7), pid("b@h", 1, 2)]
    assert sorted(pids, key=pid_order) == [pids[1], pids[0], pids[3], pids[2]]
    assert pid_order(pid("a@h", 1)) < pid_order(pid("b@h", 1))


def test_lock_id_is_the_same_from_both_sides() -> None:
    """Both lockers compute one requester id, whichever is `mine`."""
    x, y = pid("a@h", 9), pid("b@h", 3)
    assert lock_id(x, y) == lock_id(y, x) == (A("global"), [y, x])


def test_locks_are_shared_by_one_requester_and_refused_to_others() -> None:
    """set_lock grants the same requester id to many pids, refuses another id, and the
    resource is free once every holder has let go."""
    state = GlobalState("me@h")
    first, second, other = pid("a@h", 1), pid("b@h", 1), pid("c@h", 1)
    lock = (A("global"), [first, second])
    assert state.set_lock(lock, first) == (True, True)
    assert state.set_lock(lock, first) == (True, False)  # already holding
    assert state.set_lock(lock, second) == (True, True)
    assert state.set_lock((A("global"), other), other) == (False, False)
    assert state.global_lock_set()
    state.del_lock(lock, first)
    assert state.global_lock_set()
    state.drop_holder(second)  # its DOWN
    assert not state.global_lock_set()
    assert state.set_lock("not a lock id", other) == (False, False)


def test_exchange_inserts_new_names_and_leaves_clashes_to_the_smaller_node() -> None:
    """New names become inserts; a clash is ours to resolve only when our node name is
    the smaller; malformed entries are skipped."""
    mine, his = pid("a@h", 1), pid("z@h", 1)
    state = GlobalState("a@h")
    state.insert(A("both"), mine, RANDOM_EXIT_NAME)
    names = [(A("new"), his, RANDOM_EXIT_NAME), (A("both"), his, RANDOM_EXIT_NAME), "junk"]
    ops, res, clashes = state.exchange_names("z@h", names)
    assert ops == [(INSERT, (A("new"), his, RANDOM_EXIT_NAME))] and res == []
    assert [c.name for c in clashes] == ["both"]
    assert GlobalState("zz@h").exchange_names("z@h", names)[2] == []
    assert state.exchange_names("z@h", "not a list") == ([], [], [])


def test_do_ops_and_known_lists() -> None:
    """do_ops applies inserts and deletes; known lists carry versions from vsn 7 on."""
    state = GlobalState("me@h")
    p = pid("a@h", 1)
    to_watch, _ = state.do_ops([(INSERT, ([1, 2], p, RANDOM_EXIT_NAME)), (DELETE, A("x")), 3])
    assert to_watch == [([1, 2], p)] and state.where([1, 2]) == p
    assert state.name_list() == [([1, 2], p, RANDOM_EXIT_NAME)]  # the list stays a list
    assert state.add_to_known([(A("a@h"), 8), A("b@h"), (A("me@h"), 8), "junk"]) == [
        "a@h",
        "b@h",
    ]
    assert state.known_list(8) == [(A("a@h"), 8), (A("b@h"), 0)]
    assert state.known_list(6) == [A("a@h"), A("b@h")]
    state.do_ops([(DELETE, [1, 2])])
    assert state.where([1, 2]) is None
