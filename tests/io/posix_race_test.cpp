// weft::posix::close racing calls on the same number, and descriptors whose kind or flags
// change what a call must do: anonymous inodes (eventfd), and a socket the user made blocking
// again after weft first saw it non-blocking.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <weft/posix.hpp>

#include "posix_test_util.hpp"
#include "weft_test.hpp"

using namespace posix_test;
namespace posix = weft::posix;

#if defined(WEFT_TSAN)
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace {

// The read below races a close of its number on purpose, as a user's program might: under
// ThreadSanitizer, which reports any syscall on a number racing its close(), the reading
// fiber's own accesses are not checked (the closer's and weft's synchronisation still are).
struct user_race_scope {
#if defined(WEFT_TSAN)
  user_race_scope() { __tsan_ignore_thread_begin(); }
  ~user_race_scope() { __tsan_ignore_thread_end(); }
#endif
};

// A read racing a close of its number ends with ECANCELED or EBADF (or EOF from the old
// socket), never with the data of another descriptor that took the closed one's record, and
// never leaves the number marked non-blocking for the next socket that gets it. The record of
// a closed number is recycled at once (last in, first out), so the race is between the
// reader's lookup and its first guard.
TEST(PosixRaceTest, AReadRacingCloseNeverReadsAnotherDescriptorNorPoisonsTheNumber) {
  const int iterations = weft_test::timing_budgets_apply() ? 20000 : 3000;
  weft::runtime rt(weft::runtime_options{.workers = 4});
  std::atomic<int> foreign{0}, eagain{0}, other{0};
  std::atomic<int> last_other{0};
  int poisoned = 0;
  rt.block_on([&] {
    for (int i = 0; i < iterations; ++i) {
      fd_pair a = make_socketpair();
      fd_pair b = make_socketpair();
      ASSERT_EQ(::send(b.b.get(), "X", 1, 0), 1);
      const int closing = a.a.release();
      char c;
      posix::recv(closing, &c, 1, MSG_DONTWAIT);  // registers it
      auto reader = weft::spawn([&] {
        char buf[8];
        ssize_t n;
        int e;
        {
          [[maybe_unused]] user_race_scope racy;
          n = posix::read(closing, buf, sizeof buf);
          e = errno;
        }
        if (n > 0) {
          foreign.fetch_add(1);
        } else if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK)) {
          eagain.fetch_add(1);
        } else if (n < 0 && e != ECANCELED && e != EBADF) {
          other.fetch_add(1);
          last_other.store(e);
        }
      });
      auto closer = weft::spawn([&] {
        if (i % 2 != 0) weft::this_fiber::yield();
        posix::close(closing);
        char d;
        posix::recv(b.a.get(), &d, 1, MSG_PEEK | MSG_DONTWAIT);  // registers b: may take the record
      });
      closer.join();
      ::shutdown(a.b.get(), SHUT_RDWR);  // a reader that reached the old socket sees EOF
      reader.join();
      posix::close(b.a.release());
      // The lowest free number (usually `closing`) in a new, blocking pair: a blocking read
      // through weft waits for its data.
      fd_pair fresh = make_socketpair();
      if (i % 500 == 0 || fresh.a.get() == closing) {
        auto writer = weft::spawn([&] {
          weft::this_fiber::yield();
          ::send(fresh.b.get(), "y", 1, 0);
        });
        char got = 0;
        if (posix::read(fresh.a.get(), &got, 1) != 1 || got != 'y') ++poisoned;
        writer.join();
      }
      posix::close(fresh.a.release());
    }
  });
  EXPECT_EQ(foreign.load(), 0) << "reads on a closed number returned another descriptor's data";
  EXPECT_EQ(eagain.load(), 0) << "blocking reads on a closing number failed with EAGAIN";
  EXPECT_EQ(other.load(), 0) << "last unexpected errno: " << std::strerror(last_other.load());
  EXPECT_EQ(poisoned, 0) << "a blocking read on a reused number did not wait for its data";
}

// eventfd, timerfd, signalfd and inotify have no file type; epoll watches them, so a read
// parks the fiber (it used to block the worker: the writer below could not run).
TEST(PosixRaceTest, AnEventfdReadParksTheFiberNotTheWorker) {
  weft::runtime rt(one_worker());
  unique_fd efd(::eventfd(0, EFD_CLOEXEC));
  ASSERT_GE(efd.get(), 0) << std::strerror(errno);
  watchdog wd([&] {
    std::uint64_t one = 1;
    (void)::write(efd.get(), &one, sizeof one);
  });
  std::uint64_t value = 0;
  ssize_t n = -1;
  rt.block_on([&] {
    auto writer = weft::spawn([&] {
      weft::this_fiber::sleep_for(20ms);
      std::uint64_t five = 5;
      EXPECT_EQ(posix::write(efd.get(), &five, sizeof five), 8);
    });
    n = posix::read(efd.get(), &value, sizeof value);
    writer.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "the read blocked the worker";
  EXPECT_EQ(n, 8);
  EXPECT_EQ(value, 5u);
  posix::close(efd.release());
}

// The idiom: a non-blocking connect, poll for it, clear O_NONBLOCK, then block in recv. weft
// registered the socket as the user's non-blocking one; made blocking again, its calls block.
TEST(PosixRaceTest, ASocketMadeBlockingAgainBlocks) {
  weft::runtime rt(one_worker());
  sockaddr_in addr{};
  unique_fd listener = tcp_listener(addr);
  unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_GE(client.get(), 0);
  const int flags = ::fcntl(client.get(), F_GETFL);
  ASSERT_EQ(::fcntl(client.get(), F_SETFL, flags | O_NONBLOCK), 0);
  watchdog wd([&] { ::shutdown(client.get(), SHUT_RDWR); });
  ssize_t n = -1;
  int err = 0;
  char buf[16]{};
  rt.block_on([&] {
    int r = posix::connect(client.get(), sa(addr), sizeof addr);
    if (r != 0) {
      ASSERT_EQ(errno, EINPROGRESS);
      ::pollfd p{client.get(), POLLOUT, 0};
      ASSERT_EQ(posix::poll(&p, 1, 5000), 1);
    }
    unique_fd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_GE(server.get(), 0);
    ASSERT_EQ(::fcntl(client.get(), F_SETFL, flags), 0);  // blocking again
    auto writer = weft::spawn([&] {
      weft::this_fiber::sleep_for(20ms);
      ::send(server.get(), "hello", 5, 0);
    });
    n = posix::recv(client.get(), buf, sizeof buf, 0);
    err = errno;
    writer.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(n, 5) << std::strerror(err);
  EXPECT_EQ(std::string(buf, 5), "hello");
  posix::close(client.release());
}

// A whole write on a socket made blocking again re-registers it; the old registration's
// release must not take the new one's epoll item with it (its waits then ended only when a
// stale-check slice did: a 1 MiB write took 400 ms, a 20 ms recv 100 ms).
TEST(PosixRaceTest, AWholeWriteAfterTheSocketWasMadeBlockingAgainKeepsItsWakeUps) {
  weft::runtime rt(one_worker());
  fd_pair sp = make_socketpair();
  const int fd = sp.a.get();
  const int flags = ::fcntl(fd, F_GETFL);
  ASSERT_EQ(::fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
  watchdog wd([&] {
    ::shutdown(fd, SHUT_RDWR);
    ::shutdown(sp.b.get(), SHUT_RDWR);
  });
  std::vector<char> big(1 << 20, 'z');
  ssize_t n = -1;
  int err = 0;
  int woken_by_data = -1;
  rt.block_on([&] {
    char c;
    EXPECT_EQ(posix::recv(fd, &c, 1, 0), -1);  // registered with the user's O_NONBLOCK
    while (::send(fd, big.data(), 65536, MSG_DONTWAIT) > 0) {
    }  // full: the write below parks at once
    ASSERT_EQ(::fcntl(fd, F_SETFL, flags), 0);  // blocking again
    auto reader = weft::spawn([&] {
      std::vector<char> buf(65536);
      while (posix::read(sp.b.get(), buf.data(), buf.size()) > 0) {
      }
    });
    n = posix::write(fd, big.data(), big.size());
    err = errno;
    ::shutdown(fd, SHUT_WR);
    reader.join();
    // A recv whose data comes 20 ms later is woken by the data's event, not by the 100 ms
    // slice that checks the registration: the receive count says which.
    const std::uint64_t before = rt.stats().timers_fired;
    auto sender = weft::spawn([&] {
      weft::this_fiber::sleep_for(20ms);
      ::send(sp.b.get(), "k", 1, 0);
    });
    EXPECT_EQ(posix::recv(fd, &c, 1, 0), 1);
    sender.join();
    woken_by_data = rt.stats().timers_fired - before <= 1 ? 1 : 0;  // the sender's sleep only
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "the write or the recv hung";
  EXPECT_EQ(n, static_cast<ssize_t>(big.size())) << std::strerror(err);
  EXPECT_EQ(woken_by_data, 1) << "the recv was woken by a timer (its registration's slice), not by epoll";
}

}  // namespace
