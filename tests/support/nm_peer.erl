%% A controllable Erlang node for nodemesh's interop tests.
%%
%% Reads one request per line from stdin: "<Id> <Erlang expressions ending in '.'>",
%% evaluates them in this process (registered as nm_peer, so Python can send to it and
%% the test can then `receive` here) and answers one line per request:
%%   "<Id> ok <Base64 of term_to_binary(Value)> <~w of Value>"
%%   "<Id> error <~w of {Class, Reason}>"
-module(nm_peer).
-export([main/0]).

main() ->
    register(nm_peer, self()),
    io:setopts([binary]),
    io:format("ready ~s~n", [node()]),
    loop(erl_eval:new_bindings()).

loop(Bindings) ->
    case io:get_line('') of
        eof -> erlang:halt(0);
        {error, _} -> erlang:halt(0);
        Line ->
            [Id, Src] = binary:split(string:trim(Line), <<" ">>),
            NewBindings = answer(Id, Src, Bindings),
            loop(NewBindings)
    end.

answer(Id, Src, Bindings) ->
    try
        {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Src)),
        {ok, Exprs} = erl_parse:parse_exprs(Tokens),
        {value, Value, NewBindings} = erl_eval:exprs(Exprs, Bindings),
        Bin = base64:encode(term_to_binary(Value)),
        io:format("~s ok ~s ~w~n", [Id, Bin, Value]),
        NewBindings
    catch Class:Reason ->
        io:format("~s error ~w~n", [Id, {Class, Reason}]),
        Bindings
    end.
