"""The distribution handshake (protocol version 6), as a state machine without I/O.

Theory of operation
===================

Two Erlang nodes agree on a TCP connection in a short exchange of messages, each framed
by a 2-byte big-endian length (``erl_dist_protocol``, "Distribution Handshake"). Over TLS
the length is 4 bytes from the first message on: ``inet_tls_dist`` opens the socket with
``{packet, 4}`` before the handshake (pass ``prefix_width=4``). A is the
:class:`Initiator` (it connected), B the :class:`Acceptor`::

    A  send_name 'N'  flags, creation, name           ->  B
    A  <-  status 's'  ok | ok_simultaneous | nok | not_allowed | alive      B
           (alive: A answers 's' true | false)
    A  <-  challenge 'N'  flags, challenge B, creation, name                 B
    A  challenge_reply 'r'  challenge A, digest(challenge B)  ->  B   checks the digest
    A  <-  challenge_ack 'a'  digest(challenge A)                            B
    A  checks the digest: the connection is up, frames now have 4-byte lengths.

digest(c) = MD5(cookie ++ decimal text of c). An OTP 23/24 node may open with the old
version 5 send_name ``'n'`` while setting HANDSHAKE_23; B then answers with the version 6
challenge anyway, and A sends a complement ``'c'`` (the high 32 flag bits and its
creation) just before its challenge_reply. OTP 25 dropped the rest of version 5.

Both classes are driven the same way, like h11, and never touch a socket or a clock:

- feed received bytes with :meth:`receive_data`; report EOF with :meth:`connection_lost`,
  which raises the most helpful error for where the handshake stopped;
- call :meth:`next_event` until it returns :data:`NEED_DATA` (read more) or an event;
- after every call, write what :meth:`data_to_send` returns (it drains a buffer). The
  Initiator's send_name is there as soon as it is constructed. Errors can leave a last
  status message there (``not_allowed``): send it, best effort, before closing.

Two decisions belong to the runtime, which knows the other connections: B gets
:class:`NameReceived` and must call :meth:`Acceptor.accept_name` (see
:func:`simultaneous_status`); A gets :class:`AliveQuery` and must call
:meth:`Initiator.answer_alive`. Until then ``next_event`` raises LocalProtocolError.

The handshake ends with :class:`Established` (then :meth:`trailing_data` holds bytes
already received past the handshake), with :class:`Superseded` (A: the peer's own
simultaneous connection to us wins), in state CLOSED after the runtime refused or
abandoned it, or with an exception: CookieMismatchError, NameInUseError, HandshakeError,
RemoteProtocolError (malformed bytes), LocalProtocolError (misuse). Any other exception
is a bug.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nodemesh.cookie import check_cookie
from nodemesh.dist.flags import DistFlag, expand_mandatory_25, flag_names, missing_mandatory
from nodemesh.dist.names import parse_node_name
from nodemesh.errors import (
    ConfigError,
    CookieMismatchError,
    HandshakeError,
    LocalProtocolError,
    NameInUseError,
    ProtocolError,
    RemoteProtocolError,
)

__all__ = [
    "ACCEPT_STATUSES",
    "MAX_HANDSHAKE_MESSAGE",
    "NEED_DATA",
    "Acceptor",
    "AliveQuery",
    "Established",
    "Event",
    "HandshakeState",
    "Initiator",
    "NameReceived",
    "NeedData",
    "Superseded",
    "challenge_digest",
    "random_challenge",
    "simultaneous_status",
]

#: Largest handshake message we accept. The real ones are below 300 bytes (names are at
#: most 255); the spec asks to ignore extra data after the name, hence the headroom.
MAX_HANDSHAKE_MESSAGE = 2048

#: The statuses :meth:`Acceptor.accept_name` takes.
ACCEPT_STATUSES = frozenset({"ok", "ok_simultaneous", "nok", "alive", "not_allowed"})


class NeedData(enum.Enum):
    """Type of :data:`NEED_DATA`."""

    NEED_DATA = "NEED_DATA"


#: Returned by ``next_event()`` when it needs more bytes from the peer.
NEED_DATA = NeedData.NEED_DATA


@dataclass(frozen=True)
class NameReceived:
    """B: A introduced itself; answer with :meth:`Acceptor.accept_name`.

    After an old ``'n'`` send_name, ``peer_flags`` has only the low 32 bits and
    ``peer_creation`` is 0 until the complement; :class:`Established` has the final ones.
    """

    peer_name: str
    peer_flags: DistFlag
    peer_creation: int


@dataclass(frozen=True)
class AliveQuery:
    """A: the peer already has a connection from our name; answer with
    :meth:`Initiator.answer_alive` (True: that one is stale, replace it)."""


@dataclass(frozen=True)
class Superseded:
    """A: the peer answered ``nok``: it is connecting to us at the same time and its
    connection wins the tie-break. Close this socket and wait for that connection."""


@dataclass(frozen=True)
class Established:
    """Both digests checked: the connection is up. ``peer_flags`` are those the peer
    advertised (MANDATORY_25_DIGEST expanded); use ``handshake.agreed_flags`` for the
    intersection."""

    peer_name: str
    peer_flags: DistFlag
    peer_creation: int


Event = NameReceived | AliveQuery | Superseded | Established


class HandshakeState(enum.Enum):
    """Where a handshake is; AWAIT_* states wait for the peer unless noted."""

    AWAIT_NAME = "await_name"  # B
    AWAIT_DECISION = "await_decision"  # B, waits for accept_name()
    AWAIT_ALIVE_ANSWER = "await_alive_answer"  # B
    AWAIT_COMPLEMENT = "await_complement"  # B, after an old 'n' send_name
    AWAIT_REPLY = "await_reply"  # B
    AWAIT_STATUS = "await_status"  # A
    AWAIT_ALIVE_DECISION = "await_alive_decision"  # A, waits for answer_alive()
    AWAIT_CHALLENGE = "await_challenge"  # A
    AWAIT_ACK = "await_ack"  # A
    ESTABLISHED = "established"
    CLOSED = "closed"  # refused or abandoned on purpose: send data_to_send() and close
    FAILED = "failed"


_S = HandshakeState
_TERMINAL = frozenset({_S.ESTABLISHED, _S.CLOSED, _S.FAILED})
_LOCAL_TURN = {_S.AWAIT_DECISION: "accept_name()", _S.AWAIT_ALIVE_DECISION: "answer_alive()"}
_Reader = Callable[[Any, bytes], Event | None]


def challenge_digest(challenge: int, cookie: str) -> bytes:
    """MD5 of the cookie followed by the challenge as unsigned decimal (dist_util)."""
    return hashlib.md5(cookie.encode("latin-1") + str(challenge).encode("ascii")).digest()


def random_challenge() -> int:
    """A random unsigned 32-bit challenge (the default challenge source)."""
    return secrets.randbits(32)


def simultaneous_status(own_name: str, peer_name: str) -> str:
    """The status B answers when it is itself connecting to A at the same time.

    As net_kernel does on ``accept_pending``: if B's name is greater (atoms compare by
    their text), B's own attempt wins and A is told ``nok``; otherwise B abandons its own
    attempt and answers ``ok_simultaneous``.
    """
    return "nok" if own_name > peer_name else "ok_simultaneous"


class _Handshake:
    """What both roles share: framing, buffers, the dispatch loop, validation."""

    # For each state that reads from the peer: what we expect, and a reader per tag.
    _READERS: ClassVar[Mapping[HandshakeState, tuple[str, Mapping[int, _Reader]]]]

    def __init__(
        self,
        own_name: str,
        cookie: str,
        flags: DistFlag | int,
        creation: int,
        challenge_source: Callable[[], int],
        state: HandshakeState,
        prefix_width: int = 2,
    ) -> None:
        if prefix_width not in (2, 4):
            raise ConfigError(f"prefix_width must be 2 (TCP) or 4 (TLS), not {prefix_width!r}")
        self._width = prefix_width
        self._own_name = str(parse_node_name(own_name))
        self._cookie = check_cookie(cookie)
        self._flags = DistFlag(flags)
        if self._flags & DistFlag.NAME_ME:
            raise ConfigError("NAME_ME (dynamic node names) is not supported; drop that flag")
        if not (isinstance(creation, int) and 0 <= creation < 1 << 32):
            raise ConfigError(f"creation must be an unsigned 32-bit integer, not {creation!r}")
        self._creation = creation
        self._challenge_source = challenge_source
        self._state = state
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._peer_name: str | None = None
        self._peer_flags = DistFlag(0)
        self._peer_creation = 0
        self._own_challenge = 0

    @property
    def state(self) -> HandshakeState:
        """Where the handshake is."""
        return self._state

    @property
    def own_name(self) -> str:
        """Our node name, as sent."""
        return self._own_name

    @property
    def own_flags(self) -> DistFlag:
        """The flags we advertise."""
        return self._flags

    @property
    def agreed_flags(self) -> DistFlag:
        """Our flags and the peer's together: what both may use (none before the peer's)."""
        return self._flags & self._peer_flags

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes received from the peer (``b""`` does nothing: EOF is
        :meth:`connection_lost`). After Established this raises LocalProtocolError (those
        bytes belong to the connection); after CLOSED or FAILED they are dropped."""
        if self._state is _S.ESTABLISHED:
            raise LocalProtocolError("the handshake is over; feed the connection instead")
        if self._state not in _TERMINAL:
            self._inbox += data

    def data_to_send(self) -> bytes:
        """Take the bytes to write to the peer (``b""`` when there are none)."""
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    def trailing_data(self) -> bytes:
        """After Established: take the bytes received past the handshake's last message."""
        if self._state is not _S.ESTABLISHED:
            raise LocalProtocolError("trailing_data() is only there after Established")
        out = bytes(self._inbox)
        self._inbox.clear()
        return out

    def next_event(self) -> Event | NeedData:
        """Process buffered bytes: the next event, or NEED_DATA. Raises as the module
        docstring says; after an exception the state is FAILED."""
        if self._state in _LOCAL_TURN:
            raise LocalProtocolError(f"call {_LOCAL_TURN[self._state]} before next_event()")
        if self._state in _TERMINAL:
            raise LocalProtocolError(f"the handshake is over ({self._state.value})")
        try:
            while (frame := self._next_frame()) is not None:
                expected, readers = self._READERS[self._state]
                reader = readers.get(frame[0])
                if reader is None:
                    raise RemoteProtocolError(
                        f"expected {expected} but received a message with tag {frame[:1]!r}"
                    )
                event = reader(self, frame)
                if event is not None:
                    return event
            return NEED_DATA
        except (HandshakeError, ProtocolError):
            self._state = _S.FAILED
            raise

    def connection_lost(self) -> None:
        """The socket closed. Raises what that means where the handshake is; does nothing
        once it is over."""
        if self._state not in _TERMINAL:
            state, self._state = self._state, _S.FAILED
            raise self._eof_error(state)

    def _eof_error(self, state: HandshakeState) -> HandshakeError:
        raise NotImplementedError  # pragma: no cover

    def _next_frame(self) -> bytes | None:
        width = self._width
        if len(self._inbox) < width:
            return None
        length = int.from_bytes(self._inbox[:width], "big")
        if length == 0:
            raise RemoteProtocolError("received an empty handshake message (length 0)")
        if length > MAX_HANDSHAKE_MESSAGE and bytes(self._inbox[:2]) in (b"\x15\x03", b"\x16\x03"):
            # A TLS record header (an alert or a handshake, version 3.x) where a handshake
            # message belongs: the peer speaks TLS distribution.
            raise RemoteProtocolError(
                "the peer speaks TLS (a TLS record came instead of a handshake message): it "
                "uses TLS distribution (Erlang's -proto_dist inet_tls); give this node a "
                "TlsConfig too"
            )
        if length > MAX_HANDSHAKE_MESSAGE:
            raise RemoteProtocolError(
                f"handshake message of {length} bytes announced; the limit is "
                f"{MAX_HANDSHAKE_MESSAGE}: this is not an Erlang node's handshake"
            )
        if len(self._inbox) < width + length:
            return None
        frame = bytes(self._inbox[width : width + length])
        del self._inbox[: width + length]
        return frame

    def _send(self, message: bytes) -> None:
        self._outbox += len(message).to_bytes(self._width, "big") + message

    def _send_status(self, status: str) -> None:
        self._send(b"s" + status.encode("ascii"))

    def _draw_challenge(self) -> int:
        challenge = self._challenge_source()
        if not (isinstance(challenge, int) and 0 <= challenge < 1 << 32):
            raise LocalProtocolError(
                f"challenge_source returned {challenge!r}, not an unsigned 32-bit integer"
            )
        self._own_challenge = challenge
        return challenge

    def _digest_ok(self, digest: bytes) -> bool:
        return hmac.compare_digest(digest, challenge_digest(self._own_challenge, self._cookie))

    def _peer(self) -> str:
        return f"node {self._peer_name}" if self._peer_name else "the peer"

    def _established(self) -> Established:
        self._state = _S.ESTABLISHED
        assert self._peer_name is not None
        return Established(self._peer_name, self._peer_flags, self._peer_creation)


def _check_length(frame: bytes, size: int, what: str, *, exact: bool = True) -> None:
    if len(frame) < size or (exact and len(frame) != size):
        need = f"{size}" if exact else f"at least {size}"
        raise RemoteProtocolError(f"{what} message is {len(frame)} bytes long, not {need}")


def _name_field(frame: bytes, offset: int, what: str) -> str:
    """The node name of a length-prefixed name field (Latin-1, as dist_util sends it)."""
    length = int.from_bytes(frame[offset - 2 : offset], "big")
    raw = frame[offset : offset + length]
    if len(raw) != length:
        raise RemoteProtocolError(
            f"{what} message announces a {length}-byte name but only {len(raw)} bytes follow"
        )
    return _node_name(raw, what)


def _node_name(raw: bytes, what: str) -> str:
    # dist_util:is_name_ok/2: exactly one '@' with something on both sides.
    name = raw.decode("latin-1")
    alive, _, host = name.partition("@")
    if not alive or not host or "@" in host:
        raise RemoteProtocolError(f"the name in the {what} message, {raw[:80]!r}, is no node name")
    return name


class Initiator(_Handshake):
    """Node A: we connected to the peer. The send_name message is ready to send at once.
    ``prefix_width``: 2 over TCP, 4 over TLS (see the module docstring).

    ``expected_peer``, if given, is the node we meant to reach; a different name in the
    challenge raises HandshakeError (dist_util does the same). Raises NodeNameError or
    ConfigError for bad arguments.
    """

    def __init__(
        self,
        own_name: str,
        cookie: str,
        flags: DistFlag | int,
        creation: int,
        challenge_source: Callable[[], int] = random_challenge,
        *,
        expected_peer: str | None = None,
        prefix_width: int = 2,
    ) -> None:
        super().__init__(
            own_name, cookie, flags, creation, challenge_source, _S.AWAIT_STATUS, prefix_width
        )
        self._expected_peer = expected_peer
        name = self._own_name.encode("latin-1")
        self._send(
            b"N"
            + int(self._flags).to_bytes(8, "big")
            + creation.to_bytes(4, "big")
            + len(name).to_bytes(2, "big")
            + name
        )

    def answer_alive(self, proceed: bool) -> None:
        """Answer :class:`AliveQuery`: True if the peer's connection from our name is stale
        (we have none up), False to abandon this attempt (state CLOSED)."""
        if self._state is not _S.AWAIT_ALIVE_DECISION:
            raise LocalProtocolError("answer_alive() answers an AliveQuery event only")
        self._send_status("true" if proceed else "false")
        self._state = _S.AWAIT_CHALLENGE if proceed else _S.CLOSED

    def _peer(self) -> str:
        name = self._peer_name or self._expected_peer
        return f"node {name}" if name else "the peer"

    def _on_status(self, frame: bytes) -> Event | None:
        status = frame[1:]
        if status in (b"ok", b"ok_simultaneous"):
            self._state = _S.AWAIT_CHALLENGE
            return None
        if status == b"nok":
            self._state = _S.CLOSED
            return Superseded()
        if status == b"alive":
            self._state = _S.AWAIT_ALIVE_DECISION
            return AliveQuery()
        if status == b"not_allowed":
            raise HandshakeError(
                f"{self._peer()} refused the connection (status not_allowed): it does not "
                "allow our node name or cannot handle our capability flags; its log says which"
            )
        if status.startswith(b"named:"):
            raise RemoteProtocolError("status 'named:' although we did not ask for a name")
        raise RemoteProtocolError(f"unknown handshake status {status[:40]!r}")

    def _on_challenge(self, frame: bytes) -> Event | None:
        _check_length(frame, 19, "challenge", exact=False)
        name = _name_field(frame, 19, "challenge")
        if self._expected_peer is not None and name != self._expected_peer:
            raise HandshakeError(
                f"we meant to connect to {self._expected_peer}, but the node that answered "
                f"is {name}"
            )
        flags = expand_mandatory_25(int.from_bytes(frame[1:9], "big"))
        missing = missing_mandatory(flags)
        if missing:
            raise HandshakeError(
                f"node {name} cannot handle {flag_names(missing)}, which OTP 25 and nodemesh "
                "require; connection aborted"
            )
        self._peer_name, self._peer_flags = name, flags
        self._peer_creation = int.from_bytes(frame[13:17], "big")
        their_challenge = int.from_bytes(frame[9:13], "big")
        ours = self._draw_challenge().to_bytes(4, "big")
        self._send(b"r" + ours + challenge_digest(their_challenge, self._cookie))
        self._state = _S.AWAIT_ACK
        return None

    def _on_old_challenge(self, frame: bytes) -> Event | None:
        raise HandshakeError(
            f"{self._peer()} answered with a version 5 challenge: it is older than OTP 23; "
            "nodemesh speaks distribution version 6 only"
        )

    def _on_challenge_ack(self, frame: bytes) -> Event | None:
        _check_length(frame, 17, "challenge_ack")
        if not self._digest_ok(frame[1:]):
            raise CookieMismatchError(
                f"{self._peer()} answered our challenge with a wrong digest: its cookie for "
                "us differs from ours"
            )
        return self._established()

    def _eof_error(self, state: HandshakeState) -> HandshakeError:
        peer = self._peer()
        if state is _S.AWAIT_ACK:
            return CookieMismatchError(
                f"{peer} closed the connection after our challenge reply: the cookies most "
                "likely differ (Erlang drops a wrong digest without a word; its log says "
                "'Invalid challenge reply')"
            )
        if state is _S.AWAIT_STATUS:
            return HandshakeError(
                f"{peer} closed the connection without answering our name "
                f"{self._own_name}: it may find the name malformed, already have a connection "
                "attempt from it pending, or not be an Erlang distribution port (or speak "
                "only TLS distribution)"
            )
        what = {
            _S.AWAIT_CHALLENGE: "after accepting our name, before sending its challenge",
            _S.AWAIT_ALIVE_DECISION: "before we answered its 'alive' status",
        }.get(state, "during the handshake")
        return HandshakeError(f"{peer} closed the connection {what}")

    _READERS = {
        _S.AWAIT_STATUS: ("a status message ('s')", {ord("s"): _on_status}),
        _S.AWAIT_CHALLENGE: (
            "a challenge message ('N')",
            {ord("N"): _on_challenge, ord("n"): _on_old_challenge},
        ),
        _S.AWAIT_ACK: ("a challenge_ack message ('a')", {ord("a"): _on_challenge_ack}),
    }


class Acceptor(_Handshake):
    """Node B: the peer connected to us. ``prefix_width``: 2 over TCP, 4 over TLS. Raises
    NodeNameError or ConfigError for bad arguments."""

    def __init__(
        self,
        own_name: str,
        cookie: str,
        flags: DistFlag | int,
        creation: int,
        challenge_source: Callable[[], int] = random_challenge,
        *,
        prefix_width: int = 2,
    ) -> None:
        super().__init__(
            own_name, cookie, flags, creation, challenge_source, _S.AWAIT_NAME, prefix_width
        )
        self._old_send_name = False

    def accept_name(self, status: str) -> None:
        """Answer :class:`NameReceived` with one of :data:`ACCEPT_STATUSES`.

        ``"ok"``: go on. ``"ok_simultaneous"`` / ``"nok"``: we are connecting to the peer
        too (see :func:`simultaneous_status`); with ok_simultaneous drop our own attempt.
        ``"alive"``: we already have a connection with the peer's name; the peer answers
        whether it is stale. If it is, Established comes with the challenge_ack still in
        data_to_send(): tear down the old connection first, then send it (dist_util's
        wait_pending). ``"nok"`` / ``"not_allowed"`` end the handshake (state CLOSED).
        """
        if self._state is not _S.AWAIT_DECISION:
            raise LocalProtocolError("accept_name() answers a NameReceived event only")
        if status not in ACCEPT_STATUSES:
            raise LocalProtocolError(
                f"accept_name() takes one of {sorted(ACCEPT_STATUSES)}, not {status!r}"
            )
        self._send_status(status)
        if status == "alive":
            self._state = _S.AWAIT_ALIVE_ANSWER
        elif status in ("ok", "ok_simultaneous"):
            self._send_challenge()
        else:
            self._state = _S.CLOSED

    def _send_challenge(self) -> None:
        try:
            challenge = self._draw_challenge()
        except LocalProtocolError:
            self._state = _S.FAILED
            raise
        name = self._own_name.encode("latin-1")
        self._send(
            b"N"
            + int(self._flags).to_bytes(8, "big")
            + challenge.to_bytes(4, "big")
            + self._creation.to_bytes(4, "big")
            + len(name).to_bytes(2, "big")
            + name
        )
        self._state = _S.AWAIT_COMPLEMENT if self._old_send_name else _S.AWAIT_REPLY

    def _on_send_name(self, frame: bytes) -> Event | None:
        _check_length(frame, 15, "send_name", exact=False)
        flags = int.from_bytes(frame[1:9], "big")
        self._refuse_name_me(flags)
        name = _name_field(frame, 15, "send_name")
        return self._name_received(name, flags, int.from_bytes(frame[9:13], "big"))

    def _on_old_send_name(self, frame: bytes) -> Event | None:
        # OTP 23/24: 'n', version (2 bytes, 5), flags (4 bytes), name (the rest).
        _check_length(frame, 8, "old send_name", exact=False)
        version = int.from_bytes(frame[1:3], "big")
        if version != 5:
            raise HandshakeError(
                f"the peer asked for distribution version {version}; nodemesh speaks 6 "
                "(and accepts a version 5 opening only from OTP 23/24 nodes)"
            )
        flags = int.from_bytes(frame[3:7], "big")
        self._refuse_name_me(flags)
        self._old_send_name = True
        return self._name_received(_node_name(frame[7:], "old send_name"), flags, 0)

    def _refuse_name_me(self, flags: int) -> None:
        if flags & DistFlag.NAME_ME:
            self._send_status("not_allowed")
            raise HandshakeError(
                "the peer asked us to assign it a node name (NAME_ME); nodemesh does not "
                "assign dynamic names: refused (sent not_allowed)"
            )

    def _name_received(self, name: str, flags: int, creation: int) -> NameReceived:
        peer_flags = expand_mandatory_25(flags)
        missing = missing_mandatory(peer_flags)
        if missing:
            self._send_status("not_allowed")
            raise HandshakeError(
                f"node {name} cannot handle {flag_names(missing)}, which OTP 25 and nodemesh "
                "require: refused (sent not_allowed)"
            )
        self._peer_name, self._peer_flags, self._peer_creation = name, peer_flags, creation
        self._state = _S.AWAIT_DECISION
        return NameReceived(name, peer_flags, creation)

    def _on_alive_answer(self, frame: bytes) -> Event | None:
        answer = frame[1:]
        if answer == b"true":
            self._send_challenge()
            return None
        if answer == b"false":
            raise NameInUseError(
                f"{self._peer()} says its existing connection to us is still up and dropped "
                "this second one"
            )
        raise RemoteProtocolError(f"expected 'true' or 'false' after 'alive', got {answer[:40]!r}")

    def _on_complement(self, frame: bytes) -> Event | None:
        _check_length(frame, 9, "complement")
        high = int.from_bytes(frame[1:5], "big")
        self._peer_flags = expand_mandatory_25(self._peer_flags | (high << 32))
        self._peer_creation = int.from_bytes(frame[5:9], "big")
        self._state = _S.AWAIT_REPLY
        return None

    def _on_challenge_reply(self, frame: bytes) -> Event | None:
        _check_length(frame, 21, "challenge_reply")
        if not self._digest_ok(frame[5:21]):
            raise CookieMismatchError(
                f"{self._peer()} answered our challenge with a wrong digest: its cookie for "
                "us differs from ours"
            )
        their_challenge = int.from_bytes(frame[1:5], "big")
        self._send(b"a" + challenge_digest(their_challenge, self._cookie))
        return self._established()

    def _eof_error(self, state: HandshakeState) -> HandshakeError:
        peer = self._peer()
        if state in (_S.AWAIT_REPLY, _S.AWAIT_COMPLEMENT):
            return HandshakeError(
                f"{peer} closed the connection after our challenge: it probably cannot handle "
                f"our flags or meant to reach another node than {self._own_name}; its log "
                "says which"
            )
        what = {
            _S.AWAIT_NAME: "before sending its name",
            _S.AWAIT_DECISION: "before we answered its name",
            _S.AWAIT_ALIVE_ANSWER: "instead of answering our 'alive' status",
        }.get(state, "during the handshake")
        return HandshakeError(f"{peer} closed the connection {what}")

    _READERS = {
        _S.AWAIT_NAME: (
            "a send_name message ('N')",
            {ord("N"): _on_send_name, ord("n"): _on_old_send_name},
        ),
        _S.AWAIT_ALIVE_ANSWER: ("a status message ('s')", {ord("s"): _on_alive_answer}),
        _S.AWAIT_COMPLEMENT: ("a complement message ('c')", {ord("c"): _on_complement}),
        _S.AWAIT_REPLY: ("a challenge_reply message ('r')", {ord("r"): _on_challenge_reply}),
    }
