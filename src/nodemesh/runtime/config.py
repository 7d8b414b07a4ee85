"""Node settings: every timing and limit is configuration, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from nodemesh.errors import ConfigError
from nodemesh.runtime.tls import TlsConfig
from nodemesh.term import DEFAULT_LIMITS, DecodeLimits, check_none_atom

__all__ = ["NodeConfig"]


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """How a :class:`~nodemesh.Node` behaves. All durations are in seconds.

    ``net_ticktime`` must agree across the cluster, as in Erlang: a peer silent for
    about that long is declared down, and idle connections carry a tick every quarter
    of it. Nodes are hidden by default, like C and Java nodes: out of Erlang's ``nodes()``
    and ``global``'s full-mesh bookkeeping, but in ``nodes(hidden)`` and
    ``nodes(connected)``, which libcluster uses. ``hidden=False`` makes a visible node
    that takes part in ``global`` (names, locks, connect_all): see ``docs/global.md``.

    ``none_atom`` is the atom Python's ``None`` travels as, and the one that arrives as
    ``None``: ``"undefined"`` (Erlang's convention) or ``"nil"`` for Elixir peers (see
    ``docs/terms.md`` and :class:`~nodemesh.term.TermCodec`).
    """

    net_ticktime: float = 60.0
    connect_timeout: float = 7.0  # Erlang's net_setuptime default
    close_timeout: float = 5.0  # aclose(): how long to flush queued messages to peers
    hidden: bool = True
    longnames: bool | None = None  # None: inferred from the node name
    listen_address: str = "::"  # dual-stack: IPv4 and IPv6
    port: int = 0  # distribution port; 0 picks a free one
    use_epmd: bool = True  # False: EPMD-less, every node listens on ``port``
    epmd_port: int | None = None  # None: $ERL_EPMD_PORT, else 4369
    max_frame_size: int = 64 * 1024 * 1024
    max_pending_handshakes: int = 64
    # Admission under a flood (see runtime/_admission.py): a peer must send its whole
    # first handshake message this soon after connecting; one source address holds at
    # most this many pending handshakes. A full table evicts the oldest, never the newcomer.
    handshake_first_message_timeout: float = 2.0
    max_pending_handshakes_per_address: int = 16
    # At most one WARNING per cause per this many seconds, then a line with the count
    # of the rest (a flood gives a handful of lines); 0 logs every one.
    warning_interval: float = 10.0
    # After a failed connect to a node, connecting (and sending) to it again within
    # this many seconds fails at once with the same reason; 0 always tries again.
    connect_retry_delay: float = 1.0
    decode_limits: DecodeLimits = field(default=DEFAULT_LIMITS)
    none_atom: str = "undefined"  # "nil" for Elixir peers
    write_high_water: int = 4 * 1024 * 1024
    # Bounds on queued messages per mailbox and events per stream; None (the default) is
    # unbounded, as Erlang's mailboxes are. Policy: never drop a message (see Mailbox).
    max_queued_messages: int | None = None
    max_queued_events: int | None = None
    # TLS distribution (Erlang's -proto_dist inet_tls; docs/tls.md): None is plain TCP.
    # With it the node accepts and dials TLS only, so plain-TCP peers are refused.
    tls: TlsConfig | None = None
    # "erlang": Erlang's net_ticktime rule alone; "fast": also ticks every 0.1 s and
    # declares a peer that ticks as fast down after 0.7 s of silence (docs/failure-detection.md).
    failure_detector: str = "erlang"

    def __post_init__(self) -> None:
        check_none_atom(self.none_atom)  # ConfigError naming none_atom
        _positive("net_ticktime", self.net_ticktime)
        _positive("connect_timeout", self.connect_timeout)
        _positive("close_timeout", self.close_timeout)
        _positive("handshake_first_message_timeout", self.handshake_first_message_timeout)
        _not_negative("warning_interval", self.warning_interval)
        _not_negative("connect_retry_delay", self.connect_retry_delay)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {self.port}")
        if not self.use_epmd and self.port == 0:
            raise ConfigError("EPMD-less mode (use_epmd=False) needs a fixed port")
        if self.epmd_port is not None and not 1 <= self.epmd_port <= 65535:
            raise ConfigError(f"epmd_port must be 1..65535, got {self.epmd_port}")
        for name in (
            "max_frame_size",
            "max_pending_handshakes",
            "max_pending_handshakes_per_address",
            "write_high_water",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.tls is not None and not isinstance(self.tls, TlsConfig):
            raise ConfigError(f"tls must be a TlsConfig or None, got {self.tls!r}")
        if self.failure_detector not in ("erlang", "fast"):
            raise ConfigError(
                f'failure_detector must be "erlang" or "fast", got {self.failure_detector!r}'
            )
        for name in ("max_queued_messages", "max_queued_events"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ConfigError(f"{name} must be a positive integer or None, got {value!r}")


def _positive(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")


def _not_negative(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise ConfigError(f"{name} must be a number of seconds, 0 or more, got {value!r}")
