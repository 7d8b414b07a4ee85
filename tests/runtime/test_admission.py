"""The pure pieces behind admission under a flood: the eviction policy, the first-message
check, the per-cause log limiter, the failed-dial memory, and their settings."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nodemesh import ConfigError, NodeDownError
from nodemesh.dist.handshake import MAX_HANDSHAKE_MESSAGE
from nodemesh.runtime._admission import Admission, first_message_complete
from nodemesh.runtime._failed_dials import FailedDials
from nodemesh.runtime._gatekeeper import source_of, unread_bytes
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.ratelimit import RateLimitedLog, RateLimiter
from support.net import wait_for


def test_admit_evicts_the_oldest_past_the_limit() -> None:
    """The newcomer is always admitted; the entry accepted longest ago makes room."""
    table: Admission[str] = Admission(max_pending=3, max_per_address=10)
    assert [table.admit(name) for name in "abc"] == [[], [], []]
    assert table.admit("d") == ["a"]
    assert list(table) == ["b", "c", "d"]
    assert table.statistics().evicted == 1


def test_progress_moves_to_the_back_of_the_queue() -> None:
    """An entry that sent its first message is evicted after those that did not since."""
    table: Admission[str] = Admission(max_pending=3, max_per_address=10)
    for name in "abc":
        table.admit(name)
    table.progressed("a")
    assert table.admit("d") == ["b"]
    assert table.admit("e") == ["c"]
    assert table.admit("f") == ["a"]


def test_spared_candidates_go_to_the_back() -> None:
    """A candidate with unread bytes (spare says so) is passed over and moved back."""
    table: Admission[str] = Admission(max_pending=3, max_per_address=10)
    for name in "abc":
        table.admit(name)
    assert table.admit("d", spare=lambda name: name == "a") == ["b"]
    assert list(table) == ["c", "d", "a"]


def test_when_all_are_spared_the_oldest_goes() -> None:
    """If every candidate is talking, the oldest is evicted all the same: bounded."""
    table: Admission[str] = Admission(max_pending=2, max_per_address=10)
    table.admit("a")
    table.admit("b")
    assert table.admit("c", spare=lambda _: True) == ["a"]
    assert list(table) == ["c", "b"]  # b was spared, so it moved behind c
    assert len(table) == 2


def test_per_address_limit_evicts_that_address_only() -> None:
    """An address over its share loses its own oldest entry; others keep theirs."""
    table: Admission[str] = Admission(max_pending=10, max_per_address=2)
    table.admit("x")
    table.identify("x", "10.0.0.1")
    for name in ("a", "b", "c"):
        table.admit(name)
    assert table.identify("a", "10.0.0.9") == []
    assert table.identify("b", "10.0.0.9") == []
    assert table.identify("c", "10.0.0.9") == ["a"]
    assert list(table) == ["x", "b", "c"]


def test_release_frees_the_address_share() -> None:
    """A released entry no longer counts for its address; releasing twice is a no-op."""
    table: Admission[str] = Admission(max_pending=10, max_per_address=1)
    table.admit("a")
    table.identify("a", "h")
    assert table.release("a") is True
    assert table.release("a") is False
    table.admit("b")
    assert table.identify("b", "h") == []
    assert table.statistics().pending == 1


def test_peak_counts_after_eviction() -> None:
    """The peak never exceeds the limit: eviction happens at admission."""
    table: Admission[int] = Admission(max_pending=4, max_per_address=4)
    for item in range(100):
        table.admit(item)
    stats = table.statistics()
    assert (stats.pending, stats.peak, stats.admitted, stats.evicted) == (4, 4, 100, 96)


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"", False),
        (b"\x00", False),
        (b"\x00\x05Nabc", False),  # 4 of 5 announced bytes
        (b"\x00\x05Nabcd", True),
        (b"\x00\x05Nabcdextra", True),
        (b"\x00\x00", True),  # empty message: the handshake will say so
        (b"GE", True),  # 18245 bytes announced: no handshake, do not wait for it
        ((MAX_HANDSHAKE_MESSAGE).to_bytes(2, "big"), False),
        ((MAX_HANDSHAKE_MESSAGE + 1).to_bytes(2, "big"), True),
    ],
)
def test_first_message_complete(data: bytes, complete: bool) -> None:
    """A first message is complete when its announced length arrived, or is impossible."""
    assert first_message_complete(data) is complete


def test_rate_limiter_counts_within_a_window() -> None:
    """One event per cause per interval passes; the rest are counted and reported once
    the window ends."""
    limiter = RateLimiter(10.0)
    assert limiter.allow("a", 0.0)
    assert not limiter.allow("a", 1.0)
    assert not limiter.allow("a", 9.9)
    assert limiter.allow("b", 5.0)  # causes are independent
    assert limiter.next_due() == 10.0
    assert limiter.due(9.0) == []
    assert limiter.due(10.0) == [("a", 2)]
    assert limiter.next_due() is None
    assert limiter.allow("a", 10.5)


def test_rate_limiter_zero_interval_lets_all_through() -> None:
    """interval 0 logs every event."""
    limiter = RateLimiter(0.0)
    assert all(limiter.allow("a", 1.0) for _ in range(5))


async def test_rate_limited_log_writes_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    """A burst gives its first line, then one summary line with the count."""
    log = RateLimitedLog(logging.getLogger("nodemesh.test"), 0.2)
    with caplog.at_level(logging.WARNING, logger="nodemesh"):
        for index in range(500):
            log.warning("bad peers", "bad peer %d", index)

        def summarized() -> bool:
            return len(caplog.records) == 2

        await wait_for(summarized, what="the summary line")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["bad peer 0", "bad peers: 499 more in the last 0.2 s (not logged one by one)"]
    log.close()
    assert len(caplog.records) == 2


def test_failed_dials_repeat_the_reason_until_the_delay() -> None:
    """Within retry_delay a failure is repeated (same cause, with its age); after, not."""
    failed = FailedDials(1.0)
    error = NodeDownError("cannot connect to b@h: connection refused")
    error.__cause__ = ConnectionRefusedError()
    failed.record("b@h", error, 100.0)
    again = failed.recent("b@h", 100.4)
    assert again is not None and again is not error
    assert str(again).startswith("cannot connect to b@h: connection refused (failed 0.4 s ago")
    assert isinstance(again.__cause__, ConnectionRefusedError)
    assert failed.recent("c@h", 100.4) is None
    assert failed.recent("b@h", 101.0) is None


def test_failed_dials_forget_and_disable() -> None:
    """forget() clears a peer; retry_delay 0 remembers nothing."""
    failed = FailedDials(1.0)
    failed.record("b@h", NodeDownError("x"), 0.0)
    failed.forget("b@h")
    assert failed.recent("b@h", 0.1) is None
    off = FailedDials(0.0)
    off.record("b@h", NodeDownError("x"), 0.0)
    assert off.recent("b@h", 0.0) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"handshake_first_message_timeout": 0}, "handshake_first_message_timeout"),
        ({"max_pending_handshakes_per_address": 0}, "max_pending_handshakes_per_address"),
        ({"warning_interval": -1}, "warning_interval"),
        ({"connect_retry_delay": "1"}, "connect_retry_delay"),
    ],
)
def test_admission_settings_are_validated(kwargs: dict[str, object], match: str) -> None:
    """Out-of-range admission and logging settings raise ConfigError naming them."""
    with pytest.raises(ConfigError, match=match):
        NodeConfig(**kwargs)  # type: ignore[arg-type]


async def test_unread_bytes_are_seen_before_reading() -> None:
    """unread_bytes reports what the peer sent and the loop has not read yet."""
    received = asyncio.Event()
    transports: list[asyncio.Transport] = []

    class Idle(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()  # like a socket the loop has not got to yet
            transports.append(transport)
            received.set()

    server = await asyncio.get_running_loop().create_server(Idle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.wait_for(received.wait(), 5)
    assert unread_bytes(transports[0]) == 0
    writer.write(b"\x00\x05Nabcd")
    await writer.drain()
    await wait_for(lambda: unread_bytes(transports[0]) == 7, what="7 unread bytes")
    writer.close()
    transports[0].close()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(
    ("address", "source"),
    [
        ("10.1.2.3", "10.1.2.3"),
        ("::ffff:10.1.2.3", "10.1.2.3"),  # dual-stack socket, IPv4 peer
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_per_address_limit_counts_ipv6_by_64(address: str, source: str) -> None:
    """IPv4 peers count by address (also when IPv4-mapped), IPv6 peers by their /64."""
    assert source_of(address) == source
