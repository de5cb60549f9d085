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

# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

# Not start_sample: stdout goes to a fifo whose only reader leaves after the first line.
mkfifo "$work/out"
env --default-signal=INT "$@" --port 0 >"$work/out" 2>"$work/server.err" &
server_pid=$!
track "$server_pid"
timeout 10 head -n 1 "$work/out" >"$work/first" || fail "no first line from $1"
sleep 0.2  # the reader is gone: the next line the server prints meets a closed pipe
kill -INT "$server_pid"
expect_clean_exit "$(basename "$1") with its stdout closed (141 = SIGPIPE)"
echo "ok: $(basename "$1") exits 0 with a closed stdout (first line: $(cat "$work/first"))"
