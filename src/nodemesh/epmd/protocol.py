"""The EPMD wire format (``erl_dist_protocol``, section "EPMD Protocol"): no sockets, no clock.

Theory of operation
-------------------
A client opens a TCP connection to EPMD and sends one request: a 2-byte big-endian length,
then that many bytes, the first of which is the request tag. Responses carry no length:
their size follows from the tag (ALIVE2_X_RESP, ALIVE2_RESP), from their own fields
(PORT2_RESP), or from EPMD closing the connection (NAMES, DUMP, KILL). Hence:

* every request value has ``encode()``; a server feeds what it reads to
  :class:`RequestParser` and gets complete request values back;
* every response value has ``encode()`` and a class method to read it back: ``parse(buf)``
  returns ``None`` while ``buf`` is still incomplete, ``decode(data)`` takes everything EPMD
  sent before it closed the connection.

All integers are big-endian. Bytes that break the format raise
:class:`~nodemesh.errors.RemoteProtocolError`; values that cannot be put on the wire raise
:class:`~nodemesh.errors.LocalProtocolError`. Any other exception is a bug.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from nodemesh.errors import LocalProtocolError, RemoteProtocolError

EPMD_PORT = 4369
DIST_HIGH = 6  # OTP 23 and later
DIST_LOW = 5  # still accepted so that pre-OTP 23 peers can connect
MAX_NAME_BYTES = 255 * 4  # epmd's MAXSYMLEN: an atom of 255 UTF-8 characters
MAX_REQUEST_SIZE = 4096  # default bound on a request: the longest name with a modest Extra
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_NODE_HEAD = struct.Struct(">HBBHHH")  # PortNo NodeType Protocol Highest Lowest Nlen


class Tag(IntEnum):
    """The first byte of every request and response."""

    DUMP_REQ = 100
    KILL_REQ = 107
    NAMES_REQ = 110
    STOP_REQ = 115
    ALIVE2_X_RESP = 118
    PORT2_RESP = 119
    ALIVE2_REQ = 120
    ALIVE2_RESP = 121
    PORT_PLEASE2_REQ = 122


class NodeType(IntEnum):
    """ALIVE2_REQ ``NodeType``: a normal Erlang node, or a hidden one (a C node)."""

    NORMAL = 77
    HIDDEN = 72


def _u16(value: int, field: str) -> int:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{field} {value} does not fit in 16 bits")
    return value


def _u32(value: int, field: str) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"{field} {value} does not fit in 32 bits")
    return _U32.pack(value)


def encode_name(name: str) -> bytes:
    """The UTF-8 bytes of a node name, checked for what EPMD can carry."""
    raw = name.encode("utf-8")
    if not raw or len(raw) > MAX_NAME_BYTES:
        raise LocalProtocolError(f"node name must be 1..{MAX_NAME_BYTES} bytes, not {len(raw)}")
    return raw


def decode_name(raw: bytes, where: str) -> str:
    """A node name received in ``where``; control characters would forge NAMES lines."""
    if not raw or len(raw) > MAX_NAME_BYTES:
        raise RemoteProtocolError(f"{where}: node name of {len(raw)} bytes")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"{where}: node name {raw!r} is not UTF-8") from exc
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise RemoteProtocolError(f"{where}: node name {name!r} has control characters")
    return name


def _frame(body: bytes) -> bytes:
    """Prefix a request with its 2-byte length."""
    if len(body) > 0xFFFF:
        raise LocalProtocolError(f"EPMD request of {len(body)} bytes exceeds 65535")
    return _U16.pack(len(body)) + body


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What EPMD holds for a node: sent in ALIVE2_REQ, returned in PORT2_RESP."""

    name: str
    port: int
    node_type: int = NodeType.NORMAL
    protocol: int = 0  # 0 = TCP/IPv4 (the only value in use, also for IPv6)
    highest_version: int = DIST_HIGH
    lowest_version: int = DIST_LOW
    extra: bytes = b""

    @property
    def hidden(self) -> bool:
        """Whether the node registered as hidden (NodeType 72)."""
        return self.node_type == NodeType.HIDDEN

    def encode(self) -> bytes:
        """The field block shared by ALIVE2_REQ and PORT2_RESP (everything after the tag)."""
        name = encode_name(self.name)
        if not (0 <= self.node_type <= 0xFF and 0 <= self.protocol <= 0xFF):
            raise LocalProtocolError("node type and protocol must fit in one byte")
        head = _NODE_HEAD.pack(
            _u16(self.port, "port"),
            self.node_type,
            self.protocol,
            _u16(self.highest_version, "highest version"),
            _u16(self.lowest_version, "lowest version"),
            len(name),
        )
        return head + name + _U16.pack(_u16(len(self.extra), "extra length")) + self.extra

    @classmethod
    def parse(cls, buf: bytes, offset: int, where: str) -> tuple[NodeInfo, int] | None:
        """Read the field block at ``offset``: (value, end offset), or None if incomplete."""
        if len(buf) < offset + _NODE_HEAD.size:
            return None
        port, node_type, protocol, high, low, nlen = _NODE_HEAD.unpack_from(buf, offset)
        name_at = offset + _NODE_HEAD.size
        if len(buf) < name_at + nlen + 2:
            return None
        name = decode_name(buf[name_at : name_at + nlen], where)
        (elen,) = _U16.unpack_from(buf, name_at + nlen)
        extra_at = name_at + nlen + 2
        if len(buf) < extra_at + elen:
            return None
        if low > high:
            raise RemoteProtocolError(f"{where}: lowest version {low} > highest {high}")
        extra = bytes(buf[extra_at : extra_at + elen])
        return cls(name, port, node_type, protocol, high, low, extra), extra_at + elen


# --- requests (client -> EPMD) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alive2Request:
    """ALIVE2_REQ (120): register ``node``; the connection then stays open while it lives."""

    node: NodeInfo

    def encode(self) -> bytes:
        return _frame(bytes([Tag.ALIVE2_REQ]) + self.node.encode())


@dataclass(frozen=True, slots=True)
class PortPlease2Request:
    """PORT_PLEASE2_REQ (122): where does node ``name`` listen?"""

    name: str

    def encode(self) -> bytes:
        return _frame(bytes([Tag.PORT_PLEASE2_REQ]) + encode_name(self.name))


@dataclass(frozen=True, slots=True)
class StopRequest:
    """STOP_REQ (115): forcibly unregister ``name`` (real epmd refuses it by default)."""

    name: str

    def encode(self) -> bytes:
        return _frame(bytes([Tag.STOP_REQ]) + encode_name(self.name))


@dataclass(frozen=True, slots=True)
class NamesRequest:
    """NAMES_REQ (110): list the registered names."""

    TAG: ClassVar[Tag] = Tag.NAMES_REQ

    def encode(self) -> bytes:
        return _frame(bytes([self.TAG]))


@dataclass(frozen=True, slots=True)
class DumpRequest:
    """DUMP_REQ (100): a debug listing of everything EPMD holds."""

    TAG: ClassVar[Tag] = Tag.DUMP_REQ

    def encode(self) -> bytes:
        return _frame(bytes([self.TAG]))


@dataclass(frozen=True, slots=True)
class KillRequest:
    """KILL_REQ (107): stop EPMD (refused while nodes are registered)."""

    TAG: ClassVar[Tag] = Tag.KILL_REQ

    def encode(self) -> bytes:
        return _frame(bytes([self.TAG]))


Request = (
    Alive2Request | PortPlease2Request | StopRequest | NamesRequest | DumpRequest | KillRequest
)
# Requests that are a tag and nothing else.
_BARE: dict[int, Request] = {
    Tag.NAMES_REQ: NamesRequest(),
    Tag.DUMP_REQ: DumpRequest(),
    Tag.KILL_REQ: KillRequest(),
}


def decode_request(body: bytes) -> Request:
    """Decode one request ``body`` (the bytes after the 2-byte length)."""
    if not body:
        raise RemoteProtocolError("empty EPMD request (length 0)")
    tag = body[0]
    if tag == Tag.ALIVE2_REQ:
        parsed = NodeInfo.parse(body, 1, "ALIVE2_REQ")
        if parsed is None:
            raise RemoteProtocolError(f"ALIVE2_REQ truncated: {len(body)} bytes")
        if parsed[1] != len(body):
            raise RemoteProtocolError(f"ALIVE2_REQ has {len(body) - parsed[1]} trailing bytes")
        return Alive2Request(parsed[0])
    if tag == Tag.PORT_PLEASE2_REQ:
        return PortPlease2Request(decode_name(body[1:], "PORT_PLEASE2_REQ"))
    if tag == Tag.STOP_REQ:
        return StopRequest(decode_name(body[1:], "STOP_REQ"))
    if tag in _BARE:
        if len(body) != 1:
            raise RemoteProtocolError(f"{Tag(tag).name} of {len(body)} bytes, expected 1")
        return _BARE[tag]
    raise RemoteProtocolError(f"unknown EPMD request tag {tag}")


class RequestParser:
    """Splits the bytes a client sends into requests (server side).

    ``max_size`` bounds one request, hence the bytes held: a longer announced length is
    refused as soon as its 2-byte prefix arrives. After it raises the stream is unusable.
    """

    def __init__(self, max_size: int = MAX_REQUEST_SIZE) -> None:
        self._max_size = max_size
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a complete request."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Request]:
        """Take received bytes; return every request they complete, in order."""
        self._buf += data
        requests: list[Request] = []
        while len(self._buf) >= 2:
            (length,) = _U16.unpack_from(self._buf)
            if length > self._max_size:
                raise RemoteProtocolError(
                    f"EPMD request of {length} bytes exceeds the limit of {self._max_size}"
                )
            if len(self._buf) < 2 + length:
                break
            body = bytes(self._buf[2 : 2 + length])
            del self._buf[: 2 + length]
            requests.append(decode_request(body))
        return requests


# --- responses (EPMD -> client) ---------------------------------------------------------


def _expect_tag(buf: bytes, tags: tuple[Tag, ...], what: str) -> None:
    if buf and buf[0] not in tags:
        raise RemoteProtocolError(f"expected {what}, got a reply starting with byte {buf[0]}")


@dataclass(frozen=True, slots=True)
class Alive2Response:
    """ALIVE2_X_RESP (118, 32-bit creation) or, if not ``extended``, ALIVE2_RESP (121)."""

    result: int  # 0 = registered; anything else = refused (in practice: name taken)
    creation: int
    extended: bool = True

    @property
    def ok(self) -> bool:
        return self.result == 0

    def encode(self) -> bytes:
        if not 0 <= self.result <= 0xFF:
            raise LocalProtocolError(f"result {self.result} does not fit in one byte")
        if self.extended:
            return bytes([Tag.ALIVE2_X_RESP, self.result]) + _u32(self.creation, "creation")
        return bytes([Tag.ALIVE2_RESP, self.result]) + _U16.pack(_u16(self.creation, "creation"))

    @classmethod
    def parse(cls, buf: bytes) -> Alive2Response | None:
        """The response at the start of ``buf``, or None while it is incomplete."""
        _expect_tag(buf, (Tag.ALIVE2_X_RESP, Tag.ALIVE2_RESP), "ALIVE2_X_RESP or ALIVE2_RESP")
        extended = bool(buf) and buf[0] == Tag.ALIVE2_X_RESP
        size = 6 if extended else 4
        if len(buf) < size:
            return None
        if len(buf) > size:
            raise RemoteProtocolError(f"{len(buf) - size} unexpected bytes after ALIVE2 reply")
        creation = _U32.unpack_from(buf, 2)[0] if extended else _U16.unpack_from(buf, 2)[0]
        return cls(buf[1], creation, extended)


@dataclass(frozen=True, slots=True)
class Port2Response:
    """PORT2_RESP (119): the node, or ``None`` with a nonzero ``result`` if EPMD has no such."""

    node: NodeInfo | None
    result: int = 0

    def __post_init__(self) -> None:
        if (self.node is None) != (self.result != 0):
            raise LocalProtocolError("PORT2_RESP carries a node exactly when result is 0")

    def encode(self) -> bytes:
        if self.node is None:
            if not 0 < self.result <= 0xFF:
                raise LocalProtocolError(f"result {self.result} does not fit in one byte")
            return bytes([Tag.PORT2_RESP, self.result])
        return bytes([Tag.PORT2_RESP, 0]) + self.node.encode()

    @classmethod
    def parse(cls, buf: bytes) -> Port2Response | None:
        """The response at the start of ``buf``, or None while it is incomplete."""
        _expect_tag(buf, (Tag.PORT2_RESP,), "PORT2_RESP")
        if len(buf) < 2:
            return None
        end, node = 2, None
        if buf[1] == 0:
            parsed = NodeInfo.parse(buf, 2, "PORT2_RESP")
            if parsed is None:
                return None
            node, end = parsed
        if len(buf) > end:
            raise RemoteProtocolError(f"{len(buf) - end} unexpected bytes after PORT2_RESP")
        return cls(node, buf[1])


def _split_port(data: bytes, what: str) -> tuple[int, str]:
    """The 4-byte EPMD port that opens NAMES and DUMP replies, and the text after it."""
    if len(data) < 4:
        raise RemoteProtocolError(f"{what} reply of {len(data)} bytes, shorter than 4")
    try:
        return _U32.unpack_from(data)[0], data[4:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"{what} reply is not UTF-8 text") from exc


@dataclass(frozen=True, slots=True)
class NamesResponse:
    """The reply to NAMES_REQ: EPMD's own port, then ``name N at port P`` per live node."""

    epmd_port: int
    nodes: tuple[tuple[str, int], ...] = ()

    def encode(self) -> bytes:
        text = "".join(f"name {name} at port {port}\n" for name, port in self.nodes)
        return _u32(self.epmd_port, "EPMD port") + text.encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> NamesResponse:
        """Read the whole reply (EPMD closes the connection after it)."""
        epmd_port, text = _split_port(data, "NAMES")
        if text and not text.endswith("\n"):
            raise RemoteProtocolError(f"NAMES reply ends mid-line: {text[-60:]!r}")
        return cls(epmd_port, tuple(_names_line(line) for line in text.splitlines()))


def _names_line(line: str) -> tuple[str, int]:
    # io:format("name ~ts at port ~p~n"); split from the right: a name may hold spaces.
    name, sep, port = line.removeprefix("name ").rpartition(" at port ")
    if not line.startswith("name ") or not sep or not name or not port.isdigit():
        raise RemoteProtocolError(f"NAMES reply line is not 'name N at port P': {line!r}")
    return name, int(port)


@dataclass(frozen=True, slots=True)
class DumpResponse:
    """The reply to DUMP_REQ: EPMD's port, then one free-form debug line per node."""

    epmd_port: int
    lines: tuple[str, ...] = ()

    @staticmethod
    def line(name: str, port: int, fd: int, *, active: bool = True) -> str:
        """One node line as epmd writes it (with the spec's fixed-width state column)."""
        state = "active name    " if active else "old/unused name"
        return f"{state} <{name}> at port {port}, fd = {fd}"

    def encode(self) -> bytes:
        # epmd ends every line with a NUL as well as a newline.
        text = "".join(f"{line}\n\0" for line in self.lines)
        return _u32(self.epmd_port, "EPMD port") + text.encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> DumpResponse:
        """Read the whole reply (EPMD closes the connection after it)."""
        epmd_port, text = _split_port(data, "DUMP")
        lines = [line.strip("\0") for line in text.split("\n")]
        return cls(epmd_port, tuple(line for line in lines if line))


@dataclass(frozen=True, slots=True)
class KillResponse:
    """The reply to KILL_REQ: ``OK`` (EPMD stops) or ``NO`` (nodes are still registered)."""

    ok: bool

    def encode(self) -> bytes:
        return b"OK" if self.ok else b"NO"

    @classmethod
    def decode(cls, data: bytes) -> KillResponse:
        """Read the whole reply (EPMD closes the connection after it)."""
        if data not in (b"OK", b"NO"):
            raise RemoteProtocolError(f"KILL reply is {data[:20]!r}, not b'OK' or b'NO'")
        return cls(data == b"OK")
