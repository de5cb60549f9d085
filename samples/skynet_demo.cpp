// skynet_demo: a two-second tour of the weft runtime. It starts a runtime (one worker per core
// by default), runs 10,000 fibers that sleep on timers, runs the skynet benchmark (a tree of
// one million fibers that spawn ten children each and sum their leaves), and prints how long
// each part took and the runtime's counters.
//
//   skynet_demo [--workers N] [--leaves N] [--sleepers N]
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
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

void usage() {
  std::puts(
      "usage: skynet_demo [--workers N] [--leaves N] [--sleepers N]\n"
      "  --workers N   worker threads (default: one per core)\n"
      "  --leaves N    skynet leaves, a power of 10 up to 10^8 (default 1000000)\n"
      "  --sleepers N  fibers that sleep 0-100 ms on timers (default 10000)");
}

}  // namespace

int main(int argc, char** argv) {
  unsigned workers = 0;
  long leaves = 1000000, sleepers = 10000;
  for (int i = 1; i < argc; ++i) {
    auto value = [&](const char* flag) -> long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "skynet_demo: %s needs a value\n", flag);
        std::exit(2);
      }
      char* end = nullptr;
      long v = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || v < 0) {
        std::fprintf(stderr, "skynet_demo: %s: not a non-negative number: %s\n", flag, argv[i]);
        std::exit(2);
      }
      return v;
    };
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      usage();
      return 0;
    } else if (!std::strcmp(argv[i], "--workers")) {
      workers = static_cast<unsigned>(value("--workers"));
    } else if (!std::strcmp(argv[i], "--leaves")) {
      leaves = value("--leaves");
      // The tree splits by ten down to single leaves: any other count never bottoms out.
      long p = 1;
      while (p < leaves && p < 100000000) p *= 10;
      if (p != leaves) {
        std::fprintf(stderr, "skynet_demo: --leaves: wants a power of 10 from 1 to 100000000, not %ld\n", leaves);
        return 2;
      }
    } else if (!std::strcmp(argv[i], "--sleepers")) {
      sleepers = value("--sleepers");
    } else {
      std::fprintf(stderr, "skynet_demo: unknown option %s\n", argv[i]);
      usage();
      return 2;
    }
  }

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
  long sum = rt.block_on([&] { return skynet(0, leaves, 10); });
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
