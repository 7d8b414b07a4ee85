"""Fuzz the term decoder: any bytes give a value or DecodeError, and a decoded value
re-encodes to an equal one. Not a pytest module (no ``test_`` prefix); run it directly::

    python tests/term/fuzz_term.py -runs=100000 [corpus_dir ...]

With atheris installed this is coverage-guided libFuzzer (its flags apply); without it,
a plain random-mutation loop runs ``-runs`` inputs. Without a corpus directory, a
temporary one is seeded with encodings of a few typical terms.
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

if atheris is not None:
    with atheris.instrument_imports():
        from nodemesh.errors import DecodeError
        from nodemesh.term import DecodeLimits, decode, encode
        from nodemesh.term import types as t
else:
    from nodemesh.errors import DecodeError
    from nodemesh.term import DecodeLimits, decode, encode
    from nodemesh.term import types as t

LIMITS = DecodeLimits(max_depth=64, max_decompressed_size=1 << 20)
NODE = t.Atom("fuzz@host")
SEEDS = [
    (6, t.Pid(NODE, 85, 0, 1), t.Atom(""), t.Atom("chat")),
    (t.Atom("chat"), b"room:lobby", b"hello from a node", 12345),
    [1, 300, 2**70, -(2**70), 1.5, [], "text", [1, 2, 3], t.ImproperList([1], t.Atom("t"))],
    {t.Atom("k"): (t.Reference(NODE, 4, (1, 2, 3)), t.Port(NODE, 9, 1)), (1,): {}},
    (t.BitBinary(b"\xf0", 4), t.ExportFun(t.Atom("lists"), t.Atom("map"), 2), True, None),
]


def check(data: bytes) -> None:
    """The property under test, for one input."""
    for candidate in (data, b"\x83" + data):
        try:
            value = decode(candidate, limits=LIMITS)
        except DecodeError:
            continue
        again = decode(encode(value), limits=LIMITS)
        if again != value:
            raise AssertionError(f"{value!r:.200} re-decoded as {again!r:.200}")


def test_one_input(data: bytes) -> None:
    """libFuzzer's entry point."""
    check(data)


def _seed_dir() -> str:
    seeds = Path(tempfile.mkdtemp(prefix="fuzz_term_"))
    for index, term in enumerate(SEEDS):
        (seeds / f"seed{index}").write_bytes(encode(term)[1:])
    return str(seeds)


def _random_loop(runs: int) -> None:
    """No atheris: mutate seed encodings at random (no coverage guidance)."""
    rng = random.Random(0)
    pool = [encode(term) for term in SEEDS]
    for _ in range(runs):
        data = bytearray(rng.choice(pool))
        for _ in range(rng.randint(1, 4)):
            index = rng.randrange(len(data) + 1)
            if rng.random() < 0.5 and index < len(data):
                data[index] = rng.randrange(256)
            elif rng.random() < 0.5:
                data.insert(index, rng.randrange(256))
            elif index < len(data):
                del data[index]
        check(bytes(data))


def main(argv: list[str]) -> None:
    if atheris is None:
        runs = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("-runs=")), 10_000)
        print(f"atheris is not installed: {runs} random mutations instead", file=sys.stderr)
        _random_loop(runs)
        return
    if not any(not arg.startswith("-") for arg in argv[1:]):
        corpus = _seed_dir()
        print(f"corpus (seeded, grows as the fuzzer runs): {corpus}", file=sys.stderr)
        argv = [*argv, corpus]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
