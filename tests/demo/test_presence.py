"""Who is online: this node's pages, other nodes' announcements, and nodes that leave."""

from __future__ import annotations

from typing import Any

import pytest

from nodemesh.demo.presence import Presence
from nodemesh.term import decode, encode


def test_pages_of_this_node_are_announced_once_per_name() -> None:
    """Two pages under one name are one person; a rename or a close is a change."""
    here = Presence("amber@h")
    assert here.named(1, "Ada") and here.named(2, "Grace")
    assert not here.named(3, "Ada")  # a second tab: nobody new
    assert here.local() == ["Ada", "Grace"]
    assert here.named(2, "Grace Hopper") and here.local() == ["Ada", "Grace Hopper"]
    assert not here.closed(3)  # Ada still has page 1 open
    assert here.closed(1) and here.local() == ["Grace Hopper"]
    assert here.closed(2) and here.local() == []


def test_announcements_travel_as_terms_and_nodes_take_their_people_along() -> None:
    """What one node announces (through the term codec) shows on another; a node that
    goes down takes its people; an announcement about oneself is ignored."""
    amber, birch = Presence("amber@h"), Presence("birch@h")
    amber.named(1, "Ada")
    birch.named(7, "Linus")
    wire = decode(encode(amber.announcement()))
    assert birch.heard(wire)
    assert not birch.heard(wire)  # the periodic repeat changes nothing
    assert birch.people() == [
        {"name": "Linus", "node": "birch@h"},
        {"name": "Ada", "node": "amber@h"},
    ]
    assert not amber.heard(wire)
    assert birch.forget("amber@h") and birch.people() == [{"name": "Linus", "node": "birch@h"}]
    assert not birch.forget("amber@h")


@pytest.mark.parametrize(
    "term",
    [b"hello", {b"node": b"x@h"}, {b"people": [b"a"]}, {b"node": 1, b"people": [b"a"]}, 42],
)
def test_other_terms_on_the_presence_topic_are_ignored(term: Any) -> None:
    """Anything but ``%{"node" => N, "people" => [...]}`` changes nothing."""
    here = Presence("amber@h")
    assert not here.heard(term) and here.people() == []
