"""Chat messages as Erlang terms on topic ``room:lobby``, and as JSON for the page.

On the wire a chat message is a map with binary keys, which an Elixir subscriber reads
as ``%{"author" => ..., "text" => ..., "node" => ..., "at" => ms, "id" => ...}``. A bare
binary is a message too (what ``nodemesh publish room:lobby TEXT`` or Elixir's
``Phoenix.PubSub.broadcast(..., "room:lobby", "hi")`` sends), shown without an author.
Anything else on the topic is not chat and is dropped.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

__all__ = ["MAX_AUTHOR", "MAX_TEXT", "chat_message", "from_term", "to_term"]

MAX_TEXT = 2000  # characters; longer texts are cut, so one page cannot flood the others
MAX_AUTHOR = 40


def chat_message(author: str, text: str, node: str, now: float | None = None) -> dict[str, Any]:
    """A new message typed on a page of ``node``, as the page's JSON sees it."""
    return {
        "id": uuid.uuid4().hex,
        "author": author.strip()[:MAX_AUTHOR] or "anonymous",
        "text": text[:MAX_TEXT],
        "node": node,
        "at": int((time.time() if now is None else now) * 1000),
    }


def to_term(message: dict[str, Any]) -> dict[str, Any]:
    """The term broadcast for ``message``: ``str`` values travel as UTF-8 binaries."""
    return {key: message[key] for key in ("id", "author", "text", "node", "at")}


def from_term(term: Any, now: float | None = None) -> dict[str, Any] | None:
    """The page's JSON for a term received on the topic, or None when it is not chat."""
    if isinstance(term, bytes):
        text = term.decode("utf-8", "replace")
        return {
            "id": uuid.uuid4().hex,
            "author": "",
            "text": text[:MAX_TEXT],
            "node": "",
            "at": int((time.time() if now is None else now) * 1000),
        }
    if not isinstance(term, dict):
        return None
    fields = {_text(key): value for key, value in term.items()}
    at = fields.get("at")
    if not isinstance(at, int) or isinstance(at, bool):
        return None
    values = {name: _text(fields.get(name)) for name in ("id", "author", "text", "node")}
    if any(value is None for value in values.values()):
        return None
    message: dict[str, Any] = {**values, "at": at}
    message["text"] = message["text"][:MAX_TEXT]
    message["author"] = message["author"][:MAX_AUTHOR]
    return message


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):  # atoms decode as Atom, a str
        return str(value)
    return None
