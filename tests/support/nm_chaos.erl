%% The Erlang side of nodemesh's chaos suite (see chaos_node.py for the Python side: the
%% same messages, tallies and answers).
%%
%% start(Name, Cookie, Peers, Traffic) starts distribution (net_kernel:start/2, OTP 24.3+)
%% as Name, and, unlinked, in this node:
%%   chaos       the receiver: tallies {seq, From, Inc, Epoch, N} per {From, Inc, Epoch}
%%               as {Count, First, Last, NotIncreasing, Gaps};
%%   chaos_mon   counts nodedowns per peer (net_kernel:monitor_nodes, hidden nodes too);
%%   chaos_conn  connects to every listed peer not connected, every 300 ms (each attempt
%%               in a process of its own: one to an unreachable host blocks for
%%               net_setuptime, and net_kernel merges attempts to the same node);
%%   chaos_tx    every 20 ms sends the next N to {chaos, Peer} of each connected peer, with
%%               [noconnect, nosuspend]: a peer that is down or busy is skipped, and N only
%%               counts messages handed to the distribution. Epoch is the connection's
%%               id (erlang:nodes(connected, #{connection_id => true}), OTP 25.1+).
%% It returns this incarnation's number. traffic(true | false) starts / stops the sender
%% (false answers {#{Peer => #{Epoch => {First, Last}}}, #{Peer => EpochUpNow}});
%% report() answers {Tallies, Downs}.
-module(nm_chaos).
-export([start/4, traffic/1, report/0]).

start(Name, Cookie, Peers, Traffic) ->
    Inc = os:system_time(microsecond),
    %% The receiver is registered before the node goes distributed: a peer connecting in
    %% between would send to a name nobody holds yet, and Erlang drops that silently.
    register(chaos, spawn(fun() -> receiver(#{}) end)),
    {ok, _} = net_kernel:start(Name, #{name_domain => longnames}),
    erlang:set_cookie(node(), Cookie),
    register(chaos_mon, spawn(fun() -> monitor_start() end)),
    register(chaos_conn, spawn(fun() -> connector(Peers -- [node()]) end)),
    register(chaos_tx, spawn(fun() -> sender(Peers -- [node()], Inc, {#{}, #{}}, Traffic) end)),
    Inc.

traffic(true) ->
    chaos_tx ! {traffic, true, self()},
    receive {chaos_traffic, _} -> true end;
traffic(false) ->
    chaos_tx ! {traffic, false, self()},
    receive {chaos_traffic, Sent} -> {Sent, epochs()} end.

report() ->
    chaos ! {report, self()},
    chaos_mon ! {report, self()},
    Tallies = receive {chaos_tallies, T} -> T end,
    Downs = receive {chaos_downs, D} -> D end,
    {Tallies, Downs}.

receiver(S) ->
    receive
        {seq, From, Inc, Epoch, N} ->
            Key = {From, Inc, Epoch},
            receiver(maps:put(Key, tally(maps:get(Key, S, none), N), S));
        {report, Pid} ->
            Pid ! {chaos_tallies, S},
            receiver(S)
    end.

tally(none, N) -> {1, N, N, 0, 0};
tally({C, F, L, Bad, Gaps}, N) when N > L + 1 -> {C + 1, F, N, Bad, Gaps + 1};
tally({C, F, L, Bad, Gaps}, N) when N > L -> {C + 1, F, N, Bad, Gaps};
tally({C, F, L, Bad, Gaps}, _) -> {C + 1, F, L, Bad + 1, Gaps}.

monitor_start() ->
    ok = net_kernel:monitor_nodes(true, [{node_type, all}]),
    monitor_loop(#{}).

monitor_loop(Downs) ->
    receive
        {nodedown, Node, _} -> monitor_loop(maps:update_with(Node, fun(C) -> C + 1 end, 1, Downs));
        {report, Pid} -> Pid ! {chaos_downs, Downs}, monitor_loop(Downs);
        _ -> monitor_loop(Downs)
    end.

connector(Peers) ->
    Connected = nodes(connected),
    [spawn(fun() -> net_kernel:connect_node(P) end) || P <- Peers, not lists:member(P, Connected)],
    timer:sleep(300),
    connector(Peers).

epochs() ->
    maps:from_list([{N, Id} || {N, #{connection_id := Id}} <-
        erlang:nodes(connected, #{connection_id => true})]).

%% Seqs: #{Peer => LastN}; Sent: #{Peer => #{Epoch => {First, Last}}}.
sender(Peers, Inc, {Seqs, Sent}, On) ->
    receive
        {traffic, Now, Pid} ->
            Pid ! {chaos_traffic, Sent},
            sender(Peers, Inc, {Seqs, Sent}, Now)
    after 20 ->
        case On of
            true -> sender(Peers, Inc, send_round(Peers, Inc, epochs(), {Seqs, Sent}), On);
            false -> sender(Peers, Inc, {Seqs, Sent}, On)
        end
    end.

send_round(Peers, Inc, Epochs, State) ->
    lists:foldl(fun(P, Acc) -> send_one(P, Inc, maps:get(P, Epochs, none), Acc) end, State, Peers).

send_one(_, _, none, State) ->
    State;
send_one(P, Inc, Epoch, {Seqs, Sent}) ->
    N = maps:get(P, Seqs, 0) + 1,
    case erlang:send({chaos, P}, {seq, node(), Inc, Epoch, N}, [noconnect, nosuspend]) of
        ok ->
            Spans = maps:get(P, Sent, #{}),
            {First, _} = maps:get(Epoch, Spans, {N, N}),
            {maps:put(P, N, Seqs), maps:put(P, maps:put(Epoch, {First, N}, Spans), Sent)};
        _ ->
            {Seqs, Sent}
    end.
