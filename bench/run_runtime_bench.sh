#!/bin/sh
# Builds runtime_bench in Release, runs it with repetitions (medians), and regenerates
# docs/bench/runtime_bench.{json,dat,env.txt,table.md} and docs/img/runtime_bench.png.
#   REPS=5 (repetitions), BUILD_DIR=build-bench, PLOT_ONLY=1 (re-extract and re-plot only).
# Needs cmake, ninja, libbenchmark-dev, libboost-fiber-dev 1.74, gnuplot-nox, /usr/bin/python3.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
reps=${REPS:-5}
out=$root/docs/bench
json=$out/runtime_bench.json
mkdir -p "$out" "$root/docs/img"

status=0
if [ "${PLOT_ONLY:-0}" != 1 ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF
  cmake --build "$build" --target runtime_bench

  cmd="$build/bench/runtime_bench --benchmark_repetitions=$reps --benchmark_report_aggregates_only=true --benchmark_out=$json --benchmark_out_format=json"
  {
    echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "commit:      $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "uncommitted: $(git -C "$root" status --short -- runtime 2>/dev/null | tr '\n' ' ')"
    echo "nproc:       $(nproc)"
    echo "cpu:         $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "kernel:      $(uname -r)"
    echo "compiler:    $(c++ --version | head -n 1)"
    echo "build type:  $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
    echo "LTO:         WEFT_LTO=$(sed -n 's/^WEFT_LTO:[A-Z]*=//p' "$build/CMakeCache.txt") (libraries as fat LTO objects; samples and benchmarks linked with -flto)"
    echo "command:     $cmd"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  } > "$out/runtime_bench.env.txt"

  status=0
  $cmd || status=$?
  echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/runtime_bench.env.txt"
fi

/usr/bin/python3 "$root/bench/runtime_figures.py" "$json" "$out/runtime_bench.dat" "$out/runtime_targets.gp" \
  > "$out/runtime_bench.table.md" || status=$?
cat "$out/runtime_bench.table.md"
gnuplot -e "datafile='$out/runtime_bench.dat'; targets='$out/runtime_targets.gp'; outfile='$root/docs/img/runtime_bench.png'" \
  "$root/bench/plot_runtime.gp"
echo "wrote $json, $out/runtime_bench.table.md and docs/img/runtime_bench.png"
[ "$status" = 0 ] || echo "runtime_bench reported an error (status $status): see the output above" >&2
exit "$status"
