"""The gossip wire format: libcluster's plain and secret heartbeats, and the authenticated one."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nodemesh.cluster.gossip.wire import (
    AuthenticatedCodec,
    ForgedHeartbeatError,
    GossipError,
    Heartbeat,
    MalformedHeartbeatError,
    OversizedHeartbeatError,
    PlainCodec,
    ReplayedHeartbeatError,
    SecretCodec,
    UnknownKeyError,
    WrongClusterError,
    decode_heartbeat,
    encode_heartbeat,
    read_heartbeat,
    secret_decrypt,
    secret_encrypt,
)
from nodemesh.errors import ConfigError, NodeNameError, RemoteProtocolError

# REFERENCE.md, "Gossip wire format": node myapp@10.0.0.1 as libcluster on OTP 25 sends it.
PLAIN_VECTOR = bytes.fromhex(
    "6865617274626561743A3A8374000000016400046E6F646564000E6D796170704031302E302E302E31"
)
# ... and with secret "somepassword" and IV 00..0F.
SECRET_VECTOR = bytes.fromhex(
    "000102030405060708090A0B0C0D0E0F0293FCF646D248542D82EEA283216C73A6414EA34A4EA772CBE345F5"
    "E011158233E06105288188BB23905EE63B2C24A0"
)
NODE = "myapp@10.0.0.1"
# term_to_binary(#{node => 'myapp@10.0.0.1', dist_port => 45678}) on OTP 25.2, after the
# prefix: a flatmap is written in key order, so dist_port comes first.
PORT_VECTOR = b"heartbeat::" + bytes.fromhex(
    "837400000002640009646973745F706F7274620000B26E6400046E6F646564000E6D796170704031302E302E302E31"
)
KEY1 = "k1-0123456789abcdef-0123456789abcdef"
KEY2 = "k2-fedcba9876543210-fedcba9876543210"
NOW = 1_700_000_000.0


def heartbeat(term: bytes) -> bytes:
    return b"heartbeat::\x83" + term


def atom(tag: int, text: bytes) -> bytes:
    """An atom in one of the four encodings receivers accept (erl_ext_dist 12.30-12.33)."""
    if tag in (100, 118):
        return struct.pack(">BH", tag, len(text)) + text
    return struct.pack(">BB", tag, len(text)) + text


def map_of(*pairs: tuple[bytes, bytes]) -> bytes:
    return struct.pack(">BI", 116, len(pairs)) + b"".join(k + v for k, v in pairs)


# --- plain ------------------------------------------------------------------------------


def test_plain_heartbeat_is_the_reference_vector() -> None:
    """We write exactly what libcluster on OTP 25 writes: ATOM_EXT atoms, 41 bytes."""
    assert encode_heartbeat(NODE) == PLAIN_VECTOR
    assert len(PLAIN_VECTOR) == 41


def test_reference_vector_decodes() -> None:
    """The reference packet decodes to its node name."""
    assert decode_heartbeat(PLAIN_VECTOR) == NODE


@pytest.mark.parametrize("key_tag", [100, 115, 118, 119])
@pytest.mark.parametrize("value_tag", [100, 115, 118, 119])
def test_every_atom_encoding_is_accepted(key_tag: int, value_tag: int) -> None:
    """ATOM_EXT (OTP <= 25), SMALL_ATOM_UTF8 (OTP >= 26) and the two others all decode."""
    packet = heartbeat(map_of((atom(key_tag, b"node"), atom(value_tag, NODE.encode()))))
    assert decode_heartbeat(packet) == NODE


def test_otp26_heartbeat_decodes() -> None:
    """What OTP 26's term_to_binary writes (119 everywhere) is accepted."""
    packet = bytes.fromhex("6865617274626561743A3A83740000000177046E6F6465770E") + NODE.encode()
    assert decode_heartbeat(packet) == NODE


def test_latin1_node_name_round_trips() -> None:
    """A Latin-1 host (allowed by Erlang) travels as ATOM_EXT Latin-1 bytes, as OTP 25 does."""
    name = "app@h\u00f6st.example"
    packet = encode_heartbeat(name)
    assert packet.endswith(b"d\x00\x10app@h\xf6st.example")
    assert decode_heartbeat(packet) == name


def test_extra_map_keys_are_ignored() -> None:
    """libcluster ignores other keys, so metadata may ride along; so do we."""
    packet = heartbeat(
        map_of(
            (atom(119, b"meta"), b"m\x00\x00\x00\x03abc"),
            (atom(100, b"node"), atom(100, NODE.encode())),
            (b"a\x07", b"j"),
        )
    )
    assert decode_heartbeat(packet) == NODE


def test_heartbeat_with_a_port_is_what_otp_writes() -> None:
    """With a distribution port the packet is term_to_binary(#{node => N, dist_port => P})
    byte for byte (INTEGER_EXT from 256 up, SMALL_INTEGER_EXT below), and reads back."""
    assert encode_heartbeat(NODE, 45678) == PORT_VECTOR
    small = encode_heartbeat(NODE, 80)
    assert small == PORT_VECTOR.replace(bytes.fromhex("620000B26E"), bytes.fromhex("6150"))
    assert read_heartbeat(PORT_VECTOR) == Heartbeat(NODE, 45678)
    assert read_heartbeat(small) == Heartbeat(NODE, 80)
    assert decode_heartbeat(PORT_VECTOR) == NODE


def test_a_heartbeat_without_a_port_reads_as_none() -> None:
    """libcluster's packet (and an older nodemesh's) gives no port: EPMD is asked."""
    assert read_heartbeat(PLAIN_VECTOR) == Heartbeat(NODE, None)


@pytest.mark.parametrize(
    "value",
    [
        b"a\x00",
        b"b\x00\x01\x00\x00",
        b"b\xff\xff\xff\xff",
        atom(100, b"true"),
        b"m\x00\x00\x00\x0245",
    ],
    ids=["zero", "65536", "negative", "an atom", "a binary"],
)
def test_a_port_that_is_no_port_is_ignored_not_fatal(value: bytes) -> None:
    """dist_port outside 1-65535 or not an integer: the heartbeat still names its node
    (libcluster would connect to it), only the hint is dropped."""
    packet = heartbeat(
        map_of((atom(100, b"dist_port"), value), (atom(100, b"node"), atom(100, NODE.encode())))
    )
    assert read_heartbeat(packet) == Heartbeat(NODE, None)


def test_encoding_refuses_a_port_out_of_range() -> None:
    """We never announce a port a receiver would ignore."""
    for bad in (0, 65536, -1):
        with pytest.raises(ValueError, match="dist_port must be 1-65535"):
            encode_heartbeat(NODE, bad)


def test_plain_codec_reads_a_repeated_packet_from_its_cache() -> None:
    """A node sends the same bytes each time: the codec answers from its bounded cache,
    and a bad packet is never cached (it raises each time)."""
    codec = PlainCodec(max_cached=2)
    assert codec.read(PORT_VECTOR, NOW) is codec.read(PORT_VECTOR, NOW)
    others = [encode_heartbeat(f"n{i}@h", 1000 + i) for i in range(5)]
    assert [codec.read(p, NOW).dist_port for p in others] == [1000, 1001, 1002, 1003, 1004]
    assert len(codec._decoded) == 2
    for _ in range(2):
        with pytest.raises(MalformedHeartbeatError):
            codec.read(PLAIN_VECTOR[:-1], NOW)


def test_compressed_term_is_accepted_within_the_size_limit() -> None:
    """binary_to_term accepts compressed terms, and so do we, inflating at most max_size."""
    body = map_of((atom(100, b"node"), atom(100, NODE.encode())))
    packed = b"heartbeat::\x83P" + struct.pack(">I", len(body)) + zlib.compress(body)
    assert decode_heartbeat(packed) == NODE
    bomb = b"x" * 100_000
    packed = b"heartbeat::\x83P" + struct.pack(">I", 100_006) + zlib.compress(b"m" + bomb)
    with pytest.raises(MalformedHeartbeatError):
        decode_heartbeat(packed)


MALFORMED = {
    "empty": b"",
    "prefix only": b"heartbeat::",
    "no prefix": PLAIN_VECTOR[11:],
    "wrong prefix": b"heartbeet::" + PLAIN_VECTOR[11:],
    "no version byte": b"heartbeat::" + PLAIN_VECTOR[12:],
    "wrong version": b"heartbeat::\x82" + PLAIN_VECTOR[12:],
    "truncated in the name": PLAIN_VECTOR[:-1],
    "truncated in the key": PLAIN_VECTOR[:20],
    "trailing byte": PLAIN_VECTOR + b"\x00",
    "not a map": heartbeat(atom(100, NODE.encode())),
    "empty map": heartbeat(map_of()),
    "tuple": heartbeat(b"h\x02" + atom(100, b"node") + atom(100, NODE.encode())),
    "node is a binary": heartbeat(map_of((atom(100, b"node"), b"m\x00\x00\x00\x03a@b"))),
    "node is a charlist": heartbeat(map_of((atom(100, b"node"), b"k\x00\x03a@b"))),
    "key is a binary": heartbeat(map_of((b"m\x00\x00\x00\x04node", atom(100, NODE.encode())))),
    "key is a charlist": heartbeat(map_of((b"k\x00\x04node", atom(100, NODE.encode())))),
    "node has no @": heartbeat(map_of((atom(100, b"node"), atom(100, b"nonode")))),
    "node is true": heartbeat(map_of((atom(100, b"node"), atom(100, b"true")))),
    "node has a space": heartbeat(map_of((atom(100, b"node"), atom(100, b"a@b c")))),
    "two @": heartbeat(map_of((atom(100, b"node"), atom(100, b"a@b@c")))),
    "bad utf-8 atom": heartbeat(map_of((atom(100, b"node"), atom(119, b"a@\xff\xfe")))),
    "map arity lies": b"heartbeat::\x83t\xff\xff\xff\xff" + atom(100, b"node"),
    "atom length lies": b"heartbeat::\x83t\x00\x00\x00\x01d\xff\xffnode",
    "unknown tag": heartbeat(map_of((atom(100, b"node"), b"\xff"))),
    "deep nesting": heartbeat(map_of((atom(100, b"x"), b"l\x00\x00\x00\x01" * 40 + b"j" * 41))),
}


@pytest.mark.parametrize("packet", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_plain_heartbeats_raise_malformed(packet: bytes) -> None:
    """Each broken packet raises MalformedHeartbeatError, a RemoteProtocolError."""
    with pytest.raises(MalformedHeartbeatError) as info:
        decode_heartbeat(packet)
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.kind == "malformed"


def test_oversized_packet_is_refused_before_parsing() -> None:
    """A datagram over max_size is refused whatever it holds."""
    with pytest.raises(OversizedHeartbeatError):
        decode_heartbeat(PLAIN_VECTOR + b"\x00" * 9000)
    with pytest.raises(OversizedHeartbeatError):
        decode_heartbeat(PLAIN_VECTOR, max_size=40)


def test_encoding_refuses_a_bad_node_name() -> None:
    """We never send a name Erlang would not accept."""
    with pytest.raises(NodeNameError):
        encode_heartbeat("no-at-sign")


# --- libcluster's secret ------------------------------------------------------------------


def test_secret_vector_byte_for_byte() -> None:
    """AES-256-CBC, key SHA-256(secret), PKCS#7: the reference vector exactly."""
    assert secret_encrypt(PLAIN_VECTOR, "somepassword", bytes(range(16))) == SECRET_VECTOR
    assert secret_decrypt(SECRET_VECTOR, "somepassword") == PLAIN_VECTOR
    assert SecretCodec("somepassword").decode(SECRET_VECTOR, NOW) == NODE


def test_secret_codec_uses_a_fresh_iv() -> None:
    """Two heartbeats differ (random IV) and both decode."""
    codec = SecretCodec(b"somepassword")
    one, two = codec.encode(NODE, NOW), codec.encode(NODE, NOW)
    assert one != two and len(one) == 64
    assert codec.decode(one, NOW) == codec.decode(two, NOW) == NODE


SECRET_BAD = {
    "wrong secret": SECRET_VECTOR,
    "plain packet": PLAIN_VECTOR,
    "empty": b"",
    "iv only": SECRET_VECTOR[:16],
    "not whole blocks": SECRET_VECTOR[:-1],
    "a block short": SECRET_VECTOR[:-16],
    "bad padding": SECRET_VECTOR[:-1] + bytes([SECRET_VECTOR[-1] ^ 1]),
}


@pytest.mark.parametrize("packet", SECRET_BAD.values(), ids=SECRET_BAD.keys())
def test_secret_mode_refuses_what_it_cannot_decrypt(packet: bytes) -> None:
    """Wrong secret, plain or truncated packets raise UndecryptableHeartbeatError."""
    codec = SecretCodec("another password")
    if packet is not SECRET_VECTOR:
        codec = SecretCodec("somepassword")
    with pytest.raises(GossipError) as info:
        codec.decode(packet, NOW)
    assert info.value.kind in ("undecryptable", "malformed")


def test_secret_mode_refuses_oversized() -> None:
    """max_packet_size is checked before decrypting."""
    with pytest.raises(OversizedHeartbeatError):
        SecretCodec("s", max_packet_size=64).decode(SECRET_VECTOR + bytes(16), NOW)


# --- authenticated ------------------------------------------------------------------------


def test_authenticated_round_trip_and_block_aligned_length() -> None:
    """A sealed heartbeat opens to the node name; its length is a multiple of 16, so a
    libcluster node with a secret on the same port drops it at its padding check."""
    sender = AuthenticatedCodec([KEY1], "prod")
    receiver = AuthenticatedCodec([KEY1], "prod")
    for name in ("a@b.c", NODE, "x" * 60 + "@" + "h" * 100):
        packet = sender.encode(name, NOW)
        assert len(packet) % 16 == 0
        assert packet.startswith(b"NMg\x01")
        assert receiver.decode(packet, NOW + 1) == name


def test_the_port_travels_sealed_in_secret_and_authenticated_modes() -> None:
    """Both encrypted forms carry the port inside the plain packet they protect."""
    secret = SecretCodec("somepassword")
    assert secret.read(secret.encode(NODE, NOW, 4370), NOW) == Heartbeat(NODE, 4370)
    sender, receiver = AuthenticatedCodec([KEY1], "prod"), AuthenticatedCodec([KEY1], "prod")
    assert receiver.read(sender.encode(NODE, NOW, 4370), NOW) == Heartbeat(NODE, 4370)
    assert receiver.read(sender.encode(NODE, NOW + 1), NOW + 1) == Heartbeat(NODE, None)


def test_key_rotation_without_downtime() -> None:
    """Keys [new, old] seal with new and open both; [old] alone refuses new packets."""
    old_only = AuthenticatedCodec([KEY1])
    both = AuthenticatedCodec([KEY2, KEY1])
    old_first = AuthenticatedCodec([KEY1, KEY2])
    assert both.decode(old_only.encode("a@b.c", NOW), NOW) == "a@b.c"
    assert old_first.decode(both.encode("b@b.c", NOW), NOW) == "b@b.c"
    with pytest.raises(UnknownKeyError):
        old_only.decode(both.encode("c@b.c", NOW + 1), NOW + 1)


def test_wrong_cluster_label_is_refused() -> None:
    """The same key under another label does not open: the label is in the AAD."""
    with pytest.raises(WrongClusterError):
        AuthenticatedCodec([KEY1], "staging").decode(
            AuthenticatedCodec([KEY1], "prod").encode("a@b.c", NOW), NOW
        )


def test_label_is_bound_by_the_tag_not_only_by_the_label_tag() -> None:
    """Rewriting the clear label tag to ours does not help: the AEAD tag then fails."""
    prod = AuthenticatedCodec([KEY1], "prod")
    staging = AuthenticatedCodec([KEY1], "staging")
    packet = bytearray(staging.encode("a@b.c", NOW))
    packet[8:12] = prod.encode("x@y.z", NOW)[8:12]
    with pytest.raises(ForgedHeartbeatError):
        prod.decode(bytes(packet), NOW)


def test_every_single_bit_flip_is_refused() -> None:
    """Tampering anywhere raises a GossipError (never decodes, never another exception)."""
    sender = AuthenticatedCodec([KEY1], "prod")
    packet = sender.encode("a@b.c", NOW)
    for i in range(len(packet)):
        for bit in (0, 7):
            receiver = AuthenticatedCodec([KEY1], "prod")
            bad = bytearray(packet)
            bad[i] ^= 1 << bit
            with pytest.raises(GossipError):
                receiver.decode(bytes(bad), NOW)


def test_replayed_heartbeat_is_refused() -> None:
    """The same packet twice: the second is a replay; an older one after a newer, too."""
    sender = AuthenticatedCodec([KEY1])
    receiver = AuthenticatedCodec([KEY1])
    first = sender.encode("a@b.c", NOW)
    second = sender.encode("a@b.c", NOW)  # same clock: the sender still counts up
    assert receiver.decode(second, NOW) == "a@b.c"
    with pytest.raises(ReplayedHeartbeatError):
        receiver.decode(second, NOW)
    with pytest.raises(ReplayedHeartbeatError):
        receiver.decode(first, NOW)


def test_heartbeat_outside_the_window_is_refused() -> None:
    """An old capture (or a far-off clock) is refused even by a receiver that never saw it."""
    packet = AuthenticatedCodec([KEY1]).encode("a@b.c", NOW)
    with pytest.raises(ReplayedHeartbeatError, match="window"):
        AuthenticatedCodec([KEY1], window=30).decode(packet, NOW + 31)
    with pytest.raises(ReplayedHeartbeatError, match="window"):
        AuthenticatedCodec([KEY1], window=30).decode(packet, NOW - 31)
    assert AuthenticatedCodec([KEY1], window=30).decode(packet, NOW + 29) == "a@b.c"


def test_replay_table_is_bounded() -> None:
    """The table keeps at most max_senders (authenticated) names."""
    receiver = AuthenticatedCodec([KEY1], max_senders=10)
    sender = AuthenticatedCodec([KEY1])
    for i in range(50):
        receiver.decode(sender.encode(f"n{i}@h.x", NOW), NOW)
    assert len(receiver._last_seen) == 10


AUTH_BAD = {
    "plain libcluster packet": (PLAIN_VECTOR, MalformedHeartbeatError),
    "secret packet": (SECRET_VECTOR, MalformedHeartbeatError),
    "empty": (b"", MalformedHeartbeatError),
    "magic only": (b"NMg\x01", MalformedHeartbeatError),
    "header only": (b"NMg\x01" + bytes(20), MalformedHeartbeatError),
    "oversized": (b"NMg\x01" + bytes(9000), OversizedHeartbeatError),
}


@pytest.mark.parametrize(("packet", "error"), AUTH_BAD.values(), ids=AUTH_BAD.keys())
def test_authenticated_mode_refuses_other_packets(packet: bytes, error: type[Exception]) -> None:
    """Plain, secret, truncated and oversized datagrams raise their specific error."""
    with pytest.raises(error):
        AuthenticatedCodec([KEY1]).decode(packet, NOW)


def test_truncated_authenticated_packets_are_refused() -> None:
    """Every prefix of a real packet raises a GossipError."""
    packet = AuthenticatedCodec([KEY1]).encode("a@b.c", NOW)
    for end in range(len(packet)):
        with pytest.raises(GossipError):
            AuthenticatedCodec([KEY1]).decode(packet[:end], NOW)


def test_authenticated_codec_refuses_weak_configuration() -> None:
    """No key, or a key under 16 bytes, is a ConfigError."""
    with pytest.raises(ConfigError):
        AuthenticatedCodec([])
    with pytest.raises(ConfigError):
        AuthenticatedCodec([KEY1, "short"])


AUTH_VECTOR = bytes.fromhex(
    "4e4d67016fa17ebf47878e140000000000000000000000003c44c382c03337f9c91edceca9b844ff"
    "d7f9236726903e736e8d2d6bbd585c101e0a007cb0e10f3e452c1013c93b67c95e9501db1c128af3"
    "90781893ca0e3769a2a067a72fd6bc0f"
)


def test_authenticated_vector_with_a_fixed_nonce() -> None:
    """The documented layout, rebuilt here from its parts with `cryptography` directly
    (key "0123456789abcdef0123456789abcdef", label "prod", nonce 0, time 1.7e9 s)."""
    key = b"0123456789abcdef0123456789abcdef"
    codec = AuthenticatedCodec([key], "prod", random_bytes=lambda n: bytes(n))
    packet = codec.encode(NODE, 1_700_000_000.0)
    assert packet == AUTH_VECTOR

    def hkdf(info: bytes, length: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)

    label_tag = hashlib.sha256(b"nodemesh gossip v1 label" + b"prod").digest()[:4]
    header = b"NMg\x01" + hkdf(b"nodemesh gossip v1 key id", 4) + label_tag + bytes(12)
    inner = struct.pack(">QH", 1_700_000_000_000, 41) + PLAIN_VECTOR
    inner += bytes(96 - 24 - 16 - len(inner))
    sealed = AESGCM(hkdf(b"nodemesh gossip v1 aead", 32)).encrypt(
        bytes(12), inner, header + b"prod"
    )
    assert header + sealed == AUTH_VECTOR
    assert AuthenticatedCodec([key], "prod").decode(AUTH_VECTOR, 1_700_000_000.0) == NODE


def test_plain_codec_matches_the_functions() -> None:
    """PlainCodec is encode_heartbeat / decode_heartbeat."""
    codec = PlainCodec()
    assert codec.encode(NODE, NOW) == PLAIN_VECTOR
    assert codec.decode(PLAIN_VECTOR, NOW) == NODE
