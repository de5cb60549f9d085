// Stacks (T16, T17): overflow is reported with the fiber named; every stack is guarded (probed
// from a forked child); the MADV_GUARD path adds almost no mappings; the mprotect fallback
// either fits under vm.max_map_count or fails with an error that names the limit.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fiber_cb.hpp"
#include "stack_memory.hpp"
#include "stack_pool.hpp"
#include "weft_test.hpp"
#include <weft/detail/spinlock.hpp>

using namespace std::chrono_literals;

namespace {

// Recurses until the guard page stops it (on purpose).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
int recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  return recurse(depth + 1) + frame[0];
}
#pragma GCC diagnostic pop

TEST(StackDeathTest, OverflowNamesTheFiber) {
  EXPECT_EXIT(
      {
        weft::runtime rt(weft::runtime_options{.workers = 1, .stack_size = 64 * 1024});
        rt.block_on([] { return weft::spawn(weft::spawn_options{.name = "recurser"}, [] { return recurse(0); }).join(); });
      },
      ::testing::KilledBySignal(SIGABRT),
      "weft: stack overflow in fiber [0-9]+ \"recurser\" \\(stack size 64 KiB; raise runtime_options::stack_size\\)");
}

// Recurses with a 12 KiB frame: larger than a page, so a one-page guard could be stepped over.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
[[gnu::noinline]] int recurse_big(int depth) {
  volatile char frame[12 * 1024];
  frame[0] = static_cast<char>(depth);
  return recurse_big(depth + 1) + frame[0];
}
#pragma GCC diagnostic pop

TEST(StackDeathTest, BigFramesCannotStepOverTheGuard) {
  // A frame larger than the guard moves the stack pointer past it without touching it (stack
  // clash) and writes into whatever lies below: another fiber's stack. With a one-page guard
  // this depended on where the frames fell, so it failed for some stack sizes (128 and
  // 512 KiB) and not others. The guard is 64 KiB: every size reports the overflow.
  for (std::size_t kib : {64, 96, 128, 192, 256, 512}) {
    EXPECT_EXIT(
        {
          weft::runtime rt(weft::runtime_options{.workers = 1, .stack_size = kib * 1024});
          rt.block_on([] { return weft::spawn(weft::spawn_options{.name = "big"}, [] { return recurse_big(0); }).join(); });
        },
        ::testing::KilledBySignal(SIGABRT), "weft: stack overflow in fiber [0-9]+ \"big\"")
        << kib << " KiB stacks";
  }
}

// One frame far larger than the whole stack and its guard together.
[[gnu::noinline]] int huge_frame(int seed) {
  char frame[1024 * 1024];
  frame[0] = static_cast<char>(seed);
  // The whole array escapes, so no compiler shrinks it to the bytes written (clang does so
  // with a volatile array).
  asm volatile("" : : "r"(frame) : "memory");
  return frame[0];
}

TEST(StackDeathTest, AFrameLargerThanTheGuardIsCaughtByStackProbes) {
  // Without probes, a 1 MiB frame moves the stack pointer past the 64 KiB guard in one step
  // and its first write lands wherever that is: below another fiber's stack, or unmapped
  // memory reported as a plain crash. weft::runtime compiles its users with
  // -fstack-clash-protection (WEFT_STACK_PROBES), which touches each page on the way down,
  // so the first touch past the stack is in the guard and the overflow is reported.
  EXPECT_EXIT(
      {
        weft::runtime rt(weft::runtime_options{.workers = 1, .stack_size = 256 * 1024});
        rt.block_on([] { return weft::spawn(weft::spawn_options{.name = "huge"}, [] { return huge_frame(1); }).join(); });
      },
      ::testing::KilledBySignal(SIGABRT), "weft: stack overflow in fiber [0-9]+ \"huge\"");
}

TEST(StackDeathTest, TheDefaultRuntimeTakesItsStackSizeFromTheEnvironment) {
  // A program ported by renaming (weft::fiber from main()) runs on the default runtime: its
  // stack size comes from WEFT_STACK_SIZE, and the overflow message says so. In a child, as
  // the default runtime is process-wide.
  EXPECT_EXIT(
      {
        ::setenv("WEFT_STACK_SIZE", "128K", 1);
        ::setenv("WEFT_WORKERS", "1", 1);
        const weft::runtime_options& o = weft::runtime::default_runtime().options();
        std::fprintf(stderr, "stack_size=%zu workers=%u hardware_concurrency=%u\n", o.stack_size, o.workers,
                     weft::fiber::hardware_concurrency());
        weft::fiber f([] {
          weft::this_fiber::set_name("deep");
          recurse(0);
        });
        f.join();
      },
      ::testing::KilledBySignal(SIGABRT),
      "stack_size=131072 workers=1 hardware_concurrency=1\n(.|\n)*weft: stack overflow in fiber [0-9]+ \"deep\" \\(stack size 128 KiB; the "
      "default runtime takes WEFT_STACK_SIZE, e.g. WEFT_STACK_SIZE=8M\\)");
  EXPECT_EXIT(
      {
        ::setenv("WEFT_STACK_SIZE", "lots", 1);
        std::fprintf(stderr, "stack_size=%zu\n", weft::runtime::default_runtime().options().stack_size);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "weft: WEFT_STACK_SIZE=lots: wants a stack size from 16K to 1G, such as 8M; ignored \\(256 KiB\\)\n"
      "stack_size=262144");
}

long resident_kib() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<long>(weft::detail::page_size()) / 1024;
}

// The guard page of the calling fiber's stack.
const void* my_guard() {
  const void* lo;
  const void* hi;
  weft::detail::stack_pool::guard_range(weft::detail::current_fiber(), &lo, &hi);
  return hi > lo ? lo : nullptr;
}

// Reads `addr` in a forked child; true if the child was killed instead of reading it.
bool read_faults(const void* addr) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGSEGV, SIG_DFL);
    volatile char c = *static_cast<const volatile char*>(addr);
    (void)c;
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

struct parked_crowd {
  weft::detail::spinlock mu;
  std::vector<weft::wait_ticket> tickets;
  std::vector<const void*> guards;
  std::atomic<long> parked{0};

  void spawn_one(weft::runtime& rt, bool sample) {
    rt.spawn([this, sample] {
      weft::wait_ticket t = weft::prepare_wait();
      mu.lock();
      tickets.push_back(t);
      if (sample) guards.push_back(my_guard());
      parked.fetch_add(1);
      weft::park(t, std::nullopt, [](void* m) { static_cast<weft::detail::spinlock*>(m)->unlock(); }, &mu);
    });
  }
  void release_all() {
    std::lock_guard lk(mu);
    for (auto& t : tickets) t.wake();
  }
};

TEST(StackTest, GuardedStacksCostAlmostNoMappings) {
  // T17, MADV_GUARD path: many live guarded stacks; kernel mappings grow by < 1% of the
  // fibers, and sampled guard pages fault.
  // On kernels before 6.13 the pool falls back to mprotect (tested below); then this test
  // checks that the fallback was taken instead of the mapping budget.
  const bool madvise_guard = weft::detail::kernel_has_madvise_guard();
  const long n = weft::detail::kernel_has_madvise_guard() ? weft_test::sized(100000, 20000, 3000) : 10000;
  std::size_t maps_before = weft::detail::process_mapping_count();
  long rss_before = resident_kib();
  parked_crowd crowd;
  {
    weft::runtime rt(weft::runtime_options{.workers = 2});
    for (long i = 0; i < n; ++i) crowd.spawn_one(rt, i % (n / 4) == 0);
    ASSERT_TRUE(weft_test::wait_until([&] { return crowd.parked.load() == n; }, 60s));
    std::size_t maps_during = weft::detail::process_mapping_count();
    EXPECT_STREQ(rt.stats().guard, madvise_guard ? "madvise" : "mprotect");
    // TSan maps state of its own for every fiber (__tsan_create_fiber), so count only elsewhere.
    if (madvise_guard && weft_test::current_build() != weft_test::build_kind::tsan) {
      EXPECT_LT(maps_during - std::min(maps_during, maps_before), static_cast<std::size_t>(n / 100 + 16));
    }
    // T2's memory budget: a parked fiber costs its touched stack pages and its control block.
    double per_fiber_kib = static_cast<double>(resident_kib() - rss_before) / static_cast<double>(n);
    RecordProperty("rss_per_fiber_kib", std::to_string(per_fiber_kib));
    if (weft_test::current_build() == weft_test::build_kind::release) {
      EXPECT_LT(per_fiber_kib, 16.0);
    }
    for (const void* g : crowd.guards) {
      ASSERT_NE(g, nullptr);
      EXPECT_TRUE(read_faults(g)) << "guard page at " << g << " is readable";
    }
    crowd.release_all();
  }
}

// Touches `kib` KiB of the calling fiber's stack, as a connection's read buffer on the stack does.
[[gnu::noinline]] int touch_stack(std::size_t kib) {
  volatile char buf[48 * 1024];
  std::size_t n = std::min(sizeof buf, kib * 1024);
  std::memset(const_cast<char*>(buf), 1, n);
  return buf[n - 1];
}

// A burst of 1000 live fibers, each with 48 KiB of its stack touched, then nothing: the pool
// keeps up to stack_cache_high_water (1024) free stacks resident for reuse, but those that a
// whole second goes by without needing decay to its floor (64), and their pages go back to the
// kernel: the process does not keep the burst's memory. `join_on_a_worker`: the fibers are
// joined by a fiber, so their stacks come back into that worker's cache (64 of them), which
// must go back to the pool once the worker idles. Otherwise they are joined on this plain
// thread while every worker is parked, so their stacks come back from outside the runtime and
// the pool must wake a worker for the decay.
void burst_memory_goes_back(bool join_on_a_worker) {
  constexpr long n = 1000;
  weft::runtime rt(weft::runtime_options{.workers = 2});
  long rss_base = resident_kib();
  parked_crowd crowd;
  std::atomic<long> touched{0}, finished{0};
  std::vector<weft::join_handle<void>> fibers;
  for (long i = 0; i < n; ++i) {
    fibers.push_back(rt.spawn([&crowd, &touched, &finished] {
      touched.fetch_add(touch_stack(48));
      weft::wait_ticket t = weft::prepare_wait();
      crowd.mu.lock();
      crowd.tickets.push_back(t);
      crowd.parked.fetch_add(1);
      weft::park(t, std::nullopt, [](void* m) { static_cast<weft::detail::spinlock*>(m)->unlock(); }, &crowd.mu);
      finished.fetch_add(1);
    }));
  }
  ASSERT_TRUE(weft_test::wait_until([&] { return crowd.parked.load() == n; }, 60s));
  EXPECT_EQ(touched.load(), n);
  long rss_burst = resident_kib();
  crowd.release_all();
  ASSERT_TRUE(weft_test::wait_until([&] { return finished.load() == n; }, 30s));
  if (join_on_a_worker) {
    rt.block_on([&] {
      for (auto& f : fibers) f.join();  // the last references: into this worker's cache first
      fibers.clear();
    });
  } else {
    // Until any decay the burst itself started (the pool maps stacks in chunks, so a few may
    // have been free) has ended: the workers then sleep with no timeout, and no park is
    // counted for a while (a worker waiting for a decay wakes and parks again once a second).
    auto workers_asleep = [&rt] {
      std::uint64_t parks = rt.stats().parks;
      std::this_thread::sleep_for(1500ms);
      return rt.stats().parks == parks;
    };
    ASSERT_TRUE(weft_test::wait_until(workers_asleep, 30s));
    for (auto& f : fibers) f.join();  // the last references: the stacks come back from here
    fibers.clear();
  }
  // block_on returns once its fiber's result is in, a moment before that fiber is gone.
  EXPECT_TRUE(weft_test::wait_until([&] { return rt.stats().live_fibers == 0; }, 10s)) << rt.stats().live_fibers;
  // A cache goes back after a second without use; decay needs two passes a second apart (the
  // first starts the interval); then trimming goes 64 stacks per 10 ms. The floor, 64, stays.
  const std::uint64_t want_cold = n - 64 - 16;  // 16: slack
  bool decayed = weft_test::wait_until([&] { return rt.stats().stacks_cold >= want_cold; }, 15s);
  EXPECT_TRUE(decayed) << "stacks_cold " << rt.stats().stacks_cold << " of " << rt.stats().stacks_mapped;
  long rss_after = resident_kib();
  ::testing::Test::RecordProperty("rss_burst_kib", std::to_string(rss_burst - rss_base));
  ::testing::Test::RecordProperty("rss_after_kib", std::to_string(rss_after - rss_base));
  // Sanitizers keep shadow memory of their own for the stacks; count pages in release only.
  // What stays: the resident stacks' pages and every stack's control block (512 bytes x 1000).
  if (weft_test::current_build() == weft_test::build_kind::release) {
    EXPECT_GT(rss_burst - rss_base, 40 * 1024) << "the burst touched 48 MiB of stacks";
    EXPECT_LT(rss_after - rss_base, 16 * 1024) << "burst " << rss_burst - rss_base << " KiB";
  }
}

TEST(StackTest, FreeStacksUnusedForASecondGoBackToTheKernel) { burst_memory_goes_back(false); }

TEST(StackTest, FreeStacksInAnIdleWorkersCacheGoBackToTheKernelToo) { burst_memory_goes_back(true); }

// A trimmed stack keeps no page resident: only its control block (256 bytes with its span, kept
// for the runtime's lifetime because stale wait tickets may read it) stays. 5000 fibers that
// each touched one page of stack, then none: with the control block on the stack's top page,
// 20 MiB would stay; with 512-byte headers (before 2026-11-27 night), 2.5 MiB; now 1.7 MiB.
TEST(StackTest, ATrimmedStackKeepsOnlyItsControlBlock) {
  constexpr long n = 5000;
  weft::runtime rt(weft::runtime_options{.workers = 2, .stack_cache_high_water = 0});
  long rss_base = resident_kib();
  parked_crowd crowd;
  std::vector<weft::join_handle<void>> fibers;
  for (long i = 0; i < n; ++i) {
    fibers.push_back(rt.spawn([&crowd] {
      weft::wait_ticket t = weft::prepare_wait();
      crowd.mu.lock();
      crowd.tickets.push_back(t);
      crowd.parked.fetch_add(1);
      weft::park(t, std::nullopt, [](void* m) { static_cast<weft::detail::spinlock*>(m)->unlock(); }, &crowd.mu);
    }));
  }
  ASSERT_TRUE(weft_test::wait_until([&] { return crowd.parked.load() == n; }, 60s));
  long rss_burst = resident_kib();
  crowd.release_all();
  for (auto& f : fibers) f.join();
  fibers.clear();
  crowd.tickets.clear();
  crowd.tickets.shrink_to_fit();
  ASSERT_TRUE(weft_test::wait_until([&] { return rt.stats().live_fibers == 0; }, 10s)) << rt.stats().live_fibers;
  bool trimmed = weft_test::wait_until([&] { return rt.stats().stacks_cold == rt.stats().stacks_mapped; }, 15s);
  EXPECT_TRUE(trimmed) << "stacks_cold " << rt.stats().stacks_cold << " of " << rt.stats().stacks_mapped;
  long rss_after = resident_kib();
  ::testing::Test::RecordProperty("rss_burst_kib", std::to_string(rss_burst - rss_base));
  ::testing::Test::RecordProperty("rss_after_kib", std::to_string(rss_after - rss_base));
  if (weft_test::current_build() == weft_test::build_kind::release) {
    EXPECT_GT(rss_burst - rss_base, n * 4) << "each parked fiber touched a page of its stack";
    EXPECT_LT(rss_after - rss_base, n / 2) << "KiB kept by " << n << " trimmed stacks (burst "
                                           << rss_burst - rss_base << " KiB)";
  }
}

TEST(StackTest, UnguardedWhenAskedOnly) {
  weft::runtime rt(weft::runtime_options{.workers = 1, .guard_pages = false});
  rt.block_on([] { EXPECT_EQ(my_guard(), nullptr); });
  EXPECT_STREQ(rt.stats().guard, "none");
}

TEST(StackDeathTest, MprotectFallbackStaysUnderTheMapLimitOrSaysWhy) {
  // T17, mprotect path (two mappings per stack): spawn up to 40k parked fibers in a child
  // process. Either all fit, or spawning fails with an error naming vm.max_map_count and the
  // remedies; the child never crashes, and sampled stacks are guarded.
  const long target = weft_test::sized(40000, 40000, 3000);
  EXPECT_EXIT(
      {
        parked_crowd crowd;
        long spawned = 0;
        std::string error;
        {
          weft::runtime rt(weft::runtime_options{.workers = 1, .force_mprotect_guard = true});
          try {
            for (; spawned < target; ++spawned) crowd.spawn_one(rt, spawned % 15000 == 0);
          } catch (const std::system_error& e) {
            error = e.what();
          }
          weft_test::wait_until([&] { return crowd.parked.load() == spawned; }, 60s);
          bool guard_ok = std::string(rt.stats().guard) == "mprotect";
          bool probes_ok = true;
          for (const void* g : crowd.guards) probes_ok = probes_ok && g != nullptr && read_faults(g);
          std::size_t maps = weft::detail::process_mapping_count();
          bool under = maps <= weft::detail::max_map_count();
          crowd.release_all();
          std::fprintf(stderr, "spawned=%ld guard_ok=%d probes_ok=%d under_limit=%d error=[%s]\n", spawned, guard_ok,
                       probes_ok, under, error.c_str());
          bool ok = guard_ok && probes_ok && under &&
                    (spawned == target || (error.find("vm.max_map_count") != std::string::npos &&
                                           error.find("guard_pages = false") != std::string::npos));
          std::fflush(stderr);
          if (!ok) std::_Exit(1);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "guard_ok=1 probes_ok=1 under_limit=1");
}

// Frames of varying size, so their redzones land at many offsets of a reused stack.
__attribute__((noinline)) int deep_frames(int depth, int seed) {
  volatile char buf[136];
  std::size_t used = 96 + 8 * static_cast<std::size_t>(depth % 5);
  std::memset(const_cast<char*>(buf), seed, used);
  return depth == 0 ? buf[3] : deep_frames(depth - 1, seed + 1) + buf[5];
}

TEST(StackTest, StacksOfADestroyedRuntimeAreCleanForTheNext) {
  // A finished fiber's bottom frames never return, so under ASan their redzones stay poisoned;
  // when a runtime unmaps its stacks and the next maps stacks of another size at the same
  // addresses, a frame on those stale redzones was reported as stack-buffer-overflow. The pool
  // clears the shadow when a stack is handed out and when a chunk is unmapped. (In builds
  // without ASan this runs the same fibers and checks their results.)
  for (int round = 0; round < 30; ++round) {
    weft::runtime rt(weft::runtime_options{.workers = 2, .stack_size = static_cast<std::size_t>(64 + 8 * round) * 1024});
    std::vector<weft::join_handle<int>> hs;
    for (int i = 0; i < 200; ++i) hs.push_back(rt.spawn([i] { return deep_frames(8 + i % 7, i); }));
    for (int i = 0; i < 200; ++i) {
      int depth = 8 + i % 7;
      int want = 0;
      // deep_frames(d, s) = buf[3] at depth 0 (= s + d), plus buf[5] (= its seed) on the way up.
      for (int k = depth; k > 0; --k) want += static_cast<char>(i + (depth - k));
      want += static_cast<char>(i + depth);
      EXPECT_EQ(hs[static_cast<std::size_t>(i)].join(), want);
    }
  }
}

}  // namespace
