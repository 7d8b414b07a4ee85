"""Reading ``.hosts.erlang``: a file of Erlang terms, one host name per term.

``net_adm:host_file/0`` reads it with ``file:consult/1``; a line looks like
``'app1.example.com'.`` Only what a host name can be is accepted here: quoted atoms,
plain atoms and strings, each ended by a dot, with ``%`` comments. The reader never
evaluates anything; anything else is a :class:`~nodemesh.errors.DiscoveryError` that
names the line.
"""

from __future__ import annotations

import re
from pathlib import Path

from nodemesh.errors import DiscoveryError

__all__ = ["MAX_HOSTS_FILE", "find_hosts_file", "parse_hosts", "read_hosts_file"]

MAX_HOSTS_FILE = 1 << 20
HOSTS_FILE = ".hosts.erlang"

_SPACE = re.compile(r"(?:\s+|%[^\n]*)+")
_ATOM = re.compile(r"[a-z][A-Za-z0-9_@]*")
_QUOTED = re.compile(r"""'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)\"""")
_END = re.compile(r"\.(?=\s|%|$)")
_ESCAPES = {"n": "\n", "t": "\t", "s": " ", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def find_hosts_file(cwd: Path | None = None, home: Path | None = None) -> Path | None:
    """``.hosts.erlang`` in the working directory, else in the home directory, as
    ``net_adm:host_file/0`` looks (it then tries the OTP root, which Python has not)."""
    for folder in (cwd or Path.cwd(), home or Path.home()):
        candidate = folder / HOSTS_FILE
        if candidate.is_file():
            return candidate
    return None


def read_hosts_file(path: Path) -> list[str]:
    """The host names in the file at ``path``. Raises DiscoveryError."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_HOSTS_FILE + 1)
    except OSError as exc:
        raise DiscoveryError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_HOSTS_FILE:
        raise DiscoveryError(f"{path} is larger than {MAX_HOSTS_FILE} bytes")
    try:
        return parse_hosts(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DiscoveryError(f"{path} is not UTF-8 text: {exc}") from exc
    except DiscoveryError as exc:
        raise DiscoveryError(f"{path}: {exc}") from None


def parse_hosts(text: str) -> list[str]:
    """Host names from the text of a hosts file (``'a.example.com'.`` per term)."""
    hosts: list[str] = []
    pos = _skip(text, 0)
    while pos < len(text):
        quoted = _QUOTED.match(text, pos)
        if quoted is not None:
            host = _unescape(quoted.group(1) if quoted.group(1) is not None else quoted.group(2))
        else:
            atom = _ATOM.match(text, pos)
            if atom is None:
                raise _error(text, pos, "expected a host name such as 'app.example.com'.")
            quoted = atom
            host = atom.group(0)
        pos = _skip(text, quoted.end())
        end = _END.match(text, pos)
        if end is None:
            raise _error(text, pos, f"expected '.' after {host!r}")
        if not host or any(c.isspace() or not c.isprintable() for c in host):
            raise _error(text, pos, f"{host!r} is not a host name")
        hosts.append(host)
        pos = _skip(text, end.end())
    return hosts


def _skip(text: str, pos: int) -> int:
    space = _SPACE.match(text, pos)
    return space.end() if space else pos


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _error(text: str, pos: int, message: str) -> DiscoveryError:
    line = text.count("\n", 0, pos) + 1
    return DiscoveryError(f"line {line}: {message}")
