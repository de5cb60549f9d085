// stop_client: checks that a request/response server answers, when it is stopped, every
// request that had fully arrived. It opens --conns connections, makes one round trip on each
// (so every connection is accepted and idle in the server), optionally sends --setup on a
// connection of its own first (data for the server to chew on, its replies discarded), then
// writes --request on every connection, sends SIGTERM to --pid at once, and reads each
// connection until the server closes it. A connection is "answered" if what it read starts
// with --expect, "reset" if it got ECONNRESET (or EPIPE) before that, "closed" if the server
// closed it cleanly with less. With a single worker kept busy by the requests themselves, most
// of them are still unread in the server's receive queues when the stop comes: the case a
// server that only finishes requests it has begun reading gets wrong. Prints one line of
// counts; exits 0 if every connection was answered, 1 otherwise, 2 on a usage error.
// Standard C++ and POSIX only: the tool shares nothing with the runtime it tests.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: stop_client --port P --pid PID --conns N --request TEXT --expect PREFIX\n"
    "                   [--hello TEXT --hello-expect PREFIX] [--setup TEXT --setup-count K] [--deadline-ms MS]\n"
    "TEXT may hold \\r and \\n escapes; in --setup, __n__ stands for the copy's number.\n";

struct config {
  int port = 0;
  pid_t pid = 0;
  int conns = 0;
  std::string request, expect, setup;
  std::string hello, hello_expect;  // the warm-up round trip (default: the request itself)
  long setup_count = 0;
  long deadline_ms = 30000;
};

std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'r' || s[i + 1] == 'n')) {
      out += s[++i] == 'r' ? '\r' : '\n';
    } else {
      out += s[i];
    }
  }
  return out;
}

bool parse_long(const char* s, long lo, long hi, long& out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return false;
  out = v;
  return true;
}

int parse_args(int argc, char** argv, config& c) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 == argc) {
      std::fprintf(stderr, "stop_client: option '%s' wants a value\n%s", argv[i], kUsage);
      return 2;
    }
    const char* v = argv[++i];
    long n = 0;
    bool ok = true;
    if (a == "--port") ok = parse_long(v, 1, 65535, n), c.port = static_cast<int>(n);
    else if (a == "--pid") ok = parse_long(v, 1, 1L << 30, n), c.pid = static_cast<pid_t>(n);
    else if (a == "--conns") ok = parse_long(v, 1, 5000, n), c.conns = static_cast<int>(n);
    else if (a == "--request") c.request = unescape(v);
    else if (a == "--expect") c.expect = unescape(v);
    else if (a == "--setup") c.setup = unescape(v);
    else if (a == "--hello") c.hello = unescape(v);
    else if (a == "--hello-expect") c.hello_expect = unescape(v);
    else if (a == "--setup-count") ok = parse_long(v, 0, 10'000'000, c.setup_count);
    else if (a == "--deadline-ms") ok = parse_long(v, 1, 600'000, c.deadline_ms);
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "stop_client: bad option '%s %s'\n%s", argv[i - 1], v, kUsage);
      return 2;
    }
  }
  if (c.hello.empty()) {
    c.hello = c.request;
    c.hello_expect = c.expect;
  }
  if (c.port == 0 || c.pid == 0 || c.conns == 0 || c.request.empty() || c.expect.empty() || c.hello_expect.empty()) {
    std::fprintf(stderr, "stop_client: --port, --pid, --conns, --request and --expect are required\n%s", kUsage);
    return 2;
  }
  return -1;
}

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Every blocking read (warm-up, setup drain) ends within 10 s: a server that stops answering
  // fails the tool instead of hanging it.
  timeval limit{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads until `prefix` bytes came (true if they match), end of stream or an error.
bool read_prefix(int fd, const std::string& prefix) {
  std::string got;
  char buf[4096];
  while (got.size() < prefix.size()) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got.compare(0, prefix.size(), prefix) == 0;
}

// Discards what the setup connection receives until it closes: a server that waits for the
// client to read (a full send buffer) must not stall on it.
void drain(int fd) {
  char buf[65536];
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  config c;
  if (int rc = parse_args(argc, argv, c); rc >= 0) return rc;

  if (!c.setup.empty() && c.setup_count > 0) {
    int fd = connect_to(c.port);
    if (fd < 0) {
      std::fprintf(stderr, "stop_client: connect to port %d: %s\n", c.port, std::strerror(errno));
      return 1;
    }
    std::string batch;
    const std::size_t at = c.setup.find("__n__");
    for (long i = 0; i < c.setup_count; ++i) {
      if (at == std::string::npos) {
        batch += c.setup;
      } else {
        batch += c.setup.substr(0, at) + std::to_string(i) + c.setup.substr(at + 5);
      }
      if (batch.size() > (1u << 16) || i + 1 == c.setup_count) {
        if (!write_all(fd, batch)) {
          std::fprintf(stderr, "stop_client: setup write: %s\n", std::strerror(errno));
          return 1;
        }
        batch.clear();
        drain(fd);
      }
    }
    ::shutdown(fd, SHUT_WR);
    char buf[65536];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
    ::close(fd);
  }

  std::vector<int> fds;
  for (int i = 0; i < c.conns; ++i) {
    int fd = connect_to(c.port);
    if (fd < 0) {
      std::fprintf(stderr, "stop_client: connection %d: %s\n", i, std::strerror(errno));
      return 1;
    }
    fds.push_back(fd);
  }
  // One round trip each (--hello: a small one, whose whole reply the drains below take):
  // every connection is accepted and has its fiber parked in a read.
  for (int i = 0; i < c.conns; ++i) {
    if (!write_all(fds[i], c.hello) || !read_prefix(fds[i], c.hello_expect)) {
      std::fprintf(stderr, "stop_client: warm-up round trip on connection %d failed\n", i);
      return 1;
    }
    drain(fds[i]);
  }
  usleep(100'000);  // the rest of the warm-up replies arrive
  for (int fd : fds) drain(fd);

  // Every request goes out before the stop.
  for (int i = 0; i < c.conns; ++i) {
    if (!write_all(fds[i], c.request)) {
      std::fprintf(stderr, "stop_client: request on connection %d: %s\n", i, std::strerror(errno));
      return 1;
    }
  }
  if (::kill(c.pid, SIGTERM) != 0) {
    std::fprintf(stderr, "stop_client: kill %d: %s\n", static_cast<int>(c.pid), std::strerror(errno));
    return 1;
  }

  // Read every connection to its end.
  struct conn_state {
    std::string got;
    int outcome = 0;  // 0 reading, 1 answered, 2 reset, 3 closed short
  };
  std::vector<conn_state> st(fds.size());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(c.deadline_ms);
  std::size_t open = fds.size();
  std::vector<pollfd> pfds;
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    pfds.clear();
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (st[i].outcome != 0) continue;
      pfds.push_back({fds[i], POLLIN, 0});
      idx.push_back(i);
    }
    if (::poll(pfds.data(), pfds.size(), 100) < 0 && errno != EINTR) break;
    for (std::size_t k = 0; k < pfds.size(); ++k) {
      if (pfds[k].revents == 0) continue;
      conn_state& s = st[idx[k]];
      char buf[65536];
      ssize_t n = ::recv(pfds[k].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        if (s.got.size() < c.expect.size()) s.got.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      const bool answered = s.got.size() >= c.expect.size() && s.got.compare(0, c.expect.size(), c.expect) == 0;
      s.outcome = answered ? 1 : (n < 0 && (errno == ECONNRESET || errno == EPIPE)) ? 2 : 3;
      --open;
    }
  }
  int answered = 0, reset = 0, closed = 0, waiting = 0;
  for (const conn_state& s : st) {
    if (s.outcome == 1) ++answered;
    else if (s.outcome == 2) ++reset;
    else if (s.outcome == 3) ++closed;
    else ++waiting;
  }
  for (int fd : fds) ::close(fd);
  std::printf("stop_client: %d connections: %d answered, %d reset, %d closed without the reply, %d still open after %ld ms\n",
              c.conns, answered, reset, closed, waiting, c.deadline_ms);
  return answered == c.conns ? 0 : 1;
}
