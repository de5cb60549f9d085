// Timers (T18) and sleeping: no sleep ends early, nearly all end promptly, all fire; sleeping
// fibers do not keep workers busy.
#include <algorithm>
#include <atomic>
#include <random>
#include <vector>

#include "weft_test.hpp"

using namespace std::chrono_literals;
using weft_test::RuntimeTest;

namespace {

class TimerTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(TimerTest);

TEST_P(TimerTest, ManySleepsNeverEarlyAndMostlyPrompt) {
  const int n = static_cast<int>(weft_test::sized(10000, 3000, 2000));
  std::vector<long long> lateness(static_cast<std::size_t>(n));
  std::atomic<int> early{0};
  rt().block_on([&] {
    std::mt19937 rng(7);
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < n; ++i) {
      auto d = std::chrono::microseconds(rng() % 50000);
      hs.push_back(weft::spawn([&, i, d] {
        auto t0 = std::chrono::steady_clock::now();
        weft::this_fiber::sleep_for(d);
        auto slept = std::chrono::steady_clock::now() - t0;
        if (slept < d) early.fetch_add(1);
        lateness[static_cast<std::size_t>(i)] = std::chrono::duration_cast<std::chrono::microseconds>(slept - d).count();
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(early.load(), 0);
  std::sort(lateness.begin(), lateness.end());
  long long p99 = lateness[static_cast<std::size_t>(n * 99 / 100)];
  // A timer that only fired when something else woke its worker would be late by up to the
  // longest sleep or hang the join. 100 ms: the VM this runs on sometimes stalls for tens of
  // milliseconds, and a stall delays every sleeper due in it (CI, 2026-11-28: p99 36.5 ms
  // against the former 15 ms, in a run of 0.19 s). Latency is measured by the benchmarks.
  if (weft_test::timing_budgets_apply()) {
    EXPECT_LT(p99, 100000) << "p99 lateness " << p99 << " us";
  }
  RecordProperty("p99_lateness_us", std::to_string(p99));
}

TEST_P(TimerTest, SleepUntilAcceptsOtherClocks) {
  rt().block_on([] {
    auto t0 = std::chrono::steady_clock::now();
    weft::this_fiber::sleep_until(std::chrono::system_clock::now() + 5ms);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 4ms);  // system_clock may step
    t0 = std::chrono::steady_clock::now();
    weft::this_fiber::sleep_for(0ms);
    weft::this_fiber::sleep_for(-5ms);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  });
}

TEST_P(TimerTest, ParkDeadlineReportsTimeout) {
  rt().block_on([] {
    weft::wait_ticket t = weft::prepare_wait();
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(weft::park(t, t0 + 3ms), weft::wake_reason::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 3ms);
    EXPECT_FALSE(t.wake());  // the wait is over: a late wake is a no-op
  });
}

TEST_P(TimerTest, CancelledTimersAreSweptNotLeaked) {
  // Lazy deletion: waits woken long before their deadline leave dead timers behind; the heap
  // sweeps them when it doubles, so it stays proportional to the live timers, not to the
  // number of waits ever made.
  const int waits = 20000;
  rt().block_on([] {
    for (int i = 0; i < waits; ++i) {
      weft::wait_ticket t = weft::prepare_wait();
      weft::park(t, std::chrono::steady_clock::now() + 1h, [](void* p) { static_cast<weft::wait_ticket*>(p)->wake(); }, &t);
    }
  });
  EXPECT_LT(rt().stats().timers_pending, 200u * GetParam());
}

TEST(TimerPlainThreadTest, ParkOnAPlainThreadTimesOutAndWakes) {
  weft::wait_ticket t = weft::prepare_wait();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(weft::park(t, t0 + 2ms), weft::wake_reason::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 2ms);

  weft::runtime rt(weft::runtime_options{.workers = 1});
  weft::wait_ticket t2 = weft::prepare_wait();
  std::atomic<bool> published{false};
  auto waker = rt.spawn([&] {
    while (!published.load()) weft::this_fiber::sleep_for(100us);
    return t2.wake(weft::wake_reason::canceled);
  });
  EXPECT_EQ(weft::park(t2, std::nullopt, [](void* p) { static_cast<std::atomic<bool>*>(p)->store(true); }, &published),
            weft::wake_reason::canceled);
  EXPECT_TRUE(waker.join());
}

}  // namespace

namespace {

TEST(TimerBusyWorkerTest, TimersFireWhileTheirWorkerRunsALongFiber) {
  // The sleeper's timer sits on the heap of the worker that then runs a 300 ms CPU loop
  // without yielding; the other, parked, worker must wake for it.
  weft::runtime rt(weft::runtime_options{.workers = 2});
  auto slept = rt.block_on([] {
    auto sleeper = weft::spawn([] {
      auto t0 = std::chrono::steady_clock::now();
      weft::this_fiber::sleep_for(10ms);
      return std::chrono::steady_clock::now() - t0;
    });
    weft::this_fiber::yield();  // let it park (on this worker, usually)
    auto until = std::chrono::steady_clock::now() + 300ms;
    while (std::chrono::steady_clock::now() < until) {}
    return sleeper.join();
  });
  EXPECT_GE(slept, 10ms);
  if (weft_test::timing_budgets_apply()) {
    EXPECT_LT(slept, 150ms);
  }
  weft_test::expect_no_leaks(rt);
}

}  // namespace
