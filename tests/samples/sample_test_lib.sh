# Helpers sourced by the sample tests: fail, wait_for (poll a condition with a deadline) and
# start_sample (start a server on a free port and learn it from its "listening on" line).

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

# start_sample OUT BIN ARGS...: runs `BIN --port 0 ARGS...` in the background with stdout in
# OUT.out and stderr in OUT.err, waits up to 10 s for its "listening on 127.0.0.1:PORT" line and
# sets sample_pid and sample_port. An EXIT trap kills it if the test ends early.
start_sample() {
  local out=$1 bin=$2
  shift 2
  rm -f "$out.out" "$out.err"  # a stale "listening on" line would give a dead port
  "$bin" --port 0 "$@" >"$out.out" 2>"$out.err" &
  sample_pid=$!
  trap "kill -9 $sample_pid 2>/dev/null || true" EXIT
  _listening() { grep -q '^listening on 127.0.0.1:[0-9]*$' "$out.out"; }
  wait_for 10 _listening || fail "$(basename "$bin") printed no 'listening on' line: $(cat "$out.out" "$out.err")"
  sample_port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$out.out")
}

# expect_exit_0 NAME: after a SIGTERM was sent to sample_pid, waits up to 10 s for it to exit
# with code 0.
expect_exit_0() {
  _stopped() { ! kill -0 "$sample_pid" 2>/dev/null; }
  wait_for 10 _stopped || fail "$1 still running 10 s after SIGTERM"
  local rc=0
  wait "$sample_pid" || rc=$?
  trap - EXIT
  [ "$rc" = 0 ] || fail "$1: exit code $rc after SIGTERM"
}
