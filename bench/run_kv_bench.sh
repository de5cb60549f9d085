#!/bin/sh
# Builds samples/kv_server in Release and drives it and Debian's redis-server with the same
# redis-benchmark command, then regenerates docs/bench/kv.{json,env.txt,table.md,dat,targets.gp}
# and docs/img/kv.png (issue 5: kv_server >= redis-server's requests/s, per test and depth):
#   redis-benchmark -p PORT -t set,get -c $CLIENTS -n $N -P DEPTH --csv     (DEPTH in $PIPELINES)
# against `kv_server --workers $WORKERS` and `redis-server --save '' --appendonly no` (one
# thread for commands, as Debian ships it), each started fresh for every run, with its working
# directory in a temporary directory. Servers alternate run by run (redis, weft, redis, ...),
# after a warm-up of $WARMUP_N requests per test that is not counted; verdicts use the median of
# the back-to-back ratios. The client shares the cores with the server: read req/s beside the
# server's CPU time per request (/proc/PID/stat over the measured run, SET and GET together).
#   N=1000000 (requests per test), REPS=3 (runs of each), PIPELINES="1 16", CLIENTS=50,
#   WORKERS=2, WARMUP_N=50000, REDIS_PORT=0 (0: the first free port from 16379, below the
#   ephemeral ports the clients use), BUILD_DIR=build/bench,
#   PLOT_ONLY=1 (re-plot docs/bench/kv.json), NO_GIT=1.
#   A quick check of the script: N=100000 REPS=1 (then restore docs/bench/kv.* and
#   docs/img/kv.png from git: only a full run is published).
# Needs cmake, ninja, redis-server, redis-tools (redis-benchmark, redis-cli), gnuplot-nox,
# /usr/bin/python3.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
bench=run_kv_bench
# shellcheck source=bench/bench_lib.sh
. "$root/bench/bench_lib.sh"
build=${BUILD_DIR:-$root/build/bench}
n=${N:-1000000}
reps=${REPS:-3}
pipelines=${PIPELINES:-1 16}
clients=${CLIENTS:-50}
workers=${WORKERS:-2}
warmup_n=${WARMUP_N:-50000}
redis_port=${REDIS_PORT:-0}
out=$root/docs/bench
env=$out/kv.env.txt
mkdir -p "$out" "$root/docs/img"

status=0
if [ "${PLOT_ONLY:-0}" != 1 ]; then
  for tool in redis-server redis-benchmark redis-cli; do
    command -v $tool > /dev/null || { echo "$bench: $tool is not installed (scripts/setup.sh installs redis-server and redis-tools)" >&2; exit 1; }
  done
  if [ "$redis_port" = 0 ]; then
    redis_port=$(bench_free_port 16379)
  elif bench_port_in_use "$redis_port"; then
    echo "$bench: REDIS_PORT=$redis_port is in use: pick another" >&2
    exit 1
  fi
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_SAMPLES=ON
  cmake --build "$build" --target kv_server
  kv=$build/samples/kv_server/kv_server

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/kv_bench.XXXXXX")
  trap 'bench_kill_server; rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM
  mkdir "$tmp/runs" "$tmp/redis"

  {
    bench_env_common "$build" runtime sync io samples/common samples/kv_server
    echo "servers:     kv_server --workers $workers (fiber per connection); $(redis-server --version | cut -d' ' -f1-3) --save '' --appendonly no (its default single command thread)"
    echo "client:      $(redis-benchmark --version | cut -d' ' -f1-2); redis-benchmark -t set,get -c $clients -n $n -P {$(echo "$pipelines" | tr ' ' ',')} --csv after a warm-up of $warmup_n requests per test; $reps run(s) of each"
    echo "clk_tck:     $(getconf CLK_TCK)"
  } > "$env"

  # redis_ready: true once redis-server answers PING.
  # shellcheck disable=SC2317  # called through bench_wait_ready
  redis_ready() {
    [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ]
  }

  # run LABEL DEPTH: a fresh server, a warm-up, one measured redis-benchmark run; writes its CSV
  # and the run's facts (key=value) to $tmp/runs/NNN-LABEL.{csv,meta}.
  step=0
  total=$((reps * 2 * $(echo "$pipelines" | wc -w)))
  run() {
    label=$1
    depth=$2
    step=$((step + 1))
    file=$tmp/runs/$(printf '%03d' $step)-$label-P$depth
    echo "$bench: [$step/$total] $label -P $depth (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    if [ "$label" = redis ]; then
      if bench_port_in_use "$redis_port"; then
        echo "$bench: port $redis_port was free at the start and is now taken by another program" >&2
        status=1
        return 0
      fi
      bench_launch redis redis-server --save '' --appendonly no --bind 127.0.0.1 --port "$redis_port" \
        --dir "$tmp/redis" --daemonize no --logfile ''
      if ! bench_wait_ready redis_ready; then status=1; return 0; fi
      port=$redis_port
    else
      if ! bench_start_server weft "$kv" --port 0 --workers "$workers"; then status=1; return 0; fi
      port=$srv_port
    fi
    if [ "$warmup_n" != 0 ]; then
      timeout 300 redis-benchmark -p "$port" -t set,get -c "$clients" -n "$warmup_n" -P "$depth" -q > /dev/null 2>&1 || true
    fi
    cpu0=$(bench_cpu_ticks "$srv_pid")
    rc=0
    timeout 1800 redis-benchmark -p "$port" -t set,get -c "$clients" -n "$n" -P "$depth" --csv > "$file.csv" 2> "$file.err" || rc=$?
    cpu1=$(bench_cpu_ticks "$srv_pid")
    if [ $rc != 0 ] || [ -s "$file.err" ]; then
      echo "$bench: redis-benchmark failed (status $rc) against $label -P $depth: $(head -c 2000 "$file.err")" >&2
      status=1
    fi
    bench_write_meta "$file.meta" server="$label" pipeline="$depth" clients="$clients" requests_per_test="$n" \
      cpu_ticks_before="$cpu0" cpu_ticks_after="$cpu1" clk_tck="$(getconf CLK_TCK)" client_status="$rc" \
      client_stderr_bytes="$(wc -c < "$file.err")"
    bench_stop_server
  }

  start=$(date +%s)
  rep=1
  while [ "$rep" -le "$reps" ]; do
    for depth in $pipelines; do
      run redis "$depth"
      run weft "$depth"
    done
    rep=$((rep + 1))
  done
  bench_env_end "$start"
  bench_collect kv "$tmp/runs"
fi

bench_report kv
