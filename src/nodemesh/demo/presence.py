"""Who is online: the people with a page open, and the node each page is served by.

Each node knows its own pages and announces them on topic ``room:lobby:presence`` as
``%{"node" => Name, "people" => [Author, ...]}``: when they change, when a node newly
appears among the PubSub's remote members (so a newcomer learns everyone), and every
few seconds (a newcomer whose PubSub membership was not yet known to a sender still
hears it soon). A node that goes down takes its people with it. Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESENCE_TOPIC", "Presence"]

PRESENCE_TOPIC = "room:lobby:presence"
MAX_PEOPLE = 200  # per announcing node: a bound on what one peer can make pages show


class Presence:
    """This node's pages (``page id -> author``) and what other nodes announced."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._pages: dict[int, str] = {}
        self._remote: dict[str, tuple[str, ...]] = {}

    def named(self, page: int, author: str) -> bool:
        """Page ``page`` is open under ``author``; True when the people here changed."""
        before = self.local()
        self._pages[page] = author.strip()[:40] or "anonymous"
        return self.local() != before

    def closed(self, page: int) -> bool:
        """Page ``page`` was closed; True when the people here changed."""
        before = self.local()
        self._pages.pop(page, None)
        return self.local() != before

    def local(self) -> list[str]:
        """The people on this node's pages, sorted, each once."""
        return sorted(set(self._pages.values()), key=str.casefold)

    def announcement(self) -> dict[str, Any]:
        """The term this node broadcasts about its people."""
        return {"node": self.node, "people": self.local()}

    def heard(self, term: Any) -> bool:
        """Take another node's announcement; True when it changed what pages show.
        Anything not shaped like an announcement is ignored (False)."""
        if not isinstance(term, dict):
            return False
        fields = {_text(key): value for key, value in term.items()}
        node, people = _text(fields.get("node"), 255), fields.get("people")
        if node is None or node == self.node or not isinstance(people, list):
            return False
        names = tuple(sorted({n for n in map(_text, people[:MAX_PEOPLE]) if n}, key=str.casefold))
        if self._remote.get(node) == names:
            return False
        self._remote[node] = names
        return True

    def forget(self, node: str | None = None) -> bool:
        """Drop the people of ``node`` (None: of every other node); True if any."""
        if node is None:
            had, self._remote = bool(self._remote), {}
            return had
        return self._remote.pop(node, None) is not None

    def people(self) -> list[dict[str, str]]:
        """Everyone, as pages show them: this node's first, then by node and name."""
        rows = [{"name": name, "node": self.node} for name in self.local()]
        for node in sorted(self._remote):
            rows += [{"name": name, "node": node} for name in self._remote[node]]
        return rows


def _text(value: Any, limit: int = 40) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")[:limit]
    if isinstance(value, str):
        return str(value)[:limit]
    return None
