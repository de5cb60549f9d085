#!/bin/sh
# Builds samples/http_server and its hand-written epoll baseline (bench/compare/http) in Release,
# drives each with the same wrk command, and regenerates docs/bench/http.{json,env.txt,table.md,
# dat,targets.gp} and docs/img/http.png (issue 5: http_server >= 90 % of the baseline's req/s):
#   wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency http://127.0.0.1:PORT/
# against `epoll_http_server --workers $WORKERS` and `http_server --workers $WORKERS`, both
# answering GET / with the same 16-byte body. Servers alternate run by run (epoll, weft, epoll,
# ...), each run on a fresh server after a ${WARMUP} s wrk warm-up that is not counted; the
# verdict uses the median of the back-to-back ratios. wrk shares the cores with the server, so
# req/s measures both together: read it beside the server's CPU time per request, from
# /proc/PID/stat before and after the measured wrk run.
#   DURATION=10 WARMUP=2 (s), REPS=5 (runs of each), WORKERS=2, CONNECTIONS=100,
#   HTTP_SERVER_ARGS= (more flags for http_server), HTTP_SERVER= (an http_server executable built
#   elsewhere, e.g. in another worktree: used instead of building the sample), BUILD_DIR=build/bench,
#   PLOT_ONLY=1 (re-extract nothing, re-plot docs/bench/http.json), NO_GIT=1.
#   A quick check of the script: DURATION=1 WARMUP=1 REPS=1 (then restore docs/bench/http.* and
#   docs/img/http.png from git: only a full run is published).
# The script checks that both servers send the same bytes for GET / (env.txt "answers:").
# Needs cmake, ninja, wrk, curl, gnuplot-nox, /usr/bin/python3.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
bench=run_http_bench
# shellcheck source=bench/bench_lib.sh
. "$root/bench/bench_lib.sh"
build=${BUILD_DIR:-$root/build/bench}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
reps=${REPS:-5}
workers=${WORKERS:-2}
connections=${CONNECTIONS:-100}
out=$root/docs/bench
env=$out/http.env.txt
mkdir -p "$out" "$root/docs/img"

status=0
if [ "${PLOT_ONLY:-0}" != 1 ]; then
  for tool in wrk curl; do
    command -v $tool > /dev/null || { echo "$bench: $tool is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
  done
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_SAMPLES=ON
  cmake --build "$build" --target epoll_http_server
  baseline=$build/bench/compare/http/epoll_http_server
  if [ -n "${HTTP_SERVER:-}" ]; then
    weft=$HTTP_SERVER
    [ -x "$weft" ] || { echo "$bench: HTTP_SERVER=$weft is not an executable" >&2; exit 1; }
  else
    if ! ninja -C "$build" -t targets all | grep -q '^http_server:'; then
      echo "$bench: CMake has no target http_server in $build: samples/http_server is not in this tree yet, so there is nothing to compare with the baseline (or set HTTP_SERVER=/path/to/http_server)" >&2
      exit 1
    fi
    cmake --build "$build" --target http_server
    weft=$(find "$build/samples" -type f -name http_server -perm -u+x | head -n 1)
    [ -n "$weft" ] || { echo "$bench: target http_server built, but no http_server executable under $build/samples" >&2; exit 1; }
  fi

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/http_bench.XXXXXX")
  trap 'bench_kill_server; rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM
  mkdir "$tmp/runs"

  {
    bench_env_common "$build" runtime sync io samples/common samples/http_server bench/compare/common bench/compare/http
    echo "servers:     epoll_http_server --workers $workers (SO_REUSEPORT listener and epoll per thread); $weft --workers $workers ${HTTP_SERVER_ARGS:-}(fiber per connection)"
    echo "client:      $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2); wrk -t1 -c$connections -d${duration}s --latency after a ${warmup} s warm-up; $reps run(s) of each"
    echo "clk_tck:     $(getconf CLK_TCK)"
  } > "$env"

  # run LABEL PROGRAM ARGS...: a fresh server, a warm-up, one measured wrk run; writes the wrk
  # output and the run's facts (key=value) to $tmp/runs/NNN-LABEL.{wrk,meta}.
  step=0
  total=$((reps * 2))
  run() {
    label=$1
    shift
    step=$((step + 1))
    file=$tmp/runs/$(printf '%03d' $step)-$label
    echo "$bench: [$step/$total] $label (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    if ! bench_start_server "$label" "$@"; then status=1; return 0; fi
    url=http://127.0.0.1:$srv_port/
    # What each server answers to GET / (status line, headers, body), compared after the runs.
    curl -s -i --max-time 5 "$url" > "$tmp/answer-$label" 2>&1 || true
    if [ "$warmup" != 0 ]; then
      timeout $((warmup + 30)) wrk -t1 -c"$connections" -d"${warmup}s" "$url" > /dev/null 2>&1 || true
    fi
    cpu0=$(bench_cpu_ticks "$srv_pid")
    rc=0
    timeout $((duration + 30)) wrk -t1 -c"$connections" -d"${duration}s" --latency "$url" > "$file.wrk" 2>&1 || rc=$?
    cpu1=$(bench_cpu_ticks "$srv_pid")
    [ $rc = 0 ] || { echo "$bench: wrk failed (status $rc) against $label: $(cat "$file.wrk")" >&2; status=1; }
    bench_write_meta "$file.meta" server="$label" connections="$connections" duration="$duration" \
      cpu_ticks_before="$cpu0" cpu_ticks_after="$cpu1" clk_tck="$(getconf CLK_TCK)" client_status="$rc"
    bench_stop_server
  }

  start=$(date +%s)
  rep=1
  while [ "$rep" -le "$reps" ]; do
    run epoll "$baseline" --port 0 --workers "$workers"
    # shellcheck disable=SC2086  # HTTP_SERVER_ARGS is a list of flags
    run weft "$weft" --port 0 --workers "$workers" ${HTTP_SERVER_ARGS:-}
    rep=$((rep + 1))
  done
  if cmp -s "$tmp/answer-epoll" "$tmp/answer-weft"; then
    echo "answers:     identical (GET /, status line + headers + body)" >> "$env"
  else
    echo "answers:     DIFFER: the servers do not send the same bytes for GET /" >> "$env"
    echo "$bench: the two servers answer GET / differently, so they do not do the same work:" >&2
    diff "$tmp/answer-epoll" "$tmp/answer-weft" | cat -A >&2 || true
    status=1
  fi
  bench_env_end "$start"
  bench_collect http "$tmp/runs"
fi

bench_report http
