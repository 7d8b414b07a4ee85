"""Logging for the command line: how much (``-v``, ``--log-level``, ``$NODEMESH_LOG_LEVEL``)
and in which shape (``--log-format text|json``, ``$NODEMESH_LOG_FORMAT``).

The options are accepted before and after the sub-command (``nodemesh -v run`` and
``nodemesh run -v``): argparse copies a sub-parser's values over the main parser's, so
the sub-command's copies use their own ``dest`` (counts add up) or ``SUPPRESS`` (given
values win). Only nodemesh's loggers follow the level; other libraries stay at WARNING,
so ``-vv`` is not drowned in asyncio's and aiohttp's debug lines.

Two exceptions to the level, both for a person watching ``nodemesh run``:

- the runtime's "cannot connect to X: why" is shown at the default level, because why a
  node did not connect is the first thing one needs (the library logs it at INFO, so a
  program retrying connects is not flooded);
- the runtime's nodeup/nodedown records are dropped: ``nodemesh run`` prints those
  itself on stdout (:func:`say`), and two lines per event read as two events.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from nodemesh.errors import ConfigError

__all__ = ["add_log_options", "configure", "log_settings", "say"]

ENV_LEVEL = "NODEMESH_LOG_LEVEL"
ENV_FORMAT = "NODEMESH_LOG_FORMAT"
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RUNTIME = "nodemesh.node"

_json = False  # set by configure(): whether say() writes JSON objects


def add_log_options(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """``-v``, ``--log-level`` and ``--log-format`` on the main parser (``sub=False``) or
    on a sub-command's parser."""
    verbose = "sub_verbose" if sub else "verbose"
    default = argparse.SUPPRESS if sub else None
    group = parser.add_argument_group("logging")
    group.add_argument(
        "-v",
        "--verbose",
        dest=verbose,
        action="count",
        default=0,
        help="more log output: -v info, -vv debug",
    )
    group.add_argument(
        "--log-level",
        type=str.lower,
        choices=LEVELS,
        default=default,
        help=f"log level, overrides -v [${ENV_LEVEL}, else warning]",
    )
    group.add_argument(
        "--log-format",
        type=str.lower,
        choices=FORMATS,
        default=default,
        help=f"json: one JSON object per line, for containers [${ENV_FORMAT}, else text]",
    )


def log_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """(level, format) from the options, else the environment. Raises ConfigError naming
    the variable for a value that is not a level or format."""
    env = os.environ if environ is None else environ
    verbose = getattr(args, "verbose", 0) + getattr(args, "sub_verbose", 0)
    name = getattr(args, "log_level", None)
    if name is None and verbose:
        level = logging.WARNING - 10 * min(verbose, 2)
    else:
        name = name or _env_choice(env, ENV_LEVEL, LEVELS) or "warning"
        level = logging.getLevelNamesMapping()[name.upper()]
    fmt = getattr(args, "log_format", None) or _env_choice(env, ENV_FORMAT, FORMATS) or "text"
    return level, fmt


def _env_choice(env: Mapping[str, str], var: str, choices: tuple[str, ...]) -> str | None:
    text = env.get(var, "").strip().lower()
    if not text:
        return None
    if text not in choices:
        raise ConfigError(f"${var}={text!r}: expected one of {', '.join(choices)}")
    return text


def configure(level: int, fmt: str, stream: TextIO | None = None) -> None:
    """Send nodemesh's log records at ``level`` (others at WARNING) to ``stream``
    (stderr) as text lines or JSON objects."""
    global _json
    _json = fmt == "json"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if _json else logging.Formatter(_TEXT))
    handler.addFilter(_CommandLineFilter(level))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("nodemesh").setLevel(level)
    # Below INFO the runtime follows "nodemesh"; above, its INFO records reach the filter,
    # which lets "cannot connect to X: why" through.
    logging.getLogger(_RUNTIME).setLevel(logging.INFO if level > logging.INFO else logging.NOTSET)


class _CommandLineFilter(logging.Filter):
    """The level, plus the two exceptions of the module docstring. Below the level, a
    failed connect is shown once per peer and reason: a topology retries every few
    seconds, and the tenth identical line tells nothing the first did not."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level
        self.shown: dict[str, str] = {}  # peer -> the last failed-connect line shown

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != _RUNTIME:
            return True  # loggers' own levels decide
        message = record.getMessage()
        if message.startswith(("nodeup ", "nodedown ")):
            return False
        if record.levelno >= self.level:
            return True
        if not message.startswith("cannot connect to "):
            return False
        peer = message.removeprefix("cannot connect to ").partition(":")[0]
        if self.shown.get(peer) == message:
            return False
        if len(self.shown) >= 1024:  # names heard by gossip may be bogus and many
            self.shown.clear()
        self.shown[peer] = message
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the
    traceback as ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(getattr(record, "fields", {}))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def _iso(created: float) -> str:
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def say(text: str, *, stdout: bool = False, level: int = logging.INFO, **fields: Any) -> None:
    """Print one of the command's own lines (``started X``, ``nodeup X``), whatever the
    log level: plain text, or under ``--log-format json`` an object shaped like the log
    records with ``fields`` added (``{"event": "nodeup", "node": ...}``)."""
    stream = sys.stdout if stdout else sys.stderr
    if _json:  # the "nodemesh: " of a text line is what "logger" says here
        message = text.removeprefix("nodemesh: ")
        record = logging.LogRecord("nodemesh.cli", level, "", 0, message, None, None)
        record.fields = fields
        text = JsonFormatter().format(record)
    print(text, file=stream, flush=True)
