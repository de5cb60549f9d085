// weft::posix recvmsg/sendmsg (buffers, ancillary data, whole transfers) and select, pselect,
// ppoll: each parks the fiber, never its worker (one worker and a watchdog, as in
// posix_test.cpp), and gives the results libc gives.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <weft/posix.hpp>

#include "posix_test_util.hpp"
#include "weft_test.hpp"

using namespace posix_test;
namespace posix = weft::posix;

namespace {

// --- recvmsg / sendmsg ------------------------------------------------------------------------

TEST(PosixMsgTest, RecvmsgParksAndGetsTheBuffersAndAPassedDescriptor) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  fd_pair pipe = make_pipe();
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  char head[3]{}, tail[8]{};
  int passed = -1;
  ssize_t n = -1;
  int msg_flags = -1;
  rt.block_on([&] {
    auto sender = weft::spawn([&] {
      weft::this_fiber::sleep_for(20ms);  // the receiver parks first
      fd_message m(pipe.b.get());
      EXPECT_EQ(posix::sendmsg(sp.b.get(), &m.msg, 0), 1) << std::strerror(errno);
    });
    ::iovec iov[2] = {{head, 1}, {tail, sizeof tail}};
    alignas(::cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
    ::msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    n = posix::recvmsg(sp.a.get(), &msg, MSG_CMSG_CLOEXEC);
    msg_flags = msg.msg_flags;
    if (::cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr && c->cmsg_type == SCM_RIGHTS)
      std::memcpy(&passed, CMSG_DATA(c), sizeof passed);
    sender.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  ASSERT_EQ(n, 1);
  EXPECT_EQ(head[0], 'F');
  EXPECT_EQ(msg_flags & MSG_CTRUNC, 0);
  ASSERT_GE(passed, 0) << "no descriptor came with the byte";
  unique_fd received(passed);
  // The passed number is the pipe's write end: a write through it reaches the read end.
  ASSERT_EQ(::write(received.get(), "p", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(pipe.a.get(), &c, 1), 1);
  EXPECT_EQ(c, 'p');
}

TEST(PosixMsgTest, SendmsgWritesEverythingAndRecvmsgWaitallFillsEveryBuffer) {
  // 2 MiB is more than a socket pair holds, so the sender parks on a full buffer and the
  // receiver's MSG_WAITALL gathers many arrivals into two buffers.
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  const std::size_t half = 1 << 20;
  std::vector<char> out(2 * half);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(i * 7 + i / 251);
  std::vector<char> in1(half + 3), in2(half - 3);
  ssize_t sent = -1, got = -1;
  rt.block_on([&] {
    auto sender = weft::spawn([&] {
      ::iovec iov[2] = {{out.data(), half}, {out.data() + half, half}};
      ::msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = 2;
      sent = posix::sendmsg(sp.b.get(), &msg, 0);
    });
    ::iovec iov[2] = {{in1.data(), in1.size()}, {in2.data(), in2.size()}};
    ::msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    got = posix::recvmsg(sp.a.get(), &msg, MSG_WAITALL);
    sender.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(sent, static_cast<ssize_t>(out.size())) << std::strerror(errno);
  ASSERT_EQ(got, static_cast<ssize_t>(out.size()));
  in1.insert(in1.end(), in2.begin(), in2.end());
  EXPECT_TRUE(in1 == out) << "bytes lost, doubled or reordered";
}

TEST(PosixMsgTest, MessageCallsGiveLibcsErrors) {
  weft::runtime rt(one_worker());
  fd_pair pipe = make_pipe();
  rt.block_on([&] {
    char c = 0;
    ::iovec iov{&c, 1};
    ::msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    EXPECT_EQ(posix::recvmsg(pipe.a.get(), &msg, 0), -1);
    EXPECT_EQ(errno, ENOTSOCK);
    EXPECT_EQ(posix::sendmsg(pipe.b.get(), &msg, 0), -1);
    EXPECT_EQ(errno, ENOTSOCK);
    EXPECT_EQ(posix::recvmsg(-1, &msg, 0), -1);
    EXPECT_EQ(errno, EBADF);
    fd_pair sp = make_socketpair();
    EXPECT_EQ(posix::recvmsg(sp.a.get(), &msg, MSG_DONTWAIT), -1) << "nothing was sent";
    EXPECT_EQ(errno, EAGAIN);
  });
}

// --- select / pselect / ppoll -----------------------------------------------------------------

TEST(PosixMsgTest, SelectParksUntilReadableAndReportsOnlyTheReadySets) {
  weft::runtime rt(one_worker());
  fd_pair r = make_socketpair();
  fd_pair idle = make_socketpair();
  watchdog wd([&] { ::shutdown(r.a.get(), SHUT_RDWR); });
  int n = -1;
  bool readable = false, idle_readable = true, writable = false;
  ::timeval left{};
  rt.block_on([&] {
    auto writer = weft::spawn([&] {
      weft::this_fiber::sleep_for(20ms);  // runs only if select parked the fiber
      ::write(r.b.get(), "x", 1);
    });
    ::fd_set rd, wr;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(r.a.get(), &rd);
    FD_SET(idle.a.get(), &rd);
    FD_SET(idle.a.get(), &wr);  // a socket pair with room: writable at once
    // Writable is ready at once; ask for it in a second call, after the readable wait.
    ::fd_set only_rd = rd;
    left = {5, 0};
    n = posix::select(FD_SETSIZE, &only_rd, nullptr, nullptr, &left);
    readable = FD_ISSET(r.a.get(), &only_rd);
    idle_readable = FD_ISSET(idle.a.get(), &only_rd);
    writer.join();
    FD_CLR(r.a.get(), &rd);
    ::timeval zero{0, 0};
    EXPECT_EQ(posix::select(FD_SETSIZE, &rd, &wr, nullptr, &zero), 1);
    writable = FD_ISSET(idle.a.get(), &wr);
    EXPECT_FALSE(FD_ISSET(idle.a.get(), &rd));
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(readable);
  EXPECT_FALSE(idle_readable);
  EXPECT_TRUE(writable);
  // Linux leaves the time not slept: about 5 s less the 20 ms.
  EXPECT_EQ(left.tv_sec, 4);
}

TEST(PosixMsgTest, SelectTimesOutNoEarlierThanAskedAndClearsTheSets) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  int n = -1;
  bool still_set = true;
  steady::duration took{}, slept{};
  ::timeval left{1, 0};
  long ticks = 0;
  rt.block_on([&] {
    std::atomic<bool> stop{false};
    auto ticker = weft::spawn([&] {
      while (!stop) {
        ++ticks;
        weft::this_fiber::sleep_for(1ms);
      }
    });
    ::fd_set rd;
    FD_ZERO(&rd);
    FD_SET(sp.a.get(), &rd);
    ::timeval tv{0, 30'000};
    auto t0 = steady::now();
    n = posix::select(sp.a.get() + 1, &rd, nullptr, nullptr, &tv);
    took = steady::now() - t0;
    still_set = FD_ISSET(sp.a.get(), &rd);
    left = tv;
    // No descriptors: a sleep, as the classic select(0, NULL, NULL, NULL, &tv).
    ::timeval nap{0, 20'000};
    t0 = steady::now();
    EXPECT_EQ(posix::select(0, nullptr, nullptr, nullptr, &nap), 0);
    slept = steady::now() - t0;
    stop = true;
    ticker.join();
  });
  EXPECT_EQ(n, 0);
  EXPECT_FALSE(still_set) << "a timeout leaves every set empty";
  EXPECT_GE(took, 30ms);
  EXPECT_GE(slept, 20ms);
  EXPECT_EQ(left.tv_sec, 0);
  EXPECT_EQ(left.tv_usec, 0);
  EXPECT_GE(ticks, 5) << "the worker was blocked during the select";
}

TEST(PosixMsgTest, SelectAndPselectGiveLibcsErrors) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  rt.block_on([&] {
    ::fd_set rd;
    FD_ZERO(&rd);
    FD_SET(sp.a.get(), &rd);
    // As Linux: a negative part is EINVAL; whole seconds in tv_usec carry over; nfds past
    // FD_SETSIZE counts as FD_SETSIZE.
    ::timeval bad{0, -1};
    EXPECT_EQ(posix::select(sp.a.get() + 1, &rd, nullptr, nullptr, &bad), -1);
    EXPECT_EQ(errno, EINVAL);
    ::timeval carried{0, 1'020'000};
    auto t0 = steady::now();
    EXPECT_EQ(posix::select(sp.a.get() + 1, &rd, nullptr, nullptr, &carried), 0);
    EXPECT_GE(steady::now() - t0, 1020ms);
    FD_SET(sp.a.get(), &rd);
    ::timeval tv{0, 0};
    EXPECT_EQ(posix::select(-1, &rd, nullptr, nullptr, &tv), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(posix::select(FD_SETSIZE + 1, &rd, nullptr, nullptr, &tv), 0);
    FD_SET(sp.a.get(), &rd);
    // A number that is not open: EBADF, the set left as it was.
    int closed = ::dup(sp.a.get());
    ::close(closed);
    ::fd_set with_closed;
    FD_ZERO(&with_closed);
    FD_SET(closed, &with_closed);
    EXPECT_EQ(posix::select(closed + 1, &with_closed, nullptr, nullptr, &tv), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_TRUE(FD_ISSET(closed, &with_closed));
    ::timespec neg{-1, 0};
    EXPECT_EQ(posix::pselect(sp.a.get() + 1, &rd, nullptr, nullptr, &neg, nullptr), -1);
    EXPECT_EQ(errno, EINVAL);
  });
}

TEST(PosixMsgTest, PselectAndPpollParkUntilReadyAndTimeOut) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  rt.block_on([&] {
    ::timespec short_wait{0, 20'000'000};
    ::pollfd p{sp.a.get(), POLLIN, 0};
    auto t0 = steady::now();
    EXPECT_EQ(posix::ppoll(&p, 1, &short_wait, nullptr), 0);
    EXPECT_GE(steady::now() - t0, 20ms);
    auto writer = weft::spawn([&] {
      weft::this_fiber::sleep_for(20ms);
      ::write(sp.b.get(), "ab", 2);
    });
    EXPECT_EQ(posix::ppoll(&p, 1, nullptr, nullptr), 1);  // parks: the writer runs meanwhile
    EXPECT_TRUE(p.revents & POLLIN);
    writer.join();
    ::fd_set rd;
    FD_ZERO(&rd);
    FD_SET(sp.a.get(), &rd);
    const ::timespec ten{10, 0};
    EXPECT_EQ(posix::pselect(sp.a.get() + 1, &rd, nullptr, nullptr, &ten, nullptr), 1);
    EXPECT_EQ(ten.tv_sec, 10) << "pselect leaves its timeout alone";
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
}

// A hang-up is not an exceptional condition: select on exceptfds alone keeps waiting, as
// Linux's (the poll underneath wakes at once for it, and must not return 0 early).
TEST(PosixMsgTest, SelectOnExceptfdsAloneIgnoresAHangUp) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  ::close(sp.b.release());
  int n = -1;
  steady::duration took{};
  bool still_set = true;
  rt.block_on([&] {
    ::fd_set ex;
    FD_ZERO(&ex);
    FD_SET(sp.a.get(), &ex);
    ::timeval tv{0, 50'000};
    auto t0 = steady::now();
    n = posix::select(sp.a.get() + 1, nullptr, nullptr, &ex, &tv);
    took = steady::now() - t0;
    still_set = FD_ISSET(sp.a.get(), &ex);
  });
  EXPECT_EQ(n, 0);
  EXPECT_GE(took, 50ms);
  EXPECT_FALSE(still_set);
}

// A MSG_WAITALL read that meets a passed descriptor after its first bytes gets it (libc's read
// ends with that chunk); it used to go without a control buffer, and the kernel dropped it.
TEST(PosixMsgTest, RecvmsgWaitallKeepsADescriptorPassedWithLaterBytes) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  fd_pair pipe = make_pipe();
  watchdog wd([&] { ::shutdown(sp.a.get(), SHUT_RDWR); });
  int passed = -1;
  ssize_t n = -1;
  rt.block_on([&] {
    auto sender = weft::spawn([&] {
      ::send(sp.b.get(), "hd", 2, 0);
      weft::this_fiber::sleep_for(20ms);  // the receiver has the first bytes and waits
      fd_message m(pipe.b.get());
      EXPECT_EQ(posix::sendmsg(sp.b.get(), &m.msg, 0), 1);
    });
    char buf[3]{};
    ::iovec iov{buf, sizeof buf};
    alignas(::cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
    ::msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    n = posix::recvmsg(sp.a.get(), &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC);
    if (::cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr && c->cmsg_type == SCM_RIGHTS)
      std::memcpy(&passed, CMSG_DATA(c), sizeof passed);
    EXPECT_EQ(std::string(buf, 3), "hdF");
    sender.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(n, 3);
  EXPECT_GE(passed, 0) << "the descriptor sent with the last byte was lost";
  if (passed >= 0) ::close(passed);
}

// An empty error queue is EAGAIN from libc even on a blocking socket, and no readiness event
// announces a queued error: recvmsg(MSG_ERRQUEUE) never parks.
TEST(PosixMsgTest, RecvmsgOfAnEmptyErrorQueueIsEagainAtOnce) {
  weft::runtime rt(one_worker());
  sockaddr_in self{};
  unique_fd udp = bound_socket(SOCK_DGRAM, self);
  watchdog wd([&] { ::sendto(udp.get(), "r", 1, 0, sa(self), sizeof self); }, 2s);
  ssize_t n = -2;
  int e = 0;
  rt.block_on([&] {
    char c;
    ::iovec iov{&c, 1};
    alignas(::cmsghdr) char control[256];
    ::msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    n = posix::recvmsg(udp.get(), &msg, MSG_ERRQUEUE);
    e = errno;
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "recvmsg(MSG_ERRQUEUE) parked";
  EXPECT_EQ(n, -1);
  EXPECT_EQ(e, EAGAIN);
}

TEST(PosixMsgTest, OnAPlainThreadTheyAreLibcs) {
  fd_pair sp = make_socketpair();
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    ::write(sp.b.get(), "y", 1);
  });
  ::fd_set rd;
  FD_ZERO(&rd);
  FD_SET(sp.a.get(), &rd);
  ::timeval tv{10, 0};
  EXPECT_EQ(posix::select(sp.a.get() + 1, &rd, nullptr, nullptr, &tv), 1);
  writer.join();
  char c = 0;
  ::iovec iov{&c, 1};
  ::msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  EXPECT_EQ(posix::recvmsg(sp.a.get(), &msg, 0), 1);
  EXPECT_EQ(c, 'y');
  EXPECT_EQ(posix::sendmsg(sp.b.get(), &msg, 0), 1);
}

}  // namespace
