#!/usr/bin/env bash
# Drives a built proxy with real clients and real upstreams: nc and socat through it to
# echo_server (the bytes come back identical, a 1 MiB random file included, and a client that
# half-closes gets the whole echo), redis-cli and redis-benchmark through it to kv_server, curl
# through it to http_server (keep-alive: two requests on one connection); then
# half-close both ways against a socat upstream that answers only after end of stream (also
# with a slow sender, whose silent other direction must not count as idle), resets passed on
# in both directions, an upstream that refuses or never answers (the client is closed promptly,
# the proxy logs the upstream), the idle deadline closing both sides, and SIGTERM.
#   proxy_test.sh PROXY ECHO_SERVER KV_SERVER HTTP_SERVER WORK_DIR
# Another sample server goes behind the proxy with one line, see the end of this file:
#   through_proxy NAME CHECK_FUNCTION SERVER_COMMAND...
# (the server takes --port 0 and prints "listening on 127.0.0.1:PORT"; CHECK_FUNCTION gets the
# proxy's port).
# shellcheck disable=SC2154  # start_sample (common.sh) sets NAME_pid and NAME_port
set -euo pipefail

proxy=$1
echo_server=$2
kv_server=$3
http_server=$4
work=$5
mkdir -p "$work"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"
require_tools nc socat ss sha256sum redis-cli redis-benchmark curl /usr/bin/python3

# --- its own listening address as upstream: refused at start (it would loop until out of fds) -
for args in "--port 23011 --to 127.0.0.1:23011" "--port 23011 --bind 0.0.0.0 --to localhost:23011" \
  "--port 23011 --to 0.0.0.0:23011" "--port 23011 --bind :: --to 127.0.0.1:23011"; do
  rc=0
  # shellcheck disable=SC2086  # word splitting of $args is meant
  err=$(timeout 10 "$proxy" $args 2>&1 >/dev/null) || rc=$?
  [ "$rc" = 2 ] && [[ "$err" == *"is this proxy's own listening address"* ]] ||
    fail "proxy $args: exit code $rc (not 2) or no line saying why: $err"
done
# Not a loop: an IPv4 wildcard listener never takes a connection to [::1] (the proxy runs
# until `timeout` stops it).
timeout 1 "$proxy" --port 23011 --bind 0.0.0.0 --to "[::1]:23011" >/dev/null 2>"$work/v6up.err" || true
if grep -q "own listening address" "$work/v6up.err"; then fail "--bind 0.0.0.0 --to [::1] refused as a loop"; fi
echo "ok: the proxy refuses its own listening address as upstream"

# through_proxy NAME CHECK SERVER_COMMAND...: starts the server (sample NAME) and a proxy in
# front of it (sample NAME_px), runs CHECK PROXY_PORT, then stops both with SIGTERM (exit 0 and
# a summary line each); the proxy must have had no connect error and no idle timeout.
through_proxy() {
  local name=$1 check=$2
  shift 2
  start_sample "$name" "$@" --port 0
  local up_port="${name}_port" px_port="${name}_px_port"
  start_sample "${name}_px" "$proxy" --port 0 --workers 2 --to "127.0.0.1:${!up_port}"
  echo "$name on port ${!up_port}, the proxy in front of it on ${!px_port}"
  "$check" "${!px_port}"
  stop_sample "${name}_px" '^proxy: served [0-9]+ connections to '
  [ "$(summary_field "${name}_px" 'connect errors')" = 0 ] || fail "connect errors to $name"
  [ "$(summary_field "${name}_px" 'idle timeouts')" = 0 ] || fail "idle timeouts in front of $name"
  stop_sample "$name" '; runtime: '
}

check_echo() {  # proxy port
  # The clients half-close after the file and read until the server closes: the echo server
  # sees end of stream only if the proxy passes the half-close on, and the clients see theirs
  # only if the proxy passes the server's on (else they hang until `timeout`).
  check_echoes "$1" "the proxy to echo_server"
  echo "ok: nc and socat through the proxy to echo_server, 1 MiB random file, half-close"
}

check_kv() {  # proxy port
  [ "$(redis-cli -p "$1" SET greeting 'hello proxy')" = OK ] || fail "redis-cli SET through the proxy"
  [ "$(redis-cli -p "$1" GET greeting)" = 'hello proxy' ] || fail "redis-cli GET through the proxy"
  if ! timeout 120 redis-benchmark -p "$1" -t ping,set,get -n 20000 -P 16 -q >"$work/bench.out" 2>&1; then
    cat "$work/bench.out"
    fail "redis-benchmark through the proxy failed"
  fi
  tr '\r' '\n' <"$work/bench.out" | grep 'requests per second' | grep -v 'rps=' || true
  if tr '\r' '\n' <"$work/bench.out" | grep -qiE 'error|warning'; then
    cat "$work/bench.out"
    fail "redis-benchmark through the proxy reported errors"
  fi
  for t in PING_INLINE PING_MBULK SET GET; do
    tr '\r' '\n' <"$work/bench.out" | grep -qE "^ *$t: [0-9.]+ requests per second" || fail "no result for $t"
  done
  echo "ok: redis-cli and redis-benchmark through the proxy to kv_server"
}

check_http() {  # proxy port
  local url="http://127.0.0.1:$1"
  curl -sSi --max-time 10 "$url/" | tr -d '\r' >"$work/http_reply.txt" || fail "curl GET / through the proxy"
  head -n 1 "$work/http_reply.txt" | grep -qx 'HTTP/1.1 200 OK' || fail "GET / through the proxy: $(cat "$work/http_reply.txt")"
  [ "$(tail -n 1 "$work/http_reply.txt")" = 'hello from weft' ] || fail "GET / body through the proxy: $(cat "$work/http_reply.txt")"
  # Two requests in one curl: the second reuses the first's connection (0 new connects), so
  # the pair carries a kept-alive HTTP connection.
  [ "$(curl -sS --max-time 10 -o /dev/null -o /dev/null -w '%{num_connects} ' "$url/" "$url/metrics")" = "1 0 " ] ||
    fail "curl did not reuse its connection through the proxy"
  echo "ok: curl through the proxy to http_server, keep-alive"
}

free_port() {  # a port nothing listens on (bound, then released)
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

through_proxy echo check_echo "$echo_server" --workers 2
through_proxy kv check_kv "$kv_server" --workers 2
through_proxy http check_http "$http_server" --workers 2

# --- half-close both ways, and a silent direction is not idle while the other moves ----------
up=$(free_port)
socat -t 5 "TCP-LISTEN:$up,bind=127.0.0.1,reuseaddr,fork" \
  SYSTEM:"cat >$work/upstream.got; printf after-eof" 2>"$work/socat.err" &
track "$!"
socat_listening() { [ -n "$(ss -Htln "( sport = :$up )")" ]; }
wait_for 10 socat_listening || fail "the socat upstream did not start"
start_sample hc "$proxy" --port 0 --workers 2 --to "127.0.0.1:$up" --idle-timeout-ms 500
got=$(printf 'request' | timeout 10 nc -N 127.0.0.1 "$hc_port") || fail "nc to the socat upstream failed"
[ "$got" = after-eof ] || fail "half-close: got [$got], want the answer sent after end of stream"
[ "$(cat "$work/upstream.got")" = request ] || fail "half-close: the upstream got [$(cat "$work/upstream.got")]"
# 10 lines 150 ms apart: the upstream-to-client direction is silent for 1.5 s, three idle
# deadlines, but the pair is not idle.
got=$( (for i in $(seq 10); do printf 'tick %s\n' "$i"; sleep 0.15; done) | timeout 20 nc -N 127.0.0.1 "$hc_port") ||
  fail "slow sender failed"
[ "$got" = after-eof ] || fail "slow sender: got [$got] (cut as idle?)"
[ "$(wc -l <"$work/upstream.got")" = 10 ] || fail "slow sender: the upstream got $(wc -l <"$work/upstream.got") lines"
echo "ok: half-close passed on both ways; a one-way stream is not idle"

# --- resets are passed on -----------------------------------------------------------------------
# reset_case WHO: a Python upstream behind a proxy; WHO (client or upstream) sends some bytes,
# then resets its side (SO_LINGER 0); the other side must see the reset.
cat >"$work/reset_case.py" <<'EOF'
import socket, struct, sys, time
who, proxy_port, upstream_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lst = socket.socket()
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("127.0.0.1", upstream_port))
lst.listen(1)
print("listening", flush=True)
def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
def outcome(s):
    s.settimeout(5)
    try:
        while s.recv(65536):
            pass
        return "eof"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
client = socket.create_connection(("127.0.0.1", proxy_port), timeout=5)
server, _ = lst.accept()
sender, receiver = (client, server) if who == "client" else (server, client)
sender.sendall(b"x" * 1000)
time.sleep(0.1)
reset(sender)
print(outcome(receiver))
EOF
rst_up=$(free_port)
start_sample rst "$proxy" --port 0 --workers 2 --to "127.0.0.1:$rst_up"
for who in client upstream; do
  got=$(timeout 20 /usr/bin/python3 "$work/reset_case.py" "$who" "$rst_port" "$rst_up" | tail -n 1) ||
    fail "reset case '$who' failed"
  [ "$got" = reset ] || fail "a reset from the $who reached the other side as [$got], not a reset"
done
stop_sample rst '^proxy: served 2 connections'
echo "ok: resets passed on both ways"

# --- an upstream that refuses, one that never answers --------------------------------------------
dead=$(free_port)
start_sample refused "$proxy" --port 0 --workers 1 --to "127.0.0.1:$dead"
start=$(ms_now)
[ -z "$(timeout 10 cat <"/dev/tcp/127.0.0.1/$refused_port")" ] || fail "got data from a dead upstream"
took=$(($(ms_now) - start))
[ "$took" -lt 2000 ] || fail "client closed $took ms after its upstream refused"
grep -q "connect to upstream 127.0.0.1:$dead (127.0.0.1:$dead) failed: Connection refused" "$work/refused.err" ||
  fail "no connect error naming the upstream: $(cat "$work/refused.err")"
# A burst of clients against the dead upstream: at most one error line a second, the rest
# counted and reported.
start=$(ms_now)
for _ in $(seq 50); do timeout 10 cat <"/dev/tcp/127.0.0.1/$refused_port" >/dev/null; done
seconds=$((($(ms_now) - start) / 1000 + 1))
stop_sample refused '^proxy: served 51 connections'
[ "$(summary_field refused 'connect errors')" = 51 ] || fail "connect errors in the summary"
lines=$(grep -c "connect to upstream" "$work/refused.err")
[ "$lines" -le $((seconds + 2)) ] || fail "$lines connect error lines in $seconds s: not rate-limited"
grep -q "more errors not shown" "$work/refused.err" || fail "the errors not shown are not reported: $(cat "$work/refused.err")"

# A listener with a backlog of 0 and one connection queued: the kernel drops further SYNs.
rm -f "$work/blackhole.port"
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
q = socket.create_connection(s.getsockname())
print(s.getsockname()[1], flush=True)
time.sleep(60)' >"$work/blackhole.port" &
track "$!"
blackhole_up() { [ -s "$work/blackhole.port" ]; }
wait_for 10 blackhole_up || fail "the full-backlog listener did not start"
hole=$(cat "$work/blackhole.port")
start_sample hole "$proxy" --port 0 --workers 1 --to "127.0.0.1:$hole" --connect-timeout-ms 300
start=$(ms_now)
[ -z "$(timeout 10 cat <"/dev/tcp/127.0.0.1/$hole_port")" ] || fail "got data from a silent upstream"
took=$(($(ms_now) - start))
in_range "$took" 250 3000 || fail "client closed after $took ms, not about the 300 ms connect timeout"
grep -q "connect to upstream 127.0.0.1:$hole (127.0.0.1:$hole) failed: no answer within 300 ms" "$work/hole.err" ||
  fail "no connect timeout naming the upstream: $(cat "$work/hole.err")"
stop_sample hole '^proxy: served 1 connections'
# Out of descriptors after the accept: the proxy's limit leaves exactly one free number, which
# the client takes; the upstream socket then fails with EMFILE, and the line says which limit
# (the error_code's message alone said only "Too many open files", once a second).
start_sample fdprobe "$proxy" --port 0 --workers 1 --to "127.0.0.1:$dead"
used=$(ls "/proc/$fdprobe_pid/fd")
stop_sample fdprobe '^proxy: served 0 connections'
limit=0
free=0
while [ "$free" -lt 1 ]; do
  grep -qx "$limit" <<<"$used" || free=$((free + 1))
  limit=$((limit + 1))
done
start_limited fdcap "-n $limit" "$proxy" --port 0 --workers 1 --to "127.0.0.1:$dead"
[ -z "$(timeout 10 cat <"/dev/tcp/127.0.0.1/$fdcap_port")" ] || fail "got data with no descriptor for the upstream"
grep -q "connect to upstream 127.0.0.1:$dead (127.0.0.1:$dead) failed: .*RLIMIT_NOFILE is $limit;" "$work/fdcap.err" ||
  fail "the upstream's EMFILE does not name RLIMIT_NOFILE ($limit): $(cat "$work/fdcap.err")"
stop_sample fdcap '^proxy: served 1 connections'
echo "ok: upstream refused or silent: client closed promptly, error logged naming the upstream"

# --- the idle deadline closes both sides -------------------------------------------------------
start_sample up "$echo_server" --port 0 --workers 1
start_sample idle "$proxy" --port 0 --workers 2 --to "127.0.0.1:$up_port" --idle-timeout-ms 500
exec 3<>"/dev/tcp/127.0.0.1/$idle_port"
printf ping >&3
[ "$(timeout 10 head -c 4 <&3)" = ping ] || fail "no echo through the idle proxy"
start=$(ms_now)
[ -z "$(timeout 10 cat <&3)" ] || fail "unexpected data on an idle pair"
took=$(($(ms_now) - start))
exec 3<&-
in_range "$took" 400 5000 || fail "idle pair closed after $took ms, not about 500"
upstream_side() { ss -Htn state established "( sport = :$up_port )"; }
upstream_closed() { [ -z "$(upstream_side)" ]; }
wait_for 5 upstream_closed || fail "the upstream side of an idle pair is still open: $(upstream_side)"
stop_sample idle '^proxy: served 1 connections'
[ "$(summary_field idle 'idle timeouts')" = 1 ] || fail "idle timeouts in the summary"
echo "ok: idle deadline closes both sides"

# --- SIGTERM with a pair open: the listener closes, the pair is closed after --grace-ms --------
start_sample stop "$proxy" --port 0 --workers 2 --to "127.0.0.1:$up_port" --grace-ms 300
exec 3<>"/dev/tcp/127.0.0.1/$stop_port"
printf ping >&3
[ "$(timeout 10 head -c 4 <&3)" = ping ] || fail "no echo through the proxy before stop"
kill -TERM "$stop_pid"
wait_for 10 not_listening "$stop_port" || fail "proxy listener still accepting after SIGTERM"
[ -z "$(timeout 10 cat <&3)" ] || fail "unexpected data at stop"
exec 3<&-
stop_sample stop '^proxy: served 1 connections to .* 1 closed after the grace period'
stop_sample up '^echo_server: served 2 connections'
echo "ok: clean stop"
echo PASS
