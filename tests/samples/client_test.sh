#!/usr/bin/env bash
# Runs a test client against a sample server: starts the server (--port 0 and SERVER_ARGS), runs
# CLIENT --port PORT --pid PID CLIENT_ARGS (the client may send the server its stop signal
# itself), then stops the server with SIGTERM: exit code 0 and a summary line. Used with
# bad_input_client (random bytes, truncated requests, 1 MiB lines, idle connections, then the
# RSS check) and stop_client (requests unread at the stop are answered).
#
#   client_test.sh CLIENT SERVER WORK_DIR SERVER_ARGS... -- CLIENT_ARGS...
set -euo pipefail
client=$1
server=$2
work=$3
shift 3
server_args=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  server_args+=("$1")
  shift
done
[ $# -gt 0 ] || { echo "usage: client_test.sh CLIENT SERVER WORK_DIR SERVER_ARGS... -- CLIENT_ARGS..." >&2; exit 2; }
shift  # --
mkdir -p "$work"
source "$(dirname "$0")/common.sh"  # fail, wait_for, start_server, expect_clean_exit

name=$(basename "$server")
client_name=$(basename "$client")
start_server "$server" "${server_args[@]}"  # sets pid and port
echo "$name on port $port (pid $pid), open descriptors allowed: $(ulimit -n)"
rc=0
timeout 240 "$client" --port "$port" --pid "$pid" "$@" || rc=$?
[ "$rc" = 0 ] || fail "$client_name against $name: exit code $rc (its output above says what failed)"
# The client may have stopped it already, and a second signal would end it at once.
not_listening "$port" || kill -TERM "$pid" 2>/dev/null || true
expect_clean_exit "$name"
grep -E "^$name: " "$work/server.out" || fail "$name printed no summary line: $(cat "$work/server.out")"
echo "PASS"
