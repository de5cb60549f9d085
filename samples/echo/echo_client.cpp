// echo_client: a load generator for echo servers (echo_server here, and the benchmark's
// bench/compare/echo/epoll_echo_server). Closed loop: each connection sends a request of --size
// bytes, waits for the whole echo, checks it byte for byte against what it sent (a mismatch is
// an error: the connection stops and the exit status is 1), records the latency and sends the
// next. A progress line goes to stderr once a second (rewritten in place on a terminal), then a
// table of requests/s, bytes/s, latency percentiles and errors to stdout. Two more modes: `setup`
// (connect + one echo + close, in a closed loop, per second) and `idle` (hold --connections
// connections after one echo each and report the server's VmRSS growth per connection).
// It is deliberately not a weft program: --threads plain threads each drive their share of the
// connections through one epoll instance (non-blocking sockets, registered once,
// edge-triggered), so the instrument shares no code with the runtime it measures. On a 2-core
// machine the client shares the cores with the server (see the --threads help): compare servers
// by requests/s under the same client and by server CPU per request (--server-pid).
#include "latency_histogram.hpp"
#include "proc_stats.hpp"
#include "sample_args.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using echo_sample::latency_histogram;
using namespace std::chrono_literals;

constexpr const char* prog = "echo_client";
constexpr const char* usage =
    "A closed-loop load generator for echo servers: C connections each send a request, wait for\n"
    "its whole echo, check it and send the next. A progress line goes to stderr once a second,\n"
    "then a table (requests/s, bytes/s, latency p50/p90/p99/p99.9, errors) to stdout; Ctrl-C\n"
    "ends the run early with the table of what was measured so far (exit status 130).";
constexpr const char* footer =
    "Modes: echo (default) runs --warmup then --duration seconds and reports the measured part;\n"
    "setup runs C concurrent loops of connect + one echo + close; idle opens C connections, one\n"
    "echo each, and reports the growth of the server's VmRSS per connection (needs --server-pid).\n"
    "Exit status: 0; 1 if a request failed or an echo differed from its request; 2 on a setup error.";

enum class run_mode { echo, setup, idle };

struct options {
  std::string target;  // "HOST:PORT" as given
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  run_mode mode = run_mode::echo;
  unsigned connections = 100;
  double duration = 10;
  double warmup = 2;
  std::size_t size = 64;
  unsigned threads = 1;
  long server_pid = 0;
  std::string label;
  std::string json;
};

// Prints "echo_client: WHAT" and exits with status 2 (a usage or setup error).
[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", prog, what.c_str());
  std::exit(2);
}

std::string errno_text(int err) { return std::system_category().message(err); }

const sockaddr* target(const options& o) { return reinterpret_cast<const sockaddr*>(&o.addr); }

// ---- shared state --------------------------------------------------------------------------------

struct run_window {
  clock_type::time_point measure_start, measure_end;  // written before `go` opens
  // Set once by the progress loop on Ctrl-C (SIGINT): the run ends there instead. Ordering:
  // relaxed; the threads see it within their next epoll_wait (at most 100 ms), and join()
  // orders everything they recorded before the table is printed.
  std::atomic<clock_type::rep> cut{std::numeric_limits<clock_type::rep>::max()};
  clock_type::time_point end() const noexcept {
    clock_type::time_point c{clock_type::duration(cut.load(std::memory_order_relaxed))};
    return std::min(measure_end, c);
  }
};

// Set by the SIGINT handler: the run stops early and prints what it measured.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) { g_interrupted = 1; }

// One client thread's results. Ownership: `hist`, `requests` and `fatal` belong to the thread
// until it is joined; `completed` and `errors` are read by the progress loop (relaxed: counters).
struct alignas(64) thread_result {
  std::atomic<std::uint64_t> completed{0};  // every completed request (or setup), warm-up included
  std::atomic<std::uint64_t> errors{0};
  latency_histogram hist;                   // the measured window only
  std::uint64_t requests = 0;               // completed inside the measured window
  unsigned unserved = 0;                    // echo mode: connections that completed no request
  std::string fatal;                        // a setup failure that ends the run (exit 2)
  unsigned printed = 0;                     // error messages printed (at most a few per thread)
};

struct client_conn {
  int fd = -1;
  std::uint32_t id = 0;
  std::uint64_t seq = 0;
  std::size_t sent = 0, received = 0;
  std::uint64_t completed = 0;  // requests (or setups) this connection completed
  bool connecting = false;  // setup mode: a non-blocking connect in progress
  bool dead = false;
  clock_type::time_point start;
  std::unique_ptr<unsigned char[]> request;
};

void set_nodelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Fills the request of connection `id`: a per-connection pattern; its first 8 bytes carry the
// request's sequence number (stamped per request), the next 4 the connection id, so an echo
// that is stale, repeated or someone else's does not compare equal.
void init_request(client_conn& c, std::size_t size) {
  c.request.reset(new unsigned char[size]);
  for (std::size_t i = 0; i < size; ++i) c.request[i] = static_cast<unsigned char>((i * 131 + c.id * 7 + 1) & 0xff);
  std::uint32_t id = c.id;
  if (size > 8) std::memcpy(&c.request[8], &id, std::min<std::size_t>(4, size - 8));
}

void stamp_request(client_conn& c, std::size_t size) {
  ++c.seq;
  std::memcpy(&c.request[0], &c.seq, std::min<std::size_t>(8, size));
}

// ---- echo and setup modes: one thread ------------------------------------------------------------

class load_thread {
 public:
  load_thread(const options& o, const run_window& w, thread_result& r, std::uint32_t first_id,
              unsigned count)
      : o_(o), w_(w), r_(r), conns_(count), scratch_(new unsigned char[scratch_size]) {
    for (unsigned i = 0; i < count; ++i) {
      conns_[i].id = first_id + i;
      init_request(conns_[i], o.size);
    }
  }
  load_thread(const load_thread&) = delete;
  load_thread& operator=(const load_thread&) = delete;
  ~load_thread() {
    for (auto& c : conns_)
      if (c.fd >= 0) ::close(c.fd);
    if (ep_ >= 0) ::close(ep_);
  }

  void run(std::latch& connected, std::latch& go) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) r_.fatal = "epoll_create1: " + errno_text(errno);
    if (o_.mode == run_mode::echo && r_.fatal.empty()) connect_all();
    connected.count_down();
    go.wait();
    if (!r_.fatal.empty()) return;

    auto now = clock_type::now();
    for (auto& c : conns_) {
      if (o_.mode == run_mode::echo) {
        start_request(c, now);
      } else {
        start_cycle(c, now);
      }
    }
    epoll_event events[256];
    for (;;) {
      now = clock_type::now();
      const auto end = w_.end();
      if (now >= end) break;
      auto left = std::chrono::ceil<std::chrono::milliseconds>(end - now).count();
      int n = epoll_wait(ep_, events, 256, int(std::min<long long>(left, 100)));
      if (n < 0) {
        if (errno == EINTR) continue;
        r_.fatal = "epoll_wait: " + errno_text(errno);
        return;
      }
      for (int i = 0; i < n; ++i) on_ready(*static_cast<client_conn*>(events[i].data.ptr));
    }
    // A connection the server never served (left in its accept backlog, at its descriptor or
    // memory limit) raises no error: it only waits. Counted, so the table does not hide it.
    if (o_.mode == run_mode::echo) {
      for (const auto& c : conns_) r_.unserved += c.completed == 0 ? 1 : 0;
    }
  }

 private:
  static constexpr std::size_t scratch_size = 64 * 1024;

  void connect_all() {
    for (auto& c : conns_) {
      c.fd = socket(o_.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c.fd < 0) {
        r_.fatal = "socket: " + errno_text(errno) + (errno == EMFILE ? " (raise ulimit -n)" : "");
        return;
      }
      // Blocking connect: simple, and loopback connects complete in one call.
      if (::connect(c.fd, target(o_), o_.addr_len) != 0) {
        r_.fatal = "connect " + o_.target + ": " + errno_text(errno);
        return;
      }
      set_nodelay(c.fd);
      if (!register_fd(c, false)) return;
    }
  }

  // Makes the socket non-blocking (unless it already is) and registers it once, edge-triggered,
  // for both directions.
  bool register_fd(client_conn& c, bool already_nonblocking) {
    if (!already_nonblocking) {
      int fl = fcntl(c.fd, F_GETFL);
      if (fl < 0 || fcntl(c.fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        r_.fatal = "fcntl(O_NONBLOCK): " + errno_text(errno);
        return false;
      }
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &c;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
      r_.fatal = "epoll_ctl(ADD): " + errno_text(errno);
      return false;
    }
    return true;
  }

  // A failed request: counted, printed for the first few, and the connection stops.
  void error(client_conn& c, const std::string& what) {
    r_.errors.fetch_add(1, std::memory_order_relaxed);
    if (r_.printed < 5) {
      ++r_.printed;
      std::fprintf(stderr, "%s: connection %u, request %llu: %s\n", prog, c.id, static_cast<unsigned long long>(c.seq),
                   what.c_str());
    }
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    c.dead = true;
  }

  void start_request(client_conn& c, clock_type::time_point now) {
    stamp_request(c, o_.size);
    c.sent = c.received = 0;
    c.start = now;
    send_more(c);
  }

  // setup mode: a new connection for the next connect + echo + close.
  void start_cycle(client_conn& c, clock_type::time_point now) {
    stamp_request(c, o_.size);
    c.sent = c.received = 0;
    c.start = now;
    c.fd = socket(o_.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return error(c, "socket: " + errno_text(errno));
    set_nodelay(c.fd);
    int rc = ::connect(c.fd, target(o_), o_.addr_len);
    if (rc != 0 && errno != EINPROGRESS) {
      int err = errno;
      return error(c, "connect: " + errno_text(err) +
                          (err == EADDRNOTAVAIL ? " (ephemeral ports exhausted by TIME_WAIT: check "
                                                  "net.ipv4.tcp_tw_reuse and ip_local_port_range)"
                                                : ""));
    }
    c.connecting = rc != 0;
    if (!register_fd(c, true)) return error(c, r_.fatal);
    if (!c.connecting) send_more(c);
  }

  void send_more(client_conn& c) {
    while (c.sent < o_.size) {
      ssize_t w = ::send(c.fd, c.request.get() + c.sent, o_.size - c.sent, MSG_NOSIGNAL);
      if (w >= 0) {
        c.sent += std::size_t(w);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // the next EPOLLOUT edge resumes
      return error(c, "send: " + errno_text(errno));
    }
  }

  void on_ready(client_conn& c) {
    if (c.dead) return;
    if (c.connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == EINPROGRESS || err == EALREADY) return;
      if (err != 0) return error(c, "connect: " + errno_text(err));
      c.connecting = false;
    }
    if (c.sent < o_.size) {
      send_more(c);
      if (c.dead) return;
    }
    while (c.received < o_.size) {
      std::size_t want = std::min(o_.size - c.received, scratch_size);
      ssize_t r = ::recv(c.fd, scratch_.get(), want, 0);
      if (r > 0) {
        auto got = std::size_t(r);
        if (c.received + got > c.sent) return error(c, "the server sent bytes that were not sent to it yet");
        if (std::memcmp(scratch_.get(), c.request.get() + c.received, got) != 0) {
          std::size_t at = 0;
          while (scratch_[at] == c.request[c.received + at]) ++at;
          char msg[160];
          std::snprintf(msg, sizeof msg, "echo differs at byte %zu of %zu: got 0x%02x, sent 0x%02x", c.received + at,
                        o_.size, scratch_[at], c.request[c.received + at]);
          return error(c, msg);
        }
        c.received += got;
        if (got < want) break;  // a short read drained the socket (epoll(7)); the next edge resumes
        continue;
      }
      if (r == 0) return error(c, "the server closed the connection after " + std::to_string(c.received) + " of " +
                                       std::to_string(o_.size) + " bytes");
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return error(c, "recv: " + errno_text(errno));
    }
    if (c.received < o_.size) return;

    auto now = clock_type::now();
    const auto end = w_.end();
    if (now >= w_.measure_start && now < end) {
      r_.hist.record(std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.start).count()));
      ++r_.requests;
    }
    r_.completed.store(r_.completed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    ++c.completed;
    if (o_.mode == run_mode::setup) {
      ::close(c.fd);  // also leaves the epoll set
      c.fd = -1;
      if (now < end) start_cycle(c, now);
    } else if (now < end) {
      // The next response raises a new EPOLLIN edge: no recv until then.
      start_request(c, now);
    }
  }

  const options& o_;
  const run_window& w_;
  thread_result& r_;
  std::vector<client_conn> conns_;  // never resized: epoll data points into it
  std::unique_ptr<unsigned char[]> scratch_;
  int ep_ = -1;
};

// ---- idle mode -------------------------------------------------------------------------------

// Opens `count` blocking connections, one full echo on each; the descriptors stay open in `fds`.
void open_idle(const options& o, std::uint32_t first_id, unsigned count,
               std::vector<int>& fds, thread_result& r) {
  std::vector<unsigned char> back(o.size);
  for (unsigned i = 0; i < count; ++i) {
    client_conn c;
    c.id = first_id + i;
    init_request(c, o.size);
    stamp_request(c, o.size);
    int fd = socket(o.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      r.fatal = "socket: " + errno_text(errno) + (errno == EMFILE ? " (raise ulimit -n)" : "");
      return;
    }
    fds.push_back(fd);
    if (::connect(fd, target(o), o.addr_len) != 0) {
      r.fatal = "connect " + o.target + " (connection " + std::to_string(i) +
                "): " + errno_text(errno);
      return;
    }
    if (::send(fd, c.request.get(), o.size, MSG_NOSIGNAL) != ssize_t(o.size)) {
      r.fatal = "send: " + errno_text(errno);
      return;
    }
    std::size_t got = 0;
    while (got < o.size) {
      ssize_t n = ::recv(fd, back.data() + got, o.size - got, 0);
      if (n <= 0) {
        r.fatal = n == 0 ? std::string("the server closed an idle connection") : "recv: " + errno_text(errno);
        return;
      }
      got += std::size_t(n);
    }
    if (std::memcmp(back.data(), c.request.get(), o.size) != 0) {
      r.errors.fetch_add(1, std::memory_order_relaxed);
      std::fprintf(stderr, "%s: idle connection %u: the echo differs from the request\n", prog, c.id);
    }
    r.completed.store(r.completed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
}

// ---- main -----------------------------------------------------------------------------------------

double cpu_self_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double us(std::uint64_t ns) { return double(ns) / 1000.0; }

// "127.0.0.1:7007" or "127.0.0.1:7007 (LABEL)": the first line of each result table.
std::string heading(const options& o) { return o.label.empty() ? o.target : o.target + " (" + o.label + ")"; }

// The live progress line on stderr: rewritten in place on a terminal, one line per update
// otherwise (a log file keeps every second).
class progress_line {
 public:
  progress_line() : tty_(isatty(STDERR_FILENO) == 1) {}
  void show(const char* text) {
    shown_ = true;
    if (tty_) {
      std::fprintf(stderr, "\r%s\033[K", text);  // \033[K clears what a longer line left
    } else {
      std::fprintf(stderr, "%s\n", text);
    }
  }
  /// Ends the line on a terminal, so the table starts on a fresh one.
  void finish() {
    if (tty_ && shown_) std::fprintf(stderr, "\n");
  }

 private:
  bool tty_;
  bool shown_ = false;
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out += ch;
  }
  return out + "\"";
}

void write_json(const options& o, const std::string& body) {
  if (o.json.empty()) return;
  std::FILE* f = std::fopen(o.json.c_str(), "w");
  if (f == nullptr) fail("open " + o.json + ": " + errno_text(errno));
  std::fprintf(f, "%s\n", body.c_str());
  if (std::fclose(f) != 0) fail("write " + o.json + ": " + errno_text(errno));
}

int run_idle(const options& o) {
  if (o.server_pid <= 0) fail("--mode idle needs --server-pid (the server's VmRSS is what it measures)");
  long before = echo_sample::read_rss_kib(o.server_pid);
  if (before < 0) fail("cannot read /proc/" + std::to_string(o.server_pid) + "/status");

  std::vector<std::unique_ptr<thread_result>> results;
  std::vector<std::vector<int>> fds(o.threads);
  std::vector<std::thread> threads;
  auto t0 = clock_type::now();
  for (unsigned t = 0; t < o.threads; ++t) {
    results.push_back(std::make_unique<thread_result>());
    unsigned first = o.connections * t / o.threads, last = o.connections * (t + 1) / o.threads;
    threads.emplace_back([&, t, first, last] { open_idle(o, first, last - first, fds[t], *results[t]); });
  }
  for (auto& th : threads) th.join();
  double open_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::uint64_t errors = 0;
  for (auto& r : results) {
    if (!r->fatal.empty()) fail(r->fatal);
    errors += r->errors.load(std::memory_order_relaxed);
  }
  // Every fiber (or connection record) has served its echo and gone back to waiting; its last
  // steps may still run. Read until two readings 200 ms apart agree (at most 5 s).
  long after = echo_sample::read_rss_kib(o.server_pid), prev = -1;
  for (int i = 0; i < 25 && after != prev; ++i) {
    std::this_thread::sleep_for(200ms);
    prev = after;
    after = echo_sample::read_rss_kib(o.server_pid);
  }
  double per_conn = double(after - before) / double(o.connections);
  std::printf("%s: %s: idle, %u connections, one echo each, opened in %.2f s\n", prog, heading(o).c_str(),
              o.connections, open_s);
  std::printf("  %-18s %12ld KiB\n  %-18s %12ld KiB\n  %-18s %12.2f KiB\n  %-18s %12llu\n", "server VmRSS before",
              before, "server VmRSS after", after, "per connection", per_conn, "errors",
              static_cast<unsigned long long>(errors));
  if (per_conn < 1.0) {
    // A server keeps the memory of recent connections for reuse (weft's free stacks for a
    // second or two, malloc's arenas): new connections then cost it nothing more.
    std::printf("  note: under 1 KiB per connection: the server likely reused the memory of earlier\n"
                "        connections; measure a freshly started server, or one left idle for a few seconds\n");
  }
  char body[512];
  std::snprintf(body, sizeof body,
                "{\"mode\": \"idle\", \"server\": %s, \"connections\": %u, \"size\": %zu, \"rss_before_kib\": %ld, "
                "\"rss_after_kib\": %ld, \"rss_kib_per_conn\": %.3f, \"open_s\": %.3f, \"errors\": %llu}",
                json_string(o.label).c_str(), o.connections, o.size, before, after, per_conn, open_s,
                static_cast<unsigned long long>(errors));
  write_json(o, body);
  for (auto& v : fds)
    for (int fd : v) ::close(fd);
  return errors == 0 ? 0 : 1;
}

int run_load(const options& o) {
  const bool setup = o.mode == run_mode::setup;
  run_window w;
  std::latch connected(o.threads), go(1);
  std::vector<std::unique_ptr<thread_result>> results;
  std::vector<std::unique_ptr<load_thread>> loads;
  for (unsigned t = 0; t < o.threads; ++t) {
    results.push_back(std::make_unique<thread_result>());
    unsigned first = o.connections * t / o.threads, last = o.connections * (t + 1) / o.threads;
    loads.push_back(std::make_unique<load_thread>(o, w, *results[t], first, last - first));
  }
  std::vector<std::thread> threads;
  for (auto& l : loads) threads.emplace_back([&l, &connected, &go] { l->run(connected, go); });
  connected.wait();
  std::string fatal;
  for (auto& r : results)
    if (fatal.empty()) fatal = r->fatal;

  auto t0 = clock_type::now();
  w.measure_start = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.warmup));
  w.measure_end = w.measure_start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.duration));
  go.count_down();  // publishes `w` to the threads
  if (!fatal.empty()) {
    for (auto& th : threads) th.join();
    fail(fatal);
  }

  // Progress once a second; CPU readings at the edges of the measured window.
  const char* unit = setup ? "setups/s" : "req/s";
  double server_cpu0 = -1, server_cpu1 = -1, self_cpu0 = 0, self_cpu1 = 0;
  bool started = false;
  auto next_tick = t0 + 1s;
  std::uint64_t last_done = 0;
  auto last_t = t0;
  progress_line progress;
  // Ctrl-C ends the run early with the table of what was measured (exit status 130).
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  clock_type::time_point measured_end = w.measure_end;
  for (;;) {
    auto wake = std::min(next_tick, w.measure_end);
    if (!started) wake = std::min(wake, w.measure_start);
    wake = std::min(wake, clock_type::now() + 100ms);  // look at the Ctrl-C flag often
    std::this_thread::sleep_until(wake);
    auto now = clock_type::now();
    if (g_interrupted != 0) {
      w.cut.store(now.time_since_epoch().count(), std::memory_order_relaxed);
      measured_end = std::max(now, w.measure_start);
      if (started) {
        if (o.server_pid > 0) server_cpu1 = echo_sample::read_cpu_seconds(o.server_pid);
        self_cpu1 = cpu_self_seconds();
      }
      break;
    }
    if (!started && now >= w.measure_start) {
      started = true;
      if (o.server_pid > 0) server_cpu0 = echo_sample::read_cpu_seconds(o.server_pid);
      self_cpu0 = cpu_self_seconds();
    }
    if (now >= w.measure_end) {
      if (o.server_pid > 0) server_cpu1 = echo_sample::read_cpu_seconds(o.server_pid);
      self_cpu1 = cpu_self_seconds();
      break;
    }
    if (now >= next_tick) {
      std::uint64_t done = 0, errors = 0;
      for (auto& r : results) {
        done += r->completed.load(std::memory_order_relaxed);
        errors += r->errors.load(std::memory_order_relaxed);
      }
      double rate = double(done - last_done) / std::chrono::duration<double>(now - last_t).count();
      char line[256];
      std::snprintf(line, sizeof line, "%s: %4.0f s %-7s %10.0f %s %9.2f MB/s each way, %llu errors", prog,
                    std::chrono::duration<double>(now - t0).count(), next_tick <= w.measure_start ? "warm-up" : "measure",
                    rate, unit, rate * double(o.size) / 1e6, static_cast<unsigned long long>(errors));
      progress.show(line);
      last_done = done;
      last_t = now;
      next_tick += 1s;
    }
  }
  progress.finish();
  for (auto& th : threads) th.join();

  latency_histogram all;
  std::uint64_t requests = 0, errors = 0;
  unsigned unserved = 0;
  for (auto& r : results) {
    if (fatal.empty()) fatal = r->fatal;
    all.merge(r->hist);
    requests += r->requests;
    unserved += r->unserved;
    errors += r->errors.load(std::memory_order_relaxed);
  }
  if (!fatal.empty()) fail(fatal);
  // The measured seconds: --duration, or less after a Ctrl-C.
  const double measured = std::chrono::duration<double>(measured_end - w.measure_start).count();
  if (g_interrupted != 0) {
    std::fprintf(stderr, "%s: interrupted after %.1f of %.1f measured seconds; the figures cover those\n", prog,
                 measured, o.duration);
  }
  double rate = measured > 0 ? double(requests) / measured : 0.0;
  double p50 = us(all.percentile(50)), p90 = us(all.percentile(90)), p99 = us(all.percentile(99)),
         p999 = us(all.percentile(99.9));
  double server_cpu = server_cpu0 >= 0 && server_cpu1 >= 0 ? server_cpu1 - server_cpu0 : -1;
  double client_cpu = self_cpu1 - self_cpu0;
  long server_rss = o.server_pid > 0 ? echo_sample::read_rss_kib(o.server_pid) : -1;

  std::printf("%s: %s: %s, %u connections, %zu B requests, %u thread(s), %.1f s warm-up + %.1f s measured\n",
              prog, heading(o).c_str(), setup ? "setup" : "echo", o.connections, o.size, o.threads, o.warmup,
              measured);
  std::printf("  %-18s %12llu\n", setup ? "setups" : "requests", static_cast<unsigned long long>(requests));
  std::printf("  %-18s %12.1f\n", setup ? "setups/s" : "requests/s", rate);
  std::printf("  %-18s %12.0f   (each way: %.2f MB/s)\n", "bytes/s", rate * double(o.size), rate * double(o.size) / 1e6);
  const double percentiles[] = {50, 90, 99, 99.9};
  for (double p : percentiles) {
    std::printf("  latency p%-9g %12.1f us\n", p, us(all.percentile(p)));
  }
  std::printf("  %-18s %12.1f us\n", "latency max", us(all.max()));
  std::printf("  %-18s %12llu\n", "errors", static_cast<unsigned long long>(errors));
  if (unserved > 0) {
    std::printf("  %-18s %12u   (of %u: connected, but no request answered)\n", "unserved conns", unserved,
                o.connections);
    std::fprintf(stderr,
                 "%s: %u of %u connections completed no request: the server left them unserved (its accept "
                 "backlog, descriptor limit or memory); the figures cover the others\n",
                 prog, unserved, o.connections);
  }
  if (server_cpu >= 0) {
    std::printf("  %-18s %12.2f s    (%.2f us per %s)\n", "server CPU", server_cpu,
                requests > 0 ? server_cpu * 1e6 / double(requests) : 0.0, setup ? "setup" : "request");
    std::printf("  %-18s %12.2f s\n", "client CPU", client_cpu);
  }

  std::string body = "{\"mode\": \"" + std::string(setup ? "setup" : "echo") + "\", \"server\": " + json_string(o.label);
  char buf[768];
  std::snprintf(buf, sizeof buf,
                ", \"connections\": %u, \"threads\": %u, \"size\": %zu, \"warmup_s\": %.3f, \"duration_s\": %.3f, "
                "\"requests\": %llu, \"rps\": %.1f, \"p50_us\": %.3f, \"p90_us\": %.3f, \"p99_us\": %.3f, \"p999_us\": %.3f, "
                "\"max_us\": %.3f, \"mean_us\": %.3f, \"errors\": %llu, \"unserved\": %u, \"client_cpu_s\": %.3f",
                o.connections, o.threads, o.size, o.warmup, measured, static_cast<unsigned long long>(requests), rate,
                p50, p90, p99, p999, us(all.max()), all.mean() / 1000.0, static_cast<unsigned long long>(errors), unserved,
                client_cpu);
  body += buf;
  if (server_cpu >= 0) {
    std::snprintf(buf, sizeof buf, ", \"server_cpu_s\": %.3f, \"server_cpu_us_per_request\": %.3f, \"server_rss_kib\": %ld",
                  server_cpu, requests > 0 ? server_cpu * 1e6 / double(requests) : 0.0, server_rss);
    body += buf;
  }
  body += "}";
  write_json(o, body);

  if (g_interrupted != 0) return 130;
  if (requests == 0) {
    std::fprintf(stderr, "%s: no request completed in the measured window\n", prog);
    return 1;
  }
  return errors == 0 ? 0 : 1;
}

// Resolves "HOST:PORT" ("127.0.0.1:7007", "localhost:7007", "[::1]:7007") into o.addr.
bool resolve_target(const char* text, options& o) {
  std::string host, port;
  if (!sample::split_host_port(text, host, port)) return false;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    fail("cannot resolve \"" + host + "\": " + gai_strerror(rc));
  }
  std::memcpy(&o.addr, res->ai_addr, res->ai_addrlen);
  o.addr_len = res->ai_addrlen;
  freeaddrinfo(res);
  o.target = text;
  return true;
}

int parse_args(int argc, char** argv, options& o) {
  auto count = [](unsigned long lo, unsigned long hi, auto& out) {
    return [lo, hi, &out](const char* s) {
      unsigned long v = 0;
      if (!sample::parse_uint(s, hi, v) || v < lo) return false;
      out = static_cast<std::remove_reference_t<decltype(out)>>(v);
      return true;
    };
  };
  auto seconds = [](double& out) { return [&out](const char* s) { return sample::parse_seconds(s, 1e6, out); }; };
  sample::operand target{.name = "HOST:PORT",
                         .help = "the echo server (\"127.0.0.1:7007\", \"localhost:7007\", \"[::1]:7007\")",
                         .what = "a host and a port",
                         .set = [&o](const char* s) { return resolve_target(s, o); }};
  return sample::parse_command_line(
      argc, argv, prog, usage,
      {{.name = "--connections", .value_name = "C", .help = "connections (setup: concurrent loops), default 100",
        .what = "a count 1..1000000", .set = count(1, 1000000, o.connections)},
       {.name = "--size", .value_name = "B", .help = "request (= response) bytes, default 64",
        .what = "a byte count 1..16777216", .set = count(1, 1ul << 24, o.size)},
       {.name = "--duration", .value_name = "S", .help = "measured seconds (default 10)",
        .what = "a number of seconds", .set = seconds(o.duration)},
       {.name = "--warmup", .value_name = "S", .help = "unmeasured seconds before them (default 2)",
        .what = "a number of seconds", .set = seconds(o.warmup)},
       {.name = "--threads", .value_name = "T",
        .help = "client threads, each with its own epoll (default 1; on 2 cores, 1 leaves the server the most CPU)",
        .what = "a count 1..256", .set = count(1, 256, o.threads)},
       {.name = "--mode", .value_name = "M", .help = "echo (default), setup or idle: see below",
        .what = "echo, setup or idle",
        .set = [&o](const char* s) {
          std::string_view m = s;
          if (m == "echo") o.mode = run_mode::echo;
          else if (m == "setup") o.mode = run_mode::setup;
          else if (m == "idle") o.mode = run_mode::idle;
          else return false;
          return true;
        }},
       {.name = "--server-pid", .value_name = "PID",
        .help = "report that server's CPU time over the measured seconds and its VmRSS",
        .what = "a process id", .set = count(1, 1ul << 30, o.server_pid)},
       {.name = "--label", .value_name = "NAME", .help = "a name for the server, in the table and the JSON",
        .what = "a name", .set = [&o](const char* s) { o.label = s; return true; }},
       {.name = "--json", .value_name = "FILE", .help = "also write the results as JSON (bench/echo_figures.py reads it)",
        .what = "a file name", .set = [&o](const char* s) { o.json = s; return true; }}},
      &target, footer);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (int rc = parse_args(argc, argv, o); rc >= 0) return rc;
  if (o.duration <= 0 && o.mode != run_mode::idle) fail("--duration must be more than 0");
  if (o.threads > o.connections) o.threads = o.connections;
  if (o.mode != run_mode::setup && double(o.size) * o.connections > double(1ull << 30))
    fail("--size x --connections is over 1 GiB of request buffers");
  // What would only fail at the end, after the whole run: checked now.
  if (o.server_pid > 0 && ::kill(static_cast<pid_t>(o.server_pid), 0) != 0 && errno == ESRCH)
    fail("--server-pid " + std::to_string(o.server_pid) + ": no such process");
  if (!o.json.empty()) {
    // Opened for appending, so a failed run leaves an old file alone, and removed again if
    // this made it.
    const bool existed = ::access(o.json.c_str(), F_OK) == 0;
    std::FILE* f = std::fopen(o.json.c_str(), "a");
    if (f == nullptr) fail("--json " + o.json + ": " + errno_text(errno));
    std::fclose(f);
    if (!existed) ::unlink(o.json.c_str());
  }
  return o.mode == run_mode::idle ? run_idle(o) : run_load(o);
}
