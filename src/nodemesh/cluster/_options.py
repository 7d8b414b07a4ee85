"""Turning TOML tables, Python dicts and environment text into option dataclasses.

Each strategy declares its options as a frozen dataclass; the annotations are the schema.
:func:`build_options` checks every value against its field's annotation and converts it
(a TOML array becomes a tuple, an integer is accepted where a float is expected), so a
strategy's ``__post_init__`` only has to check ranges. Values read from the environment
arrive as :class:`EnvText` and are parsed from text (``"5000"``, ``"true"``, ``"a,b"``).

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``None``, ``Literal[...]``,
unions of these, ``tuple[X, ...]``, ``list[X]``, ``frozenset[X]``, ``Any`` and nested
dataclasses (from a table). Errors are :class:`~nodemesh.errors.ConfigError` naming the
place (``topology 'local': option 'port'``) and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from nodemesh.errors import ConfigError

__all__ = ["EnvText", "build_options", "describe_type", "option_names"]

T = TypeVar("T")
_MISSING = dataclasses.MISSING
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class EnvText(str):
    """A value read from an environment variable: parsed from text by the converter.

    ``source`` is the variable's name (or the ``--option`` given on the command line),
    quoted in error messages.
    """

    source: str

    def __new__(cls, value: str, source: str) -> EnvText:
        self = super().__new__(cls, value)
        self.source = source
        return self

    @property
    def shown(self) -> str:
        """The source as messages quote it: ``$VAR``, or a command-line ``--option``."""
        return self.source if self.source.startswith("-") else f"${self.source}"


class _Mismatch(Exception):
    """A value does not fit an annotation (internal: becomes a ConfigError)."""


def option_names(cls: type[Any]) -> list[str]:
    """The option names a dataclass accepts, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def build_options(cls: type[T], values: Mapping[str, Any], *, where: str) -> T:
    """Build the dataclass ``cls`` from ``values``, checking names and types.

    ``where`` names the place in messages, e.g. ``"topology 'local'"``. Raises
    :class:`ConfigError` for an unknown or missing option, a value of the wrong type, or
    a value the dataclass itself refuses (its ``__post_init__`` raising ConfigError,
    ValueError or TypeError).
    """
    if not dataclasses.is_dataclass(cls):
        raise ConfigError(f"{where}: {cls.__qualname__} is not a dataclass of options")
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: options must be a table, got {_show(values)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in values:
        if key not in fields:
            raise ConfigError(f"{where}: unknown option {key!r}{_suggest(key, fields)}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in values:
            kwargs[name] = convert(values[name], hints[name], f"{where}: option {name!r}")
        elif field.default is _MISSING and field.default_factory is _MISSING:
            raise ConfigError(f"{where}: option {name!r} is required")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if where in message else f"{where}: {message}") from exc
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def convert(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``hint`` and return it converted."""
    try:
        return _convert(value, hint)
    except _Mismatch:
        source = f" (from {value.shown})" if isinstance(value, EnvText) else ""
        raise ConfigError(
            f"{where} must be {describe_type(hint)}, got {_show(value)}{source}"
        ) from None


def _convert(value: Any, hint: Any) -> Any:
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, typing.get_args(hint))
    if origin is Literal:
        return _convert_literal(value, typing.get_args(hint))
    if origin in (tuple, list, frozenset):
        return _convert_collection(value, origin, typing.get_args(hint))
    if hint is type(None):
        if value is None or (isinstance(value, EnvText) and value.strip().lower() == "none"):
            return None
        raise _Mismatch
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, Mapping):
            raise _Mismatch
        return build_options(hint, value, where="table")
    if hint in (str, int, float, bool):
        return _convert_scalar(value, hint)
    raise ConfigError(f"options use an annotation the converter does not know: {hint!r}")


def _convert_scalar(value: Any, hint: type) -> Any:
    if isinstance(value, EnvText):
        return _parse_text(str(value), hint)
    if hint is float and type(value) is int:
        return float(value)
    if type(value) is not hint and not (hint is str and isinstance(value, str)):
        raise _Mismatch  # no bool for int, no int for str: TOML values are typed
    return value


def _parse_text(text: str, hint: type) -> Any:
    text = text.strip() if hint is not str else text
    if hint is str:
        return text
    if hint is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _Mismatch
    try:
        return hint(text.replace("_", ""))
    except ValueError:
        raise _Mismatch from None


def _convert_union(value: Any, members: tuple[Any, ...]) -> Any:
    # Text fits str always, so for environment values str is tried last: "3" is 3 for
    # ``str | int``, and "none" is None for ``str | None``.
    if isinstance(value, EnvText):
        members = tuple(sorted(members, key=lambda m: (m is str, m is type(None))))
    for member in members:
        try:
            return _convert(value, member)
        except _Mismatch:
            continue
    raise _Mismatch


def _convert_literal(value: Any, allowed: tuple[Any, ...]) -> Any:
    for choice in allowed:
        if isinstance(value, EnvText):
            if str(value).strip() == str(choice):
                return choice
        elif type(value) is type(choice) and value == choice:
            return choice
    raise _Mismatch


def _convert_collection(value: Any, origin: type, args: tuple[Any, ...]) -> Any:
    item = args[0] if args else Any
    if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
        raise ConfigError("options may use tuple[X, ...] but not fixed-length tuples")
    if isinstance(value, EnvText):
        parts = [p.strip() for p in str(value).split(",")]
        items: list[Any] = [EnvText(p, value.source) for p in parts if p]
    elif isinstance(value, list | tuple | frozenset | set):
        items = list(value)
    else:
        raise _Mismatch
    converted = [_convert(v, item) for v in items]
    return origin(converted)


def describe_type(hint: Any) -> str:
    """How a user should read an annotation: ``an integer``, ``a list of strings``..."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(m) for m in typing.get_args(hint))
    if origin is Literal:
        return " or ".join(repr(c) if isinstance(c, str) else str(c) for c in hint.__args__)
    if origin in (tuple, list, frozenset):
        args = typing.get_args(hint)
        item = describe_type(args[0]) if args else "anything"
        return f"a list of {_plural(item)}"
    names: dict[Any, str] = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        type(None): "none",
    }
    if hint in names:
        return names[hint]
    if dataclasses.is_dataclass(hint):
        return "a table"
    return "anything" if hint is Any else repr(hint)


def _plural(text: str) -> str:
    plural = {"a string": "strings", "an integer": "integers", "a number": "numbers"}
    return plural.get(text, text)


def _show(value: Any) -> str:
    if isinstance(value, EnvText):
        return repr(str(value))
    kinds: dict[type, str] = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        tuple: "list",
        dict: "table",
    }
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"the {kind} {shown}"


def _suggest(key: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    valid = ", ".join(known) if known else "none"
    return f"{hint}; valid options: {valid}"
