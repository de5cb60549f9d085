#!/bin/sh
# Builds the echo comparison in Release (bench/compare/echo/epoll_echo_server, and the samples
# samples/echo/echo_server (weft) and echo_client), runs both servers with the same client, and
# regenerates
# docs/bench/echo.{json,env.txt,table.md,dat,targets.gp} and docs/img/echo.png:
#   echo   64-byte requests in a closed loop at 100 and 1000 connections: req/s, p50/p99/p99.9
#          latency, server CPU per request (each server with $WORKERS workers)
#   setup  connect + one echo + close, $SETUP_CONNECTIONS loops at once: setups per second
#   idle   $IDLE_CONNECTIONS connections after one echo each: server VmRSS per connection (weft
#          twice: with its default 64 KiB read buffer on each fiber's stack, and with 256 bytes,
#          which leaves what the runtime itself keeps per parked fiber)
# The weft server runs with --idle-timeout-ms 0: the baseline keeps no idle deadline either.
# Servers alternate run by run (epoll, weft, epoll, ...) so that load from elsewhere hits both;
# the table's verdicts use the median of the back-to-back ratios. The client runs on the same
# cores as the server (one thread: it needs about as much CPU per request as the server, and a
# second thread only adds contention on 2 cores), so req/s measures client + server together:
# read it beside the server's CPU per request, which the client takes from /proc.
#   DURATION=10 WARMUP=2 (s per echo run), SETUP_DURATION=5, REPS=5 (runs of each; the table
#   shows medians), WORKERS=2, CLIENT_THREADS=1, SETUP_CONNECTIONS=16, IDLE_CONNECTIONS=10000,
#   SIZE=64, BUILD_DIR=build/bench, PLOT_ONLY=1 (re-extract and re-plot only), NO_GIT=1.
# Needs cmake, ninja, gnuplot-nox, /usr/bin/python3; 2 x IDLE_CONNECTIONS descriptors (ulimit -n).
# shellcheck disable=SC3045  # ulimit -n and -H are not POSIX, but dash and bash both have them
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build/bench}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
setup_duration=${SETUP_DURATION:-5}
reps=${REPS:-5}
workers=${WORKERS:-2}
client_threads=${CLIENT_THREADS:-1}
setup_conns=${SETUP_CONNECTIONS:-16}
idle_conns=${IDLE_CONNECTIONS:-10000}
size=${SIZE:-64}
out=$root/docs/bench
json=$out/echo.json
env=$out/echo.env.txt
mkdir -p "$out" "$root/docs/img"

status=0
if [ "${PLOT_ONLY:-0}" != 1 ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_SAMPLES=OFF
  cmake --build "$build" --target epoll_echo_server echo_client
  bin=$build/bench/compare/echo
  sample_bin=$build/samples/echo
  servers="epoll"
  if cmake --build "$build" --target echo_server; then
    servers="epoll weft"
  else
    echo "run_echo_bench: echo_server (samples/echo) did not build: measuring the epoll baseline only" >&2
    status=1
  fi

  # The idle run holds IDLE_CONNECTIONS sockets in the client and as many in the server.
  ulimit -n "$(ulimit -H -n)" 2>/dev/null || true
  if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((idle_conns + 100)) ]; then
    idle_conns=$(( $(ulimit -n) - 100 ))
    echo "run_echo_bench: ulimit -n is $(ulimit -n): holding $idle_conns idle connections" >&2
  fi

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/echo_bench.XXXXXX")
  trap 'if [ -n "${srv_pid:-}" ]; then kill -KILL "$srv_pid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM
  mkdir "$tmp/runs"

  {
    echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    if [ "${NO_GIT:-0}" != 1 ]; then
      echo "commit:      $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
      echo "uncommitted: $(git -C "$root" status --short -- runtime sync io bench/compare/echo samples/echo samples/common 2>/dev/null | tr '\n' ' ')"
    else
      echo "commit:      (not recorded: NO_GIT=1)"
    fi
    echo "sources:     sha256 $(cd "$root" && find runtime sync io bench/compare/echo samples/echo samples/common -type f \( -name '*.hpp' -o -name '*.cpp' \) | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16) over runtime/ sync/ io/ bench/compare/echo/ samples/echo/ samples/common/ *.hpp *.cpp"
    echo "nproc:       $(nproc)"
    echo "cpu:         $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "kernel:      $(uname -r)"
    echo "compiler:    $(c++ --version | head -n 1)"
    echo "build type:  $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
    echo "servers:     $servers, $workers workers each (epoll: SO_REUSEPORT listener per worker, 64 KiB read buffer per thread; weft: samples/echo/echo_server, one listener, fiber per connection, 64 KiB read buffer on its stack, --idle-timeout-ms 0)"
    echo "client:      $client_threads thread(s); echo ${warmup} s warm-up + ${duration} s, $size-byte requests; setup ${setup_duration} s x $setup_conns loops; idle $idle_conns connections; $reps run(s) of each"
    echo "ulimit -n:   $(ulimit -n)"
    echo "tw_reuse:    $(cat /proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null || echo '?')"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  } > "$env"

  # start_server SERVER ARGS...: starts the epoll or the weft server with --workers and --port 0
  # and ARGS, waits for its "listening on" line and sets srv_pid and srv_port.
  start_server() {
    server_kind=$1
    shift
    rm -f "$tmp/server.out" "$tmp/server.err"
    : > "$tmp/server.out"
    if [ "$server_kind" = epoll ]; then
      name=epoll_echo_server
      "$bin/epoll_echo_server" --workers "$workers" --port 0 "$@" > "$tmp/server.out" 2> "$tmp/server.err" &
    else
      name=echo_server
      "$sample_bin/echo_server" --idle-timeout-ms 0 --workers "$workers" --port 0 "$@" \
        > "$tmp/server.out" 2> "$tmp/server.err" &
    fi
    srv_pid=$!
    i=0
    while ! grep -q '^listening on ' "$tmp/server.out"; do
      if ! kill -0 "$srv_pid" 2>/dev/null; then
        echo "run_echo_bench: $name exited before listening: $(cat "$tmp/server.err")" >&2
        srv_pid=
        return 1
      fi
      i=$((i + 1))
      if [ $i -gt 200 ]; then
        echo "run_echo_bench: $name printed no \"listening on\" line within 10 s" >&2
        kill -KILL "$srv_pid" 2>/dev/null || true
        srv_pid=
        return 1
      fi
      sleep 0.05
    done
    srv_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/server.out")
  }

  # stop_server NAME: SIGTERM, then up to 10 s for a clean exit (status 0).
  stop_server() {
    kill -TERM "$srv_pid" 2>/dev/null || true
    i=0
    while kill -0 "$srv_pid" 2>/dev/null && [ $i -lt 200 ]; do
      sleep 0.05
      i=$((i + 1))
    done
    if kill -0 "$srv_pid" 2>/dev/null; then
      echo "run_echo_bench: $1 did not exit within 10 s of SIGTERM; killed" >&2
      kill -KILL "$srv_pid" 2>/dev/null || true
      wait "$srv_pid" 2>/dev/null || true
      status=1
    else
      rc=0
      wait "$srv_pid" || rc=$?
      [ $rc = 0 ] || { echo "run_echo_bench: $1 exited with status $rc after SIGTERM: $(cat "$tmp/server.err")" >&2; status=1; }
    fi
    srv_pid=
  }

  # run LABEL SERVER_ARGS -- CLIENT_ARGS: one fresh server, one client run, one JSON file.
  step=0
  nservers=$(echo "$servers" | wc -w)
  idle_runs=$nservers
  case " $servers " in *" weft "*) idle_runs=$((idle_runs + 1)) ;; esac
  [ "$reps" -gt 0 ] || idle_runs=0
  total=$(( reps * 3 * nservers + idle_runs ))
  run() {
    label=$1
    server=$2
    shift 2
    sargs=
    while [ "$1" != -- ]; do sargs="$sargs $1"; shift; done
    shift
    step=$((step + 1))
    file=$tmp/runs/$(printf '%03d' $step)-$label.json
    echo "run_echo_bench: [$step/$total] $label: $* (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    # shellcheck disable=SC2086
    if ! start_server "$server" $sargs; then status=1; return 0; fi
    rc=0
    "$sample_bin/echo_client" "127.0.0.1:$srv_port" --server-pid "$srv_pid" --label "$label" --json "$file" "$@" || rc=$?
    [ $rc = 0 ] || { echo "run_echo_bench: echo_client failed (status $rc) against $label" >&2; status=1; }
    stop_server "$server"
  }

  start=$(date +%s)
  rep=1
  while [ $rep -le "$reps" ]; do
    for c in 100 1000; do
      for s in $servers; do
        run "$s" "$s" -- --mode echo --connections $c --duration "$duration" --warmup "$warmup" \
            --size "$size" --threads "$client_threads"
      done
    done
    for s in $servers; do
      run "$s" "$s" -- --mode setup --connections "$setup_conns" --duration "$setup_duration" \
          --warmup 1 --size "$size" --threads "$client_threads"
    done
    rep=$((rep + 1))
  done
  # Idle memory does not vary run to run the way rates do: once per server.
  if [ "$reps" -gt 0 ]; then
    for s in $servers; do
      run "$s" "$s" -- --mode idle --connections "$idle_conns" --size "$size" --threads "$client_threads"
    done
    case " $servers " in
      *" weft "*) run weft-buf256 weft --buffer 256 -- --mode idle --connections "$idle_conns" \
                      --size "$size" --threads "$client_threads" ;;
    esac
  fi
  {
    echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "duration:    $(( $(date +%s) - start )) s"
  } >> "$env"
  /usr/bin/python3 "$root/bench/echo_figures.py" collect "$tmp/runs" "$env" > "$json.tmp" && mv "$json.tmp" "$json" || status=$?
fi

/usr/bin/python3 "$root/bench/echo_figures.py" report "$json" "$out/echo.dat" "$out/echo.targets.gp" \
  > "$out/echo.table.md" || status=$?
cat "$out/echo.table.md"
gnuplot -e "datafile='$out/echo.dat'; targets='$out/echo.targets.gp'; outfile='$root/docs/img/echo.png'" \
  "$root/bench/plot_echo.gp"
echo "wrote $json, $out/echo.table.md and docs/img/echo.png"
[ "$status" = 0 ] || echo "run_echo_bench: a server, the client or echo_figures.py reported an error (status $status): see above" >&2
exit "$status"
