"""A fake clock for logic that takes ``now``: tests advance time instead of sleeping."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Virtual time in seconds: it moves only when a test calls :meth:`advance`."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += seconds
        return self._now
