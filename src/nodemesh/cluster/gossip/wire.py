"""The gossip heartbeat on the wire: libcluster's two forms and nodemesh's authenticated one.

No sockets and no clock: the time is passed in, so the strategy and the tests decide it.

Theory of operation
-------------------
libcluster 3.5's Gossip strategy multicasts, every 1-5 s, ``heartbeat::`` followed by the
external term format (``erl_ext_dist``) of ``%{node: :"name@host"}``; receivers connect to
the named node. nodemesh adds the key ``dist_port`` (its distribution port) when it knows
it: libcluster matches ``%{node: n}``, which ignores extra keys, and a receiver that gets
the port connects without asking the node's EPMD. Three codecs share one interface,
``encode(node, now, dist_port)`` / ``read(packet, now) -> Heartbeat`` (``decode`` gives the
node name only):

* :class:`PlainCodec`: that packet, byte for byte (see :func:`encode_heartbeat`).
* :class:`SecretCodec`: libcluster's ``secret`` option: a 16-byte random IV followed by
  AES-256-CBC of the plain packet, key SHA-256(secret), PKCS#7 padding. It has no MAC and no
  replay protection: anyone can replay a captured packet, and CBC is malleable.
* :class:`AuthenticatedCodec`: nodemesh only, opt-in. AES-256-GCM, the cluster label in the
  associated data, a list of keys (encrypt with the first, accept any: rotation without
  downtime) and a per-sender timestamp that must grow and stay within a window of ``now``
  (replay protection). Layout, all integers big-endian::

      0   4  magic b"NMg\\x01" (format version 1)
      4   4  key id     HKDF-SHA256(key, info="nodemesh gossip v1 key id")[:4]
      8   4  label tag  SHA-256("nodemesh gossip v1 label" || label)[:4]
      12 12  nonce      random
      24  .. AES-256-GCM(HKDF-SHA256(key, info="nodemesh gossip v1 aead"), nonce,
                         plaintext, associated data = bytes 0..24 || label)
      plaintext = u64 sender time in ms || u16 length || plain packet || zero padding

  The padding rounds the datagram to whole AES blocks, so a libcluster node with a
  ``secret`` on the same port treats it as any wrongly keyed packet (its PKCS#7 or prefix
  check fails and it drops it), and an observer learns name lengths only to 16 bytes.
  The key id and label tag only make drop reasons precise; the AEAD tag authenticates.

Every malformed, oversized, wrongly keyed, forged or replayed datagram raises a
:class:`GossipError` whose ``kind`` names the reason; any other exception is a bug.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nodemesh.dist.names import parse_node_name
from nodemesh.errors import ConfigError, DecodeError, NodeNameError, RemoteProtocolError
from nodemesh.term import Atom, DecodeLimits, decode

__all__ = [
    "DEFAULT_MAX_PACKET_SIZE",
    "HEARTBEAT_PREFIX",
    "AuthenticatedCodec",
    "Codec",
    "ForgedHeartbeatError",
    "GossipError",
    "Heartbeat",
    "MalformedHeartbeatError",
    "OversizedHeartbeatError",
    "PlainCodec",
    "ReplayedHeartbeatError",
    "SecretCodec",
    "UndecryptableHeartbeatError",
    "UnknownKeyError",
    "WrongClusterError",
    "decode_heartbeat",
    "encode_heartbeat",
    "read_heartbeat",
    "secret_decrypt",
    "secret_encrypt",
]

HEARTBEAT_PREFIX = b"heartbeat::"
DEFAULT_MAX_PACKET_SIZE = 8192

# --- errors -------------------------------------------------------------------------------


class GossipError(RemoteProtocolError):
    """A gossip datagram was refused; ``kind`` names the reason (one log line per kind)."""

    kind: ClassVar[str] = "malformed"


class MalformedHeartbeatError(GossipError):
    """Not a heartbeat: wrong prefix, not a term, no ``node`` atom, bad node name."""

    kind = "malformed"


class OversizedHeartbeatError(GossipError):
    """Larger than the configured ``max_packet_size``; refused before any parsing."""

    kind = "oversized"


class UndecryptableHeartbeatError(GossipError):
    """``secret`` mode: not whole AES blocks, bad padding, or no heartbeat inside (another
    secret, or a plain packet)."""

    kind = "undecryptable"


class WrongClusterError(GossipError):
    """Authenticated mode: the packet names another cluster label."""

    kind = "wrong_cluster"


class UnknownKeyError(GossipError):
    """Authenticated mode: sealed with a key that is not among ours."""

    kind = "unknown_key"


class ForgedHeartbeatError(GossipError):
    """Authenticated mode: the AEAD tag does not verify (tampered, or a forged header)."""

    kind = "forged"


class ReplayedHeartbeatError(GossipError):
    """Authenticated mode: not newer than the sender's last one, or outside the window."""

    kind = "replayed"


# --- the plain packet ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a heartbeat says: the sender's node name and, from nodemesh senders, the port
    its distribution listens on (None when absent or not a port number)."""

    node: str
    dist_port: int | None = None


_MAGIC_MAP = b"\x83t\x00\x00\x00"  # VERSION_MAGIC, MAP_EXT, arity (its last byte follows)
_NODE_KEY = b"d\x00\x04node"  # ATOM_EXT "node", as OTP 25 writes it
_PORT_KEY = b"d\x00\x09dist_port"


def encode_heartbeat(node: str, dist_port: int | None = None) -> bytes:
    """``heartbeat::`` + term_to_binary(#{node => Node}) as libcluster on OTP 25 sends it,
    or of ``#{dist_port => Port, node => Node}`` when ``dist_port`` is given.

    Raises :class:`~nodemesh.errors.NodeNameError` if ``node`` is not a node name and
    ValueError if ``dist_port`` is not 1-65535.
    """
    # OTP <= 25 writes every atom that fits in Latin-1 as ATOM_EXT (100, u16 length) and
    # OTP >= 26 as SMALL_ATOM_UTF8_EXT (119). Node names are Latin-1 by Erlang's rules, so
    # we write ATOM_EXT, exactly as libcluster on OTP 25 does: it is the form of the
    # reference test vectors, and every OTP since R16 (and every other ETF tool) decodes
    # it, while 119 needs a decoder that knows UTF-8 atoms. Receivers accept all four.
    raw = str(parse_node_name(node)).encode("latin-1")
    name = _NODE_KEY + struct.pack(">BH", 100, len(raw)) + raw
    if dist_port is None:
        return HEARTBEAT_PREFIX + _MAGIC_MAP + b"\x01" + name
    if not 0 < dist_port < 65536:
        raise ValueError(f"dist_port must be 1-65535, got {dist_port}")
    # A map of up to 32 keys is a flatmap, written in key order: dist_port < node, so this
    # is what term_to_binary gives on OTP 25. The port is INTEGER_EXT (98, 4 bytes) from
    # 256 up, SMALL_INTEGER_EXT (97) below, as erts writes them.
    port = (
        struct.pack(">BB", 97, dist_port) if dist_port < 256 else struct.pack(">Bi", 98, dist_port)
    )
    return HEARTBEAT_PREFIX + _MAGIC_MAP + b"\x02" + _PORT_KEY + port + name


def read_heartbeat(packet: bytes, *, max_size: int = DEFAULT_MAX_PACKET_SIZE) -> Heartbeat:
    """The node name and distribution port of a plain heartbeat. Other map keys are
    ignored, as by libcluster, and so is a ``dist_port`` that is not an integer 1-65535
    (the heartbeat still names a node).

    Decodes without creating anything global (nodemesh's atoms are plain strings), in at
    most ``max_size`` bytes, even when compressed. Raises :class:`OversizedHeartbeatError`
    or :class:`MalformedHeartbeatError`.
    """
    if len(packet) > max_size:
        raise OversizedHeartbeatError(f"{len(packet)} bytes, more than {max_size}")
    if not packet.startswith(HEARTBEAT_PREFIX):
        raise MalformedHeartbeatError(f"no 'heartbeat::' prefix: {bytes(packet[:16])!r}")
    limits = DecodeLimits(max_depth=16, max_decompressed_size=max_size)
    try:
        term = decode(packet[len(HEARTBEAT_PREFIX) :], limits=limits)
    except DecodeError as exc:
        raise MalformedHeartbeatError(f"not an external term: {exc}") from exc
    if not isinstance(term, Mapping):
        raise MalformedHeartbeatError(f"expected a map, got {type(term).__name__}")
    node = _atom_key(term, "node")
    if type(node) is not Atom:
        raise MalformedHeartbeatError(f"no node atom in the map: {str(term)[:100]}")
    try:
        name = str(parse_node_name(str(node)))
    except NodeNameError as exc:
        raise MalformedHeartbeatError(f"bad node name: {exc}") from exc
    port = _atom_key(term, "dist_port")
    return Heartbeat(name, port if type(port) is int and 0 < port < 65536 else None)


def _atom_key(term: Mapping[object, object], key: str) -> object:
    return next((v for k, v in term.items() if type(k) is Atom and k == key), None)


def decode_heartbeat(packet: bytes, *, max_size: int = DEFAULT_MAX_PACKET_SIZE) -> str:
    """The node name in a plain heartbeat (see :func:`read_heartbeat`)."""
    return read_heartbeat(packet, max_size=max_size).node


# --- libcluster's secret ------------------------------------------------------------------


def _secret_key(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    return hashlib.sha256(raw).digest()


def secret_encrypt(plain: bytes, secret: str | bytes, iv: bytes | None = None) -> bytes:
    """IV || AES-256-CBC(key=SHA-256(secret), IV, PKCS#7(plain)), as libcluster's
    ``encrypt/2``. ``iv`` (16 bytes) is random unless given (for test vectors)."""
    iv = os.urandom(16) if iv is None else iv
    if len(iv) != 16:
        raise ValueError("the IV must be 16 bytes")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_secret_key(secret)), modes.CBC(iv)).encryptor()
    return iv + encryptor.update(padded) + encryptor.finalize()


def secret_decrypt(packet: bytes, secret: str | bytes) -> bytes:
    """The plain packet inside a ``secret``-mode datagram; raises
    :class:`UndecryptableHeartbeatError` when the length or the padding is wrong."""
    if len(packet) < 32 or len(packet) % 16:
        raise UndecryptableHeartbeatError(f"{len(packet)} bytes is not an IV and whole blocks")
    decryptor = Cipher(algorithms.AES(_secret_key(secret)), modes.CBC(packet[:16])).decryptor()
    padded = decryptor.update(packet[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise UndecryptableHeartbeatError("bad PKCS#7 padding (another secret?)") from None


# --- codecs -------------------------------------------------------------------------------


class Codec(Protocol):
    """Turns a node name (and its distribution port) into a datagram and back. ``now`` is
    Unix time in seconds."""

    def encode(self, node: str, now: float, dist_port: int | None = None) -> bytes: ...

    def read(self, packet: bytes, now: float) -> Heartbeat: ...

    def decode(self, packet: bytes, now: float) -> str: ...


class PlainCodec:
    """libcluster's default: no secret.

    A node sends the same bytes every time, so the last ``max_cached`` packets that
    decoded are kept with what they said: while N nodes join, each hears about N answers,
    and a lookup is a fraction of a decode."""

    def __init__(
        self, *, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE, max_cached: int = 1024
    ) -> None:
        self.max_packet_size = max_packet_size
        self.max_cached = max_cached
        self._decoded: dict[bytes, Heartbeat] = {}

    def encode(self, node: str, now: float, dist_port: int | None = None) -> bytes:
        return encode_heartbeat(node, dist_port)

    def read(self, packet: bytes, now: float) -> Heartbeat:
        beat = self._decoded.get(packet)
        if beat is None:
            beat = read_heartbeat(packet, max_size=self.max_packet_size)
            if len(self._decoded) >= self.max_cached:
                del self._decoded[next(iter(self._decoded))]  # the oldest
            self._decoded[bytes(packet)] = beat
        return beat

    def decode(self, packet: bytes, now: float) -> str:
        return self.read(packet, now).node


class SecretCodec:
    """libcluster's ``secret`` option (AES-256-CBC, unauthenticated)."""

    def __init__(
        self, secret: str | bytes, *, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE
    ) -> None:
        self.secret = secret
        self.max_packet_size = max_packet_size

    def encode(self, node: str, now: float, dist_port: int | None = None) -> bytes:
        return secret_encrypt(encode_heartbeat(node, dist_port), self.secret)

    def read(self, packet: bytes, now: float) -> Heartbeat:
        if len(packet) > self.max_packet_size:
            raise OversizedHeartbeatError(f"{len(packet)} bytes, more than {self.max_packet_size}")
        plain = secret_decrypt(packet, self.secret)
        if not plain.startswith(HEARTBEAT_PREFIX):
            raise UndecryptableHeartbeatError("decrypted to no heartbeat (another secret?)")
        return read_heartbeat(plain, max_size=self.max_packet_size)

    def decode(self, packet: bytes, now: float) -> str:
        return self.read(packet, now).node


MAGIC = b"NMg\x01"
_HEADER = 24
_TAG = 16
_INNER = struct.Struct(">QH")  # sender time in ms, length of the plain packet
MIN_KEY_BYTES = 16


def _hkdf(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


def label_tag(label: str) -> bytes:
    """The 4 bytes that name a cluster label in the clear (for precise drop reasons)."""
    return hashlib.sha256(b"nodemesh gossip v1 label" + label.encode("utf-8")).digest()[:4]


class AuthenticatedCodec:
    """nodemesh's authenticated heartbeat (see the module docstring for the layout).

    ``keys``: secrets of at least 16 bytes (text is UTF-8 encoded); the first seals, all
    open. ``label`` names the cluster. ``window`` (seconds): how far a sender's time may
    differ from ``now``; clocks must agree that well. ``max_senders`` bounds the replay
    table (one entry per authenticated sender). Raises :class:`ConfigError` when invalid.
    """

    def __init__(
        self,
        keys: Sequence[str | bytes],
        label: str = "",
        *,
        window: float = 30.0,
        max_senders: int = 1024,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not keys:
            raise ConfigError("authenticated gossip needs at least one key")
        raw = [k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in keys]
        if any(len(k) < MIN_KEY_BYTES for k in raw):
            raise ConfigError(f"every gossip key must be at least {MIN_KEY_BYTES} bytes")
        self._keys = [
            (
                _hkdf(k, b"nodemesh gossip v1 key id", 4),
                AESGCM(_hkdf(k, b"nodemesh gossip v1 aead", 32)),
            )
            for k in raw
        ]
        self.label = label
        self._label = label.encode("utf-8")
        self._label_tag = label_tag(label)
        self.window_ms = int(window * 1000)
        self.max_senders = max_senders
        self.max_packet_size = max_packet_size
        self._random = random_bytes
        self._last_sent = 0
        self._last_seen: OrderedDict[str, int] = OrderedDict()

    def encode(self, node: str, now: float, dist_port: int | None = None) -> bytes:
        """Seal a heartbeat for ``node`` with the first key; times always grow."""
        plain = encode_heartbeat(node, dist_port)
        stamp = max(int(now * 1000), self._last_sent + 1)
        self._last_sent = stamp
        key_id, aead = self._keys[0]
        header = MAGIC + key_id + self._label_tag + self._random(12)
        inner = _INNER.pack(stamp, len(plain)) + plain
        inner += bytes(-(_HEADER + len(inner) + _TAG) % 16)
        return header + aead.encrypt(header[12:], inner, header + self._label)

    def decode(self, packet: bytes, now: float) -> str:
        """The sender's node name; raises a :class:`GossipError` for anything else."""
        return self.read(packet, now).node

    def read(self, packet: bytes, now: float) -> Heartbeat:
        """The sender's heartbeat; raises a :class:`GossipError` for anything else."""
        if len(packet) > self.max_packet_size:
            raise OversizedHeartbeatError(f"{len(packet)} bytes, more than {self.max_packet_size}")
        if not packet.startswith(MAGIC):
            raise MalformedHeartbeatError(f"not an authenticated heartbeat: {packet[:16]!r}")
        if len(packet) < _HEADER + _INNER.size + _TAG:
            raise MalformedHeartbeatError(f"truncated: {len(packet)} bytes")
        if packet[8:12] != self._label_tag:
            raise WrongClusterError(f"for another cluster label (tag {packet[8:12].hex()})")
        inner = self._open(bytes(packet))
        stamp, length = _INNER.unpack_from(inner)
        if _INNER.size + length > len(inner):
            raise MalformedHeartbeatError(f"inner length {length} overruns the packet")
        beat = read_heartbeat(inner[_INNER.size : _INNER.size + length])
        self._check_fresh(beat.node, stamp, int(now * 1000))
        return beat

    def _open(self, packet: bytes) -> bytes:
        header = packet[:_HEADER]
        candidates = [aead for key_id, aead in self._keys if key_id == packet[4:8]]
        if not candidates:
            raise UnknownKeyError(f"sealed with an unknown key (id {packet[4:8].hex()})")
        for aead in candidates:
            try:
                return aead.decrypt(header[12:], packet[_HEADER:], header + self._label)
            except InvalidTag:
                continue
        raise ForgedHeartbeatError("the authentication tag does not verify")

    def _check_fresh(self, node: str, stamp: int, now_ms: int) -> None:
        if abs(now_ms - stamp) > self.window_ms:
            raise ReplayedHeartbeatError(
                f"from {node}: sent {(stamp - now_ms) / 1000:+.1f} s from now, "
                f"outside the {self.window_ms / 1000:g} s window (replayed, or clocks differ)"
            )
        last = self._last_seen.get(node)
        if last is not None and stamp <= last:
            raise ReplayedHeartbeatError(f"from {node}: not newer than its last heartbeat")
        self._last_seen[node] = stamp
        self._last_seen.move_to_end(node)
        if len(self._last_seen) > self.max_senders:
            self._last_seen.popitem(last=False)
