#!/usr/bin/env bash
# Drives a built echo_server with its own load generator (echo_client: 2 s, the result table
# must show requests and no errors) and with nc and socat (the bytes come back identical, a
# 1 MiB random file included); checks that peers that disconnect or are killed leave no fiber
# behind (no server socket lingers in CLOSE-WAIT), that the idle deadline closes a silent
# connection and a connection whose echo cannot be written, and that SIGTERM closes the
# listener, ends idle connections at once, closes a stuck one after the grace period and exits
# 0 with the summary line; and that a connection for which no fiber stack can be mapped is
# closed with a message while the server goes on.
#   echo_server_test.sh ECHO_SERVER ECHO_CLIENT WORK_DIR
# shellcheck disable=SC2154  # start_sample (common.sh) sets NAME_pid and NAME_port
set -euo pipefail

echo_server=$1
echo_client=$2
work=$3
mkdir -p "$work"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"
require_tools nc socat ss sha256sum

# Server "echo": the default idle deadline (60 s), so nothing below ends by it by accident.
start_sample echo "$echo_server" --port 0 --workers 2 --grace-ms 2000
port=$echo_port
echo "echo_server on port $port"

# --- echo_client: 2 s, then its table ------------------------------------------------------
timeout 60 "$echo_client" "127.0.0.1:$port" --connections 50 --duration 2 --warmup 0.5 --size 64 \
  >"$work/client.out" 2>"$work/client.err" ||
  fail "echo_client failed: $(cat "$work/client.out" "$work/client.err")"
cat "$work/client.out"
row() { awk -v k="$1" '{ key = $1; if ($1 == "latency") key = $1 " " $2 } key == k { print $NF == "us" ? $(NF-1) : $NF; exit }' \
  "$work/client.out"; }
[ "$(row errors)" = 0 ] || fail "echo_client reported errors"
[ "$(row requests)" -gt 0 ] || fail "echo_client completed no request"
for r in requests/s bytes/s "latency p50" "latency p90" "latency p99" "latency p99.9"; do
  [ -n "$(row "$r")" ] || fail "no '$r' row in echo_client's table"
done
# stderr is a file here, not a terminal: one progress line per second, no carriage returns.
[ "$(grep -c 'req/s' "$work/client.err")" -ge 2 ] || fail "no progress lines: $(cat "$work/client.err")"
! grep -q $'\r' "$work/client.err" || fail "progress lines rewritten with \\r on a file"
# Ctrl-C during the measured seconds: the table of what was measured, exit status 130.
"$echo_client" "127.0.0.1:$port" --connections 10 --duration 60 --warmup 0.2 >"$work/int.out" 2>"$work/int.err" &
int_pid=$!
track "$int_pid"
sleep 1.5
kill -INT "$int_pid"
wait_for 10 has_exited "$int_pid" || fail "echo_client still running 10 s after SIGINT"
rc=0
wait "$int_pid" || rc=$?
[ "$rc" = 130 ] || fail "echo_client after SIGINT: exit status $rc, not 130: $(cat "$work/int.err")"
grep -q 'interrupted after [0-9.]* of 60.0 measured seconds' "$work/int.err" || fail "no interruption line: $(cat "$work/int.err")"
[ "$(awk '$1 == "requests" { print $2 }' "$work/int.out")" -gt 0 ] || fail "no requests row after SIGINT: $(cat "$work/int.out")"
# Arguments that would only fail after the whole run are refused before it starts.
sleep 0 &
gone=$!  # a process that has exited (and been waited for): no such pid for a while
wait "$gone"
for bad in "--server-pid $gone:--server-pid $gone: no such process" \
  "--json $work/no-such-dir/x.json:--json $work/no-such-dir/x.json: No such file or directory"; do
  rc=0
  # shellcheck disable=SC2086  # the flag and its value are two words
  err=$(timeout 10 "$echo_client" "127.0.0.1:$port" --duration 60 ${bad%%:*} 2>&1 >/dev/null) || rc=$?
  [ "$rc" = 2 ] && [ "$err" = "echo_client: ${bad#*:}" ] || fail "echo_client ${bad%%:*}: exit code $rc, [$err]"
done
echo "ok: echo_client"

# --- nc and socat: the bytes come back identical ---------------------------------------------
check_echoes "$port" "echo_server"
echo "ok: nc and socat, 1 MiB random file"

# --- peers that disconnect: their fibers end, so no server socket stays in CLOSE-WAIT ----------
for _ in $(seq 20); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port"; printf x >&3)  # the subshell exits: FIN with an echo unread
done
socat -u /dev/zero "TCP:127.0.0.1:$port" 2>/dev/null &  # a sender that never reads...
writer=$!
track "$writer"
connected() { [ -n "$(ss -Htn state established "( dport = :$port )")" ]; }
wait_for 5 connected || fail "the sender did not connect"
sleep 0.2  # ...is killed in the middle of its stream
kill -9 "$writer"
wait "$writer" 2>/dev/null || true
lingering() { ss -Htn "( sport = :$port )" | grep -v -e '^TIME-WAIT' -e '^LISTEN' || true; }
no_lingering() { [ -z "$(lingering)" ]; }
wait_for 5 no_lingering || fail "server sockets left after their peers went: $(lingering)"
echo "ok: disconnected peers leave no fiber"

# --- SIGTERM ----------------------------------------------------------------------------------
exec 5<>"/dev/tcp/127.0.0.1/$port"             # idle: ends at once
socat -u /dev/zero "TCP:127.0.0.1:$port" 2>/dev/null &  # stuck in write_all: closed after --grace-ms
stuck=$!
track "$stuck"
sleep 0.5  # long enough for the server's send buffer to fill
printf 'ping' >&5
[ "$(timeout 10 head -c 4 <&5)" = ping ] || fail "no echo before stop"
kill -TERM "$echo_pid"
wait_for 10 not_listening "$port" || fail "listener still accepting after SIGTERM"
start=$(ms_now)
[ -z "$(timeout 10 cat <&5)" ] || fail "idle connection got data at stop"
[ $(($(ms_now) - start)) -lt 1000 ] || fail "idle connection was not ended at once (took $(($(ms_now) - start)) ms)"
exec 5>&-
wait "$stuck" 2>/dev/null || true
stop_sample echo '^echo_server: served [0-9]+ connections, [0-9]+ bytes echoed'
[ "$(summary_field echo 'closed after the grace period')" = 1 ] || fail "the stuck connection was not closed after the grace period"
[ "$(summary_field echo 'bytes echoed')" -ge $((2 * 1048576)) ] || fail "bytes echoed in the summary"
[ "$(summary_field echo 'idle timeouts')" = 0 ] || fail "idle timeouts on the 60 s server"
# echo_client's connections close with echoes in flight: resets by the client, not errors.
[ "$(summary_field echo 'errors')" = 0 ] || fail "errors in the summary of a clean run"
echo "ok: clean stop"

# --- idle deadline ------------------------------------------------------------------------------
start_sample idle "$echo_server" --port 0 --workers 1 --idle-timeout-ms 500
start=$(ms_now)
[ -z "$(timeout 10 cat <"/dev/tcp/127.0.0.1/$idle_port")" ] || fail "a silent connection got data"
took=$(($(ms_now) - start))
in_range "$took" 450 5000 || fail "a silent connection was closed after $took ms, not about 500"
# A peer that sends but never reads: the server's echo stops making progress and its write
# deadline ends the connection (the sender then gets a reset or a broken pipe, not a timeout).
rc=0
timeout 20 socat -u /dev/zero "TCP:127.0.0.1:$idle_port" 2>/dev/null || rc=$?
if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
  fail "a peer that never reads was not disconnected (socat status $rc)"
fi
stop_sample idle '^echo_server: served 2 connections'
[ "$(summary_field idle 'idle timeouts')" = 2 ] || fail "expected 2 idle timeouts"
echo "ok: idle deadline"

# --- no stack for a connection ---------------------------------------------------------------
# Address space capped a little above the idle server's: after a few dozen connections no
# stack can be mapped. Each of those clients is closed with one line (at most one a second,
# naming the limit), the others and later ones are served, and the stop is clean. Before,
# the spawn error left the accept loop: abort, or a crash with no message at all.
# One malloc arena: a worker thread's own arena reserves 64 MiB of address space, or not,
# depending on timing, which would make the headroom, and whether the cap bites, vary.
start_sample probe env MALLOC_ARENA_MAX=1 "$echo_server" --port 0 --workers 1
vm_kib=$(sed -n 's/^VmSize:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$probe_pid/status")
echo "idle echo_server: VmSize $vm_kib KiB"
stop_sample probe '^echo_server: served 0 connections'
start_limited tight "-v $((vm_kib + 12000))" env MALLOC_ARENA_MAX=1 "$echo_server" --port 0 --workers 1
got=$(timeout 60 /usr/bin/python3 - "$tight_port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
time.sleep(0.5)
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        closed += s.recv(1) == b""
    except BlockingIOError:
        pass
    except ConnectionResetError:
        closed += 1
for s in socks:
    s.close()
# The served connections' fibers end and give their stacks back; retry until one echoes.
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(10)
        s.sendall(b"after")
        got = s.recv(5).decode()
    except OSError:
        got = ""
    if got or time.time() > deadline:
        break
    time.sleep(0.1)
print(closed, got)
PY
) || fail "the client of the capped server failed: $got $(cat "$work/tight.err")"
echo "capped server: $got (connections closed for want of a stack, then the echo)"
[ "${got#* }" = after ] || fail "no echo after the connections were closed: $got"
[ "${got% *}" -gt 0 ] || fail "no connection was refused a stack: the cap did not bite, the test proves nothing"
grep -q "echo_server: cannot start a fiber for client 127.0.0.1:[0-9]*, closing it: weft: cannot map fiber stacks" \
  "$work/tight.err" || fail "no line saying a fiber could not be started: $(cat "$work/tight.err")"
stop_sample tight '^echo_server: served 201 connections'
echo "ok: no stack for a connection"

# --- echo_client does not hide connections the server never served -----------------------------
# 64 descriptors: of echo_client's 100 connections, those beyond the server's limit wait in its
# backlog. They raise no error, so the table says how many completed no request.
start_limited fdcap "-n 64" "$echo_server" --port 0 --workers 1
timeout 60 "$echo_client" "127.0.0.1:$fdcap_port" --connections 100 --duration 1 --warmup 0 \
  >"$work/unserved.out" 2>"$work/unserved.err" || fail "echo_client against the capped server: $(cat "$work/unserved.err")"
grep -Eq '^  unserved conns +[1-9][0-9]* +\(of 100' "$work/unserved.out" ||
  fail "no count of unserved connections: $(cat "$work/unserved.out")"
grep -q "connections completed no request" "$work/unserved.err" || fail "no warning on stderr: $(cat "$work/unserved.err")"
stop_sample fdcap '^echo_server: served [0-9]+ connections'
echo "ok: unserved connections counted"
echo PASS
