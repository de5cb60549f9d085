// The std::thread / std::jthread mirror (weft::fiber, weft::jfiber), weft::spawn + join_handle,
// block_on, this_fiber, names, pinning, fiber_local and run_blocking.
#include <algorithm>
#include <atomic>
#include <latch>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "weft_test.hpp"

using namespace std::chrono_literals;
using weft_test::RuntimeTest;

namespace {

class FiberTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(FiberTest);

TEST_P(FiberTest, BlockOnReturnsTheResult) {
  long r = rt().block_on([] {
    weft::join_handle<long> h = weft::spawn([] { return 41L; });
    weft::this_fiber::yield();
    return h.join() + 1;
  });
  EXPECT_EQ(r, 42);
}

// As std::async / std::future<T&>: a callable returning a reference hands back the object
// itself, not a copy, through join(), run_blocking and block_on.
TEST_P(FiberTest, ReferenceResultsReferToTheCalleesObject) {
  int a = 1;
  std::string s = "x";
  rt().block_on([&] {
    weft::join_handle<int&> h = weft::spawn([&]() -> int& { return a; });
    int& r = h.join();
    EXPECT_EQ(&r, &a);
    const int& c = weft::spawn([&]() -> const int& { return a; }).join();
    EXPECT_EQ(&c, &a);
    std::string& t = weft::run_blocking([&]() -> std::string& { return s; });
    EXPECT_EQ(&t, &s);
  });
  int& b = rt().block_on([&]() -> int& { return a; });
  EXPECT_EQ(&b, &a);
  std::string& u = weft::run_blocking([&]() -> std::string& { return s; });  // plain thread: inline
  EXPECT_EQ(&u, &s);
}

TEST_P(FiberTest, BlockOnRethrows) {
  EXPECT_THROW(rt().block_on([]() -> int { throw std::out_of_range("x"); }), std::out_of_range);
}

TEST_P(FiberTest, FiberPassesDecayCopiedArguments) {
  std::atomic<int> sum{0};
  rt().block_on([&] {
    std::string s = "abc";
    weft::fiber f([&sum](std::string v, int k) { sum += static_cast<int>(v.size()) + k; }, s, 4);
    s.clear();
    EXPECT_TRUE(f.joinable());
    f.join();
    EXPECT_FALSE(f.joinable());
  });
  EXPECT_EQ(sum.load(), 7);
}

TEST_P(FiberTest, JoinErrorsAreStdErrors) {
  rt().block_on([] {
    // std::thread's codes; the text says what is wrong and which call (jfiber names itself).
    const std::string not_joinable = ": not joinable (never started, moved from, already joined or detached): Invalid argument";
    weft::fiber empty;
    std::system_error e = weft_test::system_error_of([&] { empty.join(); });
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_EQ(e.what(), "weft::fiber::join" + not_joinable);
    EXPECT_EQ(weft_test::system_error_of([&] { empty.detach(); }).what(), "weft::fiber::detach" + not_joinable);
    weft::join_handle<int> none;
    EXPECT_EQ(weft_test::system_error_of([&] { none.join(); }).what(), "weft::join_handle::join" + not_joinable);
    weft::jfiber jf;
    EXPECT_EQ(weft_test::system_error_of([&] { jf.join(); }).what(), "weft::jfiber::join" + not_joinable);
    EXPECT_EQ(weft::jfiber::hardware_concurrency(), weft::fiber::hardware_concurrency());
  });
}

TEST_P(FiberTest, SelfJoinIsADeadlockError) {
  rt().block_on([] {
    weft::fiber* self = nullptr;
    std::atomic<bool> ready{false};
    std::error_code seen;
    std::string what;
    weft::fiber f([&] {
      while (!ready.load()) weft::this_fiber::yield();
      try {
        self->join();
      } catch (const std::system_error& e) {
        seen = e.code();
        what = e.what();
      }
    });
    self = &f;
    ready = true;
    f.join();
    EXPECT_EQ(seen, std::errc::resource_deadlock_would_occur);
    EXPECT_EQ(what, "weft::fiber::join: a fiber cannot join itself: Resource deadlock avoided");
  });
}

// fiber::id prints as std::thread::id does: to any character type, and the id of no fiber as
// libstdc++ prints the id of no thread, not as a number a real fiber could have.
TEST_P(FiberTest, IdsPrintToNarrowAndWideStreams) {
  rt().block_on([] {
    const weft::fiber::id me = weft::this_fiber::get_id();
    std::ostringstream os;
    std::wostringstream ws;
    os << me;
    ws << me;
    EXPECT_EQ(os.str(), std::to_string(me.value()));
    EXPECT_EQ(ws.str(), std::to_wstring(me.value()));
  });
  std::ostringstream os;
  std::wostringstream ws;
  os << weft::fiber::id();
  ws << weft::fiber::id();
  EXPECT_EQ(os.str(), "fiber::id of a non-executing fiber");
  EXPECT_EQ(ws.str(), L"fiber::id of a non-executing fiber");
}

// Self-move-assignment of a jfiber does nothing, as of a std::jthread (LWG 3788): the fiber
// is neither stopped nor joined, and the handle keeps it.
TEST_P(FiberTest, JfiberSelfMoveAssignmentChangesNothing) {
  rt().block_on([] {
    weft::jfiber j([](std::stop_token st) {
      while (!st.stop_requested()) weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
    });
    const weft::fiber::id id = j.get_id();
    weft::jfiber& same = j;
    j = std::move(same);
    EXPECT_TRUE(j.joinable());
    EXPECT_EQ(j.get_id(), id);
    EXPECT_FALSE(j.get_stop_token().stop_requested());
    j.request_stop();
    j.join();
  });
}

TEST_P(FiberTest, IdsAreUniqueAndMatchThisFiber) {
  rt().block_on([] {
    std::vector<weft::join_handle<weft::fiber::id>> hs;
    std::vector<weft::fiber::id> expected;
    for (int i = 0; i < 50; ++i) {
      hs.push_back(weft::spawn([] { return weft::this_fiber::get_id(); }));
      expected.push_back(hs.back().get_id());
    }
    std::set<weft::fiber::id> ids;
    for (std::size_t i = 0; i < hs.size(); ++i) {
      weft::fiber::id id = hs[i].join();
      EXPECT_EQ(id, expected[i]);
      EXPECT_NE(id, weft::fiber::id());
      ids.insert(id);
    }
    EXPECT_EQ(ids.size(), 50u);
    EXPECT_NE(weft::this_fiber::get_id(), weft::fiber::id());
  });
  // A plain thread has an id of its own too, as with std::this_thread::get_id(): stable, not
  // empty, and another thread's differs.
  const weft::fiber::id main_id = weft::this_fiber::get_id();
  EXPECT_NE(main_id, weft::fiber::id());
  EXPECT_EQ(weft::this_fiber::get_id(), main_id);
  weft::fiber::id other;
  std::thread([&] { other = weft::this_fiber::get_id(); }).join();
  EXPECT_NE(other, weft::fiber::id());
  EXPECT_NE(other, main_id);
}

TEST_P(FiberTest, DetachedFibersFinish) {
  std::atomic<int> done{0};
  rt().block_on([&] {
    for (int i = 0; i < 100; ++i) {
      weft::fiber([&] {
        weft::this_fiber::yield();
        ++done;
      }).detach();
    }
  });
  EXPECT_TRUE(weft_test::wait_until([&] { return done.load() == 100; }));
}

TEST_P(FiberTest, DroppedJoinHandleDetaches) {
  std::atomic<int> done{0};
  rt().block_on([&] {
    for (int i = 0; i < 100; ++i) weft::spawn([&] { ++done; });
  });
  EXPECT_TRUE(weft_test::wait_until([&] { return done.load() == 100; }));
}

// Records where it is destroyed: on the fiber that returned it, or on the thread that dropped
// its handle. Anywhere else (whatever ran next on the fiber's worker, in the exit step) a
// destructor that waits would park a fiber that is not its own, or the worker itself.
struct destruction_counts {
  std::atomic<int> all{0}, elsewhere{0};
};
struct records_where_destroyed {
  weft::fiber::id owner = weft::this_fiber::get_id();
  std::thread::id dropper;
  destruction_counts* counts;
  records_where_destroyed(std::thread::id d, destruction_counts* c) : dropper(d), counts(c) {}
  records_where_destroyed(records_where_destroyed&& o) noexcept
      : owner(o.owner), dropper(o.dropper), counts(std::exchange(o.counts, nullptr)) {}
  ~records_where_destroyed() {
    if (counts == nullptr) return;  // moved from
    if (weft::this_fiber::get_id() != owner && std::this_thread::get_id() != dropper) counts->elsewhere.fetch_add(1);
    counts->all.fetch_add(1);
  }
};

// A plain thread drops handles while their fibers return: a result is destroyed by its own
// fiber (the handle went first) or by the dropping thread (the fiber returned first), also
// when the handle goes between the fiber's last step and its exit.
TEST_P(FiberTest, ADroppedHandlesResultIsDestroyedByItsFiberOrTheDropper) {
  destruction_counts counts;
  const std::thread::id me = std::this_thread::get_id();
  constexpr int rounds = 40, per_round = 1000;
  for (int r = 0; r < rounds; ++r) {
    std::vector<weft::join_handle<records_where_destroyed>> hs;
    hs.reserve(per_round);
    for (int i = 0; i < per_round; ++i) {
      hs.push_back(rt().spawn([&, i] {
        if (i % 2 == 0) weft::this_fiber::yield();
        return records_where_destroyed(me, &counts);
      }));
    }
    hs.clear();  // races the fibers' exits
  }
  EXPECT_TRUE(weft_test::wait_until([&] { return counts.all.load() == rounds * per_round; }));
  EXPECT_EQ(counts.elsewhere.load(), 0) << "results destroyed neither on their fiber nor on the dropping thread";
}

TEST_P(FiberTest, JoinHandleCarriesMoveOnlyResults) {
  auto p = rt().block_on([] { return weft::spawn([] { return std::make_unique<int>(5); }).join(); });
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);
}

TEST_P(FiberTest, JFiberRequestsStopAndJoins) {
  std::atomic<int> iterations{0};
  rt().block_on([&] {
    weft::jfiber j([&](std::stop_token st) {
      while (!st.stop_requested()) {
        ++iterations;
        weft::this_fiber::sleep_for(1ms);
      }
    });
    while (iterations.load() < 3) weft::this_fiber::sleep_for(1ms);
  });  // destructor: request_stop + join
  EXPECT_GE(iterations.load(), 3);
}

TEST_P(FiberTest, JFiberWithoutStopToken) {
  int v = 0;
  rt().block_on([&] { weft::jfiber j([&](int x) { v = x; }, 9); });
  EXPECT_EQ(v, 9);
}

TEST_P(FiberTest, NamesAreVisible) {
  rt().block_on([] {
    auto h = weft::spawn(weft::spawn_options{.name = "worker-fiber"}, [] { return weft::this_fiber::name(); });
    EXPECT_EQ(h.join(), "worker-fiber");
    weft::this_fiber::set_name("a-very-long-name-that-is-longer-than-thirty-one-bytes");
    EXPECT_EQ(weft::this_fiber::name().size(), 31u);
  });
}

TEST_P(FiberTest, FibersListsLiveFibersWithStatusAndWhatTheyWaitOn) {
  rt().block_on([this] {
    weft::this_fiber::set_name("lister");
    weft::channel<int> gate(0);
    weft::join_handle<void> h = weft::spawn(weft::spawn_options{.name = "conn 127.0.0.1:1"}, [&gate] {
      weft::this_fiber::set_waiting_on("read request");
      int v = 0;
      gate.recv(v);
    });
    weft::fiber::id waiter = h.get_id();
    auto find = [&](weft::fiber::id id) {
      for (const weft::fiber_info& i : rt().fibers())
        if (i.id == id.value()) return std::optional<weft::fiber_info>(i);
      return std::optional<weft::fiber_info>();
    };
    ASSERT_TRUE(weft_test::wait_until([&] {
      auto i = find(waiter);
      return i && i->status == weft::fiber_status::parked;
    }));
    weft::fiber_info i = *find(waiter);
    EXPECT_EQ(i.name, "conn 127.0.0.1:1");
    EXPECT_EQ(i.waiting_on, "read request");
    auto me = find(weft::this_fiber::get_id());
    ASSERT_TRUE(me.has_value());
    EXPECT_EQ(me->status, weft::fiber_status::running);
    EXPECT_EQ(me->name, "lister");
    EXPECT_EQ(me->waiting_on, "");  // only parked fibers report it
    auto all = rt().fibers();
    EXPECT_TRUE(std::is_sorted(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.id < b.id; }));
    gate.send(1);
    h.join();
    // A finished fiber is not listed once it has switched away for the last time (join may
    // return just before that, while it is still on its worker).
    EXPECT_TRUE(weft_test::wait_until([&] { return !find(waiter).has_value(); }));
  });
}

TEST_P(FiberTest, FibersSayWhatWeftParkedThemOn) {
  // Without a set_waiting_on, the listing names the primitive each parked fiber waits on.
  rt().block_on([this] {
    weft::mutex m;
    weft::channel<int> ch(0);
    weft::latch gate(1);
    std::unique_lock held(m);
    std::vector<std::pair<weft::join_handle<void>, std::string>> waits;
    waits.emplace_back(weft::spawn([&] { std::lock_guard g(m); }), "mutex");
    waits.emplace_back(weft::spawn([&] {
                         int v;
                         ch.recv(v);
                       }),
                       "channel recv");
    waits.emplace_back(weft::spawn([&] { gate.wait(); }), "latch");
    waits.emplace_back(weft::spawn([] { weft::this_fiber::sleep_for(500ms); }), "sleep");
    auto listed = [&](weft::fiber::id id) -> std::string {
      for (const weft::fiber_info& i : rt().fibers())
        if (i.id == id.value() && i.status == weft::fiber_status::parked) return i.waiting_on;
      return "(not parked)";
    };
    for (auto& w : waits) {  // not a structured binding: clang 14 cannot capture one
      const weft::fiber::id id = w.first.get_id();
      const std::string& what = w.second;
      std::string seen;
      EXPECT_TRUE(weft_test::wait_until([&] { return (seen = listed(id)) == what; }))
          << "expected '" << what << "', listed '" << seen << "'";
    }
    held.unlock();
    ch.send(1);
    gate.count_down();
    for (auto& w : waits) w.first.join();
  });
}

TEST_P(FiberTest, FibersIsSafeWhileFibersComeGoAndRename) {
  // A plain thread lists the fibers while they are spawned, renamed and recycled: under TSan
  // this checks the locking of id and name (fiber_cb::diag_mu); everywhere, that every listed
  // name is one a fiber really had.
  std::atomic<bool> done{false};
  std::atomic<long> listed{0};
  std::thread lister([&] {
    while (!done.load()) {
      for (const weft::fiber_info& i : rt().fibers()) {
        if (!i.name.empty() && i.name != "a" && i.name != "renamed b" && i.name != "main") {
          ADD_FAILURE() << "unexpected name '" << i.name << "'";
        }
      }
      listed.fetch_add(1);
    }
  });
  rt().block_on([] {
    weft::this_fiber::set_name("main");
    const int rounds = static_cast<int>(weft_test::sized(200, 100, 40));
    for (int r = 0; r < rounds; ++r) {
      std::vector<weft::join_handle<void>> hs;
      for (int k = 0; k < 20; ++k) {
        hs.push_back(weft::spawn(weft::spawn_options{.name = k % 2 == 0 ? "a" : nullptr}, [k] {
          if (k % 2 == 1) weft::this_fiber::set_name("renamed b");
          weft::this_fiber::set_waiting_on("yield");
          weft::this_fiber::yield();
        }));
      }
      for (auto& h : hs) h.join();
    }
  });
  EXPECT_TRUE(weft_test::wait_until([&] { return listed.load() > 0; }));
  done.store(true);
  lister.join();
}

TEST_P(FiberTest, PinnedFiberNeverMigrates) {
  rt().block_on([this] {
    auto h = weft::spawn(weft::spawn_options{.pinned = true}, [this] {
      int home = weft::this_fiber::worker_index();
      std::thread::id tid = std::this_thread::get_id();
      int moves = 0;
      for (int i = 0; i < 2000; ++i) {
        weft::this_fiber::yield();
        if (i % 100 == 0) weft::this_fiber::sleep_for(50us);
        if (weft::this_fiber::worker_index() != home || std::this_thread::get_id() != tid) ++moves;
      }
      (void)this;
      return moves;
    });
    // Keep the other workers hungry so they would steal if they could.
    std::vector<weft::join_handle<void>> others;
    for (int i = 0; i < 8; ++i)
      others.push_back(weft::spawn([] {
        for (int k = 0; k < 500; ++k) weft::this_fiber::yield();
      }));
    EXPECT_EQ(h.join(), 0);
    for (auto& o : others) o.join();
  });
}

TEST_P(FiberTest, FiberLocalIsPerFiber) {
  static weft::fiber_local<int> counter;
  static weft::fiber_local<std::string> label;
  rt().block_on([] {
    std::vector<weft::join_handle<bool>> hs;
    for (int i = 0; i < 64; ++i) {
      hs.push_back(weft::spawn([i] {
        *label = std::to_string(i);
        for (int k = 0; k < 20; ++k) {
          ++*counter;
          weft::this_fiber::yield();
        }
        return *counter == 20 && *label == std::to_string(i);
      }));
    }
    for (auto& h : hs) EXPECT_TRUE(h.join());
  });
  *counter = 7;  // a plain thread has its own value too
  EXPECT_EQ(*counter, 7);
}

struct dtor_probe {
  static std::atomic<int> destroyed;
  ~dtor_probe() { ++destroyed; }
};
std::atomic<int> dtor_probe::destroyed{0};

TEST_P(FiberTest, FiberLocalValuesAreDestroyedAtFiberExit) {
  static weft::fiber_local<dtor_probe> probe;
  dtor_probe::destroyed = 0;
  rt().block_on([] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 10; ++i) hs.push_back(weft::spawn([] { (void)probe.get(); }));
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(dtor_probe::destroyed.load(), 10);
}

struct local_probe {
  static std::atomic<int> destroyed;
  int value = 0;
  ~local_probe() { ++destroyed; }
};
std::atomic<int> local_probe::destroyed{0};

TEST_P(FiberTest, ShortLivedFiberLocalsReuseTheirSlotsAndNeverSeeOldValues) {
  // fiber_local members of short-lived objects: a running fiber's slot table stays as small as
  // the fiber_locals alive at once, a value left by a destroyed fiber_local is destroyed when
  // its slot is reused, and the new fiber_local never sees it.
  local_probe::destroyed = 0;
  rt().block_on([] {
    const int n = 10000;
    for (int i = 0; i < n; ++i) {
      weft::fiber_local<local_probe> l;
      EXPECT_EQ(l->value, 0) << "round " << i << " saw a destroyed fiber_local's value";
      l->value = i + 1;
    }
    // Each round's value but the last was destroyed by the next round reusing the slot.
    EXPECT_GE(local_probe::destroyed.load(), n - 1);
    weft::fiber_local<int> a, b;
    *a = 1;
    *b = 2;
    EXPECT_EQ(*a, 1);
    EXPECT_EQ(*b, 2);
  });
  EXPECT_EQ(local_probe::destroyed.load(), 10000) << "the last value goes with its fiber";
}

TEST_P(FiberTest, RunBlockingParksTheFiberNotTheWorker) {
  rt().block_on([] {
    std::atomic<bool> release{false};
    std::atomic<int> progress{0};
    // The blocking call waits on a plain atomic: if it blocked the worker, the ticker could
    // not run on a 1-worker runtime and this would hang (the watchdog would fail it).
    auto blocker = weft::spawn([&] {
      return weft::run_blocking([&] {
        while (!release.load()) std::this_thread::sleep_for(100us);
        return std::this_thread::get_id();
      });
    });
    auto ticker = weft::spawn([&] {
      for (int i = 0; i < 20; ++i) {
        ++progress;
        weft::this_fiber::sleep_for(100us);
      }
      release = true;
    });
    ticker.join();
    std::thread::id pool_thread = blocker.join();
    EXPECT_EQ(progress.load(), 20);
    EXPECT_NE(pool_thread, std::this_thread::get_id());
  });
}

TEST_P(FiberTest, RunBlockingRethrowsAndWorksOnPlainThreads) {
  rt().block_on([] {
    EXPECT_THROW(weft::run_blocking([]() -> int { throw std::runtime_error("io"); }), std::runtime_error);
  });
  EXPECT_EQ(weft::run_blocking([] { return 3; }), 3);
}

TEST(BlockingPoolTest, FiberLocalsOfPoolThreadsAreDestroyedWhenTheRuntimeIs) {
  // A fiber_local used inside run_blocking lives on the pool thread, which outlives the call.
  // Destroying the runtime ends those threads; their values must be gone by the time the
  // runtime's destructor returns, not at some later thread exit (or never, at process exit).
  static weft::fiber_local<dtor_probe> probe;  // dtor_probe: counts destructions (above)
  constexpr int threads = 4;
  for (int round = 0; round < 20; ++round) {
    dtor_probe::destroyed = 0;
    {
      weft::runtime rt(weft::runtime_options{.workers = 2, .blocking_threads_max = threads});
      rt.block_on([] {
        std::latch all_in(threads);  // every call on its own pool thread
        std::vector<weft::join_handle<void>> hs;
        for (int i = 0; i < threads; ++i) {
          hs.push_back(weft::spawn([&] {
            weft::run_blocking([&] {
              (void)probe.get();
              all_in.arrive_and_wait();
            });
          }));
        }
        for (auto& h : hs) h.join();
      });
    }
    ASSERT_EQ(dtor_probe::destroyed.load(), threads) << "round " << round;
  }
}

TEST_P(FiberTest, PlainThreadJoinBlocksOnlyItself) {
  std::atomic<bool> go{false};
  auto h = rt().spawn([&] {
    while (!go.load()) weft::this_fiber::sleep_for(100us);
    return 5;
  });
  std::thread joiner([&] { EXPECT_EQ(h.join(), 5); });
  // The runtime keeps running fibers while a plain thread waits on one of them.
  int r = rt().block_on([] { return weft::spawn([] { return 2; }).join(); });
  EXPECT_EQ(r, 2);
  go = true;
  joiner.join();
}

TEST_P(FiberTest, SeveralRuntimesCoexist) {
  weft::runtime other(weft::runtime_options{.workers = 1});
  int a = rt().block_on([&] {
    EXPECT_EQ(weft::runtime::current(), &rt());
    return other.block_on([&] {
      EXPECT_EQ(weft::runtime::current(), &other);
      return weft::spawn([] { return 1; }).join();
    });
  });
  EXPECT_EQ(a, 1);
  weft_test::expect_no_leaks(other);
}

TEST(RuntimeOptionsTest, OutOfRangeOptionsAreRefusedByName) {
  // Each refusal names the field, the value given and what it wants, before any thread starts.
  auto refusal = [](weft::runtime_options o) -> std::string {
    try {
      weft::runtime rt(o);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "(accepted)";
  };
  EXPECT_EQ(refusal({.workers = 1, .run_queue_capacity = 1000}),
            "weft::runtime_options::run_queue_capacity is 1000: wants a power of two from 4 to 16777216 (default 256)");
  EXPECT_EQ(refusal({.workers = 1, .run_queue_capacity = 2}),
            "weft::runtime_options::run_queue_capacity is 2: wants a power of two from 4 to 16777216 (default 256)");
  EXPECT_EQ(refusal({.workers = 1, .stack_size = 0}),
            "weft::runtime_options::stack_size is 0: wants 16384 (16 KiB) to 1073741824 bytes (1 GiB; default 256 KiB)");
  EXPECT_EQ(refusal({.workers = 1, .stack_size = SIZE_MAX - 100}).substr(0, 46),
            "weft::runtime_options::stack_size is 184467440");
  EXPECT_EQ(refusal({.workers = 5000}), "weft::runtime_options::workers is 5000: wants 0 (one per core) to 1024");
  EXPECT_EQ(refusal({.workers = 1, .blocking_threads_max = 0}),
            "weft::runtime_options::blocking_threads_max is 0: wants at least 1 (run_blocking would wait forever; "
            "default 64)");
  // The edges of each range run.
  weft::runtime small(weft::runtime_options{.workers = 1, .stack_size = 16 * 1024, .run_queue_capacity = 4});
  EXPECT_EQ(small.block_on([] { return weft::spawn([] { return 7; }).join(); }), 7);
  EXPECT_EQ(small.options().run_queue_capacity, 4u);
  EXPECT_EQ(small.options().stack_size, 16u * 1024);
}

TEST(DefaultRuntime, FiberWorksFromPlainMain) {
  int v = 0;
  weft::fiber f([&] { v = 1; });
  f.join();
  EXPECT_EQ(v, 1);
  EXPECT_GE(weft::runtime::default_runtime().stats().workers, 1u);
  EXPECT_EQ(weft::spawn([] { return 3; }).join(), 3);
}

TEST(FiberDeathTest, EscapingExceptionTerminatesNamingTheFiber) {
  EXPECT_DEATH(
      {
        weft::runtime rt(weft::runtime_options{.workers = 1});
        rt.block_on([] {
          weft::spawn(weft::spawn_options{.name = "doomed"}, [] {
            weft::fiber f([] { throw std::runtime_error("boom"); });
            f.join();
          }).join();
        });
      },
      "exception escaped fiber [0-9]+ \"\": boom");
}

TEST(FiberDeathTest, JoinableFiberDestroyedTerminates) {
  EXPECT_DEATH(
      {
        weft::runtime rt(weft::runtime_options{.workers = 1});
        rt.block_on([] { weft::fiber f([] {}); });
      },
      "destroyed while joinable");
}

TEST(FiberDeathTest, AssigningOverAJoinableFiberTerminatesNamingIt) {
  EXPECT_DEATH(
      {
        weft::fiber f([] {});
        f = weft::fiber([] {});
      },
      "weft::fiber [0-9]+ \"\" assigned to while joinable \\(join or detach it first\\)");
}

TEST(FiberTest, SwapIsFoundUnqualifiedAsForStdThread) {
  // Ported code calls swap(a, b) unqualified on std::thread / std::jthread; it must still compile.
  std::atomic<int> ran{0};
  weft::fiber a([&ran] { ran.fetch_add(1); });
  weft::fiber b;
  swap(a, b);
  EXPECT_FALSE(a.joinable());
  ASSERT_TRUE(b.joinable());
  b.join();
  weft::jfiber c([&ran](std::stop_token st) { ran.fetch_add(st.stop_possible() ? 1 : 0); });
  weft::jfiber d;
  swap(c, d);
  EXPECT_FALSE(c.joinable());
  ASSERT_TRUE(d.joinable());
  d.join();
  EXPECT_EQ(ran.load(), 2);
}

}  // namespace
