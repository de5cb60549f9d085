// weft::posix transfers that libc finishes inside one blocking call: send/write/writev/sendto
// return only once every byte is written, recv(MSG_WAITALL) only once the whole length came,
// and the short counts libc gives when a timeout, an error or a close stops them part way.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <weft/posix.hpp>

#include "posix_test_util.hpp"
#include "weft_test.hpp"

using namespace posix_test;

namespace {

// A pattern that shows a lost, doubled or reordered byte: byte i is (i * 7 + i / 251) % 256.
std::vector<char> pattern(std::size_t n) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  return v;
}

// Reads everything from `fd` until EOF, in small reads with a pause now and then, so the
// writer keeps finding the buffer full.
std::vector<char> drain_slowly(int fd) {
  std::vector<char> got;
  char buf[4096];
  for (int i = 0;; ++i) {
    ssize_t r = posix::read(fd, buf, sizeof buf);
    if (r <= 0) break;
    got.insert(got.end(), buf, buf + r);
    if (i % 64 == 0) weft::this_fiber::sleep_for(1ms);
  }
  return got;
}

TEST(PosixTest, BlockingWritesReturnOnlyOnceEveryByteIsWritten) {
  // Thread code calls send/write once and takes a short count as an error (or ignores it):
  // on a blocking descriptor libc returns only once everything is written, and so must the
  // port, although weft made the descriptor non-blocking underneath.
  weft::runtime rt(one_worker());
  constexpr std::size_t total = 4u << 20;  // far above any socket or pipe buffer
  const std::vector<char> data = pattern(total);
  watchdog wd([] {}, 30s);
  struct writer {
    const char* what;
    std::function<ssize_t(int, const char*, std::size_t)> call;
    bool pipe;
  };
  const writer writers[] = {
      {"send", [](int fd, const char* p, std::size_t n) { return posix::send(fd, p, n, 0); }, false},
      {"write to a socket", [](int fd, const char* p, std::size_t n) { return posix::write(fd, p, n); }, false},
      {"write to a pipe", [](int fd, const char* p, std::size_t n) { return posix::write(fd, p, n); }, true},
      {"sendto", [](int fd, const char* p, std::size_t n) { return posix::sendto(fd, p, n, 0, nullptr, 0); }, false},
      {"writev", [](int fd, const char* p, std::size_t n) {
         // Uneven pieces, so a short write stops inside one of them.
         std::vector<iovec> iov;
         for (std::size_t off = 0, len = 1; off < n; off += len, len = len * 3 + 1)
           iov.push_back({const_cast<char*>(p + off), std::min(len, n - off)});
         return posix::writev(fd, iov.data(), static_cast<int>(iov.size()));
       }, false},
  };
  for (const writer& w : writers) {
    SCOPED_TRACE(w.what);
    fd_pair ends = w.pipe ? make_pipe() : make_socketpair();  // a reads, b writes
    outcome sent;
    std::vector<char> got;
    rt.block_on([&] {
      auto reader = weft::spawn([&] { return drain_slowly(ends.a.get()); });
      sent = {w.call(ends.b.get(), data.data(), data.size()), errno};
      ends.b.reset();  // EOF for the reader
      got = reader.join();
    });
    EXPECT_EQ(sent.result, static_cast<long>(total)) << std::strerror(sent.error);
    EXPECT_TRUE(got == data) << "received " << got.size() << " bytes";
  }

  // A plain thread on a descriptor a fiber registered (non-blocking underneath) too.
  fd_pair ends = make_socketpair();
  outcome sent;
  std::vector<char> got;
  rt.block_on([&] { EXPECT_EQ(posix::recv(ends.b.get(), nullptr, 0, MSG_DONTWAIT), -1); });
  ASSERT_TRUE(has_flag(ends.b.get(), F_GETFL, O_NONBLOCK));
  std::thread sender([&] {
    sent = {posix::send(ends.b.get(), data.data(), data.size(), 0), errno};
    ::shutdown(ends.b.get(), SHUT_WR);
  });
  rt.block_on([&] { got = drain_slowly(ends.a.get()); });
  sender.join();
  EXPECT_EQ(sent.result, static_cast<long>(total)) << std::strerror(sent.error);
  EXPECT_TRUE(got == data) << "received " << got.size() << " bytes";
  wd.done();
  EXPECT_FALSE(wd.fired());
}

TEST(PosixTest, RecvWithWaitallReturnsTheWholeLength) {
  // A message read with one recv(MSG_WAITALL) arrives in pieces: libc's blocking recv returns
  // only with all of it (or at EOF with what came).
  weft::runtime rt(one_worker());
  watchdog wd([] {});
  rt.block_on([&] {
    fd_pair ends = make_socketpair();
    auto writer = weft::spawn([&] {
      EXPECT_EQ(posix::send(ends.b.get(), "he", 2, 0), 2);
      weft::this_fiber::sleep_for(30ms);
      EXPECT_EQ(posix::send(ends.b.get(), "llo, w", 6, 0), 6);
      weft::this_fiber::sleep_for(30ms);
      EXPECT_EQ(posix::send(ends.b.get(), "orld", 4, 0), 4);
      ends.b.reset();
    });
    char buf[16] = {};
    EXPECT_EQ(posix::recv(ends.a.get(), buf, 8, MSG_WAITALL), 8) << std::strerror(errno);
    EXPECT_EQ(std::string(buf, 8), "hello, w");
    // EOF after 4 of 8 bytes: the 4.
    EXPECT_EQ(posix::recv(ends.a.get(), buf, 8, MSG_WAITALL), 4) << std::strerror(errno);
    EXPECT_EQ(std::string(buf, 4), "orld");
    writer.join();

    // A datagram is a message: MSG_WAITALL does not join two of them.
    fd_pair dgram = make_socketpair(SOCK_DGRAM);
    EXPECT_EQ(posix::send(dgram.b.get(), "ab", 2, 0), 2);
    EXPECT_EQ(posix::send(dgram.b.get(), "cd", 2, 0), 2);
    EXPECT_EQ(posix::recv(dgram.a.get(), buf, 8, MSG_WAITALL), 2);
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
}

TEST(PosixTest, AWriteStoppedPartWayReturnsTheBytesWrittenAsFromLibc) {
  // What libc returns when a blocking send cannot finish: the count so far if some bytes went
  // (SO_SNDTIMEO, a peer gone), the error if none did; a non-blocking caller (MSG_DONTWAIT or
  // its own O_NONBLOCK) gets the first short count.
  weft::runtime rt(one_worker());
  watchdog wd([] {});
  constexpr std::size_t total = 4u << 20;
  const std::vector<char> data = pattern(total);
  rt.block_on([&] {
    {
      fd_pair ends = make_socketpair();
      set_timeout(ends.b.get(), SO_SNDTIMEO, 100ms);
      steady::time_point t0 = steady::now();
      outcome o{posix::send(ends.b.get(), data.data(), total, 0), errno};
      EXPECT_GT(o.result, 0) << std::strerror(o.error);
      EXPECT_LT(o.result, static_cast<long>(total));
      EXPECT_GE(steady::now() - t0, 100ms);
      // Nothing more fits: now the timeout is the error.
      outcome again{posix::send(ends.b.get(), data.data(), total, 0), errno};
      EXPECT_EQ(again.result, -1);
      EXPECT_EQ(again.error, EAGAIN) << std::strerror(again.error);
    }
    {
      fd_pair ends = make_socketpair();
      auto closer = weft::spawn([&] {
        char buf[4096];
        EXPECT_GT(posix::read(ends.a.get(), buf, sizeof buf), 0);
        ends.a.reset();
      });
      outcome o{posix::send(ends.b.get(), data.data(), total, 0), errno};
      closer.join();
      EXPECT_GT(o.result, 0) << std::strerror(o.error);
      EXPECT_LT(o.result, static_cast<long>(total));
      outcome again{posix::send(ends.b.get(), data.data(), total, 0), errno};
      EXPECT_EQ(again.result, -1);
      EXPECT_EQ(again.error, EPIPE) << std::strerror(again.error);
    }
    {
      // weft::posix::close from another fiber while the send waits for room: the count so far.
      fd_pair ends = make_socketpair();
      int fd = ends.b.release();
      auto closer = weft::spawn([&] {
        weft::this_fiber::sleep_for(20ms);
        EXPECT_EQ(posix::close(fd), 0);
      });
      outcome o{posix::send(fd, data.data(), total, 0), errno};
      closer.join();
      EXPECT_GT(o.result, 0) << std::strerror(o.error);
      EXPECT_LT(o.result, static_cast<long>(total));
    }
    {
      fd_pair ends = make_socketpair();
      long n = posix::send(ends.b.get(), data.data(), total, MSG_DONTWAIT);
      EXPECT_GT(n, 0) << std::strerror(errno);
      EXPECT_LT(n, static_cast<long>(total));
    }
    {
      fd_pair ends = make_socketpair();
      ASSERT_EQ(::fcntl(ends.b.get(), F_SETFL, ::fcntl(ends.b.get(), F_GETFL) | O_NONBLOCK), 0);
      long n = posix::write(ends.b.get(), data.data(), total);
      EXPECT_GT(n, 0) << std::strerror(errno);
      EXPECT_LT(n, static_cast<long>(total));
    }
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
}

// Three sends on a TCP connection whose peer resets it (SO_LINGER 0) while the first send
// waits for room, through `send` (libc's or weft::posix's). Returns the three outcomes.
template <class Send>
std::vector<outcome> sends_across_a_reset(Send send) {
  sockaddr_in addr{};
  unique_fd listener = tcp_listener(addr);
  unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  check(client.get() >= 0, "socket");
  check(::connect(client.get(), sa(addr), sizeof addr) == 0, "connect");
  int server = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
  check(server >= 0, "accept");
  constexpr std::size_t total = 16u << 20;  // far more than loopback's buffers hold
  const std::vector<char> data = pattern(total);
  std::vector<outcome> out;
  std::thread resetter([&] {
    std::this_thread::sleep_for(100ms);  // the first send is blocked by now
    char buf[4096];
    (void)!::read(server, buf, sizeof buf);
    ::linger lg{1, 0};
    ::setsockopt(server, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(server);  // RST
  });
  for (int i = 0; i < 3; ++i) {
    long r = send(client.get(), data.data(), total, MSG_NOSIGNAL);
    out.push_back(outcome{r, errno});
  }
  resetter.join();
  return out;
}

TEST(PosixTest, AResetThatEndsABlockingWriteIsReportedByTheNextCallAsFromLibc) {
  // libc: the blocking send returns the bytes it moved, the next call ECONNRESET, then EPIPE.
  // weft's emulation retries the send, which consumes the reset: it must hand it on.
  std::vector<outcome> libc =
      sends_across_a_reset([](int fd, const void* p, std::size_t n, int flags) { return ::send(fd, p, n, flags); });
  ASSERT_EQ(libc.size(), 3u);
  EXPECT_GT(libc[0].result, 0) << std::strerror(libc[0].error);
  EXPECT_EQ(libc[1].error, ECONNRESET) << "libc itself: " << std::strerror(libc[1].error);

  weft::runtime rt(one_worker());
  std::vector<outcome> ours = rt.block_on([&] {
    return sends_across_a_reset(
        [](int fd, const void* p, std::size_t n, int flags) { return posix::send(fd, p, n, flags); });
  });
  ASSERT_EQ(ours.size(), 3u);
  EXPECT_GT(ours[0].result, 0) << std::strerror(ours[0].error);
  EXPECT_LT(ours[0].result, static_cast<long>(16u << 20));
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(ours[i].result, -1) << "send " << i;
    EXPECT_EQ(ours[i].error, libc[i].error) << "send " << i << ": weft " << std::strerror(ours[i].error)
                                            << ", libc " << std::strerror(libc[i].error);
  }
}

// A descriptor weft registered, closed with a plain close() (not weft::posix::close), whose
// number then names a new, blocking socket. Calls on the number must neither block the worker
// (the new socket is blocking: weft never switched it) nor wait for ever on the old
// registration (epoll dropped it with the old socket): weft notices the new description and
// registers it. Another fiber on the same worker keeps running meanwhile.
TEST(PosixTest, ANumberReusedAfterAPlainCloseIsTakenForTheNewSocket) {
  weft::runtime rt(one_worker());
  rt.block_on([&] {
    fd_pair first = make_socketpair();
    char c = 'x';
    ASSERT_EQ(posix::send(first.b.get(), &c, 1, 0), 1);
    ASSERT_EQ(posix::recv(first.a.get(), &c, 1, 0), 1);  // registers first.a with weft
    const int number = first.a.release();
    ASSERT_EQ(::close(number), 0);  // a plain close: weft's registration stays behind
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (sv[0] != number) {  // the lowest free number is usually `number` itself already
      ASSERT_EQ(::dup2(sv[0], number), number);  // the number now names the new, blocking socket
      ::close(sv[0]);
    }
    unique_fd reused(number), peer(sv[1]);
    ASSERT_FALSE(has_flag(number, F_GETFL, O_NONBLOCK));

    std::atomic<long> ticks{0};
    std::atomic<bool> stop{false};
    auto ticker = weft::spawn([&] {
      while (!stop.load()) {
        ++ticks;
        weft::this_fiber::yield();
      }
    });
    std::thread writer([&] {
      std::this_thread::sleep_for(100ms);
      char d = 'y';
      (void)!::write(peer.get(), &d, 1);
    });
    const long before = ticks.load();
    char got = 0;
    long r = posix::recv(number, &got, 1, 0);
    const long during = ticks.load() - before;
    writer.join();
    EXPECT_EQ(r, 1) << std::strerror(errno);
    EXPECT_EQ(got, 'y');
    EXPECT_GT(during, 100) << "the receive blocked the worker";
    // The same for a write that has to wait for room, on the new registration.
    std::thread drainer([&] {
      std::this_thread::sleep_for(100ms);
      std::vector<char> sink(1 << 20);
      while (::read(peer.get(), sink.data(), sink.size()) > 0) {
      }
    });
    const std::vector<char> data = pattern(4u << 20);
    EXPECT_EQ(posix::send(number, data.data(), data.size(), 0), static_cast<long>(data.size())) << std::strerror(errno);
    stop = true;
    ticker.join();
    ::shutdown(number, SHUT_RDWR);
    drainer.join();
  });
}

}  // namespace
