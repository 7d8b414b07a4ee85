"""A node Erlang can talk to: `python examples/echo.py`, then from `erl -name e@127.0.0.1
-setcookie secret`:

    net_adm:ping('echo@127.0.0.1').                         % pong
    {echo, 'echo@127.0.0.1'} ! {self(), hello}, flush().    % Shell got {echo,hello}
    rpc:call('echo@127.0.0.1', math, add, [1, 2]).          % 3

It prints each node that comes and goes, and stops on Ctrl-C.
"""

import asyncio
import contextlib

from nodemesh import Atom, Node


async def echo(node: Node) -> None:
    """Answer {From, Message} with {echo, Message}, as an Erlang echo server would."""
    inbox = node.register("echo")
    while True:
        message = await inbox.receive()
        if isinstance(message, tuple) and len(message) == 2:
            sender, body = message
            await node.send(sender, (Atom("echo"), body))


async def main() -> None:
    async with Node("echo@127.0.0.1", cookie="secret") as node:
        node.expose("math", "add", lambda a, b: a + b)
        print(f"{node.name} ready (cookie 'secret'); Ctrl-C stops it")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(echo(node))
            async for event in node.events():
                print(event)


with contextlib.suppress(KeyboardInterrupt):
    asyncio.run(main())
