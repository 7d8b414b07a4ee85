"""Time the term codec on a typical distribution message (not a test).

The control message of a REG_SEND-like send, ``(6, From, '', chat)``, and its payload
``(chat, <<"room:lobby">>, <<"hello from a node">>, 12345)``, each with its own 131,
as the distribution layer frames them. Prints microseconds per operation.

    python bench/codec.py [--number N]
"""

from __future__ import annotations

import argparse
import timeit

from nodemesh.term import Atom, Pid, decode_from, encode_into

CONTROL = (6, Pid(Atom("nodemesh@host"), 85, 0, 1_700_000_000), Atom(""), Atom("chat"))
PAYLOAD = (Atom("chat"), b"room:lobby", b"hello from a node", 12345)


def encode_pair() -> bytearray:
    """Both terms appended to one frame buffer, as the distribution layer sends them."""
    out = bytearray()
    encode_into(CONTROL, out)
    encode_into(PAYLOAD, out)
    return out


FRAME = bytes(encode_pair())


def decode_pair() -> None:
    """Control message, then payload, read in place from the frame."""
    _, end = decode_from(FRAME, 0)
    decode_from(FRAME, end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000, help="operations per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best is kept")
    args = parser.parse_args()
    print(f"frame: {len(FRAME)} bytes (control + payload)")
    for name, func in (("encode pair", encode_pair), ("decode pair", decode_pair)):
        best = min(timeit.repeat(func, number=args.number, repeat=args.repeat))
        print(f"{name}: {best / args.number * 1e6:.2f} µs/op")


if __name__ == "__main__":
    main()
