"""This node's name and cookie, and long vs short names: the checks that need no peer."""

from __future__ import annotations

import socket
from pathlib import Path

from nodemesh.dist.names import parse_node_name
from nodemesh.doctor.names import check_cookie_source, check_name_kinds, check_own_name
from nodemesh.doctor.result import CheckResult, Status, verdict


async def own(name: str, **env: str) -> list[CheckResult]:
    _, results = await check_own_name(name, environ=env)
    return results


async def test_a_long_name_whose_host_does_not_resolve_fails() -> None:
    """app@nowhere.invalid: the host does not resolve, so no peer can reach it (FAIL)."""
    (result,) = await own("app@nowhere.invalid")
    assert result.status is Status.FAIL
    assert "does not resolve" in result.detail and "nowhere.invalid" in result.detail
    assert "POD_IP" in result.fix


async def test_localhost_is_reachable_from_this_machine_only() -> None:
    """app@localhost works for nodes on this machine only: a warning that says so."""
    (result,) = await own("app@localhost")
    assert result.status is Status.WARN and "only nodes on this machine" in result.detail


async def test_loopback_ip_warns() -> None:
    """app@127.0.0.1 is a long name other hosts cannot reach."""
    (result,) = await own("app@127.0.0.1")
    assert result.status is Status.WARN and "loopback" in result.detail


async def test_an_address_of_another_host_fails() -> None:
    """A name with an IP that is not this host's sends peers elsewhere (TEST-NET-1)."""
    (result,) = await own("app@192.0.2.77")
    assert result.status is Status.FAIL and "not an address of this host" in result.detail


async def test_a_name_that_is_not_the_pods_ip_fails() -> None:
    """In a pod, a name whose IP differs from $POD_IP is wrong however it came about."""
    (result,) = await own("app@10.9.9.9", POD_IP="10.1.2.3")
    assert result.status is Status.FAIL and "app@10.1.2.3" in result.fix


async def test_short_name_on_a_resolvable_host_passes() -> None:
    """A short name whose host resolves here passes (the seed's local --sname setup)."""
    (result,) = await own(f"app@{socket.gethostname().split('.')[0]}")
    assert result.status is Status.PASS


async def test_malformed_name_fails_with_the_parsers_reason() -> None:
    """A malformed name is one FAIL saying what is wrong, and no parsed name."""
    parsed, results = await check_own_name("bad name@host", environ={})
    assert parsed is None
    assert [r.status for r in results] == [Status.FAIL]


def test_short_and_long_names_never_connect() -> None:
    """A short-name node and long-name peers: FAIL naming the odd ones and the fix."""
    own_name = parse_node_name("a@vm")
    result = check_name_kinds(own_name, ["b@10.0.0.2", "c@vm2"], "--peer")
    assert result is not None and result.status is Status.FAIL
    assert "b@10.0.0.2" in result.detail and "c@vm2" not in result.detail
    assert "long names everywhere" in result.fix
    agree = check_name_kinds(parse_node_name("a@10.0.0.1"), ["b@10.0.0.2"], "--peer")
    assert agree is not None and agree.status is Status.PASS
    assert check_name_kinds(own_name, [], "--peer") is None


def test_cookie_source_is_named_never_the_cookie(tmp_path: Path) -> None:
    """The cookie's source and length are reported, not its value."""
    result = check_cookie_source(None, {"NODEMESH_COOKIE": "s3cr3t-value", "HOME": str(tmp_path)})
    assert result.status is Status.PASS and "$NODEMESH_COOKIE" in result.detail
    assert "s3cr3t" not in result.detail + result.fix


def test_no_cookie_warns_and_creates_nothing(tmp_path: Path) -> None:
    """Without any cookie the doctor warns and, unlike a node, creates no cookie file."""
    result = check_cookie_source(None, {"HOME": str(tmp_path)})
    assert result.status is Status.WARN and "NODEMESH_COOKIE" in result.fix
    assert not (tmp_path / ".erlang.cookie").exists()


def test_a_readable_by_all_cookie_file_fails(tmp_path: Path) -> None:
    """A cookie file others can read is refused, as Erlang refuses it, with the chmod."""
    cookie = tmp_path / ".erlang.cookie"
    cookie.write_text("COOKIE")
    cookie.chmod(0o644)
    result = check_cookie_source(None, {"HOME": str(tmp_path)})
    assert result.status is Status.FAIL and "chmod 400" in result.detail


def test_verdict_counts_problems_and_warnings() -> None:
    """The closing line says BROKEN with counts when anything FAILs, else OK."""
    ok = CheckResult.ok("a", "fine")
    warn = CheckResult.warn("b", "hmm", "look")
    fail = CheckResult.fail("c", "broken", "fix it")
    assert verdict([ok]).startswith("verdict: OK - nothing found")
    assert verdict([ok, warn]) == (
        "verdict: OK with 1 warning - nothing found that stops nodes from connecting"
    )
    assert verdict([fail, fail, warn]).startswith("verdict: BROKEN - 2 problems stop")
    assert verdict([fail]).startswith("verdict: BROKEN - 1 problem stops")
