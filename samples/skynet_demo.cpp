// skynet_demo: a two-second tour of the weft runtime. It starts a runtime (one worker per core
// by default), runs 10,000 fibers that sleep on timers, runs the skynet benchmark (a tree of
// one million fibers that spawn ten children each and sum their leaves), and prints how long
// each part took and the runtime's counters.
//
//   skynet_demo [--workers N] [--leaves N] [--sleepers N]
#include "sample_args.hpp"

#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace {

long skynet(long num, long size, long div) {
  if (size == 1) return num;
  std::vector<weft::join_handle<long>> children;
  children.reserve(static_cast<std::size_t>(div));
  long sub = size / div;
  for (long i = 0; i < div; ++i) children.push_back(weft::spawn([=] { return skynet(num + i * sub, sub, div); }));
  long sum = 0;
  for (auto& c : children) sum += c.join();
  return sum;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

const char* const kUsage =
    "A two-second tour of the weft runtime: fibers sleeping on timers, then the skynet tree\n"
    "(fibers that spawn ten children each and sum their leaves), with times and counters.";

// Returns -1 to run, or an exit code (0 after --help, 2 after a usage error).
int parse_args(int argc, char** argv, unsigned& workers, long& leaves, long& sleepers) {
  std::vector<sample::flag> flags = {
      sample::count_flag("--workers", "worker threads (default 0 = one per core)", 0, 1024,
                         [&](unsigned long v) { workers = static_cast<unsigned>(v); }),
      {.name = "--leaves",
       .value_name = "N",
       .help = "skynet leaves, a power of 10 up to 10^8 (default 1000000)",
       .what = "a power of 10 from 1 to 100000000",
       .set = [&](const char* s) {
         // The tree splits by ten down to single leaves: any other count never bottoms out.
         unsigned long v = 0;
         if (!sample::parse_uint(s, 100000000, v)) return false;
         unsigned long p = 1;
         while (p < v) p *= 10;
         leaves = static_cast<long>(v);
         return p == v;
       }},
      sample::count_flag("--sleepers", "fibers that sleep 0-100 ms on timers (default 10000)", 0, 10000000,
                         [&](unsigned long v) { sleepers = static_cast<long>(v); }),
  };
  return sample::parse_command_line(argc, argv, "skynet_demo", kUsage, std::move(flags));
}

}  // namespace

int main(int argc, char** argv) {
  unsigned workers = 0;
  long leaves = 1000000, sleepers = 10000;
  if (int rc = parse_args(argc, argv, workers, leaves, sleepers); rc >= 0) return rc;

  weft::runtime rt(weft::runtime_options{.workers = workers, .stack_size = 64 * 1024});
  std::printf("weft runtime: %u workers, 64 KiB stacks\n", rt.options().workers);

  // 1. Many fibers parked on timers: each sleeps 0-100 ms; the workers run nothing meanwhile.
  auto t0 = std::chrono::steady_clock::now();
  long late_ms = rt.block_on([&] {
    std::vector<weft::join_handle<long>> hs;
    std::mt19937 rng(1);
    for (long i = 0; i < sleepers; ++i) {
      auto d = std::chrono::milliseconds(rng() % 100);
      hs.push_back(weft::spawn([d] {
        auto start = std::chrono::steady_clock::now();
        weft::this_fiber::sleep_for(d);
        return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - start - d).count());
      }));
    }
    long worst = 0;
    for (auto& h : hs) worst = std::max(worst, h.join());
    return worst;
  });
  std::printf("%ld sleeping fibers (0-100 ms timers): done in %.0f ms, latest wake-up %ld ms late\n", sleepers,
              ms_since(t0), late_ms);

  // 2. skynet: a tree of `leaves` fibers, ten children per fiber.
  t0 = std::chrono::steady_clock::now();
  long sum = 0;
  try {
    sum = rt.block_on([&] { return skynet(0, leaves, 10); });
  } catch (const std::system_error& e) {
    // Out of stacks: on a kernel without MADV_GUARD_INSTALL (Debian 12's 6.1) each guarded
    // stack costs two mappings, and the tree's ~80,000 live stacks pass vm.max_map_count.
    std::fflush(stdout);
    std::fprintf(stderr, "skynet_demo: %s\nskynet_demo: try --leaves 100000 (guard: %s)\n", e.what(), rt.stats().guard);
    return 1;
  }
  double skynet_ms = ms_since(t0);
  long expected = leaves * (leaves - 1) / 2;
  std::printf("skynet: %ld fibers, sum %ld (%s) in %.0f ms\n", leaves, sum, sum == expected ? "correct" : "WRONG",
              skynet_ms);

  weft::runtime_stats s = rt.stats();
  std::printf("runtime counters: spawned %llu, finished %llu, context switches %llu, steals %llu, "
              "worker parks %llu, timers fired %llu, stacks mapped %llu (guard: %s)\n",
              static_cast<unsigned long long>(s.spawned), static_cast<unsigned long long>(s.finished),
              static_cast<unsigned long long>(s.context_switches), static_cast<unsigned long long>(s.steals),
              static_cast<unsigned long long>(s.parks), static_cast<unsigned long long>(s.timers_fired),
              static_cast<unsigned long long>(s.stacks_mapped), s.guard);
  return sum == expected ? 0 : 1;
}
