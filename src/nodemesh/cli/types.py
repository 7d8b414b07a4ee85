"""Argument types for the command line: a wrong value is argparse's one-line usage error
naming the option ("argument --port: '99999' is not a TCP port number"), exit 2."""

from __future__ import annotations

import argparse
import math

__all__ = ["count", "port", "seconds", "wait"]


def port(text: str) -> int:
    """A TCP/UDP port number, 0..65535 (0: any free one)."""
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port number (0..65535)")
    return int(text)


def seconds(text: str) -> float:
    """A positive number of seconds."""
    value = _float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def wait(text: str) -> float:
    """A number of seconds to listen, 0 or more."""
    value = _float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def count(text: str) -> int:
    """A whole number, 0 or more."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return int(text)
