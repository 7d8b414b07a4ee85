"""The exception tree of nodemesh.

Every exception nodemesh raises on purpose derives from :class:`NodemeshError`::

    NodemeshError
    ├── ConfigError              a setting is missing, of the wrong type or out of range
    │   └── NodeNameError        a node name is malformed ("name@host" rules)
    ├── ProtocolError            a wire format was violated
    │   ├── LocalProtocolError   ... by us: we were asked to send something illegal
    │   │   └── EncodeError      a Python value has no Erlang term form
    │   └── RemoteProtocolError  ... by the peer: bytes we received are malformed
    │       └── DecodeError      bytes are not a valid external term
    ├── NetworkError             a socket operation failed or timed out
    │   └── EpmdError            EPMD refused or could not be reached
    │       └── EpmdNameInUseError   EPMD holds our name for another live node
    │                                (also a NameInUseError)
    ├── HandshakeError           the distribution handshake did not complete
    │   ├── CookieMismatchError  the peer and we do not share the cookie
    │   ├── NameInUseError       the peer already has a connection from our name
    │   └── SupersededError      a simultaneous connect from the peer won the tie-break
    ├── NodeDownError            the target node is not (or no longer) connected
    ├── NameTakenError           register() of a name already registered here (also a ValueError)
    ├── RemoteCallError          an rpc into another node raised, threw or exited
    ├── ReceiveTimeoutError      a mailbox had nothing within the timeout (also a TimeoutError)
    ├── MailboxClosedError       the mailbox was closed (by its owner or the node stopping)
    ├── StreamOverflowError      an event stream reached its bound; it ended after its events
    ├── DiscoveryError           a cluster strategy could not discover its peers
    ├── RpcError                 raised by *your* rpc handler: the caller sees ``error``
    ├── ProcessExit              raised by *your* process (Node.spawn) to exit with a reason
    └── CallError                a gen_server call (Node.call) failed; ``reason`` is Erlang's
        ├── NoProcError          ... no process at the destination (``noproc``)
        │   └── NoMembersError   ... Roles.call_any found no live member of the role
        ├── CallTimeoutError     ... no reply within the timeout (also a TimeoutError)
        └── CallExitError        ... the server exited or crashed during the call

A gen_server call to a node that is down (or goes down mid-call) raises
:class:`NodeDownError`, as for every other operation.

Anything else escaping from nodemesh is a bug. Third-party and OS exceptions are
translated at the edge (``raise NetworkError(...) from exc``).
"""

from __future__ import annotations


class NodemeshError(Exception):
    """Root of every exception nodemesh raises on purpose."""


class ConfigError(NodemeshError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class NodeNameError(ConfigError):
    """A node name does not follow Erlang's ``name@host`` rules."""


class ProtocolError(NodemeshError):
    """A wire format (term, frame, EPMD, handshake, gossip) was violated."""


class LocalProtocolError(ProtocolError):
    """We were asked to produce something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class EncodeError(LocalProtocolError, TypeError):
    """A Python value has no external-term-format representation."""


class DecodeError(RemoteProtocolError, ValueError):
    """Bytes are not a valid external term (or exceed a configured limit)."""


class NetworkError(NodemeshError, OSError):
    """A socket operation failed, was refused or timed out."""


class EpmdError(NetworkError):
    """EPMD could not be reached or answered with an error."""


class HandshakeError(NodemeshError):
    """The distribution handshake with a peer did not complete."""


class CookieMismatchError(HandshakeError):
    """The peer's digest shows it does not share our cookie (or vice versa)."""


class NameInUseError(HandshakeError):
    """The peer already holds a connection from a node of our name."""


class EpmdNameInUseError(EpmdError, NameInUseError):
    """EPMD refused to register our node name: another live node holds it.

    Both an :class:`EpmdError` and a :class:`NameInUseError`, so either catches it.
    ``name`` is the refused name (the part before ``@``).
    """

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class SupersededError(HandshakeError):
    """The peer is dialing us at the same moment and its connection wins the tie-break
    (``erl_dist_protocol``, "simultaneous connect": status ``nok``)."""


class NodeDownError(NodemeshError):
    """The target node is not connected and could not be reached."""


class NameTakenError(NodemeshError, ValueError):
    """:meth:`Node.register` was given a name already registered on this node."""


class RemoteCallError(NodemeshError):
    """A call made with :meth:`Node.rpc` failed on the remote node.

    ``kind`` is ``"error"``, ``"throw"`` or ``"exit"`` as in Erlang's ``erpc``, or
    ``"spawn"`` when the peer refused to run the call at all; ``reason`` is the Erlang
    reason term and ``stack`` the remote stack trace (a list, maybe empty).
    """

    def __init__(self, kind: str, reason: object, stack: object = None) -> None:
        super().__init__(f"remote call failed ({kind}): {reason!r:.300}")
        self.kind = kind
        self.reason = reason
        self.stack = stack if stack is not None else []


class ReceiveTimeoutError(NodemeshError, TimeoutError):
    """A mailbox received nothing within the timeout."""


class MailboxClosedError(NodemeshError):
    """The mailbox was closed, by its owner or because the node stopped: no message will
    arrive any more. Not a timeout: waiting longer would not help."""


class StreamOverflowError(NodemeshError):
    """An event stream reached its ``max_queued`` bound because its reader fell behind.

    The stream stopped taking events at that point (never silently dropping one): the
    events queued before are read first, then this is raised. Subscribe again to go on.
    """


class DiscoveryError(NodemeshError):
    """A cluster strategy could not discover its peers this round."""


class RpcError(NodemeshError):
    """Raise inside a handler given to :meth:`Node.expose` to make the Erlang caller see
    ``error`` with ``reason`` (``erpc:call`` raises ``error:Reason``). nodemesh catches
    it; it never escapes to your code from nodemesh."""

    def __init__(self, reason: object) -> None:
        super().__init__(reason)
        self.reason = reason


class CallError(NodemeshError):
    """A gen_server call made with :meth:`Node.call` failed.

    ``reason`` is the term an Erlang caller would exit with (``gen:call``'s exit reason):
    ``noproc``, ``timeout``, or the server's own exit reason.
    """

    def __init__(self, message: str, reason: object) -> None:
        super().__init__(message)
        self.reason = reason


class NoProcError(CallError):
    """No process lives at the destination of a call (the reason is ``noproc``)."""


class CallTimeoutError(CallError, TimeoutError):
    """The server did not reply within the call's timeout (the reason is ``timeout``)."""


class CallExitError(CallError):
    """The server exited (or crashed) before replying; ``reason`` is its exit reason."""


# -- processes and roles (issue 9, spawn-roles) -------------------------------------------
class ProcessExit(NodemeshError):
    """Raise in a process (:meth:`Node.spawn`) to end it with ``reason``, an Erlang term,
    as ``exit(Reason)`` does; its links and monitors see that reason."""

    def __init__(self, reason: object) -> None:
        super().__init__(f"process exit: {reason!r}")
        self.reason = reason


class NoMembersError(NoProcError):
    """:meth:`Roles.call_any` found no live member of the role (the reason is ``noproc``)."""
