"""What a doctor check returns: a status, one line of what was found, one line of fix."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CheckResult", "Status", "verdict"]


class Status(enum.Enum):
    """PASS: fine. WARN: works here but may bite (or could not be checked). FAIL: this
    stops nodes from connecting."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One finding. ``check`` names what was checked (``"EPMD 10.0.0.5:4369"``),
    ``detail`` says what was found, ``fix`` how to fix it (empty for PASS)."""

    check: str
    status: Status
    detail: str
    fix: str = ""

    @classmethod
    def ok(cls, check: str, detail: str) -> CheckResult:
        return cls(check, Status.PASS, detail)

    @classmethod
    def warn(cls, check: str, detail: str, fix: str = "") -> CheckResult:
        return cls(check, Status.WARN, detail, fix)

    @classmethod
    def fail(cls, check: str, detail: str, fix: str) -> CheckResult:
        return cls(check, Status.FAIL, detail, fix)


def verdict(results: Iterable[CheckResult]) -> str:
    """The closing line: how many problems stop nodes from connecting, and warnings."""
    results = list(results)
    fails = sum(r.status is Status.FAIL for r in results)
    warns = sum(r.status is Status.WARN for r in results)
    warnings = f"{warns} warning{'s' if warns != 1 else ''}"
    if fails:
        problems = f"{fails} problem stops" if fails == 1 else f"{fails} problems stop"
        return (
            f"verdict: BROKEN - {problems} nodes from connecting; fix the FAIL lines ({warnings})"
        )
    if warns:
        return f"verdict: OK with {warnings} - nothing found that stops nodes from connecting"
    return "verdict: OK - nothing found that stops nodes from connecting"
