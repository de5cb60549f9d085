// What the micro benchmarks (runtime_bench, sync_bench, kv_command_bench) share: a whole timed
// loop's wall-clock time reported per operation, and failing a run so that its exit status
// says so.
#pragma once

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace bench {

using clock_type = std::chrono::steady_clock;

inline std::int64_t ns_since(clock_type::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
}

// Wall-clock ns per operation over the whole timed loop (the same span as real_time), as a
// counter so that the console, the JSON and the aggregates all carry it.
inline void report_per_op(benchmark::State& st, const char* counter, std::int64_t elapsed_ns, std::uint64_t ops) {
  st.SetItemsProcessed(static_cast<std::int64_t>(ops));
  st.counters[counter] = static_cast<double>(elapsed_ns) / static_cast<double>(ops);
}

inline std::atomic<bool> failed{false};

// Marks the benchmark as failed (error_occurred in the JSON) and the run's exit status as 1
// (main returns exit_status()).
inline void fail(benchmark::State& st, const char* program, const char* where, const std::string& what) {
  std::fprintf(stderr, "%s: %s: %s\n", program, where, what.c_str());
  failed.store(true);
  st.SkipWithError(what.c_str());
}

inline int exit_status() { return failed.load() ? 1 : 0; }

}  // namespace bench
