%% The `wippy bench` patterns for Erlang/OTP (the peer in benches/compare.sh).
%%
%% Based on /work/shared/anchors/erlang/abench.erl (spawn, pingpong, ring, fanin are the same
%% programs), extended with call, idle and latency, with the same count checks as the wippy
%% bench app, and printing one JSON line per run with the field names of `wippy bench --json`.
%%
%%   erlc -o DIR wbench.erl
%%   erl -noshell -pa DIR +P 4000000 +S 2 -run wbench main PATTERN [key=value ...]
%%
%% Patterns and sizes (defaults as in wippy bench):
%%   spawn    procs=100000
%%   pingpong messages=1000000
%%   ring     procs=10000 laps=100
%%   fanin    senders=1000 messages=1000
%%   call     messages=100000
%%   idle     procs=50000
%%   latency  rate=100000 duration_ms=5000 receivers=16 hogs=4 work=1000000
%%
%% Exit status 0; 1 when a count check fails (the message goes to stderr) or on bad arguments.
-module(wbench).
-behaviour(gen_server).
-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2]).

main([Pattern | Args]) ->
    Self = self(),
    %% Run in a fresh process so the init process does not skew the figures.
    {Pid, Ref} = spawn_monitor(fun() ->
        Opts = parse_args(Args),
        Result = run(list_to_atom(Pattern), Opts),
        Self ! {result, self(), Result}
    end),
    receive
        {result, Pid, {ok, Json}} ->
            io:put_chars([Json, $\n]),
            erlang:halt(0);
        {result, Pid, {error, Msg}} ->
            io:put_chars(standard_error, ["wbench ", Pattern, ": ", Msg, $\n]),
            erlang:halt(1);
        {'DOWN', Ref, process, Pid, Reason} ->
            io:format(standard_error, "wbench ~s: ~p~n", [Pattern, Reason]),
            erlang:halt(1)
    end;
main([]) ->
    io:put_chars(standard_error, "usage: wbench main PATTERN [key=value ...]\n"),
    erlang:halt(1).

parse_args(Args) ->
    maps:from_list([begin
                        [K, V] = string:split(A, "="),
                        {list_to_atom(K), list_to_integer(V)}
                    end || A <- Args]).

opt(Opts, Key, Default) -> maps:get(Key, Opts, Default).

now_ns() -> erlang:monotonic_time(nanosecond).

%% ------------------------------------------------------------------------- spawn
run(spawn, Opts) ->
    N = opt(Opts, procs, 100000),
    process_flag(message_queue_data, off_heap),
    Parent = self(),
    reset_peak(),
    T0 = now_ns(),
    spawn_n(N, fun() -> Parent ! done end),
    Done = wait_n(done, N),
    T1 = now_ns(),
    check([{"done messages", Done, N}],
          fun() -> result(spawn, N, T1 - T0, #{procs => N}, [{done, Done}]) end);

%% ------------------------------------------------------------------------- ping-pong
run(pingpong, Opts) ->
    M = opt(Opts, messages, 1000000),
    Pong = spawn(fun() -> pong(0) end),
    reset_peak(),
    T0 = now_ns(),
    Pongs = ping(Pong, M, 0),
    T1 = now_ns(),
    Pong ! {stop, self()},
    Pings = receive {count, C} -> C end,
    check([{"pongs received", Pongs, M}, {"pings seen by pong", Pings, M}],
          fun() -> result(pingpong, M, T1 - T0, #{messages => M},
                          [{pongs, Pongs}, {pings, Pings}]) end);

%% ------------------------------------------------------------------------- ring
run(ring, Opts) ->
    K = opt(Opts, procs, 10000),
    L = opt(Opts, laps, 100),
    First = build_ring(K - 1, self()),
    reset_peak(),
    T0 = now_ns(),
    Laps = ring_laps(First, 1, L, 0),
    T1 = now_ns(),
    First ! {stop, {0, -1, 0, 0}},
    {Sum, Min, Max, Nodes} = receive {stop, Totals} -> Totals end,
    check([{"laps completed", Laps, L}, {"nodes reporting", Nodes, K - 1},
           {"tokens forwarded by nodes", Sum, (K - 1) * L},
           {"fewest forwards by a node", Min, L}, {"most forwards by a node", Max, L}],
          fun() -> result(ring, K * L, T1 - T0, #{procs => K, laps => L},
                          [{laps, Laps}, {nodes, Nodes}, {forwarded, Sum},
                           {min_forwarded, Min}, {max_forwarded, Max}]) end);

%% ------------------------------------------------------------------------- fan-in
run(fanin, Opts) ->
    S = opt(Opts, senders, 1000),
    M = opt(Opts, messages, 1000),
    process_flag(message_queue_data, off_heap),  % idiomatic for a hot receiver
    Recv = self(),
    [put(I, 1) || I <- lists:seq(1, S)],
    reset_peak(),
    T0 = now_ns(),
    spawn_senders(S, Recv, M),
    Total = S * M,
    OutOfOrder = recv_n(Total, 0),
    T1 = now_ns(),
    Complete = length([I || I <- lists:seq(1, S), get(I) =:= M + 1]),
    check([{"messages out of order or duplicated", OutOfOrder, 0},
           {"complete senders", Complete, S}],
          fun() -> result(fanin, Total, T1 - T0, #{senders => S, messages => M},
                          [{received, Total}, {out_of_order, OutOfOrder},
                           {complete_senders, Complete}]) end);

%% ------------------------------------------------------------------------- call
run(call, Opts) ->
    M = opt(Opts, messages, 100000),
    {ok, Server} = gen_server:start(?MODULE, [], []),
    reset_peak(),
    T0 = now_ns(),
    Ok = call_n(Server, 1, M, 0),
    T1 = now_ns(),
    gen_server:stop(Server),
    check([{"calls returning the right value", Ok, M}],
          fun() -> result(call, M, T1 - T0, #{messages => M},
                          [{ok, Ok}, {wrong, M - Ok}, {failed, 0}]) end);

%% ------------------------------------------------------------------------- idle
run(idle, Opts) ->
    P = opt(Opts, procs, 50000),
    process_flag(message_queue_data, off_heap),
    Driver = self(),
    erlang:garbage_collect(),
    reset_peak(),
    RssBase = rss(),
    MemBase = erlang:memory(processes),
    T0 = now_ns(),
    %% A chain, as in the wippy app: each process knows the one spawned before it.
    Last = spawn_chain(P, Driver, none),
    Up = wait_n(up, P),
    T1 = now_ns(),
    RssFull = rss(),
    MemFull = erlang:memory(processes),
    Last ! stop,
    Acks = wait_n(ack, P),
    check([{"processes parked", Up, P}, {"processes stopped", Acks, P}],
          fun() ->
              Extra = [{bytes_per_process, (RssFull - RssBase) / P}],
              result(idle, P, T1 - T0, #{procs => P},
                     [{up, Up}, {acks, Acks}, {rss_base, RssBase}, {rss_full, RssFull},
                      {erlang_memory_per_process, (MemFull - MemBase) / P}], Extra)
          end);

%% ------------------------------------------------------------------------- latency
run(latency, Opts) ->
    Rate = opt(Opts, rate, 100000),
    DurMs = opt(Opts, duration_ms, 5000),
    K = opt(Opts, receivers, 16),
    H = opt(Opts, hogs, 2 * erlang:system_info(schedulers_online)),
    Work = opt(Opts, work, 1000000),
    Self = self(),
    Kinds = {arith, tables, strings},
    Hogs = [spawn(fun() -> hog(element(1 + (I rem 3), Kinds), Work, Self, 0, 0) end)
            || I <- lists:seq(0, H - 1)],
    Hist = hist_new(),
    Receivers = list_to_tuple([spawn(fun() -> receiver(Self, Hist, 0) end)
                               || _ <- lists:seq(1, K)]),
    timer:sleep(200),                                    % the hogs are busy
    reset_peak(),
    Total = round(Rate * DurMs / 1000),
    Interval = 1.0e9 / Rate,
    LagHist = hist_new(),
    Start = now_ns() + 1000000,
    spawn(fun() -> Self ! {generated, generate(Receivers, K, Start, Interval, 0, Total, LagHist)} end),
    LastSend = receive {generated, T} -> T end,
    [Pid ! stop || Pid <- tuple_to_list(Receivers)],
    Got = lists:sum([receive {received, N} -> N end || _ <- lists:seq(1, K)]),
    [Pid ! stop || Pid <- Hogs],
    Rounds = [receive {hog_rounds, N} -> N end || _ <- Hogs],
    Seconds = (LastSend - Start) / 1.0e9,
    Samples = hist_count(Hist),
    HogsIdle = length([R0 || R0 <- Rounds, R0 < 1]),
    check([{"messages received", Got, Total}, {"latency samples", Samples, Total},
           {"background processes without a round", HogsIdle, 0}],
          fun() ->
              Lat = [{p50_ns, hist_pct(Hist, 0.50)}, {p99_ns, hist_pct(Hist, 0.99)},
                     {p999_ns, hist_pct(Hist, 0.999)}, {max_ns, hist_pct(Hist, 1.0)}],
              result(latency, Total, round(Seconds * 1.0e9),
                     #{rate => Rate, duration => DurMs / 1000, receivers => K, hogs => H, work => Work},
                     [{sent, Total}, {received, Got}, {achieved_rate, Total / Seconds},
                      {sender_lag_p99_ns, hist_pct(LagHist, 0.99)},
                      {sender_lag_max_ns, hist_pct(LagHist, 1.0)},
                      {hogs, H}, {hog_rounds, lists:sum(Rounds)}], Lat)
          end);

run(Other, _) ->
    {error, io_lib:format("unknown pattern ~p", [Other])}.

%% ------------------------------------------------------------------------- helpers
spawn_n(0, _F) -> ok;
spawn_n(N, F) -> spawn(F), spawn_n(N - 1, F).

wait_n(Tag, N) -> wait_n(Tag, N, 0).
wait_n(_Tag, N, N) -> N;
wait_n(Tag, N, Got) -> receive Tag -> wait_n(Tag, N, Got + 1) end.

pong(N) ->
    receive
        {From, ping} -> From ! pong, pong(N + 1);
        {stop, From} -> From ! {count, N}
    end.

ping(_P, 0, Got) -> Got;
ping(P, N, Got) ->
    P ! {self(), ping},
    receive pong -> ping(P, N - 1, Got + 1) end.

build_ring(0, Next) -> Next;
build_ring(K, Next) -> build_ring(K - 1, spawn(fun() -> ring_node(Next, 0) end)).

ring_node(Next, N) ->
    receive
        {token, _} = T -> Next ! T, ring_node(Next, N + 1);
        {stop, {Sum, Min, Max, Nodes}} ->
            Min1 = if Min < 0; N < Min -> N; true -> Min end,
            Next ! {stop, {Sum + N, Min1, max(Max, N), Nodes + 1}}
    end.

ring_laps(_First, Lap, L, Ok) when Lap > L -> Ok;
ring_laps(First, Lap, L, Ok) ->
    First ! {token, Lap},
    receive {token, Got} -> ring_laps(First, Lap + 1, L, Ok + (if Got =:= Lap -> 1; true -> 0 end)) end.

spawn_senders(0, _Recv, _M) -> ok;
spawn_senders(I, Recv, M) ->
    spawn(fun() -> send_n(Recv, I, 1, M) end),
    spawn_senders(I - 1, Recv, M).

send_n(_To, _I, Seq, M) when Seq > M -> ok;
send_n(To, I, Seq, M) -> To ! {msg, I, Seq}, send_n(To, I, Seq + 1, M).

recv_n(0, Bad) -> Bad;
recv_n(N, Bad) ->
    receive
        {msg, I, Seq} ->
            case get(I) of
                Seq -> put(I, Seq + 1), recv_n(N - 1, Bad);
                _ -> recv_n(N - 1, Bad + 1)
            end
    end.

call_n(_S, I, M, Ok) when I > M -> Ok;
call_n(S, I, M, Ok) ->
    case gen_server:call(S, {inc, I}) of
        R when R =:= I + 1 -> call_n(S, I + 1, M, Ok + 1);
        _ -> call_n(S, I + 1, M, Ok)
    end.

%% gen_server callbacks (the `call` target: returns its argument + 1).
init([]) -> {ok, nostate}.
handle_call({inc, X}, _From, S) -> {reply, X + 1, S}.
handle_cast(_Msg, S) -> {noreply, S}.

spawn_chain(0, _Driver, Prev) -> Prev;
spawn_chain(N, Driver, Prev) ->
    P = spawn(fun() -> idle_proc(Driver, Prev) end),
    spawn_chain(N - 1, Driver, P).

idle_proc(Driver, Prev) ->
    Driver ! up,
    receive stop -> ok end,
    case Prev of none -> ok; _ -> Prev ! stop end,
    Driver ! ack.

receiver(Collector, Hist, N) ->
    receive
        {m, Sched} -> hist_add(Hist, now_ns() - Sched), receiver(Collector, Hist, N + 1);
        stop -> Collector ! {received, N}
    end.

%% Open loop: message I is due at Start + I * Interval and carries that time. When nothing is
%% due the generator yields (a normal-priority runnable process, so it competes with the hogs
%% for a scheduler like any process); it sleeps only when the next message is >= 1 ms away
%% (Erlang timers have millisecond resolution).
generate(_R, _K, _Start, _Iv, Total, Total, _Lag) -> now_ns();
generate(R, K, Start, Iv, I, Total, Lag) ->
    Due = Start + round(I * Iv),
    Now = now_ns(),
    if
        Now >= Due ->
            element(1 + (I rem K), R) ! {m, Due},
            hist_add(Lag, Now - Due),
            generate(R, K, Start, Iv, I + 1, Total, Lag);
        Due - Now >= 1000000 ->
            receive after (Due - Now) div 1000000 -> ok end,
            generate(R, K, Start, Iv, I, Total, Lag);
        true ->
            erlang:yield(),
            generate(R, K, Start, Iv, I, Total, Lag)
    end.

hog(Kind, Work, Parent, Rounds, Acc) ->
    Acc1 = hog_work(Kind, Work, Acc),
    receive
        stop -> Parent ! {hog_rounds, Rounds + 1}
    after 0 -> hog(Kind, Work, Parent, Rounds + 1, Acc1)
    end.

hog_work(arith, Work, Acc) -> arith(Work, Acc);
hog_work(tables, Work, Acc) -> tables(Work div 8, Acc, []);
hog_work(strings, Work, Acc) -> strings(Work div 16, Acc).

arith(0, Acc) -> Acc;
arith(I, Acc) -> arith(I - 1, (Acc * 1103515245 + 12345 + I) band 16#7fffffff).

tables(0, Acc, _Keep) -> Acc;
tables(I, Acc, Keep) ->
    T = {I, I + 1, #{x => I}},
    Keep1 = if length(Keep) >= 64 -> [T]; true -> [T | Keep] end,
    tables(I - 1, Acc + tuple_size(T), Keep1).

strings(0, Acc) -> Acc;
strings(I, Acc) ->
    S = <<"k", (integer_to_binary(I))/binary, ":", (integer_to_binary(Acc))/binary>>,
    strings(I - 1, Acc + byte_size(S)).

%% ------------------------------------------------------------------------- histogram
%% A log-linear histogram in a `counters` array (no garbage, safe from any process): values
%% below 128 ns have their own bucket; above, each power of two is split into 128 buckets
%% (relative error < 0.8%). Percentiles report a bucket's midpoint; values saturate at 2^42 ns.
-define(SUB, 128).
-define(MAXEXP, 42).

hist_new() -> counters:new(?SUB + (?MAXEXP - 7 + 1) * ?SUB, [write_concurrency]).

hist_add(H, V) when V < ?SUB -> counters:add(H, max(V, 0) + 1, 1);
hist_add(H, V) ->
    E = min(msb(V), ?MAXEXP),
    Sub = min((V bsr (E - 7)) - ?SUB, ?SUB - 1),
    counters:add(H, ?SUB + (E - 7) * ?SUB + Sub + 1, 1).

msb(V) ->
    E = trunc(math:log2(V)),
    if (1 bsl E) > V -> E - 1; (2 bsl E) =< V -> E + 1; true -> E end.

bucket_value(I) when I =< ?SUB -> I - 1;
bucket_value(I) ->
    J = I - ?SUB - 1,
    E = J div ?SUB + 7,
    ((?SUB + J rem ?SUB) bsl (E - 7)) + ((1 bsl (E - 7)) div 2).

hist_count(H) ->
    #{size := N} = counters:info(H),
    lists:sum([counters:get(H, I) || I <- lists:seq(1, N)]).

hist_pct(H, Q) ->
    #{size := N} = counters:info(H),
    Total = hist_count(H),
    Want = max(1, ceil(Q * Total)),
    hist_walk(H, 1, N, Want, 0).

hist_walk(_H, I, N, _Want, _Acc) when I > N -> null;
hist_walk(H, I, N, Want, Acc) ->
    Acc1 = Acc + counters:get(H, I),
    if Acc1 >= Want -> bucket_value(I); true -> hist_walk(H, I + 1, N, Want, Acc1) end.

%% ------------------------------------------------------------------------- memory
status_kb(Key) ->
    {ok, B} = file:read_file("/proc/self/status"),
    [Line] = [L || L <- binary:split(B, <<"\n">>, [global]),
                   binary:match(L, Key) =:= {0, byte_size(Key)}],
    [_, V | _] = binary:split(Line, [<<" ">>, <<"\t">>], [global, trim_all]),
    binary_to_integer(V) * 1024.

rss() -> status_kb(<<"VmRSS:">>).
peak() -> status_kb(<<"VmHWM:">>).
reset_peak() -> _ = file:write_file("/proc/self/clear_refs", <<"5">>), ok.

%% ------------------------------------------------------------------------- checks, JSON
check(Checks, Ok) ->
    case [io_lib:format("~s = ~p, expected ~p", [What, Got, Want])
          || {What, Got, Want} <- Checks, Got =/= Want] of
        [] -> {ok, Ok()};
        [First | _] -> {error, First}
    end.

result(Pattern, Ops, Ns, Params, Counts) -> result(Pattern, Ops, Ns, Params, Counts, []).

result(Pattern, Ops, Ns, Params, Counts, Extra) ->
    Seconds = Ns / 1.0e9,
    Lat = fun(K) -> proplists:get_value(K, Extra, null) end,
    Fields = [{pattern, atom_to_binary(Pattern)}, {run, 1}, {peer, <<"erlang">>},
              {workers, erlang:system_info(schedulers_online)},
              {otp, list_to_binary(erlang:system_info(otp_release))},
              {ops, Ops}, {seconds, Seconds}, {ns_per_op, Ns / max(1, Ops)},
              {ops_per_sec, Ops / max(1.0e-9, Seconds)},
              {p50_ns, Lat(p50_ns)}, {p99_ns, Lat(p99_ns)}, {p999_ns, Lat(p999_ns)},
              {max_ns, Lat(max_ns)}, {rss_bytes, peak()},
              {bytes_per_process, Lat(bytes_per_process)},
              {params, maps:to_list(Params)}, {counts, Counts}],
    json(Fields).

json(null) -> "null";
json(true) -> "true";
json(false) -> "false";
json(B) when is_binary(B) -> [$", B, $"];
json(I) when is_integer(I) -> integer_to_list(I);
json(F) when is_float(F) -> float_to_list(F, [{decimals, 6}, compact]);
json(L) when is_list(L) ->
    [${, lists:join($,, [[$", atom_to_list(K), $", $:, json(V)] || {K, V} <- L]), $}].
