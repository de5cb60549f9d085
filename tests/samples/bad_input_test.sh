#!/usr/bin/env bash
# Starts a sample server (--port 0 --workers 2), runs bad_input_client against it (random bytes,
# truncated requests, 1 MiB lines, idle connections, while a well-behaved client must keep
# getting its reply; then the RSS check), and stops it with SIGTERM: exit code 0 and a summary.
#
#   bad_input_test.sh BAD_INPUT_CLIENT SERVER WORK_DIR CLIENT_ARGS...
#   (CLIENT_ARGS: --request STR --expect STR and options; see bad_input_client --help)
set -euo pipefail
client=$1
server=$2
work=$3
shift 3
mkdir -p "$work"
source "$(dirname "$0")/common.sh"  # fail, wait_for, start_server, expect_clean_exit

name=$(basename "$server")
start_server "$server" --workers 2  # sets pid and port
echo "$name on port $port (pid $pid), open descriptors allowed: $(ulimit -n)"
rc=0
timeout 240 "$client" --port "$port" --pid "$pid" "$@" || rc=$?
[ "$rc" = 0 ] || fail "bad_input_client against $name: exit code $rc (the table above names the phase)"
kill -TERM "$pid"
expect_clean_exit "$name"
grep -E "^$name: " "$work/server.out" || fail "$name printed no summary line: $(cat "$work/server.out")"
echo "PASS"
