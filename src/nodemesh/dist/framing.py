"""Frame splitting for an established distribution connection (no I/O).

After the handshake every frame is a 4-byte big-endian length followed by that many bytes
(``erl_dist_protocol``, "Protocol between Connected Nodes"). A zero-length frame is a
tick: it only proves the peer is alive.

nodemesh advertises neither DIST_HDR_ATOM_CACHE nor FRAGMENTS, so every non-empty frame
is a pass-through message: the byte 112 (``'p'``), the control term, and for some control
messages a second term, the payload.
"""

from __future__ import annotations

import struct

from nodemesh.errors import RemoteProtocolError

__all__ = ["TICK", "FrameReader", "frame_header"]

#: What a tick looks like on the wire.
TICK = b"\x00\x00\x00\x00"

# The length of an incomplete frame, read once per feed.
_length_at = struct.Struct(">I").unpack_from


def frame_header(size: int) -> bytes:
    """The 4-byte length prefix of a frame of ``size`` bytes."""
    return size.to_bytes(4, "big")


class FrameReader:
    """Turn a byte stream into frame payloads.

    ``feed(data)`` returns the payloads that are now complete, in order, as ``bytes``
    (one copy of each frame: the term decoder reads ``bytes`` fastest, and a payload is
    safe to keep). A tick yields an empty payload. A frame larger
    than ``max_frame_size`` raises :class:`RemoteProtocolError` before anything is
    buffered for it, so a peer cannot make us allocate more than that.
    """

    __slots__ = ("_buf", "_max", "_need")

    def __init__(self, max_frame_size: int) -> None:
        self._buf = bytearray()
        self._max = max_frame_size
        self._need = 0  # bytes the buffer must hold before another frame can complete

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the payloads of every frame completed by them."""
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return []  # a large frame still arriving: do not copy the buffer yet
            data = bytes(self._buf)
            self._buf.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        frames: list[bytes] = []
        pos = _split(data, frames, self._max)
        end = len(data)
        # The next frame's length prefix, once whole, says how much must arrive first.
        self._need = 4 + _length_at(data, pos)[0] if end - pos >= 4 else 4
        if pos < end:
            self._buf += memoryview(data)[pos:]
        return frames


def _split(data: bytes, frames: list[bytes], limit: int) -> int:
    """Append the payload of every whole frame of ``data`` to ``frames``; return the
    offset of the first incomplete one. Raises RemoteProtocolError for a length above
    ``limit``, complete or not. Runs once per frame received: typed by framing.pxd."""
    raw = data  # compiled: a C pointer, sliced only within the bounds checked below
    end = len(data)
    pos = 0
    while end - pos >= 4:
        size = data[pos]
        size = size << 24 | data[pos + 1] << 16 | data[pos + 2] << 8 | data[pos + 3]
        if size > limit:
            raise RemoteProtocolError(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        if end - pos - 4 < size:
            break
        frames.append(raw[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return pos
