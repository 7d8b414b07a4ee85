"""What an EPMD decides without sockets: names, creations, and who is local."""

from __future__ import annotations

import itertools
import random

import pytest

from nodemesh.epmd.protocol import NodeInfo
from nodemesh.epmd.registry import Registry, is_local_peer


class _FixedRandom(random.Random):
    """Hands out one chosen first creation."""

    def __init__(self, value: int) -> None:
        super().__init__(0)
        self.value = value

    def randrange(self, *_args: object, **_kwargs: object) -> int:  # type: ignore[override]
        return self.value


def test_one_live_registration_per_name() -> None:
    """A second registration of a live name is refused until the first one goes."""
    registry, first, second = Registry(), object(), object()
    assert registry.register(NodeInfo("a", 1), "p", first) is not None
    assert registry.register(NodeInfo("a", 2), "p", second) is None
    assert registry.unregister("a", second) is None  # only the holder can drop it
    assert registry.lookup("a") == NodeInfo("a", 1)
    assert registry.unregister("a", first) is not None
    assert registry.lookup("a") is None
    assert registry.register(NodeInfo("a", 2), "p", second) is not None


def test_creation_is_nonzero_and_changes_on_reregistration() -> None:
    """Creations are never 0 and a name registering again gets a new one."""
    registry, owner, seen = Registry(), object(), []
    for _ in range(5):
        entry = registry.register(NodeInfo("a", 1), "p", owner)
        assert entry is not None
        seen.append(entry.creation)
        registry.unregister("a", owner)
    assert 0 not in seen
    assert all(later == earlier + 1 for earlier, later in itertools.pairwise(seen))


def test_creation_wraps_around_skipping_zero() -> None:
    """After 2**32 - 1 the next creation is 1: 0 is reserved."""
    registry, owner = Registry(rng=_FixedRandom(0xFFFFFFFF)), object()
    first = registry.register(NodeInfo("a", 1), "p", owner)
    assert first is not None
    assert first.creation == 0xFFFFFFFF
    registry.unregister("a", owner)
    again = registry.register(NodeInfo("a", 1), "p", owner)
    assert again is not None
    assert again.creation == 1


def test_remembered_names_are_bounded() -> None:
    """Only the most recent ``remembered`` names keep their creation for next time."""
    registry, owner = Registry(remembered=2, rng=_FixedRandom(7)), object()
    for name in ("a", "b", "c"):
        registry.register(NodeInfo(name, 1), "p", owner)
        registry.unregister(name, owner)
    forgotten = registry.register(NodeInfo("a", 1), "p", owner)
    remembered = registry.register(NodeInfo("c", 1), "p", owner)
    assert forgotten is not None
    assert forgotten.creation == 7
    assert remembered is not None
    assert remembered.creation == 8


def test_live_lists_oldest_first() -> None:
    """live() lists registrations in the order they were made."""
    registry = Registry()
    for name in ("b", "a", "c"):
        registry.register(NodeInfo(name, 1), "p", object())
    assert [entry.node.name for entry in registry.live()] == ["b", "a", "c"]


@pytest.mark.parametrize(
    ("peer", "local", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.5", "0.0.0.0", True),
        ("::1", "::1", True),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1", True),
        ("192.0.2.2", "192.0.2.2", True),  # this host, via its own address
        ("::ffff:192.0.2.2", "192.0.2.2", True),
        ("fe80::1%eth0", "fe80::1%eth0", True),
        ("192.0.2.9", "192.0.2.2", False),  # another host
        ("2001:db8::9", "2001:db8::2", False),
    ],
)
def test_local_peers(peer: str, local: str, expected: bool) -> None:
    """A peer is local when it is loopback or uses the address it reached us on."""
    assert is_local_peer(peer, local) is expected
