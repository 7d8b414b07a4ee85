"""Control messages: building frames, parsing them, and refusing malformed ones."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodemesh.dist import control
from nodemesh.dist import events as ev
from nodemesh.dist.control import Op
from nodemesh.dist.framing import FrameReader
from nodemesh.errors import RemoteProtocolError
from nodemesh.term.codec import ELIXIR
from nodemesh.term import encode, encode_once
from nodemesh.term.codec import ELIXIR, ERLANG
from nodemesh.term.types import Atom, Pid, Reference

ME = Pid(Atom("a@h"), 1, 0, 5)
YOU = Pid(Atom("b@h"), 2, 0, 6)
REF = Reference(Atom("a@h"), 5, (1, 2, 3))
MFA = (Atom("erpc"), Atom("execute_call"), 4)
REQUEST = ev.SpawnRequest(REF, YOU, YOU, MFA, [], [])


def parse_built(frame: bytes) -> ev.ControlEvent:
    (payload,) = FrameReader(1 << 20).feed(frame)
    return control.parse(payload)


def raw(control_tuple: tuple[object, ...], *payload: object) -> bytes:
    """One frame payload as a peer would send it: ``p``, the control term, the payload."""
    return b"p" + encode(control_tuple) + b"".join(encode(p) for p in payload)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (control.send(YOU, "hi", ME), ev.Send(YOU, b"hi", ME)),
        (control.send(YOU, 1), ev.Send(YOU, 1, None)),
        (control.reg_send(ME, Atom("chat"), [1]), ev.RegSend(ME, Atom("chat"), [1])),
        (
            control.monitor_exit(ME, YOU, REF, Atom("normal")),
            ev.MonitorPExit(ME, YOU, REF, Atom("normal")),
        ),
        (control.exit_signal(ME, YOU, Atom("kill")), ev.Exit(ME, YOU, Atom("kill"), link=True)),
        (control.link(ME, YOU), ev.Link(ME, YOU)),
        (control.unlink_id(7, ME, YOU), ev.Unlink(ME, YOU, 7)),
        (control.unlink_id_ack(ev.Unlink(YOU, ME, 7)), ev.UnlinkIdAck(7, ME, YOU)),
        (control.noproc_exit(ev.Link(YOU, ME)), ev.Exit(ME, YOU, Atom("noproc"), link=True)),
        (control.monitor_p(ME, Atom("rex"), REF), ev.MonitorP(ME, Atom("rex"), REF)),
        (control.demonitor_p(ME, YOU, REF), ev.DemonitorP(ME, YOU, REF)),
        (
            control.noproc_down(ev.MonitorP(YOU, Atom("gone"), REF)),
            ev.MonitorPExit(Atom("gone"), YOU, REF, Atom("noproc")),
        ),
        (
            control.spawn_request(REF, ME, ME, MFA, [Atom("monitor")], [1]),
            ev.SpawnRequest(REF, ME, ME, MFA, [Atom("monitor")], [1]),
        ),
        (control.spawn_reply(REQUEST, 2, ME), ev.SpawnReply(REF, YOU, 2, ME)),
    ],
)
def test_built_frames_parse_back(frame: bytes, expected: ev.ControlEvent) -> None:
    """Every builder's frame parses to the typed event it means."""
    assert parse_built(frame) == expected


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (raw((Op.SEND_TT, Atom(""), YOU, Atom("tok")), 1), ev.Send(YOU, 1, None)),
        (raw((Op.SEND_SENDER_TT, ME, YOU, Atom("tok")), 1), ev.Send(YOU, 1, ME)),
        (raw((Op.REG_SEND_TT, ME, Atom(""), Atom("x"), 0), 1), ev.RegSend(ME, Atom("x"), 1)),
        (raw((Op.EXIT, ME, YOU, Atom("r"))), ev.Exit(ME, YOU, Atom("r"), link=True)),
        (raw((Op.EXIT_TT, ME, YOU, 0, Atom("r"))), ev.Exit(ME, YOU, Atom("r"), link=True)),
        (raw((Op.EXIT2, ME, YOU, Atom("r"))), ev.Exit(ME, YOU, Atom("r"), link=False)),
        (raw((Op.PAYLOAD_EXIT2, ME, YOU), Atom("r")), ev.Exit(ME, YOU, Atom("r"), link=False)),
        (raw((Op.UNLINK, ME, YOU)), ev.Unlink(ME, YOU, None)),
        (raw((Op.MONITOR_P_EXIT, YOU, ME, REF, Atom("r"))), ev.MonitorPExit(YOU, ME, REF, "r")),
        (
            raw((Op.SPAWN_REPLY_TT, REF, ME, 0, Atom("notsup"), 0)),
            ev.SpawnReply(REF, ME, 0, "notsup"),
        ),
        (raw((Op.ALIAS_SEND, ME, REF), 1), ev.AliasSend(ME, REF, 1)),
        (raw((Op.NODE_LINK,)), ev.Other(Op.NODE_LINK, (Op.NODE_LINK,))),
    ],
)
def test_peer_forms_parse_to_one_event_per_meaning(frame: bytes, expected: ev.ControlEvent) -> None:
    """Trace-token and payload variants parse to the same event as their plain form."""
    assert control.parse(frame) == expected


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (control.send(YOU, "hi", ME)[4:], (YOU, b"hi", ME)),
        (control.send(YOU, 1)[4:], (YOU, 1, None)),
        (control.reg_send(ME, Atom("chat"), [1])[4:], (Atom("chat"), [1], ME)),
    ],
)
def test_read_hands_messages_over_as_tuples(frame: bytes, expected: ev.Message) -> None:
    """read()'s fast path gives (to, message, sender) for SEND, SEND_SENDER, REG_SEND."""
    assert control.read(frame) == expected


def test_read_gives_the_same_for_a_control_term_seen_before() -> None:
    """A message's control term looked up by its bytes gives what decoding it gives,
    whatever payload follows, and a wrong ending is still refused."""
    frames = [
        (control.send(YOU, "hi", ME)[4:], (YOU, b"hi", ME)),
        (control.send(YOU, 1)[4:], (YOU, 1, None)),
        (control.reg_send(ME, Atom("chat"), [1])[4:], (Atom("chat"), [1], ME)),
    ]
    for frame, expected in frames:
        for _ in range(2):  # the second read finds the control term's bytes
            assert control.read(frame) == expected
        control_bytes = frame[: len(frame) - len(encode(expected[1]))]
        assert control.read(control_bytes + encode((2, 3))) == (expected[0], (2, 3), expected[2])
        with pytest.raises(RemoteProtocolError, match="unexpected bytes"):
            control.read(frame + b"\x00")
        with pytest.raises(RemoteProtocolError):
            control.read(control_bytes)  # no payload


def test_read_decodes_a_known_name_with_the_codec_in_use() -> None:
    """A REG_SEND name is the codec's: ``nil`` is a name for Erlang's codec and None
    (refused: not an atom) for Elixir's, in either order of arrival."""
    for name, first, second in [("nil", ERLANG, ELIXIR), ("undefined", ELIXIR, ERLANG)]:
        frame = control.reg_send(ME, Atom(name), 1)[4:]
        assert control.read(frame, first) == (Atom(name), 1, ME)
        with pytest.raises(RemoteProtocolError, match="element 3 is not an atom"):
            control.read(frame, second)
        assert control.read(frame, first) == (Atom(name), 1, ME)


def test_read_keeps_a_bounded_number_of_control_terms() -> None:
    """The control terms remembered by their bytes never exceed their bound."""
    for i in range(control._HEADS_MAX + 10):
        frame = control.send(Pid(Atom("c@h"), i, 0, 1), i, ME)[4:]
        assert control.read(frame) == (Pid(Atom("c@h"), i, 0, 1), i, ME)
        assert 0 < control._heads_kept() <= control._HEADS_MAX


def test_read_gives_events_for_everything_else() -> None:
    """read() returns the same typed event as parse() for non-message operations."""
    frame = control.link(ME, YOU)[4:]
    assert control.read(frame) == control.parse(frame) == ev.Link(ME, YOU)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (control.monitor_p(ME, Atom("kv"), REF)[4:], ev.MonitorP(ME, Atom("kv"), REF)),
        (control.monitor_p(ME, YOU, REF)[4:], ev.MonitorP(ME, YOU, REF)),
        (control.demonitor_p(ME, Atom("kv"), REF)[4:], ev.DemonitorP(ME, Atom("kv"), REF)),
        (control.demonitor_p(ME, YOU, REF)[4:], ev.DemonitorP(ME, YOU, REF)),
    ],
)
def test_read_gives_monitor_events_equal_to_parse(
    frame: bytes, expected: ev.MonitorP | ev.DemonitorP
) -> None:
    """MONITOR_P and DEMONITOR_P (read's own shortcut, filled slot by slot) are the
    same values, of the same frozen types, as parse() gives."""
    event = control.read(frame)
    assert type(event) is type(expected)
    assert event == control.parse(frame) == expected
    assert hash(event) == hash(expected)
    with pytest.raises(AttributeError):
        event.ref = REF  # type: ignore[misc, union-attr]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (raw((Op.SEND, Atom(""), Atom("x")), 1), "SEND: element 2 is not a pid"),
        (raw((Op.SEND_SENDER, 5, YOU), 1), "SEND_SENDER: element 1 is not a pid"),
        (raw((Op.REG_SEND, ME, Atom(""), b"x"), 1), "REG_SEND: element 3 is not an atom"),
        (raw((Op.LINK, ME, Atom("x"))), "LINK: element 2 is not a pid"),
        (raw((Op.MONITOR_P, ME, YOU, 5)), "MONITOR_P: element 3 is not a reference"),
        (raw((Op.MONITOR_P, 5, YOU, REF)), "MONITOR_P: element 1 is not a pid"),
        (raw((Op.DEMONITOR_P, ME, 5, REF)), "DEMONITOR_P: element 2 is not a pid or a name"),
        (raw((Op.DEMONITOR_P, ME, YOU, REF), 1), "unexpected bytes"),
        (raw((Op.UNLINK_ID, Atom("x"), ME, YOU)), "UNLINK_ID: element 1 is not an integer"),
        (raw((Op.SEND, Atom(""), YOU), 1, 2), "unexpected bytes"),
        (raw((Op.REG_SEND, ME, Atom("x")), 1), "REG_SEND has 3 elements, not 4"),
        (raw((Op.SEND_SENDER, ME, YOU, YOU), 1), "SEND_SENDER has 4 elements, not 3"),
    ],
)
def test_wrongly_typed_fields_raise_remote_protocol_error(frame: bytes, match: str) -> None:
    """A control tuple with a field of the wrong type is the peer's protocol error."""
    for parser in (control.parse, control.read):
        with pytest.raises(RemoteProtocolError, match=match):
            parser(frame)


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
    for parser in (control.parse, control.read):
        with contextlib.suppress(RemoteProtocolError):
            parser(b"p" + data)


@given(st.data())
def test_mutated_frames_raise_only_protocol_errors(data: st.DataObject) -> None:
    """Valid frames with bytes flipped either parse or raise RemoteProtocolError."""
    frame = bytearray(control.send(YOU, (Atom("chat"), b"room", 12345), ME)[4:])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(frame) - 1))
        frame[i] = data.draw(st.integers(0, 255))
    for parser in (control.parse, control.read):
        with contextlib.suppress(RemoteProtocolError):
            parser(bytes(frame))


def test_send_reuses_the_encoded_control_term() -> None:
    """SEND frames built from the cached {2, '', To} are byte for byte the plain build,
    for the first and every later message to a pid, and the cache stays bounded."""
    for _ in range(2):
        for message in ("hi", (Atom("chat"), b"room", [1, 2]), b""):
            assert control.send(YOU, message) == control.build(
                (2, Atom(""), YOU), message, with_payload=True
            )
    for n in range(control._SEND_HEADS_MAX + 5):
        control.send(Pid(YOU.node, n, 0, YOU.creation), 1)
    assert len(control._SEND_HEADS) <= control._SEND_HEADS_MAX


def test_a_message_encoded_once_makes_the_same_frames() -> None:
    """SEND and SEND_SENDER of an encode_once'd message (a broadcast's) are byte for byte
    those of the term itself, with None written as the once-encoding chose."""
    chat = (Atom("chat"), b"room", [1, None])
    for once, codec in ((encode_once(chat), ERLANG), (encode_once(chat, none_atom="nil"), ELIXIR)):
        assert control.send(YOU, once) == control.send(YOU, chat, codec=codec)
        assert control.send(YOU, once, ME) == control.send(YOU, chat, ME, codec=codec)


def test_kept_control_terms_are_the_plain_build_for_every_sender_and_name() -> None:
    """SEND_SENDER per (sender, pid) and REG_SEND per (sender, name), as str or Atom, are
    byte for byte the plain build, for the first and every later message; equal pids that
    are other objects get the same bytes; the kept frame starts stay bounded."""
    other = Pid(ME.node, ME.id + 1, 0, ME.creation)
    for _ in range(2):
        for sender in (ME, other, Pid(ME.node, ME.id, ME.serial, ME.creation)):
            for message in ("hi", (Atom("chat"), b"room", [1, 2]), None):
                assert control.send(YOU, message, sender) == control.build(
                    (22, sender, YOU), message, with_payload=True
                )
                for name in ("bench", Atom("bench"), "other"):
                    assert control.reg_send(sender, name, message) == control.build(
                        (6, sender, Atom(""), Atom(name)), message, with_payload=True
                    )
    assert control.reg_send(ME, "bench", None, codec=ELIXIR).endswith(b"\x83w\x03nil")
    assert control.send(YOU, [None], ME, codec=ELIXIR).endswith(b"\x83l\x00\x00\x00\x01w\x03nilj")
    for n in range(control._SEND_HEADS_MAX + 5):
        control.reg_send(Pid(ME.node, n, 0, ME.creation), "bench", 1)
    assert len(control._BY_ID) <= control._SEND_HEADS_MAX
