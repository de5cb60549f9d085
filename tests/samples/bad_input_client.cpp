// bad_input_client: hostile clients against a running server while a well-behaved client checks
// that it keeps answering. Phases, one after another: random bytes on many connections (a seed
// each, up to 64 KiB; every other one a mutated run of the good request), truncated requests
// then close, 1 MiB lines (without a line end, then with one), and thousands of idle
// connections held open. Throughout, a prober connects, sends the good request and must read
// the expected reply prefix within --deadline-ms, starting a probe every 50 ms; a phase in which
// a probe fails, fails, and the failure names it. Then every connection is closed and the
// server's RSS (/proc/PID/status VmRSS) must come back under baseline + --rss-slack-mib within
// 10 s: with 5,000 connections, a leak of 8 KiB each or more is caught. Prints a table of the
// phases; exits 0 only if all passed, 1 otherwise, 2 on a usage error.
// Standard C++ and POSIX only: the tool shares nothing with the runtime it tests.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct config {
  std::string host = "127.0.0.1";
  unsigned long port = 0;
  unsigned long pid = 0;
  std::string request;
  std::string expect;
  unsigned long random_conns = 500;
  unsigned long idle_conns = 5000;
  unsigned long line_conns = 4;  // per variant: without and with a line end
  unsigned long deadline_ms = 2000;
  unsigned long hold_ms = 2000;
  unsigned long rss_slack_mib = 40;  // 0 = no RSS check (sanitizer builds: quarantines keep memory)
  unsigned long seed = 1;
};

const char* const kUsage =
    "usage: bad_input_client --port N --pid PID --request STR --expect STR [options]\n"
    "STR takes the escapes \\r \\n \\t \\\\ \\xHH. Options (defaults in brackets):\n"
    "  --host ADDR          server address [127.0.0.1]\n"
    "  --random N           connections of random bytes [500]\n"
    "  --idle N             idle connections held open [5000]\n"
    "  --lines N            1 MiB lines of each kind [4]\n"
    "  --deadline-ms N      the longest a probe may wait for its reply [2000]\n"
    "  --hold-ms N          how long the idle connections stay open [2000]\n"
    "  --rss-slack-mib N    RSS after close may exceed the baseline by this [40]; 0 = no check\n"
    "  --seed N             first random seed [1]\n";

// Decodes \r \n \t \\ \xHH; false on a malformed escape.
bool unescape(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\') {
      out += in[i];
      continue;
    }
    if (++i == in.size()) return false;
    switch (in[i]) {
      case 'r': out += '\r'; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case '\\': out += '\\'; break;
      case 'x': {
        if (i + 2 >= in.size()) return false;
        std::string hex(in.substr(i + 1, 2));
        char* end = nullptr;
        long v = std::strtol(hex.c_str(), &end, 16);
        if (*end != '\0') return false;
        out += static_cast<char>(v);
        i += 2;
        break;
      }
      default: return false;
    }
  }
  return true;
}

// Returns -1 to run, or an exit code.
int parse_args(int argc, char** argv, config& c) {
  auto number = [](unsigned long& out) {
    return [&out](const char* s) {
      char* end = nullptr;
      errno = 0;
      out = std::strtoul(s, &end, 10);
      return s[0] != '-' && s[0] != '\0' && *end == '\0' && errno == 0;
    };
  };
  auto text = [](std::string& out) { return [&out](const char* s) { return unescape(s, out); }; };
  struct option {
    const char* name;
    std::function<bool(const char*)> set;
  };
  std::vector<option> options = {
      {"--host", [&c](const char* s) { c.host = s; return true; }},
      {"--port", number(c.port)},           {"--pid", number(c.pid)},
      {"--request", text(c.request)},       {"--expect", text(c.expect)},
      {"--random", number(c.random_conns)}, {"--idle", number(c.idle_conns)},
      {"--lines", number(c.line_conns)},    {"--deadline-ms", number(c.deadline_ms)},
      {"--hold-ms", number(c.hold_ms)},     {"--rss-slack-mib", number(c.rss_slack_mib)},
      {"--seed", number(c.seed)},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    auto it = std::find_if(options.begin(), options.end(), [&](const option& o) { return a == o.name; });
    if (it == options.end() || i + 1 == argc || !it->set(argv[++i])) {
      std::fprintf(stderr, "bad_input_client: bad or incomplete option '%s'\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (c.port == 0 || c.port > 65535 || c.pid == 0 || c.request.empty() || c.expect.empty()) {
    std::fprintf(stderr, "bad_input_client: --port, --pid, --request and --expect are required\n%s", kUsage);
    return 2;
  }
  return -1;
}

// ---- sockets: every call non-blocking, every wait bounded --------------------------------------

sockaddr_in g_server{};

// Waits for `events` on `fd` until `deadline`; the revents, or 0 on timeout.
short wait_fd(int fd, short events, steady::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now()).count();
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
    if (n > 0) return p.revents;
    if (n == 0 && left <= 0) return 0;
  }
}

// Starts a non-blocking connect; the descriptor, or -1 with errno set.
int start_connect() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&g_server), sizeof g_server) == 0 || errno == EINPROGRESS)
    return fd;
  int err = errno;
  ::close(fd);
  errno = err;
  return -1;
}

// Completes a connect started by start_connect; 0, or the error (ETIMEDOUT after `deadline`).
int finish_connect(int fd, steady::time_point deadline) {
  if (wait_fd(fd, POLLOUT, deadline) == 0) return ETIMEDOUT;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

// Connects within `deadline`; the descriptor, or -1 with `error` saying why.
int connect_to(steady::time_point deadline, std::string& error) {
  int fd = start_connect();
  int err = fd < 0 ? errno : finish_connect(fd, deadline);
  if (err == 0) return fd;
  if (fd >= 0) ::close(fd);
  error = std::string("connect: ") + std::strerror(err);
  return -1;
}

enum class sent { all, closed, timeout };

// Sends `data`, adding what went out to `*total`; `closed` if the server closed or reset the
// connection first.
sent send_all(int fd, std::string_view data, steady::time_point deadline, std::size_t* total = nullptr) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      if (total != nullptr) *total += static_cast<std::size_t>(n);
    } else if (errno != EAGAIN && errno != EINTR) {
      return sent::closed;
    } else if (wait_fd(fd, POLLOUT, deadline) == 0) {
      return sent::timeout;
    }
  }
  return sent::all;
}

// Reads into `got` until it holds `want` bytes, the server closes, or `deadline`. True if the
// server closed (end of stream or reset).
bool read_until(int fd, std::string& got, std::size_t want, steady::time_point deadline) {
  char buf[16384];
  while (got.size() < want) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      got.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      return true;
    } else if (wait_fd(fd, POLLIN, deadline) == 0) {
      return false;
    }
  }
  return false;
}

// Reads and discards until the server closes (true) or `deadline` (false), at most 16 MiB.
bool drain(int fd, steady::time_point deadline) {
  std::string sink;
  for (int i = 0; i < 256; ++i) {
    sink.clear();
    if (read_until(fd, sink, 65536, deadline)) return true;
    if (sink.size() < 65536) return false;  // the deadline came
  }
  return false;
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) {
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c >= 32 && c < 127) out += c;
    else out += '.';
  }
  return s.size() > 60 ? out + "..." : out;
}

// ---- the server process, seen through /proc ------------------------------------------------------

// The server's VmRSS in KiB, or -1 if it is gone.
long rss_kib(unsigned long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

long open_fds(unsigned long pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return -1;
  long n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

// The server's soft descriptor limit ("Max open files" in /proc/PID/limits); -1 if unknown.
long fd_limit(unsigned long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream in(line.substr(14));
    std::string soft;
    in >> soft;
    return soft == "unlimited" ? LONG_MAX : std::strtol(soft.c_str(), nullptr, 10);
  }
  return -1;
}

double mib(long kib) { return static_cast<double>(kib) / 1024.0; }

// ---- phases and the prober ---------------------------------------------------------------------

struct phase {
  explicit phase(std::string n) : name(std::move(n)) {}
  std::string name;
  std::atomic<unsigned long> conns{0};
  std::atomic<unsigned long> server_closed{0};
  std::atomic<unsigned long long> bytes{0};
  double seconds = 0;
  // Guarded by failure_mu: the probes made during the phase and the first failure.
  std::mutex failure_mu;
  unsigned long probes = 0;
  unsigned long failures = 0;
  double worst_ms = 0;
  std::string first_failure;

  void fail(const std::string& why) {
    std::lock_guard lk(failure_mu);
    if (failures++ == 0) first_failure = why;
  }
  unsigned long probe_count() {
    std::lock_guard lk(failure_mu);
    return probes;
  }
  bool failed() {
    std::lock_guard lk(failure_mu);
    return failures != 0;
  }
};

// One probe: connect, send the good request, read the expected prefix within the deadline.
bool probe(const config& c, std::string& error) {
  steady::time_point deadline = steady::now() + std::chrono::milliseconds(c.deadline_ms);
  int fd = connect_to(deadline, error);
  if (fd < 0) return false;
  std::string got;
  bool ok = false;
  if (send_all(fd, c.request, deadline) != sent::all) {
    error = "the server closed the connection before taking the request";
  } else if (bool closed = read_until(fd, got, c.expect.size(), deadline); got.size() < c.expect.size()) {
    error = (closed ? "the server closed the connection" : "no reply within " + std::to_string(c.deadline_ms) + " ms") +
            (got.empty() ? std::string() : " (got '" + printable(got) + "')");
  } else if (got.compare(0, c.expect.size(), c.expect) != 0) {
    error = "the reply '" + printable(got) + "' does not start with '" + printable(c.expect) + "'";
  } else {
    ok = true;
  }
  ::close(fd);
  return ok;
}

// Probes every 50 ms on its own thread and charges each probe to the current phase.
class prober {
 public:
  explicit prober(const config& c) : cfg_(c), thread_([this] { run(); }) {}
  ~prober() {
    stop_.store(true);
    thread_.join();
  }
  prober(const prober&) = delete;
  prober& operator=(const prober&) = delete;

  void enter(phase* p) {
    std::lock_guard lk(mu_);
    current_ = p;
  }

 private:
  void run() {
    while (!stop_.load()) {
      steady::time_point t0 = steady::now();
      std::string error;
      bool ok = probe(cfg_, error);
      double ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
      {
        std::lock_guard lk(mu_);
        if (current_ != nullptr) {
          {
            std::lock_guard plk(current_->failure_mu);
            ++current_->probes;
            current_->worst_ms = std::max(current_->worst_ms, ms);
          }
          if (!ok) current_->fail("probe: " + error);
        }
      }
      std::this_thread::sleep_until(t0 + 50ms);
    }
  }

  const config& cfg_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  phase* current_ = nullptr;  // guarded by mu_
  std::thread thread_;        // last: starts once the members above exist
};

// Runs task(0..n-1) on `threads` threads.
void parallel(unsigned long n, unsigned threads, const std::function<void(unsigned long)>& task) {
  std::atomic<unsigned long> next{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (unsigned long i = next++; i < n; i = next++) task(i);
    });
  for (std::thread& t : pool) t.join();
}

// A hostile connection: sends `data`, then half-closes and waits up to `linger` for the server
// to close.
void hostile(phase& ph, std::string_view data, std::chrono::milliseconds linger) {
  std::string error;
  int fd = connect_to(steady::now() + 5s, error);
  if (fd < 0) {
    ph.fail(error);
    return;
  }
  ph.conns++;
  std::size_t total = 0;
  sent s = send_all(fd, data, steady::now() + 10s, &total);
  ph.bytes += total;
  if (s == sent::closed) {
    ph.server_closed++;
  } else if (s == sent::all) {
    ::shutdown(fd, SHUT_WR);
    if (drain(fd, steady::now() + linger)) ph.server_closed++;
  }
  ::close(fd);
}

void random_bytes(const config& c, phase& ph) {
  parallel(c.random_conns, 8, [&](unsigned long i) {
    std::mt19937_64 rng(c.seed * 1000003 + i);
    std::string data(1 + rng() % 65536, '\0');
    if (i % 2 == 0) {
      for (char& ch : data) ch = static_cast<char>(rng());
    } else {  // the good request over and over, with a byte in 64 changed
      for (std::size_t j = 0; j < data.size(); ++j) data[j] = c.request[j % c.request.size()];
      for (std::size_t k = 0; k <= data.size() / 64; ++k) data[rng() % data.size()] = static_cast<char>(rng());
    }
    hostile(ph, data, 1000ms);
  });
}

// Each cut of the request, 4 times over: sent alone then closed at once; and after a whole
// request, whose reply must come.
void truncated(const config& c, phase& ph) {
  std::size_t cuts = c.request.size() - 1;
  parallel(cuts * 8, 8, [&](unsigned long i) {
    std::size_t cut = 1 + i % cuts;
    bool after_whole = (i / cuts) % 2 == 1;
    std::string error;
    steady::time_point deadline = steady::now() + std::chrono::milliseconds(c.deadline_ms);
    int fd = connect_to(deadline, error);
    if (fd < 0) {
      ph.fail(error);
      return;
    }
    ph.conns++;
    std::string data = after_whole ? c.request : std::string();
    data += c.request.substr(0, cut);
    std::string got;
    std::size_t total = 0;
    sent s = send_all(fd, data, deadline, &total);
    ph.bytes += total;
    if (s == sent::closed) {
      ph.server_closed++;
    } else if (after_whole) {
      read_until(fd, got, c.expect.size(), deadline);
      if (got.compare(0, c.expect.size(), c.expect) != 0)
        ph.fail("a whole request followed by " + std::to_string(cut) + " bytes of another got '" + printable(got) + "'");
    }
    ::close(fd);
  });
}

void long_lines(const config& c, phase& ph) {
  const std::string line(1 << 20, 'a');
  const std::string line_crlf = line + "\r\n";
  parallel(2 * c.line_conns, 8, [&](unsigned long i) { hostile(ph, i < c.line_conns ? line : line_crlf, 2000ms); });
}

// Opens --idle connections, checks that the server accepted them, holds them for --hold-ms and
// closes them. Returns the server's RSS while it held them (KiB).
long idle_connections(const config& c, phase& ph) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t need = c.idle_conns + 64;
  if (rl.rlim_cur < need && rl.rlim_max >= need) {
    rl.rlim_cur = need;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < need) {
    ph.fail("the descriptor limit (ulimit -n) is " + std::to_string(rl.rlim_cur) + ", " + std::to_string(need) +
            " are needed: raise it or pass a smaller --idle");
    return 0;
  }
  if (long server_limit = fd_limit(c.pid); server_limit >= 0 && static_cast<rlim_t>(server_limit) < need) {
    ph.fail("the server's descriptor limit is " + std::to_string(server_limit) + ", " + std::to_string(need) +
            " are needed: raise ulimit -n where it starts or pass a smaller --idle");
    return 0;
  }
  long base_fds = open_fds(c.pid);
  std::vector<int> fds;
  fds.reserve(c.idle_conns);
  steady::time_point deadline = steady::now() + 20s;
  while (fds.size() < c.idle_conns && !ph.failed()) {
    std::size_t batch_start = fds.size();
    while (fds.size() < c.idle_conns && fds.size() - batch_start < 256) {
      int fd = start_connect();
      if (fd < 0) {
        ph.fail(std::string("connect: ") + std::strerror(errno));
        break;
      }
      fds.push_back(fd);
    }
    for (std::size_t i = batch_start; i < fds.size(); ++i) {
      if (int err = finish_connect(fds[i], deadline); err != 0) {
        ph.fail("idle connection " + std::to_string(i) + ": connect: " + std::strerror(err));
        break;
      }
    }
  }
  ph.conns += fds.size();
  long held = 0;
  while (!ph.failed() && (held = open_fds(c.pid) - base_fds) + 2 < static_cast<long>(fds.size())) {
    if (steady::now() > deadline) {
      ph.fail("the server holds " + std::to_string(held) + " of the " + std::to_string(fds.size()) +
              " idle connections after 20 s");
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(c.hold_ms));  // the prober keeps probing
  long peak = rss_kib(c.pid);
  for (int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    char b;
    if (::poll(&p, 1, 0) == 1 && ::recv(fd, &b, 1, MSG_DONTWAIT) <= 0) ph.server_closed++;
    ::close(fd);
  }
  return peak;
}

}  // namespace

int main(int argc, char** argv) {
  config c;
  if (int rc = parse_args(argc, argv, c); rc >= 0) return rc;
  g_server.sin_family = AF_INET;
  g_server.sin_port = htons(static_cast<std::uint16_t>(c.port));
  if (::inet_pton(AF_INET, c.host.c_str(), &g_server.sin_addr) != 1) {
    std::fprintf(stderr, "bad_input_client: --host wants an IPv4 address, not '%s'\n", c.host.c_str());
    return 2;
  }
  if (rss_kib(c.pid) < 0) {
    std::fprintf(stderr, "bad_input_client: no process %lu (/proc/%lu/status)\n", c.pid, c.pid);
    return 1;
  }

  std::deque<phase> phases;
  prober p(c);
  // Warm-up: the baseline is taken once the server has served a few requests.
  phase& warm = phases.emplace_back("warm-up");
  p.enter(&warm);
  steady::time_point warm_end = steady::now() + 10s;
  while (warm.probe_count() < 10 && steady::now() < warm_end) std::this_thread::sleep_for(10ms);
  long baseline = rss_kib(c.pid);
  long peak = baseline;

  auto run = [&](const std::string& name, const std::function<void(phase&)>& body) {
    phase& ph = phases.emplace_back(name);
    steady::time_point t0 = steady::now();
    p.enter(&ph);
    body(ph);
    // At least two probes per phase, however short it was.
    steady::time_point end = steady::now() + std::chrono::milliseconds(2 * c.deadline_ms + 500);
    while (ph.probe_count() < 2 && steady::now() < end) std::this_thread::sleep_for(5ms);
    if (ph.probe_count() < 2) ph.fail("the prober made fewer than 2 probes");
    ph.seconds = std::chrono::duration<double>(steady::now() - t0).count();
    peak = std::max(peak, rss_kib(c.pid));
  };
  run("random bytes", [&](phase& ph) { random_bytes(c, ph); });
  run("truncated requests", [&](phase& ph) { truncated(c, ph); });
  run("1 MiB lines", [&](phase& ph) { long_lines(c, ph); });
  run(std::to_string(c.idle_conns) + " idle connections", [&](phase& ph) { peak = std::max(peak, idle_connections(c, ph)); });
  long after = -1;
  double settle = 0;
  long bound = c.rss_slack_mib == 0 ? LONG_MAX : baseline + static_cast<long>(c.rss_slack_mib) * 1024;
  run("after close: RSS", [&](phase& ph) {
    steady::time_point t0 = steady::now();
    steady::time_point end = t0 + 10s;
    while ((after = rss_kib(c.pid)) > bound && steady::now() < end) std::this_thread::sleep_for(100ms);
    settle = std::chrono::duration<double>(steady::now() - t0).count();
    if (after < 0) {
      ph.fail("the server exited");
    } else if (after > bound) {
      ph.fail("RSS " + std::to_string(after / 1024) + " MiB 10 s after the connections closed, over the bound of " +
              std::to_string(bound / 1024) + " MiB (baseline " + std::to_string(baseline / 1024) + " MiB + " +
              std::to_string(c.rss_slack_mib) + ")");
    }
  });
  p.enter(nullptr);

  std::printf("%-22s %7s %10s %7s %7s %9s %6s %7s\n", "phase", "conns", "sent", "closed", "probes", "worst", "failed",
              "time");
  bool ok = true;
  for (phase& ph : phases) {
    if (&ph == &phases.front()) continue;  // the warm-up
    std::printf("%-22s %7lu %8.1f M %7lu %7lu %6.1f ms %6lu %5.1f s\n", ph.name.c_str(), ph.conns.load(),
                static_cast<double>(ph.bytes.load()) / (1 << 20), ph.server_closed.load(), ph.probes, ph.worst_ms,
                ph.failures, ph.seconds);
    if (ph.failures != 0) {
      ok = false;
      std::printf("  FAILED in '%s': %s\n", ph.name.c_str(), ph.first_failure.c_str());
    }
  }
  std::printf("(sent: MiB written; closed: connections the server closed on its own; probes: good requests\n"
              " answered during the phase, worst: the slowest reply)\n");
  std::printf("RSS: baseline %.1f MiB, peak %.1f MiB, after close %.1f MiB (%.1f s to settle); bound %s\n", mib(baseline),
              mib(peak), mib(after), settle,
              c.rss_slack_mib == 0 ? "none (--rss-slack-mib 0)"
                                   : (std::to_string(bound / 1024) + " MiB = baseline + " +
                                      std::to_string(c.rss_slack_mib) + " MiB").c_str());
  std::printf("%s\n", ok ? "bad input: all phases passed" : "bad input: FAILED");
  return ok ? 0 : 1;
}
