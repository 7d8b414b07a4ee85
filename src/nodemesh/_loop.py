"""The event loop the command line runs a node on: uvloop when installed, else asyncio's.

``pip install 'nodemesh[speed]'`` installs uvloop; ``NODEMESH_EVENT_LOOP=asyncio`` keeps
asyncio's own loop even then. Library users choose their loop themselves: nodemesh uses
only the asyncio API, so a node runs on either (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["event_loop_name", "loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory if it is installed and not refused, else None (asyncio's)."""
    if os.environ.get("NODEMESH_EVENT_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def event_loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: the loop :func:`run` uses."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
