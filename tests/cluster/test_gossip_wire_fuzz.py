"""Property tests: gossip decoding raises only GossipError, whatever arrives."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodemesh.cluster.gossip.wire import (
    AuthenticatedCodec,
    GossipError,
    Heartbeat,
    PlainCodec,
    SecretCodec,
    decode_heartbeat,
    encode_heartbeat,
    read_heartbeat,
)

NOW = 1_700_000_000.0
KEY = "fuzz-key-0123456789abcdef"
CODECS = {
    "plain": lambda: PlainCodec(),
    "secret": lambda: SecretCodec("fuzz"),
    "authenticated": lambda: AuthenticatedCodec([KEY], "fuzz"),
}

alive = st.from_regex(r"[0-9A-Za-z_-]{1,20}", fullmatch=True)
host = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF).filter(lambda c: c != "@"))
node_names = st.builds(lambda a, h: f"{a}@{h}", alive, host.filter(lambda h: 0 < len(h) < 200))


def only_gossip_errors(codec_name: str, packet: bytes) -> str | None:
    try:
        beat = CODECS[codec_name]().read(packet, NOW)
    except GossipError:
        return None
    assert beat.dist_port is None or 0 < beat.dist_port < 65536
    return beat.node


@given(st.sampled_from(sorted(CODECS)), st.binary(max_size=600))
def test_random_bytes_raise_only_gossip_errors(codec: str, packet: bytes) -> None:
    """Arbitrary datagrams never raise anything but GossipError."""
    only_gossip_errors(codec, packet)


@given(st.binary(max_size=300))
def test_random_terms_after_the_prefix_raise_only_gossip_errors(body: bytes) -> None:
    """Bytes after ``heartbeat::\\x83`` reach the term decoder: still only GossipError."""
    with contextlib.suppress(GossipError):
        decode_heartbeat(b"heartbeat::\x83" + body)


@given(node_names)
def test_plain_round_trip(name: str) -> None:
    """Every valid node name survives encode/decode."""
    assert decode_heartbeat(encode_heartbeat(name)) == name


@given(node_names, st.integers(1, 65535))
def test_round_trip_with_a_port(name: str, port: int) -> None:
    """Every valid node name and port survive encode/read."""
    assert read_heartbeat(encode_heartbeat(name, port)) == Heartbeat(name, port)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(CODECS)),
    node_names,
    st.one_of(st.none(), st.integers(1, 65535)),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    st.integers(0, 200),
)
def test_mutated_packets_decode_or_raise_gossip_errors(
    codec: str, name: str, port: int | None, edits: list[tuple[int, int]], cut: int
) -> None:
    """Valid packets with bytes changed or cut off: a name, or a GossipError, nothing else;
    an authenticated packet that was changed at all never decodes."""
    original = CODECS[codec]().encode(name, NOW, port)
    packet = bytearray(original)
    for pos, value in edits:
        packet[pos % len(packet)] = value
    mutated = bytes(packet[: len(packet) - cut % 8])
    result = only_gossip_errors(codec, mutated)
    if codec == "authenticated" and result is not None:
        assert mutated == original


@given(st.lists(st.text(min_size=16, max_size=40), min_size=1, max_size=3), st.text(max_size=20))
def test_authenticated_round_trip_with_any_keys_and_label(keys: list[str], label: str) -> None:
    """Whatever the keys and label, a sealed heartbeat opens with the same configuration."""
    sender = AuthenticatedCodec(keys, label)
    receiver = AuthenticatedCodec(list(reversed(keys)), label)
    assert receiver.decode(sender.encode("a@b.c", NOW), NOW) == "a@b.c"
