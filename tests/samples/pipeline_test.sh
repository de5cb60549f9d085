#!/usr/bin/env bash
# Runs the built pipeline sample as a batch: the checksum is the same at every --workers and
# --parallel setting (and the prime count is pi(500,000) = 41,538), an injected failure
# (--fail-at) ends the run quickly with exit 1 naming the item, --timeout-ms ends it with exit 1,
# the progress line appears on its tick, and SIGINT mid-run stops it cleanly (exit 0, summary
# saying "interrupted").
#
#   pipeline_test.sh PIPELINE WORK_DIR
set -euo pipefail
source "$(dirname "$0")/common.sh"

bin=$1
work=$2
rm -rf "$work"
mkdir -p "$work"

"$bin" --help >"$work/help.out" || fail "--help exited non-zero"
grep -q -- '--fail-at N' "$work/help.out" || fail "--help does not list --fail-at"
rc=0
"$bin" --parallel 0 2>"$work/usage.err" || rc=$?
[ "$rc" = 2 ] || fail "--parallel 0: exit $rc, want 2"
grep -q -- '--parallel wants' "$work/usage.err" || fail "usage error: $(cat "$work/usage.err")"
rc=0
"$bin" --items 10 --fail-at 10 2>"$work/usage.err" || rc=$?
[ "$rc" = 2 ] || fail "--fail-at 10 of 10 items: exit $rc, want 2"
grep -qx 'pipeline: --fail-at 10 is not an item: there are 10 (0..9)' "$work/usage.err" ||
  fail "--fail-at past the items: $(cat "$work/usage.err")"

# --- the checksum does not depend on how the work is spread -----------------------------------
want=""
for cfg in "1 1" "1 8" "2 1" "2 8" "4 2" "4 8"; do
  set -- $cfg
  out=$(timeout 60 "$bin" --items 5000 --workers "$1" --parallel "$2" --queue 16 2>"$work/cfg.err") ||
    fail "--workers $1 --parallel $2 failed: $(cat "$work/cfg.err")"
  got=$(sed -n 's/^pipeline: done: 5000\/5000 items, \(primes=[0-9]* checksum=[0-9a-f]*\), .*; runtime: workers=.*/\1/p' <<<"$out")
  [ -n "$got" ] || fail "--workers $1 --parallel $2: no summary line: $out"
  echo "--workers $1 --parallel $2: $got"
  [ -z "$want" ] || [ "$got" = "$want" ] || fail "--workers $1 --parallel $2: $got, but $want before"
  want=$got
done
[[ "$want" == "primes=41538 "* ]] || fail "pi(500000) is 41538, the pipeline says $want"
out=$(timeout 60 "$bin" --items 5000 --workers 2 --parallel 3 --queue 0) || fail "--queue 0 (rendezvous) failed"
[[ "$out" == *"$want"* ]] || fail "--queue 0: $out"
echo "ok: the same checksum at every setting"

# --- an injected failure cancels the rest quickly ---------------------------------------------
# 100 million items would take hours: the run must end because the failure cancelled it.
start=$SECONDS
rc=0
timeout 20 "$bin" --items 100000000 --workers 2 --parallel 8 --fail-at 1234 >"$work/fail.out" 2>"$work/fail.err" || rc=$?
[ "$rc" = 1 ] || fail "--fail-at: exit $rc, want 1 (124 = it did not stop): $(cat "$work/fail.err")"
[ $((SECONDS - start)) -le 5 ] || fail "--fail-at: took $((SECONDS - start)) s to stop"
grep -qx 'pipeline: error: item 1234: injected failure (--fail-at)' "$work/fail.err" ||
  fail "--fail-at: the error does not name the item: $(cat "$work/fail.err")"
grep -q '^pipeline: failed: [0-9]*/100000000 items' "$work/fail.out" || fail "--fail-at summary: $(cat "$work/fail.out")"
echo "ok: --fail-at 1234: $(cat "$work/fail.err")"

# --- the timeout ------------------------------------------------------------------------------
rc=0
timeout 20 "$bin" --items 100000000 --workers 2 --timeout-ms 300 >"$work/timeout.out" 2>"$work/timeout.err" || rc=$?
[ "$rc" = 1 ] || fail "--timeout-ms: exit $rc, want 1: $(cat "$work/timeout.err")"
grep -q '^pipeline: error: timed out after 300 ms with [0-9]*/100000000 items done$' "$work/timeout.err" ||
  fail "--timeout-ms: $(cat "$work/timeout.err")"
echo "ok: --timeout-ms 300"

# --- long items: every worker computing, the sink's timers must still fire ----------------------
# (one item of --span 1000000 takes seconds; the prime counter yields, or no timer would run)
rc=0
t0=$(date +%s%N)
timeout 20 "$bin" --items 100 --span 1000000 --workers 2 --progress-ms 200 --timeout-ms 1000 \
  >"$work/long.out" 2>"$work/long.err" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" = 1 ] || fail "long items: exit $rc, want 1: $(cat "$work/long.err")"
grep -q '^pipeline: error: timed out after 1000 ms' "$work/long.err" || fail "long items: $(cat "$work/long.err")"
[ "$ms" -lt 5000 ] || fail "long items: the 1000 ms timeout took $ms ms"
[ "$(grep -c 'items/s$' "$work/long.err")" -ge 2 ] || fail "long items: no progress lines: $(cat "$work/long.err")"
echo "ok: long items: progress lines and the timeout (after $ms ms) while every worker computes"

# --- progress lines, then SIGINT mid-run ------------------------------------------------------
# SIGINT back at its default: a non-interactive shell starts background jobs with it ignored.
env --default-signal=INT "$bin" --items 100000000 --workers 2 --progress-ms 100 >"$work/int.out" 2>"$work/int.err" &
pid=$!
track "$pid"
two_progress_lines() { [ "$(grep -cE '^pipeline: [0-9]+/100000000 items \([0-9.]+%\), [0-9]+ items/s$' "$work/int.err")" -ge 2 ]; }
wait_for 20 two_progress_lines || fail "no progress lines: $(cat "$work/int.err")"
kill -INT "$pid"
stopped() { ! kill -0 "$pid" 2>/dev/null; }
wait_for 5 stopped || fail "still running 5 s after SIGINT"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "exit $rc after SIGINT: $(cat "$work/int.err")"
grep -q '^pipeline: interrupted: [1-9][0-9]*/100000000 items, primes=.*; runtime: workers=2 ' "$work/int.out" ||
  fail "summary after SIGINT: $(cat "$work/int.out")"
! grep -q 'error' "$work/int.err" || fail "SIGINT reported an error: $(cat "$work/int.err")"
echo "ok: progress lines, then SIGINT: $(cut -d';' -f1 "$work/int.out")"
echo "PASS"
