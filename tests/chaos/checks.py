"""What the chaos run asserts about the numbered traffic, connection by connection.

Erlang's distribution delivers at most once and in order (see "Delivery: at most once"
in docs/node.md): over one connection, messages arrive in the order sent, and when the
connection drops, the ones still in flight are lost — only a tail. So for every
connection (sender incarnation, receiver, epoch) the receiver must hold one unbroken run
first..last: no number twice, none out of order, no gap; it must start at the first
number sent on that connection; and if the connection is still up at the end, it must
end at the last number sent. (A lost head — the first messages on a new connection gone,
later ones delivered — was seen a few times between a Python sender and an Erlang
receiver after faults: docs/reliability.md; it is recorded in ``head_lost`` and fails the
run only with NODEMESH_CHAOS_STRICT=1 until it is explained.) Pairs whose connection
never dropped in the whole run (one epoch each way, neither node restarted) are the
"stable pairs": for them that means nothing lost at all, and that is always asserted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos.members import Member, Report, Sent


@dataclass
class Verdict:
    """The figures of one run's traffic, and what broke the rules (empty: nothing)."""

    connections: int = 0  # epochs checked
    up_at_end: int = 0  # of them, still up at the end: complete
    delivered: int = 0  # messages received, all connections
    complete_messages: int = 0  # on connections up at the end, all of them arrived
    dropped: int = 0  # connections that went down
    sent_on_dropped: int = 0
    lost_on_dropped: int = 0  # tails lost in flight (receiver still known)
    stable_pairs: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    head_lost: list[str] = field(default_factory=list)  # see docs/reliability.md


def judge(members: list[Member], sent: dict[str, Sent], got: dict[str, Report]) -> Verdict:
    """Check every connection of every current sender incarnation (see the module doc)."""
    verdict = Verdict()
    for receiver in members:
        for key, tally in got[receiver.name].tallies.items():
            verdict.delivered += tally[0]
            if tally[3] or tally[4]:
                verdict.broken.append(f"{key}->{receiver.name}: {tally} (duplicate/reorder/gap)")
    for a in members:
        for b in members:
            if a is not b:
                _judge_pair(a, b, sent[a.name], got[b.name], verdict)
    return verdict


def _judge_pair(a: Member, b: Member, sent: Sent, got: Report, verdict: Verdict) -> None:
    spans = sent.spans.get(b.name, {})
    current = sent.current.get(b.name)
    stable = not a.restarts and not b.restarts and current is not None and list(spans) == [current]
    if stable:
        verdict.stable_pairs.append(f"{a.name}->{b.name}")
    for epoch, (first, last) in spans.items():
        verdict.connections += 1
        tally = got.tallies.get((a.name, a.incarnation, epoch))
        where = f"{a.name}->{b.name} epoch {epoch} sent {first}..{last}"
        if tally is not None and tally[1] != first:
            (verdict.broken if stable else verdict.head_lost).append(
                f"{where}: got from {tally[1]} (head lost; connection {_who_dialled(sent, epoch)})"
            )
        if epoch == current:
            verdict.up_at_end += 1
            if tally is None or tally[2] != last:
                verdict.broken.append(f"{where}: got {tally} on a connection still up")
            verdict.complete_messages += last - first + 1
            continue
        verdict.dropped += 1
        if tally is not None or not b.restarts:  # else it may have died with the receiver
            verdict.sent_on_dropped += last - first + 1
            verdict.lost_on_dropped += last - (tally[2] if tally else first - 1)


def _who_dialled(sent: Sent, epoch: int) -> str:
    if epoch not in sent.dialled:
        return "of an Erlang sender"
    return "dialled by the sender" if sent.dialled[epoch] else "dialled by the receiver"
