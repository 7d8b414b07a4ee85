"""The chaos suite: five nodes (three Python, two ``erl``) on five hosts (network namespaces
on a bridge) take seeded random faults — kill -9 and restart, SIGSTOP/SIGCONT, link down,
random packet loss and stalled links (nftables) — while every node sends numbered
messages to every other. See docs/reliability.md for what is asserted and why.

The seed is printed and named in every failure; ``NODEMESH_CHAOS_SEED=N`` replays a run's
schedule (``NODEMESH_CHAOS_ROUNDS``: rounds, 10 by default; ``NODEMESH_CHAOS_STRICT=1``:
a lost head fails too; ``NODEMESH_CHAOS_RESULTS=path``: append the figures as JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

from chaos.checks import Verdict, judge
from chaos.faults import Fault, plan
from chaos.members import ErlMember, Member, PyMember, Report, Sent, Settings
from conftest import COOKIE
from support.erlang import require_erlang
from support.netns import NetnsLab, clear_filters, drop_all, drop_random, require_netns, require_nft

pytestmark = [pytest.mark.chaos, pytest.mark.netns, pytest.mark.interop]

TICK = 2  # net_ticktime on every node (s): a silent peer is down after 2..2.5 s
REFORM_BOUND = 15.0  # s from the last heal to every live node seeing every other
DRAIN_BOUND = 10.0  # s for the last messages sent to reach their receivers
# Before traffic stops, the mesh must hold this long with no nodedown: a connection that
# died during a fault but was not yet declared down (TCP's backoff can stretch a short
# outage past the tick) is, by then — 1.25 x net_ticktime = 2.5 s at most.
QUIET = 3.0
SETTLE_BOUND = 30.0
# Leak bounds, after the run vs before, in Python nodes never restarted (see the doc).
MAX_EXTRA_TASKS = 2
MAX_EXTRA_FDS = 2
MAX_EXTRA_RSS_KIB = 8 * 1024
ANCHORS = ("p1", "e4")  # never a target: their pair must never drop


Seen = dict[str, float | None]  # observer -> when it dropped the target (None: not)


@dataclass
class Round:
    """One round's faults; per fault, when each node not hit dropped the target (while
    the fault lasted); nodedowns seen in the round; re-form time after the heal."""

    faults: list[Fault]
    seen: list[Seen]
    drops: int
    reform: float

    def summary(self) -> dict[str, Any]:
        return {
            "faults": [str(f) for f in self.faults],
            "dropped_by_python_s": [dropped_by_all(s, "p") for s in self.seen],
            "dropped_by_erlang_s": [dropped_by_all(s, "e") for s in self.seen],
            "dropped_by": [
                {name: None if t is None else round(t, 2) for name, t in s.items()}
                for s in self.seen
            ],
            "nodedowns": self.drops,
            "reform_s": round(self.reform, 2),
        }


def dropped_by_all(seen: Seen, kind: str) -> float | None:
    """When the last observer of this kind (p: Python, e: erl) dropped the target."""
    times = [t for name, t in seen.items() if name.startswith(kind)]
    if not times or None in times:
        return None
    return round(max(t for t in times if t is not None), 2)


@dataclass
class Run:
    """One chaos run: the members by name and what was measured."""

    lab: NetnsLab
    members: dict[str, Member]
    seed: int
    detector: str
    rounds: list[Round] = field(default_factory=list)

    @property
    def live(self) -> list[Member]:
        return [m for m in self.members.values() if not m.dead and not m.frozen]


@pytest.fixture(params=["erlang", "fast"])
async def run(request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    """Five hosts: p1..p3 (Python) on hosts 1..3, e4 and e5 (erl) on hosts 4 and 5; the
    Python nodes with the failure detector named by the parameter."""
    require_netns()
    require_nft()
    require_erlang()
    seed = int(os.environ.get("NODEMESH_CHAOS_SEED") or secrets.randbits(32))
    print(f"chaos seed {seed} (replay: NODEMESH_CHAOS_SEED={seed} pytest tests/chaos)")
    lab = NetnsLab.create(5)
    names = [f"{'p' if i <= 3 else 'e'}{i}@{lab.ip4(i)}" for i in range(1, 6)]
    settings = Settings(lab, COOKIE, names, TICK, {"failure_detector": request.param})
    members: dict[str, Member] = {
        name.split("@")[0]: (PyMember if i <= 3 else ErlMember)(settings, i, name)
        for i, name in enumerate(names, 1)
    }
    try:
        yield Run(lab, members, seed, request.param)
    finally:
        for member in members.values():
            if member.frozen:
                member.thaw()
        await asyncio.gather(*(m.close() for m in members.values()), return_exceptions=True)
        lab.close()


@contextlib.contextmanager
def replay_hint(seed: int) -> Iterator[None]:
    """Name the seed in any failure."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nreplay: NODEMESH_CHAOS_SEED={seed} pytest tests/chaos"
        ) from exc


async def wait_mesh(members: list[Member], timeout: float) -> float:
    """Until every member sees every other; how long that took. Fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    names = {m.name for m in members}
    while True:
        views = await asyncio.gather(*(m.nodes() for m in members))
        missing = {
            m.name: sorted(names - {m.name} - seen)
            for m, seen in zip(members, views, strict=True)
            if names - {m.name} - seen
        }
        if not missing:
            return loop.time() - start
        if loop.time() - start > timeout:
            raise AssertionError(f"cluster not re-formed within {timeout} s; missing: {missing}")
        await asyncio.sleep(0.1)


async def inflict(run: Run, fault: Fault, targets: set[str]) -> Seen:
    """Apply ``fault``, keep it for its duration (that is the fault), then heal it.
    Returns when each node not hit dropped the target (s after the fault), if it did
    while the fault lasted."""
    member, lab = run.members[fault.target], run.lab
    if fault.kind == "kill":
        await member.kill()
        seen = await hold(run, fault, targets)
        await member.restart()
        return seen
    apply, heal = {
        "freeze": (member.freeze, member.thaw),
        "link-down": (lambda: lab.link_down(member.host), lambda: lab.link_up(member.host)),
        "loss": (
            lambda: drop_random(lab, member.host, fault.percent),
            lambda: clear_filters(lab, member.host),
        ),
        "stall": (lambda: drop_all(lab, member.host), lambda: clear_filters(lab, member.host)),
    }[fault.kind]
    apply()
    try:
        return await hold(run, fault, targets)
    finally:
        heal()


async def hold(run: Run, fault: Fault, targets: set[str]) -> Seen:
    """Wait out the fault's duration, watching the nodes not hit this round: when each
    of them was first no longer connected to the target (None: not while it lasted)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + fault.hold
    target = run.members[fault.target].name
    observers = [m for short, m in run.members.items() if short not in targets]
    seen: Seen = {m.name.split("@")[0]: None for m in observers}
    while loop.time() < end:
        watch = [m for m in observers if seen[m.name.split("@")[0]] is None]
        views = await asyncio.gather(*(m.nodes() for m in watch))
        for member, view in zip(watch, views, strict=True):
            if target not in view:
                seen[member.name.split("@")[0]] = loop.time() - start
        await asyncio.sleep(max(0.0, min(0.1, end - loop.time())))
    return seen


async def chaos_rounds(run: Run, schedule: list[list[Fault]]) -> None:
    """Each round: its faults at once, healed; then the cluster must re-form in bound."""
    downs = await count_downs(run)
    for number, faults in enumerate(schedule, 1):
        print(f"round {number}: {', '.join(map(str, faults))}", flush=True)
        targets = {f.target for f in faults}
        seen = await asyncio.gather(*(inflict(run, f, targets) for f in faults))
        took = await wait_mesh(run.live, REFORM_BOUND)
        now = await count_downs(run)
        drops = sum(n - downs.get(key, 0) for key, n in now.items())
        downs = now
        run.rounds.append(Round(faults, seen, drops, took))
        print(f"  {json.dumps(run.rounds[-1].summary())}", flush=True)


async def count_downs(run: Run) -> dict[tuple[str, int], int]:
    """Nodedowns seen so far by each node incarnation."""
    got = await reports(run)
    return {
        (name, run.members[name.split("@")[0]].incarnation): sum(r.downs.values())
        for name, r in got.items()
    }


async def settle(run: Run) -> float:
    """Until the full mesh has held for QUIET seconds with no nodedown anywhere; how long
    that took. Fails after SETTLE_BOUND."""
    loop = asyncio.get_running_loop()
    start = quiet_since = loop.time()
    downs = await count_downs(run)
    while loop.time() - quiet_since < QUIET:
        if loop.time() - start > SETTLE_BOUND:
            raise AssertionError(f"the cluster did not settle within {SETTLE_BOUND} s")
        await wait_mesh(run.live, REFORM_BOUND)
        now = await count_downs(run)
        if now != downs:
            downs, quiet_since = now, loop.time()
        await asyncio.sleep(0.1)
    return loop.time() - start


async def reports(run: Run) -> dict[str, Report]:
    got = await asyncio.gather(*(m.report() for m in run.members.values()))
    return {m.name: r for m, r in zip(run.members.values(), got, strict=True)}


async def drain(run: Run, sent: dict[str, Sent]) -> tuple[dict[str, Report], Verdict]:
    """Reports and their verdict once nothing is missing (the last messages sent may still
    be on their way), or as they are after DRAIN_BOUND."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_BOUND
    members = list(run.members.values())
    while True:
        got = await reports(run)
        verdict = judge(members, sent, got)
        if not verdict.broken or loop.time() > deadline:
            return got, verdict
        await asyncio.sleep(0.1)


def check_traffic(run: Run, verdict: Verdict) -> None:
    """Every connection held its messages in order with no gap, only a tail lost when it
    dropped; the untouched pair never dropped."""
    broken = verdict.broken + (verdict.head_lost if os.environ.get("NODEMESH_CHAOS_STRICT") else [])
    assert not broken, "numbered traffic broken:\n  " + "\n  ".join(broken)
    a, b = (run.members[name].name for name in ANCHORS)
    for pair in (f"{a}->{b}", f"{b}->{a}"):
        assert pair in verdict.stable_pairs, f"the untouched pair {pair} dropped its connection"


def check_leaks(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Tasks, fds and RSS of the Python nodes never restarted, after vs before."""
    for name, old in before.items():
        new = after[name]
        assert new["tasks"] <= old["tasks"] + MAX_EXTRA_TASKS, f"{name} tasks {old} -> {new}"
        assert new["fds"] <= old["fds"] + MAX_EXTRA_FDS, f"{name} fds {old} -> {new}"
        grew = new["rss_kib"] - old["rss_kib"]
        assert grew <= MAX_EXTRA_RSS_KIB, f"{name} RSS grew {grew} KiB: {old} -> {new}"


async def py_stats(run: Run) -> dict[str, Any]:
    py = [m for m in run.members.values() if isinstance(m, PyMember) and not m.restarts]
    return {m.name: await m.stats() for m in py}


async def test_cluster_survives_random_faults(run: Run) -> None:
    """Seeded random faults on 3 of 5 nodes: the cluster re-forms within REFORM_BOUND
    after each; every connection delivers in order without gaps (only a dropped one
    loses a tail); stable pairs lose nothing; no leaked tasks, fds or memory."""
    rounds = int(os.environ.get("NODEMESH_CHAOS_ROUNDS", "10"))
    targets = [name for name in run.members if name not in ANCHORS]
    schedule = plan(random.Random(run.seed), rounds, targets)
    with replay_hint(run.seed):
        members = list(run.members.values())
        await asyncio.gather(*(m.start() for m in members))
        formed = await wait_mesh(members, 60)
        await asyncio.gather(*(m.traffic(True) for m in members))
        stats_before = await py_stats(run)
        await chaos_rounds(run, schedule)
        settled = await settle(run)
        stats_after = await py_stats(run)
        sent_list = await asyncio.gather(*(m.traffic(False) for m in members))
        sent = {m.name: s for m, s in zip(members, sent_list, strict=True) if s is not None}
        _, verdict = await drain(run, sent)
        check_traffic(run, verdict)
        check_leaks({k: v for k, v in stats_before.items() if k in stats_after}, stats_after)
    summary = {
        "seed": run.seed,
        "detector": run.detector,
        "formed_s": round(formed, 2),
        "rounds": [r.summary() for r in run.rounds],
        "max_reform_s": round(max(r.reform for r in run.rounds), 2),
        "settled_s": round(settled, 2),
        **asdict(verdict),
        "python_verdicts": {m.name: m.verdicts for m in members if isinstance(m, PyMember)},
        "stats_before": stats_before,
        "stats_after": stats_after,
    }
    record(summary)


def record(summary: dict[str, Any]) -> None:
    """Print the figures; append them to $NODEMESH_CHAOS_RESULTS (JSON lines) if set."""
    print(json.dumps(summary, indent=1))
    if path := os.environ.get("NODEMESH_CHAOS_RESULTS"):
        with open(path, "a") as out:
            out.write(json.dumps(summary) + "\n")
