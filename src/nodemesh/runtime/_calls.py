"""Calls from Python into other nodes, the way OTP 23+'s ``erpc:call`` makes them.

A call is a SPAWN_REQUEST of ``erpc:execute_call(Ref, M, F, A)`` on the peer with a
monitor; the spawned process exits with ``{Ref, return, Value}`` (or ``throw``, ``exit``,
``error``), which comes back as the monitor's DOWN reason. The calling mailbox is also
the group leader, so ``io`` requests made by the callee are answered here (and logged)
instead of hanging it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from nodemesh.dist import control
from nodemesh.errors import MailboxClosedError, NodeDownError, ReceiveTimeoutError, RemoteCallError
from nodemesh.runtime._signals import NOCONNECTION, Monitor
from nodemesh.term.codec import ERLANG, TermCodec
from nodemesh.term.types import Atom, Pid

if TYPE_CHECKING:
    from nodemesh.runtime._dispatch import Peer
    from nodemesh.runtime._processes import ProcessTable
    from nodemesh.runtime.mailbox import Mailbox

__all__ = ["call"]

log = logging.getLogger("nodemesh.rpc")

ERPC_CALL = (Atom("erpc"), Atom("execute_call"), 4)
SPAWN_OPTS = [Atom("monitor")]  # {reply, error_only} is local to the caller: not sent
DOWN, IO_REQUEST, SPAWN_REPLY = Atom("DOWN"), Atom("io_request"), Atom("spawn_reply")
RETURN = Atom("return")


async def call(
    processes: ProcessTable,
    conn: Peer,
    mailbox: Mailbox,
    mfa: tuple[str, str, list[Any]],
    timeout: float | None,
    *,
    codec: TermCodec = ERLANG,
) -> Any:
    """Run ``module:function(*args)`` on ``conn``'s peer from ``mailbox`` (closed at the
    end) and return its value; see :meth:`Node.rpc` for what it raises."""
    peer, (module, function, args) = conn.peer, mfa
    req_id, res = processes.make_ref(), processes.make_ref()
    processes.signals.add_monitor(Monitor(req_id, mailbox.pid, Atom("erpc"), peer))
    call_args = [res, Atom(module), Atom(function), list(args)]
    conn.write(
        control.spawn_request(
            req_id, mailbox.pid, mailbox.pid, ERPC_CALL, SPAWN_OPTS, call_args, codec=codec
        )
    )
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await mailbox.receive()
                if type(message) is tuple and message and message[0] == IO_REQUEST:
                    _answer_io(conn, message)
                elif type(message) is tuple and len(message) == 5 and message[:2] == (DOWN, req_id):
                    return _result(peer, res, message[4])
                elif (
                    type(message) is tuple
                    and len(message) == 4
                    and message[:2] == (SPAWN_REPLY, req_id)
                ):
                    raise RemoteCallError("spawn", message[3])
    except MailboxClosedError:
        # Our node is stopping (aclose closes every mailbox): the answer cannot arrive.
        raise NodeDownError(
            f"{processes.node} stopped while waiting for {peer} to answer {module}:{function}"
        ) from None
    except TimeoutError:
        raise ReceiveTimeoutError(
            f"{peer} did not answer {module}:{function} within {timeout} s"
        ) from None
    finally:
        processes.signals.remove_monitor(req_id)
        mailbox.close()


def _result(peer: str, res: Any, reason: Any) -> Any:
    if reason == NOCONNECTION:
        raise NodeDownError(f"lost the connection to {peer} during the call")
    if type(reason) is tuple and len(reason) >= 3 and reason[0] == res:
        if reason[1] == RETURN:
            return reason[2]
        stack = reason[3] if len(reason) > 3 else []
        raise RemoteCallError(str(reason[1]), reason[2], stack)
    raise RemoteCallError("exit", reason)


def _answer_io(conn: Peer, request: tuple[Any, ...]) -> None:
    """``{io_request, From, ReplyAs, Request}``: log output, answer ok (Erlang's I/O
    protocol); input requests get ``{error, enotsup}``."""
    if len(request) != 4 or type(request[1]) is not Pid:
        return
    _, sender, reply_as, body = request
    kind = body[0] if type(body) is tuple and body else None
    reply: Any = Atom("ok")
    if kind in ("put_chars", "requests"):
        log.info("output from %s: %r", sender.node, body)
    else:
        reply = (Atom("error"), Atom("enotsup"))
    if sender.node == conn.peer:  # the callee's side asks; only its node can be told here
        conn.write(control.send(sender, (Atom("io_reply"), reply_as, reply)))
