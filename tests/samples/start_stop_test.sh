#!/usr/bin/env bash
# How a server starts and stops, beyond its own test:
# 1. started on a port another server holds (given as --port=N, the GNU form), it exits 1 at
#    once with one error line naming the address and the errno text, and prints no summary
#    line (it served nothing); a --bind that is no address is a usage error (exit 2) quoting it;
#    with --bind ::1 it listens on IPv6 loopback, prints the address in brackets and takes a
#    connection;
# 2. with its stdout closed early (`server | head -1`, to catch the "listening" line) it still
#    stops cleanly on SIGINT: exit status 0, not 141 (SIGPIPE) when it prints its summary; it
#    is started with every common flag in the form --flag=value (--port, --bind, --grace-ms and,
#    if it has it, --workers), and a value out of range in that form is refused (exit 2) naming
#    the flag and the range, the same 0..86400000 for every server's --grace-ms;
#
# 3. out of descriptors (RLIMIT_NOFILE 64, 150 clients held open for 3 s), accept fails with
#    EMFILE for as long as they stay: the server says so at most about once a second (not ten
#    lines a second), and still stops cleanly.
#
#   start_stop_test.sh WORK_DIR SERVER [ARGS...]
set -euo pipefail
work=$1
shift
rm -rf "$work"
mkdir -p "$work"

# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

name=$(basename "$1")

# --- 1. the port is taken ---------------------------------------------------------------------
start_server "$@"
rc=0
timeout 10 "$@" --port="$port" >"$work/second.out" 2>"$work/second.err" || rc=$?
[ "$rc" = 1 ] || fail "second $name on port $port: exit code $rc, not 1: $(cat "$work/second.out" "$work/second.err")"
# One line in the user's terms (the address asked for and the errno text), not a library call.
[ "$(cat "$work/second.err")" = "$name: cannot listen on 127.0.0.1:$port: Address already in use" ] ||
  fail "second $name: not the one line 'cannot listen on ADDR:PORT: ERRNO TEXT': $(cat "$work/second.err")"
[ ! -s "$work/second.out" ] || fail "second $name printed to stdout after failing to bind: $(cat "$work/second.out")"
kill -INT "$pid"
expect_clean_exit "the first $name"
echo "ok: $name on a port in use: $(cat "$work/second.err")"
rc=0
timeout 10 "$@" --port=0 --bind=nonsense >"$work/second.out" 2>"$work/second.err" || rc=$?
[ "$rc" = 2 ] && [ ! -s "$work/second.out" ] || fail "$name --bind=nonsense: exit code $rc (not 2), or a summary"
grep -qx "$name: --bind wants an IP address (127.0.0.1, 0.0.0.0, ::1) or localhost, not 'nonsense'" "$work/second.err" ||
  fail "$name --bind=nonsense: not one line naming --bind: $(cat "$work/second.err")"
echo "ok: $name --bind=nonsense: $(cat "$work/second.err")"
# --bind ::1 listens on IPv6 loopback (the port printed in brackets) and takes a connection.
env --default-signal=INT "$@" --port 0 --bind ::1 >"$work/v6.out" 2>"$work/v6.err" &
v6_pid=$!
track "$v6_pid"
has_v6_line() { grep -qs '^listening on \[::1\]:[0-9]*$' "$1"; }
wait_for 10 has_v6_line "$work/v6.out" || fail "$name --bind ::1: no 'listening on [::1]:PORT' line: $(cat "$work/v6.out" "$work/v6.err")"
v6_port=$(sed -n 's/^listening on \[::1\]:\([0-9]*\)$/\1/p' "$work/v6.out")
timeout 10 nc -6 -z ::1 "$v6_port" || fail "$name --bind ::1: no connection to [::1]:$v6_port"
# An IPv6 address in an error is bracketed as in the "listening on" line.
rc=0
timeout 10 "$@" --port="$v6_port" --bind=::1 >"$work/second.out" 2>"$work/second.err" || rc=$?
[ "$rc" = 1 ] && [ "$(cat "$work/second.err")" = "$name: cannot listen on [::1]:$v6_port: Address already in use" ] ||
  fail "second $name on [::1]:$v6_port: exit code $rc (not 1) or not the bracketed line: $(cat "$work/second.err")"
kill -INT "$v6_pid"
server_pid=$v6_pid
expect_clean_exit "$name --bind ::1"
echo "ok: $name --bind ::1: $(head -1 "$work/v6.out"), connected"

# --- 2. stdout closed; every common flag as --flag=value ---------------------------------------
flags=(--port=0 --bind=127.0.0.1 --grace-ms=500)
"$@" --help | grep -q -- '--workers N' && flags+=(--workers=1)
refused() {  # expected stderr line, flags...: the server refuses the flags with exit status 2
  local want=$1 rc=0
  shift
  timeout 10 "${server[@]}" "$@" >"$work/refused.out" 2>"$work/refused.err" || rc=$?
  [ "$rc" = 2 ] && [ "$(cat "$work/refused.err")" = "$want" ] ||
    fail "$name $*: exit code $rc (not 2) or not the line '$want': $(cat "$work/refused.err")"
}
server=("$@")
refused "$name: --grace-ms wants a count of milliseconds 0..86400000, not '86400001'" --port=0 --grace-ms=86400001
refused "$name: --port wants a port number 0..65535, not '65536'" --port=65536
refused "$name: --port wants a port number 0..65535, not ''" --port=
echo "ok: $name takes ${flags[*]} and refuses --grace-ms=86400001, --port=65536, --port="
# Not start_sample: stdout goes to a fifo whose only reader leaves after the first line.
mkfifo "$work/out"
env --default-signal=INT "$@" "${flags[@]}" >"$work/out" 2>"$work/server.err" &
server_pid=$!
track "$server_pid"
timeout 10 head -n 1 "$work/out" >"$work/first" || fail "no first line from $name"
sleep 0.2  # the reader is gone: the next line the server prints meets a closed pipe
kill -INT "$server_pid"
expect_clean_exit "$name with its stdout closed (141 = SIGPIPE)"
echo "ok: $name exits 0 with a closed stdout (first line: $(cat "$work/first"))"

# --- 3. out of descriptors -------------------------------------------------------------------
start_sample flood prlimit --nofile=64 "$@" --port 0
start=$(ms_now)
/usr/bin/python3 -c '
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(150)]
time.sleep(3)
' "$flood_port" || fail "the flood client failed"
seconds=$((($(ms_now) - start + 999) / 1000))
kill -INT "$flood_pid"
expect_clean_exit "$name out of descriptors" flood
lines=$(wc -l <"$work/flood.err")
[ "$lines" -ge 1 ] || fail "$name said nothing while out of descriptors"
# Per kind of error, one line a second and a last count at the stop (proxy has two kinds: the
# accept and the refused upstream).
[ "$lines" -le $((2 * seconds + 3)) ] ||
  fail "$name printed $lines lines in $seconds s out of descriptors: not rate-limited: $(sort "$work/flood.err" | uniq -c)"
echo "ok: $name out of descriptors for $seconds s: $lines error lines ($(head -c 160 "$work/flood.err"))"
