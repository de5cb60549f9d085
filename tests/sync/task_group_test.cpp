// weft::task_group: join waits for every child, the first failure is rethrown and stops the
// siblings, the stop token is shared, the destructor stops and joins without throwing, and a
// plain thread may own a group whose children run on a runtime.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include <weft/future.hpp>
#include <weft/task_group.hpp>

#include "weft_test.hpp"

using namespace std::chrono_literals;
using weft_test::RuntimeTest;

namespace {

constexpr auto kLimit = 10s;  // the bound of every wait that should succeed

class TaskGroupTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(TaskGroupTest);

// Parks until stop is requested on `st` or `limit` passes; true if stop was requested.
bool wait_for_stop(const std::stop_token& st, std::chrono::milliseconds limit = kLimit) {
  weft::promise<void> stopped;
  weft::future<void> f = stopped.get_future();
  std::stop_callback cb(st, [&stopped] { stopped.set_value(); });
  return f.wait_for(limit) == std::future_status::ready;
}

// Yields until `pred` holds or `limit` passes (fiber code must not sleep the worker).
template <class Pred>
bool yield_until(Pred pred, std::chrono::milliseconds limit = kLimit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    weft::this_fiber::yield();
  }
  return true;
}

TEST_P(TaskGroupTest, JoinWaitsForEveryChild) {
  const long n = weft_test::sized(500, 200, 100);
  rt().block_on([n] {
    std::atomic<long> plain{0}, with_token{0};
    weft::task_group g;
    for (long i = 0; i < n; ++i) {
      g.spawn([&plain] {
        weft::this_fiber::yield();
        plain.fetch_add(1);
      });
      g.spawn([&with_token](std::stop_token st) {
        weft::this_fiber::yield();
        if (!st.stop_requested()) with_token.fetch_add(1);
      });
    }
    g.join();
    EXPECT_EQ(plain.load(), n);
    EXPECT_EQ(with_token.load(), n);
    EXPECT_FALSE(g.get_stop_token().stop_requested());  // success requests no stop
  });
}

TEST_P(TaskGroupTest, ChildrenReceiveTheGroupsToken) {
  rt().block_on([] {
    weft::task_group g;
    std::stop_token seen;
    g.spawn([&seen](std::stop_token st) { seen = st; });
    g.join();
    EXPECT_TRUE(seen == g.get_stop_token());
    EXPECT_TRUE(g.get_stop_source().get_token() == g.get_stop_token());
  });
}

TEST_P(TaskGroupTest, FirstFailureIsRethrownAndStopsTheSiblings) {
  rt().block_on([] {
    weft::task_group g;
    std::atomic<bool> sibling_waiting{false};
    std::atomic<bool> sibling_stopped{false};
    g.spawn([&](std::stop_token st) {
      sibling_waiting = true;
      sibling_stopped = wait_for_stop(st);
      throw std::logic_error("second");  // after the first failure: dropped
    });
    g.spawn([&] {
      EXPECT_TRUE(yield_until([&] { return sibling_waiting.load(); }));
      throw std::runtime_error("first");
    });
    try {
      g.join();
      ADD_FAILURE() << "join must rethrow the first failure";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
    EXPECT_TRUE(sibling_stopped.load());
    EXPECT_TRUE(g.get_stop_token().stop_requested());
  });
}

TEST_P(TaskGroupTest, JoinConsumesTheFailureAndTheGroupStaysUsable) {
  rt().block_on([] {
    weft::task_group g;
    g.spawn([] { throw std::runtime_error("boom"); });
    EXPECT_THROW(g.join(), std::runtime_error);
    g.join();  // already reported
    // The stop request stays in force: a new child sees it at once.
    std::atomic<bool> saw_stop{false};
    g.spawn([&saw_stop](std::stop_token st) { saw_stop = st.stop_requested(); });
    g.join();
    EXPECT_TRUE(saw_stop.load());
  });
}

TEST_P(TaskGroupTest, RequestStopReachesEveryChild) {
  rt().block_on([] {
    weft::task_group g;
    std::atomic<int> started{0}, stopped{0};
    for (int i = 0; i < 10; ++i) {
      g.spawn([&](std::stop_token st) {
        ++started;
        if (wait_for_stop(st)) ++stopped;
      });
    }
    EXPECT_TRUE(yield_until([&] { return started.load() == 10; }));
    EXPECT_TRUE(g.request_stop());
    EXPECT_FALSE(g.request_stop());
    g.join();
    EXPECT_EQ(stopped.load(), 10);
  });
}

TEST_P(TaskGroupTest, DestructorRequestsStopJoinsAndDropsFailures) {
  rt().block_on([] {
    std::atomic<int> finished{0};
    std::stop_token token;
    {
      weft::task_group g;
      token = g.get_stop_token();
      for (int i = 0; i < 5; ++i) {
        g.spawn([&finished](std::stop_token st) {
          if (wait_for_stop(st)) ++finished;
        });
      }
      g.spawn([] { throw std::runtime_error("never collected"); });
    }  // must neither throw nor return before the children end
    EXPECT_EQ(finished.load(), 5);
    EXPECT_TRUE(token.stop_requested());
  });
}

TEST_P(TaskGroupTest, ChildrenMaySpawnSiblings) {
  rt().block_on([] {
    weft::task_group g;
    std::atomic<int> leaves{0};
    for (int i = 0; i < 4; ++i) {
      g.spawn([&] {
        for (int k = 0; k < 4; ++k) {
          g.spawn([&leaves] {
            weft::this_fiber::yield();
            ++leaves;
          });
        }
      });
    }
    g.join();  // a child's spawn counts before that child ends
    EXPECT_EQ(leaves.load(), 16);
  });
}

TEST_P(TaskGroupTest, CallableIsDestroyedBeforeJoinReturns) {
  rt().block_on([] {
    auto alive = std::make_shared<int>(1);
    std::weak_ptr<int> watch = alive;
    weft::task_group g;
    g.spawn([keep = std::move(alive)] { weft::this_fiber::yield(); });
    g.join();
    EXPECT_TRUE(watch.expired());
  });
}

TEST_P(TaskGroupTest, PlainThreadOwnsAGroupOfFibers) {
  weft::task_group g;
  std::atomic<int> ran{0};
  for (int i = 0; i < 8; ++i) {
    g.spawn(weft::spawn_options{.runtime = &rt()}, [&ran] {
      EXPECT_NE(weft::runtime::current(), nullptr);
      ++ran;
    });
  }
  g.join();  // this plain thread blocks
  EXPECT_EQ(ran.load(), 8);
  g.spawn(weft::spawn_options{.runtime = &rt()}, [] { throw std::out_of_range("on a fiber"); });
  EXPECT_THROW(g.join(), std::out_of_range);
}

}  // namespace
