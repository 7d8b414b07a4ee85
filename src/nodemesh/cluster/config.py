"""How the cluster runner times things: every delay is configuration (seconds)."""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

from nodemesh.errors import ConfigError

__all__ = ["ClusterConfig", "backoff", "jittered"]


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Timings of the cluster runner, shared by its topologies. Durations in seconds.

    - ``connect_timeout``: one connect through a topology's hook;
    - ``max_parallel_connects``: connects in flight at once per topology;
    - ``polling_jitter``: each polling interval is multiplied by a random factor in
      ``1 ± polling_jitter`` so that replicas started together do not poll in step;
    - ``retry_min_delay`` .. ``retry_max_delay``: exponential backoff (with jitter) for a
      node discovery lists that is not connected, or that dropped again soon after being
      reconnected; the first reconnect after a drop is immediate;
    - ``discovery_max_delay``: after failed lookups the next one comes after
      interval * 2^(failures-1), at most this long (or the interval, when longer);
    - ``restart_min_delay`` .. ``restart_max_delay``: backoff before restarting a
      strategy that raised; a run that lasted longer than ``restart_max_delay`` resets it.
    """

    connect_timeout: float = 10.0
    max_parallel_connects: int = 32
    polling_jitter: float = 0.1
    retry_min_delay: float = 0.5
    retry_max_delay: float = 30.0
    discovery_max_delay: float = 60.0
    restart_min_delay: float = 1.0
    restart_max_delay: float = 60.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"ClusterConfig.{f.name} must be a number, got {value!r}")
        if not 0 <= self.polling_jitter < 1:
            raise ConfigError(f"polling_jitter must be in [0, 1), got {self.polling_jitter}")
        if type(self.max_parallel_connects) is not int or self.max_parallel_connects < 1:
            raise ConfigError("max_parallel_connects must be a positive integer")
        for name in ("connect_timeout", "retry_min_delay", "restart_min_delay"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for low, high in (
            ("retry_min_delay", "retry_max_delay"),
            ("restart_min_delay", "restart_max_delay"),
            ("retry_min_delay", "discovery_max_delay"),
        ):
            if getattr(self, high) < getattr(self, low):
                raise ConfigError(f"{high} must be at least {low}")


def backoff(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (1, 2, ...): ``low`` doubling up to ``high``,
    with "equal jitter" (between half and all of it), so that a retry never comes sooner
    than half the previous ceiling and peers that failed together spread out."""
    ceiling = min(high, low * 2.0 ** max(0, min(attempt - 1, 62)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def jittered(interval: float, fraction: float, rng: random.Random) -> float:
    """``interval`` times a random factor in ``1 ± fraction``."""
    factor: float = rng.uniform(1 - fraction, 1 + fraction)
    return interval * factor
