// Shutdown (T14 and the runtime part of T15): destroying a runtime unwinds every fiber that has
// not finished — parked, sleeping, runnable or never started — running its destructors, within
// a bounded time and without leaking stacks.
#include <algorithm>
#include <atomic>
#include <ctime>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "weft_test.hpp"

using namespace std::chrono_literals;

namespace {

std::atomic<long> g_live{0};

struct raii_counter {
  raii_counter() { g_live.fetch_add(1); }
  ~raii_counter() { g_live.fetch_sub(1); }
};

void descend(int depth, std::atomic<int>& parked) {
  raii_counter c;
  if (depth == 0) {
    parked.fetch_add(1);
    weft::this_fiber::sleep_for(1h);
    return;
  }
  descend(depth - 1, parked);
}

TEST(ShutdownTest, UnwindsDeeplySuspendedFibers) {
  // T14: 1000 fibers suspended 20 frames deep, each frame holding a RAII counter.
  const int n = static_cast<int>(weft_test::sized(1000, 1000, 500));
  std::atomic<int> parked{0};
  g_live = 0;
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 2});
  for (int i = 0; i < n; ++i) rt->spawn([&] { descend(19, parked); });
  ASSERT_TRUE(weft_test::wait_until([&] { return parked.load() == n; }));
  EXPECT_EQ(g_live.load(), 20L * n);
  auto t0 = std::chrono::steady_clock::now();
  rt.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(g_live.load(), 0);
}

TEST(ShutdownTest, UnwindsEveryKindOfWaitQuickly) {
  // Fibers sleeping for an hour, parked with no deadline, joining a sleeping fiber, yielding
  // forever (always runnable), and never started: shutdown ends them all within a second and
  // destroys everything they own.
  std::atomic<int> destroyed{0}, ready{0};
  struct guard {
    std::atomic<int>* n;
    ~guard() { n->fetch_add(1); }
  };
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 2});
  rt->spawn([&] {
    guard g{&destroyed};
    ready++;
    weft::this_fiber::sleep_for(1h);
  });
  rt->spawn([&] {
    guard g{&destroyed};
    ready++;
    weft::park(weft::prepare_wait(), std::nullopt);
  });
  rt->spawn([&] {
    guard g{&destroyed};
    auto inner = weft::spawn([&] {
      guard g2{&destroyed};
      weft::this_fiber::sleep_for(1h);
    });
    ready++;
    inner.join();
  });
  for (int i = 0; i < 2; ++i) {
    rt->spawn([&] {
      guard g{&destroyed};
      ready++;
      for (;;) weft::this_fiber::yield();
    });
  }
  ASSERT_TRUE(weft_test::wait_until([&] { return ready.load() == 5; }));
  auto t0 = std::chrono::steady_clock::now();
  rt.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(destroyed.load(), 6);
}

TEST(ShutdownTest, NeverStartedFibersAreDestroyedNotRun) {
  // The only worker is stuck in a raw blocking call (as a badly ported fiber would be) while
  // fibers are queued behind it and the runtime is destroyed: they never run, and what their
  // callables own is destroyed.
  struct guard {
    std::atomic<int>* n;
    ~guard() { n->fetch_add(1); }
  };
  std::atomic<int> destroyed{0}, ran{0};
  std::atomic<bool> blocking{false};
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
  rt->spawn([&] {
    blocking = true;
    std::this_thread::sleep_for(300ms);  // blocks the worker itself, on purpose
    weft::this_fiber::yield();
  });
  ASSERT_TRUE(weft_test::wait_until([&] { return blocking.load(); }));
  for (int i = 0; i < 100; ++i) {
    auto payload = std::make_shared<guard>(guard{&destroyed});
    destroyed = 0;  // the temporary above counted once
    rt->spawn([&ran, payload] { ran++; });
  }
  destroyed = 0;
  rt.reset();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(destroyed.load(), 100);
}

TEST(ShutdownTest, JoinOfAnUnwoundFiberReportsCancellation) {
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
  std::atomic<bool> started{false};
  std::error_code seen;
  std::thread joiner;
  {
    auto h = rt->spawn([&] {
      started = true;
      weft::this_fiber::sleep_for(1h);
      return 1;
    });
    ASSERT_TRUE(weft_test::wait_until([&] { return started.load(); }));
    joiner = std::thread([&, h = std::move(h)]() mutable {
      try {
        h.join();
      } catch (const std::system_error& e) {
        seen = e.code();
      }
    });
  }
  ASSERT_TRUE(weft_test::wait_until([&] { return rt->stats().outside_joiners == 1; }));
  rt.reset();  // the joiner is inside join(): shutdown wakes it and waits for it to leave
  joiner.join();
  EXPECT_EQ(seen, std::errc::operation_canceled);
}

// A handle kept past its runtime's destruction (the natural declaration order: the handle
// declared before the runtime). The runtime unwound the fiber and unmapped its stack; the
// handle's control block stays (orphaned), so join() names the fiber and the misuse instead
// of reading unmapped memory, and dropping the handle does nothing.
TEST(ShutdownTest, AHandleThatOutlivesItsRuntimeSaysSoOnJoin) {
  weft::fiber f;
  weft::join_handle<int> h;
  weft::fiber dropped;
  weft::jfiber jf;
  auto kept = std::make_shared<int>(7);
  weft::join_handle<std::shared_ptr<int>> unjoined_result;
  std::uint64_t f_id = 0;
  {
    weft::runtime rt(weft::runtime_options{.workers = 1});
    rt.block_on([&] {
      f = weft::fiber([] { weft::this_fiber::sleep_for(1h); });
      weft::fiber::id fid = f.get_id();
      std::ostringstream os;
      os << fid;
      f_id = std::stoull(os.str());
      h = weft::spawn(weft::spawn_options{.name = "late result"}, [] {
        weft::this_fiber::sleep_for(1h);
        return 1;
      });
      dropped = weft::fiber([] { weft::this_fiber::sleep_for(1h); });
      jf = weft::jfiber([](std::stop_token) { weft::this_fiber::sleep_for(1h); });
      std::atomic<bool> returning{false};
      unjoined_result = weft::spawn([&returning, kept] {
        returning = true;
        return kept;
      });
      ASSERT_TRUE(weft_test::wait_until([&] { return returning.load(); }, 10s));
      weft::this_fiber::sleep_for(20ms);  // past its return: the result sits in the payload
    });
    EXPECT_EQ(kept.use_count(), 2) << "the finished fiber's result holds the second reference";
  }
  // The runtime destroyed the result nobody joined, as it destroys the stack it lived on.
  EXPECT_EQ(kept.use_count(), 1);
  auto expect_orphan_error = [](auto&& join, const std::string& what) {
    try {
      join();
      ADD_FAILURE() << "join() after the runtime's destruction returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::no_such_process);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("outlived its runtime"), std::string::npos) << e.what();
    }
  };
  expect_orphan_error([&] { f.join(); }, "weft::fiber::join: fiber " + std::to_string(f_id) + " \"\"");
  expect_orphan_error([&] { h.join(); }, "weft::join_handle::join: fiber");
  expect_orphan_error([&] { h.join(); }, "\"late result\"");
  EXPECT_TRUE(f.joinable());
  f.detach();  // after the runtime: does nothing, and does not crash
  EXPECT_FALSE(f.joinable());
  expect_orphan_error([&] { jf.join(); }, "weft::jfiber::join: fiber");
  expect_orphan_error([&] { unjoined_result.join(); }, "outlived its runtime");
  // `dropped`, `jf` (whose destructor would request stop and join) and `h` are destroyed here,
  // still joinable: nothing runs any more, so nothing is joined and nothing terminates.
}

TEST(ShutdownTest, SpawnDuringShutdownIsRefusedWithAClearError) {
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
  std::atomic<bool> refused{false};
  std::atomic<bool> sleeping{false};
  rt->spawn([&] {
    struct on_unwind {
      std::atomic<bool>* refused;
      ~on_unwind() {
        try {
          weft::spawn([] {});
        } catch (const std::system_error& e) {
          refused->store(e.code() == std::errc::operation_canceled);
        }
      }
    } probe{&refused};
    sleeping = true;
    weft::this_fiber::sleep_for(1h);
  });
  ASSERT_TRUE(weft_test::wait_until([&] { return sleeping.load(); }));
  rt.reset();
  EXPECT_TRUE(refused.load());
}

TEST(ShutdownDeathTest, DestroyingARuntimeFromItsOwnFiberIsReported) {
  EXPECT_DEATH(
      {
        auto* rt = new weft::runtime(weft::runtime_options{.workers = 1});
        rt->block_on([rt] { delete rt; });
      },
      "destroyed from its own fiber");
}

TEST(ShutdownDeathTest, AFiberThatSwallowsItsUnwindIsNamedEveryFiveSeconds) {
  // A catch (...) that swallows forced_unwind keeps the fiber waiting in a loop at shutdown;
  // each wait returns at once. After 5 s the runtime names the fiber and the likely cause.
  // Here the loop gives up after 6 s, so the destructor, and the child, end.
  EXPECT_EXIT(
      {
        std::atomic<bool> give_up{false};
        std::thread timer([&] {
          std::this_thread::sleep_for(6s);
          give_up = true;
        });
        weft::channel<int> never(0);      // outlives the runtime: the unwound fiber still uses it
        std::atomic<bool> looping{false};
        {
          weft::runtime rt(weft::runtime_options{.workers = 1});
          weft::spawn(weft::spawn_options{.runtime = &rt, .name = "swallower"}, [&] {
            looping = true;
            while (!give_up.load()) {
              try {
                int v;
                never.recv(v);
              } catch (...) {  // the mistake: forced_unwind is swallowed too
              }
            }
          });
          while (!looping.load()) std::this_thread::yield();
        }
        timer.join();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "weft: runtime shutdown has waited 5s for fiber [0-9]+ \"swallower\" to unwind; it keeps waiting \\(on "
      "[^)]*\\): either a catch \\(\\.\\.\\.\\) swallowed weft::detail::forced_unwind");
}

}  // namespace

namespace {

TEST(ShutdownTest, JoinerOfAnotherRuntimeUnwoundWhileWaiting) {
  // A fiber of runtime B waits in join() on a fiber of runtime A; B is destroyed (its fiber is
  // unwound), then A's fiber finishes: it must not wake the dead joiner's ticket.
  weft::runtime a(weft::runtime_options{.workers = 1});
  std::atomic<bool> release{false}, joining{false};
  auto target = std::make_shared<weft::join_handle<int>>(a.spawn([&] {
    while (!release.load()) weft::this_fiber::sleep_for(200us);
    return 1;
  }));
  {
    weft::runtime b(weft::runtime_options{.workers = 1});
    b.spawn([target, &joining] {
      joining = true;
      target->join();
    });
    ASSERT_TRUE(weft_test::wait_until([&] { return joining.load() && a.stats().outside_joiners == 1; }));
  }
  release = true;
  EXPECT_TRUE(weft_test::wait_until([&] { return a.stats().live_fibers == 1; }));  // only the handle's
  target.reset();
  weft_test::expect_no_leaks(a);
}

TEST(ShutdownTest, RuntimeDestroyedFromAFiberOfAnotherRuntime) {
  weft::runtime outer(weft::runtime_options{.workers = 1});
  std::atomic<int> unwound{0};
  outer.block_on([&] {
    auto inner = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
    std::atomic<bool> started{false};
    inner->spawn([&] {
      struct probe {
        std::atomic<int>* n;
        ~probe() { n->fetch_add(1); }
      } p{&unwound};
      started = true;
      weft::this_fiber::sleep_for(1h);
    });
    while (!started.load()) weft::this_fiber::sleep_for(100us);
    inner.reset();  // from a fiber of `outer`: unwinds inner's fiber and returns here
  });
  EXPECT_EQ(unwound.load(), 1);
  weft_test::expect_no_leaks(outer);
}

struct throwing_move {
  throwing_move() = default;
  throwing_move(const throwing_move&) { throw std::runtime_error("copy"); }
  void operator()() const {}
};

TEST(ShutdownTest, ABodyThatFailsToConstructReleasesItsStackOnce) {
  weft::runtime rt(weft::runtime_options{.workers = 1});
  rt.block_on([] {
    throwing_move f;
    for (int i = 0; i < 100; ++i) EXPECT_THROW(weft::fiber{f}, std::runtime_error);
  });
  weft_test::expect_no_leaks(rt);
  EXPECT_LE(rt.stats().live_fibers, 0u);
}

// Found by review: waits that a fiber begins while it is being unwound (a destructor that
// receives, locks or parks).
// A fiber being unwound at shutdown starts a new wait (a destructor that receives, locks, joins):
// park() runs publish and then CASes its own fresh ticket to canceled. If an outside thread
// claims the ticket between the publish and that CAS, park() returns `notified` at once and the
// fiber finishes, but the claimer's resume step (schedule() on this runtime) is still to come,
// and settle_waits' wait for outside schedule() calls is long over. Here the outside thread
// claims inside the publish step (the same interleaving, made deterministic).
TEST(ShutdownTest, AWaitBegunWhileUnwindingWaitsForItsClaimersResumeStep) {
  struct shared_t {
    std::atomic<bool> parked{false};
    std::atomic<bool> published{false};
    std::atomic<bool> claimed{false};
    std::atomic<bool> destroyed{false};
    std::atomic<int> park_result{0};
    weft::wait_ticket ticket;
  } sh;
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
  rt->spawn([&sh] {
    struct waits_in_destructor {
      shared_t* sh;
      ~waits_in_destructor() {
        weft::wait_ticket t = weft::prepare_wait();
        sh->ticket = t;
        auto r = weft::park(
            t, std::nullopt,
            [](void* p) {
              auto* s = static_cast<shared_t*>(p);
              s->published.store(true);
              // The outside thread claims now (bounded: a correct park would not need it).
              for (int i = 0; i < 2000 && !s->claimed.load(); ++i) std::this_thread::sleep_for(1ms);
            },
            sh);
        sh->park_result.store(static_cast<int>(r));
      }
    } g{&sh};
    sh.parked.store(true);
    weft::this_fiber::sleep_for(1h);
  }).detach();
  ASSERT_TRUE(weft_test::wait_until([&] { return sh.parked.load(); }));
  std::thread waker([&] {
    while (!sh.published.load()) std::this_thread::yield();
    bool won = sh.ticket.claim();
    sh.claimed.store(true);
    EXPECT_TRUE(won);
    // The resume step comes later (as pending_wakes' does, after the primitive's lock).
    for (int i = 0; i < 200 && !sh.destroyed.load(); ++i) std::this_thread::sleep_for(1ms);
    EXPECT_FALSE(sh.destroyed.load()) << "~runtime returned while a claimed wake-up of its fiber was still "
                                         "to be resumed (park returned "
                                      << sh.park_result.load() << ")";
    if (won) sh.ticket.resume();
  });
  rt.reset();
  sh.destroyed.store(true);
  waker.join();
}

// The same with the library's own primitive: a plain thread keeps trying to send while the
// receiving fiber's destructor receives during unwinding. Whoever wins, nothing is used after
// it is freed (ASan, TSan), shutdown ends, and a value the sender handed over was received.
TEST(ShutdownTest, APlainThreadSendsToAFiberReceivingWhileUnwound) {
  const int rounds = static_cast<int>(weft_test::sized(50, 20, 5));
  int received_while_unwinding = 0;
  for (int i = 0; i < rounds; ++i) {
    weft::channel<int> ch(0);
    std::atomic<bool> parked{false};
    std::atomic<bool> got{false};
    std::atomic<bool> sent{false};
    std::atomic<bool> gone{false};
    auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
    rt->spawn([&] {
      struct recv_in_destructor {
        weft::channel<int>* ch;
        std::atomic<bool>* got;
        ~recv_in_destructor() {
          // Each receive while unwinding publishes a fresh ticket and then cancels it itself: a
          // short window; many tries make the plain thread's send hit it.
          for (int k = 0; k < 100000; ++k) {
            int v = 0;
            if (ch->recv(v) == weft::channel_status::ok) {
              got->store(v == 1);
              return;
            }
          }
        }
      } g{&ch, &got};
      parked = true;
      weft::this_fiber::sleep_for(1h);
    }).detach();
    ASSERT_TRUE(weft_test::wait_until([&] { return parked.load(); }));
    std::thread sender([&] {
      while (!gone.load()) {
        if (ch.try_send(1) == weft::channel_status::ok) {
          sent = true;
          return;
        }
      }
    });
    rt.reset();
    gone = true;
    sender.join();
    EXPECT_EQ(sent.load(), got.load()) << "round " << i << ": a value sent was not received";
    if (got.load()) ++received_while_unwinding;
  }
  RecordProperty("received_while_unwinding", received_while_unwinding);
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// An unwound fiber's destructor waits 3 s for a plain thread. Shutdown waits for it, and the
// thread that destroys the runtime does not burn its core for the whole wait: past a second
// without progress it sleeps between rounds.
TEST(ShutdownTest, AShutdownThatWaitsForAnOutsideThreadDoesNotSpinOnItsCore) {
  std::atomic<bool> parked{false};
  std::atomic<bool> released{false};
  std::atomic<bool> finished{false};
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
  rt->spawn([&] {
    struct waits_for_release {
      std::atomic<bool>* released;
      std::atomic<bool>* finished;
      ~waits_for_release() {
        while (!released->load()) weft::this_fiber::yield();  // each yield ends a round
        finished->store(true);
      }
    } g{&released, &finished};
    parked = true;
    weft::this_fiber::sleep_for(1h);
  }).detach();
  ASSERT_TRUE(weft_test::wait_until([&] { return parked.load(); }));
  std::thread releaser([&] {
    std::this_thread::sleep_for(3s);
    released = true;
  });
  const double cpu_before = thread_cpu_seconds();
  rt.reset();
  const double cpu = thread_cpu_seconds() - cpu_before;
  releaser.join();
  EXPECT_TRUE(finished.load()) << "shutdown returned before the destructor finished";
  // About 1 s of spinning, then a sleep per round; 3 s would mean it spun throughout.
  EXPECT_LT(cpu, 2.0) << "the shutdown thread used " << cpu << " s of CPU waiting 3 s for an outside thread";
}

}  // namespace

// A waker on a plain thread has claimed a parked fiber's wait (wait_ticket::claim) but not yet
// resumed it when the runtime is destroyed. A waker between the two steps may still read
// records on the fiber's stack, and its resume step enters the runtime: shutdown must wait for
// that step, then unwind the fiber, never free the stack or the runtime under it.
TEST(ShutdownTest, WaitsForAClaimedWakeUpToBeResumedBeforeUnwinding) {
  std::atomic<bool> parked{false};
  std::atomic<bool> unwound{false};
  weft::wait_ticket ticket;
  auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
  rt->spawn([&] {
    struct on_unwind {
      std::atomic<bool>* flag;
      ~on_unwind() { flag->store(true); }
    } guard{&unwound};
    ticket = weft::prepare_wait();
    weft::park(ticket, std::nullopt, [](void* p) { static_cast<std::atomic<bool>*>(p)->store(true); }, &parked);
  }).detach();
  ASSERT_TRUE(weft_test::wait_until([&] { return parked.load(); }));
  ASSERT_TRUE(ticket.claim());
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    rt.reset();
    destroyed = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(destroyed.load()) << "shutdown finished while a claimed wake-up was still to be resumed";
  EXPECT_FALSE(unwound.load()) << "the fiber was unwound before its waker resumed it";
  ticket.resume();
  destroyer.join();
  EXPECT_TRUE(destroyed.load());
  EXPECT_TRUE(unwound.load());
}

// A plain thread hands a value to a fiber parked in a channel receive while the runtime is
// being destroyed: whichever comes first (the hand-off or shutdown's cancel), nothing is used
// after it is freed (run under ASan and TSan in CI) and neither side hangs.
TEST(ShutdownTest, APlainThreadSendsWhileTheRuntimeIsDestroyed) {
  const int rounds = static_cast<int>(weft_test::sized(200, 50, 50));
  for (int i = 0; i < rounds; ++i) {
    weft::channel<int> ch(0);
    std::atomic<bool> receiving{false};
    std::atomic<bool> gone{false};
    auto rt = std::make_unique<weft::runtime>(weft::runtime_options{.workers = 1});
    rt->spawn([&] {
      receiving = true;
      int v = 0;
      ch.recv(v);
    }).detach();
    ASSERT_TRUE(weft_test::wait_until([&] { return receiving.load(); }));
    std::thread sender([&] {
      while (!gone.load() && ch.try_send(1) != weft::channel_status::ok) std::this_thread::yield();
    });
    if (i % 2 == 0) std::this_thread::yield();
    rt.reset();
    gone = true;
    sender.join();
  }
}

namespace {

// True once `rt` has exactly `n` live fibers, all parked.
bool all_parked(const weft::runtime& rt, std::size_t n) {
  std::vector<weft::fiber_info> fs = rt.fibers();
  if (fs.size() != n) return false;
  for (const weft::fiber_info& f : fs) {
    if (f.status != weft::fiber_status::parked) return false;
  }
  return true;
}

// Found by audit. Fiber B's destructor locks a weft::mutex that fiber A holds while it sleeps.
// Unwinding A releases the mutex. Shutdown used to unwind one fiber at a time to the end, so
// with B first its lock() retried for ever (every park returns at once while unwinding) and A
// was never reached. B now gives the shutdown thread back while it waits; A is unwound, and B's
// next try gets the mutex. Both orders must finish.
void destructor_locks_a_mutex_held_by_a_parked_fiber(bool holder_first) {
  weft_test::finishes_within(holder_first ? "shutdown (holder spawned first)" : "shutdown (holder spawned second)", 20s,
                             [holder_first] {
    weft::mutex m;
    std::atomic<bool> held{false}, b_parked{false}, b_locked{false};
    {
      weft::runtime rt(weft::runtime_options{.workers = 1});
      auto spawn_holder = [&] {
        rt.spawn([&] {
          std::lock_guard g(m);
          held = true;
          weft::this_fiber::sleep_for(1h);
        }).detach();
      };
      auto spawn_b = [&] {
        rt.spawn([&] {
          struct deregister {
            weft::mutex& m;
            std::atomic<bool>& locked;
            ~deregister() {
              std::lock_guard g(m);
              locked = true;
            }
          } d{m, b_locked};
          b_parked = true;
          weft::this_fiber::sleep_for(1h);
        }).detach();
      };
      if (holder_first) {
        spawn_holder();
        ASSERT_TRUE(weft_test::wait_until([&] { return held.load(); }));
        spawn_b();
      } else {
        spawn_b();
        ASSERT_TRUE(weft_test::wait_until([&] { return b_parked.load(); }));
        spawn_holder();
      }
      ASSERT_TRUE(weft_test::wait_until([&] { return all_parked(rt, 2); }));
    }
    EXPECT_TRUE(b_locked.load());
    EXPECT_TRUE(m.try_lock()) << "shutdown left the mutex locked";
    m.unlock();
  });
}

// A detached fiber destroys its result itself, after it returned. A result whose destructor
// waits (it locks a mutex a parked fiber holds) is resumed at shutdown, not unwound (a
// destructor is noexcept) nor skipped: skipped, the destructor never finished and its wait
// record stayed in the mutex's list, on a stack the runtime then unmapped.
struct locks_when_destroyed {
  weft::mutex* m;
  std::atomic<bool>* destroyed;
  locks_when_destroyed(weft::mutex* mu, std::atomic<bool>* d) : m(mu), destroyed(d) {}
  locks_when_destroyed(locks_when_destroyed&& o) noexcept : m(std::exchange(o.m, nullptr)), destroyed(o.destroyed) {}
  ~locks_when_destroyed() {
    if (m == nullptr) return;  // moved from
    std::lock_guard g(*m);
    destroyed->store(true);
  }
};

TEST(ShutdownTest, ADetachedFibersResultWhoseDestructorWaitsIsFinishedAtShutdown) {
  weft_test::finishes_within("shutdown (a detached fiber's result destructor that waits)", 20s, [] {
    weft::mutex m;  // outlives the runtime: its wait list must be clean afterwards
    std::atomic<bool> held{false}, destroyed{false};
    {
      weft::runtime rt(weft::runtime_options{.workers = 1});
      rt.spawn([&] {
        std::lock_guard g(m);
        held = true;
        weft::this_fiber::sleep_for(1h);
      }).detach();
      ASSERT_TRUE(weft_test::wait_until([&] { return held.load(); }));
      // The fiber returns only after the detach: had it finished first, detach() would drop the
      // last reference here and run the destructor on this thread, which then blocks on m.
      std::atomic<bool> detached{false};
      rt.spawn([&] {
        weft_test::wait_until([&] { return detached.load(); });
        return locks_when_destroyed(&m, &destroyed);  // its result waits for m
      }).detach();
      detached = true;
      ASSERT_TRUE(weft_test::wait_until([&] {
        auto fs = rt.fibers();
        return std::count_if(fs.begin(), fs.end(), [](const weft::fiber_info& i) {
                 return i.status == weft::fiber_status::parked && i.waiting_on == "mutex";
               }) == 1;
      }));
    }
    EXPECT_TRUE(destroyed.load()) << "the result's destructor never finished";
    // The mutex is free and its list clean: a lock from this thread takes it at once.
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST(ShutdownTest, DestructorLocksAMutexHeldByAParkedFiberHolderFirst) {
  destructor_locks_a_mutex_held_by_a_parked_fiber(true);
}

TEST(ShutdownTest, DestructorLocksAMutexHeldByAParkedFiberHolderSecond) {
  destructor_locks_a_mutex_held_by_a_parked_fiber(false);
}

// As above, and the holder's destructor then joins the waiter. Unwound first, the waiter is
// suspended (not finished) in its lock() when the holder's join reaches it: the join must let
// it run again, not unwind it a second time. Both spawn orders (the unwind order follows it).
void destructor_joins_a_fiber_that_waits_for_its_mutex(bool holder_first) {
  weft_test::finishes_within("shutdown (a join of a fiber waiting for the joiner's mutex)", 20s, [holder_first] {
    weft::mutex m;
    std::atomic<int> ready{0}, finished{0};
    std::shared_ptr<weft::join_handle<void>> waiter;  // set before ~runtime, read while unwinding
    {
      weft::runtime rt(weft::runtime_options{.workers = 1});
      auto spawn_holder = [&] {
        rt.spawn([&] {
          struct joins {
            std::shared_ptr<weft::join_handle<void>>& h;
            std::atomic<int>& finished;
            ~joins() {
              try {
                h->join();
              } catch (const std::system_error&) {  // operation_canceled: it was unwound
              }
              finished.fetch_add(1);
            }
          } j{waiter, finished};
          std::lock_guard g(m);  // released before ~joins runs
          ready.fetch_add(1);
          weft::this_fiber::sleep_for(1h);
        }).detach();
      };
      auto spawn_waiter = [&] {
        waiter = std::make_shared<weft::join_handle<void>>(rt.spawn([&] {
          struct locks {
            weft::mutex& m;
            std::atomic<int>& finished;
            ~locks() {
              std::lock_guard g(m);
              finished.fetch_add(1);
            }
          } d{m, finished};
          ready.fetch_add(1);
          weft::this_fiber::sleep_for(1h);
        }));
      };
      if (holder_first) {
        spawn_holder();
        ASSERT_TRUE(weft_test::wait_until([&] { return ready.load() == 1; }));
        spawn_waiter();
      } else {
        spawn_waiter();
        ASSERT_TRUE(weft_test::wait_until([&] { return ready.load() == 1; }));
        spawn_holder();
      }
      ASSERT_TRUE(weft_test::wait_until([&] { return ready.load() == 2 && all_parked(rt, 2); }));
    }
    EXPECT_EQ(finished.load(), 2);
    EXPECT_TRUE(m.try_lock()) << "shutdown left the mutex locked";
    m.unlock();
  });
}

TEST(ShutdownTest, DestructorJoinsAFiberThatWaitsForItsMutexHolderFirst) {
  destructor_joins_a_fiber_that_waits_for_its_mutex(true);
}

TEST(ShutdownTest, DestructorJoinsAFiberThatWaitsForItsMutexHolderSecond) {
  destructor_joins_a_fiber_that_waits_for_its_mutex(false);
}

// Found by audit. A run_blocking() job waits for something only unwinding a parked fiber
// releases. Shutdown used to drain the blocking pool before it unwound any fiber, and waited
// for the job for ever ("waited 5s for 1 run_blocking() call(s)"). Now the pool runs on while
// the fibers are unwound, and the fiber waiting for the job is unwound once it has returned.
TEST(ShutdownTest, RunBlockingWaitingForAMutexAParkedFiberHoldsDoesNotStopShutdown) {
  weft_test::finishes_within("shutdown (a run_blocking job waits for a fiber's mutex)", 20s, [] {
    weft::mutex m;
    std::atomic<bool> held{false}, in_job{false}, job_locked{false};
    {
      weft::runtime rt(weft::runtime_options{.workers = 2});
      rt.spawn([&] {
        std::lock_guard g(m);
        held = true;
        weft::this_fiber::sleep_for(1h);
      }).detach();
      ASSERT_TRUE(weft_test::wait_until([&] { return held.load(); }));
      rt.spawn([&] {
        weft::run_blocking([&] {
          in_job = true;
          std::lock_guard g(m);  // a plain-thread wait: until the holder is unwound
          job_locked = true;
        });
      }).detach();
      ASSERT_TRUE(weft_test::wait_until([&] { return in_job.load() && all_parked(rt, 2); }));
      // The job blocks in lock() right after setting in_job; there is no way to see it parked.
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(job_locked.load());
  });
}

TEST(ShutdownTest, RunBlockingWaitingForAPromiseAParkedFiberOwnsDoesNotStopShutdown) {
  weft_test::finishes_within("shutdown (a run_blocking job waits for a fiber's promise)", 20s, [] {
    std::atomic<bool> parked{false}, in_job{false}, broken{false};
    {
      weft::runtime rt(weft::runtime_options{.workers = 2});
      weft::promise<int> p;
      weft::future<int> fut = p.get_future();
      rt.spawn([&parked, owned = std::make_shared<weft::promise<int>>(std::move(p))] {
        parked = true;
        weft::this_fiber::sleep_for(1h);
        owned->set_value(1);
      }).detach();
      ASSERT_TRUE(weft_test::wait_until([&] { return parked.load(); }));
      rt.spawn([&] {
        weft::run_blocking([&] {
          in_job = true;
          try {
            (void)fut.get();
          } catch (const std::future_error& e) {
            broken = e.code() == std::future_errc::broken_promise;
          }
        });
      }).detach();
      ASSERT_TRUE(weft_test::wait_until([&] { return in_job.load() && all_parked(rt, 2); }));
      std::this_thread::sleep_for(20ms);  // as above: the job blocks in get() right away
    }
    EXPECT_TRUE(broken.load()) << "unwinding the promise's owner should have broken the promise";
  });
}

// A fiber parked in run_blocking() is unwound only after its job has returned (the job lives on
// its stack), also when another fiber's destructor joins it meanwhile: that join waits (the
// joiner suspends) instead of unwinding it early. Here the job returns only once the joiner's
// destructor has released it. Both spawn orders.
void join_of_a_fiber_in_run_blocking(bool joiner_first) {
  weft_test::finishes_within("shutdown (a join of a fiber in run_blocking)", 20s, [joiner_first] {
    std::atomic<bool> release{false}, in_job{false}, job_done{false}, joined{false};
    std::atomic<int> early{-1};  // 1: the fiber was unwound while its job still ran
    std::shared_ptr<weft::join_handle<void>> blocker;  // set before ~runtime, read while unwinding
    std::atomic<int> ready{0};
    {
      weft::runtime rt(weft::runtime_options{.workers = 2});
      auto spawn_joiner = [&] {
        rt.spawn([&] {
          struct releases_and_joins {
            std::atomic<bool>& release;
            std::shared_ptr<weft::join_handle<void>>& h;
            std::atomic<bool>& joined;
            ~releases_and_joins() {
              release = true;
              try {
                h->join();
              } catch (const std::system_error&) {  // operation_canceled: it was unwound
              }
              joined = true;
            }
          } d{release, blocker, joined};
          ready.fetch_add(1);
          weft::this_fiber::sleep_for(1h);
        }).detach();
      };
      auto spawn_blocker = [&] {
        blocker = std::make_shared<weft::join_handle<void>>(rt.spawn([&] {
          struct checks {
            std::atomic<bool>& job_done;
            std::atomic<int>& early;
            ~checks() { early = job_done.load() ? 0 : 1; }
          } c{job_done, early};
          ready.fetch_add(1);
          weft::run_blocking([&] {
            in_job = true;
            while (!release.load()) std::this_thread::sleep_for(1ms);
            std::this_thread::sleep_for(20ms);  // a job that takes a while to return
            job_done = true;
          });
          weft::this_fiber::sleep_for(1h);  // not reached before shutdown (release comes then)
        }));
      };
      if (joiner_first) {
        spawn_joiner();
        ASSERT_TRUE(weft_test::wait_until([&] { return ready.load() == 1; }));
        spawn_blocker();
      } else {
        spawn_blocker();
        ASSERT_TRUE(weft_test::wait_until([&] { return ready.load() == 1; }));
        spawn_joiner();
      }
      ASSERT_TRUE(weft_test::wait_until([&] { return in_job.load() && all_parked(rt, 2); }));
    }
    EXPECT_TRUE(joined.load());
    EXPECT_EQ(early.load(), 0) << "a fiber was unwound while its run_blocking() job still ran";
  });
}

TEST(ShutdownTest, AJoinWaitsForTheRunBlockingCallOfItsTargetJoinerFirst) { join_of_a_fiber_in_run_blocking(true); }

TEST(ShutdownTest, AJoinWaitsForTheRunBlockingCallOfItsTargetJoinerSecond) { join_of_a_fiber_in_run_blocking(false); }

}  // namespace
