// weft::posix on pipes and terminals. A pipe or terminal is usually shared with others (stdio,
// a shell, a pipeline), so weft never switches its description to non-blocking: it parks on a
// private description of the same object and follows the caller's number (dup2, close). Most
// tests run on one worker with a watchdog that unblocks the descriptor after a deadline; the
// test fails on it.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
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
TEST(PosixTest, PipeReadAndWriteParkBothWays) {
  // More than the pipe holds (64 KiB), so the writer parks on a full pipe and the reader on
  // an empty one, on the same worker.
  weft::runtime rt(one_worker());
  fd_pair p = make_pipe();
  watchdog wd([&] { ::close(p.b.release()); });
  const std::size_t total = 1 << 20;
  std::size_t received = 0;
  bool match = true;
  rt.block_on([&] {
    auto writer = weft::spawn([&] {
      std::vector<unsigned char> chunk(8192);
      for (std::size_t sent = 0; sent < total; sent += chunk.size()) {
        for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<unsigned char>((sent + i) * 7);
        if (!write_all(p.b.get(), chunk.data(), chunk.size())) return;
      }
      p.b.reset();  // EOF for the reader
    });
    std::vector<unsigned char> buf(5000);
    for (;;) {
      ssize_t n = posix::read(p.a.get(), buf.data(), buf.size());
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i)
        match = match && buf[static_cast<std::size_t>(i)] == static_cast<unsigned char>((received + static_cast<std::size_t>(i)) * 7);
      received += static_cast<std::size_t>(n);
    }
    writer.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(received, total);
  EXPECT_TRUE(match);
}

// A pipe or terminal is usually shared (stdio of this process, a shell, a pipeline), and
// O_NONBLOCK is a flag of the open file description: weft works on a private description of
// the same pipe, so the caller's stays blocking. Switching it made stdio's own writes fail with
// EAGAIN (lost output) and left a terminal non-blocking after the program ended.
TEST(PosixTest, PipeKeepsItsCallersDescriptionBlocking) {
  weft::runtime rt(one_worker());
  fd_pair p = make_pipe();
  // Closing the write end would not wake a reader if weft's own write description outlived
  // it (the failure this test looks for): the rescue closes the read end through weft, which
  // ends the parked read with ECANCELED.
  const int read_end = p.a.get();
  watchdog wd([&] { posix::close(read_end); });
  rt.block_on([&] {
    auto reader = weft::spawn([&] {
      char c = 0;
      return posix::read(p.a.get(), &c, 1) == 1 && c == 'x';  // parks on the empty pipe first
    });
    weft::this_fiber::yield();
    EXPECT_EQ(posix::write(p.b.get(), "x", 1), 1);
    EXPECT_TRUE(reader.join());
  });
  EXPECT_FALSE(has_flag(p.a.get(), F_GETFL, O_NONBLOCK)) << "the read end was switched";
  EXPECT_FALSE(has_flag(p.b.get(), F_GETFL, O_NONBLOCK)) << "the write end was switched";

  // Blocking semantics for plain calls on the same numbers: a write of more than the pipe
  // holds waits for the reader instead of failing with EAGAIN (fwrite's lost output).
  const std::size_t total = 1 << 20;
  std::vector<char> data(total, 'y');
  std::size_t drained = 0;
  std::thread drain([&] {
    std::vector<char> buf(65536);
    while (drained < total) {
      ssize_t n = ::read(p.a.get(), buf.data(), buf.size());
      if (n <= 0) break;
      drained += static_cast<std::size_t>(n);
    }
  });
  EXPECT_EQ(::write(p.b.get(), data.data(), data.size()), static_cast<ssize_t>(total)) << std::strerror(errno);
  drain.join();
  EXPECT_EQ(drained, total);

  // weft::posix::close closes the caller's number and weft's description: the reader sees EOF
  // (an extra write description left open would keep it waiting forever).
  const int wfd = p.b.release();
  ASSERT_EQ(posix::close(wfd), 0);
  EXPECT_EQ(::fcntl(wfd, F_GETFD), -1) << "the number stays open";
  ssize_t eof = -1;
  rt.block_on([&] {
    char c;
    eof = posix::read(p.a.get(), &c, 1);
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "no EOF: weft's write description outlived the close";
  EXPECT_EQ(eof, 0);
  weft_test::expect_no_leaks(rt);
}

// A write to the pipe whose write end is `write_end` fails with EPIPE (SIGPIPE ignored for it):
// no reader is left, weft's own description of the read end included.
void expect_no_reader_left(int write_end) {
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  errno = 0;
  EXPECT_EQ(::write(write_end, "x", 1), -1) << "the pipe still has a reader: weft's";
  EXPECT_EQ(errno, EPIPE);
  ::sigaction(SIGPIPE, &old, nullptr);
}

// The number of a pipe end replaced with dup2 (a daemon redirecting its streams) names the new
// pipe: weft's calls follow it, and its description of the old pipe goes, so that pipe's
// writer sees no reader left (EPIPE), as with libc.
TEST(PosixTest, APipeNumberReplacedWithDup2IsFollowed) {
  weft::runtime rt(one_worker());
  fd_pair a = make_pipe();
  fd_pair b = make_pipe();
  const int number = a.a.get();
  watchdog wd([&] { posix::close(number); });
  ASSERT_EQ(::write(a.b.get(), "A", 1), 1);
  ASSERT_EQ(::write(b.b.get(), "B", 1), 1);
  char first = 0, second = 0;
  rt.block_on([&] { EXPECT_EQ(posix::read(number, &first, 1), 1); });  // registers pipe A
  ASSERT_EQ(::dup2(b.a.get(), number), number);
  rt.block_on([&] { EXPECT_EQ(posix::read(number, &second, 1), 1); });
  wd.done();
  EXPECT_FALSE(wd.fired());
  EXPECT_EQ(first, 'A');
  EXPECT_EQ(second, 'B') << "read the pipe the number named before dup2";
  expect_no_reader_left(a.b.get());
}

// A pipe end closed with a plain close() (a ported close the script did not rename), the number
// not reused: weft's next call on it fails with EBADF, as libc's, instead of reading the old
// pipe through weft's own description, which it closes, so the writer sees EPIPE.
TEST(PosixTest, APipeNumberClosedWithAPlainCloseIsNotReadThroughWeft) {
  weft::runtime rt(one_worker());
  fd_pair p = make_pipe();
  ASSERT_EQ(::write(p.b.get(), "ab", 2), 2);
  const int number = p.a.release();
  char c = 0;
  rt.block_on([&] { EXPECT_EQ(posix::read(number, &c, 1), 1); });  // registers it
  ASSERT_EQ(::close(number), 0);
  ssize_t n = 0;
  int err = 0;
  rt.block_on([&] {
    n = posix::read(number, &c, 1);
    err = errno;
  });
  EXPECT_EQ(n, -1) << "read the old pipe after its number was closed";
  EXPECT_EQ(err, EBADF);
  expect_no_reader_left(p.b.get());
}

// A pty master is a character device that a second open would turn into a new pty: weft
// switches it to non-blocking as a socket instead, and a read gets what the slave wrote.
TEST(PosixTest, APtyMasterIsReadAsItIs) {
  weft::runtime rt(one_worker());
  unique_fd master(::posix_openpt(O_RDWR | O_NOCTTY));
  if (master.get() < 0) GTEST_SKIP() << "no pseudo-terminals here (/dev/ptmx): " << std::strerror(errno);
  ASSERT_EQ(::grantpt(master.get()), 0);
  ASSERT_EQ(::unlockpt(master.get()), 0);
  unique_fd slave(::open(::ptsname(master.get()), O_RDWR | O_NOCTTY));
  ASSERT_GE(slave.get(), 0) << std::strerror(errno);
  const int m = master.get();
  watchdog wd([&] { posix::close(m); });
  ssize_t got = -1;
  rt.block_on([&] {
    auto reader = weft::spawn([&] {
      char buf[16];
      return posix::read(m, buf, sizeof buf);
    });
    weft::this_fiber::yield();
    EXPECT_EQ(::write(slave.get(), "hi\n", 3), 3);
    got = reader.join();
  });
  wd.done();
  EXPECT_FALSE(wd.fired()) << "the read never saw what the slave wrote";
  EXPECT_GT(got, 0);
}

}  // namespace
