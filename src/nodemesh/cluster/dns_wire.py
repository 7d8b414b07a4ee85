"""DNS answers in wire format, as far as discovery reads them. Pure: no sockets, no clock.

Why not dnspython's parser: it builds a full object per record, about 30 ms for an
answer of 1,000 A records and 65 ms for 1,000 SRV records on our CI machines — more than
the 50 ms a whole discovery round may take. Discovery needs four record types and the
header, so this module reads exactly those (RFC 1035 §4.1, AAAA: RFC 3596, SRV: RFC
2782) and skips every other record by its length. Queries are still built by dnspython.

:func:`parse_response` checks what it reads — lengths, label and name sizes, compression
pointers (which must point backwards, so they cannot loop) — and raises
:class:`WireError` for a malformed message, except that a truncated message (TC set) may
end in the middle of a record: the records before it are kept.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
from dataclasses import dataclass

__all__ = [
    "AAAA",
    "CNAME",
    "SRV",
    "A",
    "Reply",
    "WireError",
    "erlang_ntoa",
    "parse_response",
]

A, CNAME, AAAA, SRV = 1, 5, 28, 33
CLASS_IN = 1
_QR, _TC = 0x8000, 0x0200
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_PLAIN_LABEL = re.compile(rb"[A-Za-z0-9_-]+")
_ESCAPED = b'"().;\\@$'  # dnspython's (and BIND's) special characters in names


class WireError(ValueError):
    """A DNS message is malformed."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A parsed response. ``question`` is (name in lower case, type, class); each
    ``records`` entry is (owner in lower case, type, value): an address in Erlang's
    form for A and AAAA, the target name for CNAME and SRV (with the final dot)."""

    ident: int
    rcode: int
    truncated: bool
    question: tuple[str, int, int]
    records: tuple[tuple[str, int, str], ...]

    def chase(self, qname: str, qtype: int) -> tuple[str, list[str]]:
        """Follow CNAMEs from ``qname`` (lower case, final dot) inside this answer:
        the canonical name and the values of its ``qtype`` records."""
        cnames = {owner: value for owner, rtype, value in self.records if rtype == CNAME}
        name, seen = qname, {qname}
        while qtype != CNAME and name in cnames:
            name = cnames[name].lower()
            if name in seen:
                raise WireError(f"CNAME loop at {name}")
            seen.add(name)
        values = [value for owner, rtype, value in self.records if rtype == qtype and owner == name]
        return name, values


def parse_response(wire: bytes) -> Reply:
    """Parse the header, the question and the answer section of a response."""
    if len(wire) < _HEADER.size:
        raise WireError(f"a DNS message has a 12-byte header, got {len(wire)} bytes")
    ident, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(wire)
    if not flags & _QR:
        raise WireError("the message is a query, not a response")
    truncated = bool(flags & _TC)
    if qdcount != 1:
        raise WireError(f"a response must repeat the one question, it has {qdcount}")
    names = _Names(wire)
    qname, offset = names.read(_HEADER.size)
    if offset + 4 > len(wire):
        raise WireError("the question ends early")
    qtype, qclass = struct.unpack_from("!HH", wire, offset)
    offset += 4
    records: list[tuple[str, int, str]] = []
    for _ in range(ancount):
        try:
            record, offset = _record(wire, offset, names)
        except WireError:
            if truncated:
                break  # a truncated message may end anywhere; keep what came whole
            raise
        if record is not None:
            records.append(record)
    return Reply(ident, flags & 0xF, truncated, (qname.lower(), qtype, qclass), tuple(records))


def _record(wire: bytes, offset: int, names: _Names) -> tuple[tuple[str, int, str] | None, int]:
    owner, offset = names.read(offset)
    if offset + _RR.size > len(wire):
        raise WireError("a record's header ends early")
    rtype, rclass, _ttl, rdlength = _RR.unpack_from(wire, offset)
    start = offset + _RR.size
    end = start + rdlength
    if end > len(wire):
        raise WireError(f"a record's data ({rdlength} bytes) runs past the message")
    if rclass != CLASS_IN:
        return None, end
    if rtype == A:
        if rdlength != 4:
            raise WireError(f"an A record has 4 bytes of data, got {rdlength}")
        return (owner.lower(), A, socket.inet_ntop(socket.AF_INET, wire[start:end])), end
    if rtype == AAAA:
        if rdlength != 16:
            raise WireError(f"an AAAA record has 16 bytes of data, got {rdlength}")
        return (owner.lower(), AAAA, erlang_ntoa(wire[start:end])), end
    if rtype == CNAME:
        target, stop = names.read(start)
    elif rtype == SRV:
        if rdlength < 7:
            raise WireError(f"an SRV record has at least 7 bytes of data, got {rdlength}")
        target, stop = names.read(start + 6)  # after priority, weight, port
    else:
        return None, end
    if stop != end:
        raise WireError(f"a {'CNAME' if rtype == CNAME else 'SRV'} record's length is wrong")
    return (owner.lower(), rtype, target), end


class _Names:
    """Reads the (compressed) names of one message, remembering each offset's name."""

    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.cache: dict[int, tuple[str, int, int]] = {}  # offset -> (text, end, size)

    def read(self, offset: int) -> tuple[str, int]:
        """The name at ``offset`` as text with a final dot, and the offset after it."""
        text, end, _ = self._read(offset)
        return text, end

    def _read(self, start: int) -> tuple[str, int, int]:
        cached = self.cache.get(start)
        if cached is not None:
            return cached
        wire, size, offset = self.wire, 1, start
        labels: list[str] = []
        while True:
            if offset >= len(wire):
                raise WireError("a name runs past the message")
            length = wire[offset]
            if length == 0:
                text, end = ".".join(labels) + ".", offset + 1
                break
            if length >= 0xC0:
                if offset + 1 >= len(wire):
                    raise WireError("a compression pointer runs past the message")
                target = ((length & 0x3F) << 8) | wire[offset + 1]
                if target >= start:  # so that pointers cannot loop
                    raise WireError("a compression pointer does not point backwards")
                suffix, _, suffix_size = self._read(target)
                size += suffix_size - 1
                if suffix == ".":
                    text = ".".join(labels) + "." if labels else "."
                else:
                    text = ".".join([*labels, suffix])
                end = offset + 2
                break
            if length >= 0x40:
                raise WireError(f"unknown label type 0x{length:02x}")
            label = wire[offset + 1 : offset + 1 + length]
            if len(label) != length:
                raise WireError("a label runs past the message")
            labels.append(_label_text(label))
            size += length + 1
            offset += length + 1
        if size > 255:
            raise WireError("a name is longer than 255 bytes")
        self.cache[start] = (text, end, size)
        return text, end, size


def _label_text(label: bytes) -> str:
    if _PLAIN_LABEL.fullmatch(label):
        return label.decode("ascii")
    out = []
    for byte in label:
        if byte in _ESCAPED:
            out.append("\\" + chr(byte))
        elif 0x20 < byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


def erlang_ntoa(address: str | bytes) -> str:
    """An IP address (text, or 4 or 16 bytes) as Erlang's ``inet_parse:ntoa/1`` prints it.

    IPv6 is compressed as in RFC 5952, except that Erlang prints IPv4-compatible
    (``::1.2.3.4``) and IPv4-mapped (``::ffff:1.2.3.4``) addresses with a dotted tail
    (checked against OTP 25 on random addresses).
    """
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return str(ip)
    packed = ip.packed
    if packed[:10] == bytes(10) and packed[10:12] == b"\xff\xff":
        return f"::ffff:{socket.inet_ntop(socket.AF_INET, packed[12:])}"
    if packed[:12] == bytes(12) and int(ip) > 1:
        return f"::{socket.inet_ntop(socket.AF_INET, packed[12:])}"
    return ip.compressed
