"""nodemesh: Python processes as real Erlang distribution nodes, clustered automatically."""

# First: NODEMESH_PURE_PYTHON=1 must be seen before the message path is imported.
import nodemesh._build  # noqa: F401
from nodemesh.errors import (
    CallError,
    CallExitError,
    CallTimeoutError,
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
    NameTakenError,
    NetworkError,
    NodeDownError,
    NodemeshError,
    NodeNameError,
    NoMembersError,
    NoProcError,
    ProcessExit,
    ProtocolError,
    ReceiveTimeoutError,
    RemoteCallError,
    RemoteProtocolError,
    RpcError,
    StreamOverflowError,
)
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.events import NodeDown, NodeEvent, NodeUp
from nodemesh.runtime.gen_server import NO_REPLY, Caller, GenServer
from nodemesh.runtime.mailbox import Mailbox, MailboxStatistics
from nodemesh.runtime.node import Node
from nodemesh.runtime.statistics import NodeStatistics
from nodemesh.runtime.streams import Stream, StreamStatistics
from nodemesh.runtime.tls import TlsConfig
from nodemesh.services.pubsub import PubSub
from nodemesh.services.roles import Roles
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
    "NO_REPLY",
    "Atom",
    "BitBinary",
    "CallError",
    "CallExitError",
    "CallTimeoutError",
    "Caller",
    "ConfigError",
    "CookieMismatchError",
    "DecodeError",
    "DiscoveryError",
    "EncodeError",
    "EpmdError",
    "ExportFun",
    "FrozenList",
    "FrozenMap",
    "GenServer",
    "HandshakeError",
    "ImproperList",
    "LocalProtocolError",
    "Mailbox",
    "MailboxClosedError",
    "MailboxStatistics",
    "NameInUseError",
    "NameTakenError",
    "NetworkError",
    "NoMembersError",
    "NoProcError",
    "Node",
    "NodeConfig",
    "NodeDown",
    "NodeDownError",
    "NodeEvent",
    "NodeNameError",
    "NodeStatistics",
    "NodeUp",
    "NodemeshError",
    "OpaqueFun",
    "Pid",
    "Port",
    "ProcessExit",
    "ProtocolError",
    "PubSub",
    "ReceiveTimeoutError",
    "Reference",
    "RemoteCallError",
    "RemoteProtocolError",
    "Roles",
    "RpcError",
    "Stream",
    "StreamOverflowError",
    "StreamStatistics",
    "TlsConfig",
    "__version__",
]
