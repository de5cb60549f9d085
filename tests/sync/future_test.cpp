// weft::future, shared_future, promise, packaged_task and async: values, exceptions, every
// std::future_errc the std types raise, timed waits that never return early, deferred tasks,
// the *_at_thread_exit members, and waiting across fibers and plain threads.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <weft/future.hpp>

#include "weft_test.hpp"

using namespace std::chrono_literals;
using weft_test::RuntimeTest;

namespace {

constexpr auto kLimit = 10s;  // the bound of every wait that should succeed

class FutureTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(FutureTest);

// The std::future_errc a call throws, or a default error_code if it throws nothing.
template <class F>
std::error_code future_error_of(F&& f) {
  try {
    f();
  } catch (const std::future_error& e) {
    return e.code();
  }
  return {};
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

TEST_P(FutureTest, PromiseValueReachesFutureOnAnotherFiber) {
  rt().block_on([] {
    weft::promise<std::string> p;
    weft::future<std::string> f = p.get_future();
    EXPECT_TRUE(f.valid());
    auto h = weft::spawn([&p] {
      weft::this_fiber::yield();
      p.set_value("forty-two");
    });
    EXPECT_EQ(f.wait_for(kLimit), std::future_status::ready);
    EXPECT_EQ(f.get(), "forty-two");
    EXPECT_FALSE(f.valid());
    h.join();
  });
}

TEST_P(FutureTest, WaitParksTheFiberSoTheSetterCanRunOnTheSameWorker) {
  rt().block_on([] {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    // Pinned to this worker: with one worker, a wait that blocked the thread would deadlock.
    weft::this_fiber::pin();
    auto h = weft::spawn(weft::spawn_options{.pinned = true}, [&p] { p.set_value(5); });
    f.wait();
    EXPECT_EQ(f.get(), 5);
    h.join();
    weft::this_fiber::unpin();
  });
}

TEST_P(FutureTest, GetTwiceThrowsNoState) {
  rt().block_on([] {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    p.set_value(1);
    EXPECT_EQ(f.get(), 1);
    EXPECT_FALSE(f.valid());
    EXPECT_EQ(future_error_of([&] { f.get(); }), std::future_errc::no_state);
  });
}

TEST_P(FutureTest, DefaultConstructedFuturesHaveNoState) {
  rt().block_on([] {
    weft::future<int> f;
    EXPECT_FALSE(f.valid());
    EXPECT_EQ(future_error_of([&] { f.get(); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { f.wait(); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { (void)f.wait_for(1ms); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { (void)f.wait_until(std::chrono::system_clock::now()); }),
              std::future_errc::no_state);
    weft::shared_future<int> sf = f.share();
    EXPECT_FALSE(sf.valid());
    EXPECT_EQ(future_error_of([&] { sf.get(); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { sf.wait(); }), std::future_errc::no_state);
    weft::future<void> fv;
    EXPECT_EQ(future_error_of([&] { fv.get(); }), std::future_errc::no_state);
    weft::future<int&> fr;
    EXPECT_EQ(future_error_of([&] { fr.get(); }), std::future_errc::no_state);
  });
}

TEST_P(FutureTest, MovedFromPromiseHasNoState) {
  rt().block_on([] {
    weft::promise<int> a;
    weft::promise<int> b(std::move(a));
    EXPECT_EQ(future_error_of([&] { a.set_value(1); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { (void)a.get_future(); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { a.set_exception(std::make_exception_ptr(1)); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { a.set_value_at_thread_exit(1); }), std::future_errc::no_state);
    weft::future<int> f = b.get_future();
    b.set_value(3);
    EXPECT_EQ(f.get(), 3);
  });
}

TEST_P(FutureTest, SecondGetFutureThrowsAlreadyRetrieved) {
  rt().block_on([] {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    EXPECT_EQ(future_error_of([&] { (void)p.get_future(); }), std::future_errc::future_already_retrieved);
    weft::packaged_task<int()> t([] { return 1; });
    weft::future<int> tf = t.get_future();
    EXPECT_EQ(future_error_of([&] { (void)t.get_future(); }), std::future_errc::future_already_retrieved);
  });
}

TEST_P(FutureTest, SecondSetThrowsAlreadySatisfied) {
  rt().block_on([] {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    p.set_value(1);
    EXPECT_EQ(future_error_of([&] { p.set_value(2); }), std::future_errc::promise_already_satisfied);
    EXPECT_EQ(future_error_of([&] { p.set_exception(std::make_exception_ptr(std::runtime_error("x"))); }),
              std::future_errc::promise_already_satisfied);
    EXPECT_EQ(future_error_of([&] { p.set_value_at_thread_exit(3); }), std::future_errc::promise_already_satisfied);
    EXPECT_EQ(f.get(), 1);

    weft::promise<void> pv;
    pv.set_exception(std::make_exception_ptr(std::runtime_error("x")));
    EXPECT_EQ(future_error_of([&] { pv.set_value(); }), std::future_errc::promise_already_satisfied);
  });
}

TEST_P(FutureTest, DestroyedPromiseBreaksAParkedWaiter) {
  rt().block_on([] {
    auto p = std::make_unique<weft::promise<int>>();
    weft::future<int> f = p->get_future();
    std::atomic<bool> waiting{false};
    auto h = weft::spawn([&] {
      waiting = true;
      return future_error_of([&] { f.get(); });
    });
    EXPECT_TRUE(yield_until([&] { return waiting.load(); }));
    p.reset();
    EXPECT_EQ(h.join(), std::future_errc::broken_promise);
    EXPECT_FALSE(f.valid());
  });
}

TEST_P(FutureTest, MoveAssigningOntoAPromiseBreaksItsOldState) {
  rt().block_on([] {
    weft::promise<int> p;
    weft::future<int> old = p.get_future();
    p = weft::promise<int>();
    EXPECT_EQ(old.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(future_error_of([&] { old.get(); }), std::future_errc::broken_promise);
    weft::future<int> fresh = p.get_future();
    p.set_value(4);
    EXPECT_EQ(fresh.get(), 4);
  });
}

TEST_P(FutureTest, SetExceptionIsRethrownByGet) {
  rt().block_on([] {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    auto h = weft::spawn([&p] { p.set_exception(std::make_exception_ptr(std::out_of_range("nope"))); });
    try {
      f.get();
      ADD_FAILURE() << "get must rethrow";
    } catch (const std::out_of_range& e) {
      EXPECT_STREQ(e.what(), "nope");
    }
    EXPECT_FALSE(f.valid());
    h.join();
  });
}

TEST_P(FutureTest, ThrowingValueCopyLeavesThePromiseUnsatisfied) {
  struct touchy {
    bool explode = false;
    touchy() = default;
    touchy(const touchy& o) : explode(o.explode) {
      if (explode) throw std::runtime_error("copy");
    }
  };
  rt().block_on([] {
    weft::promise<touchy> p;
    weft::future<touchy> f = p.get_future();
    touchy bad;
    bad.explode = true;
    EXPECT_THROW(p.set_value(bad), std::runtime_error);
    EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);
    p.set_value(touchy());
    EXPECT_FALSE(f.get().explode);
  });
}

TEST_P(FutureTest, WaitForTimesOutNeverEarlyOnAFiber) {
  rt().block_on([] {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(f.wait_for(20ms), std::future_status::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
    t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(f.wait_until(std::chrono::system_clock::now() + 15ms), std::future_status::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 15ms);
    EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);
    EXPECT_EQ(f.wait_for(-5ms), std::future_status::timeout);
    p.set_value(1);
    EXPECT_EQ(f.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(f.wait_until(std::chrono::steady_clock::now() - 1s), std::future_status::ready);
    EXPECT_EQ(f.get(), 1);
  });
}

TEST_P(FutureTest, WaitForTimesOutNeverEarlyOnAPlainThread) {
  weft::promise<void> p;
  weft::shared_future<void> f = p.get_future().share();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(f.wait_for(20ms), std::future_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  p.set_value();
  EXPECT_EQ(f.wait_for(kLimit), std::future_status::ready);
  f.get();
}

TEST_P(FutureTest, TimeoutsRacingWithSetStayConsistent) {
  const long rounds = weft_test::sized(300, 100, 50);
  rt().block_on([rounds] {
    for (long i = 0; i < rounds; ++i) {
      weft::promise<long> p;
      weft::shared_future<long> f = p.get_future().share();
      std::vector<weft::join_handle<bool>> waiters;
      for (int k = 0; k < 4; ++k) {
        waiters.push_back(weft::spawn([f, k, i] {
          auto st = f.wait_for(std::chrono::microseconds(20 * k));
          if (st == std::future_status::ready) return f.get() == i;
          // A timeout says nothing about later: the value must still arrive.
          return st == std::future_status::timeout && f.wait_for(kLimit) == std::future_status::ready && f.get() == i;
        }));
      }
      if (i % 2 == 0) weft::this_fiber::yield();
      p.set_value(i);
      for (auto& w : waiters) EXPECT_TRUE(w.join());
    }
  });
}

TEST_P(FutureTest, VoidAndReferenceSpecialisations) {
  rt().block_on([] {
    weft::promise<void> pv;
    weft::future<void> fv = pv.get_future();
    pv.set_value();
    static_assert(std::is_void_v<decltype(fv.get())>);
    fv.get();
    EXPECT_FALSE(fv.valid());

    int x = 1;
    weft::promise<int&> pr;
    weft::future<int&> fr = pr.get_future();
    auto h = weft::spawn([&] { pr.set_value(x); });
    int& r = fr.get();
    EXPECT_EQ(&r, &x);
    h.join();

    weft::promise<int&> ps;
    weft::shared_future<int&> sr = ps.get_future().share();
    ps.set_value(x);
    static_assert(std::is_same_v<decltype(sr.get()), int&>);
    sr.get() = 7;
    EXPECT_EQ(x, 7);
  });
}

TEST_P(FutureTest, MoveOnlyValuesMoveThrough) {
  rt().block_on([] {
    weft::promise<std::unique_ptr<int>> p;
    weft::future<std::unique_ptr<int>> f = p.get_future();
    p.set_value(std::make_unique<int>(9));
    std::unique_ptr<int> v = f.get();
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(*v, 9);
  });
}

TEST_P(FutureTest, SharedFutureCopiesAllSeeTheSameValue) {
  rt().block_on([] {
    weft::promise<std::string> p;
    weft::future<std::string> f = p.get_future();
    weft::shared_future<std::string> a = f.share();
    EXPECT_FALSE(f.valid());
    EXPECT_TRUE(a.valid());
    weft::shared_future<std::string> b = a;
    weft::shared_future<std::string> c;
    c = b;
    weft::shared_future<std::string> d(std::move(c));
    EXPECT_FALSE(c.valid());
    p.set_value("shared");
    static_assert(std::is_same_v<decltype(a.get()), const std::string&>);
    EXPECT_EQ(a.get(), "shared");
    EXPECT_EQ(a.get(), "shared");  // get() may be called again
    EXPECT_EQ(&a.get(), &b.get());
    EXPECT_EQ(&a.get(), &d.get());
    EXPECT_TRUE(a.valid());
  });
}

TEST_P(FutureTest, SharedFutureRethrowsToEveryCopy) {
  rt().block_on([] {
    weft::promise<int> p;
    weft::shared_future<int> a = p.get_future().share();
    weft::shared_future<int> b = a;
    p.set_exception(std::make_exception_ptr(std::logic_error("shared failure")));
    EXPECT_THROW(a.get(), std::logic_error);
    EXPECT_THROW(a.get(), std::logic_error);
    EXPECT_THROW(b.get(), std::logic_error);
  });
}

TEST_P(FutureTest, ManyFibersWaitOnOneSharedFuture) {
  const long n = weft_test::sized(2000, 500, 200);
  rt().block_on([n] {
    weft::promise<long> p;
    weft::shared_future<long> sf = p.get_future().share();
    std::atomic<long> started{0};
    std::vector<weft::join_handle<long>> hs;
    hs.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) {
      hs.push_back(weft::spawn([sf, &started] {
        started.fetch_add(1);
        if (sf.wait_for(kLimit) != std::future_status::ready) return -1L;
        return sf.get();
      }));
    }
    EXPECT_TRUE(yield_until([&] { return started.load() == n; }));
    p.set_value(77);
    long sum = 0;
    for (auto& h : hs) sum += h.join();
    EXPECT_EQ(sum, 77 * n);
  });
}

TEST_P(FutureTest, PlainThreadWaitsOnFutureSetByAFiber) {
  weft::promise<int> p;
  weft::future<int> f = p.get_future();
  std::atomic<bool> may_set{false};
  auto h = rt().spawn([&] {
    EXPECT_TRUE(yield_until([&] { return may_set.load(); }));
    p.set_value(11);
  });
  may_set = true;
  EXPECT_EQ(f.wait_for(kLimit), std::future_status::ready);  // this plain thread blocks
  EXPECT_EQ(f.get(), 11);
  h.join();
}

TEST_P(FutureTest, FiberWaitsOnFutureSetByAPlainThread) {
  weft::promise<std::string> p;
  weft::future<std::string> f = p.get_future();
  auto h = rt().spawn([&f] {
    if (f.wait_for(kLimit) != std::future_status::ready) return std::string("timeout");
    return f.get();
  });
  std::thread t([&p] { p.set_value("from a thread"); });
  EXPECT_EQ(h.join(), "from a thread");
  t.join();
}

TEST_P(FutureTest, AsyncRunsOnANewFiberWithoutBeingWaitedFor) {
  rt().block_on([] {
    std::atomic<bool> ran{false};
    std::atomic<std::uint64_t> ran_on{0};
    weft::future<int> f = weft::async([&] {
      ran_on = weft::this_fiber::get_id().value();
      ran = true;
      return 3;
    });
    // launch::async (the default policy too) starts at once: no get() needed.
    EXPECT_TRUE(yield_until([&] { return ran.load(); }));
    EXPECT_NE(ran_on.load(), weft::this_fiber::get_id().value());
    EXPECT_NE(ran_on.load(), 0u);
    EXPECT_EQ(f.wait_for(kLimit), std::future_status::ready);
    EXPECT_EQ(f.get(), 3);

    weft::future<int> g = weft::async(std::launch::async, [](int a, int b) { return a * b; }, 6, 7);
    EXPECT_EQ(g.get(), 42);
  });
}

TEST_P(FutureTest, AsyncDecayCopiesMoveOnlyArguments) {
  rt().block_on([] {
    auto p = std::make_unique<int>(8);
    weft::future<int> f = weft::async([](std::unique_ptr<int> v) { return *v * 2; }, std::move(p));
    EXPECT_EQ(f.get(), 16);
    weft::future<void> v = weft::async(std::launch::async, [] {});
    v.get();
  });
}

TEST_P(FutureTest, AsyncFutureOutlivesTheFiberThatCalledAsync) {
  // The calling fiber and everything on its stack are gone before the result is read.
  weft::future<std::string> f = rt().block_on([] {
    std::string s = "hello";
    return weft::async(
        [](std::string v) {
          weft::this_fiber::yield();
          return v + "!";
        },
        s);
  });
  EXPECT_EQ(f.wait_for(kLimit), std::future_status::ready);
  EXPECT_EQ(f.get(), "hello!");
}

TEST_P(FutureTest, AsyncPropagatesExceptions) {
  rt().block_on([] {
    weft::future<int> f = weft::async([]() -> int { throw std::invalid_argument("async failed"); });
    EXPECT_THROW(f.get(), std::invalid_argument);
    weft::future<void> d = weft::async(std::launch::deferred, [] { throw std::range_error("deferred failed"); });
    EXPECT_THROW(d.get(), std::range_error);
  });
}

TEST_P(FutureTest, LastAsyncFutureDestructorWaitsForTheTask) {
  rt().block_on([] {
    std::atomic<bool> finished{false};
    {
      weft::future<void> f = weft::async(std::launch::async, [&finished] {
        weft::this_fiber::sleep_for(20ms);
        finished = true;
      });
      weft::shared_future<void> a = f.share();
      weft::shared_future<void> b = a;
      a = weft::shared_future<void>();  // not the last one: must not wait
      EXPECT_FALSE(finished.load());
    }
    EXPECT_TRUE(finished.load());
  });
}

TEST_P(FutureTest, DeferredRunsOnTheFirstWaiterAndReportsDeferred) {
  rt().block_on([] {
    std::atomic<int> runs{0};
    std::atomic<std::uint64_t> ran_on{0};
    weft::future<int> f = weft::async(std::launch::deferred, [&](int k) {
      ++runs;
      ran_on = weft::this_fiber::get_id().value();
      return k + 1;
    }, 4);
    EXPECT_EQ(f.wait_for(10ms), std::future_status::deferred);
    EXPECT_EQ(f.wait_until(std::chrono::system_clock::now() + 10ms), std::future_status::deferred);
    EXPECT_EQ(runs.load(), 0);
    EXPECT_EQ(f.get(), 5);
    EXPECT_EQ(runs.load(), 1);
    EXPECT_EQ(ran_on.load(), weft::this_fiber::get_id().value());  // on the caller, not a new fiber

    weft::future<int> w = weft::async(std::launch::deferred, [] { return 1; });
    w.wait();
    EXPECT_EQ(w.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(w.get(), 1);
  });
}

TEST_P(FutureTest, DeferredSharedByManyFibersRunsOnce) {
  rt().block_on([] {
    std::atomic<int> runs{0};
    weft::shared_future<int> sf = weft::async(std::launch::deferred, [&runs] {
                                    ++runs;
                                    weft::this_fiber::yield();
                                    return 10;
                                  }).share();
    std::vector<weft::join_handle<int>> hs;
    for (int i = 0; i < 8; ++i) hs.push_back(weft::spawn([sf] { return sf.get(); }));
    for (auto& h : hs) EXPECT_EQ(h.join(), 10);
    EXPECT_EQ(runs.load(), 1);
  });
}

TEST(FutureDefaultRuntime, AsyncWorksFromPlainMain) {
  // No runtime set up: weft::async starts the default runtime, as weft::fiber does.
  weft::future<int> f = weft::async([] { return weft::this_fiber::get_id() != weft::fiber::id() ? 1 : 0; });
  EXPECT_EQ(f.wait_for(kLimit), std::future_status::ready);
  EXPECT_EQ(f.get(), 1);
}

TEST_P(FutureTest, PackagedTaskDeliversResultsAndExceptions) {
  rt().block_on([] {
    weft::packaged_task<int(int)> t([](int x) { return x * 2; });
    EXPECT_TRUE(t.valid());
    weft::future<int> f = t.get_future();
    auto h = weft::spawn([t = std::move(t)]() mutable { t(21); });
    EXPECT_EQ(f.wait_for(kLimit), std::future_status::ready);
    EXPECT_EQ(f.get(), 42);
    h.join();

    weft::packaged_task<void()> bad([] { throw std::domain_error("task failed"); });
    weft::future<void> bf = bad.get_future();
    bad();  // the exception goes to the future, not to the caller
    EXPECT_THROW(bf.get(), std::domain_error);
    EXPECT_EQ(future_error_of([&] { bad(); }), std::future_errc::promise_already_satisfied);
  });
}

TEST_P(FutureTest, PackagedTaskErrors) {
  rt().block_on([] {
    weft::packaged_task<int()> none;
    EXPECT_FALSE(none.valid());
    EXPECT_EQ(future_error_of([&] { (void)none.get_future(); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { none(); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { none.make_ready_at_thread_exit(); }), std::future_errc::no_state);
    EXPECT_EQ(future_error_of([&] { none.reset(); }), std::future_errc::no_state);

    weft::future<int> orphan;
    {
      weft::packaged_task<int()> t([] { return 1; });
      orphan = t.get_future();
    }
    EXPECT_EQ(future_error_of([&] { orphan.get(); }), std::future_errc::broken_promise);

    weft::packaged_task<int()> a([] { return 2; });
    weft::future<int> fa = a.get_future();
    weft::packaged_task<int()> b;
    b = std::move(a);
    EXPECT_FALSE(a.valid());
    b();
    EXPECT_EQ(fa.get(), 2);
  });
}

TEST_P(FutureTest, PackagedTaskResetGivesAFreshState) {
  rt().block_on([] {
    int calls = 0;
    weft::packaged_task<int(int)> t([&calls](int x) { return x + ++calls; });
    weft::future<int> first = t.get_future();
    t(10);
    EXPECT_EQ(first.get(), 11);
    t.reset();
    weft::future<int> second = t.get_future();
    t(10);
    EXPECT_EQ(second.get(), 12);

    t.reset();
    weft::future<int> abandoned = t.get_future();
    t.reset();  // before a call: the old state's future is broken
    EXPECT_EQ(future_error_of([&] { abandoned.get(); }), std::future_errc::broken_promise);
    weft::future<int> third = t.get_future();
    t(0);
    EXPECT_EQ(third.get(), 3);  // the same callable moved on with its captures
  });
}

TEST_P(FutureTest, PackagedTaskDeductionAndReferenceArguments) {
  rt().block_on([] {
    weft::packaged_task deduced([](int a, long b) { return a + b; });
    static_assert(std::is_same_v<decltype(deduced), weft::packaged_task<long(int, long)>>);
    weft::future<long> f = deduced.get_future();
    deduced(1, 2);
    EXPECT_EQ(f.get(), 3);

    weft::packaged_task<void(int&)> setter([](int& r) { r = 5; });
    int v = 0;
    weft::future<void> done = setter.get_future();
    setter(v);
    done.get();
    EXPECT_EQ(v, 5);

    weft::packaged_task<int&(int&)> ident([](int& r) -> int& { return r; });
    weft::future<int&> fr = ident.get_future();
    ident(v);
    EXPECT_EQ(&fr.get(), &v);
  });
}

TEST_P(FutureTest, SetValueAtThreadExitWaitsForTheFiberToEnd) {
  rt().block_on([] {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    std::atomic<bool> set{false}, may_exit{false};
    auto h = weft::spawn([&] {
      p.set_value_at_thread_exit(6);
      set = true;
      EXPECT_TRUE(yield_until([&] { return may_exit.load(); }));
    });
    EXPECT_TRUE(yield_until([&] { return set.load(); }));
    EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);  // stored, not yet ready
    EXPECT_EQ(future_error_of([&] { p.set_value(1); }), std::future_errc::promise_already_satisfied);
    may_exit = true;
    EXPECT_EQ(f.wait_for(kLimit), std::future_status::ready);
    EXPECT_EQ(f.get(), 6);
    h.join();

    weft::promise<void> pe;
    weft::future<void> fe = pe.get_future();
    weft::spawn([&pe] { pe.set_exception_at_thread_exit(std::make_exception_ptr(std::runtime_error("at exit"))); })
        .join();
    EXPECT_THROW(fe.get(), std::runtime_error);
  });
}

TEST_P(FutureTest, MakeReadyAtThreadExitOnAPlainThread) {
  weft::packaged_task<int(int)> t([](int x) { return x * 3; });
  weft::future<int> f = t.get_future();
  std::atomic<bool> called{false}, may_exit{false};
  std::thread th([&] {
    t.make_ready_at_thread_exit(5);
    called = true;
    EXPECT_TRUE(weft_test::wait_until([&] { return may_exit.load(); }));
  });
  EXPECT_TRUE(weft_test::wait_until([&] { return called.load(); }));
  EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);
  may_exit = true;
  th.join();
  EXPECT_EQ(f.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(f.get(), 15);
}

template <class T>
struct counting_allocator {
  using value_type = T;
  std::atomic<int>* live;
  explicit counting_allocator(std::atomic<int>* l) noexcept : live(l) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& o) noexcept : live(o.live) {}
  T* allocate(std::size_t n) {
    ++*live;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    --*live;
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& o) const noexcept {
    return live == o.live;
  }
};

TEST_P(FutureTest, PromiseUsesTheGivenAllocator) {
  static_assert(std::uses_allocator_v<weft::promise<int>, counting_allocator<int>>);
  rt().block_on([] {
    std::atomic<int> live{0};
    {
      weft::promise<int> p(std::allocator_arg, counting_allocator<int>(&live));
      EXPECT_EQ(live.load(), 1);
      weft::future<int> f = p.get_future();
      p.set_value(2);
      EXPECT_EQ(f.get(), 2);
      EXPECT_EQ(live.load(), 1);  // the promise still holds the state
    }
    EXPECT_EQ(live.load(), 0);
  });
}

TEST_P(FutureTest, SwapExchangesStates) {
  rt().block_on([] {
    weft::promise<int> a, b;
    weft::future<int> fa = a.get_future();
    weft::future<int> fb = b.get_future();
    swap(a, b);
    a.set_value(1);  // now b's old state
    b.set_value(2);
    EXPECT_EQ(fb.get(), 1);
    EXPECT_EQ(fa.get(), 2);

    weft::packaged_task<int()> x([] { return 1; }), y;
    swap(x, y);
    EXPECT_FALSE(x.valid());
    EXPECT_TRUE(y.valid());
  });
}

}  // namespace
