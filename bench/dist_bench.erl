%% The Erlang side of bench/dist.py: the same roles as the Python nodes, compiled (an
%% `-eval`'d fun would run in the interpreter and understate Erlang).
%%
%%   erl -name N@127.0.0.1 -setcookie C -pa DIR -run dist_bench main Role [Peer] [Count]
%%
%% Every role prints `ready` once reachable and ends with one `result {JSON}` line, the
%% protocol bench/dist.py reads. Handshake with the peer's registered `bench` process:
%% {hello, From} -> go; then the messages; then {stop, From} -> {done, Count}.
-module(dist_bench).
-export([main/1]).

-define(MSG, {chat, <<"room:lobby">>, <<"hello from a node">>, 12345}).
-define(TIMEOUT, 60000).

main(["recv"]) -> serve(fun recv/1);
main(["echo"]) -> serve(fun echo/1);
main(["send", Peer, N]) -> client(Peer, fun(Dest) -> send(Dest, list_to_integer(N)) end);
main(["ping", Peer, N]) -> client(Peer, fun(Dest) -> ping(Dest, list_to_integer(N)) end);
main(["idle"]) ->
    ready(),
    receive after infinity -> ok end.

ready() -> io:format("ready~n").

result(Format, Args) ->
    io:format("result " ++ Format ++ "~n", Args),
    halt().

fail(Why) ->
    io:format(standard_error, "dist_bench: ~p~n", [Why]),
    halt(1).

%% -- receivers: register `bench`, answer the hello, then do the work -----------------
serve(Work) ->
    register(bench, self()),
    ready(),
    receive
        {hello, From} -> From ! go, Work(From)
    after ?TIMEOUT -> fail(no_hello)
    end.

recv(_From) ->
    receive
        ?MSG ->
            T0 = erlang:monotonic_time(nanosecond),
            {Count, T1, Stopper} = count(1),
            Stopper ! {done, Count},
            result("{\"count\":~b,\"elapsed_ns\":~b}", [Count, T1 - T0])
    after ?TIMEOUT -> fail(no_message)
    end.

count(N) ->
    receive
        ?MSG -> count(N + 1);
        {stop, From} -> {N, erlang:monotonic_time(nanosecond), From}
    after ?TIMEOUT -> fail({stalled_after, N})
    end.

echo(From) ->
    receive
        ?MSG -> From ! ?MSG, echo(From);
        {stop, Stopper} -> Stopper ! {done, 0}, result("{}", [])
    after ?TIMEOUT -> fail(echo_stalled)
    end.

%% -- senders: connect, hello, work, stop ---------------------------------------------
client(Peer, Work) ->
    Node = list_to_atom(Peer),
    true = net_kernel:connect_node(Node),
    Dest = {bench, Node},
    Dest ! {hello, self()},
    receive go -> ok after ?TIMEOUT -> fail(no_go) end,
    ready(),
    Json = Work(Dest),
    Dest ! {stop, self()},
    receive {done, _} -> result("~s", [Json]) after ?TIMEOUT -> fail(no_done) end.

send(Dest, N) ->
    T0 = erlang:monotonic_time(nanosecond),
    send_loop(Dest, N),
    T1 = erlang:monotonic_time(nanosecond),
    io_lib:format("{\"sent\":~b,\"elapsed_ns\":~b}", [N, T1 - T0]).

send_loop(_Dest, 0) -> ok;
send_loop(Dest, N) -> Dest ! ?MSG, send_loop(Dest, N - 1).

ping(Dest, N) ->
    Rtts = [round_trip(Dest) || _ <- lists:seq(1, N)],
    io_lib:format("{\"rtt_ns\":~w}", [Rtts]).

round_trip(Dest) ->
    T0 = erlang:monotonic_time(nanosecond),
    Dest ! ?MSG,
    receive ?MSG -> erlang:monotonic_time(nanosecond) - T0
    after ?TIMEOUT -> fail(no_pong)
    end.
