#!/usr/bin/env bash
# Runs threads_server (std::thread) and fibers_server (its weft port) through the same scripted
# client session and compares the two transcripts byte for byte with each other and with
# DATA_DIR/session.golden. The session: every command over bash /dev/tcp connections, a CRLF
# line, a line split across writes, a pipelined batch, a WAIT that times out, two clients
# blocked in WAIT (checked through STATS) until a third SETs the key, a line over 64 KiB, a
# one-shot nc exchange, a last line without a newline (alone, after whole lines, ending in a
# bare CR); then SIGTERM with an idle connection, a half-received line and a WAIT
# in flight: the listener refuses new clients, the line is answered, the WAIT says
# "ERR shutting down", the idle connection is closed, the exit code is 0, the summary counts.
# Each server's --help says what a connection runs on (std::thread, weft::fiber).
#
#   port_from_threads_test.sh THREADS_SERVER FIBERS_SERVER DATA_DIR WORK_DIR
set -euo pipefail
threads_bin=$1
fibers_bin=$2
data=$3
work=$4
mkdir -p "$work"

source "$(dirname "$0")/common.sh"  # fail, require_tools, wait_for, start_server, expect_clean_exit
require_tools nc ss

# --- the session's vocabulary: connections are fds 3..9, named A..G in the transcript --------
transcript=
port=
name_of() { printf "\\x$(printf %x $((62 + $1)))"; }  # 3 -> A, 4 -> B, ...
say() { printf '%s\n' "$*" >>"$transcript"; }
connect() {  # fd
  eval "exec $1<>/dev/tcp/127.0.0.1/$port" || fail "cannot connect $(name_of "$1") to port $port"
}
hangup() { eval "exec $1>&-"; }
send() {  # fd, line (sent with "\n")
  printf '%s\n' "$2" >&"$1"
  say "$(name_of "$1")> $2"
}
send_raw() {  # fd, printf format (sent as is), what the transcript shows
  printf "$2" >&"$1"
  say "$(name_of "$1")> $3"
}
recv() {  # fd: reads one reply line within 10 s
  local line rc=0
  IFS= read -r -t 10 line <&"$1" || rc=$?
  [ "$rc" = 0 ] || fail "$(name_of "$1"): no reply line (read status $rc; last: $(tail -1 "$transcript"))"
  say "$(name_of "$1")< $line"
}
ask() { send "$1" "$2" && recv "$1"; }
expect_close() {  # fd: the server closes the connection with nothing more to say
  local line rc=0
  IFS= read -r -t 10 line <&"$1" || rc=$?
  [ "$rc" -le 128 ] || fail "$(name_of "$1"): still open 10 s after it should have closed"
  [ "$rc" != 0 ] && [ -z "$line" ] || fail "$(name_of "$1"): got '$line' where a close was expected"
  say "$(name_of "$1") closed by the server"
  hangup "$1"
}
no_reply_yet() { ! read -r -t 0 <&"$1"; }
stats_waiting() {  # fd: the count of clients in WAIT, asked on that connection, not transcribed
  local line
  printf 'STATS\n' >&"$1"
  IFS= read -r -t 10 line <&"$1" || fail "$(name_of "$1"): no reply to STATS"
  sed -n 's/^STATS keys=[0-9]* waiting=\([0-9]*\)$/\1/p' <<<"$line"
}
waiting_is() { [ "$(stats_waiting "$1")" = "$2" ]; }  # fd, count

session() {
  connect 3
  ask 3 "SET greeting hello, world"
  ask 3 "GET greeting"
  ask 3 "get greeting"
  ask 3 "GET missing"
  ask 3 "UPPER Port me: threads -> fibers"
  ask 3 "COUNT   the quick  brown fox   "
  send_raw 3 'GET greeting\r\n' 'GET greeting\r'
  recv 3
  ask 3 ""
  ask 3 "FROB x"
  ask 3 "SET onlykey"
  ask 3 "WAIT k soon"
  ask 3 "GET greeting extra"
  ask 3 "DEL greeting extra"
  ask 3 "DEL greeting"
  ask 3 "DEL greeting"
  local t0=$EPOCHREALTIME
  ask 3 "WAIT nobody 300"
  local waited_ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
  [ "$waited_ms" -ge 290 ] || fail "WAIT nobody 300 answered after $waited_ms ms"
  send_raw 3 'SET sp' 'SET sp'
  sleep 0.05  # two segments: the server must join them into one line
  send_raw 3 'lit ok\n' 'lit ok'
  recv 3
  send_raw 3 'SET p1 one\nSET p2 two\nGET p1\nGET p2\nDEL p1\n' 'SET p1 one|SET p2 two|GET p1|GET p2|DEL p1 (one write)'
  for _ in 1 2 3 4 5; do recv 3; done

  # Two clients blocked on the condition variable until a third sets the key.
  connect 4
  connect 5
  send 4 "WAIT color 10000"
  send 5 "wait color 10000"
  wait_for 10 waiting_is 3 2 || fail "STATS never showed both WAITs blocked (waiting=$(stats_waiting 3))"
  no_reply_yet 4 || fail "B's WAIT answered before the key was set"
  no_reply_yet 5 || fail "C's WAIT answered before the key was set"
  ask 3 "STATS"
  ask 3 "SET color blue"
  recv 4
  recv 5
  ask 4 "WAIT color 10"
  ask 3 "STATS"
  ask 5 "QUIT"
  expect_close 5

  # A line over 64 KiB: an error, then the server closes.
  connect 6
  send_raw 6 "$(head -c 70000 /dev/zero | tr '\0' x)" '(70,000 x without a newline)'
  recv 6
  expect_close 6

  ask 4 "QUIT"
  expect_close 4
  ask 3 "QUIT"
  expect_close 3
  printf 'GET split\nGET p2\nQUIT\n' | timeout 10 nc 127.0.0.1 "$port" | sed 's/^/nc< /' >>"$transcript" ||
    fail "nc exchange failed"
  # A last line without its newline, then end of stream (nc -N shuts the socket down for writing).
  printf 'GET split' | timeout 10 nc -N 127.0.0.1 "$port" | sed 's/^/nc -N (no final newline)< /' >>"$transcript" ||
    fail "nc -N exchange failed"
  # The same after whole lines in the same segment, and a last line ending in a bare "\r".
  printf 'SET eof yes\nGET eof' | timeout 10 nc -N 127.0.0.1 "$port" |
    sed 's/^/nc -N (SET eof yes, GET eof without newline)< /' >>"$transcript" || fail "nc -N exchange failed"
  printf 'UPPER cr\r' | timeout 10 nc -N 127.0.0.1 "$port" | sed 's/^/nc -N (UPPER cr\\r)< /' >>"$transcript" ||
    fail "nc -N exchange failed"
}

# SIGTERM: the listener closes; an idle connection is closed; a half-received line is served
# within the grace period; a WAIT in flight is answered.
stop_session() {  # pid
  connect 7
  connect 8
  send_raw 8 'GET p2' 'GET p2 (no newline yet)'
  connect 9
  send 9 "WAIT never 20000"
  wait_for 10 waiting_is 7 1 || fail "STATS never showed the WAIT blocked (waiting=$(stats_waiting 7))"
  kill -TERM "$1"
  wait_for 10 not_listening "$port" || fail "listener still accepting after SIGTERM"
  say "(SIGTERM; new connections refused)"
  recv 9
  expect_close 9
  send_raw 8 '\n' '(the newline)'
  recv 8
  expect_close 8
  expect_close 7
}

run_server() {  # binary: runs the whole session against it, transcript in $work/<name>.transcript
  local bin=$1 name
  name=$(basename "$bin")
  # --help names what a connection runs on: the rename turns std::thread into weft::fiber.
  local what=std::thread
  [ "$name" = fibers_server ] && what=weft::fiber
  "$bin" --help | grep -q "one $what per connection" || fail "$name --help does not say 'one $what per connection'"
  # --idle-ms 0 would close every connection before its first line: refused, as chat's.
  local rc=0 err
  err=$(timeout 10 "$bin" --port 0 --idle-ms 0 2>&1 >/dev/null) || rc=$?
  [ "$rc" = 2 ] && [ "$err" = "$name: --idle-ms wants a count of milliseconds 1..86400000, not '0'" ] ||
    fail "$name --idle-ms 0: exit code $rc (not 2) or not the expected line: $err"
  transcript=$work/$name.transcript
  : >"$transcript"
  start_server "$bin" --grace-ms 5000  # sets pid and port
  echo "$name on port $port"
  session
  stop_session "$pid"
  expect_clean_exit "$name"
  local summary
  summary=$(grep -E "^$name: served [0-9]+ connections, [0-9]+ commands, [0-9]+ waits \([0-9]+ timed out\), [0-9]+ keys at exit in [0-9.]+ s$" "$work/server.out") ||
    fail "$name: no summary line: $(cat "$work/server.out")"
  echo "$summary"
  # The session opens 8 connections; a probe for the closed listener may have been accepted
  # just before it closed. The commands count varies with the STATS polls, the time anyhow.
  local conns
  conns=$(sed -E 's/^[a-z_]+: served ([0-9]+) connections.*/\1/' <<<"$summary")
  [ "$conns" -ge 8 ] || fail "$name: summary counts $conns connections, the session opened 8"
  say "summary: $(sed -E 's/^.*, [0-9]+ commands, (.*) in [0-9.]+ s$/\1/' <<<"$summary")"
  [ -s "$work/server.err" ] && fail "$name wrote to stderr: $(cat "$work/server.err")"
  return 0
}

run_server "$threads_bin"
run_server "$fibers_bin"
if ! cmp -s "$work/threads_server.transcript" "$work/fibers_server.transcript"; then
  diff -u "$work/threads_server.transcript" "$work/fibers_server.transcript" >&2 || true
  fail "fibers_server answered differently from threads_server (diff above)"
fi
echo "ok: both servers' transcripts are identical ($(wc -l <"$work/fibers_server.transcript") lines)"
if ! diff -u "$data/session.golden" "$work/threads_server.transcript" >&2; then
  fail "the transcript differs from $data/session.golden (diff above)"
fi
echo "ok: and equal to session.golden"
echo "PASS"
