// runtime_bench: weft beside Boost.Fiber 1.74 and a bare boost::context::fiber switch, in one
// run, for the figures of design.md's "Performance budget":
//   yield/*       ping-pong of two fibers on one thread          -> ns_per_switch
//                 (bare_context: the switch in the loop body; bare_context_in_call: in a call)
//   spawn_join/*  10^6 empty fibers spawned in batches and joined -> ns_per_fiber
//   skynet/*      1M-leaf skynet, sum checked                     -> ms_per_run
//   idle/*        1000 fibers asleep for 10 s on 2 threads        -> cpu_pct (of one core)
// Every stack is 64 KiB (weft runtime_options::stack_size, Boost fixedsize_stack). A weft runtime
// is created once per benchmark run, not per iteration; Boost's work_stealing threads once per
// process (see boost_ws_pool). docs/benchmarks.md has the command, the machine and the results;
// bench/run_runtime_bench.sh reproduces them.
#include <benchmark/benchmark.h>

#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>
#include <boost/version.hpp>

#include <weft/weft.hpp>

#include "bench_common.hpp"
#include "boost_ws_pool.hpp"

#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using bench::clock_type;
using bench::ns_since;
using bench::report_per_op;

constexpr std::size_t kStackSize = 64 * 1024;      // every fiber stack, weft and Boost alike
constexpr std::uint64_t kYieldsPerFiber = 100'000; // per iteration: 2 x this many switches
constexpr std::uint64_t kSpawnTotal = 1'000'000;   // fibers per spawn_join iteration
constexpr std::uint64_t kSkynetLeaves = 1'000'000;
constexpr std::uint64_t kSkynetSum = 499'999'500'000;  // sum of 0 .. 10^6 - 1
constexpr int kIdleFibers = 1000;
constexpr auto kIdleSleep = 10s;
constexpr auto kIdleSettle = 200ms;  // after spawning, before the window opens
constexpr auto kIdleWindow = 2s;

void fail(benchmark::State& st, const char* where, const std::string& what) {
  bench::fail(st, "runtime_bench", where, what);
}

std::int64_t process_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Resident set size in KiB (/proc/self/statm, second field, in pages).
long rss_kib() {
  long pages_total = 0, pages_resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  return pages_resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// CPU used by the whole process over `window`, in percent of one core.
double cpu_percent_over(clock_type::duration window) {
  std::int64_t cpu0 = process_cpu_ns();
  auto t0 = clock_type::now();
  std::this_thread::sleep_for(window);
  std::int64_t cpu1 = process_cpu_ns();
  std::int64_t wall = ns_since(t0);
  return 100.0 * static_cast<double>(cpu1 - cpu0) / static_cast<double>(wall);
}

weft::runtime_options weft_options(unsigned workers) {
  return weft::runtime_options{.workers = workers, .stack_size = kStackSize};
}

boost::fibers::fixedsize_stack boost_stack() { return boost::fibers::fixedsize_stack(kStackSize); }

using weft_bench::boost_ws_pool;


// =============================================================================================
// 1. yield ping-pong: two fibers on one thread, each yields kYieldsPerFiber times.

// The floor: a bare boost::context::fiber resumed from the thread and resuming it back. One
// resume is one switch; a round trip is two. `sw(f)` makes one switch.
template <class Switch>
void bare_ping_pong(benchmark::State& st, Switch sw) {
  namespace ctx = boost::context;
  bool stop = false;
  ctx::fiber f(std::allocator_arg, ctx::fixedsize_stack(kStackSize), [&stop, sw](ctx::fiber&& caller) {
    while (!stop) sw(caller);
    return std::move(caller);
  });
  f = std::move(f).resume();  // warm: the fiber is now parked in its loop
  std::uint64_t switches = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    for (std::uint64_t i = 0; i < kYieldsPerFiber; ++i) sw(f);
    switches += 2 * kYieldsPerFiber;
  }
  report_per_op(st, "ns_per_switch", ns_since(t0), switches);
  stop = true;
  f = std::move(f).resume();  // lets the fiber return
}

// The switch inlined into each side's loop.
void BM_yield_bare_context(benchmark::State& st) {
  bare_ping_pong(st, [](boost::context::fiber& f) { f = std::move(f).resume(); });
}

// The same ping-pong with each side's switch inside a function that returns afterwards, the
// shape of every scheduler (the switch sits under at least the call that made it). Boost
// 1.74's jump_fcontext, under resume(), ends in `jmp` rather than `ret`: the return-stack
// buffer keeps the caller's entry, so each return after the switch is predicted from the wrong
// entry. resume_with runs its hook through ontop_fcontext, whose hook returns with `ret` and
// keeps the buffer balanced. The bare loop above makes no return after its switch, so it pays
// for neither; these two are the floor a scheduler built on Boost.Context can reach.
template <bool With>
[[gnu::noinline]] void switch_in_call(boost::context::fiber& f) {
  if constexpr (With) {
    f = std::move(f).resume_with([](boost::context::fiber&& from) { return std::move(from); });
  } else {
    f = std::move(f).resume();
  }
}

template <bool With>
void BM_yield_bare_context_in_call(benchmark::State& st) {
  bare_ping_pong(st, switch_in_call<With>);
}

void BM_yield_boost_fiber(benchmark::State& st) {
  auto body = [] {
    for (std::uint64_t i = 0; i < kYieldsPerFiber; ++i) boost::this_fiber::yield();
  };
  std::uint64_t switches = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    boost::fibers::fiber a(std::allocator_arg, boost_stack(), body);
    boost::fibers::fiber b(std::allocator_arg, boost_stack(), body);
    a.join();
    b.join();
    switches += 2 * kYieldsPerFiber;
  }
  report_per_op(st, "ns_per_switch", ns_since(t0), switches);
}

void BM_yield_weft(benchmark::State& st) {
  weft::runtime rt(weft_options(1));
  auto body = [] {
    for (std::uint64_t i = 0; i < kYieldsPerFiber; ++i) weft::this_fiber::yield();
  };
  std::uint64_t switches = 0;
  std::uint64_t counted0 = rt.stats().context_switches;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    rt.block_on([&] {
      auto a = weft::spawn(body);
      auto b = weft::spawn(body);
      a.join();
      b.join();
    });
    switches += 2 * kYieldsPerFiber;
  }
  report_per_op(st, "ns_per_switch", ns_since(t0), switches);
  // The runtime's own count, per yield: 1.0 means one context switch per yield.
  st.counters["switches_per_yield"] =
      static_cast<double>(rt.stats().context_switches - counted0) / static_cast<double>(switches);
}

// =============================================================================================
// 2. spawn + join of empty fibers, `batch` at a time (spawn them all, then join them all),
// kSpawnTotal per iteration. One batch runs before the timed loop so that stacks are pooled
// (weft) or recycled by malloc (Boost, see main()).

void weft_spawn_batches(std::uint64_t total, std::uint64_t batch) {
  std::vector<weft::join_handle<void>> hs;
  hs.reserve(batch);
  for (std::uint64_t done = 0; done < total; done += batch) {
    for (std::uint64_t i = 0; i < batch; ++i) hs.push_back(weft::spawn([] {}));
    for (auto& h : hs) h.join();
    hs.clear();
  }
}

// Args: workers, batch.
void BM_spawn_join_weft(benchmark::State& st) {
  const std::uint64_t batch = static_cast<std::uint64_t>(st.range(1));
  weft::runtime rt(weft_options(static_cast<unsigned>(st.range(0))));
  rt.block_on([batch] { weft_spawn_batches(batch, batch); });
  std::uint64_t fibers = 0;
  const weft::runtime_stats s0 = rt.stats();
  auto t0 = clock_type::now();
  for (auto _ : st) {
    rt.block_on([batch] { weft_spawn_batches(kSpawnTotal, batch); });
    fibers += kSpawnTotal;
  }
  report_per_op(st, "ns_per_fiber", ns_since(t0), fibers);
  const weft::runtime_stats s1 = rt.stats();
  st.counters["stacks_mapped"] = static_cast<double>(s1.stacks_mapped);
  // Where the second worker's time goes: steals and worker parks per 1000 fibers.
  st.counters["steals_per_1k"] = 1000.0 * static_cast<double>(s1.steals - s0.steals) / static_cast<double>(fibers);
  st.counters["parks_per_1k"] = 1000.0 * static_cast<double>(s1.parks - s0.parks) / static_cast<double>(fibers);
}

void boost_spawn_batches(std::uint64_t total, std::uint64_t batch) {
  std::vector<boost::fibers::fiber> fs;
  fs.reserve(batch);
  for (std::uint64_t done = 0; done < total; done += batch) {
    for (std::uint64_t i = 0; i < batch; ++i) fs.emplace_back(std::allocator_arg, boost_stack(), [] {});
    for (auto& f : fs) f.join();
    fs.clear();
  }
}

// Arg: batch. Round-robin on the benchmark thread.
void BM_spawn_join_boost_fiber(benchmark::State& st) {
  const std::uint64_t batch = static_cast<std::uint64_t>(st.range(0));
  boost_spawn_batches(batch, batch);
  std::uint64_t fibers = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    boost_spawn_batches(kSpawnTotal, batch);
    fibers += kSpawnTotal;
  }
  report_per_op(st, "ns_per_fiber", ns_since(t0), fibers);
}

// =============================================================================================
// 3. skynet: each fiber spawns 10 children down to 10^6 leaves; a leaf returns its number and
// every parent returns the sum of its children. 1'111'111 fibers per run.

std::uint64_t skynet_weft(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  const std::uint64_t child = size / 10;
  std::array<weft::join_handle<std::uint64_t>, 10> hs;
  for (std::uint64_t i = 0; i < 10; ++i)
    hs[i] = weft::spawn([num, child, i] { return skynet_weft(num + i * child, child); });
  std::uint64_t sum = 0;
  for (auto& h : hs) sum += h.join();
  return sum;
}

// One untimed run first, reported as cold_ms: it maps the ~100k stacks that skynet keeps alive
// at once; the timed runs then reuse the runtime's pooled stacks (Boost's malloc'd stacks are
// likewise recycled by the process heap from earlier runs).
void BM_skynet_weft(benchmark::State& st) {
  weft::runtime rt(weft_options(static_cast<unsigned>(st.range(0))));
  auto c0 = clock_type::now();
  std::uint64_t cold_sum = rt.block_on([] { return skynet_weft(0, kSkynetLeaves); });
  double cold_ms = static_cast<double>(ns_since(c0)) / 1e6;
  if (cold_sum != kSkynetSum) {
    fail(st, "BM_skynet_weft", "skynet sum " + std::to_string(cold_sum) + " != " + std::to_string(kSkynetSum));
    return;
  }
  std::uint64_t runs = 0;
  std::uint64_t steals0 = rt.stats().steals;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    std::uint64_t sum = rt.block_on([] { return skynet_weft(0, kSkynetLeaves); });
    if (sum != kSkynetSum) {
      fail(st, "BM_skynet_weft", "skynet sum " + std::to_string(sum) + " != " + std::to_string(kSkynetSum));
      return;
    }
    ++runs;
  }
  st.counters["ms_per_run"] = static_cast<double>(ns_since(t0)) / 1e6 / static_cast<double>(runs);
  st.counters["cold_ms"] = cold_ms;
  st.counters["steals_per_run"] = static_cast<double>(rt.stats().steals - steals0) / static_cast<double>(runs);
  st.counters["stacks_mapped"] = static_cast<double>(rt.stats().stacks_mapped);
}

// Boost: children write their result into the parent's frame; join() orders the write before
// the read. launch::dispatch (the child runs at once) as in Boost's own skynet examples.
void skynet_boost(std::uint64_t& out, std::uint64_t num, std::uint64_t size) {
  if (size == 1) {
    out = num;
    return;
  }
  const std::uint64_t child = size / 10;
  std::array<std::uint64_t, 10> results{};
  std::array<boost::fibers::fiber, 10> fs;
  for (std::uint64_t i = 0; i < 10; ++i)
    fs[i] = boost::fibers::fiber(boost::fibers::launch::dispatch, std::allocator_arg, boost_stack(),
                                 [&results, num, child, i] { skynet_boost(results[i], num + i * child, child); });
  for (auto& f : fs) f.join();
  std::uint64_t sum = 0;
  for (std::uint64_t r : results) sum += r;
  out = sum;
}

void BM_skynet_boost_round_robin(benchmark::State& st) {
  std::uint64_t runs = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    std::uint64_t sum = 0;
    skynet_boost(sum, 0, kSkynetLeaves);
    if (sum != kSkynetSum) {
      fail(st, "BM_skynet_boost_round_robin", "skynet sum " + std::to_string(sum) + " != " + std::to_string(kSkynetSum));
      return;
    }
    ++runs;
  }
  st.counters["ms_per_run"] = static_cast<double>(ns_since(t0)) / 1e6 / static_cast<double>(runs);
}

void BM_skynet_boost_work_stealing(benchmark::State& st) {
  boost_ws_pool& pool = boost_ws_pool::get();
  std::uint64_t runs = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    std::uint64_t sum = 0;
    pool.start([&sum] { skynet_boost(sum, 0, kSkynetLeaves); });
    pool.wait();
    if (sum != kSkynetSum) {
      fail(st, "BM_skynet_boost_work_stealing", "skynet sum " + std::to_string(sum) + " != " + std::to_string(kSkynetSum));
      return;
    }
    ++runs;
  }
  st.counters["ms_per_run"] = static_cast<double>(ns_since(t0)) / 1e6 / static_cast<double>(runs);
}

// =============================================================================================
// 4. idle: 1000 fibers asleep for 10 s on a 2-thread scheduler; CPU of the whole process over a
// 2 s window that opens kIdleSettle after the spawns. The benchmark thread only sleeps then.

// The sleep is a 10 s timed park (what this_fiber::sleep_for does) whose ticket is also
// published to a board, so the benchmark can end it once the window has closed, as the Boost
// version does with a condition variable: the runtime is never destroyed with sleepers in it.
struct ticket_board {
  std::mutex m;
  std::vector<weft::wait_ticket> tickets;  // guarded by m
  bool released = false;                   // guarded by m
};

void weft_timed_sleep(ticket_board& board, std::atomic<int>& timed_out) {
  struct publish_arg {
    ticket_board* board;
    weft::wait_ticket ticket;
  } arg{&board, weft::prepare_wait()};
  weft::wake_reason r = weft::park(
      arg.ticket, clock_type::now() + kIdleSleep,
      [](void* p) {
        auto* a = static_cast<publish_arg*>(p);
        ticket_board* b = a->board;
        weft::wait_ticket t = a->ticket;  // copy: once woken, `a` (on the fiber's stack) may go
        std::lock_guard lk(b->m);
        if (b->released) {
          t.wake();
        } else {
          b->tickets.push_back(t);
        }
      },
      &arg);
  if (r == weft::wake_reason::timed_out) timed_out.fetch_add(1);
}

void BM_idle_weft(benchmark::State& st) {
  double cpu = 0, rss_per_fiber = 0;
  for (auto _ : st) {
    weft::runtime rt(weft_options(2));
    std::this_thread::sleep_for(50ms);
    long rss0 = rss_kib();
    ticket_board board;
    std::atomic<int> timed_out{0};
    std::vector<weft::join_handle<void>> hs;
    hs.reserve(kIdleFibers);
    for (int i = 0; i < kIdleFibers; ++i) hs.push_back(rt.spawn([&] { weft_timed_sleep(board, timed_out); }));
    std::this_thread::sleep_for(kIdleSettle);
    long rss1 = rss_kib();
    cpu = cpu_percent_over(kIdleWindow);
    rss_per_fiber = static_cast<double>(rss1 - rss0) / kIdleFibers;
    std::uint64_t live = rt.stats().live_fibers;
    {
      std::lock_guard lk(board.m);
      board.released = true;
      for (const auto& t : board.tickets) t.wake();
    }
    for (auto& h : hs) h.join();
    if (live != static_cast<std::uint64_t>(kIdleFibers) || timed_out.load() != 0) {
      fail(st, "BM_idle_weft",
           "live_fibers " + std::to_string(live) + " (want " + std::to_string(kIdleFibers) + "), " +
               std::to_string(timed_out.load()) + " sleepers timed out before being released");
      return;
    }
  }
  st.counters["cpu_pct"] = cpu;
  st.counters["rss_kib_per_fiber"] = rss_per_fiber;
}

void BM_idle_boost_work_stealing(benchmark::State& st) {
  boost_ws_pool& pool = boost_ws_pool::get();
  double cpu = 0;
  for (auto _ : st) {
    struct shared {
      boost::fibers::mutex m;
      boost::fibers::condition_variable cv;
      bool release = false;
    } sh;
    std::atomic<int> timed_out{0};
    pool.start([&sh, &timed_out] {
      std::vector<boost::fibers::fiber> fs;
      fs.reserve(kIdleFibers);
      for (int i = 0; i < kIdleFibers; ++i)
        fs.emplace_back(std::allocator_arg, boost_stack(), [&sh, &timed_out] {
          // A 10 s sleep that the benchmark can cut short once the window has closed.
          std::unique_lock lk(sh.m);
          if (!sh.cv.wait_for(lk, kIdleSleep, [&] { return sh.release; })) timed_out.fetch_add(1);
        });
      for (auto& f : fs) f.join();
    });
    std::this_thread::sleep_for(kIdleSettle);
    cpu = cpu_percent_over(kIdleWindow);
    {
      std::unique_lock lk(sh.m);
      sh.release = true;
    }
    sh.cv.notify_all();
    pool.wait();
    if (timed_out.load() != 0) {
      fail(st, "BM_idle_boost_work_stealing", std::to_string(timed_out.load()) + " sleepers were not released before their 10 s");
      return;
    }
  }
  st.counters["cpu_pct"] = cpu;
}

}  // namespace

// Yield: Google Benchmark picks the iteration count (each iteration is 200'000 switches).
BENCHMARK(BM_yield_bare_context)->Name("yield/bare_context")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_yield_bare_context_in_call<false>)->Name("yield/bare_context_in_call/resume")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_yield_bare_context_in_call<true>)->Name("yield/bare_context_in_call/resume_with")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_yield_boost_fiber)->Name("yield/boost_fiber")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_yield_weft)->Name("yield/weft")->UseRealTime()->Unit(benchmark::kMillisecond);

// spawn_join: batches of 100 (within the per-worker stack cache and run queue) and 1000.
BENCHMARK(BM_spawn_join_boost_fiber)->Name("spawn_join/boost_fiber")->ArgName("batch")->Arg(100)->Arg(1000)
    ->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_spawn_join_weft)->Name("spawn_join/weft")->ArgNames({"workers", "batch"})
    ->ArgsProduct({{1, 2}, {100, 1000}})->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

// skynet: one timed run per repetition (Boost round-robin alone takes seconds); take medians.
BENCHMARK(BM_skynet_boost_round_robin)->Name("skynet/boost_round_robin")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_skynet_boost_work_stealing)->Name("skynet/boost_work_stealing")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_skynet_weft)->Name("skynet/weft")->ArgName("workers")->Arg(1)->Arg(2)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK(BM_idle_boost_work_stealing)->Name("idle/boost_work_stealing")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_idle_weft)->Name("idle/weft")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Boost.Fiber's fixedsize_stack mallocs every stack. With glibc's default thresholds a freed
  // 64 KiB stack at the top of the heap is trimmed back to the kernel, so every Boost fiber paid
  // for brk calls and fresh page faults (8 us per spawn+join, 9 s per skynet). Keep freed memory
  // instead: malloc then recycles stacks as weft's pool does. weft's stacks are mmap'd by weft
  // and are not affected.
  ::mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  ::mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  benchmark::AddCustomContext("malloc_tuning", "M_MMAP_THRESHOLD=4MiB M_TRIM_THRESHOLD=1GiB (Boost stacks)");
  benchmark::AddCustomContext("weft_stack_size", std::to_string(kStackSize));
  benchmark::AddCustomContext("boost_version", BOOST_LIB_VERSION);
#ifdef NDEBUG
  benchmark::AddCustomContext("weft_bench_build", "NDEBUG");
#else
  benchmark::AddCustomContext("weft_bench_build", "assertions on (not a release build)");
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  boost_ws_pool::shutdown_if_started();
  return bench::exit_status();
}
