#!/usr/bin/env bash
# Drives a built kv_server the way Redis clients do and compares its replies byte for byte with
# golden transcripts recorded from a real redis-server 7.0 (Debian 12's): a redis-cli session,
# raw pipelined RESP/inline requests and protocol errors. Then: a request split across writes,
# expiry on timers, size limits, redis-benchmark with no errors, and a SIGTERM that lets a
# half-received request finish, closes the listener and exits 0 with the summary line.
#
#   kv_server_test.sh KV_SERVER DATA_DIR WORK_DIR     test
#   kv_server_test.sh --record DATA_DIR WORK_DIR      re-record DATA_DIR/*.golden from redis-server
set -euo pipefail
source "$(dirname "$0")/common.sh"

mode=test
if [ "${1:-}" = "--record" ]; then
  mode=record
fi
bin=$1
data=$2
work=$3
mkdir -p "$work"

require_tools redis-cli redis-benchmark ss

# Raw requests as printf formats, each ending in a way that makes the server close the
# connection (QUIT or a protocol error), so reading to end of stream ends.
declare -A raw
raw[pipeline]='*3\r\n$3\r\nSET\r\n$3\r\nraw\r\n$6\r\nva\r\nl\0\r\n*2\r\n$3\r\nGET\r\n$3\r\nraw\r\nPING\r\nECHO "a b"\r\n\r\n*0\r\n*-1\r\nget raw\nNOSUCH x\r\nset q "x\\x41\\n"\r\nget q\r\n*1\r\n$4\r\nPING\r\nMGET raw nokey\r\nQUIT\r\nPING\r\n'
raw[proto_multibulk]='SET a 1\r\n*x\r\nPING\r\n'
raw[proto_dollar]='*1\r\n+PING\r\n'
raw[proto_bulklen]='*1\r\n$-5\r\n'
raw[proto_quotes]='SET "a b\r\nPING\r\n'

# Sends printf format $2 to port $1 in one write and prints everything received until the
# server closes the connection.
raw_exchange() {
  timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0; printf "$1" >&3; cat <&3' "$1" "$2"
}

run_cases() {  # port, output dir
  local port=$1 out=$2
  redis-cli -p "$port" FLUSHALL >/dev/null
  redis-cli -p "$port" <"$data/commands.txt" >"$out/commands.golden" 2>&1 || true
  for name in "${!raw[@]}"; do
    redis-cli -p "$port" FLUSHALL >/dev/null
    raw_exchange "$port" "${raw[$name]}" >"$out/raw_$name.golden" || true
  done
}

if [ "$mode" = record ]; then
  command -v redis-server >/dev/null || fail "redis-server not found (apt-get install redis-server)"
  port=$((20000 + RANDOM % 20000))
  redis-server --port "$port" --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
  track "$!"
  redis_up() { redis-cli -p "$port" PING >/dev/null 2>&1; }
  wait_for 10 redis_up || fail "redis-server did not start"
  run_cases "$port" "$data"
  echo "recorded from $(redis-server --version)"
  exit 0
fi

# --- start kv_server -------------------------------------------------------------------------
start_server "$bin" --workers 2 --grace-ms 5000  # sets pid and port
echo "kv_server on port $port"

# --- golden transcripts ----------------------------------------------------------------------
mkdir -p "$work/got"
run_cases "$port" "$work/got"
diff -u "$data/commands.golden" "$work/got/commands.golden" || fail "redis-cli transcript differs from redis-server's"
for name in "${!raw[@]}"; do
  if ! cmp -s "$data/raw_$name.golden" "$work/got/raw_$name.golden"; then
    echo "expected:"; od -c "$data/raw_$name.golden"
    echo "got:"; od -c "$work/got/raw_$name.golden"
    fail "raw exchange '$name' differs from redis-server's"
  fi
done
echo "ok: transcripts match redis-server byte for byte"

# --- COMMAND: what redis-cli and client libraries ask at connect ----------------------------
# Not in the transcript: the counts differ from Redis's by design (some 20 commands, not 240).
# COUNT is an integer reply (redis-cli prints "(integer) N" on a terminal), and the size of LIST.
count=$(redis-cli -p "$port" COMMAND COUNT)
[[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -ge 20 ] || fail "COMMAND COUNT: [$count], not an integer >= 20"
got=$(raw_exchange "$port" 'COMMAND COUNT\r\nQUIT\r\n')
[ "$got" = $':'"$count"$'\r\n+OK\r' ] || fail "COMMAND COUNT is not the integer reply :$count: [$got]"
redis-cli -p "$port" COMMAND LIST >"$work/command_list"
[ "$(wc -l <"$work/command_list")" = "$count" ] || fail "COMMAND LIST names $(wc -l <"$work/command_list") commands, COUNT says $count"
for name in get set ping command; do
  grep -qx "$name" "$work/command_list" || fail "COMMAND LIST lacks $name: $(cat "$work/command_list")"
done
[ "$(redis-cli -p "$port" COMMAND DOCS | wc -c)" -le 1 ] || fail "COMMAND DOCS is not an empty array"
got=$(redis-cli -p "$port" COMMAND NOPE)
[ "$got" = "ERR unknown subcommand 'NOPE'. Try COMMAND HELP." ] || fail "COMMAND NOPE: [$got]"
echo "ok: COMMAND COUNT $count, LIST, DOCS, an unknown subcommand"

# --- a request split across writes -----------------------------------------------------------
got=$(timeout 10 bash -c '
  exec 3<>/dev/tcp/127.0.0.1/$0
  printf "*3\r\n\$3\r\nSE" >&3; sleep 0.05
  printf "T\r\n\$5\r\nsp" >&3; sleep 0.05
  printf "lit\r\n\$5\r\nhel" >&3; sleep 0.05
  printf "lo\r" >&3; sleep 0.05
  printf "\nGET split\r\nQUIT\r\n" >&3
  cat <&3' "$port" | od -An -c | tr -s ' \n' ' ')
want=$(printf '+OK\r\n$5\r\nhello\r\n+OK\r\n' | od -An -c | tr -s ' \n' ' ')
[ "$got" = "$want" ] || fail "split request: got [$got] want [$want]"
echo "ok: split request"

# --- expiry ----------------------------------------------------------------------------------
redis-cli -p "$port" FLUSHALL >/dev/null
redis-cli -p "$port" SET short v PX 100 >/dev/null
redis-cli -p "$port" SET long v EX 100 >/dev/null
[ "$(redis-cli -p "$port" DBSIZE)" = 2 ] || fail "DBSIZE before expiry"
gone() { [ "$(redis-cli -p "$port" EXISTS short)" = 0 ]; }
wait_for 5 gone || fail "key with PX 100 did not expire"
[ "$(redis-cli -p "$port" DBSIZE)" = 1 ] || fail "DBSIZE after expiry"
[ "$(redis-cli -p "$port" GET long)" = v ] || fail "key with EX 100 expired early"
echo "ok: expiry"

# --- size limits and large values ------------------------------------------------------------
head -c 1048576 /dev/urandom | base64 -w0 >"$work/big.txt"
redis-cli -p "$port" -x SET bigval <"$work/big.txt" >/dev/null
redis-cli -p "$port" GET bigval >"$work/big.got"
cmp -s <(cat "$work/big.txt"; echo) "$work/big.got" || fail "1 MiB value did not round-trip"
got=$(raw_exchange "$port" '*2\r\n$3\r\nGET\r\n$70000000\r\n' | tr -d '\r')
[ "$got" = "-ERR Protocol error: invalid bulk length" ] || fail "oversized bulk: $got"
got=$(raw_exchange "$port" "$(head -c 70000 /dev/zero | tr '\0' a)" | tr -d '\r')
[ "$got" = "-ERR Protocol error: too big inline request" ] || fail "oversized inline: $got"
echo "ok: limits"

# --- redis-benchmark -------------------------------------------------------------------------
redis-cli -p "$port" FLUSHALL >/dev/null
if ! timeout 120 redis-benchmark -p "$port" -t ping,set,get,incr,mset -n 100000 -P 16 -q >"$work/bench.out" 2>&1; then
  cat "$work/bench.out"; fail "redis-benchmark failed"
fi
tr '\r' '\n' <"$work/bench.out" | grep -E 'requests per second' | sed 's/^ *//' | grep -v 'rps=' || true
if tr '\r' '\n' <"$work/bench.out" | grep -qiE 'error|warning'; then
  cat "$work/bench.out"; fail "redis-benchmark reported errors"
fi
for t in PING_INLINE PING_MBULK SET GET INCR 'MSET \(10 keys\)'; do
  tr '\r' '\n' <"$work/bench.out" | grep -qE "^ *$t: [0-9.]+ requests per second" || fail "no result for $t"
done
[ "$(redis-cli -p "$port" GET counter:__rand_int__)" = 100000 ] || fail "INCR count after benchmark"
echo "ok: redis-benchmark"

# --- the advice in "unknown subcommand ... Try CONFIG HELP." works ---------------------------
for cmd in CONFIG COMMAND; do
  redis-cli -p "$port" "$cmd" NOSUCH | grep -q "Try $cmd HELP" || fail "$cmd NOSUCH gives no advice"
  redis-cli -p "$port" "$cmd" HELP | grep -q "^$cmd <subcommand>" || fail "$cmd HELP: $(redis-cli -p "$port" "$cmd" HELP)"
done
echo "ok: CONFIG HELP and COMMAND HELP"

# --- SIGTERM: a half-received request finishes, idle connections end, exit 0 ----------------
exec 5<>/dev/tcp/127.0.0.1/"$port"   # idle
exec 4<>/dev/tcp/127.0.0.1/"$port"   # in flight
printf '*2\r\n$4\r\nECHO\r\n$5\r\nhe' >&4
[ "$(redis-cli -p "$port" PING)" = PONG ] || fail "PING before stop"
kill -TERM "$pid"
wait_for 10 not_listening "$port" || fail "listener still accepting after SIGTERM"
printf 'llo\r\n' >&4
got=$(timeout 10 cat <&4 | od -An -c | tr -s ' \n' ' ')
want=$(printf '$5\r\nhello\r\n' | od -An -c | tr -s ' \n' ' ')
[ "$got" = "$want" ] || fail "in-flight request at stop: got [$got] want [$want]"
[ -z "$(timeout 10 cat <&5)" ] || fail "idle connection got data"
exec 4>&- 5>&-
expect_clean_exit kv_server
summary=$(grep -E '^kv_server: served [0-9]+ connections, [0-9]+ commands' "$work/server.out") ||
  fail "no summary line: $(cat "$work/server.out")"
echo "$summary"
echo "ok: clean stop"

# --- SIGTERM with a request that never completes: closed after the grace period, exit 0 -------
start_server "$bin" --workers 1 --grace-ms 200
exec 4<>/dev/tcp/127.0.0.1/"$port"
printf '*2\r\n$4\r\nECHO\r\n$5\r\nhe' >&4
[ "$(redis-cli -p "$port" PING)" = PONG ] || fail "PING before stop (2)"
kill -TERM "$pid"
[ -z "$(timeout 10 cat <&4)" ] || fail "stalled connection got a reply"
exec 4>&-
expect_clean_exit "kv_server with a stalled request"
grep -q '^kv_server: served 2 connections' "$work/server.out" || fail "summary: $(cat "$work/server.out")"
echo "ok: stalled request closed after the grace period"

# --- a second SIGTERM during a long grace period exits at once, status 128+15 -----------------
start_server "$bin" --workers 1 --grace-ms 60000
exec 4<>/dev/tcp/127.0.0.1/"$port"
printf '*2\r\n$4\r\nECHO\r\n$5\r\nhe' >&4
[ "$(redis-cli -p "$port" PING)" = PONG ] || fail "PING before stop (3)"
kill -TERM "$pid"
wait_for 10 not_listening "$port" || fail "listener still accepting after SIGTERM (3)"
kill -TERM "$pid"
wait_for 5 has_exited "$pid" || fail "kv_server still running 5 s after a second SIGTERM"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 143 ] || fail "second SIGTERM: exit status $rc, not 143"
grep -q '^second stop signal: exiting now' "$work/server.err" || fail "no line about the second signal: $(cat "$work/server.err")"
exec 4>&-
echo "ok: a second SIGTERM exits at once"
echo "PASS"
