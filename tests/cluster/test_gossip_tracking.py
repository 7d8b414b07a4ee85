"""Gossip bookkeeping: bounded liveness and the rate-limited drop log, in virtual time."""

from __future__ import annotations

import logging

import pytest

from nodemesh.cluster.gossip.tracking import Liveness, RateLimitedLog


def test_liveness_marks_newcomers_and_returning_nodes() -> None:
    """New, or silent longer than the timeout: a newcomer; otherwise not."""
    live = Liveness(max_nodes=10, timeout=5.0)
    assert live.heard("a@h", 0.0)
    assert not live.heard("a@h", 4.0)
    assert live.heard("a@h", 9.5)
    assert live.ages(10.0) == {"a@h": 0.5}
    assert live.alive(14.0) == {"a@h"} and live.alive(15.0) == set()


def test_liveness_forgets_the_least_recently_heard_first() -> None:
    """At most max_nodes entries; the oldest goes."""
    live = Liveness(max_nodes=3, timeout=5.0)
    for i, name in enumerate(["a@h", "b@h", "c@h", "a@h", "d@h"]):
        live.heard(name, float(i))
    assert set(live.ages(5.0)) == {"c@h", "a@h", "d@h"} and len(live) == 3


def test_rate_limited_log_counts_what_it_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    """One line per kind per interval; the next one says how many were held back."""
    log = logging.LoggerAdapter(logging.getLogger("test.gossip"), {})
    limited = RateLimitedLog(10.0)
    caplog.set_level(logging.WARNING, "test.gossip")
    assert limited.warning(log, "malformed", 0.0, "bad %s", 1)
    assert not limited.warning(log, "malformed", 5.0, "bad %s", 2)
    assert not limited.warning(log, "malformed", 9.9, "bad %s", 3)
    assert limited.warning(log, "oversized", 9.9, "big")
    assert limited.warning(log, "malformed", 10.0, "bad %s", 4)
    assert [r.getMessage() for r in caplog.records] == [
        "bad 1",
        "big",
        "bad 4 (2 more like it in the last 10 s)",
    ]


def test_answers_to_a_known_sender_are_spaced() -> None:
    """A new sender is always answered; a known one (not connected yet) at most once per
    interval, so that nodes still connecting do not answer each other in a loop."""
    live = Liveness(max_nodes=10, timeout=5.0)
    assert live.heard("a@h", 0.0)
    assert live.answer_due("a@h", 0.0, 2.0, new=True)
    assert not live.answer_due("a@h", 0.1, 2.0, new=False)
    assert not live.answer_due("a@h", 1.9, 2.0, new=False)
    assert live.answer_due("a@h", 2.0, 2.0, new=False)
    assert live.answer_due("a@h", 2.1, 2.0, new=True)  # back after a silence: new again
