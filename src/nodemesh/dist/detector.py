"""The fast failure detector (``NodeConfig(failure_detector="fast")``), as pure logic.

Erlang's rule (:mod:`nodemesh.dist.liveness`) notices a silent peer after 45-75 s with the
default ``net_ticktime``. The fast profile adds, on top of that rule (which stays as the
backstop for every peer):

* **Frequent ticks.** We send an empty frame every :attr:`Profile.tick_interval` whatever
  else we sent. Extra ticks are harmless to Erlang: ``dist_util`` only counts that input
  arrived, so Erlang peers keep their own ``net_ticktime`` verdicts.
* **Who is fast.** No distribution flag says a peer runs this profile, so we learn it from
  the ticks themselves: a peer whose empty frames arrive at most :attr:`Profile.trust_gap`
  apart, :attr:`Profile.trust_ticks` times in a row, is *trusted* to tick fast for the rest
  of the connection. An Erlang peer ticks every ``net_ticktime / net_tickintensity``
  (15 s by default, and only when it sent nothing else), so it keeps Erlang's rule; one
  tuned to tick as fast is held to its own pace, which it keeps while it is alive.
* **Suspicion, then a verdict that is not our own stall.** A trusted peer silent for
  :attr:`Profile.suspect_after` is *suspected*; it is declared down once silent for
  :attr:`Profile.down_after` of time in which *we* were running. Our polls are timed: a
  poll that fires late means our loop (or our whole process, starved of CPU) stalled, and
  during a stall we read nothing, so the lateness is subtracted from the peer's silence,
  and no verdict is given by a poll that is itself late (the next, punctual one decides,
  after the loop has read what was waiting in the socket).

* **Alive behind a lost segment.** Packet loss stalls a TCP stream: what follows a lost
  segment waits in the kernel until the retransmission (200 ms at least, doubling on each
  loss) fills the hole, so a live peer can look silent for more than ``down_after``. While
  a peer is suspected, the caller reports the kernel's count of data segments received
  on the socket (``TCP_INFO`` ``tcpi_data_segs_in``, which counts segments as they arrive,
  in order or not): if it grew, the peer is sending, and that counts as hearing it.

While we pause reading (a full mailbox), silence is ours, as in :mod:`liveness`.
The caller owns the clock and reports empty frames with :meth:`FastDetector.tick_received`
(their arrival time is what tells a fast peer from a slow one) and any other input with
:meth:`FastDetector.received`. Tests drive it in virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodemesh.dist.liveness import LivenessAction

__all__ = ["FAST", "PROFILES", "FastDetector", "Profile"]


@dataclass(frozen=True, slots=True)
class Profile:
    """The fast profile's timings, in seconds."""

    tick_interval: float = 0.1  # we tick this often, whatever else we send
    suspect_after: float = 0.4  # a trusted peer this long silent is suspected
    down_after: float = 0.7  # ... and declared down after this much of OUR running time
    trust_gap: float = 0.25  # ticks at most this far apart count as fast ticking
    trust_ticks: int = 3  # this many fast gaps in a row make a peer trusted
    max_lateness: float = 0.05  # a poll later than this: we stalled; no verdict from it

    def __post_init__(self) -> None:
        if not 0 < self.tick_interval < self.suspect_after <= self.down_after:
            raise ValueError("need 0 < tick_interval < suspect_after <= down_after")
        if self.trust_gap < self.tick_interval or self.trust_ticks < 1:
            raise ValueError("trust_gap must cover tick_interval; trust_ticks >= 1")


FAST = Profile()
# "erlang" is Erlang's rule alone: no FastDetector at all.
PROFILES: dict[str, Profile | None] = {"erlang": None, "fast": FAST}


class FastDetector:
    """Fast ticking and, for peers seen to tick fast, a sub-second verdict.

    Combine with :class:`~nodemesh.dist.liveness.Liveness` (Erlang's rule): poll both,
    at the earlier of their :meth:`next_poll` times.
    """

    def __init__(self, profile: Profile, now: float) -> None:
        self.profile = profile
        self._heard = now
        self._stalled = 0.0  # our own lateness since we last heard, not the peer's fault
        self._last_tick: float | None = None
        self._fast_gaps = 0
        self.trusted = False
        self.suspected = False
        self._paused = False
        self._segments: int | None = None  # the kernel's segment count when suspected
        self._next = now + profile.tick_interval

    def tick_received(self, now: float) -> None:
        """An empty frame (a tick) arrived at ``now``."""
        profile = self.profile
        if self._last_tick is not None and not self.trusted:
            gap = now - self._last_tick
            if gap > profile.trust_gap:
                self._fast_gaps = 0
            elif gap >= profile.tick_interval / 2:
                self._fast_gaps += 1
            # else: ticks read together (queued while we stalled) say nothing of the pace
            self.trusted = self._fast_gaps >= profile.trust_ticks
        self._last_tick = now
        self.received(now)

    def received(self, now: float) -> None:
        """Input (anything) arrived from the peer at ``now``."""
        if now >= self._heard:
            self._heard = now
            self._stalled = 0.0
            self.suspected = False
            self._segments = None

    def segments_received(self, count: int | None, now: float) -> None:
        """While suspected: ``count`` is the kernel's count of data segments that arrived
        on the socket (None where unknown). Growth means the peer is sending and its data
        waits behind a lost segment: it counts as hearing from the peer."""
        if count is None:
            return
        if self._segments is not None and count != self._segments:
            self.received(now)
        else:
            self._segments = count

    def pause_reading(self) -> None:
        """We stopped reading the socket: the peer's silence is not its fault."""
        self._paused = True

    def resume_reading(self, now: float) -> None:
        """We read again: count the peer's silence from ``now``."""
        self._paused = False
        self._last_tick = None  # a gap across the pause says nothing of the peer's pace
        self.received(now)

    def next_poll(self) -> float:
        """When :meth:`poll` is due next (the caller's clock)."""
        return self._next

    def silence(self, now: float) -> float:
        """How long the peer has been silent while we were running to hear it."""
        return max(0.0, now - self._heard - self._stalled)

    def poll(self, now: float) -> LivenessAction:
        """Decide at ``now``: PEER_DOWN for a trusted peer silent too long, else a tick."""
        profile = self.profile
        late = max(0.0, now - self._next)
        self._next = now + profile.tick_interval
        if late > profile.max_lateness:
            # We stalled: whatever the peer sent meanwhile may still be unread, and the
            # time is ours. Only the excess over an ordinary timer delay is discounted.
            self._stalled = min(self._stalled + late - profile.max_lateness, now - self._heard)
        if self._paused or not self.trusted:
            return LivenessAction.SEND_TICK
        silent = self.silence(now)
        self.suspected = silent >= profile.suspect_after
        if silent >= profile.down_after and late <= profile.max_lateness:
            return LivenessAction.PEER_DOWN
        return LivenessAction.SEND_TICK
