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
bench=run_echo_bench
# shellcheck source=bench/bench_lib.sh
. "$root/bench/bench_lib.sh"
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
  trap 'bench_kill_server; rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM
  mkdir "$tmp/runs"

  {
    bench_env_common "$build" runtime sync io bench/compare/common bench/compare/echo samples/echo samples/common
    echo "servers:     $servers, $workers workers each (epoll: SO_REUSEPORT listener per worker, 64 KiB read buffer per thread; weft: samples/echo/echo_server, one listener, fiber per connection, 64 KiB read buffer on its stack, --idle-timeout-ms 0)"
    echo "client:      $client_threads thread(s); echo ${warmup} s warm-up + ${duration} s, $size-byte requests; setup ${setup_duration} s x $setup_conns loops; idle $idle_conns connections; $reps run(s) of each"
    echo "ulimit -n:   $(ulimit -n)"
    echo "tw_reuse:    $(cat /proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null || echo '?')"
  } > "$env"

  # server_command SERVER: the command line of the epoll or the weft server, both with --port 0
  # and $workers workers.
  server_command() {
    if [ "$1" = epoll ]; then
      echo "$bin/epoll_echo_server --port 0 --workers $workers"
    else
      echo "$sample_bin/echo_server --port 0 --workers $workers --idle-timeout-ms 0"
    fi
  }

  # run LABEL SERVER SERVER_ARGS -- CLIENT_ARGS: one fresh server, one client run, one JSON file.
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
    # shellcheck disable=SC2046,SC2086  # paths and flags without spaces
    if ! bench_start_server "$server" $(server_command "$server") $sargs; then status=1; return 0; fi
    rc=0
    "$sample_bin/echo_client" "127.0.0.1:$srv_port" --server-pid "$srv_pid" --label "$label" --json "$file" "$@" || rc=$?
    [ $rc = 0 ] || { echo "run_echo_bench: echo_client failed (status $rc) against $label" >&2; status=1; }
    bench_stop_server
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
  bench_env_end "$start"
  bench_collect echo "$tmp/runs"
fi

bench_report echo
