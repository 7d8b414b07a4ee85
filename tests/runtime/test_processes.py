"""The process table and the dispatcher on their own: no Node, no sockets."""

from __future__ import annotations

from typing import Any, cast

import pytest

from nodemesh.dist import control
from nodemesh.dist import events as ev
from nodemesh.errors import NameTakenError
from nodemesh.runtime._dispatch import Dispatcher
from nodemesh.runtime._processes import ProcessTable
from nodemesh.runtime._services import Services
from nodemesh.runtime._signals import Monitor
from nodemesh.runtime._tasks import TaskHost
from nodemesh.runtime.mailbox import Mailbox
from nodemesh.term.types import Atom, Pid, Reference

HERE = "here@127.0.0.1"
THERE = Pid(Atom("there@127.0.0.1"), 9, 0, 3)
REF = Reference(Atom("there@127.0.0.1"), 3, (1, 2, 3))


def new_mailbox(table: ProcessTable, name: str | None = None) -> Mailbox:
    """A real mailbox in ``table``; the node it would send through is not needed here."""
    mailbox = Mailbox(cast(Any, None), table.new_pid(), on_close=table.remove)
    if name is not None:
        table.register(name, mailbox)
    table.add(mailbox)
    return mailbox


class Wire:
    """The peer side of dispatch: what was written back, and holds asked for."""

    peer = "there@127.0.0.1"
    closed = False

    def __init__(self) -> None:
        self.frames: list[ev.ControlEvent] = []
        self.held: list[Mailbox] = []

    def write(self, frame: bytes) -> None:
        self.frames.append(control.parse(frame[4:]))

    def hold_for(self, mailbox: Mailbox) -> None:
        self.held.append(mailbox)


@pytest.fixture
def table() -> ProcessTable:
    table = ProcessTable(HERE, reserved=Services.NAMES)
    table.creation = 7
    return table


@pytest.fixture
def dispatch(table: ProcessTable) -> Dispatcher:
    return Dispatcher(table, Services(table, TaskHost("test")))


def test_pids_and_refs_are_of_this_node_and_incarnation(table: ProcessTable) -> None:
    """new_pid() and make_ref() carry the node and creation, and never repeat."""
    pids = {table.new_pid() for _ in range(100)}
    refs = {table.make_ref() for _ in range(100)}
    assert len(pids) == len(refs) == 100
    assert {(p.node, p.creation) for p in pids} == {(HERE, 7)}
    assert {(r.node, r.creation) for r in refs} == {(HERE, 7)}


def test_register_refuses_taken_and_reserved_names(table: ProcessTable) -> None:
    """A registered or reserved name raises NameTakenError and changes nothing."""
    box = new_mailbox(table, "chat")
    for name in ("chat", "rex", "net_kernel"):
        with pytest.raises(NameTakenError, match=name):
            new_mailbox(table, name)
    assert table.whereis("chat") is box and len(table) == 1


def test_remove_returns_who_must_be_told(table: ProcessTable) -> None:
    """Removing a mailbox frees its name and hands back its links and monitors."""
    box = new_mailbox(table, "gone")
    table.signals.link(box.pid, THERE)
    table.signals.add_monitor(Monitor(REF, THERE, Atom("gone"), HERE))
    links, monitors = table.remove(box, Atom("normal"))
    assert links == {THERE} and [m.ref for m in monitors] == [REF]
    assert table.whereis("gone") is None and not table.exists(box.pid)


def test_messages_are_delivered_by_pid_and_name(table: ProcessTable, dispatch: Dispatcher) -> None:
    """Fast-path tuples and Send/RegSend events reach the mailbox; strangers are dropped."""
    box = new_mailbox(table, "chat")
    wire = Wire()
    dispatch.receive(wire, (box.pid, 1, THERE))
    dispatch.receive(wire, (Atom("chat"), 2, THERE))
    dispatch.receive(wire, ev.Send(box.pid, 3, None))
    dispatch.receive(wire, ev.RegSend(THERE, Atom("chat"), 4))
    dispatch.receive(wire, (Atom("nobody"), 5, THERE))
    dispatch.receive(wire, (table.new_pid(), 6, None))
    assert [box.receive_nowait() for _ in range(len(box))] == [1, 2, 3, 4]
    assert wire.frames == [] and wire.held == []


def test_links_and_monitors_to_nobody_are_answered_noproc(
    table: ProcessTable, dispatch: Dispatcher
) -> None:
    """LINK and MONITOR_P of a process that does not exist get noproc replies."""
    wire = Wire()
    ghost = table.new_pid()
    dispatch.receive(wire, ev.Link(THERE, ghost))
    dispatch.receive(wire, ev.MonitorP(THERE, Atom("ghost"), REF))
    assert wire.frames == [
        ev.Exit(ghost, THERE, Atom("noproc"), link=True),
        ev.MonitorPExit(Atom("ghost"), THERE, REF, Atom("noproc")),
    ]


def test_unlink_id_is_acknowledged(table: ProcessTable, dispatch: Dispatcher) -> None:
    """UNLINK_ID removes the link and is answered with UNLINK_ID_ACK, ids kept."""
    box = new_mailbox(table)
    wire = Wire()
    dispatch.receive(wire, ev.Link(THERE, box.pid))
    dispatch.receive(wire, ev.Unlink(THERE, box.pid, 42))
    assert wire.frames == [ev.UnlinkIdAck(42, box.pid, THERE)]
    assert table.remove(box, Atom("normal")) == (set(), [])


def test_exit_of_a_linked_process_arrives_as_a_message(
    table: ProcessTable, dispatch: Dispatcher
) -> None:
    """A link exit becomes ('EXIT', From, Reason) once; a stale one is dropped."""
    box = new_mailbox(table)
    wire = Wire()
    dispatch.receive(wire, ev.Link(THERE, box.pid))
    dispatch.receive(wire, ev.Exit(THERE, box.pid, Atom("boom"), link=True))
    dispatch.receive(wire, ev.Exit(THERE, box.pid, Atom("again"), link=True))
    assert box.receive_nowait() == (Atom("EXIT"), THERE, Atom("boom"))
    assert len(box) == 0


def test_a_full_mailbox_asks_the_connection_to_hold(
    table: ProcessTable, dispatch: Dispatcher
) -> None:
    """When deliver() says the mailbox is at its bound, dispatch calls hold_for()."""

    box = Mailbox(cast(Any, None), table.new_pid(), on_close=table.remove, max_queued=1)
    table.add(box)
    wire = Wire()
    dispatch.receive(wire, (box.pid, "x", None))
    assert wire.held == [box]
