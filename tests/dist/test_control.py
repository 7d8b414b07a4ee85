"""Control messages: building frames, parsing them, and refusing malformed ones."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodemesh.dist import control
from nodemesh.dist.control import Op
from nodemesh.dist.framing import FrameReader
from nodemesh.errors import RemoteProtocolError
from nodemesh.term import encode
from nodemesh.term.types import Atom, Pid, Reference

ME = Pid(Atom("a@h"), 1, 0, 5)
YOU = Pid(Atom("b@h"), 2, 0, 6)
REF = Reference(Atom("a@h"), 5, (1, 2, 3))


def parse_built(frame: bytes) -> tuple[tuple[object, ...], object]:
    (payload,) = FrameReader(1 << 20).feed(frame)
    return control.parse(payload)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (control.send(YOU, "hi", ME), ((Op.SEND_SENDER, ME, YOU), b"hi")),
        (control.send(YOU, 1), ((Op.SEND, Atom(""), YOU), 1)),
        (control.reg_send(ME, Atom("chat"), [1]), ((Op.REG_SEND, ME, Atom(""), Atom("chat")), [1])),
        (
            control.monitor_exit(ME, YOU, REF, Atom("normal")),
            ((Op.PAYLOAD_MONITOR_P_EXIT, ME, YOU, REF), Atom("normal")),
        ),
        (control.exit_signal(ME, YOU, Atom("kill")), ((Op.PAYLOAD_EXIT, ME, YOU), Atom("kill"))),
        (control.build((Op.LINK.value, ME, YOU)), ((Op.LINK, ME, YOU), None)),
    ],
)
def test_built_frames_parse_back(frame: bytes, expected: tuple[object, object]) -> None:
    """Every builder's frame parses to its control tuple and payload."""
    assert parse_built(frame) == expected


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"q" + encode((1, ME, YOU)), "header"),
        (b"p" + encode([1]), "operation"),
        (b"p" + encode(()), "operation"),
        (b"p" + encode((99, 1)), "unknown control operation 99"),
        (b"p" + encode((Op.LINK.value, ME)), "LINK has 2 elements, not 3"),
        (b"p" + encode((Op.SEND.value, Atom(""), YOU)), "."),  # payload missing
        (b"p" + encode((Op.LINK.value, ME, YOU)) + b"\x00", "unexpected bytes"),
        (b"p\x83", "."),
    ],
)
def test_malformed_frames_raise_remote_protocol_error(payload: bytes, match: str) -> None:
    """Malformed control frames raise RemoteProtocolError with a clear message."""
    with pytest.raises(RemoteProtocolError, match=match):
        control.parse(payload)


@given(st.binary(min_size=1, max_size=200))
def test_arbitrary_frames_raise_only_protocol_errors(data: bytes) -> None:
    """Any bytes either parse or raise RemoteProtocolError, nothing else."""
    with contextlib.suppress(RemoteProtocolError):
        control.parse(b"p" + data)


@given(st.data())
def test_mutated_frames_raise_only_protocol_errors(data: st.DataObject) -> None:
    """Valid frames with bytes flipped either parse or raise RemoteProtocolError."""
    frame = bytearray(control.send(YOU, (Atom("chat"), b"room", 12345), ME)[4:])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(frame) - 1))
        frame[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RemoteProtocolError):
        control.parse(bytes(frame))
