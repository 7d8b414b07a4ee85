"""Command-line options read as a user gives them: topologies and logging, no processes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from conftest import NodeFactory
from nodemesh.cli import build_parser
from nodemesh.cli.logs import configure, log_settings
from nodemesh.cli.topologies import topologies_of
from nodemesh.errors import ConfigError


def parse(*argv: str) -> object:
    return build_parser().parse_args(list(argv))


def test_strategy_takes_its_options_from_the_environment() -> None:
    """--strategy X honours $NODEMESH_STRATEGY_<OPTION>, as $NODEMESH_STRATEGY=X would."""
    args = parse("discover", "--strategy", "epmd")
    env = {"NODEMESH_STRATEGY_HOSTS": "a@10.0.0.5,b@10.0.0.6"}
    [topology] = topologies_of(args, env)
    assert (topology.name, topology.strategy) == ("epmd", "epmd")
    assert topology.options.hosts == ("a@10.0.0.5", "b@10.0.0.6")


def test_option_overrides_the_environment_and_is_repeatable() -> None:
    """--option KEY=VALUE (repeatable) is parsed for the option's type and beats the env."""
    args = parse(
        "discover",
        "--strategy",
        "gossip",
        "--option",
        "port=45900",
        "--option",
        "multicast-if=127.0.0.1",
    )
    [topology] = topologies_of(args, {"NODEMESH_STRATEGY_PORT": "1"})
    assert topology.options.port == 45900
    assert topology.options.multicast_if == "127.0.0.1"


def test_environment_options_for_another_strategy_are_left_out_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """$NODEMESH_STRATEGY=epmd's options are not applied to --strategy gossip; a warning says so."""
    args = parse("discover", "--strategy", "gossip")
    env = {"NODEMESH_STRATEGY": "epmd", "NODEMESH_STRATEGY_HOSTS": "a@h"}
    with caplog.at_level(logging.WARNING, "nodemesh.cli"):
        [topology] = topologies_of(args, env)
    assert topology.strategy == "gossip"
    assert "$NODEMESH_STRATEGY_HOSTS" in caplog.text and "epmd" in caplog.text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--strategy", "gosip"], "unknown strategy 'gosip' (did you mean 'gossip'?)"),
        (["--strategy", "gossip", "--option", "prot=1"], "unknown option 'prot' (did you mean"),
        (
            ["--strategy", "gossip", "--option", "port=abc"],
            "option 'port' must be an integer, got 'abc' (from --option port=abc)",
        ),
        (["--strategy", "gossip", "--option", "port"], "--option 'port': expected KEY=VALUE"),
        (["--option", "port=1"], "--option sets options of the --strategy topology"),
    ],
)
def test_wrong_strategy_input_says_what_and_how(argv: list[str], message: str) -> None:
    """Typos and malformed --option values are ConfigErrors that name them."""
    with pytest.raises(ConfigError) as caught:
        topologies_of(parse("discover", *argv), {})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["names"], logging.WARNING),
        (["-v", "names"], logging.INFO),
        (["names", "-v"], logging.INFO),
        (["-v", "names", "-v"], logging.DEBUG),
        (["names", "-vv", "--log-level", "error"], logging.ERROR),
        (["--log-level", "DEBUG", "names"], logging.DEBUG),
    ],
)
def test_verbosity_before_or_after_the_command(argv: list[str], level: int) -> None:
    """-v counts on either side of the sub-command; --log-level wins over -v."""
    assert log_settings(parse(*argv), {}) == (level, "text")


def test_log_level_and_format_from_the_environment() -> None:
    """$NODEMESH_LOG_LEVEL and $NODEMESH_LOG_FORMAT apply unless options say otherwise."""
    env = {"NODEMESH_LOG_LEVEL": "info", "NODEMESH_LOG_FORMAT": "JSON"}
    assert log_settings(parse("names"), env) == (logging.INFO, "json")
    assert log_settings(parse("names", "--log-format", "text", "-vv"), env) == (
        logging.DEBUG,
        "text",
    )
    with pytest.raises(ConfigError, match=r"\$NODEMESH_LOG_LEVEL='loud': expected one of"):
        log_settings(parse("names"), {"NODEMESH_LOG_LEVEL": "loud"})


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("nodemesh").level)
    node_level = logging.getLogger("nodemesh.node").level
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("nodemesh").setLevel(saved[2])
    logging.getLogger("nodemesh.node").setLevel(node_level)


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_and_what_the_default_level_shows() -> None:
    """JSON: one object per line. At warning: a failed connect once per reason, no nodeup."""
    out = io.StringIO()
    configure(logging.WARNING, "json", out)
    node_log = logging.getLogger("nodemesh.node")
    for _ in range(3):  # a topology retrying
        node_log.info("cannot connect to a@h: the cookies differ")
    node_log.info("cannot connect to a@h: EPMD on h does not know a node named 'a'")
    node_log.info("nodeup %s", "b@h")
    node_log.info("node x@h listening on port 1")
    logging.getLogger("nodemesh.cluster").info("connected to b@h")
    logging.getLogger("nodemesh.cluster").warning("unable to connect: a@h")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["logger"], r["message"]) for r in lines] == [
        ("nodemesh.node", "cannot connect to a@h: the cookies differ"),
        ("nodemesh.node", "cannot connect to a@h: EPMD on h does not know a node named 'a'"),
        ("nodemesh.cluster", "unable to connect: a@h"),
    ]
    assert lines[0]["level"] == "INFO" and lines[0]["time"].endswith("Z")


@pytest.mark.usefixtures("restore_logging")
def test_runtime_nodeup_lines_are_left_to_the_command_at_debug() -> None:
    """At -vv the runtime's nodeup/nodedown records are dropped (run prints its own)."""
    out = io.StringIO()
    configure(logging.DEBUG, "text", out)
    logging.getLogger("nodemesh.node").info("nodeup %s", "b@h")
    logging.getLogger("nodemesh.node").info("nodedown %s (%s)", "b@h", "closed")
    logging.getLogger("nodemesh.node").debug("tick")
    assert out.getvalue().count("\n") == 1 and "tick" in out.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--name", "a", "--port", "99999"], "argument --port: '99999' is not a TCP port"),
        (["ping", "a@h", "--timeout", "-1"], "'-1' is not a positive number of seconds"),
        (["discover", "--wait", "soon"], "'soon' is not a number of seconds (0 or more)"),
        (["run", "--name", "a", "--ready-min-peers", "-2"], "'-2' is not a whole number"),
    ],
)
def test_bad_numbers_are_usage_errors_naming_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ports, durations and counts are checked by argparse: exit 2 and one clear line."""
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


async def test_the_runtime_records_the_command_line_filters_on(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """nodemesh.node logs "nodeup X" and "cannot connect to X: why" (prefix once): the
    shapes cli/logs.py recognises."""
    node = await make_node("watcher")
    peer = await make_node("peer")
    with caplog.at_level(logging.INFO, "nodemesh.node"):
        assert not await node.connect("ghost@127.0.0.1")
        assert await node.connect(peer.name)
    messages = [r.getMessage() for r in caplog.records if r.name == "nodemesh.node"]
    failed = [m for m in messages if m.startswith("cannot connect to ghost@127.0.0.1: ")]
    assert len(failed) == 1 and failed[0].count("cannot connect") == 1, messages
    assert f"nodeup {peer.name}" in messages
