#!/bin/sh
# Builds sync_bench in Release, runs it with repetitions (medians), and regenerates
# docs/bench/sync_bench.{json,dat,env.txt,table.md,targets.gp} and
# docs/img/sync_bench.png.
#   REPS=5 (repetitions), BUILD_DIR=build-bench, PLOT_ONLY=1 (re-extract and re-plot only),
#   NO_GIT=1 (do not ask git for the commit; the source digest below is recorded either way).
# Needs cmake, ninja, libbenchmark-dev, libboost-fiber-dev 1.74, gnuplot-nox, /usr/bin/python3.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
reps=${REPS:-5}
out=$root/docs/bench
json=$out/sync_bench.json
env=$out/sync_bench.env.txt
mkdir -p "$out" "$root/docs/img"

status=0
if [ "${PLOT_ONLY:-0}" != 1 ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_SAMPLES=OFF
  cmake --build "$build" --target sync_bench

  cmd="$build/bench/sync_bench --benchmark_repetitions=$reps --benchmark_report_aggregates_only=true --benchmark_out=$json --benchmark_out_format=json"
  {
    echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    if [ "${NO_GIT:-0}" != 1 ]; then
      echo "commit:      $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
      echo "uncommitted: $(git -C "$root" status --short -- runtime sync 2>/dev/null | tr '\n' ' ')"
    else
      echo "commit:      (not recorded: NO_GIT=1)"
    fi
    # The sources measured, whatever git says: the runtime and sync are edited while we measure.
    echo "sources:     sha256 $(cd "$root" && find runtime sync -type f \( -name '*.hpp' -o -name '*.cpp' \) | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16) over runtime/ and sync/ *.hpp *.cpp"
    echo "newest:      $(cd "$root" && find runtime sync -type f \( -name '*.hpp' -o -name '*.cpp' \) -printf '%TY-%Tm-%Td %TH:%TM UTC  %p\n' | LC_ALL=C sort | tail -n 1)"
    echo "nproc:       $(nproc)"
    echo "cpu:         $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "kernel:      $(uname -r)"
    echo "compiler:    $(c++ --version | head -n 1)"
    echo "build type:  $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
    echo "LTO:         WEFT_LTO=$(sed -n 's/^WEFT_LTO:[A-Z]*=//p' "$build/CMakeCache.txt") (libraries as fat LTO objects; samples and benchmarks linked with -flto)"
    echo "command:     $cmd"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  } > "$env"

  start=$(date +%s)
  $cmd || status=$?
  {
    echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "duration:    $(( $(date +%s) - start )) s"
  } >> "$env"
fi

/usr/bin/python3 "$root/bench/sync_figures.py" "$json" "$out/sync_bench.dat" "$out/sync_bench.targets.gp" \
  > "$out/sync_bench.table.md" || status=$?
cat "$out/sync_bench.table.md"
gnuplot -e "datafile='$out/sync_bench.dat'; targets='$out/sync_bench.targets.gp'; outfile='$root/docs/img/sync_bench.png'" \
  "$root/bench/plot_sync.gp"
echo "wrote $json, $out/sync_bench.table.md and docs/img/sync_bench.png"
[ "$status" = 0 ] || echo "sync_bench or sync_figures.py reported an error (status $status): see the output above" >&2
exit "$status"
