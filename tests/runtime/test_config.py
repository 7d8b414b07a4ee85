"""NodeConfig validation: bad values are refused on construction with a clear message."""

from __future__ import annotations

import pytest

from nodemesh import ConfigError
from nodemesh.runtime.config import NodeConfig


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"net_ticktime": 0}, "net_ticktime"),
        ({"net_ticktime": "60"}, "net_ticktime"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"port": 70000}, "port"),
        ({"use_epmd": False}, "fixed port"),
        ({"epmd_port": 0}, "epmd_port"),
        ({"max_frame_size": 0}, "max_frame_size"),
        ({"max_pending_handshakes": 1.5}, "max_pending_handshakes"),
        ({"failure_detector": "phi"}, "failure_detector"),
    ],
)
def test_bad_values_are_refused(kwargs: dict[str, object], match: str) -> None:
    """Each out-of-range setting raises ConfigError naming it."""
    with pytest.raises(ConfigError, match=match):
        NodeConfig(**kwargs)  # type: ignore[arg-type]


def test_defaults_match_erlang() -> None:
    """Defaults follow Erlang's: 60 s net_ticktime, 7 s setup time, hidden."""
    config = NodeConfig()
    assert config.net_ticktime == 60.0
    assert config.connect_timeout == 7.0
    assert config.hidden
