# shellcheck shell=bash disable=SC2154  # sample_work is set by the sourcing script
# Helpers for the sample tests (bash, sourced): start a sample server and learn its port from
# its "listening on" line, stop it with SIGTERM and check its exit code and summary line, poll
# for a condition with a deadline, and fail. Every server started here is killed (SIGKILL, by
# pid) when the script exits, whatever happened.
#   source sample_lib.sh; sample_work=DIR
#   start_sample NAME CMD...       sets NAME_pid and NAME_port (NAME: a shell identifier)
#   stop_sample NAME REGEX         SIGTERM; exit code 0 and a stdout line matching REGEX
#   wait_for SECONDS CMD...        polls CMD every 20 ms until it succeeds
#   check_echoes PORT WHAT         nc and socat get back what they send to an echo service
#   not_listening PORT             no socket listens on PORT (asked of ss: no probe connection)
# A sample's stdout and stderr go to $sample_work/NAME.out and NAME.err.

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

require_tools() {  # tool...: FAIL (never skip) when a client tool is missing
  local tool
  for tool in "$@"; do
    # A skipped sample test would read as a pass: scripts/setup.sh installs these.
    command -v "$tool" >/dev/null || fail "$tool not found: run scripts/setup.sh"
  done
}

in_range() {  # value, low, high: low <= value < high
  [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]
}

wait_for() {  # seconds, command...: polls the command until it succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

sample_pids=()
kill_samples() {
  local p
  for p in "${sample_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap kill_samples EXIT

not_listening() { [ -z "$(ss -Htln "( sport = :$1 )")" ]; }
has_listening_line() { grep -qs '^listening on 127.0.0.1:[0-9]*$' "$1"; }
has_exited() { ! kill -0 "$1" 2>/dev/null; }

start_sample() {  # name, command...
  local name=$1 out="$sample_work/$1.out" err="$sample_work/$1.err"
  shift
  rm -f "$out" "$err"  # a stale "listening on" line would give a dead port
  "$@" >"$out" 2>"$err" &
  local pid=$!
  sample_pids+=("$pid")
  declare -g "${name}_pid=$pid"
  wait_for 10 has_listening_line "$out" || fail "$name printed no 'listening on' line: $(cat "$out" "$err")"
  declare -g "${name}_port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$out")"
}

stop_sample() {  # name, summary regex: SIGTERM, exit 0 within 10 s, summary on stdout
  local name=$1 regex=$2 pid_var="${1}_pid"
  local pid=${!pid_var} rc=0
  kill -TERM "$pid" 2>/dev/null || true  # the test may have sent it already
  wait_for 10 has_exited "$pid" || fail "$name still running 10 s after SIGTERM"
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || fail "$name exited with $rc after SIGTERM: $(cat "$sample_work/$name.err")"
  grep -E "$regex" "$sample_work/$name.out" >"$sample_work/$name.summary" ||
    fail "$name: no summary line matching /$regex/: $(cat "$sample_work/$name.out")"
  cat "$sample_work/$name.summary"
}

summary_field() {  # name, label: the number before LABEL in NAME's summary line ("12 idle timeouts")
  sed -n "s/.* \([0-9][0-9]*\) $2.*/\1/p" "$sample_work/$1.summary"
}

check_echoes() {  # port, what: a line with nc, then a 1 MiB random file with socat and nc -N
  local got want
  got=$(printf 'hello, echo\n' | timeout 10 nc -N 127.0.0.1 "$1") || fail "nc to $2 failed"
  [ "$got" = "hello, echo" ] || fail "nc to $2: got [$got]"
  head -c 1048576 /dev/urandom >"$sample_work/random.bin"
  want=$(sha256sum <"$sample_work/random.bin")
  # Both half-close after the file (socat at end of input, nc with -N) and read until the
  # other side closes.
  got=$(timeout 30 socat -t 20 - "TCP:127.0.0.1:$1" <"$sample_work/random.bin" | sha256sum)
  [ "$got" = "$want" ] || fail "socat to $2: the 1 MiB echo differs"
  got=$(timeout 30 nc -N 127.0.0.1 "$1" <"$sample_work/random.bin" | sha256sum)
  [ "$got" = "$want" ] || fail "nc -N to $2: the 1 MiB echo differs"
}
