#!/usr/bin/env bash
# The README's demo: starts the kv_server sample (a Redis-protocol store on weft fibers, 2
# workers) on a free port, drives it with redis-benchmark — a client nobody here wrote — for a
# few seconds of SET and GET traffic (live progress, then requests/s and latency percentiles per
# command), stops it with SIGINT and prints its summary line: connections, commands and the
# runtime's fiber statistics. Everything it starts is stopped on exit, also on Ctrl-C.
#
#   scripts/demo.sh [BUILD_DIR]     (default build/release; needs redis-benchmark: setup.sh)
#   REQUESTS=300000 CLIENTS=50 PIPELINE=16 WORKERS=2 to change the load.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
server=$build/samples/kv_server/kv_server
requests=${REQUESTS:-500000}
clients=${CLIENTS:-50}
pipeline=${PIPELINE:-16}
workers=${WORKERS:-2}

if [ ! -x "$server" ]; then
  echo "demo: $server not built: cmake --preset release && cmake --build --preset release --target kv_server" >&2
  exit 1
fi
if ! command -v redis-benchmark >/dev/null; then
  echo "demo: redis-benchmark not found: run scripts/setup.sh (Debian package redis-tools)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/weft-demo-XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$server" --port 0 --workers "$workers" >"$work/out" 2>"$work/err" &
pid=$!
port=""
for _ in $(seq 100); do  # up to 10 s for the "listening on" line
  port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/out")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "demo: kv_server did not start:" >&2
  cat "$work/err" >&2
  exit 1
fi

echo "== kv_server (weft, $workers workers) on 127.0.0.1:$port"
echo "== redis-benchmark: $requests SETs then $requests GETs, $clients connections, pipeline $pipeline"
# redis-benchmark redraws its progress line with \r on a terminal; its summary gives requests
# per second and the latency percentiles.
# Keep its progress, the command headers and the summaries; drop the latency histograms.
redis-benchmark -p "$port" -t set,get -n "$requests" -c "$clients" -P "$pipeline" -r 100000 \
  | awk -v RS='[\r\n]' '
      /^[ \t]*$/ { next }
      /rps=/ { printf "\r%-100s", $0; fflush(); progress = 1; next }
      progress { printf "\n"; progress = 0 }
      /^======/ { print; show = 0; next }
      /^Summary:/ { show = 1 }
      /^(Latency by percentile|Cumulative distribution)/ { show = 0 }
      show && NF { print }'
echo "== stopping kv_server (SIGINT)"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
pid=""
cat "$work/out" | grep -v '^listening on'
if [ "$status" -ne 0 ]; then
  echo "demo: kv_server exited with status $status:" >&2
  cat "$work/err" >&2
  exit 1
fi
