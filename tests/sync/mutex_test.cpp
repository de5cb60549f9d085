// The mutex family and call_once: std semantics (including misuse), timeouts never early,
// fibers and plain threads contending, and no starvation.
#include <atomic>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <vector>

#include <weft/mutex.hpp>
#include <weft/shared_mutex.hpp>

#include "weft_test.hpp"

using namespace std::chrono_literals;
using weft_test::RuntimeTest;

namespace {

class MutexTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(MutexTest);

TEST_P(MutexTest, StdLocksWorkUnchanged) {
  weft::mutex m;
  weft::recursive_mutex rm;
  weft::timed_mutex tm;
  rt().block_on([&] {
    { std::lock_guard g(m); EXPECT_FALSE(m.try_lock()); }
    EXPECT_TRUE(m.try_lock());
    m.unlock();
    { std::unique_lock u(m); EXPECT_TRUE(u.owns_lock()); }
    { std::scoped_lock s(m, tm); EXPECT_FALSE(tm.try_lock()); }
    {
      std::lock_guard a(rm);
      std::lock_guard b(rm);  // recursion
      EXPECT_TRUE(rm.try_lock());
      rm.unlock();
    }
    std::unique_lock u(tm, std::defer_lock);
    EXPECT_TRUE(u.try_lock_for(1ms));
  });
}

TEST_P(MutexTest, CounterIsExactUnderContention) {
  // 64 fibers x N lock / yield inside / unlock across workers (T5): the count is exact, and
  // (with several workers) critical sections ran on more than one OS thread. One round can
  // legitimately stay on one thread when the OS does not run the second worker during its few
  // milliseconds (CI under load saw that), so rounds repeat, each checked exactly, until a second
  // thread took part; stealing that never happens fails after the deadline.
  weft::mutex m;
  const int fibers = 64;
  const long per = weft_test::sized(10000, 2000, 500);
  std::set<std::thread::id> threads;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int rounds = 0;
  do {
    long counter = 0;
    rt().block_on([&] {
      std::vector<weft::join_handle<void>> hs;
      for (int f = 0; f < fibers; ++f) {
        hs.push_back(weft::spawn([&] {
          for (long i = 0; i < per; ++i) {
            std::lock_guard g(m);
            long v = counter;
            if (i % 64 == 0) {
              threads.insert(std::this_thread::get_id());
              weft::this_fiber::yield();  // hold the lock across a switch
            }
            counter = v + 1;
          }
        }));
      }
      for (auto& h : hs) h.join();
    });
    ++rounds;
    ASSERT_EQ(counter, fibers * per) << "round " << rounds;
  } while (GetParam() > 1 && threads.size() < 2 && std::chrono::steady_clock::now() < deadline);
  if (GetParam() > 1) {
    EXPECT_GT(threads.size(), 1u) << "after " << rounds << " rounds";
  }
}

TEST_P(MutexTest, PlainThreadsAndFibersShareAMutex) {
  weft::mutex m;
  long counter = 0;
  const long per = weft_test::sized(20000, 5000, 1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      for (long i = 0; i < per; ++i) {
        std::lock_guard g(m);
        ++counter;
      }
    });
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int f = 0; f < 8; ++f)
      hs.push_back(weft::spawn([&] {
        for (long i = 0; i < per; ++i) {
          std::lock_guard g(m);
          ++counter;
          if (i % 100 == 0) weft::this_fiber::yield();
        }
      }));
    for (auto& h : hs) h.join();
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 10 * per);
}

TEST_P(MutexTest, TimedLockTimesOutNeverEarly) {
  weft::timed_mutex m;
  weft::recursive_timed_mutex rm;
  rt().block_on([&] {
    m.lock();
    rm.lock();
    auto h = weft::spawn([&] {
      auto t0 = std::chrono::steady_clock::now();
      bool got = m.try_lock_for(5ms);
      auto waited = std::chrono::steady_clock::now() - t0;
      bool got_r = rm.try_lock_until(std::chrono::steady_clock::now() + 3ms);
      return std::make_tuple(got, waited, got_r);
    });
    auto [got, waited, got_r] = h.join();
    EXPECT_FALSE(got);
    EXPECT_GE(waited, 5ms);
    EXPECT_FALSE(got_r);
    // Released while waiting: the timed lock succeeds.
    auto h2 = weft::spawn([&] { return m.try_lock_for(10s); });
    weft::this_fiber::sleep_for(1ms);
    m.unlock();
    EXPECT_TRUE(h2.join());
    m.unlock();  // h2's fiber took it; unlocking from another fiber is allowed for weft::mutex
    rm.unlock();
  });
}

TEST_P(MutexTest, NoWaiterStarves) {
  // A fiber that keeps re-locking in a tight loop must not keep a waiter out forever: after
  // 1 ms of waiting, the lock is handed to the waiter directly.
  weft::mutex m;
  std::atomic<bool> stop{false};
  rt().block_on([&] {
    auto hog = weft::spawn([&] {
      while (!stop.load()) {
        std::lock_guard g(m);
        auto until = std::chrono::steady_clock::now() + 20us;
        while (std::chrono::steady_clock::now() < until) {}
        if (GetParam() == 1) weft::this_fiber::yield();
      }
    });
    std::vector<weft::join_handle<std::chrono::steady_clock::duration>> waiters;
    for (int i = 0; i < 8; ++i)
      waiters.push_back(weft::spawn([&] {
        auto t0 = std::chrono::steady_clock::now();
        std::lock_guard g(m);
        return std::chrono::steady_clock::now() - t0;
      }));
    for (auto& w : waiters) EXPECT_LT(w.join(), 2s);
    stop = true;
    hog.join();
  });
}

TEST(MutexDeathTest, UnlockingAnUnlockedMutexIsReported) {
  EXPECT_DEATH(
      {
        weft::mutex m;
        m.unlock();
      },
      "weft::mutex::unlock: the mutex is not locked");
  EXPECT_DEATH(
      {
        weft::recursive_mutex m;
        m.unlock();
      },
      "does not hold the mutex");
  EXPECT_DEATH(
      {
        weft::shared_mutex m;
        m.unlock_shared();
      },
      "no shared lock is held");
}

TEST_P(MutexTest, SharedMutexReadersShareWritersExclude) {
  weft::shared_timed_mutex m;
  std::atomic<int> readers{0}, max_readers{0}, writers{0};
  std::atomic<bool> overlap{false};
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 16; ++i) {
      bool writer = i % 4 == 0;
      hs.push_back(weft::spawn([&, writer] {
        for (int k = 0; k < 200; ++k) {
          if (writer) {
            std::unique_lock g(m);
            if (writers.fetch_add(1) != 0 || readers.load() != 0) overlap = true;
            weft::this_fiber::yield();
            writers.fetch_sub(1);
          } else {
            std::shared_lock g(m);
            int r = readers.fetch_add(1) + 1;
            int mx = max_readers.load();
            while (r > mx && !max_readers.compare_exchange_weak(mx, r)) {}
            if (writers.load() != 0) overlap = true;
            weft::this_fiber::yield();
            readers.fetch_sub(1);
          }
        }
      }));
    }
    for (auto& h : hs) h.join();
    // Timed forms.
    std::shared_lock r1(m);
    EXPECT_FALSE(m.try_lock_for(2ms));
    EXPECT_TRUE(m.try_lock_shared_for(2ms));
    m.unlock_shared();
  });
  EXPECT_FALSE(overlap.load());
  // Readers really share: four readers all get inside at once.
  std::atomic<int> inside{0};
  rt().block_on([&] {
    std::vector<weft::join_handle<bool>> hs;
    for (int i = 0; i < 4; ++i)
      hs.push_back(weft::spawn([&] {
        std::shared_lock g(m);
        inside++;
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (inside.load() < 4 && std::chrono::steady_clock::now() < deadline) weft::this_fiber::sleep_for(50us);
        return inside.load() == 4;
      }));
    for (auto& h : hs) EXPECT_TRUE(h.join());
  });
}

TEST_P(MutexTest, CallOnceRunsOnceAndRetriesAfterAnException) {
  weft::once_flag flag;
  std::atomic<int> calls{0};
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 32; ++i)
      hs.push_back(weft::spawn([&] {
        weft::call_once(flag, [&] {
          calls++;
          weft::this_fiber::sleep_for(2ms);  // others arriving now park, they do not run it
        });
      }));
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(calls.load(), 1);

  weft::once_flag flaky;
  int attempts = 0;
  rt().block_on([&] {
    EXPECT_THROW(weft::call_once(flaky, [&] {
                   ++attempts;
                   throw std::runtime_error("first try fails");
                 }),
                 std::runtime_error);
    weft::call_once(flaky, [&] { ++attempts; });
    weft::call_once(flaky, [&] { ++attempts; });
  });
  EXPECT_EQ(attempts, 2);
}

}  // namespace

namespace {

TEST(MutexShutdownTest, WaitersUnwoundAtShutdownLeaveTheQueue) {
  // A fiber holds the mutex and sleeps; others wait for it; the runtime is destroyed. The
  // waiters are unwound first or last — either way the holder's unlock (run by its own
  // unwinding) must not touch their dead queue records.
  for (int round = 0; round < 20; ++round) {
    weft::mutex m;
    std::atomic<int> waiting{0};
    {
      weft::runtime rt(weft::runtime_options{.workers = 2});
      std::atomic<bool> held{false};
      rt.spawn([&] {
        std::lock_guard g(m);
        held = true;
        weft::this_fiber::sleep_for(1h);
      });
      ASSERT_TRUE(weft_test::wait_until([&] { return held.load(); }));
      for (int i = 0; i < 4; ++i)
        rt.spawn([&] {
          waiting++;
          std::lock_guard g(m);
        });
      ASSERT_TRUE(weft_test::wait_until([&] { return waiting.load() == 4; }));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the starvation hand-off bound
    }
    // The mutex outlives the runtime: a hand-over to a waiter that was then unwound must have
    // been passed on, not left held by a fiber that no longer exists.
    EXPECT_TRUE(m.try_lock()) << "round " << round;
    m.unlock();
  }
}

}  // namespace

namespace {

// A waiter that unlock() woke (not handed the lock) and that runtime shutdown unwound before
// it could retry. While a woken waiter is pending, unlock wakes nobody else (Go's mutexWoken),
// so the unwound one must give that back: a thread that queues next has to be woken by the
// next unlock, not wait for a starvation hand-off that no later unlock will make.
TEST(MutexShutdownTest, AWokenWaiterUnwoundAtShutdownLetsUnlockWakeTheNext) {
  weft::timed_mutex m;  // a mutex with try_lock_for, for the last step
  std::atomic<bool> release{false};
  std::thread stopper;
  {
    weft::runtime rt(weft::runtime_options{.workers = 1});
    m.lock();
    // On the only worker, in this order: the waiter parks in lock(), then the busy fiber keeps
    // the worker, so the waiter, once woken, cannot run before shutdown stops the worker.
    std::atomic<bool> busy{false};
    rt.spawn([&] {
      weft::spawn([&] {  // runs as soon as the waiter parks (it is next: the LIFO slot)
        busy = true;
        while (!release.load()) std::this_thread::yield();
      }).detach();
      std::lock_guard g(m);
    });
    // Spin (no sleep): the unlock must come soon after the waiter queued. Bounded.
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         !busy.load() && std::chrono::steady_clock::now() < until;) {
      std::this_thread::yield();
    }
    if (!busy.load()) {
      release = true;  // lets the runtime stop
      FAIL() << "the busy fiber never ran";
    }
    // Well within the 1 ms starvation bound of the waiter's queueing (under heavy load it may
    // not be; then the lock is handed over instead, which shutdown also gives back).
    m.unlock();
    stopper = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // ~runtime is stopping
      release = true;
    });
  }  // the busy fiber returns, the worker stops, the woken waiter is unwound
  stopper.join();
  // A plain thread queues; the holder unlocks well within the starvation bound.
  for (int round = 0; round < 5; ++round) {
    m.lock();
    std::atomic<bool> about{false};
    std::atomic<bool> got{false};
    std::thread t([&] {
      about = true;
      got = m.try_lock_for(std::chrono::seconds(2));
      if (got) m.unlock();
    });
    while (!about.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    m.unlock();
    t.join();
    EXPECT_TRUE(got.load()) << "round " << round << ": the next waiter was never woken";
  }
}

// Found by review: park() returns at once while a fiber is being unwound; lock() must still
// not return without the lock.
TEST(MutexShutdownTest, LockInADestructorWhileUnwindingWaitsForAPlainThreadHolder) {
  weft::mutex m;
  std::atomic<bool> holding{false};
  std::atomic<bool> parked{false};
  std::atomic<int> violated{-1};  // 1: lock() returned while the plain thread held the mutex
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
  m.lock();
  holding = true;
  rt->spawn([&] {
    struct locks_in_destructor {
      weft::mutex* m;
      std::atomic<bool>* holding;
      std::atomic<int>* violated;
      ~locks_in_destructor() {
        m->lock();
        bool bad = holding->load();
        violated->store(bad ? 1 : 0);
        if (!bad) m->unlock();  // (an unlock after a bad lock would release the thread's hold)
      }
    } g{&m, &holding, &violated};
    parked = true;
    weft::this_fiber::sleep_for(1h);
  }).detach();
  ASSERT_TRUE(weft_test::wait_until([&] { return parked.load(); }));
  std::thread holder([&] {
    std::this_thread::sleep_for(300ms);  // the runtime is being destroyed meanwhile
    holding = false;
    m.unlock();
  });
  rt.reset();
  holder.join();
  EXPECT_EQ(violated.load(), 0) << "weft::mutex::lock() returned while a plain thread held the mutex";
}

// Found by audit: the body of call_once throws while a fiber and then a plain thread wait. The
// turn to retry went to one waiter only (std: "one of them"), the fiber; runtime shutdown
// unwound that fiber before it ran, so nobody was left to retry and the plain thread waited for
// ever on an idle flag.
TEST(MutexShutdownTest, CallOnceTurnPassedToAFiberUnwoundAtShutdownReachesTheOtherWaiters) {
  weft_test::finishes_within("call_once after its body threw and shutdown unwound a waiter", 20s, [] {
    weft::once_flag flag;
    std::atomic<bool> body_started{false}, go{false}, threw{false}, plain_about{false};
    std::atomic<bool> plain_ran{false};
    std::thread plain;
    {
      weft::runtime rt(weft::runtime_options{.workers = 1});
      rt.spawn([&] {
        try {
          weft::call_once(flag, [&] {
            body_started = true;
            while (!go.load()) weft::this_fiber::sleep_for(1ms);  // lets the waiters queue
            throw 1;
          });
        } catch (int) {
        }
        threw = true;
        // Keep the only worker until ~runtime has set `stopping` (spawn is refused from then
        // on): the waiter woken by the throw is queued behind this fiber and never runs.
        for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
          try {
            weft::spawn([] {}).detach();
          } catch (const std::system_error&) {
            break;
          }
          std::this_thread::sleep_for(1ms);
        }
        weft::this_fiber::sleep_for(1h);
      }).detach();
      ASSERT_TRUE(weft_test::wait_until([&] { return body_started.load(); }));
      rt.spawn([&] { weft::call_once(flag, [] {}); }).detach();  // the first waiter
      ASSERT_TRUE(weft_test::wait_until([&] {
        for (const weft::fiber_info& f : rt.fibers()) {
          if (f.status == weft::fiber_status::parked && f.waiting_on == "call_once") return true;
        }
        return false;
      }));
      plain = std::thread([&] {
        plain_about = true;
        weft::call_once(flag, [&] { plain_ran = true; });
      });
      ASSERT_TRUE(weft_test::wait_until([&] { return plain_about.load(); }));
      // No way to see a plain thread parked: give it time to queue behind the fiber (if it has
      // not, it finds the flag idle and runs the body: the test passes without testing much).
      std::this_thread::sleep_for(50ms);
      go = true;
      EXPECT_TRUE(weft_test::wait_until([&] { return threw.load(); }));
    }  // ~runtime: the woken fiber is unwound without having run
    plain.join();
    EXPECT_TRUE(plain_ran.load()) << "the flag was idle, so the plain thread should have run the body";
  });
}

}  // namespace
