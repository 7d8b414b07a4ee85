"""SignalTable's monitors: indexed by reference and by target, with nothing left over."""

from __future__ import annotations

from nodemesh.runtime._signals import Monitor, SignalTable
from nodemesh.term.types import Atom, Pid, Reference

HERE, THERE = Atom("a@127.0.0.1"), Atom("b@127.0.0.1")
WATCHER = Pid(THERE, 7, 0, 1)
SERVER = Pid(HERE, 3, 0, 1)


def ref(n: int) -> Reference:
    return Reference(THERE, 1, (n, 0, 0))


def test_monitors_of_one_target_are_taken_together_and_leave_no_index() -> None:
    """One, two and three monitors of a target (by pid and by name): each is removed by
    its reference, the rest are taken when the target exits, and the index is empty."""
    table = SignalTable()
    table.monitor(ref(1), WATCHER, SERVER, HERE)
    table.add_monitor(Monitor(ref(2), WATCHER, SERVER, HERE))
    table.monitor(ref(3), WATCHER, Atom("kv"), HERE)
    table.monitor(ref(4), WATCHER, SERVER, HERE)
    assert table.remove_monitor(ref(2)) == Monitor(ref(2), WATCHER, SERVER, HERE)
    assert table.remove_monitor(ref(2)) is None
    taken = table.take_monitors_of(HERE, SERVER, Atom("kv"))
    assert sorted(m.ref.ids for m in taken) == [(1, 0, 0), (3, 0, 0), (4, 0, 0)]
    assert table._monitors == {} and table._by_target == {}


def test_a_monitor_added_and_removed_in_turn_leaves_nothing() -> None:
    """A gen_server's calls one at a time: add, remove, add, remove; nothing is left."""
    table = SignalTable()
    for n in range(3):
        table.monitor(ref(n), WATCHER, Atom("kv"), HERE)
        assert table.remove_monitor(ref(n)) is not None
    assert table._monitors == {} and table._by_target == {}
    assert table.take_monitors_of(HERE, Atom("kv")) == []


def test_take_node_removes_the_monitors_of_its_watchers() -> None:
    """A peer's connection lost: the monitors its processes held here go with it."""
    table = SignalTable()
    table.monitor(ref(1), WATCHER, SERVER, HERE)
    table.monitor(ref(2), WATCHER, SERVER, HERE)
    _, monitors = table.take_node(THERE)
    assert len(monitors) == 2
    assert table._monitors == {} and table._by_target == {}
