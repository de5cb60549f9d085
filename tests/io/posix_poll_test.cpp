// weft::posix::poll and the sleeps (sleep, usleep, nanosleep): a timeout, a ready descriptor
// and a wake-up, each parking the fiber and never its worker (watchdogs as in posix_test.cpp).
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <random>
#include <numeric>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "posix_test_util.hpp"
#include "weft_test.hpp"

using namespace posix_test;

namespace {

// --- poll -------------------------------------------------------------------------------------

TEST(PosixTest, PollTimesOutAfterTheTimeoutWithoutBlockingTheWorker) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  std::atomic<bool> stop{false};
  long ticks_during = 0;
  outcome p, empty;
  steady::duration took{}, took_empty{};
  rt.block_on([&] {
    long ticks = 0;
    auto ticker = weft::spawn([&] {
      while (!stop) {
        ++ticks;
        weft::this_fiber::sleep_for(1ms);
      }
    });
    pollfd pfd{sp.a.get(), POLLIN, 0};
    long before = ticks;
    steady::time_point t0 = steady::now();
    p = {posix::poll(&pfd, 1, 50), errno};
    took = steady::now() - t0;
    ticks_during = ticks - before;
    EXPECT_EQ(pfd.revents, 0);
    t0 = steady::now();
    empty = {posix::poll(nullptr, 0, 30), errno};
    took_empty = steady::now() - t0;
    stop = true;
    ticker.join();
  });
  EXPECT_EQ(p.result, 0) << std::strerror(p.error);
  EXPECT_GE(took, 50ms);
  EXPECT_GT(ticks_during, 0) << "poll blocked the only worker";
  EXPECT_EQ(empty.result, 0);
  EXPECT_GE(took_empty, 30ms);
}

TEST(PosixTest, PollReturnsAReadyDescriptorAtOnce) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  outcome p;
  short revents = 0, out_revents = 0;
  rt.block_on([&] {
    EXPECT_EQ(posix::write(sp.b.get(), "z", 1), 1);
    pollfd pfd[2] = {{sp.a.get(), POLLIN, 0}, {sp.b.get(), POLLOUT, 0}};
    p = {posix::poll(pfd, 2, 10'000), errno};
    revents = pfd[0].revents;
    out_revents = pfd[1].revents;
  });
  EXPECT_EQ(p.result, 2) << std::strerror(p.error);
  EXPECT_EQ(revents, POLLIN);
  EXPECT_EQ(out_revents, POLLOUT);
}

TEST(PosixTest, PollWakesWhenADescriptorBecomesReady) {
  // Parked with a long timeout; another fiber makes the third entry readable. A negative
  // number is ignored and a repeated one keeps its own events, as poll(2) says.
  weft::runtime rt(one_worker());
  fd_pair p1 = make_socketpair(), p2 = make_socketpair();
  watchdog wd([&] { ::shutdown(p2.a.get(), SHUT_RDWR); });
  std::atomic<bool> polling{false};
  outcome p;
  pollfd pfd[4] = {{p1.a.get(), POLLIN, 0}, {-1, POLLIN, 0}, {p2.a.get(), POLLIN, 0}, {p2.a.get(), POLLPRI, 0}};
  steady::duration took{};
  rt.block_on([&] {
    auto poller = weft::spawn([&] {
      polling = true;
      steady::time_point t0 = steady::now();
      p = {posix::poll(pfd, 4, 20'000), errno};
      took = steady::now() - t0;
    });
    EXPECT_TRUE(yield_until([&] { return polling.load(); }));
    EXPECT_EQ(posix::write(p2.b.get(), "!", 1), 1);
    poller.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(p.result, 1) << std::strerror(p.error);
  EXPECT_EQ(pfd[0].revents, 0);
  EXPECT_EQ(pfd[1].revents, 0);
  EXPECT_EQ(pfd[2].revents, POLLIN);
  EXPECT_EQ(pfd[3].revents, 0);
  EXPECT_LT(took, 10s) << "woken by readiness, not by the timeout";
}

TEST(PosixTest, PollOnADescriptorNoEpollSetTakesStillParksAndWakes) {
  // poll parks by putting the descriptors into an epoll set of its own. An epoll descriptor
  // nested as deep as the kernel allows cannot join another set (ELOOP), so there poll falls
  // back to short sleeps between zero-timeout polls; it must still time out and wake.
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  std::vector<unique_fd> chain;
  int top = sp.a.get();
  for (;;) {
    unique_fd ep(::epoll_create1(EPOLL_CLOEXEC));
    ASSERT_GE(ep.get(), 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, top, &ev) != 0) {
      ASSERT_EQ(errno, ELOOP);
      break;
    }
    top = ep.get();
    chain.push_back(std::move(ep));
    ASSERT_LT(chain.size(), 64u);
  }
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  std::atomic<bool> polling{false};
  outcome timed, woke;
  short revents = 0;
  steady::duration took{};
  rt.block_on([&] {
    pollfd pfd{top, POLLIN, 0};
    steady::time_point t0 = steady::now();
    timed = {posix::poll(&pfd, 1, 30), errno};
    took = steady::now() - t0;
    auto poller = weft::spawn([&] {
      pollfd p{top, POLLIN, 0};
      polling = true;
      woke = {posix::poll(&p, 1, 20'000), errno};
      revents = p.revents;
    });
    // One worker: the writer runs while poll waits only if poll parked the fiber.
    EXPECT_TRUE(yield_until([&] { return polling.load(); }));
    EXPECT_EQ(posix::write(sp.b.get(), "w", 1), 1);
    poller.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(timed.result, 0) << std::strerror(timed.error);
  EXPECT_GE(took, 30ms);
  EXPECT_EQ(woke.result, 1) << std::strerror(woke.error);
  EXPECT_EQ(revents, POLLIN);
}

// --- sleeping ---------------------------------------------------------------------------------

TEST(PosixTest, SleepsParkTheFiberNotTheWorker) {
  weft::runtime rt(one_worker());
  struct measured {
    long result = -1;
    long ticks = 0;
    steady::duration took{};
  };
  measured us, ns, s;
  timespec rem{7, 7};
  rt.block_on([&] {
    std::atomic<bool> stop{false};
    long ticks = 0;
    auto ticker = weft::spawn([&] {
      while (!stop) {
        ++ticks;
        weft::this_fiber::sleep_for(1ms);
      }
    });
    auto run = [&](measured& m, auto call) {
      long before = ticks;
      steady::time_point t0 = steady::now();
      m.result = call();
      m.took = steady::now() - t0;
      m.ticks = ticks - before;
    };
    run(us, [] { return static_cast<long>(posix::usleep(30'000)); });
    run(ns, [&] {
      timespec req{0, 30'000'000};
      return static_cast<long>(posix::nanosleep(&req, &rem));
    });
    run(s, [] { return static_cast<long>(posix::sleep(1)); });
    stop = true;
    ticker.join();
  });
  EXPECT_EQ(us.result, 0);
  EXPECT_GE(us.took, 30ms);
  EXPECT_GT(us.ticks, 0) << "usleep blocked the only worker";
  EXPECT_EQ(ns.result, 0);
  EXPECT_GE(ns.took, 30ms);
  EXPECT_GT(ns.ticks, 0) << "nanosleep blocked the only worker";
  EXPECT_EQ(rem.tv_sec, 0);
  EXPECT_EQ(rem.tv_nsec, 0);
  EXPECT_EQ(s.result, 0);
  EXPECT_GE(s.took, 1s);
  EXPECT_GT(s.ticks, 0) << "sleep blocked the only worker";
}

TEST(PosixTest, NanosleepRejectsInvalidTimes) {
  weft::runtime rt(one_worker());
  auto try_sleep = [](timespec req) {
    errno = 0;
    int r = posix::nanosleep(&req, nullptr);
    return outcome{r, errno};
  };
  outcome big, negative_ns, negative_s, null_req;
  rt.block_on([&] {
    big = try_sleep({0, 1'000'000'000});
    negative_ns = try_sleep({0, -1});
    negative_s = try_sleep({-1, 0});
    errno = 0;
    null_req = {posix::nanosleep(nullptr, nullptr), errno};
  });
  for (const outcome& o : {big, negative_ns, negative_s}) {
    EXPECT_EQ(o.result, -1);
    EXPECT_EQ(o.error, EINVAL);
  }
  EXPECT_EQ(null_req.result, -1);
  EXPECT_EQ(null_req.error, EFAULT);
  // The same answer from libc on a plain thread.
  outcome libc = try_sleep({0, 1'000'000'000});
  EXPECT_EQ(libc.result, -1);
  EXPECT_EQ(libc.error, EINVAL);
}

// --- close while polling ------------------------------------------------------------------

TEST(PosixTest, CloseWakesAFiberPollingTheDescriptor) {
  // The kernel drops a closed descriptor from an epoll set without an event: poll(-1) on a
  // fiber must still return, with POLLNVAL for the closed entry (what a poll begun after the
  // close reports) and nothing for the others. Both a registered socket and a pipe weft never
  // registered (first seen by this poll).
  for (bool registered : {true, false}) {
    weft::runtime rt(one_worker());
    fd_pair sp = make_socketpair();
    fd_pair idle = make_pipe();
    int fd = sp.a.release();  // closed by the test through posix::close
    watchdog wd([&] { (void)!::write(idle.b.get(), "x", 1); });
    std::atomic<bool> polling{false};
    outcome r, c;
    ::pollfd fds[2] = {{idle.a.get(), POLLIN, 0}, {fd, POLLIN, 0}};
    rt.block_on([&] {
      if (registered) {
        char b;
        EXPECT_EQ(posix::recv(fd, &b, 1, MSG_DONTWAIT), -1);  // registers it
      }
      auto poller = weft::spawn([&] {
        polling = true;
        r = {posix::poll(fds, 2, -1), errno};
      });
      EXPECT_TRUE(yield_until([&] { return polling.load(); }));  // one worker: it is parked
      c = {posix::close(fd), errno};
      poller.join();
    });
    wd.done();
    EXPECT_FALSE(wd.fired()) << "poll(-1) went on waiting after its descriptor was closed";
    EXPECT_EQ(c.result, 0);
    EXPECT_EQ(r.result, 1) << std::strerror(r.error);
    EXPECT_EQ(fds[0].revents, 0);
    EXPECT_EQ(fds[1].revents, POLLNVAL);
  }
}

TEST(PosixTest, ClosesWakeExactlyTheirPollersAmongManyAcrossWorkers) {
  // Many fibers poll at once, each its own socket plus six shared idle pipes whose numbers
  // fall in six different buckets of the waiter lists (more than a poll lists without
  // allocating). Closing the sockets one by one, in a shuffled order, from another fiber
  // ends each poll with POLLNVAL on its own entry and nothing on the shared ones; every other
  // poll keeps waiting until its own close.
  constexpr int pollers = 200;
  constexpr int shared = 6;
  weft::runtime rt(weft::runtime_options{.workers = 2});
  std::vector<fd_pair> idle;
  for (int i = 0; i < shared; ++i) idle.push_back(make_pipe());
  std::vector<int> own;
  std::vector<fd_pair> keep;  // the sockets' other ends, open throughout
  for (int i = 0; i < pollers; ++i) {
    fd_pair sp = make_socketpair();
    own.push_back(sp.a.release());
    keep.push_back(std::move(sp));
  }
  watchdog wd([&] { for (auto& p : idle) (void)!::write(p.b.get(), "x", 1); }, 20s);
  std::vector<std::array<::pollfd, shared + 1>> fds(pollers);
  std::vector<outcome> r(pollers);
  std::atomic<int> finished{0};
  rt.block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < pollers; ++i) {
      for (int k = 0; k < shared; ++k) fds[i][k] = {idle[k].a.get(), POLLIN, 0};
      fds[i][shared] = {own[i], POLLIN, 0};
      hs.push_back(weft::spawn([&, i] {
        r[i] = {posix::poll(fds[i].data(), shared + 1, -1), errno};
        ++finished;
      }));
    }
    // Every poller parked in its poll before the first close: a late one could be handed a
    // just-closed number for its own epoll set.
    auto parked_in_poll = [&rt] {
      int k = 0;
      for (const weft::fiber_info& f : rt.fibers())
        if (f.status == weft::fiber_status::parked && f.waiting_on == "I/O read") ++k;
      return k;
    };
    ASSERT_TRUE(yield_until([&] { return parked_in_poll() == pollers; }, 20s)) << parked_in_poll() << " parked";
    std::vector<int> order(pollers);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(7));
    for (int n = 0; n < pollers; ++n) {
      EXPECT_EQ(posix::close(own[order[n]]), 0);
      if (!yield_until([&] { return finished.load() >= n + 1; }, 5s)) {
        ADD_FAILURE() << "close " << n << " woke nobody";
        break;  // the watchdog wakes the rest through the shared pipes
      }
      EXPECT_EQ(finished.load(), n + 1) << "close " << n << " ended more than its own poll";
    }
    for (auto& h : hs) h.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "a poll went on waiting after its descriptor was closed";
  std::set<std::size_t> buckets;
  for (auto& p : idle) buckets.insert(static_cast<std::size_t>(p.a.get()) % 64);
  EXPECT_GT(buckets.size(), 4u) << "the shared pipes no longer span more buckets than fit inline";
  for (int i = 0; i < pollers; ++i) {
    EXPECT_EQ(r[i].result, 1) << "poller " << i << ": " << std::strerror(r[i].error);
    for (int k = 0; k < shared; ++k) EXPECT_EQ(fds[i][k].revents, 0) << "poller " << i;
    EXPECT_EQ(fds[i][shared].revents, POLLNVAL) << "poller " << i;
  }
}

TEST(PosixTest, APollBegunAfterCloseWhileAReadIsStillInFlightSeesItClosed) {
  // The read keeps the number open until it leaves; a poll begun after close returned waits on
  // the old description, which the kernel drops from the poll's set without an event when the
  // number really closes. It must still return at once then, with POLLNVAL (posix.hpp).
  weft::runtime rt(one_worker());
  fd_pair p = make_pipe();
  int fd = p.a.release();
  std::atomic<bool> reading{false};
  outcome r, rd;
  ::pollfd pf{fd, POLLIN, 0};
  steady::time_point t0 = steady::now();
  rt.block_on([&] {
    auto reader = weft::spawn([&] {
      char b;
      reading = true;
      rd = {posix::read(fd, &b, 1), errno};
    });
    EXPECT_TRUE(yield_until([&] { return reading.load(); }));
    EXPECT_EQ(posix::close(fd), 0);  // the reader is woken but has not left: the number stays open
    r = {posix::poll(&pf, 1, 10000), errno};
    reader.join();
  });
  steady::duration waited = steady::now() - t0;
  EXPECT_EQ(rd.result, -1);
  EXPECT_EQ(rd.error, ECANCELED);
  EXPECT_EQ(r.result, 1) << std::strerror(r.error);
  EXPECT_EQ(pf.revents, POLLNVAL);
  EXPECT_LT(waited, 5s) << "the poll waited for its timeout";
}

TEST(PosixTest, ANumberClosedAndReusedIsNotReportedClosedToItsNewPoller) {
  // Plain threads open and close pipes through weft::posix::close while a fiber polls pipes of
  // its own: a close kicks pollers by number, and the poller must tell its own, live
  // descriptor from the closed one that had its number (never POLLNVAL for a live one).
  weft::runtime rt(one_worker());
  std::atomic<bool> stop{false};
  std::vector<std::thread> closers;
  for (int i = 0; i < 2; ++i)
    closers.emplace_back([&] {
      while (!stop.load()) {
        int q[2];
        if (::pipe(q) != 0) continue;
        posix::close(q[0]);
        posix::close(q[1]);
      }
    });
  int spurious = 0, rounds = 0;
  rt.block_on([&] {
    steady::time_point until = steady::now() + 1s;
    while (steady::now() < until) {
      int q[2];
      if (::pipe(q) != 0) continue;
      ::pollfd pf[2] = {{q[0], POLLIN, 0}, {q[1], 0, 0}};
      int n = posix::poll(pf, 2, 1);
      if (n > 0 && ((pf[0].revents | pf[1].revents) & POLLNVAL)) ++spurious;
      ++rounds;
      ::close(q[0]);
      ::close(q[1]);
    }
  });
  stop = true;
  for (auto& t : closers) t.join();
  EXPECT_EQ(spurious, 0) << "POLLNVAL for a live descriptor in " << spurious << " of " << rounds << " polls";
  EXPECT_GT(rounds, 10);
}

}  // namespace
