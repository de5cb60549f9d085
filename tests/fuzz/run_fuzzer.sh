#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time over a copy of its seed corpus in a temporary
# directory, so the checked-in corpus never changes. A crash, a leak, a sanitizer report or a
# failed invariant fails the test and leaves the input in ARTIFACT_DIR (reproduce with
# `FUZZER ARTIFACT_DIR/crash-...`).
#
#   run_fuzzer.sh FUZZER SEED_DIR SECONDS ARTIFACT_DIR
set -euo pipefail
fuzzer=$1
seeds=$2
seconds=$3
artifacts=$4
[ -d "$seeds" ] && [ -n "$(ls -A "$seeds")" ] || { echo "FAIL: empty seed corpus $seeds" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$seeds" "$tmp/corpus"
mkdir -p "$artifacts"
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$tmp/corpus"
