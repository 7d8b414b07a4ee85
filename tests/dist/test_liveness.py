"""Tick liveness in virtual time: when to tick, when a silent peer is down, and not
while we ourselves stopped reading."""

from __future__ import annotations

import pytest

from nodemesh.dist.liveness import Liveness, LivenessAction
from support.clock import FakeClock

TICKTIME = 60.0  # net_ticktime: one tick interval is 15 s
NOTHING, TICK, DOWN = LivenessAction.NOTHING, LivenessAction.SEND_TICK, LivenessAction.PEER_DOWN


def run(
    liveness: Liveness, clock: FakeClock, polls: int, *, hear: bool, speak: bool
) -> list[LivenessAction]:
    """Poll ``polls`` times at each due time, hearing and speaking in between or not."""
    actions = []
    for _ in range(polls):
        clock.advance(liveness.next_poll() - clock())
        if hear:
            liveness.received(clock())
        if speak:
            liveness.sent(clock())
        actions.append(liveness.poll(clock()))
    return actions


def test_polls_are_due_every_quarter_of_the_ticktime() -> None:
    """next_poll() is ticktime / 4 after the start and after each poll."""
    clock = FakeClock()
    liveness = Liveness(TICKTIME, clock())
    assert liveness.next_poll() == clock() + 15.0
    run(liveness, clock, 1, hear=True, speak=True)
    assert liveness.next_poll() == clock() + 15.0


def test_a_silent_peer_is_down_after_four_intervals() -> None:
    """Nothing heard for four intervals (net_ticktime) gives PEER_DOWN, not before."""
    clock = FakeClock()
    liveness = Liveness(TICKTIME, clock())
    assert run(liveness, clock, 4, hear=False, speak=True) == [NOTHING] * 3 + [DOWN]


def test_hearing_anything_restarts_the_count() -> None:
    """A tick or message from the peer restarts the four-interval count."""
    clock = FakeClock()
    liveness = Liveness(TICKTIME, clock())
    assert run(liveness, clock, 3, hear=False, speak=True) == [NOTHING] * 3
    assert run(liveness, clock, 1, hear=True, speak=True) == [NOTHING]
    assert run(liveness, clock, 4, hear=False, speak=True) == [NOTHING] * 3 + [DOWN]


def test_we_tick_only_when_we_sent_nothing_for_an_interval() -> None:
    """SEND_TICK comes in an interval without traffic from us, never when we spoke."""
    clock = FakeClock()
    liveness = Liveness(TICKTIME, clock())
    assert run(liveness, clock, 2, hear=True, speak=True) == [NOTHING, NOTHING]
    assert run(liveness, clock, 1, hear=True, speak=False) == [TICK]
    liveness.sent(clock())  # the caller reports the tick it wrote
    assert run(liveness, clock, 1, hear=True, speak=True) == [NOTHING]


def test_a_peer_is_not_down_while_we_paused_reading() -> None:
    """While reading is paused the peer's silence is ours: no PEER_DOWN, however long;
    after resuming, the count starts again from the resume."""
    clock = FakeClock()
    liveness = Liveness(TICKTIME, clock())
    liveness.pause_reading()
    assert DOWN not in run(liveness, clock, 20, hear=False, speak=True)
    liveness.resume_reading(clock())
    assert run(liveness, clock, 4, hear=False, speak=True) == [NOTHING] * 3 + [DOWN]


def test_late_timers_do_not_shift_the_verdict() -> None:
    """A poll that fires a little late still counts the same intervals."""
    clock = FakeClock()
    liveness = Liveness(TICKTIME, clock())
    for _ in range(3):
        clock.advance(15.2)
        assert liveness.poll(clock()) is not DOWN
    clock.advance(14.9)
    assert liveness.poll(clock()) is DOWN


def test_ticktime_must_be_positive() -> None:
    """A zero or negative ticktime is refused at construction."""
    with pytest.raises(ValueError, match="positive"):
        Liveness(0, 0.0)
