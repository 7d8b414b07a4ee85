%% A small gen_server for nodemesh's GenServer interop tests (Python calling Erlang).
%% Started unlinked and registered as kv: gen_server:start({local, kv}, nm_kv, #{}, []).
-module(nm_kv).
-behaviour(gen_server).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

init(State) -> {ok, State}.

handle_call({put, K, V}, _From, S) -> {reply, ok, S#{K => V}};
handle_call({get, K}, _From, S) -> {reply, maps:get(K, S, undefined), S};
handle_call({sleep, Ms}, _From, S) -> timer:sleep(Ms), {reply, slept, S};
handle_call({stop, Reason}, _From, S) -> {stop, Reason, S};
handle_call(crash, _From, _S) -> erlang:error(boom);
handle_call(hold, From, S) -> {noreply, S#{held => From}};
handle_call(from, From, S) -> {reply, From, S}.

handle_cast({put, K, V}, S) -> {noreply, S#{K => V}};
handle_cast(release, #{held := From} = S) -> gen_server:reply(From, released), {noreply, S}.

handle_info(_Msg, S) -> {noreply, S}.
