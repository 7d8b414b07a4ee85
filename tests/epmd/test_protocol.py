"""The EPMD wire format: byte-exact encodings, round trips, and every malformed case."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodemesh.epmd.protocol import (
    MAX_NAME_BYTES,
    Alive2Request,
    Alive2Response,
    DumpRequest,
    DumpResponse,
    KillRequest,
    KillResponse,
    NamesRequest,
    NamesResponse,
    NodeInfo,
    NodeType,
    Port2Response,
    PortPlease2Request,
    RequestParser,
    StopRequest,
    decode_request,
)
from nodemesh.errors import LocalProtocolError, RemoteProtocolError

# What `erl -name x@127.0.0.1` sends, and what OTP 25's epmd answered, captured on the wire.
ERL_ALIVE2 = b"\x00\x0ex\x9c\xe1M\x00\x00\x06\x00\x05\x00\x01x\x00\x00"
EPMD_ALIVE2_X = b"v\x00k\x04'\xaa"
EPMD_ALIVE2_OLD = b"y\x00\x00\x03"
EPMD_PORT2 = b"w\x00\x04\xd2M\x00\x00\x06\x00\x05\x00\x03foo\x00\x00"
EPMD_NAMES = b"\x00\x00\xdb#name old at port 1236\nname foo at port 1234\n"
EPMD_DUMP = (
    b"\x00\x00\xdb#active name     <old> at port 1236, fd = 7\n\x00"
    b"active name     <foo> at port 1234, fd = 6\n\x00"
)

names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=MAX_NAME_BYTES // 4
)
u16 = st.integers(0, 0xFFFF)
nodes = st.builds(
    NodeInfo,
    name=names,
    port=u16,
    node_type=st.sampled_from(list(NodeType)),
    protocol=st.integers(0, 255),
    highest_version=st.just(6),
    lowest_version=st.integers(0, 6),
    extra=st.binary(max_size=64),
)


def test_alive2_request_matches_erl() -> None:
    """ALIVE2_REQ encodes byte for byte as erl sends it and decodes back."""
    request = Alive2Request(NodeInfo("x", 40161, NodeType.NORMAL))
    assert request.encode() == ERL_ALIVE2
    assert RequestParser().feed(ERL_ALIVE2) == [request]


def test_simple_requests_encode() -> None:
    """PORT_PLEASE2, NAMES, DUMP, KILL and STOP requests have their documented bytes."""
    assert PortPlease2Request("foo").encode() == b"\x00\x04zfoo"
    assert NamesRequest().encode() == b"\x00\x01n"
    assert DumpRequest().encode() == b"\x00\x01d"
    assert KillRequest().encode() == b"\x00\x01k"
    assert StopRequest("foo").encode() == b"\x00\x04sfoo"


@given(nodes)
def test_alive2_request_round_trip(node: NodeInfo) -> None:
    """Any ALIVE2_REQ survives encode and parse."""
    assert RequestParser().feed(Alive2Request(node).encode()) == [Alive2Request(node)]


@given(nodes)
def test_port2_response_round_trip(node: NodeInfo) -> None:
    """Any PORT2_RESP survives encode and parse."""
    assert Port2Response.parse(Port2Response(node).encode()) == Port2Response(node)


@given(st.lists(st.tuples(names, u16), max_size=5), u16)
def test_names_response_round_trip(entries: list[tuple[str, int]], port: int) -> None:
    """Any NAMES reply survives encode and decode, also for names holding spaces."""
    reply = NamesResponse(port, tuple(entries))
    assert NamesResponse.decode(reply.encode()) == reply


def test_parser_takes_bytes_one_at_a_time() -> None:
    """Requests split at every byte boundary, and several in one chunk, are all found."""
    stream = ERL_ALIVE2 + NamesRequest().encode() + PortPlease2Request("foo").encode()
    parser, found = RequestParser(), []
    for byte in stream:
        found += parser.feed(bytes([byte]))
    assert found == RequestParser().feed(stream)
    assert [type(r) for r in found] == [Alive2Request, NamesRequest, PortPlease2Request]
    assert parser.pending == 0


def test_parser_refuses_oversized_length_before_the_body() -> None:
    """An announced length over the limit fails at once, holding no body bytes."""
    parser = RequestParser(max_size=100)
    with pytest.raises(RemoteProtocolError, match="101 bytes exceeds the limit of 100"):
        parser.feed(b"\x00\x65")


def test_responses_from_real_epmd() -> None:
    """Replies captured from OTP's epmd parse to the values they carry."""
    assert Alive2Response.parse(EPMD_ALIVE2_X) == Alive2Response(0, 0x6B0427AA)
    assert Alive2Response.parse(EPMD_ALIVE2_OLD) == Alive2Response(0, 3, extended=False)
    foo = NodeInfo("foo", 1234, NodeType.NORMAL)
    assert Port2Response.parse(EPMD_PORT2) == Port2Response(foo)
    assert Port2Response.parse(b"w\x01") == Port2Response(None, 1)
    assert NamesResponse.decode(EPMD_NAMES) == NamesResponse(56099, (("old", 1236), ("foo", 1234)))
    assert DumpResponse.decode(EPMD_DUMP).lines[1] == DumpResponse.line("foo", 1234, 6)
    assert KillResponse.decode(b"NO") == KillResponse(False)


def test_responses_encode_as_real_epmd() -> None:
    """Our replies are byte for byte what OTP's epmd sends."""
    assert Alive2Response(0, 0x6B0427AA).encode() == EPMD_ALIVE2_X
    assert Alive2Response(0, 3, extended=False).encode() == EPMD_ALIVE2_OLD
    assert Port2Response(NodeInfo("foo", 1234)).encode() == EPMD_PORT2
    assert Port2Response(None, 1).encode() == b"w\x01"
    assert NamesResponse(56099, (("old", 1236), ("foo", 1234))).encode() == EPMD_NAMES
    lines = (DumpResponse.line("old", 1236, 7), DumpResponse.line("foo", 1234, 6))
    assert DumpResponse(56099, lines).encode() == EPMD_DUMP
    assert KillResponse(True).encode() == b"OK"


@pytest.mark.parametrize("reply", [EPMD_ALIVE2_X, EPMD_ALIVE2_OLD, EPMD_PORT2, b"w\x01"], ids=repr)
def test_incomplete_responses_need_more_data(reply: bytes) -> None:
    """Every proper prefix of a reply parses to None (need more), not to an error."""
    parse = Alive2Response.parse if reply[0] in b"vy" else Port2Response.parse
    for end in range(len(reply)):
        assert parse(reply[:end]) is None


MALFORMED_REQUESTS = [
    (b"\x00\x00", "empty EPMD request"),
    (b"\x00\x01\x99", "unknown EPMD request tag 153"),
    (b"\xff\xff", "65535 bytes exceeds the limit"),
    (b"\x00\x05x\x00\x01M\x00", "ALIVE2_REQ truncated"),
    (ERL_ALIVE2[:1] + b"\x0f" + ERL_ALIVE2[2:] + b"!", "1 trailing bytes"),
    (b"\x00\x0ex\x9c\xe1M\x00\x00\x06\x00\x05\x00\x09x\x00\x00", "ALIVE2_REQ truncated"),
    (b"\x00\x0dx\x9c\xe1M\x00\x00\x06\x00\x05\x00\x00\x00\x00", "node name of 0 bytes"),
    (b"\x00\x0ex\x9c\xe1M\x00\x00\x06\x00\x05\x00\x01\xff\x00\x00", "is not UTF-8"),
    (b"\x00\x0ex\x9c\xe1M\x00\x00\x06\x00\x05\x00\x01\n\x00\x00", "control characters"),
    (b"\x00\x0ex\x9c\xe1M\x00\x00\x05\x00\x06\x00\x01x\x00\x00", "lowest version 6 > highest 5"),
    (b"\x00\x01z", "PORT_PLEASE2_REQ: node name of 0 bytes"),
    (b"\x00\x03z\xc3\x28", "PORT_PLEASE2_REQ: node name b'\\xc3(' is not UTF-8"),
    (b"\x00\x02n\x00", "NAMES_REQ of 2 bytes, expected 1"),
    (b"\x00\x02k!", "KILL_REQ of 2 bytes, expected 1"),
    (b"\x00\x01s", "STOP_REQ: node name of 0 bytes"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED_REQUESTS, ids=repr)
def test_malformed_requests_are_refused(data: bytes, message: str) -> None:
    """Each malformed request raises RemoteProtocolError saying what is wrong."""
    with pytest.raises(RemoteProtocolError) as info:
        RequestParser().feed(data)
    assert message in str(info.value)


MALFORMED_REPLIES = [
    (Alive2Response.parse, b"w\x00\x00\x00", "expected ALIVE2_X_RESP or ALIVE2_RESP"),
    (Alive2Response.parse, EPMD_ALIVE2_X + b"\x00", "1 unexpected bytes after ALIVE2"),
    (Port2Response.parse, b"v\x00", "expected PORT2_RESP"),
    (Port2Response.parse, b"w\x01\x00", "1 unexpected bytes after PORT2_RESP"),
    (Port2Response.parse, EPMD_PORT2.replace(b"foo", b"f\xffo"), "not UTF-8"),
    (Port2Response.parse, EPMD_PORT2.replace(b"\x06\x00\x05", b"\x05\x00\x06"), "lowest"),
    (NamesResponse.decode, b"\x00\x00", "NAMES reply of 2 bytes"),
    (NamesResponse.decode, b"\x00\x00\x11\x11hello\n", "not 'name N at port P'"),
    (NamesResponse.decode, b"\x00\x00\x11\x11name x at port y\n", "not 'name N at port P'"),
    (NamesResponse.decode, b"\x00\x00\x11\x11name x at port 1", "ends mid-line"),
    (NamesResponse.decode, b"\x00\x00\x11\x11name \xff at port 1\n", "not UTF-8"),
    (DumpResponse.decode, b"\x00", "DUMP reply of 1 bytes"),
    (KillResponse.decode, b"OKAY", "not b'OK' or b'NO'"),
]


@pytest.mark.parametrize(("parse", "data", "message"), MALFORMED_REPLIES, ids=repr)
def test_malformed_replies_are_refused(parse: object, data: bytes, message: str) -> None:
    """Each malformed reply raises RemoteProtocolError saying what is wrong."""
    assert callable(parse)
    with pytest.raises(RemoteProtocolError) as info:
        parse(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Alive2Request(NodeInfo("", 1)).encode(), "node name must be"),
        (lambda: Alive2Request(NodeInfo("x" * 1021, 1)).encode(), "node name must be"),
        (lambda: Alive2Request(NodeInfo("x", 70000)).encode(), "port 70000"),
        (lambda: Alive2Request(NodeInfo("x", 1, extra=bytes(70000))).encode(), "extra length"),
        (lambda: Alive2Request(NodeInfo("x", 1, node_type=300)).encode(), "one byte"),
        (lambda: Alive2Response(0, 1 << 32).encode(), "32 bits"),
        (lambda: Alive2Response(0, 1 << 16, extended=False).encode(), "16 bits"),
        (lambda: NamesResponse(-1).encode(), "EPMD port -1"),
        (lambda: Port2Response(None), "exactly when result is 0"),
        (lambda: Port2Response(NodeInfo("x", 1), 1), "exactly when result is 0"),
    ],
)
def test_unencodable_values_raise_local_errors(make: object, message: str) -> None:
    """Values EPMD cannot carry raise LocalProtocolError, not a struct error."""
    assert callable(make)
    with pytest.raises(LocalProtocolError, match=message):
        make()


def test_decode_request_takes_a_bare_body() -> None:
    """decode_request reads one body without its length prefix."""
    assert decode_request(b"zfoo") == PortPlease2Request("foo")
    assert NodeInfo("n", 1, NodeType.HIDDEN).hidden
