// sync_bench: weft's synchronization primitives beside Boost.Fiber 1.74 (and std::mutex), in one
// run, for the figures of issue 3 (docs/benchmarks.md, "Synchronization"):
//   yield/*             two fibers yielding on one thread (the reference for channels) -> ns_per_yield
//   park_wake/*         two fibers passing a turn through raw wait tickets (the floor)  -> ns_per_round_trip
//   mutex_contention/*  1000 fibers x 1000 lock/++/unlock on one mutex, a yield inside the critical
//                       section every 100 locks                                        -> ns_per_lock, ms_per_run
//   channel/*           ping-pong over two channels, capacity 0 and 1                  -> ns_per_round_trip
//   cv/*                ping-pong through a mutex, a condition variable and a turn flag -> ns_per_round_trip
//   uncontended/*       lock + unlock by one fiber or thread, nobody else              -> ns_per_pair
// Ping-pongs run in three placements: `same` (weft 1 worker / Boost round_robin on 1 thread),
// `free` (weft 2 workers, fibers unpinned / Boost work_stealing on 2 threads) and `apart` (weft
// 2 workers, one fiber pinned to each / Boost: two threads with one fiber each). Every 16th round
// trip the messages carry the sender's worker (thread): `apart_pct` is the share that crossed.
// Every stack is 64 KiB. A weft runtime is created once per benchmark run, not per iteration;
// Boost's work_stealing threads once per process (boost_ws_pool, as in runtime_bench.cpp).
// bench/run_sync_bench.sh reproduces the published run.
#include <benchmark/benchmark.h>

#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>
#include <boost/version.hpp>

#include <weft/weft.hpp>

#include "bench_common.hpp"
#include "boost_ws_pool.hpp"

#include <malloc.h>

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
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using bench::clock_type;
using bench::ns_since;
using bench::report_per_op;

constexpr std::size_t kStackSize = 64 * 1024;        // every fiber stack, weft and Boost alike
constexpr std::uint64_t kYieldsPerFiber = 100'000;   // per yield iteration: 2 x this many yields
constexpr int kContenders = 1000;                    // mutex_contention: fibers
constexpr int kLocksPerFiber = 1000;                 //   lock/unlock per fiber
constexpr int kYieldEvery = 100;                     //   a yield inside every 100th critical section
constexpr std::uint64_t kContentionLocks = std::uint64_t{kContenders} * kLocksPerFiber;
// Round trips per iteration: 10^6 where both sides share a thread; 2x10^4 on two threads, where a
// round trip costs 1-1000 us (futex wake-ups, spinning; see docs/benchmarks.md), so that the
// whole binary stays within a few minutes.
constexpr std::uint64_t kRoundTripsSame = 1'000'000;
constexpr std::uint64_t kRoundTripsTwo = 20'000;
// Every 16th round trip the messages carry the sender's worker (thread) for apart_pct; asking
// where one runs costs a few ns, too much for every message.
constexpr std::uint64_t kSampleEvery = 16;
constexpr std::uint64_t kUncontendedPairs = 1'000'000;  // per uncontended iteration

enum class placement { same, free, apart };

std::uint64_t round_trips_for(placement p) { return p == placement::same ? kRoundTripsSame : kRoundTripsTwo; }

void fail(benchmark::State& st, const char* where, const std::string& what) {
  bench::fail(st, "sync_bench", where, what);
}


weft::runtime_options weft_options(unsigned workers) {
  return weft::runtime_options{.workers = workers, .stack_size = kStackSize};
}

boost::fibers::fixedsize_stack boost_stack() { return boost::fibers::fixedsize_stack(kStackSize); }

// Where the caller runs now: weft's worker index, or a small per-thread number for Boost. Not
// inlined and not analysed across calls: a fiber may resume on another thread, so the thread
// pointer must be read afresh each time.
__attribute__((noipa)) int weft_place() { return weft::this_fiber::worker_index(); }
std::atomic<int> g_next_thread_tag{0};
__attribute__((noipa)) int boost_place() {
  static thread_local int tag = g_next_thread_tag.fetch_add(1, std::memory_order_relaxed);
  return tag;
}

// Sampled messages and how many of them went from one worker (thread) to another.
struct crossings {
  std::uint64_t sampled = 0, crossed = 0;
  crossings& operator+=(const crossings& o) {
    sampled += o.sampled;
    crossed += o.crossed;
    return *this;
  }
};
// The tag a message carries in round trip `i`: the sender's place, or -1 (not sampled).
int tag_for(std::uint64_t i, int (*place)()) { return i % kSampleEvery == 0 ? place() : -1; }
void note(crossings& c, int tag, int (*place)()) {
  if (tag < 0) return;
  ++c.sampled;
  c.crossed += tag != place();
}

// Boost.Fiber work_stealing on two threads: the pool shared with runtime_bench.cpp.
using weft_bench::boost_ws_pool;


// ---------------------------------------------------------------------------------------------
// Running a pair of fibers (ping, pong) in a placement. Each returns its crossings.

// weft: `same` on a 1-worker runtime, `free` and `apart` on a 2-worker one. For `apart` the root
// fiber spins (without yielding, so its worker is busy) until the ping fiber has been stolen by
// the other worker; ping then pins itself there, and pong is spawned pinned to the root's worker.
// Returns false if the other worker never took ping within 5 s (the pair then ran on one worker).
template <class Ping, class Pong>
bool weft_run_pair(weft::runtime& rt, placement p, Ping ping, Pong pong, crossings* cross) {
  return rt.block_on([&] {
    if (p != placement::apart) {
      auto a = weft::spawn(pong);
      auto b = weft::spawn(ping);
      *cross += a.join();
      *cross += b.join();
      return true;
    }
    const int home = weft::this_fiber::worker_index();
    std::atomic<int> ping_worker{-1};
    std::atomic<bool> go{false};
    auto b = weft::spawn([&] {
      weft::this_fiber::pin();
      // Ordering: release/acquire with the root's spin below (it reads where ping runs).
      ping_worker.store(weft::this_fiber::worker_index(), std::memory_order_release);
      // Ordering: acquire pairs with the root's release once pong exists, so both start together.
      while (!go.load(std::memory_order_acquire)) {
      }
      return ping();
    });
    auto deadline = clock_type::now() + 5s;
    int w = -1;
    while ((w = ping_worker.load(std::memory_order_acquire)) < 0 && clock_type::now() < deadline) {
    }
    auto a = weft::spawn(weft::spawn_options{.pinned = true}, pong);
    go.store(true, std::memory_order_release);
    *cross += a.join();
    *cross += b.join();
    return w >= 0 && w != home;  // else the pair ran, but not apart
  });
}

// Boost: `same` on the benchmark thread (round_robin), `free` on the work_stealing pool,
// `apart` on two fresh threads, each running its side on its main fiber (round_robin).
template <class Ping, class Pong>
void boost_run_pair(placement p, Ping ping, Pong pong, crossings* cross) {
  switch (p) {
    case placement::same: {
      crossings ca, cb;
      boost::fibers::fiber a(std::allocator_arg, boost_stack(), [&] { ca = pong(); });
      boost::fibers::fiber b(std::allocator_arg, boost_stack(), [&] { cb = ping(); });
      a.join();
      b.join();
      *cross += ca;
      *cross += cb;
      return;
    }
    case placement::free:
      boost_ws_pool::get().run([&] {
        crossings ca, cb;
        boost::fibers::fiber a(std::allocator_arg, boost_stack(), [&] { ca = pong(); });
        boost::fibers::fiber b(std::allocator_arg, boost_stack(), [&] { cb = ping(); });
        a.join();
        b.join();
        *cross += ca;
        *cross += cb;
      });
      return;
    case placement::apart: {
      crossings ca, cb;
      std::thread a([&] { ca = pong(); });
      std::thread b([&] { cb = ping(); });
      a.join();
      b.join();
      *cross += ca;
      *cross += cb;
      return;
    }
  }
}

const char* placement_label(placement p, bool weft_side) {
  switch (p) {
    case placement::same: return weft_side ? "1 worker" : "round_robin, 1 thread";
    case placement::free: return weft_side ? "2 workers, unpinned" : "work_stealing, 2 threads";
    case placement::apart: return weft_side ? "2 workers, pinned apart" : "2 threads, round_robin, 1 fiber each";
  }
  return "?";
}

void report_pingpong(benchmark::State& st, std::int64_t elapsed_ns, std::uint64_t round_trips, const crossings& c) {
  report_per_op(st, "ns_per_round_trip", elapsed_ns, round_trips);
  st.counters["apart_pct"] = c.sampled == 0 ? 0.0 : 100.0 * static_cast<double>(c.crossed) / static_cast<double>(c.sampled);
}

// =============================================================================================
// 1. yield: two fibers on one thread, each yields kYieldsPerFiber times; one yield is one switch.

void BM_yield_weft(benchmark::State& st) {
  weft::runtime rt(weft_options(1));
  auto body = [] {
    for (std::uint64_t i = 0; i < kYieldsPerFiber; ++i) weft::this_fiber::yield();
  };
  std::uint64_t yields = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    rt.block_on([&] {
      auto a = weft::spawn(body);
      auto b = weft::spawn(body);
      a.join();
      b.join();
    });
    yields += 2 * kYieldsPerFiber;
  }
  report_per_op(st, "ns_per_yield", ns_since(t0), yields);
}

void BM_yield_boost(benchmark::State& st) {
  auto body = [] {
    for (std::uint64_t i = 0; i < kYieldsPerFiber; ++i) boost::this_fiber::yield();
  };
  std::uint64_t yields = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    boost::fibers::fiber a(std::allocator_arg, boost_stack(), body);
    boost::fibers::fiber b(std::allocator_arg, boost_stack(), body);
    a.join();
    b.join();
    yields += 2 * kYieldsPerFiber;
  }
  report_per_op(st, "ns_per_yield", ns_since(t0), yields);
}

// The park/wake reference: what every primitive's ping-pong costs before its own logic. Two
// fibers on one worker pass a turn through raw wait tickets (weft/park.hpp), as the primitives
// do: under a spinlock, claim the other side's ticket and queue our own, park (the publish step
// releases the lock), and resume the claimed side once the lock is released. One worker only:
// each side parks before the other runs, so no turn flag is needed. One round trip is two
// parks and two wake-ups, the floor under a channel or condition-variable round trip.
struct park_wake_box {
  weft::detail::spinlock lock;
  weft::wait_ticket parked[2];  // guarded by lock
};

void park_wake_side(park_wake_box& b, int me, std::uint64_t n) {
  auto unlock = [](void* l) { static_cast<weft::detail::spinlock*>(l)->unlock(); };
  for (std::uint64_t i = 0; i < n; ++i) {
    b.lock.lock();
    weft::wait_ticket other = std::exchange(b.parked[1 - me], weft::wait_ticket{});
    const bool claimed = other && other.claim();
    weft::wait_ticket t = weft::prepare_wait();
    b.parked[me] = t;
    if (claimed) other.resume();  // resumes only after our park: one worker runs one fiber
    weft::park(t, std::nullopt, unlock, &b.lock);
  }
  // The side that finishes first wakes the other from its last park.
  b.lock.lock();
  weft::wait_ticket other = std::exchange(b.parked[1 - me], weft::wait_ticket{});
  b.lock.unlock();
  other.wake();
}

void BM_park_wake_weft(benchmark::State& st) {
  const std::uint64_t n = round_trips_for(placement::same);
  weft::runtime rt(weft_options(1));
  std::uint64_t trips = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    park_wake_box b;
    rt.block_on([&] {
      auto a = weft::spawn([&] { park_wake_side(b, 0, n); });
      auto c = weft::spawn([&] { park_wake_side(b, 1, n); });
      a.join();
      c.join();
    });
    trips += n;
  }
  report_per_op(st, "ns_per_round_trip", ns_since(t0), trips);
  st.SetLabel("raw wait tickets, 1 worker");
}

// =============================================================================================
// 2. mutex contention: kContenders fibers each lock, increment a shared counter and unlock
// kLocksPerFiber times; every kYieldEvery-th time the holder yields before unlocking, so the
// others find the mutex held and wait. The counter must end at kContentionLocks.

template <class Mutex, class Yield>
void contend(Mutex& m, std::uint64_t& counter, Yield yield) {
  for (int i = 1; i <= kLocksPerFiber; ++i) {
    m.lock();
    ++counter;
    if (i % kYieldEvery == 0) yield();
    m.unlock();
  }
}

void report_contention(benchmark::State& st, std::int64_t elapsed_ns, std::uint64_t runs) {
  report_per_op(st, "ns_per_lock", elapsed_ns, runs * kContentionLocks);
  st.counters["ms_per_run"] = static_cast<double>(elapsed_ns) / 1e6 / static_cast<double>(runs);
}

// Arg: workers.
void BM_mutex_contention_weft(benchmark::State& st) {
  weft::runtime rt(weft_options(static_cast<unsigned>(st.range(0))));
  std::uint64_t runs = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    weft::mutex m;
    std::uint64_t counter = 0;
    rt.block_on([&] {
      std::vector<weft::join_handle<void>> hs;
      hs.reserve(kContenders);
      for (int f = 0; f < kContenders; ++f)
        hs.push_back(weft::spawn([&] { contend(m, counter, [] { weft::this_fiber::yield(); }); }));
      for (auto& h : hs) h.join();
    });
    if (counter != kContentionLocks) {
      fail(st, "BM_mutex_contention_weft", "counter " + std::to_string(counter) + " != " + std::to_string(kContentionLocks));
      return;
    }
    ++runs;
  }
  report_contention(st, ns_since(t0), runs);
  st.SetLabel(st.range(0) == 1 ? "weft::mutex, 1 worker" : "weft::mutex, 2 workers");
}

void boost_contention_job(boost::fibers::mutex& m, std::uint64_t& counter) {
  std::vector<boost::fibers::fiber> fs;
  fs.reserve(kContenders);
  for (int f = 0; f < kContenders; ++f)
    fs.emplace_back(std::allocator_arg, boost_stack(), [&] { contend(m, counter, [] { boost::this_fiber::yield(); }); });
  for (auto& f : fs) f.join();
}

// round_robin on the benchmark thread, or work_stealing on 2 threads.
void BM_mutex_contention_boost(benchmark::State& st, bool stealing) {
  std::uint64_t runs = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    boost::fibers::mutex m;
    std::uint64_t counter = 0;
    if (stealing) {
      boost_ws_pool::get().run([&] { boost_contention_job(m, counter); });
    } else {
      boost_contention_job(m, counter);
    }
    if (counter != kContentionLocks) {
      fail(st, "BM_mutex_contention_boost", "counter " + std::to_string(counter) + " != " + std::to_string(kContentionLocks));
      return;
    }
    ++runs;
  }
  report_contention(st, ns_since(t0), runs);
  st.SetLabel(stealing ? "boost::fibers::mutex, work_stealing, 2 threads" : "boost::fibers::mutex, round_robin, 1 thread");
}

// =============================================================================================
// 3. channel ping-pong: ping sends on `there` and receives on `back`, pong the reverse; one
// round trip is ping -> pong -> ping. Capacity 0 (rendezvous) or 1. A message is the sender's
// worker (thread) in sampled round trips, which the receiver compares with its own, else -1.

void BM_channel_weft(benchmark::State& st, std::size_t cap, placement p) {
  const std::uint64_t n = round_trips_for(p);
  weft::runtime rt(weft_options(p == placement::same ? 1 : 2));
  std::uint64_t trips = 0;
  crossings cross;
  bool ok = true, placed = true;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    weft::channel<int> there(cap), back(cap);
    auto ping = [&] {
      crossings c;
      int v = 0;
      for (std::uint64_t i = 0; i < n; ++i) {
        if (there.send(tag_for(i, weft_place)) != weft::channel_status::ok || back.recv(v) != weft::channel_status::ok) {
          ok = false;
          break;
        }
        note(c, v, weft_place);
      }
      there.close();
      return c;
    };
    auto pong = [&] {
      crossings c;
      int v = 0;
      for (std::uint64_t i = 0; i < n; ++i) {
        if (there.recv(v) != weft::channel_status::ok) break;
        note(c, v, weft_place);
        if (back.send(tag_for(i, weft_place)) != weft::channel_status::ok) break;
      }
      return c;
    };
    placed = weft_run_pair(rt, p, ping, pong, &cross) && placed;
    trips += n;
  }
  std::int64_t elapsed = ns_since(t0);
  if (!ok) return fail(st, "BM_channel_weft", "a send or receive did not return ok");
  if (!placed) return fail(st, "BM_channel_weft", "the second worker never took the ping fiber (apart)");
  report_pingpong(st, elapsed, trips, cross);
  st.SetLabel(std::string("weft::channel(") + std::to_string(cap) + "), " + placement_label(p, true));
}

// Boost's buffered_channel wants a power of two >= 2 and keeps one slot of its ring empty, so
// buffered_channel(2) holds one value: the same capacity as weft::channel(1).
template <class Channel>
std::uint64_t boost_channel_trips(benchmark::State& st, placement p, std::uint64_t n, bool& ok, crossings& cross) {
  auto make = [] {
    if constexpr (std::is_same_v<Channel, boost::fibers::unbuffered_channel<int>>) {
      return std::make_unique<Channel>();
    } else {
      return std::make_unique<Channel>(2);
    }
  };
  std::uint64_t trips = 0;
  for (auto _ : st) {
    auto there = make(), back = make();
    auto ping = [&] {
      crossings c;
      int v = 0;
      for (std::uint64_t i = 0; i < n; ++i) {
        if (there->push(tag_for(i, boost_place)) != boost::fibers::channel_op_status::success ||
            back->pop(v) != boost::fibers::channel_op_status::success) {
          ok = false;
          break;
        }
        note(c, v, boost_place);
      }
      there->close();
      return c;
    };
    auto pong = [&] {
      crossings c;
      int v = 0;
      for (std::uint64_t i = 0; i < n; ++i) {
        if (there->pop(v) != boost::fibers::channel_op_status::success) break;
        note(c, v, boost_place);
        if (back->push(tag_for(i, boost_place)) != boost::fibers::channel_op_status::success) break;
      }
      return c;
    };
    boost_run_pair(p, ping, pong, &cross);
    trips += n;
  }
  return trips;
}

// capacity 0: unbuffered_channel; 1: buffered_channel(2).
void BM_channel_boost(benchmark::State& st, std::size_t cap, placement p) {
  const bool buffered = cap != 0;
  const std::uint64_t n = round_trips_for(p);
  bool ok = true;
  crossings cross;
  auto t0 = clock_type::now();
  std::uint64_t trips = buffered ? boost_channel_trips<boost::fibers::buffered_channel<int>>(st, p, n, ok, cross)
                                 : boost_channel_trips<boost::fibers::unbuffered_channel<int>>(st, p, n, ok, cross);
  std::int64_t elapsed = ns_since(t0);
  if (!ok) return fail(st, "BM_channel_boost", "a push or pop did not return success");
  report_pingpong(st, elapsed, trips, cross);
  st.SetLabel(std::string(buffered ? "buffered_channel(2), holds 1 value, " : "unbuffered_channel, ") +
              placement_label(p, false));
}

// =============================================================================================
// 4. condition-variable ping-pong: one mutex, one condition variable, a turn flag; each side
// waits for its turn, records itself as the last writer, passes the turn, unlocks and notifies.

template <class Mutex, class CondVar>
struct cv_table {
  Mutex m;
  CondVar cv;
  int turn = 0;   // guarded by m: whose pass it is (0 ping, 1 pong)
  int last = -1;  // guarded by m: where the previous pass ran, if sampled (tag_for)
};

template <class Table>
crossings cv_side(Table& t, int me, std::uint64_t n, int (*place)()) {
  crossings c;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::unique_lock lk(t.m);
    t.cv.wait(lk, [&] { return t.turn == me; });
    int here = tag_for(i, place);
    if (here >= 0 && t.last >= 0) {
      ++c.sampled;
      c.crossed += t.last != here;
    }
    t.last = here;
    t.turn = 1 - me;
    lk.unlock();
    t.cv.notify_one();
  }
  return c;
}

void BM_cv_weft(benchmark::State& st, placement p) {
  const std::uint64_t n = round_trips_for(p);
  weft::runtime rt(weft_options(p == placement::same ? 1 : 2));
  std::uint64_t trips = 0;
  crossings cross;
  bool placed = true;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    cv_table<weft::mutex, weft::condition_variable> t;
    placed = weft_run_pair(rt, p, [&] { return cv_side(t, 0, n, weft_place); }, [&] { return cv_side(t, 1, n, weft_place); },
                           &cross) &&
             placed;
    trips += n;
  }
  std::int64_t elapsed = ns_since(t0);
  if (!placed) return fail(st, "BM_cv_weft", "the second worker never took the ping fiber (apart)");
  report_pingpong(st, elapsed, trips, cross);
  st.SetLabel(std::string("weft::condition_variable + weft::mutex, ") + placement_label(p, true));
}

void BM_cv_boost(benchmark::State& st, placement p) {
  const std::uint64_t n = round_trips_for(p);
  std::uint64_t trips = 0;
  crossings cross;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    cv_table<boost::fibers::mutex, boost::fibers::condition_variable> t;
    boost_run_pair(p, [&] { return cv_side(t, 0, n, boost_place); }, [&] { return cv_side(t, 1, n, boost_place); }, &cross);
    trips += n;
  }
  report_pingpong(st, ns_since(t0), trips, cross);
  st.SetLabel(std::string("boost::fibers::condition_variable + mutex, ") + placement_label(p, false));
}

// =============================================================================================
// 5. uncontended lock + unlock by one fiber (weft, Boost) or thread (std), nobody else around.

template <class Mutex>
std::uint64_t lock_unlock_loop(Mutex& m) {
  std::uint64_t counter = 0;
  for (std::uint64_t i = 0; i < kUncontendedPairs; ++i) {
    m.lock();
    ++counter;
    benchmark::DoNotOptimize(counter);
    m.unlock();
  }
  return counter;
}

void BM_uncontended_weft(benchmark::State& st) {
  weft::runtime rt(weft_options(1));
  weft::mutex m;
  std::uint64_t pairs = 0, counted = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    counted += rt.block_on([&] { return lock_unlock_loop(m); });
    pairs += kUncontendedPairs;
  }
  report_per_op(st, "ns_per_pair", ns_since(t0), pairs);
  if (counted != pairs) fail(st, "BM_uncontended_weft", "lost increments");
  st.SetLabel("weft::mutex on a fiber, 1 worker");
}

void BM_uncontended_std(benchmark::State& st) {
  std::mutex m;
  std::uint64_t pairs = 0, counted = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    counted += lock_unlock_loop(m);
    pairs += kUncontendedPairs;
  }
  report_per_op(st, "ns_per_pair", ns_since(t0), pairs);
  if (counted != pairs) fail(st, "BM_uncontended_std", "lost increments");
  st.SetLabel("std::mutex on the benchmark thread");
}

void BM_uncontended_boost(benchmark::State& st) {
  boost::fibers::mutex m;
  std::uint64_t pairs = 0, counted = 0;
  auto t0 = clock_type::now();
  for (auto _ : st) {
    counted += lock_unlock_loop(m);
    pairs += kUncontendedPairs;
  }
  report_per_op(st, "ns_per_pair", ns_since(t0), pairs);
  if (counted != pairs) fail(st, "BM_uncontended_boost", "lost increments");
  st.SetLabel("boost::fibers::mutex on the benchmark thread's main fiber");
}

}  // namespace

// Google Benchmark picks the iteration count where one iteration is cheap and has no setup
// (yield, uncontended); the others run a fixed count of large iterations.
BENCHMARK(BM_yield_boost)->Name("yield/boost")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_yield_weft)->Name("yield/weft")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_park_wake_weft)->Name("park_wake/weft/same")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_CAPTURE(BM_mutex_contention_boost, rr, false)->Name("mutex_contention/boost/round_robin")->Iterations(1)
    ->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_mutex_contention_boost, ws, true)->Name("mutex_contention/boost/work_stealing")->Iterations(1)
    ->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mutex_contention_weft)->Name("mutex_contention/weft")->ArgName("workers")->Arg(1)->Arg(2)->Iterations(1)
    ->UseRealTime()->Unit(benchmark::kMillisecond);

// Names: channel/<impl>/cap:<0|1>/<placement>, cv/<impl>/<placement>.
#define WEFT_CHANNEL_BENCH(impl, cap, place)                                                      \
  BENCHMARK_CAPTURE(BM_channel_##impl, place##cap, cap, placement::place)                          \
      ->Name("channel/" #impl "/cap:" #cap "/" #place)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond)
WEFT_CHANNEL_BENCH(boost, 0, same);
WEFT_CHANNEL_BENCH(weft, 0, same);
WEFT_CHANNEL_BENCH(boost, 1, same);
WEFT_CHANNEL_BENCH(weft, 1, same);
WEFT_CHANNEL_BENCH(boost, 0, free);
WEFT_CHANNEL_BENCH(weft, 0, free);
WEFT_CHANNEL_BENCH(boost, 1, free);
WEFT_CHANNEL_BENCH(weft, 1, free);
WEFT_CHANNEL_BENCH(boost, 0, apart);
WEFT_CHANNEL_BENCH(weft, 0, apart);
WEFT_CHANNEL_BENCH(boost, 1, apart);
WEFT_CHANNEL_BENCH(weft, 1, apart);
#undef WEFT_CHANNEL_BENCH

#define WEFT_CV_BENCH(impl, place)                                                                \
  BENCHMARK_CAPTURE(BM_cv_##impl, place, placement::place)->Name("cv/" #impl "/" #place)->Iterations(1) \
      ->UseRealTime()->Unit(benchmark::kMillisecond)
WEFT_CV_BENCH(boost, same);
WEFT_CV_BENCH(weft, same);
WEFT_CV_BENCH(boost, free);
WEFT_CV_BENCH(weft, free);
WEFT_CV_BENCH(boost, apart);
WEFT_CV_BENCH(weft, apart);
#undef WEFT_CV_BENCH

BENCHMARK(BM_uncontended_std)->Name("uncontended/std_mutex")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_uncontended_boost)->Name("uncontended/boost")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_uncontended_weft)->Name("uncontended/weft")->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // As in runtime_bench: keep freed 64 KiB Boost stacks in the heap instead of trimming them
  // back to the kernel, so Boost gets recycled stacks as weft does (weft maps its own).
  ::mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  ::mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  benchmark::AddCustomContext("malloc_tuning", "M_MMAP_THRESHOLD=4MiB M_TRIM_THRESHOLD=1GiB (Boost stacks)");
  benchmark::AddCustomContext("weft_stack_size", std::to_string(kStackSize));
  benchmark::AddCustomContext("boost_version", BOOST_LIB_VERSION);
  benchmark::AddCustomContext("round_trips_same", std::to_string(kRoundTripsSame));
  benchmark::AddCustomContext("round_trips_two_threads", std::to_string(kRoundTripsTwo));
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
