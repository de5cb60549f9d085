// weft::posix: POSIX results and blocking semantics over real socket pairs, pipes, UDP and
// loopback TCP, with the fibers parking instead of their worker. Most tests run on one worker:
// there, a call that blocked the thread would stop every other fiber, so each such test has a
// watchdog that unblocks the descriptor after a deadline and the test fails on it. Flags
// shared between fibers and threads are std::atomic with the default (seq_cst) ordering.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <weft/posix.hpp>

#include "posix_test_util.hpp"
#include "weft_test.hpp"

using namespace posix_test;

using namespace std::chrono_literals;
namespace posix = weft::posix;
using steady = std::chrono::steady_clock;

namespace {

// --- parking ----------------------------------------------------------------------------------

TEST(PosixTest, ReadParksTheFiberNotTheWorker) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  std::atomic<bool> reading{false};
  std::string got;
  outcome r, w;
  rt.block_on([&] {
    auto reader = weft::spawn([&] {
      char buf[16];
      reading = true;
      ssize_t n = posix::read(sp.a.get(), buf, sizeof buf);
      r = {n, errno};
      if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
    });
    auto writer = weft::spawn([&] {
      // One worker: this fiber runs while the reader is inside read() only if read() parked it.
      EXPECT_TRUE(yield_until([&] { return reading.load(); }));
      w = {posix::write(sp.b.get(), "ping", 4), errno};
    });
    reader.join();
    writer.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "read() blocked the only worker";
  EXPECT_EQ(w.result, 4) << std::strerror(w.error);
  EXPECT_EQ(r.result, 4) << std::strerror(r.error);
  EXPECT_EQ(got, "ping");
  EXPECT_TRUE(has_flag(sp.a.get(), F_GETFL, O_NONBLOCK)) << "weft switches a registered descriptor";
  weft_test::expect_no_leaks(rt);
}

TEST(PosixTest, ReadvWritevMoveScatteredBuffers) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  std::atomic<bool> reading{false};
  char x[3] = {}, y[5] = {};
  outcome r, w;
  rt.block_on([&] {
    auto reader = weft::spawn([&] {
      iovec iov[2] = {{x, sizeof x}, {y, sizeof y}};
      reading = true;
      r = {posix::readv(sp.a.get(), iov, 2), errno};
    });
    EXPECT_TRUE(yield_until([&] { return reading.load(); }));
    char p1[] = "ab", p2[] = "cde", p3[] = "fgh";
    iovec out[3] = {{p1, 2}, {p2, 3}, {p3, 3}};
    w = {posix::writev(sp.b.get(), out, 3), errno};
    reader.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(w.result, 8) << std::strerror(w.error);
  EXPECT_EQ(r.result, 8) << std::strerror(r.error);
  EXPECT_EQ(std::string(x, 3), "abc");
  EXPECT_EQ(std::string(y, 5), "defgh");
  // Out-of-range counts are EINVAL as from writev(2), not sendmsg's EMSGSIZE.
  rt.block_on([&] {
    iovec one{x, 1};
    errno = 0;
    EXPECT_EQ(posix::writev(sp.b.get(), &one, -1), -1);
    EXPECT_EQ(errno, EINVAL);
  });
}

TEST(PosixTest, RecvParksUntilSendAndDontwaitNeverParks) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  std::atomic<bool> receiving{false};
  char buf[8] = {};
  outcome r, dw, s;
  rt.block_on([&] {
    dw = {posix::recv(sp.a.get(), buf, sizeof buf, MSG_DONTWAIT), errno};
    auto receiver = weft::spawn([&] {
      receiving = true;
      r = {posix::recv(sp.a.get(), buf, sizeof buf, 0), errno};
    });
    EXPECT_TRUE(yield_until([&] { return receiving.load(); }));
    s = {posix::send(sp.b.get(), "abc", 3, 0), errno};
    receiver.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(dw.result, -1);
  EXPECT_EQ(dw.error, EAGAIN) << "MSG_DONTWAIT returns at once, as from libc";
  EXPECT_EQ(s.result, 3) << std::strerror(s.error);
  EXPECT_EQ(r.result, 3) << std::strerror(r.error);
  EXPECT_EQ(std::string(buf, 3), "abc");
}

TEST(PosixTest, RecvfromSendtoCarryDatagramsAndTheirSource) {
  weft::runtime rt(one_worker());
  sockaddr_in raddr{}, saddr{};
  unique_fd rx = bound_socket(SOCK_DGRAM, raddr);
  unique_fd tx = bound_socket(SOCK_DGRAM, saddr);
  watchdog wd([&] { ::shutdown(rx.get(), SHUT_RDWR); });
  std::atomic<bool> receiving{false};
  char buf[32] = {};
  sockaddr_in from{};
  socklen_t fromlen = sizeof from;
  outcome r, s;
  rt.block_on([&] {
    auto receiver = weft::spawn([&] {
      receiving = true;
      r = {posix::recvfrom(rx.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fromlen), errno};
    });
    EXPECT_TRUE(yield_until([&] { return receiving.load(); }));
    s = {posix::sendto(tx.get(), "datagram", 8, 0, sa(raddr), sizeof raddr), errno};
    receiver.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(s.result, 8) << std::strerror(s.error);
  EXPECT_EQ(r.result, 8) << std::strerror(r.error);
  EXPECT_EQ(std::string(buf, 8), "datagram");
  EXPECT_EQ(fromlen, sizeof from);
  EXPECT_EQ(from.sin_port, saddr.sin_port);
  EXPECT_EQ(from.sin_addr.s_addr, saddr.sin_addr.s_addr);
}

// libc's blocking calls leave errno alone when they succeed; one that parked first (its first
// try failed with EAGAIN) must too, or `errno = 0; n = read(...); if (errno) ...` misfires.
TEST(PosixTest, ASuccessfulCallThatWaitedLeavesErrnoAlone) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  rt.block_on([&] {
    auto writer = weft::spawn([&] {
      weft::this_fiber::sleep_for(30ms);
      posix::write(sp.b.get(), "z", 1);
    });
    char c = 0;
    errno = 0;
    ssize_t n = posix::read(sp.a.get(), &c, 1);
    int after = errno;
    EXPECT_EQ(n, 1);
    EXPECT_EQ(after, 0) << "errno " << std::strerror(after) << " after a read that succeeded";
    errno = EDOM;  // the caller's value, whatever it is, stays
    auto again = weft::spawn([&] {
      weft::this_fiber::sleep_for(30ms);
      posix::write(sp.b.get(), "z", 1);
    });
    n = posix::read(sp.a.get(), &c, 1);
    after = errno;
    EXPECT_EQ(n, 1);
    EXPECT_EQ(after, EDOM);
    writer.join();
    again.join();
    // Sleeps park on the runtime's own timed waits, whose timeouts must not show either.
    errno = 0;
    EXPECT_EQ(posix::usleep(2000), 0);
    after = errno;
    EXPECT_EQ(after, 0) << std::strerror(after);
    timespec ts{0, 2'000'000};
    EXPECT_EQ(posix::nanosleep(&ts, nullptr), 0);
    after = errno;
    EXPECT_EQ(after, 0) << std::strerror(after);
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
}

// --- TCP --------------------------------------------------------------------------------------

TEST(PosixTest, AcceptAndConnectOverLoopbackTcp) {
  weft::runtime rt(one_worker());
  sockaddr_in addr{};
  unique_fd listener = tcp_listener(addr);
  unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  unique_fd server;
  watchdog wd([&] {
    ::shutdown(listener.get(), SHUT_RDWR);
    ::shutdown(client.get(), SHUT_RDWR);
  });
  outcome a, c;
  bool accepted_blocking = false, accepted_cloexec = true;
  std::string echoed, heard;
  rt.block_on([&] {
    auto acceptor = weft::spawn([&] {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      int fd = posix::accept(listener.get(), reinterpret_cast<sockaddr*>(&peer), &len);
      a = {fd, errno};
      if (fd < 0) return;
      server = unique_fd(fd);
      // POSIX: the new descriptor is blocking and inherits no close-on-exec.
      accepted_blocking = !has_flag(fd, F_GETFL, O_NONBLOCK);
      accepted_cloexec = has_flag(fd, F_GETFD, FD_CLOEXEC);
      char buf[5];
      if (!read_exact(fd, buf, 5)) return;
      heard.assign(buf, 5);
      std::string back(heard.rbegin(), heard.rend());
      write_all(fd, back.data(), back.size());
    });
    c = {posix::connect(client.get(), sa(addr), sizeof addr), errno};
    if (c.result == 0) {
      write_all(client.get(), "hello", 5);
      char buf[5];
      if (read_exact(client.get(), buf, 5)) echoed.assign(buf, 5);
    }
    acceptor.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(c.result, 0) << std::strerror(c.error);
  EXPECT_GE(a.result, 0) << std::strerror(a.error);
  EXPECT_TRUE(accepted_blocking);
  EXPECT_FALSE(accepted_cloexec);
  EXPECT_EQ(heard, "hello");
  EXPECT_EQ(echoed, "olleh");
}

TEST(PosixTest, Accept4HonoursTheCallersFlags) {
  weft::runtime rt(one_worker());
  sockaddr_in addr{};
  unique_fd listener = tcp_listener(addr);
  unique_fd c1(::socket(AF_INET, SOCK_STREAM, 0)), c2(::socket(AF_INET, SOCK_STREAM, 0));
  unique_fd s1, s2;
  watchdog wd([&] { ::shutdown(listener.get(), SHUT_RDWR); });
  rt.block_on([&] {
    auto acceptor = weft::spawn([&] {
      s1 = unique_fd(posix::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      s2 = unique_fd(posix::accept4(listener.get(), nullptr, nullptr, 0));
    });
    EXPECT_EQ(posix::connect(c1.get(), sa(addr), sizeof addr), 0) << std::strerror(errno);
    EXPECT_EQ(posix::connect(c2.get(), sa(addr), sizeof addr), 0) << std::strerror(errno);
    acceptor.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  ASSERT_GE(s1.get(), 0);
  ASSERT_GE(s2.get(), 0);
  EXPECT_TRUE(has_flag(s1.get(), F_GETFL, O_NONBLOCK));
  EXPECT_TRUE(has_flag(s1.get(), F_GETFD, FD_CLOEXEC));
  EXPECT_FALSE(has_flag(s2.get(), F_GETFL, O_NONBLOCK));
  EXPECT_FALSE(has_flag(s2.get(), F_GETFD, FD_CLOEXEC));
}

TEST(PosixTest, ConnectToAPortNobodyListensOnIsRefused) {
  weft::runtime rt(one_worker());
  sockaddr_in addr{};
  unique_fd holder = bound_socket(SOCK_STREAM, addr);  // bound, not listening: the port answers RST
  unique_fd client(::socket(AF_INET, SOCK_STREAM, 0));
  outcome c;
  rt.block_on([&] { c = {posix::connect(client.get(), sa(addr), sizeof addr), errno}; });
  EXPECT_EQ(c.result, -1);
  EXPECT_EQ(c.error, ECONNREFUSED) << std::strerror(c.error);
}

TEST(PosixTest, ConcurrentAcceptsOnOneListenerAllComplete) {
  // POSIX lets several callers block on one descriptor; each must get a connection.
  weft::runtime rt(one_worker());
  sockaddr_in addr{};
  unique_fd listener = tcp_listener(addr);
  constexpr int n = 3;
  std::vector<unique_fd> clients, servers(n);
  for (int i = 0; i < n; ++i) clients.emplace_back(::socket(AF_INET, SOCK_STREAM, 0));
  watchdog wd([&] { ::shutdown(listener.get(), SHUT_RDWR); });
  std::atomic<int> entered{0};
  rt.block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < n; ++i)
      hs.push_back(weft::spawn([&, i] {
        ++entered;
        servers[static_cast<std::size_t>(i)] = unique_fd(posix::accept(listener.get(), nullptr, nullptr));
      }));
    EXPECT_TRUE(yield_until([&] { return entered.load() == n; }));
    for (auto& c : clients) EXPECT_EQ(posix::connect(c.get(), sa(addr), sizeof addr), 0) << std::strerror(errno);
    for (auto& h : hs) h.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "an accept was never woken";
  for (auto& s : servers) EXPECT_GE(s.get(), 0);
}

// --- plain threads and user-set O_NONBLOCK ----------------------------------------------------

TEST(PosixTest, PlainThreadStillBlocksOnADescriptorAFiberRegistered) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  rt.block_on([&] {
    char c;
    EXPECT_EQ(posix::write(sp.b.get(), "x", 1), 1);
    EXPECT_EQ(posix::read(sp.a.get(), &c, 1), 1);
  });
  ASSERT_TRUE(has_flag(sp.a.get(), F_GETFL, O_NONBLOCK)) << "the fiber's call registered it";
  std::atomic<pid_t> tid{0};
  outcome r;
  char got = 0;
  std::thread t([&] {
    tid = ::gettid();
    r = {posix::read(sp.a.get(), &got, 1), errno};
  });
  // The thread must be asleep in the kernel, not back with EAGAIN.
  bool slept = weft_test::wait_until([&] { return tid.load() != 0 && thread_state(tid.load()) == 'S'; });
  EXPECT_EQ(::write(sp.b.get(), "y", 1), 1);
  t.join();
  EXPECT_TRUE(slept);
  EXPECT_EQ(r.result, 1) << std::strerror(r.error);
  EXPECT_EQ(got, 'y');
}

TEST(PosixTest, SocketTimeoutsGiveUpAsFromLibc) {
  // SO_RCVTIMEO / SO_SNDTIMEO are thread code's idle timeouts: a blocking recv, accept or
  // send gives up after them with EAGAIN, never earlier, while the worker runs other fibers.
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  sockaddr_in addr{};
  unique_fd listener = tcp_listener(addr);
  watchdog wd([&] {
    ::shutdown(sp.a.get(), SHUT_RDWR);
    ::shutdown(sp.b.get(), SHUT_RDWR);
    ::shutdown(listener.get(), SHUT_RDWR);
  });
  set_timeout(sp.a.get(), SO_RCVTIMEO, 100ms);
  set_timeout(listener.get(), SO_RCVTIMEO, 100ms);
  set_timeout(sp.b.get(), SO_SNDTIMEO, 100ms);
  auto timed = [](auto call) {
    steady::time_point t0 = steady::now();
    outcome o{call(), errno};
    return std::pair{o, steady::now() - t0};
  };
  std::atomic<long> ticks{0};
  std::atomic<bool> done{false};
  char buf[8] = {};
  rt.block_on([&] {
    auto ticker = weft::spawn([&] {
      while (!done) {
        ticks++;
        weft::this_fiber::yield();
      }
    });
    auto [r, r_took] = timed([&] { return posix::recv(sp.a.get(), buf, sizeof buf, 0); });
    EXPECT_EQ(r.result, -1);
    EXPECT_EQ(r.error, EAGAIN) << std::strerror(r.error);
    EXPECT_GE(r_took, 100ms);
    EXPECT_LT(r_took, 10s);
    EXPECT_GT(ticks.load(), 0) << "the worker ran other fibers meanwhile";

    auto [a, a_took] = timed([&] { return posix::accept(listener.get(), nullptr, nullptr); });
    EXPECT_EQ(a.result, -1);
    EXPECT_EQ(a.error, EAGAIN) << std::strerror(a.error);
    EXPECT_GE(a_took, 100ms);

    // Each caller is timed on its own, as with libc: fibers queued behind one another on one
    // listener all give up after about one timeout, not one after the other.
    std::vector<weft::join_handle<std::pair<outcome, steady::duration>>> acceptors;
    for (int i = 0; i < 4; ++i)
      acceptors.push_back(weft::spawn([&] { return timed([&] { return posix::accept(listener.get(), nullptr, nullptr); }); }));
    for (auto& h : acceptors) {
      auto [o, took] = h.join();
      EXPECT_EQ(o.error, EAGAIN) << std::strerror(o.error);
      EXPECT_GE(took, 100ms);
      if (weft_test::timing_budgets_apply()) {
        EXPECT_LT(took, 300ms) << "queued callers share no timeout";
      }
    }

    // Data that comes within the timeout is returned; the timeout is per call.
    auto sender = weft::spawn([&] {
      weft::this_fiber::sleep_for(60ms);
      posix::send(sp.b.get(), "abc", 3, 0);
    });
    auto [d, d_took] = timed([&] { return posix::recv(sp.a.get(), buf, sizeof buf, 0); });
    sender.join();
    EXPECT_EQ(d.result, 3) << std::strerror(d.error);

    // A send into a full buffer gives up after SO_SNDTIMEO.
    std::vector<char> block(64 * 1024, 'x');
    while (posix::send(sp.b.get(), block.data(), block.size(), MSG_DONTWAIT) > 0) {
    }
    auto [w, w_took] = timed([&] { return posix::send(sp.b.get(), block.data(), block.size(), 0); });
    EXPECT_EQ(w.result, -1);
    EXPECT_EQ(w.error, EAGAIN) << std::strerror(w.error);
    EXPECT_GE(w_took, 100ms);

    // Without the option the wait has no deadline again: a receive parks until data comes.
    set_timeout(listener.get(), SO_RCVTIMEO, 0ms);
    auto late = weft::spawn([&] {
      weft::this_fiber::sleep_for(250ms);
      unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      posix::connect(c.get(), sa(addr), sizeof addr);
    });
    int fd = posix::accept(listener.get(), nullptr, nullptr);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    if (fd >= 0) posix::close(fd);
    late.join();
    done = true;
    ticker.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());

  // A plain thread on a descriptor a fiber registered (non-blocking now) honours it too.
  fd_pair tp = make_socketpair();
  set_timeout(tp.a.get(), SO_RCVTIMEO, 100ms);
  rt.block_on([&] { EXPECT_EQ(posix::recv(tp.a.get(), buf, sizeof buf, MSG_DONTWAIT), -1); });
  ASSERT_TRUE(has_flag(tp.a.get(), F_GETFL, O_NONBLOCK));
  steady::time_point t0 = steady::now();
  errno = 0;
  EXPECT_EQ(posix::recv(tp.a.get(), buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EAGAIN) << std::strerror(errno);
  EXPECT_GE(steady::now() - t0, 100ms);
}

TEST(PosixTest, PlainThreadConnectBlocksUntilEstablished) {
  // The socket was registered (and made non-blocking) by a fiber; a plain thread's connect
  // still returns 0 after the handshake, not EINPROGRESS.
  weft::runtime rt(one_worker());
  sockaddr_in addr{};
  unique_fd listener = tcp_listener(addr);
  unique_fd client(::socket(AF_INET, SOCK_STREAM, 0));
  rt.block_on([&] {
    EXPECT_EQ(posix::send(client.get(), "", 0, MSG_DONTWAIT), -1);  // registers it; not connected
  });
  ASSERT_TRUE(has_flag(client.get(), F_GETFL, O_NONBLOCK));
  errno = 0;
  EXPECT_EQ(posix::connect(client.get(), sa(addr), sizeof addr), 0) << std::strerror(errno);
  unique_fd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_GE(server.get(), 0);
}

TEST(PosixTest, UserNonBlockingDescriptorGetsEagainAsFromLibc) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair(SOCK_STREAM | SOCK_NONBLOCK);
  sockaddr_in addr{};
  unique_fd listener = tcp_listener(addr);
  ASSERT_EQ(::fcntl(listener.get(), F_SETFL, ::fcntl(listener.get(), F_GETFL) | O_NONBLOCK), 0);
  watchdog wd([&] {
    ::shutdown(sp.a.get(), SHUT_RDWR);
    ::shutdown(listener.get(), SHUT_RDWR);
  });
  outcome r, rr, a;
  rt.block_on([&] {
    char c;
    r = {posix::read(sp.a.get(), &c, 1), errno};
    rr = {posix::read(sp.a.get(), &c, 1), errno};  // and again, now that it is registered
    a = {posix::accept(listener.get(), nullptr, nullptr), errno};
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "a call parked on a descriptor the user made non-blocking";
  EXPECT_EQ(r.result, -1);
  EXPECT_EQ(r.error, EAGAIN);
  EXPECT_EQ(rr.result, -1);
  EXPECT_EQ(rr.error, EAGAIN);
  EXPECT_EQ(a.result, -1);
  EXPECT_EQ(a.error, EAGAIN);
}

// --- close ------------------------------------------------------------------------------------

TEST(PosixTest, CloseFromAnotherFiberWakesABlockedRead) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  int fd = sp.a.release();  // closed by the test through posix::close
  watchdog wd([&] { ::shutdown(fd, SHUT_RDWR); });
  std::atomic<bool> reading{false};
  bool still_open = false;
  outcome r, c;
  rt.block_on([&] {
    auto reader = weft::spawn([&] {
      char buf[4];
      reading = true;
      r = {posix::read(fd, buf, sizeof buf), errno};
    });
    // One worker: once this runs after `reading`, the reader is parked inside read().
    EXPECT_TRUE(yield_until([&] { return reading.load(); }));
    c = {posix::close(fd), errno};
    // The reader has not run since: its call is still in flight, so the number stays open
    // (a new descriptor cannot take it under the call).
    still_open = ::fcntl(fd, F_GETFD) != -1;
    reader.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(c.result, 0);
  EXPECT_EQ(r.result, -1);
  EXPECT_EQ(r.error, ECANCELED) << std::strerror(r.error);
  EXPECT_TRUE(still_open);
  // The number was closed once the read left.
  errno = 0;
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST(PosixTest, ZeroLengthReadsReturnZeroAtOnce) {
  // As from libc: read and readv of zero bytes return 0 on an idle socket; they never wait.
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  outcome r, rv, again;
  rt.block_on([&] {
    char b[4];
    ::iovec iov[2] = {{b, 0}, {b + 1, 0}};
    r = {posix::read(sp.a.get(), b, 0), errno};
    rv = {posix::readv(sp.a.get(), iov, 2), errno};
    again = {posix::read(sp.a.get(), b, 0), errno};  // registered by now
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "a zero-length read waited for data";
  EXPECT_EQ(r.result, 0) << std::strerror(r.error);
  EXPECT_EQ(rv.result, 0) << std::strerror(rv.error);
  EXPECT_EQ(again.result, 0) << std::strerror(again.error);
}

TEST(PosixTest, CloseFromAFiberWakesAPlainThreadBlockedOnTheDescriptor) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  int fd = sp.a.release();
  rt.block_on([&] {
    char c;
    EXPECT_EQ(posix::recv(fd, &c, 1, MSG_DONTWAIT), -1);  // registers it
  });
  watchdog wd([&] { ::shutdown(fd, SHUT_RDWR); });
  std::atomic<pid_t> tid{0};
  outcome r;
  std::thread t([&] {
    tid = ::gettid();
    char c;
    r = {posix::read(fd, &c, 1), errno};
  });
  EXPECT_TRUE(weft_test::wait_until([&] { return tid.load() != 0 && thread_state(tid.load()) == 'S'; }));
  rt.block_on([&] { EXPECT_EQ(posix::close(fd), 0); });
  t.join();
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(r.result, -1);
  EXPECT_EQ(r.error, ECANCELED) << std::strerror(r.error);
}

// --- the libc path ------------------------------------------------------------------------------

TEST(PosixTest, RegularFileUsesTheLibcCalls) {
  weft::runtime rt(one_worker());
  char path[] = "/tmp/weft_posix_test_XXXXXX";
  int raw = ::mkstemp(path);
  ASSERT_GE(raw, 0);
  ::unlink(path);
  unique_fd f(raw);
  std::string got;
  outcome w, c;
  rt.block_on([&] {
    w = {posix::write(f.get(), "contents", 8), errno};
    EXPECT_EQ(::lseek(f.get(), 0, SEEK_SET), 0);
    char buf[16];
    ssize_t n = posix::read(f.get(), buf, sizeof buf);
    if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
    EXPECT_FALSE(has_flag(f.get(), F_GETFL, O_NONBLOCK)) << "a regular file is never registered";
    c = {posix::close(f.release()), errno};
  });
  EXPECT_EQ(w.result, 8) << std::strerror(w.error);
  EXPECT_EQ(got, "contents");
  EXPECT_EQ(c.result, 0);
}

TEST(PosixTest, DeviceEpollRefusesIsLeftBlocking) {
  weft::runtime rt(one_worker());
  unique_fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  ASSERT_GE(null.get(), 0);
  rt.block_on([&] {
    char c;
    EXPECT_EQ(posix::read(null.get(), &c, 1), 0);
    EXPECT_EQ(posix::write(null.get(), "x", 1), 1);
  });
  EXPECT_FALSE(has_flag(null.get(), F_GETFL, O_NONBLOCK));
}

// --- SIGPIPE ----------------------------------------------------------------------------------

TEST(PosixTest, WritingToAClosedPeerFailsWithEpipeNeverSigpipe) {
  // SIGPIPE's default action kills the process: if any of these raised it, the test binary
  // would die here.
  struct sigaction dfl {}, old {};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(::sigaction(SIGPIPE, &dfl, &old), 0);
  weft::runtime rt(one_worker());
  fd_pair on_fiber = make_socketpair(), on_thread = make_socketpair();
  on_fiber.b.reset();
  on_thread.b.reset();
  outcome w, wv, s, st, tw, twv;
  char x = 'x';
  iovec iov{&x, 1};
  rt.block_on([&] {
    w = {posix::write(on_fiber.a.get(), &x, 1), errno};
    wv = {posix::writev(on_fiber.a.get(), &iov, 1), errno};
    s = {posix::send(on_fiber.a.get(), &x, 1, 0), errno};
  });
  // A plain thread on a registered descriptor, then on one no fiber has seen.
  st = {posix::write(on_fiber.a.get(), &x, 1), errno};
  tw = {posix::write(on_thread.a.get(), &x, 1), errno};
  twv = {posix::writev(on_thread.a.get(), &iov, 1), errno};
  ::sigaction(SIGPIPE, &old, nullptr);
  for (const outcome& o : {w, wv, s, st, tw, twv}) {
    EXPECT_EQ(o.result, -1);
    EXPECT_EQ(o.error, EPIPE) << std::strerror(o.error);
  }
}

// --- many descriptors, many workers -----------------------------------------------------------

TEST(PosixTest, HighDescriptorNumbersWork) {
  // Numbers past the table's first chunk (1,024 entries) grow it.
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  const int high = 3000;
  if (lim.rlim_cur <= static_cast<rlim_t>(high)) {
    rlimit raised = lim;
    raised.rlim_cur = std::min<rlim_t>(lim.rlim_max, high + 1);
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0 || raised.rlim_cur <= static_cast<rlim_t>(high))
      GTEST_SKIP() << "RLIMIT_NOFILE cannot reach " << high;
  }
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  ASSERT_EQ(::dup3(sp.a.get(), high, O_CLOEXEC), high);
  unique_fd hi(high);
  watchdog wd([&] { ::shutdown(high, SHUT_RDWR); });
  std::atomic<bool> reading{false};
  outcome r;
  rt.block_on([&] {
    auto reader = weft::spawn([&] {
      char c;
      reading = true;
      r = {posix::read(high, &c, 1), errno};
    });
    EXPECT_TRUE(yield_until([&] { return reading.load(); }));
    EXPECT_EQ(posix::write(sp.b.get(), "h", 1), 1);
    reader.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(r.result, 1) << std::strerror(r.error);
  hi.reset();
  ::setrlimit(RLIMIT_NOFILE, &lim);
}

TEST(PosixTest, PingPongAcrossWorkers) {
  // Pairs of fibers on four workers exchange counters over socket pairs and pipes; parked
  // fibers resume on whichever worker runs them, so results and errno cross threads.
  weft::runtime rt(weft::runtime_options{.workers = 4});
  const int pairs = static_cast<int>(weft_test::sized(32, 16, 8));
  const long rounds = weft_test::sized(2000, 500, 100);
  std::vector<fd_pair> there, back;
  for (int i = 0; i < pairs; ++i) {
    there.push_back(i % 2 == 0 ? make_socketpair() : make_pipe());
    back.push_back(i % 2 == 0 ? make_socketpair() : make_pipe());
  }
  std::atomic<long> errors{0};
  rt.block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < pairs; ++i) {
      auto& t = there[static_cast<std::size_t>(i)];
      auto& b = back[static_cast<std::size_t>(i)];
      // For a socket pair either end works; for a pipe, .b writes and .a reads.
      hs.push_back(weft::spawn([&] {
        for (long k = 0; k < rounds; ++k) {
          long reply = 0;
          if (!write_all(t.b.get(), &k, sizeof k) || !read_exact(b.a.get(), &reply, sizeof reply) || reply != k + 1)
            ++errors;
        }
      }));
      hs.push_back(weft::spawn([&] {
        for (long k = 0; k < rounds; ++k) {
          long v = 0;
          if (!read_exact(t.a.get(), &v, sizeof v) || v != k) ++errors;
          ++v;
          if (!write_all(b.b.get(), &v, sizeof v)) ++errors;
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(errors.load(), 0);
  weft_test::expect_no_leaks(rt);
}

TEST(PosixTest, ErrnoIsTheCallersAfterResumingOnAnotherWorker) {
  // Writers on four workers fill their sockets and park; closing the peers wakes them and the
  // retried write fails with EPIPE. Each must find EPIPE in its errno, read and set on the
  // thread it resumed on (a cached errno address would report another thread's value).
  weft::runtime rt(weft::runtime_options{.workers = 4});
  const int n = static_cast<int>(weft_test::sized(32, 16, 8));
  std::vector<fd_pair> sps;
  for (int i = 0; i < n; ++i) sps.push_back(make_socketpair());
  std::vector<outcome> results(static_cast<std::size_t>(n));
  std::vector<std::atomic<long>> written(static_cast<std::size_t>(n));
  rt.block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < n; ++i)
      hs.push_back(weft::spawn([&, i] {
        std::vector<char> buf(16384, 'w');
        auto u = static_cast<std::size_t>(i);
        for (;;) {
          ssize_t r = posix::write(sps[u].a.get(), buf.data(), buf.size());
          if (r < 0) {
            results[u] = {r, errno};
            return;
          }
          written[u] += r;
        }
      }));
    // Every writer has filled part of its buffer; most are parked on a full one by now.
    EXPECT_TRUE(yield_until([&] {
      for (auto& w : written)
        if (w.load() == 0) return false;
      return true;
    }));
    for (auto& sp : sps) sp.b.reset();  // never used through posix: a plain close
    for (auto& h : hs) h.join();
  });
  for (const outcome& o : results) {
    EXPECT_EQ(o.result, -1);
    EXPECT_EQ(o.error, EPIPE) << std::strerror(o.error);
  }
}

// Thread code's errno idiom: clear it, call, read it. __errno_location() is declared const, so
// the compiler computes errno's address once, before the call, and reads through it after.
[[gnu::noinline]] int errno_of_recv(int fd) {
  char c;
  errno = 0;
  ssize_t n = posix::recv(fd, &c, 1, 0);
  return n < 0 ? errno : 0;
}

TEST(PosixTest, ErrnoClearedBeforeTheCallIsTheOneSetByIt) {
  // A fiber that moved to another worker inside the call would read the errno of the thread it
  // started on, which the call never set; weft::posix keeps the fiber on its thread for the
  // duration of the call, so the idiom works as with std::thread.
  weft::runtime rt(weft::runtime_options{.workers = 4});
  const int fibers = 8;
  const int rounds = static_cast<int>(weft_test::sized(25, 15, 10));
  std::vector<fd_pair> sps;
  for (int i = 0; i < fibers; ++i) {
    sps.push_back(make_socketpair());
    set_timeout(sps.back().a.get(), SO_RCVTIMEO, 2ms);
  }
  std::atomic<int> wrong{0}, last_wrong{0};
  rt.block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < fibers; ++i)
      hs.push_back(weft::spawn([&, i] {
        for (int r = 0; r < rounds; ++r) {
          int e = errno_of_recv(sps[static_cast<std::size_t>(i)].a.get());
          if (e != EAGAIN) {
            wrong++;
            last_wrong = e;
          }
        }
      }));
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(wrong.load(), 0) << "of " << fibers * rounds << " calls; last errno: " << std::strerror(last_wrong.load());
}

// Runtime shutdown unwinds a fiber parked in a read (detail::forced_unwind passes through the
// I/O wait) instead of terminating the process.
TEST(PosixDeathTest, RuntimeShutdownUnwindsAFiberParkedInRead) {
  EXPECT_EXIT(
      {
        fd_pair sp = make_socketpair();
        std::atomic<bool> reading{false};
        {
          weft::runtime rt(one_worker());
          rt.spawn([&] {
              char c;
              reading = true;
              posix::read(sp.a.get(), &c, 1);
            }).detach();
          weft_test::wait_until([&] { return reading.load(); });
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
