// Condition variables: notify/wait semantics, timeouts never early, predicate forms, stop
// tokens, plain threads on either side, and no lost wake-up in ping-pong.
#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include <weft/condition_variable.hpp>
#include <weft/shared_mutex.hpp>

#include "weft_test.hpp"

using namespace std::chrono_literals;
using weft_test::RuntimeTest;

namespace {

class ConditionVariableTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(ConditionVariableTest);

TEST_P(ConditionVariableTest, NotifyOneWakesAWaiterNotifyAllWakesAll) {
  weft::mutex m;
  weft::condition_variable cv;
  int ready = 0, woken = 0;
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 10; ++i)
      hs.push_back(weft::spawn([&] {
        std::unique_lock lk(m);
        ++ready;
        cv.wait(lk, [&] { return woken > 0; });
        ++woken;
      }));
    for (;;) {
      {
        std::lock_guard g(m);
        if (ready == 10) break;
      }
      weft::this_fiber::yield();
    }
    {
      std::lock_guard g(m);
      woken = 1;
    }
    cv.notify_all();
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(woken, 11);
}

TEST_P(ConditionVariableTest, WaitForTimesOutNeverEarly) {
  weft::mutex m;
  weft::condition_variable cv;
  rt().block_on([&] {
    std::unique_lock lk(m);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(cv.wait_for(lk, 5ms), std::cv_status::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 5ms);
    EXPECT_TRUE(lk.owns_lock());
    EXPECT_FALSE(cv.wait_for(lk, 2ms, [] { return false; }));
    EXPECT_TRUE(cv.wait_until(lk, std::chrono::system_clock::now() + 1s, [] { return true; }));
  });
}

TEST_P(ConditionVariableTest, PingPongBetweenFibersAndAPlainThreadLosesNoWakeUp) {
  weft::mutex m;
  weft::condition_variable cv;
  long turn = 0;
  const long rounds = weft_test::sized(20000, 5000, 2000);
  std::thread plain([&] {
    for (long i = 0; i < rounds; ++i) {
      std::unique_lock lk(m);
      cv.wait(lk, [&] { return turn % 2 == 1; });
      ++turn;
      cv.notify_all();
    }
  });
  rt().block_on([&] {
    for (long i = 0; i < rounds; ++i) {
      std::unique_lock lk(m);
      cv.wait(lk, [&] { return turn % 2 == 0; });
      ++turn;
      cv.notify_all();
    }
  });
  plain.join();
  EXPECT_EQ(turn, 2 * rounds);
}

TEST_P(ConditionVariableTest, NotifyRacingTimeoutsLosesNoNotification) {
  // Waiters time out at random while a notifier hands out exactly N tokens with notify_one;
  // every token is consumed (a notify that meets a leaving waiter passes to the next).
  weft::mutex m;
  weft::condition_variable cv;
  int tokens = 0, consumed = 0;
  const int n = 500;
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 20; ++i)
      hs.push_back(weft::spawn([&, i] {
        std::unique_lock lk(m);
        while (consumed < n) {
          if (cv.wait_for(lk, std::chrono::microseconds(50 + i * 37), [&] { return tokens > 0 || consumed >= n; })) {
            if (tokens > 0) {
              --tokens;
              ++consumed;
            }
          }
        }
        cv.notify_all();
      }));
    for (int k = 0; k < n; ++k) {
      {
        std::lock_guard g(m);
        ++tokens;
      }
      cv.notify_one();
      if (k % 10 == 0) weft::this_fiber::yield();
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(consumed, n);
  EXPECT_EQ(tokens, 0);
}

TEST_P(ConditionVariableTest, AnyWorksWithOtherLocksAndStopTokens) {
  weft::shared_mutex sm;
  weft::condition_variable_any cv;
  bool flag = false;
  rt().block_on([&] {
    std::stop_source src;
    auto waiter = weft::spawn([&] {
      std::shared_lock lk(sm);
      return cv.wait(lk, src.get_token(), [&] { return flag; });  // false: stopped, not flagged
    });
    weft::this_fiber::sleep_for(1ms);
    src.request_stop();
    EXPECT_FALSE(waiter.join());

    // Already stopped: returns at once with pred().
    std::unique_lock lk(sm);
    EXPECT_FALSE(cv.wait(lk, src.get_token(), [&] { return flag; }));
    // A std::mutex works as well.
    std::mutex sm2;
    std::unique_lock lk2(sm2);
    EXPECT_EQ(cv.wait_for(lk2, 1ms), std::cv_status::timeout);
    std::stop_source fresh;
    EXPECT_FALSE(cv.wait_for(lk, fresh.get_token(), 2ms, [&] { return flag; }));
  });
}

TEST(ConditionVariableShutdownTest, WaitersAreUnwoundWithTheirLocks) {
  // Fibers wait (std::unique_lock, with and without a timeout, on both kinds of condition
  // variable); the runtime is destroyed, either while they wait or after another fiber took
  // the mutex, notified them all and went to sleep holding it (they are then parked in the
  // relock). Each waiter's unwinding must leave its unique_lock consistent: no unlock of a
  // mutex it does not hold (which aborts), no hang relocking one whose holder never runs again.
  for (bool holder : {false, true}) {
    weft::mutex m;
    weft::condition_variable cv;
    weft::condition_variable_any cv_any;
    std::atomic<int> waiting{0};
    std::atomic<int> unwound{0};
    {
      weft::runtime rt(weft::runtime_options{.workers = 2});
      struct count_unwind {
        std::atomic<int>& n;
        ~count_unwind() { n++; }
      };
      auto waiter = [&](int kind) {
        return [&, kind] {
          count_unwind c{unwound};
          std::unique_lock lk(m);
          waiting++;
          switch (kind) {
            case 0: cv.wait(lk, [] { return false; }); break;
            case 1: cv.wait_for(lk, std::chrono::hours(1), [] { return false; }); break;
            default: cv_any.wait(lk, [] { return false; }); break;
          }
        };
      };
      for (int kind = 0; kind < 3; ++kind) rt.spawn(waiter(kind));
      ASSERT_TRUE(weft_test::wait_until([&] { return waiting.load() == 3; }));
      if (holder) {
        std::atomic<bool> held{false};
        rt.spawn([&] {
          std::lock_guard g(m);
          held = true;
          // Notified while the mutex is held here, the waiters park again in the relock.
          cv.notify_all();
          cv_any.notify_all();
          weft::this_fiber::sleep_for(std::chrono::hours(1));
        });
        ASSERT_TRUE(weft_test::wait_until([&] { return held.load(); }));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the waiters reach the relock
      }
    }
    EXPECT_EQ(unwound.load(), 3) << "holder: " << holder;
    EXPECT_TRUE(m.try_lock()) << "every unwound owner released the mutex exactly once";
    m.unlock();
  }
}

}  // namespace
