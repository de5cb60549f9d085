// T24 (testing.md): accept on a listener whose process ran out of descriptors backs off
// instead of spinning, says so in at most three lines, and serves again once descriptors free
// up. The server is a child process (this binary run again) with RLIMIT_NOFILE lowered to what
// it has open plus 16.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "io_test_util.hpp"
#include "weft_test.hpp"

extern char** environ;

using namespace std::chrono_literals;
using namespace io_test;
using weft::net::endpoint;
using weft::net::tcp_listener;
using weft::net::tcp_stream;
using clk = std::chrono::steady_clock;

namespace {

constexpr const char* emfile_child_env = "WEFT_IO_STRESS_EMFILE_CHILD";

void write_line(int fd, const std::string& s) {
  std::string line = s + "\n";
  for (std::size_t off = 0; off < line.size();) {
    ssize_t k = ::write(fd, line.data() + off, line.size() - off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return;
    off += static_cast<std::size_t>(k);
  }
}

// Reads one line from `fd` (a pipe), waiting at most until `end`.
std::optional<std::string> read_line(int fd, clk::time_point end) {
  std::string line;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clk::now()).count();
    if (left <= 0) return std::nullopt;
    ::pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    char c;
    ssize_t k = ::read(fd, &c, 1);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return std::nullopt;
    if (c == '\n') return line;
    line += c;
  }
}

// The child: an echo server whose accept loop runs out of descriptors. Talks to the parent over
// stdin (commands) and `report` (results); returns the exit status.
int emfile_child(int report) {
  std::atomic<long> accepted{0}, finished{0}, errors{0};
  weft::runtime rt(weft::runtime_options{.workers = 2});
  std::optional<tcp_listener> l;
  rt.block_on([&] { l = tcp_listener::bind(endpoint::loopback_v4(0)); });
  auto server = rt.spawn([&] {
    weft::wait_group conns;
    while (errors.load() < 100) {
      std::error_code ec;
      tcp_stream s = l->accept(ec);
      if (ec == std::errc::operation_canceled) break;
      if (ec) {
        errors.fetch_add(1);
        continue;
      }
      accepted.fetch_add(1);
      conns.add(1);
      weft::spawn([&conns, &finished, s = std::move(s)]() mutable {
        s.set_deadline(clk::now() + 60s);
        char buf[256];
        for (;;) {
          std::error_code e;
          std::size_t k = s.read_some(buf, sizeof buf, e);
          if (e || k == 0) break;
          s.write_all(buf, k, e);
          if (e) break;
        }
        s.close();
        finished.fetch_add(1);
        conns.done();
      }).detach();
    }
    if (!conns.wait_for(20s)) errors.fetch_add(1000);
  });
  // One connection first, while descriptors are plentiful: sanitizer runtimes check a vptr the
  // first time they meet a type by opening a pipe, which fails without descriptors (a false
  // "invalid vptr" report). After this, every type the server uses has been checked.
  rt.block_on([&] {
    auto c = tcp_stream::connect(l->local_endpoint(), clk::now() + 10s);
    c.set_deadline(clk::now() + 10s);
    char x = 'w';
    c.write_all(&x, 1);
    c.read_exact(&x, 1);
  });
  if (!weft_test::wait_until([&] { return finished.load() == 1; })) return 15;
  ::rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  long limit = 0;
  while (free_fds_below(limit) < 16) ++limit;  // exactly 16 numbers left for connections
  lim.rlim_cur = static_cast<rlim_t>(limit);
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return 10;
  write_line(report, "port " + std::to_string(l->local_endpoint().port()));
  auto cmd = read_line(0, clk::now() + 30s);
  if (cmd != "go") return 11;
  // Sixteen accepted connections take every free number; the accept loop is then failing
  // (more clients wait in the backlog). Nothing here may open a descriptor to find out.
  if (!weft_test::wait_until([&] { return accepted.load() == 1 + 16; })) {
    write_line(report, "accepted only " + std::to_string(accepted.load()));
    return 12;
  }
  long cpu0 = process_cpu_us();
  std::this_thread::sleep_for(2s);  // the measurement window itself
  long cpu = process_cpu_us() - cpu0;
  write_line(report, "cpu_us " + std::to_string(cpu) + " accepted " + std::to_string(accepted.load() - 1));
  cmd = read_line(0, clk::now() + 30s);
  if (cmd != "quit") return 13;
  l->close();
  server.join();
  write_line(report, "done accepted " + std::to_string(accepted.load()) + " errors " + std::to_string(errors.load()));
  return errors.load() == 0 ? 0 : 14;
}

// A child process to talk to; kills and reaps it if the test ends early.
struct child_process {
  pid_t pid = -1;
  int to_child = -1, report = -1, err = -1;
  std::string err_text;
  std::thread err_reader;
  ~child_process() {
    if (to_child >= 0) ::close(to_child);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int st;
      ::waitpid(pid, &st, 0);
    }
    if (err_reader.joinable()) err_reader.join();
    if (report >= 0) ::close(report);
    if (err >= 0) ::close(err);
  }
  // Waits up to `limit` for the exit status; -1 on timeout.
  int wait(clk::duration limit) {
    auto end = clk::now() + limit;
    while (clk::now() < end) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return st;
      }
      std::this_thread::sleep_for(1ms);
    }
    return -1;
  }
};

}  // namespace

TEST(IoEmfileTest, AcceptBacksOffWhenOutOfDescriptorsAndServesAgain) {
  // T24. The child is this binary run again (a fresh process: no threads inherited, which
  // TSan requires), selected by an environment variable and this test's name.
  if (const char* fd = std::getenv(emfile_child_env)) std::_Exit(emfile_child(std::atoi(fd)));
  const int clients = 64;
  child_process child;
  int cmd[2], rep[2], err[2];
  ASSERT_EQ(::pipe2(cmd, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(rep, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
  ::posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_adddup2(&fa, cmd[0], 0);
  ::posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  ::posix_spawn_file_actions_adddup2(&fa, rep[1], 3);
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string filter = std::string("--gtest_filter=") + info->test_suite_name() + "." + info->name();
  std::string exe = "/proc/self/exe";
  std::vector<char*> argv{exe.data(), filter.data(), nullptr};
  std::string marker = std::string(emfile_child_env) + "=3";
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(marker.data());
  envp.push_back(nullptr);
  int rc = ::posix_spawn(&child.pid, exe.c_str(), &fa, nullptr, argv.data(), envp.data());
  ::posix_spawn_file_actions_destroy(&fa);
  ::close(cmd[0]);
  ::close(rep[1]);
  ::close(err[1]);
  child.to_child = cmd[1];
  child.report = rep[0];
  child.err = err[0];
  ASSERT_EQ(rc, 0) << std::strerror(rc);
  child.err_reader = std::thread([&child] {
    char buf[4096];
    for (;;) {
      ssize_t k = ::read(child.err, buf, sizeof buf);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return;
      child.err_text.append(buf, static_cast<std::size_t>(k));
    }
  });

  auto port_line = read_line(child.report, clk::now() + 30s);
  ASSERT_TRUE(port_line && port_line->rfind("port ", 0) == 0) << "no port from the child";
  auto ep = endpoint::loopback_v4(static_cast<std::uint16_t>(std::atoi(port_line->c_str() + 5)));
  std::vector<tcp_stream> held;
  for (int i = 0; i < clients; ++i) held.push_back(tcp_stream::connect(ep, clk::now() + 10s));
  write_line(child.to_child, "go");
  auto cpu_line = read_line(child.report, clk::now() + 30s);
  ASSERT_TRUE(cpu_line.has_value()) << "no CPU figure from the child";
  long cpu_us = -1, accepted = -1;
  std::sscanf(cpu_line->c_str(), "cpu_us %ld accepted %ld", &cpu_us, &accepted);
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, clients) << "the child never ran out of descriptors";

  // The clients leave; a new one is served as soon as the back-off notices.
  auto left_at = clk::now();
  held.clear();
  const auto budget = weft_test::timing_budgets_apply() ? 1500ms : 10000ms;
  std::string reply(4, '\0');
  {
    tcp_stream s = tcp_stream::connect(ep, left_at + budget);
    s.set_deadline(left_at + budget);
    s.write_all("ping", 4);
    std::error_code ec;
    s.read_exact(reply.data(), reply.size(), ec);
    EXPECT_FALSE(ec) << ec.message();
  }
  long served_ms = micros(clk::now() - left_at) / 1000;
  EXPECT_EQ(reply, "ping");
  write_line(child.to_child, "quit");
  auto done_line = read_line(child.report, clk::now() + 30s);
  int st = child.wait(30s);
  ::close(child.to_child);
  child.to_child = -1;
  child.err_reader.join();

  long accept_lines = 0;
  std::size_t pos = 0;
  while (pos < child.err_text.size()) {
    std::size_t end = child.err_text.find('\n', pos);
    if (end == std::string::npos) end = child.err_text.size();
    if (child.err_text.substr(pos, end - pos).find("accept") != std::string::npos) ++accept_lines;
    pos = end + 1;
  }
  RecordProperty("child_cpu_us_over_2s", std::to_string(cpu_us));
  RecordProperty("served_again_ms", std::to_string(served_ms));
  EXPECT_TRUE(done_line.has_value()) << child.err_text;
  EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
      << "child status " << st << " (" << done_line.value_or("no final report") << ")\n" << child.err_text;
  EXPECT_GE(accept_lines, 1) << "the child never logged running out of descriptors\n" << child.err_text;
  EXPECT_LE(accept_lines, 3) << child.err_text;
  EXPECT_EQ(child.err_text.find("Sanitizer"), std::string::npos) << child.err_text;
  EXPECT_EQ(child.err_text.find("runtime error"), std::string::npos) << child.err_text;
  if (weft_test::timing_budgets_apply()) {
    EXPECT_LT(cpu_us, 100'000);
  }
}

TEST(IoEmfileDeathTest, ConnectBindAndResolveOutOfDescriptorsSayWhichLimit) {
  // A child with no descriptor number left: connect, bind and resolve fail with EMFILE, and the
  // message names the limit and what to do, as accept's does; so does weft::net::describe of
  // the error_code form's error. The exception type and the error
  // categories are met once before the limit drops (UBSan's first check of a type's vptr may
  // open a descriptor, and fails with a false report without one).
  EXPECT_EXIT(
      {
        try {  // every type and category the failing calls meet, met once here
          const std::error_code emfile(EMFILE, std::system_category());
          if (emfile == std::errc::too_many_files_open && emfile != std::errc::timed_out) {
            throw std::system_error(emfile, "warm-up " + emfile.message());
          }
        } catch (const std::system_error& e) {
          (void)e.what();
        }
        (void)weft::net::resolve("localhost", "80");  // resolve's job type, likewise
        const int lowest_free = ::dup(0);
        ::close(lowest_free);
        ::rlimit lim{};
        ::getrlimit(RLIMIT_NOFILE, &lim);
        lim.rlim_cur = static_cast<rlim_t>(lowest_free);  // every number below it is taken
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) std::_Exit(2);
        // The error_code form fails the same way; describe() gives its message the same hint.
        std::error_code ec;
        (void)tcp_stream::connect(endpoint::loopback_v4(1), clk::now() + 1s, ec);
        std::fprintf(stderr, "error_code form: %s\n", weft::net::describe(ec).c_str());
        for (int k = 0; k < 3; ++k) {
          try {
            if (k == 0) (void)tcp_stream::connect(endpoint::loopback_v4(1), clk::now() + 1s);
            else if (k == 1) (void)tcp_listener::bind(endpoint::loopback_v4(0));
            // glibc alone says "Name or service not known". Not "localhost": nss-myhostname,
            // where installed, answers it without opening anything.
            else (void)weft::net::resolve("weft-emfile-test.invalid", "80");
          } catch (const std::system_error& e) {
            std::fprintf(stderr, "%s\n", e.what());
          }
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0),
      "error_code form: Too many open files \\(out of descriptors: RLIMIT_NOFILE is [0-9]+; raise `ulimit -n` "
      "or close idle connections\\)\n"
      "weft::net::tcp_stream::connect 127.0.0.1:1 \\(out of descriptors: RLIMIT_NOFILE is [0-9]+; raise `ulimit -n` "
      "or close idle connections\\): Too many open files\n"
      "weft::net::tcp_listener::bind 127.0.0.1:0 \\(out of descriptors: RLIMIT_NOFILE is [0-9]+.*\n"
      "weft::net::resolve \"weft-emfile-test.invalid\" \"80\" \\(out of descriptors: RLIMIT_NOFILE is [0-9]+; raise `ulimit -n` "
      "or close idle connections\\): Too many open files\n");
}

