#!/usr/bin/env bash
# Run `wippy bench` and the installed peers (benches/peers/) alternately, several times, and
# print per pattern: wippy median, each peer's median and the ratio wippy / peer.
#
#   benches/compare.sh                     every pattern
#   benches/compare.sh ring pingpong       some patterns
#
# Environment:
#   RUNS=5            launches per pattern and implementation (alternating wippy, peers, ...)
#   WORKERS=2         wippy --workers, Erlang +S, Go GOMAXPROCS
#   PEERS="erlang go" peers to try (missing ones are reported and skipped)
#   WIPPY=path        wippy binary (default: cargo build --release, target/release/wippy)
#   WIPPY_ARGS=...    extra `wippy bench` flags (e.g. --no-pin)
#   SIZES_<pattern>="k=v ..."  sizes (default below; duration_ms for latency)
#   TIMEOUT=900       seconds one launch may take before it counts as failed
#   OUT=dir           where raw JSON lines and the table go (default target/compare)
#
# Each launch prints one JSON line (`wippy bench --json --runs 1`, the peers print the same
# fields); the compared metric is ns_per_op, except idle (bytes_per_process) and latency
# (p99_ns). Lower is better everywhere, so a ratio above 1 means wippy is slower/bigger.
# A launch that fails or times out is reported as failed; that implementation is not
# launched again for the pattern. Nothing is ever estimated or filled in.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-5}
WORKERS=${WORKERS:-2}
PEERS=${PEERS:-"erlang go"}
TIMEOUT=${TIMEOUT:-900}
OUT=${OUT:-$ROOT/target/compare}
WIPPY_ARGS=${WIPPY_ARGS:-}
ALL_PATTERNS="spawn pingpong ring fanin call idle latency"
PATTERNS=${*:-$ALL_PATTERNS}
mkdir -p "$OUT/build"
OUT=$(cd "$OUT" && pwd)
RAW="$OUT/raw.jsonl"
: > "$RAW"

default_sizes() {
  case "$1" in
    spawn) echo "procs=100000" ;;
    pingpong) echo "messages=1000000" ;;
    ring) echo "procs=10000 laps=100" ;;
    fanin) echo "senders=1000 messages=1000" ;;
    call) echo "messages=100000" ;;
    idle) echo "procs=50000" ;;
    latency) echo "rate=100000 duration_ms=5000 receivers=16 hogs=$((2 * WORKERS)) work=1000000" ;;
    *) return 1 ;;
  esac
}
metric_of() {
  case "$1" in
    idle) echo bytes_per_process ;;
    latency) echo p99_ns ;;
    *) echo ns_per_op ;;
  esac
}
target_of() {   # the issue's targets (ratio wippy/Erlang, or absolute)
  case "$1" in
    spawn) echo "<= 2.5x Erlang" ;;
    pingpong|ring|fanin) echo "<= 2x Erlang" ;;
    idle) echo "<= 13 KB" ;;
    latency) echo "p99 <= 1 ms" ;;
    *) echo "-" ;;
  esac
}
for p in $PATTERNS; do
  default_sizes "$p" > /dev/null || { echo "unknown pattern: $p (one of: $ALL_PATTERNS)" >&2; exit 2; }
done

# ------------------------------------------------------------------ implementations
IMPLS=(wippy)
if [[ -z "${WIPPY:-}" ]]; then
  echo ">> building wippy (release)" >&2
  cargo build --release --bin wippy >&2 || { echo "wippy build failed" >&2; exit 1; }
  WIPPY="$ROOT/target/release/wippy"
fi
[[ -x "$WIPPY" ]] || { echo "wippy binary not found: $WIPPY" >&2; exit 1; }

SKIPPED=()
for peer in $PEERS; do
  case "$peer" in
    erlang)
      if command -v erlc > /dev/null && command -v erl > /dev/null; then
        if erlc -o "$OUT/build" benches/peers/erlang/wbench.erl; then IMPLS+=(erlang)
        else SKIPPED+=("erlang (wbench.erl did not compile)"); fi
      else
        SKIPPED+=("erlang (erl/erlc not installed: apt-get install erlang-base)")
      fi ;;
    go)
      if command -v go > /dev/null; then
        if (cd benches/peers/go && GO111MODULE=off GOTOOLCHAIN=local go build -o "$OUT/build/gowbench" wbench.go); then IMPLS+=(go)
        else SKIPPED+=("go (wbench.go did not build)"); fi
      else
        SKIPPED+=("go (not installed: apt-get install golang-go)")
      fi ;;
    *) SKIPPED+=("$peer (unknown peer)") ;;
  esac
done

# launch IMPL PATTERN SIZES -> one JSON line on stdout, or nothing (non-zero status) on failure
launch() {
  local impl=$1 pat=$2 sizes=$3 args=() kv k v
  case "$impl" in
    wippy)
      for kv in $sizes; do
        k=${kv%%=*}; v=${kv#*=}
        if [[ $k == duration_ms ]]; then args+=(--duration "${v}ms"); else args+=("--$k" "$v"); fi
      done
      # shellcheck disable=SC2086
      timeout "$TIMEOUT" "$WIPPY" bench "$pat" --runs 1 --json --workers "$WORKERS" $WIPPY_ARGS "${args[@]}" ;;
    erlang)
      # shellcheck disable=SC2086
      timeout "$TIMEOUT" erl -noshell -pa "$OUT/build" +P 4000000 +S "$WORKERS" -run wbench main "$pat" $sizes ;;
    go)
      # shellcheck disable=SC2086
      GOMAXPROCS=$WORKERS timeout "$TIMEOUT" "$OUT/build/gowbench" "$pat" $sizes ;;
  esac
}

field() {   # field NAME < json line   (top-level numeric field; empty for null/missing)
  sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"
}

stats() {   # median (min..max) of the numbers on stdin
  sort -g | awk '{v[NR]=$1} END {
    if (NR == 0) { print ""; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%s %s %s\n", m, v[1], v[NR] }'
}

fmt() {   # fmt METRIC VALUE -> human units
  awk -v m="$1" -v x="$2" 'BEGIN {
    if (m == "bytes_per_process") { if (x >= 1024) printf "%.1f KiB", x / 1024; else printf "%.0f B", x; exit }
    if (x >= 1e6) printf "%.2f ms", x / 1e6; else if (x >= 1e3) printf "%.2f us", x / 1e3; else printf "%.0f ns", x }'
}

# ------------------------------------------------------------------ machine
{
  echo "date: $(date -u +%FT%TZ)"
  echo "machine: $(nproc) CPUs ($(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p')), $(free -g 2>/dev/null | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}"), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wippy: $("$WIPPY" version 2>/dev/null) ($(git rev-parse --short HEAD 2>/dev/null || echo ?)), --workers $WORKERS $WIPPY_ARGS"
  for impl in "${IMPLS[@]}"; do
    case "$impl" in
      erlang) echo "erlang: OTP $(erl -noshell -eval 'io:format("~s erts-~s",[erlang:system_info(otp_release),erlang:system_info(version)]),halt().'), +S $WORKERS" ;;
      go) echo "go: $(go version), GOMAXPROCS=$WORKERS" ;;
    esac
  done
  echo "runs: $RUNS launches per pattern and implementation, alternating"
  for s in "${SKIPPED[@]}"; do echo "skipped: $s"; done
} | tee "$OUT/machine.txt" >&2

# ------------------------------------------------------------------ runs
declare -A VALUES FAILED
for pat in $PATTERNS; do
  var="SIZES_$pat"; sizes=${!var:-$(default_sizes "$pat")}
  metric=$(metric_of "$pat")
  for r in $(seq 1 "$RUNS"); do
    for impl in "${IMPLS[@]}"; do
      [[ -n "${FAILED[$pat/$impl]:-}" ]] && continue
      echo ">> $pat [$sizes] run $r/$RUNS: $impl" >&2
      err="$OUT/last-$impl.err"
      line=$(launch "$impl" "$pat" "$sizes" 2> "$err" | grep '^{' | tail -1)
      v=$(printf '%s' "$line" | field "$metric")
      if [[ -z "$line" || -z "$v" ]]; then
        FAILED[$pat/$impl]=$(grep -v '^\s*$' "$err" | tail -1 | cut -c1-160)
        FAILED[$pat/$impl]=${FAILED[$pat/$impl]:-"no result (timeout after ${TIMEOUT}s?)"}
        echo "   failed: ${FAILED[$pat/$impl]}" >&2
        continue
      fi
      printf '{"impl":"%s","line":%s}\n' "$impl" "$line" >> "$RAW"
      VALUES[$pat/$impl]+="$v "
    done
  done
done

# ------------------------------------------------------------------ table
{
  head="| pattern | sizes | metric | wippy"
  sep="|---|---|---|---"
  for impl in "${IMPLS[@]:1}"; do head+=" | $impl | wippy/$impl"; sep+="|---|---"; done
  echo "$head | target |"
  echo "$sep|---|"
  for pat in $PATTERNS; do
    var="SIZES_$pat"; sizes=${!var:-$(default_sizes "$pat")}
    metric=$(metric_of "$pat")
    row="| $pat | $sizes | $metric"
    read -r wm wlo whi <<< "$(tr ' ' '\n' <<< "${VALUES[$pat/wippy]:-}" | grep . | stats)"
    if [[ -n "${wm:-}" ]]; then row+=" | $(fmt "$metric" "$wm") ($(fmt "$metric" "$wlo")..$(fmt "$metric" "$whi"))"
    else row+=" | failed: ${FAILED[$pat/wippy]:-no result}"; fi
    for impl in "${IMPLS[@]:1}"; do
      read -r pm plo phi <<< "$(tr ' ' '\n' <<< "${VALUES[$pat/$impl]:-}" | grep . | stats)"
      if [[ -n "${pm:-}" ]]; then
        row+=" | $(fmt "$metric" "$pm") ($(fmt "$metric" "$plo")..$(fmt "$metric" "$phi"))"
        if [[ -n "${wm:-}" ]]; then row+=" | $(awk -v a="$wm" -v b="$pm" 'BEGIN{printf "%.2f", a / b}')"
        else row+=" | -"; fi
      else
        row+=" | failed: ${FAILED[$pat/$impl]:-no result} | -"
      fi
    done
    echo "$row | $(target_of "$pat") |"
  done
  echo
  echo "Cells: median (min..max) over $RUNS launches; ratio = wippy median / peer median (lower is better for wippy)."
} | tee "$OUT/table.md"
