"""The handshake state machine: Initiator and Acceptor paired in memory, and byte literals."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest

from nodemesh.dist.flags import DEFAULT_FLAGS, MANDATORY_OTP25, DistFlag
from nodemesh.dist.handshake import (
    MAX_HANDSHAKE_MESSAGE,
    NEED_DATA,
    Acceptor,
    AliveQuery,
    Established,
    Event,
    HandshakeState,
    Initiator,
    NameReceived,
    Superseded,
    challenge_digest,
    simultaneous_status,
)
from nodemesh.errors import (
    ConfigError,
    CookieMismatchError,
    HandshakeError,
    LocalProtocolError,
    NameInUseError,
    NodeNameError,
    RemoteProtocolError,
)

A, B = "alpha@127.0.0.1", "beta@127.0.0.1"
COOKIE = "SECRETCOOKIE"
CHALLENGE_A, CHALLENGE_B = 0xA1A2A3A4, 0xB1B2B3B4
TERMINAL = {HandshakeState.ESTABLISHED, HandshakeState.CLOSED, HandshakeState.FAILED}


def initiator(cookie: str = COOKIE, flags: DistFlag = DEFAULT_FLAGS, **kw: object) -> Initiator:
    return Initiator(A, cookie, flags, 11, lambda: CHALLENGE_A, **kw)  # type: ignore[arg-type]


def acceptor(cookie: str = COOKIE, flags: DistFlag = DEFAULT_FLAGS) -> Acceptor:
    return Acceptor(B, cookie, flags, 22, lambda: CHALLENGE_B)


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


def send_name(flags: int = DEFAULT_FLAGS, creation: int = 11, name: bytes = A.encode()) -> bytes:
    body = b"N" + flags.to_bytes(8, "big") + creation.to_bytes(4, "big")
    return frame(body + len(name).to_bytes(2, "big") + name)


def challenge(flags: int = DEFAULT_FLAGS, ch: int = CHALLENGE_B, name: bytes = B.encode()) -> bytes:
    body = b"N" + flags.to_bytes(8, "big") + ch.to_bytes(4, "big") + (22).to_bytes(4, "big")
    return frame(body + len(name).to_bytes(2, "big") + name)


def reply(ch: int = CHALLENGE_A, digest: bytes | None = None) -> bytes:
    digest = challenge_digest(CHALLENGE_B, COOKIE) if digest is None else digest
    return frame(b"r" + ch.to_bytes(4, "big") + digest)


@dataclass
class Side:
    """What one side saw, and how its runtime answers decisions."""

    status: str = "ok"
    alive_answer: bool = True
    events: list[Event] = field(default_factory=list)


def pump(hs: Initiator | Acceptor, side: Side) -> None:
    while hs.state not in TERMINAL:
        event = hs.next_event()
        if event is NEED_DATA:
            return
        side.events.append(event)
        if isinstance(event, NameReceived):
            assert isinstance(hs, Acceptor)
            hs.accept_name(side.status)
        elif isinstance(event, AliveQuery):
            assert isinstance(hs, Initiator)
            hs.answer_alive(side.alive_answer)


def deliver(data: bytes, hs: Initiator | Acceptor, side: Side, chunk: int) -> None:
    for start in range(0, len(data), chunk):
        if hs.state in TERMINAL:
            return
        hs.receive_data(data[start : start + chunk])
        pump(hs, side)


def run(
    i: Initiator, a: Acceptor, ai: Side | None = None, aa: Side | None = None, chunk: int = 4096
) -> tuple[Side, Side]:
    """Shuttle bytes between the two until neither has anything more to say."""
    si, sa = ai or Side(), aa or Side()
    for _ in range(10):
        deliver(i.data_to_send(), a, sa, chunk)
        deliver(a.data_to_send(), i, si, chunk)
    return si, sa


# -- success ------------------------------------------------------------------------------


def test_both_sides_reach_established_with_each_others_identity() -> None:
    """A full handshake gives each side the other's name, flags and creation."""
    i, a = initiator(), acceptor()
    si, sa = run(i, a)
    assert si.events == [Established(B, DEFAULT_FLAGS, 22)]
    assert sa.events == [NameReceived(A, DEFAULT_FLAGS, 11), Established(A, DEFAULT_FLAGS, 11)]
    assert i.state is a.state is HandshakeState.ESTABLISHED
    assert i.agreed_flags == a.agreed_flags == DEFAULT_FLAGS
    assert i.trailing_data() == a.trailing_data() == b""


def test_byte_at_a_time_feeding_gives_the_same_result() -> None:
    """Delivering one byte per receive_data call changes nothing."""
    si, sa = run(initiator(), acceptor(), chunk=1)
    assert si.events == [Established(B, DEFAULT_FLAGS, 22)]
    assert sa.events[-1] == Established(A, DEFAULT_FLAGS, 11)


def test_agreed_flags_are_the_intersection() -> None:
    """agreed_flags is our flags and the peer's together."""
    i, a = initiator(flags=DEFAULT_FLAGS | DistFlag.PUBLISHED), acceptor()
    run(i, a)
    assert i.agreed_flags == a.agreed_flags == DEFAULT_FLAGS


def test_messages_have_the_documented_layout() -> None:
    """send_name, status, challenge, reply and ack bytes follow erl_dist_protocol exactly."""
    i, a = initiator(), acceptor()
    assert i.data_to_send() == send_name()
    a.receive_data(send_name())
    assert isinstance(a.next_event(), NameReceived)
    a.accept_name("ok")
    assert a.data_to_send() == frame(b"sok") + challenge()
    i.receive_data(frame(b"sok") + challenge())
    assert i.next_event() is NEED_DATA
    expected_reply = frame(
        b"r\xa1\xa2\xa3\xa4" + hashlib.md5(COOKIE.encode() + b"2981278644").digest()
    )
    assert i.data_to_send() == expected_reply
    a.receive_data(expected_reply)
    assert isinstance(a.next_event(), Established)
    ack = frame(b"a" + hashlib.md5(COOKIE.encode() + str(CHALLENGE_A).encode()).digest())
    assert a.data_to_send() == ack


def test_digest_is_md5_of_cookie_then_unsigned_decimal_challenge() -> None:
    """challenge_digest(c, cookie) = MD5(cookie ++ integer_to_list(c))."""
    assert challenge_digest(4294967295, "abc") == hashlib.md5(b"abc4294967295").digest()
    assert challenge_digest(0, "\xe9") == hashlib.md5(b"\xe90").digest()  # Latin-1 bytes


def test_surplus_bytes_after_the_handshake_are_kept() -> None:
    """Bytes past the last handshake message come back from trailing_data()."""
    a = acceptor()
    a.receive_data(send_name())
    a.next_event()
    a.accept_name("ok")
    a.receive_data(reply() + b"\x00\x00\x00\x00\x00\x00\x00\x05p")
    assert isinstance(a.next_event(), Established)
    assert a.trailing_data() == b"\x00\x00\x00\x00\x00\x00\x00\x05p"
    i = initiator()
    i.receive_data(frame(b"sok") + challenge())
    i.next_event()
    ack = frame(b"a" + challenge_digest(CHALLENGE_A, COOKIE))
    i.receive_data(ack + b"\x00\x00\x00\x00")
    assert isinstance(i.next_event(), Established)
    assert i.trailing_data() == b"\x00\x00\x00\x00"


def test_extra_data_after_names_is_ignored() -> None:
    """Data after the name in send_name and challenge is accepted (the spec says so)."""
    a = acceptor()
    a.receive_data(frame(send_name()[2:] + b"future"))
    assert a.next_event() == NameReceived(A, DEFAULT_FLAGS, 11)
    i = initiator()
    i.receive_data(frame(b"sok") + frame(challenge()[2:] + b"future"))
    assert i.next_event() is NEED_DATA
    assert i.state is HandshakeState.AWAIT_ACK


# -- cookies ------------------------------------------------------------------------------


def test_acceptor_detects_a_wrong_cookie_and_initiator_blames_the_cookie_on_eof() -> None:
    """Different cookies: B raises CookieMismatchError; A, seeing B close, does too."""
    i, a = initiator(cookie="OTHER"), acceptor()
    with pytest.raises(CookieMismatchError, match="cookie") as raised:
        run(i, a)
    assert "OTHER" not in str(raised.value)
    assert COOKIE not in str(raised.value)
    assert a.state is HandshakeState.FAILED
    assert a.data_to_send() == b""  # Erlang closes without a word; so do we
    assert i.state is HandshakeState.AWAIT_ACK
    with pytest.raises(CookieMismatchError, match="after our challenge reply: the cookies"):
        i.connection_lost()


def test_initiator_detects_a_wrong_challenge_ack() -> None:
    """A wrong digest in challenge_ack raises CookieMismatchError without showing cookies."""
    i = initiator()
    i.receive_data(frame(b"sok") + challenge())
    i.next_event()
    i.receive_data(frame(b"a" + challenge_digest(CHALLENGE_A, "OTHER")))
    with pytest.raises(CookieMismatchError, match="differs") as raised:
        i.next_event()
    assert COOKIE not in str(raised.value)


# -- statuses -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["ok", "ok_simultaneous"])
def test_ok_statuses_continue_the_handshake(status: str) -> None:
    """After ok or ok_simultaneous both sides get Established."""
    si, _ = run(initiator(), acceptor(), aa=Side(status=status))
    assert si.events == [Established(B, DEFAULT_FLAGS, 22)]


def test_nok_tells_the_initiator_it_was_superseded() -> None:
    """nok: A gets Superseded (a clean outcome, not an error) and both sides are CLOSED."""
    i, a = initiator(), acceptor()
    si, _ = run(i, a, aa=Side(status="nok"))
    assert si.events == [Superseded()]
    assert i.state is a.state is HandshakeState.CLOSED
    i.connection_lost()  # over: nothing to report


def test_not_allowed_is_a_handshake_error_for_the_initiator() -> None:
    """not_allowed: B is CLOSED, A raises HandshakeError saying so."""
    i, a = initiator(), acceptor()
    with pytest.raises(HandshakeError, match="not_allowed"):
        run(i, a, aa=Side(status="not_allowed"))
    assert a.state is HandshakeState.CLOSED


def test_alive_answered_true_goes_on() -> None:
    """alive + true: A was asked, answered true, and both sides get Established."""
    i, a = initiator(), acceptor()
    si, sa = run(i, a, ai=Side(alive_answer=True), aa=Side(status="alive"))
    assert si.events == [AliveQuery(), Established(B, DEFAULT_FLAGS, 22)]
    assert isinstance(sa.events[-1], Established)


def test_alive_answered_false_ends_with_name_in_use() -> None:
    """alive + false: A abandons (CLOSED), B raises NameInUseError."""
    i, a = initiator(), acceptor()
    with pytest.raises(NameInUseError, match="still up"):
        run(i, a, ai=Side(alive_answer=False), aa=Side(status="alive"))
    assert i.state is HandshakeState.CLOSED


def test_alive_answer_bytes() -> None:
    """The answer to alive is 's' followed by true or false."""
    for proceed, text in ((True, b"strue"), (False, b"sfalse")):
        i = initiator()
        i.data_to_send()
        i.receive_data(frame(b"salive"))
        assert i.next_event() == AliveQuery()
        i.answer_alive(proceed)
        assert i.data_to_send() == frame(text)


@pytest.mark.parametrize(
    ("status", "error"),
    [(b"named:\x00\x01a\x00\x00\x00\x01", RemoteProtocolError), (b"maybe", RemoteProtocolError)],
)
def test_unexpected_statuses_are_remote_errors(status: bytes, error: type[Exception]) -> None:
    """'named:' (we never ask for a name) and unknown statuses are protocol violations."""
    i = initiator()
    i.receive_data(frame(b"s" + status))
    with pytest.raises(error):
        i.next_event()


def test_bad_alive_answer_is_a_remote_error() -> None:
    """Anything but true/false after alive is a RemoteProtocolError."""
    a = acceptor()
    a.receive_data(send_name())
    a.next_event()
    a.accept_name("alive")
    a.receive_data(frame(b"syes"))
    with pytest.raises(RemoteProtocolError, match="'true' or 'false'"):
        a.next_event()


# -- simultaneous connect -----------------------------------------------------------------


def test_tie_break_favours_the_greater_name() -> None:
    """The node with the greater name keeps its own outgoing connection (net_kernel)."""
    assert simultaneous_status(B, A) == "nok"  # B > A: B's attempt wins
    assert simultaneous_status(A, B) == "ok_simultaneous"


def test_simultaneous_connect_leaves_exactly_one_connection() -> None:
    """Both dial at once, both acceptors use the tie-break: only B's dial completes."""
    a_to_b = Initiator(A, COOKIE, DEFAULT_FLAGS, 11, lambda: 1)
    b_accepts = Acceptor(B, COOKIE, DEFAULT_FLAGS, 22, lambda: 2)
    b_to_a = Initiator(B, COOKIE, DEFAULT_FLAGS, 22, lambda: 3)
    a_accepts = Acceptor(A, COOKIE, DEFAULT_FLAGS, 11, lambda: 4)
    s1, _ = run(a_to_b, b_accepts, aa=Side(status=simultaneous_status(B, A)))
    s2, _ = run(b_to_a, a_accepts, aa=Side(status=simultaneous_status(A, B)))
    assert s1.events == [Superseded()]
    assert s2.events == [Established(A, DEFAULT_FLAGS, 11)]


# -- version 5 opening and flags ----------------------------------------------------------


def old_send_name(flags: int, version: int = 5, name: bytes = A.encode()) -> bytes:
    return frame(b"n" + version.to_bytes(2, "big") + flags.to_bytes(4, "big") + name)


def test_old_send_name_with_handshake_23_gets_a_new_challenge_and_a_complement() -> None:
    """An OTP 23/24 'n' opening: B answers 'N', reads 'c', and learns all flags then."""
    low = int(DEFAULT_FLAGS) & 0xFFFFFFFF
    a = acceptor()
    a.receive_data(old_send_name(low))
    assert a.next_event() == NameReceived(A, DistFlag(low), 0)
    a.accept_name("ok")
    assert a.data_to_send() == frame(b"sok") + challenge()
    assert a.state is HandshakeState.AWAIT_COMPLEMENT
    high = (int(DEFAULT_FLAGS) >> 32).to_bytes(4, "big")
    complement = frame(b"c" + high + (11).to_bytes(4, "big"))
    a.receive_data(complement + reply())
    assert a.next_event() == Established(A, DEFAULT_FLAGS, 11)


def test_old_send_name_without_complement_is_refused() -> None:
    """After an 'n' opening, a challenge_reply in place of the complement is a bad tag."""
    a = acceptor()
    a.receive_data(old_send_name(int(DEFAULT_FLAGS) & 0xFFFFFFFF))
    a.next_event()
    a.accept_name("ok")
    a.receive_data(reply())
    with pytest.raises(RemoteProtocolError, match=r"expected a complement message \('c'\)"):
        a.next_event()


def test_old_send_name_without_handshake_23_is_not_allowed() -> None:
    """A pre-OTP-23 'n' lacks HANDSHAKE_23: refused with not_allowed, naming the flag."""
    a = acceptor()
    a.receive_data(old_send_name(int(MANDATORY_OTP25 & ~DistFlag.HANDSHAKE_23)))
    with pytest.raises(HandshakeError, match="HANDSHAKE_23"):
        a.next_event()
    assert a.data_to_send() == frame(b"snot_allowed")


def test_old_send_name_with_another_version_is_refused() -> None:
    """An 'n' opening must carry version 5."""
    a = acceptor()
    a.receive_data(old_send_name(int(DEFAULT_FLAGS) & 0xFFFFFFFF, version=4))
    with pytest.raises(HandshakeError, match="version 4"):
        a.next_event()


def test_acceptor_refuses_missing_mandatory_flags_and_says_which() -> None:
    """A peer without MAP_TAG/BIG_CREATION gets not_allowed; both sides raise HandshakeError."""
    lacking = DEFAULT_FLAGS & ~(DistFlag.MAP_TAG | DistFlag.BIG_CREATION)
    lacking &= ~DistFlag.MANDATORY_25_DIGEST
    i, a = initiator(flags=lacking), acceptor()
    a.receive_data(i.data_to_send())
    with pytest.raises(HandshakeError, match="MAP_TAG, BIG_CREATION"):
        a.next_event()
    i.receive_data(a.data_to_send())
    with pytest.raises(HandshakeError, match="not_allowed"):
        i.next_event()


def test_initiator_refuses_an_acceptor_missing_mandatory_flags() -> None:
    """A challenge lacking UTF8_ATOMS aborts with HandshakeError naming it."""
    lacking = int(MANDATORY_OTP25 & ~DistFlag.UTF8_ATOMS)
    i = initiator()
    i.receive_data(frame(b"sok") + challenge(flags=lacking))
    with pytest.raises(HandshakeError, match="UTF8_ATOMS"):
        i.next_event()
    assert i.data_to_send() == send_name()  # nothing more was sent


def test_mandatory_25_digest_alone_is_enough() -> None:
    """A peer sending MANDATORY_25_DIGEST instead of the mandatory bits is accepted."""
    a = acceptor()
    a.receive_data(send_name(flags=DistFlag.MANDATORY_25_DIGEST))
    event = a.next_event()
    assert isinstance(event, NameReceived)
    assert event.peer_flags & MANDATORY_OTP25 == MANDATORY_OTP25


def test_dynamic_name_requests_are_not_allowed() -> None:
    """A send_name with NAME_ME (a host only) is refused with not_allowed."""
    a = acceptor()
    a.receive_data(send_name(flags=DEFAULT_FLAGS | DistFlag.NAME_ME, name=b"127.0.0.1"))
    with pytest.raises(HandshakeError, match="NAME_ME"):
        a.next_event()
    assert a.data_to_send() == frame(b"snot_allowed")


def test_initiator_checks_the_name_it_meant_to_reach() -> None:
    """With expected_peer, a challenge from another node raises HandshakeError."""
    i = initiator(expected_peer="gamma@127.0.0.1")
    i.receive_data(frame(b"sok") + challenge())
    with pytest.raises(HandshakeError, match=r"gamma@127\.0\.0\.1.*is beta@127\.0\.0\.1"):
        i.next_event()


def test_version_5_challenge_is_refused() -> None:
    """An old 'n' challenge means a pre-OTP-23 peer: HandshakeError."""
    i = initiator()
    i.receive_data(frame(b"sok") + frame(b"n\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00b@h"))
    with pytest.raises(HandshakeError, match="version 5"):
        i.next_event()


# -- malformed input ----------------------------------------------------------------------

N_HEAD = b"N" + int(DEFAULT_FLAGS).to_bytes(8, "big") + b"\x00\x00\x00\x0b"

MALFORMED_FOR_ACCEPTOR = [
    (b"\x00\x01X", "tag b'X'"),
    (b"\x00\x00", "empty"),
    (b"\xff\xff", "65535 bytes"),
    ((MAX_HANDSHAKE_MESSAGE + 1).to_bytes(2, "big"), f"{MAX_HANDSHAKE_MESSAGE + 1} bytes"),
    (b"\x00\x05N\x00\x00\x00\x00", "5 bytes long, not at least 15"),
    (frame(N_HEAD + b"\x00\x0aa@b"), "10-byte name but only 3"),
    (frame(N_HEAD + b"\x00\x03abc"), "no node name"),
    (frame(N_HEAD + b"\x00\x05a@b@c"), "no node name"),
    (frame(N_HEAD + b"\x00\x02@b"), "no node name"),
    (frame(N_HEAD + b"\x00\x02a@"), "no node name"),
    (frame(b"n\x00\x05\x01\x07\x0f\x94"), "7 bytes long, not at least 8"),
    (frame(b"r" + bytes(20)), "expected a send_name"),
]


@pytest.mark.parametrize(("data", "fragment"), MALFORMED_FOR_ACCEPTOR)
def test_malformed_openings_are_remote_protocol_errors(data: bytes, fragment: str) -> None:
    """Bad tags, lengths and names in the first message raise RemoteProtocolError."""
    a = acceptor()
    a.receive_data(data)
    with pytest.raises(RemoteProtocolError, match=fragment):
        a.next_event()
    assert a.state is HandshakeState.FAILED


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (frame(b"r" + bytes(19)), "20 bytes long, not 21"),
        (frame(b"r" + bytes(21)), "22 bytes long, not 21"),
        (frame(b"a" + bytes(16)), "expected a challenge_reply"),
    ],
)
def test_malformed_challenge_replies_are_remote_protocol_errors(data: bytes, fragment: str) -> None:
    """A challenge_reply of the wrong length or with a wrong tag raises RemoteProtocolError."""
    a = acceptor()
    a.receive_data(send_name())
    a.next_event()
    a.accept_name("ok")
    a.receive_data(data)
    with pytest.raises(RemoteProtocolError, match=fragment):
        a.next_event()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (frame(b"N" + bytes(17)), "18 bytes long, not at least 19"),
        (frame(b"N" + bytes(16) + b"\x00\x09" + b"b@h"), "9-byte name but only 3"),
        (frame(b"N" + bytes(16) + b"\x00\x01" + b"b"), "no node name"),
        (frame(b"s" + b"ok"), "expected a challenge message"),
    ],
)
def test_malformed_challenges_are_remote_protocol_errors(data: bytes, fragment: str) -> None:
    """A truncated challenge, a short name or a repeated status raise RemoteProtocolError."""
    i = initiator()
    i.receive_data(frame(b"sok") + data)
    with pytest.raises(RemoteProtocolError, match=fragment):
        i.next_event()


@pytest.mark.parametrize("ack", [frame(b"a" + bytes(15)), frame(b"a" + bytes(17))])
def test_malformed_acks_are_remote_protocol_errors(ack: bytes) -> None:
    """A challenge_ack that is not 17 bytes raises RemoteProtocolError."""
    i = initiator()
    i.receive_data(frame(b"sok") + challenge())
    i.next_event()
    i.receive_data(ack)
    with pytest.raises(RemoteProtocolError, match="challenge_ack message is"):
        i.next_event()


def test_a_truncated_message_waits_for_more_then_fails_on_eof() -> None:
    """Half a message is NEED_DATA; EOF then raises HandshakeError."""
    a = acceptor()
    a.receive_data(send_name()[:9])
    assert a.next_event() is NEED_DATA
    with pytest.raises(HandshakeError, match="before sending its name"):
        a.connection_lost()


# -- connection_lost ----------------------------------------------------------------------


def test_eof_messages_say_where_the_handshake_stopped() -> None:
    """connection_lost raises a message fitting each state."""
    i = initiator(expected_peer=B)
    with pytest.raises(HandshakeError, match=f"node {B} closed the connection without answering"):
        i.connection_lost()
    i = initiator()
    i.receive_data(frame(b"sok"))
    i.next_event()
    with pytest.raises(HandshakeError, match="after accepting our name, before sending its"):
        i.connection_lost()
    i = initiator()
    i.receive_data(frame(b"salive"))
    i.next_event()
    with pytest.raises(HandshakeError, match="before we answered its 'alive' status"):
        i.connection_lost()
    a = acceptor()
    a.receive_data(send_name())
    a.next_event()
    a.accept_name("ok")
    with pytest.raises(HandshakeError, match=f"node {A} closed the connection after our challenge"):
        a.connection_lost()
    assert a.state is HandshakeState.FAILED
    a.connection_lost()  # a second report is harmless


def test_eof_after_established_is_not_an_error() -> None:
    """Once Established, connection_lost does nothing (the runtime owns the socket now)."""
    i, a = initiator(), acceptor()
    run(i, a)
    i.connection_lost()
    a.connection_lost()


def test_cookie_eof_error_is_a_cookie_mismatch_only_after_our_reply() -> None:
    """Only EOF after our challenge_reply is blamed on the cookie."""
    i = initiator()
    with pytest.raises(HandshakeError) as raised:
        i.connection_lost()
    assert not isinstance(raised.value, CookieMismatchError)


# -- misuse and arguments -----------------------------------------------------------------


def test_next_event_before_a_decision_is_local_error() -> None:
    """next_event while accept_name()/answer_alive() is due raises LocalProtocolError."""
    a = acceptor()
    a.receive_data(send_name())
    a.next_event()
    with pytest.raises(LocalProtocolError, match=r"accept_name\(\)"):
        a.next_event()
    i = initiator()
    i.receive_data(frame(b"salive"))
    i.next_event()
    with pytest.raises(LocalProtocolError, match=r"answer_alive\(\)"):
        i.next_event()


def test_decisions_out_of_turn_are_local_errors() -> None:
    """accept_name/answer_alive when not asked, or with a bad status, are LocalProtocolError."""
    a = acceptor()
    with pytest.raises(LocalProtocolError):
        a.accept_name("ok")
    a.receive_data(send_name())
    a.next_event()
    with pytest.raises(LocalProtocolError, match="named"):
        a.accept_name("named")
    with pytest.raises(LocalProtocolError):
        initiator().answer_alive(True)


def test_finished_handshake_refuses_more_work() -> None:
    """After Established, receive_data and next_event raise LocalProtocolError."""
    i, a = initiator(), acceptor()
    run(i, a)
    with pytest.raises(LocalProtocolError, match="over"):
        i.receive_data(b"x")
    with pytest.raises(LocalProtocolError, match="over"):
        a.next_event()


def test_bytes_after_a_refusal_are_dropped() -> None:
    """Once CLOSED or FAILED, late bytes from the peer are ignored, not an error."""
    a = acceptor()
    a.receive_data(send_name())
    a.next_event()
    a.accept_name("nok")
    a.receive_data(b"late")
    assert a.state is HandshakeState.CLOSED
    a.connection_lost()


def test_trailing_data_only_after_established() -> None:
    """trailing_data() before Established raises LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        initiator().trailing_data()


def test_failed_handshake_stays_failed() -> None:
    """After an error, next_event raises LocalProtocolError, not the error again."""
    a = acceptor()
    a.receive_data(b"\x00\x00")
    with pytest.raises(RemoteProtocolError):
        a.next_event()
    with pytest.raises(LocalProtocolError, match="failed"):
        a.next_event()


def test_empty_receive_data_is_a_no_op() -> None:
    """receive_data(b'') neither means EOF nor changes anything."""
    a = acceptor()
    a.receive_data(b"")
    assert a.next_event() is NEED_DATA


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"own_name": "nohost"}, NodeNameError),
        ({"cookie": ""}, ConfigError),
        ({"cookie": "a\nb"}, ConfigError),
        ({"creation": -1}, ConfigError),
        ({"creation": 1 << 32}, ConfigError),
        ({"flags": DEFAULT_FLAGS | DistFlag.NAME_ME}, ConfigError),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, object], error: type[Exception]) -> None:
    """Bad names, cookies, creations or flags are refused when the machine is built."""
    args = {"own_name": A, "cookie": COOKIE, "flags": DEFAULT_FLAGS, "creation": 1, **kwargs}
    with pytest.raises(error):
        Initiator(**args)  # type: ignore[arg-type]
    with pytest.raises(error):
        Acceptor(**args)  # type: ignore[arg-type]


def test_a_bad_challenge_source_is_a_local_error() -> None:
    """A challenge_source returning something that is no uint32 raises LocalProtocolError."""
    a = Acceptor(B, COOKIE, DEFAULT_FLAGS, 1, lambda: 1 << 32)
    a.receive_data(send_name())
    a.next_event()
    with pytest.raises(LocalProtocolError, match="challenge_source"):
        a.accept_name("ok")
    assert a.state is HandshakeState.FAILED


def test_default_challenges_differ() -> None:
    """Without an injected source, challenges are random 32-bit numbers."""
    replies = set()
    for _ in range(4):
        i = Initiator(A, COOKIE, DEFAULT_FLAGS, 1)
        i.receive_data(frame(b"sok") + challenge())
        i.next_event()
        replies.add(i.data_to_send()[-20:-16])
    assert len(replies) > 1
