// Unix-domain stream sockets and UDP through weft::net: a listener on a path in a fresh temporary
// directory (stale socket files removed by bind, the file removed with the listener), abstract
// names, socket pairs, connect errors that name the path; datagrams with their sender, connected
// mode, deadlines, stop requests, close from another fiber and truncation. Every wait has a
// deadline.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "posix_test_util.hpp"
#include "weft_test.hpp"

using namespace std::chrono_literals;
using weft::net::endpoint;
using weft::net::udp_socket;
using weft::net::unix_listener;
using weft::net::unix_stream;
using weft_test::RuntimeTest;
using clk = std::chrono::steady_clock;

namespace {

// A directory made by mkdtemp, removed (with what is left in it) at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = "/tmp/weft-unix-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~temp_dir() {
    if (path_.empty()) return;
    for (const char* name : {"echo.sock", "stale.sock", "a.sock", "b.sock", "live.sock", "file.sock", "gone.sock"})
      ::unlink((path_ + "/" + name).c_str());
    ::rmdir(path_.c_str());
  }
  std::string file(const char* name) const { return path_ + "/" + name; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

bool exists(const std::string& path) {
  struct ::stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}
bool is_socket_file(const std::string& path) {
  struct ::stat st{};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// An abstract name no other test run uses.
std::string abstract_name() {
  static std::atomic<int> n{0};
  return "@weft-test-" + std::to_string(::getpid()) + "-" + std::to_string(n.fetch_add(1));
}

// Accepts connections on `l` until one carries data, and echoes that one until end of stream.
// (Connections that end at once are skipped: bind's probe of a live path makes one.)
weft::join_handle<void> echo_once(unix_listener& l) {
  return weft::spawn([&l] {
    for (;;) {
      unix_stream s = l.accept();
      s.set_deadline(clk::now() + 10s);
      char buf[512];
      std::size_t n = s.read_some(buf, sizeof buf);
      if (n == 0) continue;
      do {
        s.write_all(buf, n);
      } while ((n = s.read_some(buf, sizeof buf)) != 0);
      return;
    }
  });
}

// Connects to `to`, sends `text`, checks the echo, half-closes and sees the end of stream.
void expect_echo(const endpoint& to, const std::string& text) {
  unix_stream c = unix_stream::connect(to, clk::now() + 5s);
  c.set_deadline(clk::now() + 5s);
  c.write_all(text.data(), text.size());
  std::string got(text.size(), '\0');
  c.read_exact(got.data(), got.size());
  EXPECT_EQ(got, text);
  c.shutdown(weft::net::shutdown_how::write);
  char extra;
  EXPECT_EQ(c.read_some(&extra, 1), 0u);
}

}  // namespace

class UnixTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(UnixTest);

TEST_P(UnixTest, ListenerOnAPathEchoesAndRemovesItsFile) {
  temp_dir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("echo.sock");
  rt().block_on([&] {
    {
      auto l = unix_listener::bind(endpoint::unix_path(path));
      l.set_read_deadline(clk::now() + 10s);
      EXPECT_TRUE(is_socket_file(path));
      EXPECT_EQ(l.local_endpoint().path(), path);
      EXPECT_EQ(l.local_endpoint().to_string(), "unix:" + path);
      auto server = echo_once(l);
      expect_echo(endpoint::parse("unix:" + path), "hello over a path");
      server.join();
      // A second round through the same listener, named the other way.
      auto again = echo_once(l);
      expect_echo(endpoint::parse(path), std::string(300, 'x'));
      again.join();
    }
    EXPECT_FALSE(exists(path)) << "the listener left its socket file behind";
  });
}

TEST_P(UnixTest, AcceptGivesThePeerAndErrorsNameTheSocketPath) {
  // The client's peer is the listener's path; the accepted side's peer is unnamed, so it is
  // named by its own (the listener's) path.
  temp_dir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("echo.sock");
  rt().block_on([&] {
    auto l = unix_listener::bind(endpoint::unix_path(path));
    unix_stream server;
    endpoint peer = endpoint::loopback_v4(1);
    auto acceptor = weft::spawn([&] { server = l.accept(&peer); });
    auto client = unix_stream::connect(endpoint::unix_path(path), clk::now() + 5s);
    acceptor.join();
    EXPECT_TRUE(peer.is_unix());  // accept filled it in: the client's unnamed address
    EXPECT_EQ(peer.path(), "");
    char c;
    for (unix_stream* s : {&client, &server}) {
      s->set_read_deadline(clk::now());
      std::system_error e = weft_test::system_error_of([&] { s->read_some(&c, 1); });
      const char* where = s == &client ? "peer unix:" : "on unix:";
      EXPECT_EQ(std::string(e.what()), "weft::net::unix_stream::read_some (" + std::string(where) + path +
                                           "): the deadline passed: Connection timed out");
    }
    l.set_read_deadline(clk::now());
    std::system_error e = weft_test::system_error_of([&] { (void)l.accept(); });
    EXPECT_EQ(std::string(e.what()),
              "weft::net::unix_listener::accept (on unix:" + path + "): the deadline passed: Connection timed out");
  });
}

TEST_P(UnixTest, BindRemovesAStaleSocketFileButNotALiveOneOrAnotherFile) {
  temp_dir dir;
  ASSERT_TRUE(dir.ok());
  const std::string stale = dir.file("stale.sock");
  // A crashed server's file: bound, never unlinked, nobody listening.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    ::sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, stale.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<::sockaddr*>(&sa), sizeof sa), 0);
    ::close(fd);
  }
  ASSERT_TRUE(is_socket_file(stale));
  rt().block_on([&] {
    auto l = unix_listener::bind(endpoint::unix_path(stale));
    l.set_read_deadline(clk::now() + 10s);
    auto server = echo_once(l);
    expect_echo(endpoint::unix_path(stale), "after a stale file");
    server.join();

    // A live listener's file is left alone: the second bind fails and names the path.
    try {
      unix_listener::bind(endpoint::unix_path(stale));
      ADD_FAILURE() << "bound a path another listener serves";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::address_in_use);
      EXPECT_EQ(std::string(e.what()), "weft::net::unix_listener::bind unix:" + stale +
                                           " (a server is listening on it): Address already in use");
    }
    EXPECT_TRUE(is_socket_file(stale));
    auto again = echo_once(l);
    expect_echo(endpoint::unix_path(stale), "still served");
    again.join();

    // A regular file is not a socket file: never removed.
    const std::string file = dir.file("file.sock");
    int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
    std::system_error e = weft_test::system_error_of([&] { unix_listener::bind(endpoint::unix_path(file)); });
    EXPECT_EQ(e.code(), std::errc::address_in_use);
    EXPECT_EQ(std::string(e.what()), "weft::net::unix_listener::bind unix:" + file +
                                         " (the path exists and is not a socket: remove it or choose another path): "
                                         "Address already in use");
    EXPECT_TRUE(exists(file));
    ::unlink(file.c_str());
  });
}

TEST_P(UnixTest, ClosedListenerPathCanBeBoundAgainAndMoveAssignmentRemovesTheOldFile) {
  temp_dir dir;
  ASSERT_TRUE(dir.ok());
  const std::string a = dir.file("a.sock");
  const std::string b = dir.file("b.sock");
  rt().block_on([&] {
    {
      auto l = unix_listener::bind(endpoint::unix_path(a));
      l.close();
      EXPECT_FALSE(exists(a)) << "close kept the socket file";
      // Closed through the base class: the file stays; nobody listens, so a new bind treats it
      // as stale.
      auto lbase = unix_listener::bind(endpoint::unix_path(a));
      static_cast<weft::net::listener_socket&>(lbase).close();
      EXPECT_TRUE(is_socket_file(a));
      auto l2 = unix_listener::bind(endpoint::unix_path(a));
      l2.set_read_deadline(clk::now() + 10s);
      auto server = echo_once(l2);
      expect_echo(endpoint::unix_path(a), "rebound");
      server.join();
      // The first listener goes away while the second listens: the file is the second's now,
      // and it stays (a server handing over to its successor keeps the path reachable).
      { unix_listener old = std::move(l); }
      { unix_listener old = std::move(lbase); }
      EXPECT_TRUE(is_socket_file(a)) << "the closed listener removed its successor's socket file";
      auto again = echo_once(l2);
      expect_echo(endpoint::unix_path(a), "still reachable");
      again.join();
    }
    EXPECT_FALSE(exists(a));
    auto la = unix_listener::bind(endpoint::unix_path(a));
    auto lb = unix_listener::bind(endpoint::unix_path(b));
    la = std::move(lb);
    EXPECT_FALSE(exists(a)) << "move assignment kept the replaced listener's file";
    EXPECT_TRUE(is_socket_file(b));
    EXPECT_FALSE(lb.is_open());
    la.set_read_deadline(clk::now() + 10s);
    auto server = echo_once(la);
    expect_echo(endpoint::unix_path(b), "moved");
    server.join();
    {
      unix_listener gone = std::move(la);
    }
    EXPECT_FALSE(exists(b));
  });
}

TEST_P(UnixTest, AbstractNamesEchoAndAreFreedOnClose) {
  const std::string name = abstract_name();
  const endpoint ep = endpoint::parse("unix:" + name);
  rt().block_on([&] {
    {
      auto l = unix_listener::bind(ep);
      l.set_read_deadline(clk::now() + 10s);
      EXPECT_EQ(l.local_endpoint(), ep);
      EXPECT_EQ(l.local_endpoint().to_string(), "unix:" + name);
      EXPECT_FALSE(exists(name.substr(1))) << "an abstract name made a file";
      auto server = echo_once(l);
      expect_echo(ep, "abstract");
      server.join();
      std::error_code ec;
      try {
        unix_listener::bind(ep);
      } catch (const std::system_error& e) {
        ec = e.code();
        EXPECT_NE(std::string(e.what()).find("unix:" + name), std::string::npos) << e.what();
      }
      EXPECT_EQ(ec, std::errc::address_in_use);
    }
    auto l = unix_listener::bind(ep);  // the name was released with the listener
    l.set_read_deadline(clk::now() + 10s);
    auto server = echo_once(l);
    expect_echo(ep, "abstract again");
    server.join();
  });
}

TEST_P(UnixTest, PairCarriesBothWaysAndReportsEndOfStream) {
  rt().block_on([&] {
    auto [a, b] = unix_stream::pair();
    a.set_deadline(clk::now() + 5s);
    b.set_deadline(clk::now() + 5s);
    EXPECT_TRUE(a.local_endpoint().is_unix());
    EXPECT_EQ(a.peer_endpoint().to_string(), "unix:");  // unnamed
    std::vector<char> big(1 << 20);
    std::mt19937 rng(3);
    for (auto& c : big) c = static_cast<char>(rng());
    std::vector<char> got(big.size());
    std::error_code ec;
    auto reader = weft::spawn([&b = b, &got, &ec] { b.read_exact(got.data(), got.size(), ec); });
    a.write_all(big.data(), big.size());
    reader.join();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(got == big);
    b.write_all("back", 4);
    char four[4];
    EXPECT_EQ(a.read_exact(four, 4), 4u);
    EXPECT_EQ(std::memcmp(four, "back", 4), 0);
    b.shutdown(weft::net::shutdown_how::write);
    EXPECT_EQ(a.read_some(four, 4), 0u);
    EXPECT_EQ(a.read_exact(four, 4, ec), 0u);
    EXPECT_EQ(ec, weft::net::net_errc::end_of_stream);
    b.close();
    // Writing to a closed peer: EPIPE (or ECONNRESET), never SIGPIPE.
    a.write_all(big.data(), big.size(), ec);
    EXPECT_TRUE(ec == std::errc::broken_pipe || ec == std::errc::connection_reset) << ec.message();
  });
}

TEST_P(UnixTest, AShortReadAtAPassedDescriptorOrOutOfBandByteDoesNotStallTheRest) {
  // An AF_UNIX stream read ends after a message that carried SCM_RIGHTS, and at a MSG_OOB
  // byte, with the bytes after it already queued and no further edge to announce them: that
  // short read must not make the next read wait for an event (read_some keeps its "drained"
  // hint for TCP only, io_desc::tcp). The reader parks first, so the poller has counted the
  // event it wakes on; all bytes are sent before the (single) worker polls again, so with one
  // worker nothing else moves the count and the defect shows deterministically.
  rt().block_on([&] {
    for (int oob = 0; oob < 2; ++oob) {
      auto [a, b] = unix_stream::pair();
      b.set_read_deadline(clk::now() + 2s);
      std::string got;
      std::size_t first = 0;
      std::error_code ec;
      clk::duration after_first{};
      auto reader = weft::spawn([&b = b, &got, &first, &ec, &after_first] {
        char buf[64];
        clk::time_point t0;
        while (got.size() < 6) {
          std::size_t n = b.read_some(buf, sizeof buf, ec);
          if (ec || n == 0) return;
          if (got.empty()) {
            first = n;
            t0 = clk::now();
          }
          got.append(buf, n);
        }
        after_first = clk::now() - t0;
      });
      ASSERT_TRUE(weft_test::wait_until([&] {
        for (const weft::fiber_info& f : rt().fibers())
          if (f.status == weft::fiber_status::parked && f.waiting_on == "I/O read") return true;
        return false;
      }));
      const int fd = a.native_handle();
      if (oob == 0) {
        posix_test::fd_message m(fd, "abc");  // any descriptor will do: a's own
        EXPECT_EQ(::sendmsg(fd, &m.msg, 0), 3);
        EXPECT_EQ(::send(fd, "def", 3, 0), 3);
      } else {
        EXPECT_EQ(::send(fd, "abc", 3, 0), 3);
        const bool sent = ::send(fd, "U", 1, MSG_OOB) == 1;
        const int err = errno;
        EXPECT_EQ(::send(fd, "def", 3, 0), 3);
        if (!sent) {  // a kernel without AF_UNIX MSG_OOB (before 5.15): nothing to stop the read
          EXPECT_EQ(err, EOPNOTSUPP) << std::strerror(err);
          reader.join();
          continue;
        }
      }
      reader.join();
      EXPECT_FALSE(ec) << ec.message() << " after \"" << got << "\", oob=" << oob;
      EXPECT_EQ(first, 3u) << "oob=" << oob;  // short: the read stopped after "abc"
      EXPECT_EQ(got, "abcdef") << "oob=" << oob;
      EXPECT_LT(after_first, 1s) << "oob=" << oob;
    }
  });
}

TEST_P(UnixTest, ConnectErrorsNameThePath) {
  temp_dir dir;
  ASSERT_TRUE(dir.ok());
  const std::string missing = dir.file("gone.sock");
  rt().block_on([&] {
    try {
      unix_stream::connect(endpoint::unix_path(missing), clk::now() + 5s);
      ADD_FAILURE() << "connected to a missing path";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
      EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("unix_stream::connect"), std::string::npos) << e.what();
    }
    std::error_code ec;
    unix_stream s = unix_stream::connect(endpoint::unix_path(missing), clk::now() + 5s, ec);
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
    EXPECT_FALSE(s.is_open());
    unix_stream::connect(endpoint::loopback_v4(1), clk::now() + 5s, ec);
    EXPECT_EQ(ec, std::errc::address_family_not_supported);
    unix_stream::connect(endpoint(), clk::now() + 5s, ec);
    EXPECT_EQ(ec, std::errc::invalid_argument);
    unix_stream::connect(endpoint::parse("unix:" + abstract_name()), clk::now() + 5s, ec);
    EXPECT_EQ(ec, std::errc::connection_refused);
    try {
      unix_listener::bind(endpoint::loopback_v4(0));
      ADD_FAILURE() << "a Unix listener bound an IP endpoint";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::address_family_not_supported);
    }
  });
}

TEST_P(UnixTest, AcceptEndsOnDeadlineStopAndClose) {
  rt().block_on([&] {
    auto l = unix_listener::bind(endpoint::parse("unix:" + abstract_name()));
    std::error_code ec;
    auto start = clk::now();
    l.set_read_deadline(start + 30ms);
    l.accept(ec);
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_GE(clk::now() - start, 30ms);
    l.set_read_deadline(clk::now() + 10s);

    std::stop_source src;
    auto stopped = weft::spawn([&] {
      std::error_code e;
      l.accept(src.get_token(), e);
      return e;
    });
    weft::this_fiber::sleep_for(10ms);
    src.request_stop();
    EXPECT_EQ(stopped.join(), std::errc::operation_canceled);
    try {
      l.accept(src.get_token());
      ADD_FAILURE() << "accept with a stopped token returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::operation_canceled);
      EXPECT_NE(std::string(e.what()).find("unix_listener::accept"), std::string::npos) << e.what();
    }

    auto closed = weft::spawn([&] {
      std::error_code e;
      l.accept(e);
      return e;
    });
    weft::this_fiber::sleep_for(10ms);
    l.close();
    EXPECT_EQ(closed.join(), std::errc::operation_canceled);
  });
}

TEST_P(UnixTest, ConnectToAFullBacklogCompletesOnceTheServerAccepts) {
  // A Unix connect to a listener whose backlog is full gets EAGAIN; weft's connect must park
  // and complete once the server accepts, well before its deadline. (Linux queues backlog + 1
  // connections: two here.)
  rt().block_on([&] {
    auto l = unix_listener::bind(endpoint::parse("unix:" + abstract_name()), {.backlog = 1});
    auto ep = l.local_endpoint();
    const int clients = 4;
    std::atomic<int> attempting{0}, done{0};
    std::vector<std::error_code> errs(clients);
    std::vector<unix_stream> held(clients);
    std::vector<weft::join_handle<void>> cs;
    auto client = [&](int i) {
      return weft::spawn([&, i] {
        auto k = static_cast<std::size_t>(i);
        attempting.fetch_add(1);
        held[k] = unix_stream::connect(ep, clk::now() + 1s, errs[k]);
        done.fetch_add(1);
      });
    };
    for (int i = 0; i < 2; ++i) cs.push_back(client(i));
    EXPECT_TRUE(weft_test::wait_until([&] { return done.load() == 2; }, 1s));  // the backlog is full now
    for (int i = 2; i < clients; ++i) cs.push_back(client(i));
    EXPECT_TRUE(weft_test::wait_until([&] { return attempting.load() == clients; }, 1s));
    weft::this_fiber::sleep_for(20ms);  // their connect(2) calls return EAGAIN at once
    auto start = clk::now();
    l.set_read_deadline(start + 1500ms);
    int accepted = 0;
    for (int i = 0; i < clients; ++i) {
      std::error_code ec;
      unix_stream s = l.accept(ec);
      if (!ec) ++accepted;
    }
    for (auto& h : cs) h.join();
    int failed = 0;
    for (auto& e : errs) failed += e ? 1 : 0;
    EXPECT_EQ(failed, 0) << "connects to a full backlog ended with " << errs.back().message()
                         << " although the server accepted";
    EXPECT_EQ(accepted, clients);
    EXPECT_LT(clk::now() - start, 500ms);
  });
}

TEST_P(UnixTest, StopRequestEndsAConnectWaitingOnAFullBacklog) {
  // The stop_token form: a connect retrying against a full backlog ends with
  // operation_canceled soon after the stop request, long before its deadline.
  rt().block_on([&] {
    auto l = unix_listener::bind(endpoint::parse("unix:" + abstract_name()), {.backlog = 1});
    auto ep = l.local_endpoint();
    std::vector<unix_stream> fill;
    for (int i = 0; i < 2; ++i) fill.push_back(unix_stream::connect(ep, clk::now() + 1s));  // backlog + 1
    std::stop_source stop;
    std::error_code ec;
    clk::time_point ended;
    auto c = weft::spawn([&] {
      unix_stream s = unix_stream::connect(ep, clk::now() + 10s, stop.get_token(), ec);
      ended = clk::now();
      EXPECT_FALSE(s.is_open());
    });
    weft::this_fiber::sleep_for(50ms);
    auto asked = clk::now();
    stop.request_stop();
    c.join();
    EXPECT_EQ(ec, std::errc::operation_canceled) << ec.message();
    EXPECT_LT(ended - asked, 1s);
    // The throwing form says what failed.
    std::stop_source already;
    already.request_stop();
    try {
      unix_stream::connect(ep, clk::now() + 10s, already.get_token());
      ADD_FAILURE() << "connected although the backlog is full and stop was requested";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::operation_canceled);
      EXPECT_NE(std::string(e.what()).find("unix_stream::connect"), std::string::npos) << e.what();
    }
  });
}

// --- UDP ----------------------------------------------------------------------------------

class UdpTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(UdpTest);

TEST_P(UdpTest, SendToAndRecvFromCarryTheSender) {
  rt().block_on([&] {
    auto a = udp_socket::bind(endpoint::loopback_v4(0));
    auto b = udp_socket::bind(endpoint::loopback_v4(0));
    a.set_deadline(clk::now() + 5s);
    b.set_deadline(clk::now() + 5s);
    EXPECT_NE(a.local_endpoint().port(), 0);
    std::string got(64, '\0');
    endpoint from;
    auto receiver = weft::spawn([&] { return b.recv_from(got.data(), got.size(), from); });
    EXPECT_EQ(a.send_to("hello", 5, b.local_endpoint()), 5u);
    std::size_t n = receiver.join();
    EXPECT_EQ(got.substr(0, n), "hello");
    EXPECT_EQ(from, a.local_endpoint());
    // And back, to the address recv_from reported.
    EXPECT_EQ(b.send_to("olleh", 5, from), 5u);
    endpoint from2;
    n = a.recv_from(got.data(), got.size(), from2);
    EXPECT_EQ(got.substr(0, n), "olleh");
    EXPECT_EQ(from2, b.local_endpoint());
    // An empty datagram is a datagram.
    a.send_to("", 0, b.local_endpoint());
    EXPECT_EQ(b.recv_from(got.data(), got.size(), from), 0u);
    EXPECT_EQ(from, a.local_endpoint());
  });
}

TEST_P(UdpTest, ManyDatagramsFromSeveralFibersArriveWithTheirSenders) {
  const int senders = 4;
  const int each = static_cast<int>(weft_test::sized(200, 100, 50));
  rt().block_on([&] {
    auto sink = udp_socket::bind(endpoint::loopback_v4(0));
    sink.set_deadline(clk::now() + 20s);
    std::vector<udp_socket> socks;
    for (int s = 0; s < senders; ++s) {
      socks.push_back(udp_socket::bind(endpoint::loopback_v4(0)));
      socks.back().set_deadline(clk::now() + 20s);
    }
    std::vector<weft::join_handle<void>> hs;
    for (int s = 0; s < senders; ++s) {
      hs.push_back(weft::spawn([&, s] {
        auto& me = socks[static_cast<std::size_t>(s)];
        for (int i = 0; i < each; ++i) {
          int msg[2] = {s, i};
          me.send_to(msg, sizeof msg, sink.local_endpoint());
          char ack;
          endpoint from;
          me.recv_from(&ack, 1, from);  // one in flight per sender: nothing overflows
        }
      }));
    }
    std::vector<int> next(senders, 0);
    int bad = 0;
    for (int k = 0; k < senders * each; ++k) {
      int msg[2];
      endpoint from;
      std::size_t n = sink.recv_from(msg, sizeof msg, from);
      if (n != sizeof msg || msg[0] < 0 || msg[0] >= senders ||
          from != socks[static_cast<std::size_t>(msg[0])].local_endpoint() || msg[1] != next[static_cast<std::size_t>(msg[0])]) {
        ++bad;
        continue;
      }
      ++next[static_cast<std::size_t>(msg[0])];
      sink.send_to("a", 1, from);
    }
    for (auto& h : hs) h.join();
    EXPECT_EQ(bad, 0);
    for (int s = 0; s < senders; ++s) EXPECT_EQ(next[static_cast<std::size_t>(s)], each);
  });
}

TEST_P(UdpTest, ConnectedModeTalksToThePeerOnly) {
  rt().block_on([&] {
    auto server = udp_socket::bind(endpoint::loopback_v4(0));
    server.set_deadline(clk::now() + 5s);
    auto c = udp_socket::connect(server.local_endpoint());
    c.set_deadline(clk::now() + 5s);
    EXPECT_EQ(c.peer_endpoint(), server.local_endpoint());
    EXPECT_EQ(c.send("ping", 4), 4u);
    char buf[16];
    endpoint from;
    EXPECT_EQ(server.recv_from(buf, sizeof buf, from), 4u);
    EXPECT_EQ(from, c.local_endpoint());
    // A stranger's datagram to the connected socket is filtered out by the kernel.
    auto stranger = udp_socket::bind(endpoint::loopback_v4(0));
    stranger.send_to("nope", 4, c.local_endpoint());
    server.send_to("pong", 4, from);
    EXPECT_EQ(c.recv(buf, sizeof buf), 4u);
    EXPECT_EQ(std::memcmp(buf, "pong", 4), 0);
    c.set_read_deadline(clk::now() + 30ms);
    std::error_code ec;
    EXPECT_EQ(c.recv(buf, sizeof buf, ec), 0u);
    EXPECT_EQ(ec, std::errc::timed_out) << "the stranger's datagram got through";
    // Unconnected sockets need an address; an empty one is rejected.
    server.send_to("x", 1, endpoint(), ec);
    EXPECT_EQ(ec, std::errc::invalid_argument);
    server.send("x", 1, ec);
    EXPECT_TRUE(ec == std::errc::destination_address_required || ec == std::errc::not_connected) << ec.message();
  });
}

TEST_P(UdpTest, SendToAClosedPortReportsConnectionRefusedOnTheConnectedSocket) {
  rt().block_on([&] {
    endpoint dead;
    {
      auto tmp = udp_socket::bind(endpoint::loopback_v4(0));
      dead = tmp.local_endpoint();
    }
    auto c = udp_socket::connect(dead);
    c.set_deadline(clk::now() + 5s);
    std::error_code ec;
    c.send("x", 1, ec);
    EXPECT_FALSE(ec);
    char buf[4];
    c.recv(buf, sizeof buf, ec);  // the ICMP port unreachable comes back as an error
    EXPECT_EQ(ec, std::errc::connection_refused) << ec.message();
  });
}

TEST_P(UdpTest, RecvDeadlineTimesOutAndIsSticky) {
  rt().block_on([&] {
    auto s = udp_socket::bind(endpoint::loopback_v4(0));
    auto start = clk::now();
    s.set_read_deadline(start + 30ms);
    char buf[8];
    endpoint from;
    std::error_code ec;
    EXPECT_EQ(s.recv_from(buf, sizeof buf, from, ec), 0u);
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_GE(clk::now() - start, 30ms);
    try {
      s.recv_from(buf, sizeof buf, from);
      ADD_FAILURE() << "the past deadline did not apply again";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::timed_out);
      EXPECT_EQ(std::string(e.what()), "weft::net::udp_socket::recv_from (on " + s.local_endpoint().to_string() +
                                           "): the deadline passed: Connection timed out");
    }
    // Sends have their own deadline, untouched by the read one.
    EXPECT_EQ(s.send_to("z", 1, s.local_endpoint()), 1u);
    s.set_read_deadline(clk::now() + 5s);
    EXPECT_EQ(s.recv_from(buf, sizeof buf, from), 1u);
    EXPECT_EQ(from, s.local_endpoint());
  });
}

TEST_P(UdpTest, SendsTakeAStopTokenAndTryTheCallFirst) {
  // A UDP send only waits while the socket's send buffer is full, which loopback rarely
  // shows; the stop_token forms still try the call first, so with room in the buffer even an
  // already-stopped token sends (as a stopped recv still takes a datagram that is there).
  rt().block_on([&] {
    auto r = udp_socket::bind(endpoint::loopback_v4(0));
    r.set_read_deadline(clk::now() + 5s);
    auto s = udp_socket::bind(endpoint::loopback_v4(0));
    auto c = udp_socket::connect(r.local_endpoint());
    std::stop_source stopped;
    stopped.request_stop();
    std::error_code ec;
    EXPECT_EQ(s.send_to("ab", 2, r.local_endpoint(), stopped.get_token(), ec), 2u);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(s.send_to("cd", 2, r.local_endpoint(), stopped.get_token()), 2u);
    EXPECT_EQ(c.send("ef", 2, stopped.get_token(), ec), 2u);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.send("gh", 2, stopped.get_token()), 2u);
    std::string got;
    for (int i = 0; i < 4; ++i) {
      char buf[4];
      endpoint from;
      got.append(buf, r.recv_from(buf, sizeof buf, from));
    }
    EXPECT_EQ(got, "abcdefgh");
  });
}

TEST_P(UdpTest, StopRequestCancelsRecv) {
  rt().block_on([&] {
    auto s = udp_socket::bind(endpoint::loopback_v4(0));
    s.set_read_deadline(clk::now() + 5s);
    std::stop_source src;
    auto r = weft::spawn([&] {
      char buf[8];
      endpoint from;
      std::error_code ec;
      s.recv_from(buf, sizeof buf, from, src.get_token(), ec);
      return ec;
    });
    weft::this_fiber::sleep_for(10ms);
    auto start = clk::now();
    src.request_stop();
    EXPECT_EQ(r.join(), std::errc::operation_canceled);
    EXPECT_LT(clk::now() - start, 1s);
    // An already-stopped token: a datagram already there is still received; then it cancels.
    s.send_to("d", 1, s.local_endpoint());
    char c = 0;
    std::error_code ec;
    EXPECT_TRUE(weft_test::wait_until([&] {
      std::size_t n = s.recv(&c, 1, src.get_token(), ec);
      return n == 1 || ec != std::errc::operation_canceled;
    }, 5s));
    EXPECT_FALSE(ec);
    EXPECT_EQ(c, 'd');
    EXPECT_EQ(s.recv(&c, 1, src.get_token(), ec), 0u);
    EXPECT_EQ(ec, std::errc::operation_canceled);
    try {
      s.recv(&c, 1, src.get_token());
      ADD_FAILURE() << "recv with a stopped token returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::operation_canceled);
    }
  });
}

TEST_P(UdpTest, CloseFromAnotherFiberCancelsRecv) {
  rt().block_on([&] {
    auto s = udp_socket::bind(endpoint::loopback_v4(0));
    s.set_read_deadline(clk::now() + 5s);
    std::atomic<bool> entered{false};
    auto r = weft::spawn([&] {
      char buf[8];
      std::error_code ec;
      entered.store(true);
      s.recv(buf, sizeof buf, ec);
      return ec;
    });
    while (!entered.load()) weft::this_fiber::yield();
    weft::this_fiber::sleep_for(5ms);
    auto start = clk::now();
    s.close();
    EXPECT_EQ(r.join(), std::errc::operation_canceled);
    EXPECT_LT(clk::now() - start, 1s);
    std::error_code ec;
    s.send_to("x", 1, endpoint::loopback_v4(9), ec);
    EXPECT_TRUE(ec == std::errc::operation_canceled || ec == std::errc::bad_file_descriptor) << ec.message();
  });
}

TEST_P(UdpTest, SendToOnAClosedSocketSaysTheSocketWasClosed) {
  // send_to's message names the destination; the reason must still be the close (or the
  // socket never opened), not "stop requested, or the runtime is shutting down".
  rt().block_on([&] {
    auto s = udp_socket::bind(endpoint::loopback_v4(0));
    auto to = s.local_endpoint();
    s.close();
    std::system_error e = weft_test::system_error_of([&] { s.send_to("x", 1, to); });
    EXPECT_EQ(e.code(), std::errc::operation_canceled);
    EXPECT_EQ(std::string(e.what()),
              "weft::net::udp_socket::send_to " + to.to_string() + ": the socket was closed: Operation canceled");
    std::stop_source stop;
    e = weft_test::system_error_of([&] { s.send_to("x", 1, to, stop.get_token()); });
    EXPECT_EQ(std::string(e.what()),
              "weft::net::udp_socket::send_to " + to.to_string() + ": the socket was closed: Operation canceled");
    udp_socket never_opened;
    e = weft_test::system_error_of([&] { never_opened.send_to("x", 1, to); });
    EXPECT_EQ(e.code(), std::errc::bad_file_descriptor);
    EXPECT_EQ(std::string(e.what()), "weft::net::udp_socket::send_to " + to.to_string() +
                                         ": the socket is not open (default-constructed or moved from): Bad file "
                                         "descriptor");
  });
}

TEST_P(UdpTest, LargerDatagramIsTruncatedAndTheRestDiscarded) {
  rt().block_on([&] {
    auto a = udp_socket::bind(endpoint::loopback_v4(0));
    auto b = udp_socket::bind(endpoint::loopback_v4(0));
    b.set_deadline(clk::now() + 5s);
    std::string big(1000, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    a.send_to(big.data(), big.size(), b.local_endpoint());
    a.send_to("next", 4, b.local_endpoint());
    std::string got(100, '\0');
    endpoint from;
    EXPECT_EQ(b.recv_from(got.data(), got.size(), from), 100u);
    EXPECT_EQ(got, big.substr(0, 100));
    got.assign(100, '\0');
    std::size_t n = b.recv_from(got.data(), got.size(), from);
    EXPECT_EQ(got.substr(0, n), "next") << "the tail of the truncated datagram was delivered";
    // A datagram larger than the socket can ever send is an error, not a partial send.
    std::vector<char> huge(70000);
    std::error_code ec;
    a.send_to(huge.data(), huge.size(), b.local_endpoint(), ec);
    EXPECT_EQ(ec, std::errc::message_size) << ec.message();
  });
}

TEST_P(UdpTest, BindErrorsNameTheAddress) {
  rt().block_on([&] {
    auto a = udp_socket::bind(endpoint::loopback_v4(0));
    try {
      udp_socket::bind(a.local_endpoint());
      ADD_FAILURE() << "bound a port in use";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::address_in_use);
      EXPECT_NE(std::string(e.what()).find(a.local_endpoint().to_string()), std::string::npos) << e.what();
    }
    EXPECT_THROW(udp_socket::bind(endpoint()), std::system_error);
    EXPECT_THROW(udp_socket::connect(endpoint()), std::system_error);
  });
}
