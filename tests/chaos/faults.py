"""The chaos schedule: which faults hit which nodes, for how long — from one seed.

Pure (no processes, no clocks): the same seed gives the same schedule, so a failing run
is replayed with ``NODEMESH_CHAOS_SEED``. Each round hits one node, or two at once with
different faults; the round's faults all heal before the next round starts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = ("kill", "freeze", "link-down", "loss", "stall")


@dataclass(frozen=True)
class Fault:
    """``kind`` on node ``target`` for ``hold`` seconds; ``percent`` for loss."""

    kind: str
    target: str
    hold: float
    percent: int = 0

    def __str__(self) -> str:
        extra = f" {self.percent}%" if self.kind == "loss" else ""
        return f"{self.kind}{extra} {self.target} {self.hold:.1f}s"


def _hold(rng: random.Random, kind: str) -> float:
    """How long the fault lasts. Freezes, stalls and cuts are drawn around the tick time
    (2 s): some end before the peers' detectors fire, some after. A killed node stays
    dead a moment before its restart."""
    low, high = {
        "kill": (0.3, 1.5),
        "freeze": (0.3, 4.0),
        "link-down": (0.5, 4.0),
        "loss": (2.0, 5.0),
        "stall": (0.5, 4.0),
    }[kind]
    return round(rng.uniform(low, high), 1)


def plan(rng: random.Random, rounds: int, targets: list[str]) -> list[list[Fault]]:
    """``rounds`` rounds of faults on ``targets`` (every kind at least once when
    ``rounds`` >= 5: the first five rounds are the kinds in a shuffled order)."""
    kinds = list(KINDS)
    rng.shuffle(kinds)
    schedule = []
    for index in range(rounds):
        first = kinds[index] if index < len(kinds) else rng.choice(KINDS)
        picked = [first]
        if len(targets) > 1 and rng.random() < 0.3:
            picked.append(rng.choice([k for k in KINDS if k != first]))
        hit = rng.sample(targets, len(picked))
        schedule.append(
            [
                Fault(kind, target, _hold(rng, kind), rng.choice((10, 20, 30)))
                for kind, target in zip(picked, hit, strict=True)
            ]
        )
    return schedule
