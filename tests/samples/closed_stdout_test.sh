#!/usr/bin/env bash
# A server whose stdout is closed early (`server | head -1`, to catch the "listening" line)
# still stops cleanly on SIGINT: exit status 0, not 141 (SIGPIPE) when it prints its summary.
#
#   closed_stdout_test.sh WORK_DIR SERVER [ARGS...]
set -euo pipefail
work=$1
shift
rm -rf "$work"
mkdir -p "$work"
mkfifo "$work/out"
"$@" --port 0 >"$work/out" 2>"$work/err" &
pid=$!
timeout 10 head -n 1 "$work/out" >"$work/first" || { echo "FAIL: no first line from $1" >&2; kill -9 "$pid"; exit 1; }
sleep 0.2  # the reader is gone: the next line the server prints meets a closed pipe
kill -INT "$pid"
rc=0
timeout 20 tail --pid="$pid" -f /dev/null || { echo "FAIL: $1 did not stop after SIGINT" >&2; kill -9 "$pid"; exit 1; }
wait "$pid" || rc=$?
[ "$rc" = 0 ] || { echo "FAIL: $1 exited with status $rc after its stdout closed (141 = SIGPIPE); stderr: $(cat "$work/err")" >&2; exit 1; }
echo "ok: $(basename "$1") exits 0 with a closed stdout (first line: $(cat "$work/first"))"
