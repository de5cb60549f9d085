# Helpers shared by the sample tests (source it): fail, wait_for, background processes killed
# at exit, and starting a server with --port 0 and reading the port from its "listening on"
# line.

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

wait_for() {  # seconds, command...: polls the command until it succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

# Starts BIN --port 0 ARGS... in the background, stdout to $work/server.out and stderr to
# $work/server.err, with SIGINT at its default (a non-interactive shell starts background jobs
# with SIGINT ignored, and an ignored signal never reaches the sample's sigwait). Sets $pid, and
# $port once the "listening on 127.0.0.1:PORT" line is there.
start_server() {
  local bin=$1
  shift
  rm -f "$work/server.out" "$work/server.err"  # a stale "listening on" line would give a dead port
  env --default-signal=INT "$bin" --port 0 "$@" >"$work/server.out" 2>"$work/server.err" &
  pid=$!
  track "$pid"
  listening() { grep -qs '^listening on 127.0.0.1:[0-9]*$' "$work/server.out"; }
  wait_for 10 listening || fail "no 'listening on' line: $(cat "$work/server.out" "$work/server.err")"
  port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$work/server.out")
}

# Background processes killed (-9) when the test exits, however it exits. Sourcing this sets the
# EXIT trap; a test that sets its own does not use `track`.
tracked=()
track() { tracked+=("$@"); }
trap 'for p in "${tracked[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT

# After a stop signal to the server started by start_server: waits up to 10 s for it to exit and
# fails unless its exit code is 0. $1 names it in the messages.
expect_clean_exit() {
  local rc=0
  gone() { ! kill -0 "$pid" 2>/dev/null; }
  wait_for 10 gone || fail "$1 still running 10 s after the stop signal"
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || fail "$1: exit code $rc after the stop signal: $(cat "$work/server.err")"
}
