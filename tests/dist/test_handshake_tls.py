"""The handshake inside TLS: 4-byte length prefixes from the first message on."""

from __future__ import annotations

import pytest

from nodemesh.dist.flags import DEFAULT_FLAGS
from nodemesh.dist.handshake import (
    NEED_DATA,
    Acceptor,
    Established,
    Initiator,
    NameReceived,
)
from nodemesh.errors import ConfigError, RemoteProtocolError
from nodemesh.runtime._admission import first_message_complete

A, B, COOKIE = "a@127.0.0.1", "b@127.0.0.1", "SECRETCOOKIE"


def test_four_byte_prefixes_complete_a_handshake() -> None:
    """With prefix_width=4 every message carries a 4-byte length (inet_tls_dist's
    {packet, 4}) and the two sides still reach Established."""
    i = Initiator(A, COOKIE, DEFAULT_FLAGS, 1, lambda: 7, prefix_width=4)
    a = Acceptor(B, COOKIE, DEFAULT_FLAGS, 2, lambda: 9, prefix_width=4)
    name = i.data_to_send()
    assert int.from_bytes(name[:4], "big") == len(name) - 4 and name[4:5] == b"N"
    assert first_message_complete(name, 4) and not first_message_complete(name[:-1], 4)
    a.receive_data(name)
    assert isinstance(a.next_event(), NameReceived)
    a.accept_name("ok")
    i.receive_data(a.data_to_send())
    assert i.next_event() is NEED_DATA
    a.receive_data(i.data_to_send())
    assert isinstance(a.next_event(), Established)
    i.receive_data(a.data_to_send())
    assert isinstance(i.next_event(), Established)


def test_two_byte_handshake_reads_a_tls_record_as_tls() -> None:
    """A plain node that receives a TLS record (a ClientHello, or an alert from a TLS
    server) says the peer speaks TLS distribution."""
    for record in (b"\x16\x03\x01\x02\x00\x01", b"\x15\x03\x03\x00\x02\x02\x28"):
        a = Acceptor(B, COOKIE, DEFAULT_FLAGS, 2)
        a.receive_data(record)
        with pytest.raises(RemoteProtocolError, match="speaks TLS"):
            a.next_event()


def test_prefix_width_is_2_or_4() -> None:
    """Any other prefix width is a ConfigError."""
    with pytest.raises(ConfigError, match="prefix_width"):
        Acceptor(B, COOKIE, DEFAULT_FLAGS, 2, prefix_width=3)
