"""Membership alone: how the node's NodeUp / NodeDown become cluster events, and the
polling state's reconnect schedule, without a running cluster."""

from __future__ import annotations

import random

from cluster.helpers import FAST, Recorder, make_run, scripted
from nodemesh.cluster import ClusterEvent, NodeJoined, NodeLeft, Topology
from nodemesh.cluster._membership import Membership
from nodemesh.cluster._polling import PollState
from nodemesh.runtime.node import Node


def membership(*names: str) -> tuple[Membership, list[ClusterEvent]]:
    """Runs named ``names`` of a node that is never started: nothing here connects."""
    a = Node("a@127.0.0.1", "cookie")
    events: list[ClusterEvent] = []
    members = Membership(events.append)
    for name in names:
        members.add(make_run(a, Topology.create(name, scripted()), Recorder()))
    return members, events


def test_a_claimed_node_joins_through_its_topology() -> None:
    """A NodeUp after a claim is a join with the claim's topology and reason, counted
    there; without a claim it is "connected", attributed to a topology that lists it."""
    members, events = membership("t", "u")
    members.claim("b@h", "t", "discovered")
    members.claim("b@h", "u", "discovered")  # the first claim wins
    assert members.node_up("b@h", 0.0) == NodeJoined("b@h", "t", "discovered")
    members.runs["u"].poll.listed = frozenset({"c@h"})
    assert members.node_up("c@h", 0.0) == NodeJoined("c@h", "u", "connected")
    assert members.node_up("d@h", 0.0) == NodeJoined("d@h", None, "connected")
    assert events == [
        NodeJoined("b@h", "t", "discovered"),
        NodeJoined("c@h", "u", "connected"),
        NodeJoined("d@h", None, "connected"),
    ]
    assert members.runs["t"].counters.nodes_joined == 1


def test_a_failed_connect_leaves_no_claim() -> None:
    """An unclaimed node that connects later is not credited to the failed topology."""
    members, _ = membership("t", "u")
    members.claim("b@h", "t", "discovered")
    members.unclaim("b@h", "u")  # not u's claim: kept
    members.unclaim("b@h", "t")
    assert members.node_up("b@h", 0.0) == NodeJoined("b@h", None, "connected")


def test_a_pruned_node_leaves_as_pruned() -> None:
    """A node leaves through the topology it joined by; a prune's reason is "pruned"."""
    members, events = membership("t", "u")
    members.claim("b@h", "t", "discovered")
    members.node_up("b@h", 0.0)
    members.pruning("b@h")
    assert members.node_down("b@h", "connection_closed", 1.0) == NodeLeft("b@h", "t", "pruned")
    members.node_up("b@h", 2.0)
    left = members.node_down("b@h", "net_tick_timeout", 3.0)
    assert left == NodeLeft("b@h", None, "net_tick_timeout")  # no prune pending any more
    assert members.runs["t"].counters.nodes_left == 1 and len(events) == 4


def test_listed_elsewhere_names_other_topologies_nodes() -> None:
    """listed_elsewhere is what the other topologies list or connected, never its own."""
    members, _ = membership("t", "u")
    members.runs["t"].poll.listed = frozenset({"b@h"})
    members.runs["u"].known.add("c@h")
    assert members.listed_elsewhere("t") == {"c@h"}
    assert members.listed_elsewhere("u") == {"b@h"}


def test_a_dropped_node_is_due_at_once_then_backed_off_when_it_flaps() -> None:
    """A listed node that drops is retried at once; one that drops soon after coming
    back up is retried after a backoff."""
    state = PollState(FAST, random.Random(1))
    state.listed = frozenset({"b@h"})
    state.node_up("b@h", 0.0)
    state.node_down("b@h", 10.0)  # up for 10 s: a plain drop
    assert state.retries["b@h"].due == 10.0 and state.wake.is_set()
    state.node_up("b@h", 10.0)
    state.node_down("b@h", 10.01)  # down again at once: a flap
    assert state.retries["b@h"].due > 10.01 and state.flaps["b@h"] == 1
    state.node_down("x@h", 11.0)  # not listed: nothing to retry
    assert "x@h" not in state.retries
