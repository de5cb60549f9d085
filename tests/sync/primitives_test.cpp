// Semaphores, latch and barrier: std members, error cases, fibers and plain threads.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <weft/barrier.hpp>
#include <weft/latch.hpp>
#include <weft/mutex.hpp>
#include <weft/semaphore.hpp>

#include "weft_test.hpp"

using namespace std::chrono_literals;
using weft_test::RuntimeTest;

namespace {

class PrimitivesTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(PrimitivesTest);

// As std's, the constructors are constexpr: these compile only if so (constinit), and a
// static one is usable before main without an initialisation-order question.
constinit weft::latch g_start(2);
constinit weft::barrier<> g_meet(2);
constinit weft::counting_semaphore<4> g_slots(1);

// Not parameterised: the latch is single-use, so this runs once per process.
TEST(PrimitivesStaticTest, StaticPrimitivesAreConstantInitialised) {
  weft::runtime rt(weft::runtime_options{.workers = 2});
  rt.block_on([] {
    auto other = weft::spawn([] {
      g_start.arrive_and_wait();
      g_meet.arrive_and_wait();
      g_slots.acquire();
      g_slots.release();
    });
    g_start.arrive_and_wait();
    g_meet.arrive_and_wait();
    other.join();
    EXPECT_TRUE(g_start.try_wait());
    EXPECT_TRUE(g_slots.try_acquire());
    g_slots.release();
  });
}

TEST_P(PrimitivesTest, SemaphoreLimitsConcurrency) {
  weft::counting_semaphore<3> sem(3);
  std::atomic<int> inside{0}, max_inside{0};
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 32; ++i)
      hs.push_back(weft::spawn([&] {
        for (int k = 0; k < 20; ++k) {
          sem.acquire();
          int now = inside.fetch_add(1) + 1;
          int mx = max_inside.load();
          while (now > mx && !max_inside.compare_exchange_weak(mx, now)) {}
          weft::this_fiber::yield();
          inside.fetch_sub(1);
          sem.release();
        }
      }));
    for (auto& h : hs) h.join();
  });
  EXPECT_LE(max_inside.load(), 3);
  EXPECT_GE(max_inside.load(), 1);
  EXPECT_EQ(decltype(sem)::max(), 3);
}

TEST_P(PrimitivesTest, SemaphoreTimedAcquireAndErrors) {
  weft::binary_semaphore sem(0);
  rt().block_on([&] {
    EXPECT_FALSE(sem.try_acquire());
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(sem.try_acquire_for(3ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 3ms);
    auto h = weft::spawn([&] { return sem.try_acquire_for(10s); });
    weft::this_fiber::sleep_for(1ms);
    sem.release();
    EXPECT_TRUE(h.join());
    std::system_error e = weft_test::system_error_of([&] { sem.release(-1); });
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_STREQ(e.what(), "weft::counting_semaphore::release(-1): wants a count >= 0: Invalid argument");
    // Past max(): a binary semaphore released twice keeps its one permit and says so.
    sem.release();
    e = weft_test::system_error_of([&] { sem.release(); });
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_STREQ(e.what(),
                 "weft::counting_semaphore::release(1) with 1 of max() 1 permits available: the count would pass max(): "
                 "Invalid argument");
    EXPECT_TRUE(sem.try_acquire());
    EXPECT_FALSE(sem.try_acquire());
  });
  // A plain thread releases, a fiber acquires (and the other way round).
  std::thread t([&] { sem.release(); });
  rt().block_on([&] { sem.acquire(); });
  t.join();
  auto h = rt().spawn([&] { sem.release(); });
  sem.acquire();
  h.join();
}

TEST_P(PrimitivesTest, LatchReleasesEveryoneAtZero) {
  weft::latch l(5);
  std::atomic<int> passed{0};
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 5; ++i)
      hs.push_back(weft::spawn([&] {
        l.arrive_and_wait();
        passed++;
      }));
    for (auto& h : hs) h.join();
    EXPECT_TRUE(l.try_wait());
    std::system_error e = weft_test::system_error_of([&] { l.count_down(); });  // would go negative
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_STREQ(e.what(),
                 "weft::latch::count_down(1) on a count of 0: wants 0 to the count (it must not go below 0): Invalid argument");
  });
  EXPECT_EQ(passed.load(), 5);
  weft::latch plain(1);
  std::thread t([&] { plain.wait(); });
  rt().block_on([&] { plain.count_down(); });
  t.join();
}

TEST_P(PrimitivesTest, BarrierRunsCompletionBeforeReleasingEachPhase) {
  constexpr int parties = 6, phases = 50;
  std::atomic<int> completions{0};
  std::vector<int> arrived(phases, 0);
  std::atomic<int> phase{0};
  std::atomic<bool> order_broken{false};
  auto on_complete = [&]() noexcept {
    if (arrived[static_cast<std::size_t>(phase.load())] != parties) order_broken = true;
    completions++;
    phase++;
  };
  weft::barrier<decltype(on_complete)> b(parties, on_complete);
  weft::mutex m;
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int p = 0; p < parties; ++p)
      hs.push_back(weft::spawn([&] {
        for (int k = 0; k < phases; ++k) {
          {
            std::lock_guard g(m);
            ++arrived[static_cast<std::size_t>(k)];
          }
          b.arrive_and_wait();
          if (phase.load() < k + 1) order_broken = true;  // released before the completion ran
        }
      }));
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(completions.load(), phases);
  EXPECT_FALSE(order_broken.load());
}

TEST_P(PrimitivesTest, BarrierArriveAndDropAndErrors) {
  weft::barrier<> b(3);
  rt().block_on([&] {
    auto dropper = weft::spawn([&] { b.arrive_and_drop(); });
    auto other = weft::spawn([&] {
      b.arrive_and_wait();
      b.arrive_and_wait();  // phase 2 needs only 2 participants now
    });
    b.arrive_and_wait();
    b.arrive_and_wait();
    dropper.join();
    other.join();
    std::system_error e = weft_test::system_error_of([&] { (void)b.arrive(5); });
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_STREQ(e.what(), "weft::barrier::arrive(5) with 2 arrivals left in this phase: wants 1 to that many: Invalid argument");
  });
}

// Runtime shutdown unwinds a fiber whose destructor waits on a latch that a plain thread counts
// down later: every park of an unwound fiber returns at once, and the wait must still last
// until the count reaches zero (wait_locked_until keeps checking, yielding the thread).
TEST(PrimitivesShutdownTest, AnUnwoundFibersLatchWaitLastsUntilAPlainThreadCountsDown) {
  weft::latch gate(1);
  std::atomic<bool> parked{false}, counted{false}, waited_after_count{false};
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
  rt->spawn([&] {
    struct waits_in_destructor {
      weft::latch& gate;
      std::atomic<bool>& counted;
      std::atomic<bool>& out;
      ~waits_in_destructor() {
        gate.wait();
        out.store(counted.load());
      }
    } g{gate, counted, waited_after_count};
    parked.store(true);
    weft::this_fiber::sleep_for(1h);
  }).detach();
  ASSERT_TRUE(weft_test::wait_until([&] { return parked.load(); }));
  std::thread counter([&] {
    std::this_thread::sleep_for(50ms);
    counted.store(true);
    gate.count_down();
  });
  rt.reset();  // unwinds the fiber; its destructor waits for `counter`
  counter.join();
  EXPECT_TRUE(waited_after_count.load()) << "latch::wait() returned during unwinding before the count reached zero";
}

}  // namespace
