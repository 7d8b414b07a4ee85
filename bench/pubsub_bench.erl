%% The Erlang side of bench/pubsub.py: the same fan-out done with Erlang's own pg + send,
%% compiled (an `-eval`'d fun would run in the interpreter and understate Erlang).
%%
%%   erl -name N@127.0.0.1 -setcookie C -pa DIR -run pubsub_bench main sub echo|quiet
%%   erl -name N@127.0.0.1 -setcookie C -pa DIR -run pubsub_bench main pub N Trips Peer...
%%
%% A topic is a pg group of the scope bench_pg; publishing sends {Topic, Message} to
%% every member (pg:get_members/2, then !), which is what Phoenix.PubSub's PG2 adapter
%% does per node. Every role prints `ready` and ends with one `result {JSON}` line.
-module(pubsub_bench).
-export([main/1]).

-define(SCOPE, bench_pg).
-define(LOBBY, <<"room:lobby">>).
-define(MSG, {chat, <<"room:lobby">>, <<"hello from a node">>, 12345}).
-define(TIMEOUT, 60000).

main(["sub", Echo]) ->
    {ok, _} = pg:start(?SCOPE),
    ok = pg:join(?SCOPE, ?LOBBY, self()),
    Echo =:= "echo" andalso pg:join(?SCOPE, <<"ping">>, self()),
    io:format("ready~n"),
    first(),
    subscriber(1, cpu_ms());
main(["pub", N, Trips | Peers]) ->
    {ok, _} = pg:start(?SCOPE),
    ok = pg:join(?SCOPE, <<"pong">>, self()),
    [true = net_kernel:connect_node(list_to_atom(Peer)) || Peer <- Peers],
    wait_members(?LOBBY, length(Peers)),
    wait_members(<<"ping">>, 1),
    io:format("ready~n"),
    warm_up(),
    Rtts = [round_trip() || _ <- lists:seq(1, list_to_integer(Trips))],
    T0 = erlang:monotonic_time(nanosecond),
    Cpu0 = cpu_ms(),
    publish_n(list_to_integer(N)),
    publish(?LOBBY, {stop, self()}),
    Counts = [receive {done, Count} -> Count after ?TIMEOUT -> fail(no_done) end || _ <- Peers],
    T1 = erlang:monotonic_time(nanosecond),
    Cpu = (cpu_ms() - Cpu0) * 1000000,
    io:format("result {\"elapsed_ns\":~b,\"cpu_ns\":~b,\"counts\":~w,\"rtt_ns\":~w}~n",
              [T1 - T0, Cpu, Counts, Rtts]),
    halt().

%% CPU time of the whole VM (every scheduler), in ms.
cpu_ms() -> element(1, statistics(runtime)).

publish(Topic, Message) ->
    [Pid ! {Topic, Message} || Pid <- pg:get_members(?SCOPE, Topic)],
    ok.

publish_n(0) -> ok;
publish_n(N) -> publish(?LOBBY, ?MSG), publish_n(N - 1).

%% Answer pings until the first message on the lobby: CPU is counted from there.
first() ->
    receive
        {?LOBBY, _} -> ok;
        {<<"ping">>, Message} -> publish(<<"pong">>, Message), first()
    after ?TIMEOUT -> fail(no_message)
    end.

subscriber(Count, Cpu0) ->
    receive
        {?LOBBY, {stop, From}} ->
            Cpu = (cpu_ms() - Cpu0) * 1000000,
            From ! {done, Count},
            io:format("result {\"count\":~b,\"cpu_ns\":~b}~n", [Count, Cpu]),
            %% halt() at once could drop `done` still in the distribution buffer: wait for
            %% the publisher, which stops once it has every subscriber's count.
            Ref = monitor(process, From),
            receive {'DOWN', Ref, _, _, _} -> halt() after ?TIMEOUT -> halt() end;
        {?LOBBY, _} -> subscriber(Count + 1, Cpu0);
        {<<"ping">>, Message} -> publish(<<"pong">>, Message), subscriber(Count, Cpu0)
    after ?TIMEOUT -> fail(no_message)
    end.

%% The echo may not have seen our pong membership yet: ping until one comes back. The
%% warm-up pings are not ?MSG, so a late answer to one is never taken for a round trip.
warm_up() ->
    publish(<<"ping">>, warm_up),
    receive {<<"pong">>, warm_up} -> ok after 100 -> warm_up() end.

round_trip() ->
    T0 = erlang:monotonic_time(nanosecond),
    publish(<<"ping">>, ?MSG),
    receive {<<"pong">>, ?MSG} -> erlang:monotonic_time(nanosecond) - T0
    after ?TIMEOUT -> fail(no_pong)
    end.

wait_members(Group, N) ->
    case length(pg:get_members(?SCOPE, Group)) >= N of
        true -> ok;
        false -> receive after 10 -> wait_members(Group, N) end
    end.

fail(Why) ->
    io:format(standard_error, "pubsub_bench: ~p~n", [Why]),
    halt(1).
