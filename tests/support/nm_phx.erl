%% A stand-in for an Elixir node running Phoenix.PubSub, for nodemesh's interop tests.
%%
%% It sends and receives exactly the messages of phoenix_pubsub's PG2 adapter
%% (lib/phoenix/pubsub/pg2.ex) without needing Elixir: the pg scope
%% 'Elixir.Phoenix.PubSub', adapter groups [Adapter, Adapter_2, ..., Adapter_N] with
%% Adapter = 'Elixir.<Name>.Adapter', one worker per group registered under the group's
%% name and joined to it, and {forward_to_local, Topic, Message, Dispatcher} between
%% nodes. Local subscribers are kept by a registry process registered as the PubSub's
%% name (Phoenix uses an Elixir Registry; that part never crosses the wire).
-module(nm_phx).
-export([start/2, subscribe/2, broadcast/3, direct_broadcast/4, drain/2]).

-define(SCOPE, 'Elixir.Phoenix.PubSub').

%% start('Elixir.MyApp.PubSub', PoolSize)
start(Name, PoolSize) ->
    case pg:start(?SCOPE) of
        {ok, _} -> ok;
        {error, {already_started, _}} -> ok
    end,
    Registry = spawn(fun() -> registry(#{}) end),
    register(Name, Registry),
    Adapter = list_to_atom(atom_to_list(Name) ++ ".Adapter"),
    Groups = [Adapter | [list_to_atom(atom_to_list(Adapter) ++ "_" ++ integer_to_list(N))
                         || N <- lists:seq(2, PoolSize)]],
    persistent_term:put({?MODULE, Name}, list_to_tuple(Groups)),
    [start_worker(Name, Group) || Group <- Groups],
    Groups.

start_worker(Name, Group) ->
    Self = self(),
    spawn(fun() ->
        register(Group, self()),
        ok = pg:join(?SCOPE, Group, self()),
        Self ! {joined, Group},
        worker(Name)
    end),
    receive {joined, Group} -> ok end.

%% Phoenix.PubSub.PG2Worker: forward_to_local is dispatched locally, the rest ignored.
worker(Name) ->
    receive
        {forward_to_local, Topic, Message, _Dispatcher} ->
            Name ! {dispatch, Topic, Message};
        _ ->
            ok
    end,
    worker(Name).

registry(Subs) ->
    receive
        {subscribe, Pid, Topic, From} ->
            From ! subscribed,
            registry(Subs#{Topic => [Pid | maps:get(Topic, Subs, [])]});
        {dispatch, Topic, Message} ->
            [Pid ! Message || Pid <- maps:get(Topic, Subs, [])],
            registry(Subs)
    end.

subscribe(Name, Topic) ->
    Name ! {subscribe, self(), Topic, self()},
    receive subscribed -> ok end.

%% Phoenix.PubSub.broadcast/3 with the PG2 adapter: one group picked by
%% phash2(self()), every member of it on another node gets forward_to_local, and
%% local subscribers get the message directly. Returns how many remote pids it sent to.
broadcast(Name, Topic, Message) ->
    Groups = persistent_term:get({?MODULE, Name}),
    Group = element(erlang:phash2(self(), tuple_size(Groups)) + 1, Groups),
    Remote = [Pid || Pid <- pg:get_members(?SCOPE, Group), node(Pid) =/= node()],
    [Pid ! {forward_to_local, Topic, Message, ?SCOPE} || Pid <- Remote],
    Name ! {dispatch, Topic, Message},
    length(Remote).

%% Phoenix.PubSub.direct_broadcast/4: to the worker registered as the group on Node.
direct_broadcast(Name, Node, Topic, Message) ->
    Groups = persistent_term:get({?MODULE, Name}),
    Group = element(erlang:phash2(self(), tuple_size(Groups)) + 1, Groups),
    {Group, Node} ! {forward_to_local, Topic, Message, ?SCOPE},
    ok.

%% The next N messages of this process (fewer if Timeout ms pass without one).
drain(N, Timeout) -> drain(N, Timeout, []).
drain(0, _, Acc) -> lists:reverse(Acc);
drain(N, Timeout, Acc) ->
    receive M -> drain(N - 1, Timeout, [M | Acc])
    after Timeout -> lists:reverse(Acc)
    end.
