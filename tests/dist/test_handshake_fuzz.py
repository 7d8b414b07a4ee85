"""Property tests: whatever bytes arrive, the handshake only reports nodemesh errors."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from nodemesh.dist.flags import DEFAULT_FLAGS
from nodemesh.dist.handshake import (
    NEED_DATA,
    Acceptor,
    HandshakeState,
    Initiator,
    NameReceived,
    challenge_digest,
)
from nodemesh.errors import HandshakeError, RemoteProtocolError

A, B, COOKIE = "alpha@127.0.0.1", "beta@127.0.0.1", "C"
WAITING = {HandshakeState.AWAIT_DECISION, HandshakeState.AWAIT_ALIVE_DECISION}
DONE = {HandshakeState.ESTABLISHED, HandshakeState.CLOSED, HandshakeState.FAILED}


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


def send_name(tag: bytes = b"N") -> bytes:
    if tag == b"n":
        return frame(b"n\x00\x05" + (int(DEFAULT_FLAGS) & 0xFFFFFFFF).to_bytes(4, "big") + b"a@h")
    return frame(b"N" + int(DEFAULT_FLAGS).to_bytes(8, "big") + bytes(4) + b"\x00\x03a@h")


def acceptor_after(status: str | None, opening: bytes = b"N") -> Acceptor:
    a = Acceptor(B, COOKIE, DEFAULT_FLAGS, 2, lambda: 5)
    if status is not None:
        a.receive_data(send_name(opening))
        assert isinstance(a.next_event(), NameReceived)
        a.accept_name(status)
    return a


def initiator_after(*messages: bytes) -> Initiator:
    i = Initiator(A, COOKIE, DEFAULT_FLAGS, 1, lambda: 7)
    for message in messages:
        i.receive_data(message)
        assert i.next_event() is NEED_DATA
    return i


CHALLENGE = frame(b"N" + int(DEFAULT_FLAGS).to_bytes(8, "big") + bytes(8) + b"\x00\x03b@h")
STATES: list[Callable[[], Acceptor | Initiator]] = [
    lambda: acceptor_after(None),
    lambda: acceptor_after("ok"),
    lambda: acceptor_after("alive"),
    lambda: acceptor_after("ok", opening=b"n"),
    lambda: initiator_after(),
    lambda: initiator_after(frame(b"sok")),
    lambda: initiator_after(frame(b"sok"), CHALLENGE),
]

# Frames with a plausible tag and length make the fuzzer reach the message parsers.
TAGS = st.sampled_from([b"N", b"n", b"s", b"r", b"a", b"c", b"X"])
FRAMES = st.builds(lambda tag, body: frame(tag + body), TAGS, st.binary(max_size=40))
INPUT = st.one_of(st.binary(max_size=64), st.lists(FRAMES, max_size=3).map(b"".join))


def drain(hs: Acceptor | Initiator, data: bytes, chunk: int) -> None:
    """Feed ``data`` in chunks; stop at a decision, the end, or an error."""
    for start in range(0, len(data), chunk):
        hs.receive_data(data[start : start + chunk])
        while hs.state not in DONE | WAITING:
            if hs.next_event() is NEED_DATA:
                break
        if hs.state in DONE | WAITING:
            return


@given(st.sampled_from(STATES), INPUT, st.integers(1, 8))
def test_any_bytes_give_need_data_an_event_or_a_nodemesh_error(
    make: Callable[[], Acceptor | Initiator], data: bytes, chunk: int
) -> None:
    """Random bytes into any state: NEED_DATA, events, or Handshake/RemoteProtocol errors."""
    hs = make()
    try:
        drain(hs, data, chunk)
        hs.connection_lost()
    except (HandshakeError, RemoteProtocolError):
        assert hs.state is HandshakeState.FAILED


@given(st.integers(0, 2**32 - 1), st.text(alphabet=st.characters(max_codepoint=255), min_size=1))
def test_digest_is_always_16_bytes(challenge: int, cookie: str) -> None:
    """Any uint32 challenge and Latin-1 cookie digest to 16 bytes."""
    assert len(challenge_digest(challenge, cookie)) == 16
