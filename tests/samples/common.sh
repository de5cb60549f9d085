# shellcheck shell=bash disable=SC2154,SC2034  # work is set by, pid and port are for, the sourcing script
# Helpers shared by the sample tests (bash, sourced after setting work=DIR): fail, required
# tools, polling with a deadline, background processes killed at exit, starting a server with
# --port 0 and reading its port from its "listening on" line, stopping it and checking its exit
# code and summary line.
#   fail MESSAGE                   prints FAIL: MESSAGE, exits 1
#   require_tools TOOL...          fails (never skips) when a client tool is missing
#   wait_for SECONDS CMD...        polls CMD every 20 ms until it succeeds; 1 after SECONDS
#   in_range VALUE LOW HIGH        LOW <= VALUE < HIGH
#   ms_now                         milliseconds since the epoch
#   track PID...                   killed (-9) when the test exits, however it exits
#   start_sample NAME CMD...       runs CMD (which prints "listening on 127.0.0.1:PORT"); sets
#                                  NAME_pid and NAME_port; output in $work/NAME.out, NAME.err
#   start_limited NAME LIMIT CMD...  start_sample NAME CMD under `ulimit LIMIT` ("-n 64")
#   start_server BIN ARGS...       start_sample server BIN --port 0 ARGS...; sets pid and port
#   expect_clean_exit LABEL [NAME] after a stop signal: NAME (default server) exits 0 within 10 s
#   stop_sample NAME REGEX         SIGTERM (unless its listener is closed: the test sent it,
#                                  and a second one would end it at once), expect_clean_exit, a
#                                  stdout line matching REGEX
#                                  (kept in $work/NAME.summary and printed)
#   summary_field NAME LABEL       the number before LABEL in NAME's summary ("12 idle timeouts")
#   not_listening PORT             no socket listens on PORT (asked of ss: no probe connection)
#   check_echoes PORT WHAT         nc and socat get back what they send to an echo service

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

require_tools() {
  local tool
  for tool in "$@"; do
    # A skipped sample test would read as a pass: scripts/setup.sh installs these.
    command -v "$tool" >/dev/null || fail "$tool not found: run scripts/setup.sh"
  done
}

wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

in_range() {
  [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]
}

ms_now() { echo $(($(date +%s%N) / 1000000)); }

# Sourcing this sets the EXIT trap; a test that sets its own does not use `track`.
tracked=()
track() { tracked+=("$@"); }
trap 'for p in "${tracked[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT

has_listening_line() { grep -qs '^listening on 127.0.0.1:[0-9]*$' "$1"; }
has_exited() { ! kill -0 "$1" 2>/dev/null; }
not_listening() { [ -z "$(ss -Htln "( sport = :$1 )")" ]; }

# SIGINT is set to its default for the server: a non-interactive shell starts background jobs
# with SIGINT ignored, and an ignored signal never reaches the sample's sigwait.
start_sample() {
  local name=$1 out="$work/$1.out" err="$work/$1.err"
  shift
  rm -f "$out" "$err"  # a stale "listening on" line would give a dead port
  env --default-signal=INT "$@" >"$out" 2>"$err" &
  local p=$!
  track "$p"
  declare -g "${name}_pid=$p"
  wait_for 10 has_listening_line "$out" || fail "$name printed no 'listening on' line: $(cat "$out" "$err")"
  declare -g "${name}_port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$out")"
}

start_limited() {
  local name=$1 limit=$2
  shift 2
  # shellcheck disable=SC2016  # $0 and $@ are the inner shell's
  start_sample "$name" bash -c "ulimit $limit; exec \"\$0\" \"\$@\"" "$@"
}

start_server() {
  local bin=$1
  shift
  start_sample server "$bin" --port 0 "$@"
  pid=$server_pid
  port=$server_port
}

expect_clean_exit() {
  local label=$1 name=${2:-server} rc=0
  local pid_var="${name}_pid"
  local p=${!pid_var}
  wait_for 10 has_exited "$p" || fail "$label still running 10 s after the stop signal"
  wait "$p" || rc=$?
  [ "$rc" = 0 ] || fail "$label: exit code $rc after the stop signal: $(cat "$work/$name.err")"
}

stop_sample() {
  local name=$1 regex=$2 pid_var="${1}_pid" port_var="${1}_port"
  # One stop signal only: a second one ends a server at once, without grace or summary. A
  # sample whose listener is closed has had its signal from the test already.
  if ! not_listening "${!port_var}"; then kill -TERM "${!pid_var}" 2>/dev/null || true; fi
  expect_clean_exit "$name" "$name"
  grep -E "$regex" "$work/$name.out" >"$work/$name.summary" ||
    fail "$name: no summary line matching /$regex/: $(cat "$work/$name.out")"
  cat "$work/$name.summary"
}

summary_field() {
  sed -n "s/.* \([0-9][0-9]*\) $2.*/\1/p" "$work/$1.summary"
}

check_echoes() {  # a line with nc, then a 1 MiB random file with socat and nc -N
  local got want
  got=$(printf 'hello, echo\n' | timeout 10 nc -N 127.0.0.1 "$1") || fail "nc to $2 failed"
  [ "$got" = "hello, echo" ] || fail "nc to $2: got [$got]"
  head -c 1048576 /dev/urandom >"$work/random.bin"
  want=$(sha256sum <"$work/random.bin")
  # Both half-close after the file (socat at end of input, nc with -N) and read until the
  # other side closes.
  got=$(timeout 30 socat -t 20 - "TCP:127.0.0.1:$1" <"$work/random.bin" | sha256sum)
  [ "$got" = "$want" ] || fail "socat to $2: the 1 MiB echo differs"
  got=$(timeout 30 nc -N 127.0.0.1 "$1" <"$work/random.bin" | sha256sum)
  [ "$got" = "$want" ] || fail "nc -N to $2: the 1 MiB echo differs"
}
