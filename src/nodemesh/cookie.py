"""Finding the magic cookie, the shared secret of an Erlang cluster.

Order: an explicit cookie, then ``$NODEMESH_COOKIE``, then the cookie file exactly as
OTP 25's ``auth.erl`` (``read_cookie/0``) handles it:

1. ``$HOME/.erlang.cookie``; if absent, ``$XDG_CONFIG_HOME/erlang/.erlang.cookie``
   (``~/.config/erlang/.erlang.cookie`` without the variable);
2. the file must be a regular file, and on Unix readable by its owner only
   (``mode & 0o077 == 0``), else it is refused;
3. its content is a run of printable ASCII (space .. ``~``), optionally followed by
   nothing but newlines, carriage returns and spaces; anything else is "bad characters",
   an empty run is "too short";
4. if neither file exists, ``$HOME/.erlang.cookie`` is created with 20 random uppercase
   letters (no newline) and mode 0400, so that a later ``erl`` uses the same cookie.
   (auth.erl also backdates the file's times to midnight because its generator is
   seeded from the clock; ours comes from :mod:`secrets`, so we do not.)

The cookie never appears in a message, a log or an exception.
"""

from __future__ import annotations

import os
import secrets
import stat
import string
from collections.abc import Mapping
from pathlib import Path

from nodemesh.errors import ConfigError

__all__ = ["COOKIE_ENV", "check_cookie", "resolve_cookie"]

COOKIE_ENV = "NODEMESH_COOKIE"
_FILE_NAME = ".erlang.cookie"
_MAX_LENGTH = 255  # -setcookie makes the cookie an atom


def resolve_cookie(
    explicit: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    home: Path | None = None,
) -> str:
    """Return the cookie to use: ``explicit``, ``$NODEMESH_COOKIE`` or the cookie file.

    ``home`` defaults to ``$HOME`` from ``environ``. Raises
    :class:`~nodemesh.errors.ConfigError` for an empty or malformed cookie and for a
    cookie file that cannot be read, is not private or cannot be created.
    """
    if explicit is not None:
        return check_cookie(explicit, source="the cookie given")
    from_env = environ.get(COOKIE_ENV)
    if from_env is not None:
        return check_cookie(from_env, source=f"${COOKIE_ENV}")
    home_dir = home if home is not None else _home(environ)
    home_file = home_dir / _FILE_NAME
    config = environ.get("XDG_CONFIG_HOME") or str(home_dir / ".config")
    for path in (home_file, Path(config) / "erlang" / _FILE_NAME):
        cookie = _read_cookie_file(path)
        if cookie is not None:
            return cookie
    _create_cookie_file(home_file)
    cookie = _read_cookie_file(home_file)
    if cookie is None:  # pragma: no cover - removed between creating and reading
        raise ConfigError(f"cookie file {home_file} vanished right after it was created")
    return cookie


def check_cookie(cookie: str, *, source: str = "the cookie") -> str:
    """Return ``cookie`` if it can be a cookie, else raise ConfigError.

    A cookie is 1..255 printable Latin-1 characters: the handshake digests its Latin-1
    bytes, as ``erlang:md5(atom_to_list(Cookie))`` does.
    """
    if not isinstance(cookie, str):
        raise ConfigError(f"{source} must be a str, not {type(cookie).__name__}")
    if not cookie:
        raise ConfigError(f"{source} is empty; a cookie needs at least one character")
    if len(cookie) > _MAX_LENGTH:
        raise ConfigError(f"{source} is longer than {_MAX_LENGTH} characters")
    for index, char in enumerate(cookie):
        if not (" " <= char <= "~" or "\xa0" <= char <= "\xff"):
            raise ConfigError(
                f"{source} has a character at position {index} that is not printable "
                "Latin-1 (a control character, a newline or a character above U+00FF)"
            )
    return cookie


def _home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    if home:
        return Path(home)
    try:
        return Path.home()
    except RuntimeError as exc:
        raise ConfigError(
            f"no cookie given, ${COOKIE_ENV} unset and no home directory for {_FILE_NAME}"
        ) from exc


def _read_cookie_file(path: Path) -> str | None:
    """The cookie in ``path``, or None if there is no such file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read cookie file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"cookie file {path} is not a regular file")
    if os.name == "posix" and info.st_mode & 0o077:
        raise ConfigError(
            f"cookie file {path} must be accessible by its owner only, like Erlang demands "
            f"(mode is {stat.S_IMODE(info.st_mode):04o}; run: chmod 400 {path})"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read cookie file {path}: {exc.strerror}") from exc
    return _parse_cookie_file(data, path)


def _parse_cookie_file(data: bytes, path: Path) -> str:
    """auth.erl's check_cookie/2: printable ASCII, then only newlines and spaces."""
    end = 0
    while end < len(data) and 0x20 <= data[end] <= 0x7E:
        end += 1
    if data[end:].strip(b"\r\n "):
        raise ConfigError(
            f"bad characters in cookie file {path}: after the cookie only newlines and "
            "spaces may follow, and the cookie itself must be printable ASCII"
        )
    if end == 0:
        raise ConfigError(f"cookie file {path} is empty (too short cookie string)")
    return data[:end].decode("ascii")


def _create_cookie_file(path: Path) -> None:
    """Write 20 random uppercase letters to a new ``path`` with mode 0400."""
    cookie = "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    except FileExistsError:
        return  # someone else (an erl starting now?) created it: use theirs
    except OSError as exc:
        raise ConfigError(f"cannot create cookie file {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(cookie.encode("ascii"))
        os.chmod(path, 0o400)  # exactly 0400 whatever the umask
    except OSError as exc:
        raise ConfigError(f"cannot write cookie file {path}: {exc.strerror}") from exc
