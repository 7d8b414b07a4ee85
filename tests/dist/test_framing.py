"""Frame splitting after the handshake: lengths, ticks, limits, arbitrary chunking."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodemesh.dist.framing import TICK, FrameReader, frame_header
from nodemesh.errors import RemoteProtocolError


def frames_of(payloads: list[bytes]) -> bytes:
    return b"".join(frame_header(len(p)) + p for p in payloads)


def test_whole_frames_and_ticks() -> None:
    """Complete frames come out in order; a tick is an empty payload."""
    reader = FrameReader(1024)
    out = reader.feed(frames_of([b"p1", b"", b"p22"]))
    assert [bytes(f) for f in out] == [b"p1", b"", b"p22"]
    assert reader.buffered == 0


def test_tick_bytes() -> None:
    """A tick is four zero bytes."""
    assert TICK == b"\x00\x00\x00\x00"
    assert [bytes(f) for f in FrameReader(8).feed(TICK)] == [b""]


def test_partial_frames_wait_for_the_rest() -> None:
    """A frame split across reads is returned once, when complete."""
    reader = FrameReader(1024)
    data = frames_of([b"abcdef"])
    assert reader.feed(data[:2]) == []
    assert reader.feed(data[2:7]) == []
    assert [bytes(f) for f in reader.feed(data[7:])] == [b"abcdef"]


def test_oversized_frame_is_refused_before_buffering() -> None:
    """A length above the limit raises at once, before its bytes arrive."""
    reader = FrameReader(100)
    with pytest.raises(RemoteProtocolError, match="exceeds the limit of 100"):
        reader.feed(b"\x00\x00\x00\x65")


def test_frames_stay_valid_after_more_input() -> None:
    """Returned payloads are immutable bytes: later feeds do not change them."""
    reader = FrameReader(1024)
    first = reader.feed(frames_of([b"keep"]) + b"\x00\x00")
    reader.feed(b"\x00\x01z")
    assert bytes(first[0]) == b"keep"


@given(
    payloads=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=7000), max_size=30),
)
def test_any_chunking_yields_the_same_frames(payloads: list[bytes], cuts: list[int]) -> None:
    """However the stream is cut into reads, the same payloads come out in order."""
    data = frames_of(payloads)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    reader = FrameReader(1024)
    out: list[bytes] = []
    for start, end in itertools.pairwise(bounds):
        out.extend(bytes(f) for f in reader.feed(data[start:end]))
    assert out == payloads
    assert reader.buffered == 0
