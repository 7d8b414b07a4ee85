"""Cookie resolution: explicit, environment, and the cookie file as Erlang's auth.erl does it."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from nodemesh.cookie import check_cookie, resolve_cookie
from nodemesh.errors import ConfigError
from support.erlang import require_erlang


def write_cookie(path: Path, data: bytes, mode: int = 0o400) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_explicit_cookie_wins(tmp_path: Path) -> None:
    """An explicit cookie is used even when the environment and a file have others."""
    write_cookie(tmp_path / ".erlang.cookie", b"FILE")
    env = {"NODEMESH_COOKIE": "ENV"}
    assert resolve_cookie("given", environ=env, home=tmp_path) == "given"


def test_environment_beats_the_file(tmp_path: Path) -> None:
    """$NODEMESH_COOKIE is used before the cookie file."""
    write_cookie(tmp_path / ".erlang.cookie", b"FILE")
    assert resolve_cookie(environ={"NODEMESH_COOKIE": "ENV"}, home=tmp_path) == "ENV"


@pytest.mark.parametrize(
    ("cookie", "fragment"),
    [("", "empty"), ("a\nb", "position 1"), ("x" * 256, "longer than 255"), ("\u0100", "above")],
)
def test_bad_explicit_cookies_are_config_errors(cookie: str, fragment: str) -> None:
    """Empty, multi-line, overlong or non-Latin-1 cookies raise ConfigError."""
    with pytest.raises(ConfigError, match=fragment):
        resolve_cookie(cookie, environ={})


def test_empty_environment_cookie_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    """NODEMESH_COOKIE set but empty raises ConfigError naming the variable."""
    with pytest.raises(ConfigError, match=r"\$NODEMESH_COOKIE is empty"):
        resolve_cookie(environ={"NODEMESH_COOKIE": ""}, home=tmp_path)


def test_printable_latin1_cookies_are_accepted() -> None:
    """Spaces and Latin-1 letters are fine in a given cookie (the digest uses Latin-1)."""
    assert check_cookie("a b\xe9~") == "a b\xe9~"


@pytest.mark.parametrize(
    ("content", "cookie"),
    [
        (b"ABCDEF", "ABCDEF"),
        (b"ABCDEF\n", "ABCDEF"),
        (b"ABCDEF\r\n\n  \n", "ABCDEF"),
        (b"with space  \n", "with space  "),  # auth.erl keeps spaces before the newline
        (b"~!#$%", "~!#$%"),
    ],
)
def test_cookie_file_is_read_like_auth_erl(tmp_path: Path, content: bytes, cookie: str) -> None:
    """Printable ASCII, then only newlines, returns and spaces, which are dropped."""
    write_cookie(tmp_path / ".erlang.cookie", content)
    assert resolve_cookie(environ={}, home=tmp_path) == cookie


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"SECRET\nMORE", "bad characters"),
        (b"SEC\tRET", "bad characters"),
        (b"SECR\xc3\xa9T", "bad characters"),
    ],
)
def test_malformed_cookie_files_are_refused(tmp_path: Path, content: bytes, fragment: str) -> None:
    """Empty files and bad characters raise ConfigError without quoting the content."""
    write_cookie(tmp_path / ".erlang.cookie", content)
    with pytest.raises(ConfigError, match=fragment) as raised:
        resolve_cookie(environ={}, home=tmp_path)
    assert "SEC" not in str(raised.value)


@pytest.mark.skipif(os.name != "posix", reason="Erlang checks permissions on Unix only")
@pytest.mark.parametrize("mode", [0o440, 0o404, 0o644, 0o600 | 0o020])
def test_cookie_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A cookie file with any group/other permission bit is refused, with the chmod to run."""
    path = write_cookie(tmp_path / ".erlang.cookie", b"SECRET", mode)
    with pytest.raises(ConfigError, match=f"owner only.*chmod 400 {re.escape(str(path))}"):
        resolve_cookie(environ={}, home=tmp_path)


def test_owner_only_modes_are_fine(tmp_path: Path) -> None:
    """Mode 0600 is accepted as well as 0400."""
    write_cookie(tmp_path / ".erlang.cookie", b"SECRET", 0o600)
    assert resolve_cookie(environ={}, home=tmp_path) == "SECRET"


def test_a_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    """A cookie 'file' that is not a regular file raises ConfigError."""
    (tmp_path / ".erlang.cookie").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        resolve_cookie(environ={}, home=tmp_path)


def test_an_unreadable_location_is_a_config_error(tmp_path: Path) -> None:
    """An OS error while looking at the file (home is a file here) becomes ConfigError."""
    home = tmp_path / "not-a-dir"
    home.write_text("x")
    with pytest.raises(ConfigError, match="cannot read cookie file"):
        resolve_cookie(environ={}, home=home)


def test_xdg_cookie_file_is_the_fallback(tmp_path: Path) -> None:
    """Without ~/.erlang.cookie, $XDG_CONFIG_HOME/erlang/.erlang.cookie is used."""
    write_cookie(tmp_path / "xdg" / "erlang" / ".erlang.cookie", b"XDG")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert resolve_cookie(environ=env, home=tmp_path / "home") == "XDG"


def test_xdg_default_is_dot_config(tmp_path: Path) -> None:
    """Without $XDG_CONFIG_HOME the fallback is ~/.config/erlang/.erlang.cookie."""
    write_cookie(tmp_path / ".config" / "erlang" / ".erlang.cookie", b"CONF")
    assert resolve_cookie(environ={}, home=tmp_path) == "CONF"


def test_home_comes_from_the_environment(tmp_path: Path) -> None:
    """Without home=, $HOME of the given environment is searched."""
    write_cookie(tmp_path / ".erlang.cookie", b"HOME")
    assert resolve_cookie(environ={"HOME": str(tmp_path)}) == "HOME"


def test_missing_cookie_file_is_created_like_erlang_does(tmp_path: Path) -> None:
    """No file anywhere: ~/.erlang.cookie gets 20 random uppercase letters, mode 0400."""
    cookie = resolve_cookie(environ={}, home=tmp_path)
    path = tmp_path / ".erlang.cookie"
    assert re.fullmatch("[A-Z]{20}", cookie)
    assert path.read_bytes() == cookie.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert resolve_cookie(environ={}, home=tmp_path) == cookie


def test_creation_failure_is_a_config_error(tmp_path: Path) -> None:
    """When the file cannot be created (no such directory), ConfigError says so."""
    with pytest.raises(ConfigError, match="cannot create cookie file"):
        resolve_cookie(environ={}, home=tmp_path / "missing" / "dir")


def erl_cookie(home: Path) -> str:
    """The cookie a distributed erl uses with HOME=home (it creates the file if needed)."""
    erl = require_erlang()
    proc = subprocess.run(
        [erl, "-sname", f"nmcookie{os.getpid()}", "-noshell", "-eval",
         'io:format("~s~n", [erlang:get_cookie()]), halt().'],
        env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")},
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return proc.stdout.strip()


@pytest.mark.interop
def test_erlang_and_nodemesh_agree_on_cookie_files(tmp_path: Path) -> None:
    """erl reads the file we create, and we read the file erl creates, to the same cookie."""
    ours = tmp_path / "ours"
    ours.mkdir()
    created_by_us = resolve_cookie(environ={}, home=ours)
    assert erl_cookie(ours) == created_by_us
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    created_by_erl = erl_cookie(theirs)
    assert resolve_cookie(environ={}, home=theirs) == created_by_erl
