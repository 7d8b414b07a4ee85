"""The DNS answer reader: byte literals for each malformed case, and dnspython as oracle."""

from __future__ import annotations

import contextlib
import ipaddress

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodemesh.cluster.dns_wire import AAAA, CNAME, SRV, A, Reply, WireError, parse_response

HEADER = "1234 8180 0001 0001 0000 0000"  # id 0x1234, QR RD RA, 1 question, 1 answer
QUESTION = "01 61 07 6578616d706c65 00 0001 0001"  # a.example. A IN
ANSWER_A = "c00c 0001 0001 0000003c 0004 0a000001"  # -> 10.0.0.1, TTL 60


def wire(*parts: str) -> bytes:
    return bytes.fromhex(" ".join(parts))


def test_reads_an_a_answer() -> None:
    """Header, question and one compressed A record."""
    reply = parse_response(wire(HEADER, QUESTION, ANSWER_A))
    assert reply == Reply(0x1234, 0, False, ("a.example.", A, 1), (("a.example.", A, "10.0.0.1"),))
    assert reply.chase("a.example.", A) == ("a.example.", ["10.0.0.1"])


def test_reads_aaaa_srv_and_cname_and_follows_the_chain() -> None:
    """AAAA in Erlang's form, SRV targets and CNAMEs; chase() follows the CNAME."""
    header = "0001 8180 0001 0004 0000 0000"
    question = "05 616c696173 07 6578616d706c65 00 0021 0001"  # alias.example. SRV IN
    cname = "c00c 0005 0001 00000000 0004 01 62 c012"  # alias -> b.example.
    srv = "c02b 0021 0001 00000000 000e 000a 0032 0000 05 7765622d30 c012"  # b -> web-0.example.
    aaaa = "c041 001c 0001 00000000 0010 00000000000000000000ffff0a000009"  # web-0 -> ::ffff:..
    other = "c041 0010 0001 00000000 0002 0161"  # a TXT record, skipped
    reply = parse_response(wire(header, question, cname, srv, aaaa, other))
    assert reply.records == (
        ("alias.example.", CNAME, "b.example."),
        ("b.example.", SRV, "web-0.example."),
        ("web-0.example.", AAAA, "::ffff:10.0.0.9"),
    )
    assert reply.chase("alias.example.", SRV) == ("b.example.", ["web-0.example."])
    assert reply.chase("alias.example.", CNAME) == ("alias.example.", ["b.example."])


def test_rcode_and_truncation_flag() -> None:
    """NXDOMAIN's rcode and the TC bit are reported."""
    reply = parse_response(wire("0001 8383 0001 0000 0000 0000", QUESTION))
    assert (reply.rcode, reply.truncated, reply.records) == (3, True, ())


def test_truncated_message_keeps_whole_records() -> None:
    """With TC set the message may stop inside a record: the records before it are kept."""
    header = "1234 8380 0001 0002 0000 0000"
    reply = parse_response(wire(header, QUESTION, ANSWER_A, "c00c 0001 0001 0000"))
    assert reply.truncated and reply.records == (("a.example.", A, "10.0.0.1"),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("1234 8180", "a DNS message has a 12-byte header, got 4 bytes"),
        (f"1234 0100 0001 0000 0000 0000 {QUESTION}", "is a query, not a response"),
        ("1234 8180 0000 0000 0000 0000", "must repeat the one question, it has 0"),
        (f"{HEADER} 01 61 00 0001", "the question ends early"),
        (f"{HEADER} 05 61", "a label runs past the message"),
        (f"{HEADER} 01 61", "a name runs past the message"),
        (f"{HEADER} c0", "a compression pointer runs past the message"),
        (f"{HEADER} c00c 0001 0001", "a compression pointer does not point backwards"),
        (f"{HEADER} 01 61 c00e 0001 0001", "a compression pointer does not point backwards"),
        (f"{HEADER} 41 61 00 0001 0001", "unknown label type 0x41"),
        (f"{HEADER} {('3f' + '61' * 63) * 4} 00 0001 0001", "longer than 255 bytes"),
        (f"{HEADER} {QUESTION} c00c 0001 0001 0000", "a record's header ends early"),
        (f"{HEADER} {QUESTION} c00c 0001 0001 00000000 0005 0a00", "runs past the message"),
        (f"{HEADER} {QUESTION} c00c 0001 0001 00000000 0005 0a00000100", "4 bytes of data"),
        (f"{HEADER} {QUESTION} c00c 001c 0001 00000000 0004 0a000001", "16 bytes of data"),
        (f"{HEADER} {QUESTION} c00c 0021 0001 00000000 0006 000000000000", "at least 7 bytes"),
        (f"{HEADER} {QUESTION} c00c 0005 0001 00000000 0004 c00c 0000", "CNAME record's length"),
    ],
)
def test_malformed_messages_are_wire_errors(data: str, message: str) -> None:
    """Every malformed case is a WireError saying what is wrong."""
    with pytest.raises(WireError, match=message):
        parse_response(bytes.fromhex(data))


def test_cname_loop_is_a_wire_error() -> None:
    """A CNAME chain that comes back to itself is refused."""
    loop = Reply(1, 0, False, ("a.", A, 1), (("a.", CNAME, "b."), ("b.", CNAME, "A.")))
    with pytest.raises(WireError, match=r"CNAME loop at a\."):
        loop.chase("a.", A)


@given(st.binary(max_size=300), st.integers(0, 0xFFFF), st.sampled_from([0x8180, 0x8380]))
def test_garbage_raises_only_wire_errors(data: bytes, ancount: int, flags: int) -> None:
    """Any bytes, alone or after a response header and question, parse or raise WireError."""
    with contextlib.suppress(WireError):
        parse_response(data)
    header = bytes.fromhex(f"1234 {flags:04x} 0001 {ancount:04x} 0000 0000")
    with contextlib.suppress(WireError):
        parse_response(header + bytes.fromhex(QUESTION) + data)


_labels = st.lists(
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True), min_size=1, max_size=4
)
_names = _labels.map(lambda labels: ".".join(labels) + ".")
_records = st.one_of(
    st.tuples(st.just("A"), st.ip_addresses(v=4).map(str)),
    st.tuples(st.just("AAAA"), st.ip_addresses(v=6).map(str)),
    st.tuples(st.just("SRV"), _names.map(lambda n: f"10 50 4369 {n}")),
    st.tuples(st.just("CNAME"), _names),
)


@settings(max_examples=200, deadline=None)
@given(_names, st.lists(st.tuples(_names, _records), max_size=12), st.booleans())
def test_same_records_as_dnspython(
    qname: str, answers: list[tuple[str, tuple[str, str]]], truncated: bool
) -> None:
    """For messages dnspython writes (with name compression), we read the same records."""
    query = dns.message.make_query(qname, "A")
    response = dns.message.make_response(query)
    if truncated:
        response.flags |= dns.flags.TC
    for owner, (rdtype, text) in answers:
        rrset = response.find_rrset(
            response.answer,
            dns.name.from_text(owner),
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rdtype),
            create=True,
        )
        rrset.add(dns.rdata.from_text("IN", rdtype, text), 0)
    reply = parse_response(response.to_wire())
    expected = []
    for rrset in response.answer:
        for rdata in rrset:
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                value = str(ipaddress.ip_address(rdata.address))
            elif rrset.rdtype == dns.rdatatype.SRV:
                value = rdata.target.to_text()
            else:
                value = rdata.target.to_text()
            expected.append((rrset.name.to_text(), int(rrset.rdtype), value))
    got = [
        (owner, rtype, str(ipaddress.ip_address(value)) if rtype in (A, AAAA) else value)
        for owner, rtype, value in reply.records
    ]
    assert got == expected
    assert (reply.ident, reply.truncated, reply.question) == (query.id, truncated, (qname, A, 1))
