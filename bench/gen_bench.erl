%% The Erlang side of bench/gen_server.py: a gen_server and a client, compiled (an
%% `-eval`'d fun would run in the interpreter and understate Erlang).
%%
%%   erl -name N@127.0.0.1 -setcookie C -pa DIR -run gen_bench main server
%%   erl -name N@127.0.0.1 -setcookie C -pa DIR -run gen_bench main client Peer Count Conc
%%
%% Prints `ready` once reachable and (the client) one `result {JSON}` line, the protocol
%% bench/dist.py's Proc reads. The server is registered as kv and replies with the
%% request; the client makes Count sequential gen_server:call({kv, Peer}, ?REQ) timing
%% each, then Count calls from Conc processes at once, timing the whole.
-module(gen_bench).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2]).

-define(REQ, {get, <<"user:42">>}).
-define(WARM, 500).

main(["server"]) ->
    {ok, _} = gen_server:start({local, kv}, ?MODULE, [], []),
    io:format("ready~n"),
    receive after infinity -> ok end;
main(["client", Peer, Count, Conc]) ->
    Dest = {kv, list_to_atom(Peer)},
    N = list_to_integer(Count),
    C = list_to_integer(Conc),
    io:format("ready~n"),
    [gen_server:call(Dest, ?REQ) || _ <- lists:seq(1, ?WARM)],
    Rtts = [timed(Dest) || _ <- lists:seq(1, N)],
    Elapsed = concurrent(Dest, N div C, C),
    io:format("result {\"rtt_ns\":~w,\"conc_calls\":~b,\"conc_elapsed_ns\":~b}~n",
              [Rtts, (N div C) * C, Elapsed]),
    halt().

init([]) -> {ok, nostate}.
handle_call(Request, _From, State) -> {reply, Request, State}.
handle_cast(_Request, State) -> {noreply, State}.

timed(Dest) ->
    T0 = erlang:monotonic_time(nanosecond),
    ?REQ = gen_server:call(Dest, ?REQ),
    erlang:monotonic_time(nanosecond) - T0.

concurrent(Dest, Each, C) ->
    Self = self(),
    T0 = erlang:monotonic_time(nanosecond),
    Pids = [spawn_link(fun() -> [gen_server:call(Dest, ?REQ) || _ <- lists:seq(1, Each)],
                                Self ! {done, self()} end) || _ <- lists:seq(1, C)],
    [receive {done, Pid} -> ok end || Pid <- Pids],
    erlang:monotonic_time(nanosecond) - T0.
