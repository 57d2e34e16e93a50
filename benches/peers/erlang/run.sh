#!/usr/bin/env bash
# Side-by-side actor benchmarks: Erlang/OTP (abench.erl, unmodified copy of the team's anchor)
# and wippy-rt's criterion benches, interleaved so machine noise hits both alike.
#
#   benches/peers/erlang/run.sh [ROUNDS]        (default 3 rounds)
#
# Needs `erl`/`erlc` (Debian: apt-get install -y erlang-base). Prints Erlang medians per test
# and criterion's median lines for wippy-rt.
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS="${1:-3}"
command -v erlc >/dev/null || { echo "erlang not found: apt-get install -y erlang-base" >&2; exit 1; }
OUT="${TMPDIR:-/tmp}/wippy-abench"
mkdir -p "$OUT"
erlc -o "$OUT" abench.erl

erl_run() { (cd "$OUT" && erl -noshell +P 4000000 +S 2 -run abench main "$@"); }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A samples
for r in $(seq "$ROUNDS"); do
    echo "== round $r: erlang"
    s=$(erl_run spawn 100000); samples[spawn]+="$(echo "$s" | awk '/spawn_exit_per_proc_us/ {print $2}') "
    s=$(erl_run pingpong 1000000); samples[pingpong]+="$(echo "$s" | awk '/pingpong_rtt_ns/ {print $2}') "
    s=$(erl_run ring 10000 100); samples[ring]+="$(echo "$s" | awk '/ring_msgs_per_s/ {print $2}') "
    s=$(erl_run fanin 1000 1000); samples[fanin]+="$(echo "$s" | awk '/fanin_msgs_per_s/ {print $2}') "
    echo "== round $r: wippy-rt"
    (cd ../../.. && cargo bench -q -p wippy-rt --bench actors -- "actors/2w" 2>/dev/null | grep -E "^actors|time:|thrpt:")
done
echo
echo "== erlang medians over $ROUNDS rounds (+S 2)"
echo "spawn+exit us/process: $(echo ${samples[spawn]} | tr ' ' '\n' | median)   samples: ${samples[spawn]}"
echo "ping-pong ns/round trip: $(echo ${samples[pingpong]} | tr ' ' '\n' | median)   samples: ${samples[pingpong]}"
echo "ring msgs/s: $(echo ${samples[ring]} | tr ' ' '\n' | median)   samples: ${samples[ring]}"
echo "fan-in msgs/s: $(echo ${samples[fanin]} | tr ' ' '\n' | median)   samples: ${samples[fanin]}"
