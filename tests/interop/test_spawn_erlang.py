"""Erlang spawns Python processes (spawn/4, spawn_link/4, spawn_monitor/4), links and
monitors them both ways, and sees their exit reasons; unexposed entry points exit undef."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import Atom, Mailbox, Pid, ProcessExit
from support.erlang import ErlPeer, run_elixir

pytestmark = pytest.mark.interop

DOWN = Atom("DOWN")


async def worker(mailbox: Mailbox, owner: Pid, tag: Any) -> None:
    """Tell ``owner`` we started, then: ``stop`` returns, ``{exit, R}`` exits with R,
    ``crash`` raises, ``{echo, From, X}`` answers X."""
    await mailbox.send(owner, (Atom("started"), tag, mailbox.pid))
    async for message in mailbox:
        match message:
            case "stop":
                return
            case "crash":
                raise RuntimeError("crashed on purpose")
            case (Atom("exit"), reason):
                raise ProcessExit(reason)
            case (Atom("echo"), Pid() as sender, value):
                await mailbox.send(sender, (Atom("echo"), value))


RECV_DOWN = "R = get(ref), receive {'DOWN', R, process, _, Why} -> Why after 5000 -> timeout end"
RECV_EXIT = "(fun(P) -> receive {'EXIT', P, Y} -> Y after 5000 -> timeout end end)(get(pid))"


async def started(erl: ErlPeer) -> str:
    return await erl.eval(
        "(fun(P) -> receive {started, T, P} -> T after 5000 -> timeout end end)(get(pid))"
    )


async def test_spawn_monitor_of_exposed_entry(make_node: NodeFactory, erl: ErlPeer) -> None:
    """spawn_monitor/4 runs the exposed function with the args; DOWN carries the reason."""
    py = await make_node("py")
    py.expose_spawn("workers", "run", worker)
    await erl.eval(
        f"put(mon, spawn_monitor('{py.name}', workers, run, [self(), monitored])), "
        "put(pid, element(1, get(mon))), put(ref, element(2, get(mon)))"
    )
    assert await started(erl) == "monitored"
    assert await erl.eval("node(get(pid))") == f"'{py.name}'"
    got = await erl.eval(
        "get(pid) ! {echo, self(), 42}, receive {echo, V} -> V after 5000 -> timeout end"
    )
    assert got == "42"
    await erl.eval("get(pid) ! {exit, {shutdown, done}}")
    assert await erl.eval(RECV_DOWN) == "{shutdown,done}"


async def test_spawn_link_crash_reaches_erlang(make_node: NodeFactory, erl: ErlPeer) -> None:
    """spawn_link/4: a Python exception arrives as an EXIT with python_exception; a
    normal return gives EXIT normal to a trapping Erlang process."""
    py = await make_node("py")
    py.expose_spawn("workers", "run", worker)
    await erl.eval("process_flag(trap_exit, true)")
    await erl.eval(f"put(pid, spawn_link('{py.name}', workers, run, [self(), linked]))")
    assert await started(erl) == "linked"
    await erl.eval("get(pid) ! crash")
    crashed = await erl.eval_term(RECV_EXIT)
    assert crashed == (Atom("python_exception"), b"RuntimeError", b"crashed on purpose")
    await erl.eval(f"put(pid, spawn_link('{py.name}', workers, run, [self(), again]))")
    assert await started(erl) == "again"
    await erl.eval("get(pid) ! stop")
    assert await erl.eval(RECV_EXIT) == "normal"


async def test_erlang_exit_kills_linked_python_process(
    make_node: NodeFactory, erl: ErlPeer
) -> None:
    """An Erlang process linked to a Python process dies: the Python process dies with
    the same reason (it does not trap exits); exit(Pid, kill) gives killed."""
    py = await make_node("py")
    py.expose_spawn("workers", "run", worker)
    watcher = py.mailbox()
    await erl.eval(
        f"put(linker, (fun(S) -> spawn(fun() -> S ! {{child, spawn_link('{py.name}', workers, "
        "run, [S, child])}, receive die -> exit(boom) end end) end)(self()))"
    )
    pid = await erl.eval_term("receive {child, C} -> C after 5000 -> timeout end")
    assert type(pid) is Pid
    ref = watcher.monitor(pid)
    await erl.eval("get(linker) ! die")
    assert await watcher.receive(timeout=5) == (DOWN, ref, Atom("process"), pid, Atom("boom"))
    await erl.eval(f"put(pid, spawn('{py.name}', workers, run, [self(), plain]))")
    assert await started(erl) == "plain"
    other = await erl.eval_term("get(pid)")
    ref = watcher.monitor(other)
    await erl.eval("exit(get(pid), kill)")
    assert await watcher.receive(timeout=5) == (DOWN, ref, Atom("process"), other, Atom("killed"))


async def test_unexposed_entry_exits_undef(make_node: NodeFactory, erl: ErlPeer) -> None:
    """An entry point Python did not expose behaves as an undefined function does in
    Erlang: a pid whose process exits with {undef, [{M, F, Args, []}]}; nothing runs."""
    py = await make_node("py")
    py.expose_spawn("workers", "run", worker)
    await erl.eval(
        f"put(mon, spawn_monitor('{py.name}', os, cmd, [\"touch /tmp/x\"])), "
        "put(pid, element(1, get(mon))), put(ref, element(2, get(mon)))"
    )
    undef = (Atom("undef"), [(Atom("os"), Atom("cmd"), [list(b"touch /tmp/x")], [])])
    assert await erl.eval_term(RECV_DOWN) == undef
    await erl.eval("process_flag(trap_exit, true)")
    await erl.eval(f"put(pid, spawn_link('{py.name}', workers, other, [1]))")
    assert await erl.eval(RECV_EXIT) == "{undef,[{workers,other,[1],[]}]}"


async def test_python_links_and_monitors_erlang_process(
    make_node: NodeFactory, erl: ErlPeer
) -> None:
    """A Python process spawned locally and linked to an Erlang process dies with the
    Erlang process's reason; Erlang monitoring a Python process sees its exit."""
    py = await make_node("py")
    erl_pid = await erl.eval_term(
        "put(e, spawn(fun() -> receive Why -> exit(Why) end end)), get(e)"
    )
    watcher = py.mailbox()
    pid, ref = py.spawn_monitor(worker, watcher.pid, "local", watcher=watcher.pid)
    assert (await watcher.receive(timeout=5))[:2] == (Atom("started"), "local")
    assert await py.connect(erl.name)
    py.link(pid, erl_pid)
    await py.send(("nm_peer", erl.name), pid)
    await erl.eval("receive Q when is_pid(Q) -> put(ref, erlang:monitor(process, Q)) end")
    await erl.eval("get(e) ! {shutdown, erlang_side}")
    assert (await watcher.receive(timeout=5))[4] == (Atom("shutdown"), Atom("erlang_side"))
    assert await erl.eval(RECV_DOWN) == "{shutdown,erlang_side}"
    del ref


async def test_spawn_opts_arrive_as_erlang_sends_them(make_node: NodeFactory, erl: ErlPeer) -> None:
    """spawn_opt/5 with extra options (priority) still spawns; link and monitor are set
    up and reported in SPAWN_REPLY's flags (Erlang returns {Pid, Ref})."""
    py = await make_node("py")
    py.expose_spawn("workers", "run", worker)
    await erl.eval("process_flag(trap_exit, true)")
    got = await erl.eval(
        f"put(mon, spawn_opt('{py.name}', workers, run, [self(), opt], "
        "[link, monitor, {priority, high}])), put(pid, element(1, get(mon))), "
        "put(ref, element(2, get(mon))), is_reference(get(ref))"
    )
    assert got == "true"
    assert await started(erl) == "opt"
    await erl.eval("get(pid) ! {exit, bye}")
    assert await erl.eval(RECV_DOWN) == "bye"
    assert await erl.eval(RECV_EXIT) == "bye"


async def test_elixir_node_spawn_link_and_monitor(make_node: NodeFactory, epmd_port: int) -> None:
    """Elixir's Node.spawn_link/4 and spawn_monitor of an exposed Elixir-named entry
    point: the process runs, and its exit reaches the Elixir process as EXIT and DOWN."""
    py = await make_node("py")
    py.expose_spawn("Elixir.Workers", "run", worker)
    script = f"""
        py = :"{py.name}"
        Process.flag(:trap_exit, true)
        pid = Node.spawn_link(py, Workers, :run, [self(), :ex])
        receive do {{:started, :ex, ^pid}} -> IO.puts("started") after 5000 -> IO.puts("no") end
        send(pid, {{:exit, :bye}})
        receive do {{:EXIT, ^pid, why}} -> IO.inspect(why) after 5000 -> IO.puts("no") end
        {{pid2, ref}} = :erlang.spawn_monitor(py, Workers, :run, [self(), :mon])
        receive do {{:started, :mon, ^pid2}} -> IO.puts("started") after 5000 -> IO.puts("no") end
        send(pid2, :crash)
        receive do
          {{:DOWN, ^ref, :process, ^pid2, why}} -> IO.inspect(why)
        after 5000 -> IO.puts("no")
        end
    """
    _status, output = await run_elixir(script, cookie=COOKIE, epmd_port=epmd_port)
    assert output.split("\n")[:4] == [
        "started",
        ":bye",
        "started",
        '{:python_exception, "RuntimeError", "crashed on purpose"}',
    ], output
