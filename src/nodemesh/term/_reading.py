"""What every reader of the external term format shares: buffer types, bounds checks,
the bounded caches of decoded values.

A reader is ``(data, pos, budget) -> (value, end)``: ``pos`` is the offset just after the
tag byte, ``end`` the offset after the term, ``budget`` the nesting still allowed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypeAlias

from nodemesh.errors import DecodeError
from nodemesh.term.types import Term

Buffer: TypeAlias = bytes | memoryview
Reader: TypeAlias = Callable[[Buffer, int, int], tuple[Term, int]]

u32 = struct.Struct(">I").unpack_from

#: What a cache lookup returns for a miss: cached values may be None (see ``none_atom``).
MISS: Any = object()

#: Entries per cache of decoded atoms and pids (keyed by their encoded bytes, always
#: bytes: a memoryview of a bytearray is unhashable), cleared when full. They spare
#: decoding the same few names again and again, and never grow past the bound.
CACHE_SIZE = 1024


def remember(cache: dict[bytes, Any], key: Buffer, value: Any) -> None:
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[bytes(key)] = value


def check_end(data: Buffer, end: int, tagpos: int) -> None:
    if end > len(data):
        raise DecodeError(
            f"tag {data[tagpos]} at offset {tagpos} needs {end - tagpos} bytes, "
            f"only {len(data) - tagpos} remain"
        )
