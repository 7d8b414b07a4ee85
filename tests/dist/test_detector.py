"""The fast failure detector in virtual time: who is trusted to tick fast, when a trusted
peer is down, and that our own stalls and paused reading never count against the peer."""

from __future__ import annotations

import pytest

from nodemesh.dist.detector import FAST, FastDetector, Profile
from nodemesh.dist.liveness import LivenessAction
from support.clock import FakeClock

TICK, DOWN = LivenessAction.SEND_TICK, LivenessAction.PEER_DOWN


def trusted_detector(clock: FakeClock) -> FastDetector:
    """A detector whose peer has ticked at the fast pace long enough to be trusted."""
    detector = FastDetector(FAST, clock())
    for _ in range(FAST.trust_ticks + 1):
        poll_on_time(detector, clock, peer_ticks=True)
    assert detector.trusted
    return detector


def poll_on_time(detector: FastDetector, clock: FakeClock, *, peer_ticks: bool) -> LivenessAction:
    """Advance to the next poll (a punctual timer), the peer ticking just before or not."""
    clock.advance(detector.next_poll() - clock())
    if peer_ticks:
        detector.tick_received(clock())
    return detector.poll(clock())


def silent_polls_until_down(detector: FastDetector, clock: FakeClock) -> float:
    """Poll punctually with a silent peer; the silence when PEER_DOWN came."""
    start = clock()
    for _ in range(100):
        if poll_on_time(detector, clock, peer_ticks=False) is DOWN:
            return clock() - start
    raise AssertionError("never declared down")


def test_every_poll_sends_a_tick_and_polls_come_every_tick_interval() -> None:
    """The fast profile ticks every tick_interval, whatever else was sent."""
    clock = FakeClock()
    detector = FastDetector(FAST, clock())
    assert detector.next_poll() == pytest.approx(clock() + FAST.tick_interval)
    assert [poll_on_time(detector, clock, peer_ticks=False) for _ in range(3)] == [TICK] * 3
    assert detector.next_poll() == pytest.approx(clock() + FAST.tick_interval)


def test_a_peer_ticking_at_erlangs_pace_is_never_trusted_nor_declared_down() -> None:
    """Ticks 15 s apart (Erlang's default) or 250 ms apart (net_ticktime 1) never earn
    trust: such a peer keeps Erlang's rule, however long it is silent here."""
    for gap in (15.0, 0.26):
        clock = FakeClock()
        detector = FastDetector(FAST, clock())
        for _ in range(20):
            clock.advance(gap)
            detector.tick_received(clock())
            assert detector.poll(clock()) is TICK
        assert not detector.trusted
        clock.advance(30.0)
        assert detector.poll(clock()) is TICK


def test_a_peer_ticking_fast_is_trusted_after_trust_ticks_fast_gaps() -> None:
    """Trust comes after trust_ticks gaps of at most trust_gap in a row; a slow gap before
    that starts the count again."""
    clock = FakeClock()
    detector = FastDetector(FAST, clock())
    detector.tick_received(clock())
    for gap in (0.1, 0.1, 1.0, 0.1, 0.12):
        clock.advance(gap)
        detector.tick_received(clock())
        assert not detector.trusted
    clock.advance(0.09)
    detector.tick_received(clock())
    assert detector.trusted


def test_ticks_read_in_one_burst_earn_no_trust() -> None:
    """Ticks queued while we stalled arrive together: gaps near zero prove no fast pace."""
    clock = FakeClock()
    detector = FastDetector(FAST, clock())
    for _ in range(10):
        clock.advance(0.001)
        detector.tick_received(clock())
    assert not detector.trusted


def test_a_trusted_peer_is_suspected_then_down_within_a_second() -> None:
    """Silent from the last tick: suspected after suspect_after, PEER_DOWN at down_after
    (within one tick interval of it), so well under one second."""
    clock = FakeClock()
    detector = trusted_detector(clock)
    for _ in range(3):
        poll_on_time(detector, clock, peer_ticks=False)
    assert not detector.suspected
    silence = silent_polls_until_down(detector, clock) + 3 * FAST.tick_interval
    assert FAST.down_after <= silence + 1e-9 < FAST.down_after + FAST.tick_interval
    assert detector.suspected


def test_any_input_clears_suspicion() -> None:
    """A message (not only a tick) from a suspected peer clears the suspicion."""
    clock = FakeClock()
    detector = trusted_detector(clock)
    for _ in range(5):
        poll_on_time(detector, clock, peer_ticks=False)
    assert detector.suspected
    detector.received(clock())
    assert poll_on_time(detector, clock, peer_ticks=False) is TICK
    assert not detector.suspected


def test_a_late_poll_gives_no_verdict_and_our_stall_is_not_the_peers_silence() -> None:
    """Our loop stalls 2 s (the peer's ticks wait unread in the socket): the late poll
    does not declare the peer down, and the stall does not count as the peer's silence."""
    clock = FakeClock()
    detector = trusted_detector(clock)
    clock.advance(2.0)
    assert detector.poll(clock()) is TICK  # late: we were not running
    assert detector.silence(clock()) < FAST.suspect_after
    detector.received(clock())  # the next loop turn reads what waited
    assert poll_on_time(detector, clock, peer_ticks=False) is TICK


def test_a_stall_of_ours_then_real_silence_still_gives_a_verdict() -> None:
    """After our stall, a peer that really is silent is declared down once it has been
    silent for down_after of our running time."""
    clock = FakeClock()
    detector = trusted_detector(clock)
    clock.advance(1.5)
    assert detector.poll(clock()) is TICK
    silence = silent_polls_until_down(detector, clock)
    assert FAST.down_after - FAST.tick_interval <= silence <= FAST.down_after + FAST.tick_interval


def test_ordinary_timer_delays_are_not_discounted() -> None:
    """Polls a little late every time (under max_lateness) still reach a verdict in time."""
    clock = FakeClock()
    detector = trusted_detector(clock)
    start = clock()
    for _ in range(100):
        clock.advance(detector.next_poll() - clock() + FAST.max_lateness * 0.8)
        if detector.poll(clock()) is DOWN:
            break
    assert clock() - start < 1.0


def test_no_verdict_while_reading_is_paused_and_the_count_restarts_on_resume() -> None:
    """Backpressure: while we pause reading the peer's silence is ours; after resuming,
    the silence counts from the resume."""
    clock = FakeClock()
    detector = trusted_detector(clock)
    detector.pause_reading()
    for _ in range(50):
        assert poll_on_time(detector, clock, peer_ticks=False) is TICK
    detector.resume_reading(clock())
    assert detector.silence(clock()) == 0
    assert FAST.down_after <= silent_polls_until_down(detector, clock) + 1e-9


def test_profiles_are_checked() -> None:
    """A profile whose timings contradict each other is refused."""
    with pytest.raises(ValueError):
        Profile(tick_interval=0.5, suspect_after=0.4)
    with pytest.raises(ValueError):
        Profile(trust_gap=0.05)


def test_segments_arriving_behind_a_lost_one_keep_a_suspected_peer_up() -> None:
    """While suspected, a growing kernel segment count (the peer sends, its data waits
    behind a retransmission) counts as hearing it; a still count leads to the verdict."""
    clock = FakeClock()
    detector = trusted_detector(clock)
    segments = 100
    for _ in range(30):  # three seconds of a stalled stream whose segments still arrive
        if detector.suspected:
            segments += 1
            detector.segments_received(segments, clock())
        assert poll_on_time(detector, clock, peer_ticks=False) is TICK
    start = clock()
    for _ in range(30):  # then nothing arrives at all: down, within a second
        if detector.suspected:
            detector.segments_received(segments, clock())
        if poll_on_time(detector, clock, peer_ticks=False) is DOWN:
            break
    assert clock() - start < 1.0


def test_an_unknown_segment_count_changes_nothing() -> None:
    """Where TCP_INFO cannot be read (None), the verdict comes as without it."""
    clock = FakeClock()
    detector = trusted_detector(clock)
    start = clock()
    while poll_on_time(detector, clock, peer_ticks=False) is not DOWN:
        detector.segments_received(None, clock())
    assert clock() - start < FAST.down_after + FAST.tick_interval + 1e-9
