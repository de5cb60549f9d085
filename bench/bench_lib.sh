# shellcheck shell=sh
# shellcheck disable=SC2034,SC2154  # sets srv_pid/srv_port/status for, and reads bench/tmp/root of, the caller
# Shell functions the comparison scripts share (run_echo_bench.sh, run_http_bench.sh,
# run_kv_bench.sh); POSIX sh, sourced, never run. The caller sets:
#   bench  the script's name, which starts every message
#   tmp    a private temporary directory (server output goes there)
#   status the script's exit status so far (a failed stop sets it to 1)
# Invariant: at most one server runs at a time; srv_pid names it (empty when none runs), so the
# caller's EXIT trap can kill it.

# bench_launch LABEL PROGRAM ARGS...: starts PROGRAM in the background, stdout in
# $tmp/server.out and stderr in $tmp/server.err; sets srv_pid and srv_label.
bench_launch() {
  srv_label=$1
  shift
  : > "$tmp/server.out"
  : > "$tmp/server.err"
  "$@" > "$tmp/server.out" 2> "$tmp/server.err" &
  srv_pid=$!
}

# bench_wait_ready CHECK...: runs CHECK every 50 ms until it succeeds; returns 1 (and kills the
# server) if the server exits first or 10 s pass.
bench_wait_ready() {
  i=0
  while ! "$@" > /dev/null 2>&1; do
    if ! kill -0 "$srv_pid" 2>/dev/null; then
      echo "$bench: $srv_label exited before it was ready: $(cat "$tmp/server.err" "$tmp/server.out")" >&2
      wait "$srv_pid" 2>/dev/null || true
      srv_pid=
      return 1
    fi
    i=$((i + 1))
    if [ $i -gt 200 ]; then
      echo "$bench: $srv_label was not ready within 10 s (waiting for: $*)" >&2
      kill -KILL "$srv_pid" 2>/dev/null || true
      wait "$srv_pid" 2>/dev/null || true
      srv_pid=
      return 1
    fi
    sleep 0.05
  done
}

# bench_start_server LABEL PROGRAM ARGS...: starts a server that prints "listening on
# 127.0.0.1:PORT" (--port 0), waits for that line and sets srv_pid and srv_port.
bench_start_server() {
  bench_launch "$@"
  bench_wait_ready grep -q '^listening on ' "$tmp/server.out" || return 1
  srv_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/server.out")
}

# bench_stop_server: SIGTERM, then up to 10 s for a clean exit (status 0); anything else sets
# status=1.
bench_stop_server() {
  [ -n "${srv_pid:-}" ] || return 0
  kill -TERM "$srv_pid" 2>/dev/null || true
  i=0
  while kill -0 "$srv_pid" 2>/dev/null && [ $i -lt 200 ]; do
    sleep 0.05
    i=$((i + 1))
  done
  if kill -0 "$srv_pid" 2>/dev/null; then
    echo "$bench: $srv_label did not exit within 10 s of SIGTERM; killed" >&2
    kill -KILL "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    status=1
  else
    rc=0
    wait "$srv_pid" || rc=$?
    [ $rc = 0 ] || { echo "$bench: $srv_label exited with status $rc after SIGTERM: $(cat "$tmp/server.err")" >&2; status=1; }
  fi
  srv_pid=
}

# bench_kill_server: for the EXIT trap; kills the server still running, if any.
bench_kill_server() {
  if [ -n "${srv_pid:-}" ]; then kill -KILL "$srv_pid" 2>/dev/null || true; fi
}

# bench_cpu_ticks PID: user + system CPU time of PID in clock ticks (getconf CLK_TCK per second),
# from /proc/PID/stat: fields 14 and 15, counted after the command name, which may hold spaces.
# -1 if PID is gone.
bench_cpu_ticks() {
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 } END { if (NR == 0) print -1 }'
}

# bench_port_in_use PORT: true if a server cannot bind 127.0.0.1:PORT (something holds it).
bench_port_in_use() {
  ! /usr/bin/python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# bench_free_port FROM: prints the first port from FROM up that bench_port_in_use finds free. Pick
# FROM below the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), where clients' own
# connections cannot take the port between two runs.
bench_free_port() {
  free_port=$1
  while bench_port_in_use "$free_port"; do free_port=$((free_port + 1)); done
  echo "$free_port"
}

# bench_env_common BUILD_DIR DIR...: the lines every *.env.txt starts with: date, commit (unless
# NO_GIT=1), a hash of the sources under those of DIR... that exist, the machine, the compiler,
# the build type and the load average.
bench_env_common() {
  env_build=$1
  shift
  env_dirs=
  for d in "$@"; do
    if [ -d "$root/$d" ]; then env_dirs="$env_dirs $d"; fi
  done
  # shellcheck disable=SC2086  # env_dirs is a list of paths without spaces
  set -- $env_dirs
  echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  if [ "${NO_GIT:-0}" != 1 ]; then
    echo "commit:      $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "uncommitted: $(git -C "$root" status --short -- "$@" 2>/dev/null | tr '\n' ' ')"
  else
    echo "commit:      (not recorded: NO_GIT=1)"
  fi
  echo "sources:     sha256 $(cd "$root" && find "$@" -type f \( -name '*.hpp' -o -name '*.cpp' \) | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16) over $* (*.hpp *.cpp)"
  echo "nproc:       $(nproc)"
  echo "cpu:         $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "kernel:      $(uname -r)"
  echo "compiler:    $(c++ --version | head -n 1)"
  echo "build type:  $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$env_build/CMakeCache.txt")"
  echo "LTO:         WEFT_LTO=$(sed -n 's/^WEFT_LTO:[A-Z]*=//p' "$env_build/CMakeCache.txt") (libraries as fat LTO objects; samples and benchmarks linked with -flto)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# bench_write_meta FILE KEY=VALUE...: one run's facts, a KEY=VALUE a line (pair_figures.read_meta
# reads them).
bench_write_meta() {
  meta_file=$1
  shift
  printf '%s\n' "$@" > "$meta_file"
}

# bench_env_end START: appends the load average after the runs and how long they took (START:
# date +%s before them) to $env.
bench_env_end() {
  {
    echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "duration:    $(( $(date +%s) - $1 )) s"
  } >> "$env"
}

# bench_collect NAME RUNS_DIR: bench/NAME_figures.py gathers the runs and $env into
# $out/NAME.json (replaced only if it succeeds; a failure sets status).
bench_collect() {
  if /usr/bin/python3 -B "$root/bench/$1_figures.py" collect "$2" "$env" > "$out/$1.json.tmp"; then
    mv "$out/$1.json.tmp" "$out/$1.json"
  else
    status=$?
  fi
}

# bench_report NAME: bench/NAME_figures.py writes $out/NAME.{table.md,dat,targets.gp} from
# $out/NAME.json, the table is printed, bench/plot_NAME.gp renders docs/img/NAME.png; then the
# script exits with $status, saying so if it is not 0.
bench_report() {
  /usr/bin/python3 -B "$root/bench/$1_figures.py" report "$out/$1.json" "$out/$1.dat" "$out/$1.targets.gp" \
    > "$out/$1.table.md" || status=$?
  cat "$out/$1.table.md"
  gnuplot -e "datafile='$out/$1.dat'; targets='$out/$1.targets.gp'; outfile='$root/docs/img/$1.png'; libdir='$root/bench'" \
    "$root/bench/plot_$1.gp"
  echo "wrote $out/$1.json, $out/$1.table.md and docs/img/$1.png"
  [ "$status" = 0 ] || echo "$bench: a server, the client or $1_figures.py reported an error (status $status): see above" >&2
  exit "$status"
}
