// Scheduler behaviour (testing.md T1, T2, T6-T11): switching, spawning, stealing, waking from
// plain threads, idle latency, fairness, starvation and migration, over several worker counts.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "weft_test.hpp"
#include <weft/detail/spinlock.hpp>

using namespace std::chrono_literals;
using weft_test::RuntimeTest;
using weft_test::sized;

namespace {

class SchedulerTest : public RuntimeTest {};
INSTANTIATE_TEST_SUITE_P(Workers, SchedulerTest, ::testing::Values(1u, 2u, 3u, 4u), weft_test::workers_name);

// A park/wake rendezvous built on the runtime's park API only (sync/ builds on the same).
struct handoff {
  std::atomic<bool> flag{false};
  weft::detail::spinlock mu;  // unlocked by park()'s publish step, on another fiber
  weft::wait_ticket waiter;
  void wait() {
    for (;;) {
      if (flag.exchange(false, std::memory_order_acquire)) return;
      weft::wait_ticket t = weft::prepare_wait();
      mu.lock();
      if (flag.exchange(false, std::memory_order_acquire)) {
        mu.unlock();
        return;
      }
      waiter = t;
      weft::park(t, std::nullopt, [](void* m) { static_cast<weft::detail::spinlock*>(m)->unlock(); }, &mu);
    }
  }
  void signal() {
    std::lock_guard lk(mu);
    flag.store(true, std::memory_order_release);
    weft::wait_ticket t = std::exchange(waiter, weft::wait_ticket());
    t.wake();
  }
};

TEST_P(SchedulerTest, YieldPingPongCountsExactly) {
  // T1: two fibers alternate through yield; each sees every round.
  const long rounds = sized(1000000, 100000, 100000);
  std::atomic<long> a{0}, b{0};
  rt().block_on([&] {
    auto f1 = weft::spawn([&] {
      for (long i = 0; i < rounds; ++i) {
        a.fetch_add(1, std::memory_order_relaxed);
        weft::this_fiber::yield();
      }
    });
    auto f2 = weft::spawn([&] {
      for (long i = 0; i < rounds; ++i) {
        b.fetch_add(1, std::memory_order_relaxed);
        weft::this_fiber::yield();
      }
    });
    f1.join();
    f2.join();
  });
  EXPECT_EQ(a.load(), rounds);
  EXPECT_EQ(b.load(), rounds);
}

TEST_P(SchedulerTest, HandoffsBetweenWorkersLoseNoWakeUp) {
  // Ping-pong through park/wake: each side waits for the other, so a lost wake-up hangs (and
  // the watchdog fails the test).
  const long rounds = sized(200000, 30000, 20000);
  handoff ping, pong;
  rt().block_on([&] {
    auto p = weft::spawn([&] {
      for (long i = 0; i < rounds; ++i) {
        ping.signal();
        pong.wait();
      }
    });
    auto q = weft::spawn([&] {
      for (long i = 0; i < rounds; ++i) {
        ping.wait();
        pong.signal();
      }
    });
    p.join();
    q.join();
  });
  SUCCEED();
}

TEST_P(SchedulerTest, SpawnJoinMany) {
  // T2: many fibers each increment a counter; the count is exact and everything is released.
  const long n = sized(100000, 20000, 4000);
  std::atomic<long> count{0};
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    hs.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) hs.push_back(weft::spawn([&] { count.fetch_add(1, std::memory_order_relaxed); }));
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(count.load(), n);
}

TEST_P(SchedulerTest, MillionSpawnsAcrossWorkers) {
  // Stress: spawn in waves from several fibers so queues overflow and workers steal.
  const long total = sized(1000000, 100000, 40000);
  const long spawners = 8;
  std::atomic<long> count{0};
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> outer;
    for (long s = 0; s < spawners; ++s) {
      outer.push_back(weft::spawn([&] {
        std::vector<weft::join_handle<void>> hs;
        for (long i = 0; i < total / spawners; ++i) {
          hs.push_back(weft::spawn([&] { count.fetch_add(1, std::memory_order_relaxed); }));
          if (hs.size() == 512) {
            for (auto& h : hs) h.join();
            hs.clear();
          }
        }
        for (auto& h : hs) h.join();
      }));
    }
    for (auto& h : outer) h.join();
  });
  EXPECT_EQ(count.load(), total / spawners * spawners);
}

TEST(StealTest, WorkIsStolenWhenOneWorkerSpawnsEverything) {
  // Fewer fibers than the run queue holds, so none overflow to the global queue: the only way
  // for one to run on the other worker is a steal. (With 2,000 the overflow fed the idle
  // worker through the global queue, and a run with no steal at all was legitimate.) One round
  // is 20 ms of work; on a loaded machine the OS may not run the second worker at all during
  // it, so rounds repeat until a steal was seen, failing only if none comes within 20 s.
  weft::runtime rt(weft::runtime_options{.workers = 2, .run_queue_capacity = 256});
  std::atomic<int> on_other{0};
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int rounds = 0;
  do {
    ++rounds;
    rt.block_on([&] {
      int home = weft::this_fiber::worker_index();
      std::vector<weft::join_handle<void>> hs;
      for (int i = 0; i < 200; ++i) {
        hs.push_back(weft::spawn([&, home] {
          auto until = std::chrono::steady_clock::now() + 100us;
          while (std::chrono::steady_clock::now() < until) {}
          if (weft::this_fiber::worker_index() != home) ++on_other;
        }));
      }
      for (auto& h : hs) h.join();
    });
  } while ((on_other.load() == 0 || rt.stats().steals == 0) && std::chrono::steady_clock::now() < deadline);
  EXPECT_GT(on_other.load(), 0) << "after " << rounds << " rounds";
  EXPECT_GT(rt.stats().steals, 0u) << "after " << rounds << " rounds";
  weft_test::expect_no_leaks(rt);
}

struct wait_node {
  weft::wait_ticket ticket;
  bool linked = false;
};

TEST_P(SchedulerTest, ParkedWaitsEndExactlyOnce) {
  // T6: waiters park with random 0-5 ms timeouts while a waker fiber wakes the queue at random
  // offsets (sometimes before the waits begin); every wait ends exactly once, and the wakes
  // that won equal the waits that ended "notified".
  const int rounds = static_cast<int>(sized(20, 10, 5));
  const int fibers = 200;
  std::atomic<long> notified{0}, timed_out{0}, wakes_won{0};
  rt().block_on([&] {
    std::mt19937 rng(12345);
    for (int r = 0; r < rounds; ++r) {
      weft::detail::spinlock mu;
      std::vector<wait_node*> queue;
      auto waker = weft::spawn([&, delay = std::chrono::microseconds(rng() % 3000), seed = rng()] {
        std::mt19937 wrng(seed);  // its own: the spawner keeps using `rng` meanwhile
        weft::this_fiber::sleep_for(delay);
        for (int k = 0; k < 3; ++k) {
          std::vector<wait_node*> batch;
          {
            std::lock_guard lk(mu);
            batch.swap(queue);
            for (wait_node* n : batch) n->linked = false;
            for (wait_node* n : batch)
              if (n->ticket.wake()) wakes_won.fetch_add(1, std::memory_order_relaxed);
          }
          weft::this_fiber::sleep_for(std::chrono::microseconds(wrng() % 2000));
        }
      });
      std::vector<weft::join_handle<int>> hs;
      for (int i = 0; i < fibers; ++i) {
        auto timeout = std::chrono::microseconds(rng() % 5000);
        hs.push_back(weft::spawn([&, timeout] {
          wait_node node;
          node.ticket = weft::prepare_wait();
          mu.lock();
          node.linked = true;
          queue.push_back(&node);
          weft::wake_reason why =
              weft::park(node.ticket, std::chrono::steady_clock::now() + timeout,
                         [](void* m) { static_cast<weft::detail::spinlock*>(m)->unlock(); }, &mu);
          {
            std::lock_guard lk(mu);
            if (node.linked) queue.erase(std::find(queue.begin(), queue.end(), &node));
          }
          if (why == weft::wake_reason::notified) notified.fetch_add(1, std::memory_order_relaxed);
          if (why == weft::wake_reason::timed_out) timed_out.fetch_add(1, std::memory_order_relaxed);
          return 1;
        }));
      }
      int ended = 0;
      for (auto& h : hs) ended += h.join();
      waker.join();
      EXPECT_EQ(ended, fibers);
    }
  });
  EXPECT_EQ(notified.load() + timed_out.load(), static_cast<long>(rounds) * fibers);
  EXPECT_EQ(notified.load(), wakes_won.load());
}

// T7's runtime keeps every free stack resident (a high-water mark above its fiber count), so
// that its idle window sees parked workers only. With the default mark (1024) the pool gives
// back the pages of the other 99,000 stacks (19,000 in ASan) at 64 per 10 ms, seconds of
// bounded background work inside the window: under ASan it came to 5.6 % of a core there (CI,
// 2026-11-27), while the parked workers themselves use about 0.05 %.
class WakeFromThreadTest : public RuntimeTest {
 protected:
  weft::runtime_options options() const override {
    return weft::runtime_options{.workers = GetParam(), .stack_cache_high_water = std::size_t{1} << 20};
  }
};
INSTANTIATE_TEST_SUITE_P(Workers, WakeFromThreadTest, ::testing::Values(1u, 2u, 3u, 4u), weft_test::workers_name);

TEST_P(WakeFromThreadTest, PlainThreadWakesParkedFibers) {
  // T7: a plain thread wakes parked fibers; all resume, promptly, and idle workers do not spin.
  const int n = static_cast<int>(sized(100000, 20000, 3000));
  std::vector<handoff> slots(static_cast<std::size_t>(n));
  std::atomic<int> resumed{0};
  std::atomic<long long> max_latency_ns{0};
  std::vector<std::atomic<long long>> woke_at(static_cast<std::size_t>(n));
  std::atomic<int> waiting{0};
  auto hs = std::make_unique<std::vector<weft::join_handle<void>>>();
  for (int i = 0; i < n; ++i) {
    hs->push_back(rt().spawn([&, i] {
      waiting.fetch_add(1);
      slots[static_cast<std::size_t>(i)].wait();
      long long lat = std::chrono::steady_clock::now().time_since_epoch().count() - woke_at[static_cast<std::size_t>(i)].load();
      long long cur = max_latency_ns.load();
      while (lat > cur && !max_latency_ns.compare_exchange_weak(cur, lat)) {}
      resumed.fetch_add(1);
    }));
  }
  // Wake only once every fiber has reached its wait, so latency measures waking, not spawning.
  ASSERT_TRUE(weft_test::wait_until([&] { return waiting.load() == n && rt().stats().parks > 0; }));
  std::thread waker([&] {
    for (int i = 0; i < n; ++i) {
      woke_at[static_cast<std::size_t>(i)] = std::chrono::steady_clock::now().time_since_epoch().count();
      slots[static_cast<std::size_t>(i)].signal();
    }
  });
  waker.join();
  EXPECT_TRUE(weft_test::wait_until([&] { return resumed.load() == n; }));
  for (auto& h : *hs) h.join();
  EXPECT_EQ(resumed.load(), n);
  // With one worker the consumer is memory-bound (~1.4 us per cold fiber: each wake touches
  // another stack's pages), slower than the producer, so the backlog, not the wake path, sets
  // the maximum; docs/scheduler.md records it.
  if (weft_test::timing_budgets_apply() && GetParam() >= 2) {
    EXPECT_LT(max_latency_ns.load(), 50'000'000);
  }
  RecordProperty("max_latency_ns", std::to_string(max_latency_ns.load()));
  // Idle: with every fiber done, the workers park. Measure their CPU over 200 ms, from 100 ms
  // after the last join: the search that precedes a worker's park is not idle time, and under
  // ThreadSanitizer it alone once came to 5.04 % of the window (CI, 2026-11-27).
  std::this_thread::sleep_for(100ms);
  rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(200ms);
  ::getrusage(RUSAGE_SELF, &after);
  auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto cpu = [](const rusage& r) {
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  double share = (cpu(after) - cpu(before)) / wall;
  RecordProperty("idle_cpu_share", std::to_string(share));
  EXPECT_LT(share, 0.05) << "idle workers used " << share * 100 << "% of a core";
}

TEST_P(SchedulerTest, IdleWakeLatency) {
  // T8: with every worker parked, a fiber spawned from outside starts quickly (p99 < 5 ms).
  const int n = static_cast<int>(sized(1000, 300, 200));
  std::vector<long long> lat;
  lat.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(weft_test::wait_until([&] { return rt().stats().live_fibers == 0; }));
    auto t0 = std::chrono::steady_clock::now();
    auto started = rt().spawn([] { return std::chrono::steady_clock::now(); }).join();
    lat.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(started - t0).count());
  }
  std::sort(lat.begin(), lat.end());
  long long p99 = lat[static_cast<std::size_t>(n * 99 / 100)];
  if (weft_test::timing_budgets_apply()) {
    EXPECT_LT(p99, 5'000'000);
  }
  RecordProperty("p99_ns", std::to_string(p99));
}

TEST(SchedulerFairnessTest, HogsDoNotStarveLightFibers) {
  // T9: one worker, two hogs and two light fibers, all yielding; run counts stay within 20x.
  weft::runtime rt(weft::runtime_options{.workers = 1});
  std::atomic<bool> stop{false};
  std::atomic<long> hog_runs{0}, light_runs{0};
  rt.block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 2; ++i) {
      hs.push_back(weft::spawn([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          auto until = std::chrono::steady_clock::now() + 50us;
          while (std::chrono::steady_clock::now() < until) {}
          hog_runs.fetch_add(1, std::memory_order_relaxed);
          weft::this_fiber::yield();
        }
      }));
      hs.push_back(weft::spawn([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          light_runs.fetch_add(1, std::memory_order_relaxed);
          weft::this_fiber::yield();
        }
      }));
    }
    weft::this_fiber::sleep_for(200ms);
    stop = true;
    for (auto& h : hs) h.join();
  });
  ASSERT_GT(hog_runs.load(), 0);
  ASSERT_GT(light_runs.load(), 0);
  double ratio = static_cast<double>(light_runs.load()) / static_cast<double>(hog_runs.load());
  EXPECT_LT(ratio, 20.0);
  EXPECT_GT(ratio, 1.0 / 20.0);
  weft_test::expect_no_leaks(rt);
}

TEST(SchedulerFairnessTest, SelfRespawningFiberCannotStarveTimersOrInjectedWork) {
  // T10: a fiber that respawns itself forever (always runnable through the LIFO slot) must not
  // keep a 10 ms timer from firing by 60 ms, nor a fiber injected from outside from running.
  weft::runtime rt(weft::runtime_options{.workers = 1});
  std::atomic<bool> stop{false};
  std::atomic<long> generations{0};
  struct respawner {
    std::atomic<bool>* stop;
    std::atomic<long>* gens;
    void operator()() const {
      gens->fetch_add(1, std::memory_order_relaxed);
      if (!stop->load(std::memory_order_relaxed)) weft::spawn(*this);
    }
  };
  rt.spawn(respawner{&stop, &generations});
  auto timer_start = std::chrono::steady_clock::now();
  auto timer = rt.spawn([] {
    auto t0 = std::chrono::steady_clock::now();
    weft::this_fiber::sleep_for(10ms);
    return std::chrono::steady_clock::now() - t0;
  });
  auto injected_at = std::chrono::steady_clock::now();
  auto injected = rt.spawn([] { return std::chrono::steady_clock::now(); });
  auto ran_at = injected.join();
  auto slept = timer.join();
  stop = true;
  (void)timer_start;
  if (weft_test::timing_budgets_apply()) {
    EXPECT_LT(slept, 60ms);
    EXPECT_LT(ran_at - injected_at, 50ms);
  }
  EXPECT_GE(slept, 10ms);
  EXPECT_GT(generations.load(), 1);
  weft_test::expect_no_leaks(rt);
}

pid_t os_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

TEST(MigrationTest, MigrateOnYieldKeepsRuntimeLookupsAndErrnoRight) {
  // T11: with a fiber handed to another worker on every yield, the runtime's own lookup of the
  // current worker always matches the OS thread, and errno read right after a failing call is
  // that call's, even though the fiber moves between threads around it.
  weft::runtime rt(weft::runtime_options{.workers = 2, .migrate_on_yield = true});
  const int fibers = static_cast<int>(sized(1000, 200, 100));
  std::atomic<long> mismatches{0}, migrations{0}, wrong_errno{0};
  std::vector<pid_t> worker_tid(2, 0);
  std::mutex tid_mu;
  rt.block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < fibers; ++i) {
      hs.push_back(weft::spawn([&, i] {
        pid_t last = os_tid();
        for (int k = 0; k < 100; ++k) {
          weft::this_fiber::yield();
          pid_t now = os_tid();
          int w = weft::this_fiber::worker_index();
          {
            std::lock_guard lk(tid_mu);
            if (worker_tid[static_cast<std::size_t>(w)] == 0) worker_tid[static_cast<std::size_t>(w)] = now;
            if (worker_tid[static_cast<std::size_t>(w)] != now) mismatches.fetch_add(1);
          }
          if (now != last) migrations.fetch_add(1, std::memory_order_relaxed);
          last = now;
          // errno discipline: capture errno right after the call, before anything can switch.
          int rc = (k + i) % 2 == 0 ? ::close(-1) : static_cast<int>(::read(-1, nullptr, 0));
          int err = errno;
          if (rc != -1 || err != EBADF) wrong_errno.fetch_add(1);
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(wrong_errno.load(), 0);
  EXPECT_GT(migrations.load(), fibers * 50);
  weft_test::expect_no_leaks(rt);
}

TEST(SuspendInCatchTest, EachFiberKeepsItsOwnException) {
  // T12: two fibers suspend inside their catch blocks, interleaved; `throw;` rethrows each
  // fiber's own exception and current_exception() is empty once a catch block is left.
  weft::runtime rt(weft::runtime_options{.workers = 2});
  const int rounds = static_cast<int>(sized(1000, 300, 200));
  std::atomic<int> wrong{0};
  rt.block_on([&] {
    for (int r = 0; r < rounds; ++r) {
      auto body = [&](int tag) {
        try {
          throw tag;
        } catch (int) {
          weft::this_fiber::yield();
          try {
            throw;
          } catch (int seen) {
            if (seen != tag) wrong.fetch_add(1);
          }
          weft::this_fiber::yield();
          if (std::current_exception() == nullptr) wrong.fetch_add(1);
        }
        if (std::current_exception() != nullptr) wrong.fetch_add(1);
        if (std::uncaught_exceptions() != 0) wrong.fetch_add(1);
      };
      auto a = weft::spawn([&] { body(1); });
      auto b = weft::spawn([&] { body(2); });
      a.join();
      b.join();
    }
  });
  EXPECT_EQ(wrong.load(), 0);
  weft_test::expect_no_leaks(rt);
}

struct tagged_error : std::runtime_error {
  explicit tagged_error(int t) : std::runtime_error("tagged " + std::to_string(t)), tag(t) {}
  int tag;
};

TEST_P(SchedulerTest, ExceptionsTravelToJoin) {
  // T13: 100 fibers throw typed exceptions; join() rethrows the same type and message.
  rt().block_on([] {
    std::vector<weft::join_handle<int>> hs;
    for (int i = 0; i < 100; ++i)
      hs.push_back(weft::spawn([i]() -> int {
        weft::this_fiber::yield();
        throw tagged_error(i);
      }));
    for (int i = 0; i < 100; ++i) {
      try {
        hs[static_cast<std::size_t>(i)].join();
        ADD_FAILURE() << "join must rethrow";
      } catch (const tagged_error& e) {
        EXPECT_EQ(e.tag, i);
        EXPECT_EQ(std::string(e.what()), "tagged " + std::to_string(i));
      }
    }
  });
}

}  // namespace
