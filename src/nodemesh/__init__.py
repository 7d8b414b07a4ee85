"""nodemesh: Python processes as real Erlang distribution nodes, clustered automatically."""

from nodemesh.errors import (
    ConfigError,
    CookieMismatchError,
    DecodeError,
    DiscoveryError,
    EncodeError,
    EpmdError,
    HandshakeError,
    LocalProtocolError,
    MailboxClosedError,
    NameInUseError,
    NetworkError,
    NodeDownError,
    NodemeshError,
    NodeNameError,
    ProtocolError,
    ReceiveTimeoutError,
    RemoteCallError,
    RemoteProtocolError,
)
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.events import NodeDown, NodeEvent, NodeUp
from nodemesh.runtime.mailbox import Mailbox
from nodemesh.runtime.node import Node
from nodemesh.term.types import (
    Atom,
    BitBinary,
    ExportFun,
    FrozenList,
    FrozenMap,
    ImproperList,
    OpaqueFun,
    Pid,
    Port,
    Reference,
)

__version__ = "0.1.0"

__all__ = [
    "Atom",
    "BitBinary",
    "ConfigError",
    "CookieMismatchError",
    "DecodeError",
    "DiscoveryError",
    "EncodeError",
    "EpmdError",
    "ExportFun",
    "FrozenList",
    "FrozenMap",
    "HandshakeError",
    "ImproperList",
    "LocalProtocolError",
    "Mailbox",
    "MailboxClosedError",
    "NameInUseError",
    "NetworkError",
    "Node",
    "NodeConfig",
    "NodeDown",
    "NodeDownError",
    "NodeEvent",
    "NodeNameError",
    "NodeUp",
    "NodemeshError",
    "OpaqueFun",
    "Pid",
    "Port",
    "ProtocolError",
    "ReceiveTimeoutError",
    "Reference",
    "RemoteCallError",
    "RemoteProtocolError",
    "__version__",
]
