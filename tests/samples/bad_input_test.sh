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
source "$(dirname "$0")/sample_test_lib.sh"

name=$(basename "$server")
start_sample "$work/$name" "$server" --workers 2
echo "$name on port $sample_port (pid $sample_pid), open descriptors allowed: $(ulimit -n)"
rc=0
timeout 240 "$client" --port "$sample_port" --pid "$sample_pid" "$@" || rc=$?
[ "$rc" = 0 ] || fail "bad_input_client against $name: exit code $rc (the table above names the phase)"
kill -TERM "$sample_pid"
expect_exit_0 "$name"
grep -E "^$name: " "$work/$name.out" || fail "$name printed no summary line: $(cat "$work/$name.out")"
echo "PASS"
