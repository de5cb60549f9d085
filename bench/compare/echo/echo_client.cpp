// echo_client: the load generator for the echo servers (epoll_echo_server, weft_echo_server).
// Closed loop: each connection sends a request of --size bytes, waits for the whole echo,
// checks it byte for byte against what it sent (a mismatch is an error: the connection stops
// and the exit status is 1), records the latency and sends the next. --threads plain threads
// each drive their share of the connections through one epoll instance (non-blocking sockets,
// registered once, edge-triggered). Two more modes: `setup` (connect + one echo + close, in a
// closed loop, per second) and `idle` (hold --connections connections after one echo each and
// report the server's VmRSS growth per connection). Latencies go into a log-linear histogram
// (HdrHistogram layout): exact below 2048 ns, then 1024 buckets per power of two, so a reported
// percentile is the upper edge of the bucket holding the nearest-rank sample: at most 0.1 %
// above the true sample, never below it.
// On the 2-core machine the client shares the cores with the server (see the --threads note in
// the usage text): compare servers by rps under the same client and by server CPU per request
// (--server-pid), which the client reports.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "echo_common.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* prog = "echo_client";
constexpr const char* usage =
    "usage: echo_client --port P [--host 127.0.0.1] [--mode echo|setup|idle] [--connections C]\n"
    "                   [--duration S] [--warmup S] [--size B] [--threads T] [--server-pid PID]\n"
    "                   [--label NAME] [--json FILE]\n"
    "  --mode echo      (default) C connections in a closed loop for --warmup S then --duration S\n"
    "                   seconds; reports requests/s and latency percentiles over --duration only\n"
    "  --mode setup     C concurrent loops of connect + one echo + close; reports setups/s\n"
    "  --mode idle      opens C connections, one echo each, then reads the server's VmRSS\n"
    "                   (needs --server-pid) and reports KiB per idle connection\n"
    "  --connections C  connections (setup: concurrent loops), default 100\n"
    "  --duration S     measured seconds (default 10); --warmup S unmeasured seconds before (default 2)\n"
    "  --size B         request (= response) bytes, default 64\n"
    "  --threads T      client threads, each with its own epoll (default 1). The client shares the\n"
    "                   machine's cores with the server: on 2 cores, 1 thread leaves the server the\n"
    "                   most CPU and keeps it busy (see bench/run_echo_bench.sh)\n"
    "  --server-pid PID report the server's CPU time over the measured seconds (and its VmRSS)\n"
    "  --label NAME     copied into the JSON as \"server\"\n"
    "  --json FILE      also write the results as JSON\n"
    "Progress goes to stderr once a second; the result line to stdout. Exit status: 0, 1 if any\n"
    "request failed or an echo differed from the request, 2 on a setup error.\n";

enum class run_mode { echo, setup, idle };

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
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

// ---- latency histogram -------------------------------------------------------------------------

/// Log-linear buckets of nanoseconds, as HdrHistogram with 3 significant digits: values below
/// 2^11 each have a bucket; above, each power of two [2^e, 2^(e+1)) has 1024 buckets of width
/// 2^(e-10). Values from 2^40 ns (18 minutes) up share the last bucket.
class latency_histogram {
 public:
  static constexpr int linear_bits = 11;
  static constexpr int sub_bits = 10;
  static constexpr int max_exp = 40;
  static constexpr std::size_t linear = std::size_t(1) << linear_bits;
  static constexpr std::size_t sub = std::size_t(1) << sub_bits;
  static constexpr std::size_t buckets = linear + std::size_t(max_exp - linear_bits) * sub;

  latency_histogram() : counts_(buckets, 0) {}

  void record(std::uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
    sum_ += ns;
    max_ = std::max(max_, ns);
  }
  void merge(const latency_histogram& o) {
    for (std::size_t i = 0; i < buckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
  }
  std::uint64_t total() const { return total_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return total_ == 0 ? 0 : double(sum_) / double(total_); }

  /// The nearest-rank percentile `p` (0 < p <= 100): the smallest recorded value v such that at
  /// least p % of the samples are <= v, given as its bucket's upper edge (capped at the max).
  std::uint64_t percentile(double p) const {
    if (total_ == 0) return 0;
    // rank = ceil(p/100 * total), computed in integers for p with at most 3 decimals.
    auto milli = std::uint64_t(std::llround(p * 1000));
    std::uint64_t rank = (total_ * milli + 100000 - 1) / 100000;
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

 private:
  static std::size_t index(std::uint64_t v) {
    if (v < linear) return std::size_t(v);
    if (v >= (std::uint64_t(1) << max_exp)) v = (std::uint64_t(1) << max_exp) - 1;
    int e = 63 - __builtin_clzll(v);  // linear_bits <= e < max_exp
    return linear + std::size_t(e - linear_bits) * sub + std::size_t((v >> (e - sub_bits)) - sub);
  }
  static std::uint64_t upper(std::size_t i) {
    if (i < linear) return i;
    std::size_t k = i - linear;
    int e = linear_bits + int(k / sub);
    std::uint64_t width = std::uint64_t(1) << (e - sub_bits);
    return (sub + k % sub) * width + width - 1;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0, sum_ = 0, max_ = 0;
};

// ---- shared state --------------------------------------------------------------------------------

struct run_window {
  clock_type::time_point measure_start, measure_end;  // written before `go` opens
};

// One client thread's results. Ownership: `hist`, `requests` and `fatal` belong to the thread
// until it is joined; `completed` and `errors` are read by the progress loop (relaxed: counters).
struct alignas(64) thread_result {
  std::atomic<std::uint64_t> completed{0};  // every completed request (or setup), warm-up included
  std::atomic<std::uint64_t> errors{0};
  latency_histogram hist;                   // the measured window only
  std::uint64_t requests = 0;               // completed inside the measured window
  std::string fatal;                        // a setup failure that ends the run (exit 2)
  unsigned printed = 0;                     // error messages printed (at most a few per thread)
};

struct client_conn {
  int fd = -1;
  std::uint32_t id = 0;
  std::uint64_t seq = 0;
  std::size_t sent = 0, received = 0;
  bool connecting = false;  // setup mode: a non-blocking connect in progress
  bool dead = false;
  clock_type::time_point start;
  std::unique_ptr<unsigned char[]> request;
};

sockaddr_in server_addr(const options& o) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(o.port);
  if (inet_pton(AF_INET, o.host.c_str(), &a.sin_addr) != 1)
    echo_bench::fail(prog, "--host wants an IPv4 address such as 127.0.0.1, not \"" + o.host + "\"");
  return a;
}

std::string errno_text(int err) { return std::system_category().message(err); }

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
  load_thread(const options& o, const sockaddr_in& addr, const run_window& w, thread_result& r, std::uint32_t first_id,
              unsigned count)
      : o_(o), addr_(addr), w_(w), r_(r), conns_(count), scratch_(new unsigned char[scratch_size]) {
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
      if (now >= w_.measure_end) break;
      auto left = std::chrono::ceil<std::chrono::milliseconds>(w_.measure_end - now).count();
      int n = epoll_wait(ep_, events, 256, int(std::min<long long>(left, 100)));
      if (n < 0) {
        if (errno == EINTR) continue;
        r_.fatal = "epoll_wait: " + errno_text(errno);
        return;
      }
      for (int i = 0; i < n; ++i) on_ready(*static_cast<client_conn*>(events[i].data.ptr));
    }
  }

 private:
  static constexpr std::size_t scratch_size = 64 * 1024;

  void connect_all() {
    for (auto& c : conns_) {
      c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c.fd < 0) {
        r_.fatal = "socket: " + errno_text(errno) + (errno == EMFILE ? " (raise ulimit -n)" : "");
        return;
      }
      // Blocking connect: simple, and loopback connects complete in one call.
      if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0) {
        r_.fatal = "connect " + o_.host + ":" + std::to_string(o_.port) + ": " + errno_text(errno);
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
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return error(c, "socket: " + errno_text(errno));
    set_nodelay(c.fd);
    int rc = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_);
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
    if (now >= w_.measure_start && now < w_.measure_end) {
      r_.hist.record(std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.start).count()));
      ++r_.requests;
    }
    r_.completed.store(r_.completed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (o_.mode == run_mode::setup) {
      ::close(c.fd);  // also leaves the epoll set
      c.fd = -1;
      if (now < w_.measure_end) start_cycle(c, now);
    } else if (now < w_.measure_end) {
      // The next response raises a new EPOLLIN edge: no recv until then.
      start_request(c, now);
    }
  }

  const options& o_;
  const sockaddr_in& addr_;
  const run_window& w_;
  thread_result& r_;
  std::vector<client_conn> conns_;  // never resized: epoll data points into it
  std::unique_ptr<unsigned char[]> scratch_;
  int ep_ = -1;
};

// ---- idle mode -------------------------------------------------------------------------------

// Opens `count` blocking connections, one full echo on each; the descriptors stay open in `fds`.
void open_idle(const options& o, const sockaddr_in& addr, std::uint32_t first_id, unsigned count,
               std::vector<int>& fds, thread_result& r) {
  std::vector<unsigned char> back(o.size);
  for (unsigned i = 0; i < count; ++i) {
    client_conn c;
    c.id = first_id + i;
    init_request(c, o.size);
    stamp_request(c, o.size);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      r.fatal = "socket: " + errno_text(errno) + (errno == EMFILE ? " (raise ulimit -n)" : "");
      return;
    }
    fds.push_back(fd);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      r.fatal = "connect " + o.host + ":" + std::to_string(o.port) + " (connection " + std::to_string(i) +
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
  if (f == nullptr) echo_bench::fail_errno(prog, "open " + o.json, errno);
  std::fprintf(f, "%s\n", body.c_str());
  if (std::fclose(f) != 0) echo_bench::fail_errno(prog, "write " + o.json, errno);
}

int run_idle(const options& o, const sockaddr_in& addr) {
  if (o.server_pid <= 0) echo_bench::fail(prog, "--mode idle needs --server-pid (the server's VmRSS is what it measures)");
  long before = echo_bench::read_rss_kib(o.server_pid);
  if (before < 0) echo_bench::fail(prog, "cannot read /proc/" + std::to_string(o.server_pid) + "/status");

  std::vector<std::unique_ptr<thread_result>> results;
  std::vector<std::vector<int>> fds(o.threads);
  std::vector<std::thread> threads;
  auto t0 = clock_type::now();
  for (unsigned t = 0; t < o.threads; ++t) {
    results.push_back(std::make_unique<thread_result>());
    unsigned first = o.connections * t / o.threads, last = o.connections * (t + 1) / o.threads;
    threads.emplace_back([&, t, first, last] { open_idle(o, addr, first, last - first, fds[t], *results[t]); });
  }
  for (auto& th : threads) th.join();
  double open_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::uint64_t errors = 0;
  for (auto& r : results) {
    if (!r->fatal.empty()) echo_bench::fail(prog, r->fatal);
    errors += r->errors.load(std::memory_order_relaxed);
  }
  // Every fiber (or connection record) has served its echo and gone back to waiting; its last
  // steps may still run. Read until two readings 200 ms apart agree (at most 5 s).
  long after = echo_bench::read_rss_kib(o.server_pid), prev = -1;
  for (int i = 0; i < 25 && after != prev; ++i) {
    std::this_thread::sleep_for(200ms);
    prev = after;
    after = echo_bench::read_rss_kib(o.server_pid);
  }
  double per_conn = double(after - before) / double(o.connections);
  std::printf("%s: %s%s%u idle connections (one echo each, opened in %.2f s): server VmRSS %ld -> %ld KiB, "
              "%.2f KiB per connection, errors %llu\n",
              prog, o.label.c_str(), o.label.empty() ? "" : ": ", o.connections, open_s, before, after, per_conn,
              static_cast<unsigned long long>(errors));
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

int run_load(const options& o, const sockaddr_in& addr) {
  const bool setup = o.mode == run_mode::setup;
  run_window w;
  std::latch connected(o.threads), go(1);
  std::vector<std::unique_ptr<thread_result>> results;
  std::vector<std::unique_ptr<load_thread>> loads;
  for (unsigned t = 0; t < o.threads; ++t) {
    results.push_back(std::make_unique<thread_result>());
    unsigned first = o.connections * t / o.threads, last = o.connections * (t + 1) / o.threads;
    loads.push_back(std::make_unique<load_thread>(o, addr, w, *results[t], first, last - first));
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
    echo_bench::fail(prog, fatal);
  }

  // Progress once a second; CPU readings at the edges of the measured window.
  const char* unit = setup ? "setups/s" : "req/s";
  double server_cpu0 = -1, server_cpu1 = -1, self_cpu0 = 0, self_cpu1 = 0;
  bool started = false;
  auto next_tick = t0 + 1s;
  std::uint64_t last_done = 0;
  auto last_t = t0;
  for (;;) {
    auto wake = std::min(next_tick, w.measure_end);
    if (!started) wake = std::min(wake, w.measure_start);
    std::this_thread::sleep_until(wake);
    auto now = clock_type::now();
    if (!started && now >= w.measure_start) {
      started = true;
      if (o.server_pid > 0) server_cpu0 = echo_bench::read_cpu_seconds(o.server_pid);
      self_cpu0 = cpu_self_seconds();
    }
    if (now >= w.measure_end) {
      if (o.server_pid > 0) server_cpu1 = echo_bench::read_cpu_seconds(o.server_pid);
      self_cpu1 = cpu_self_seconds();
      break;
    }
    if (now >= next_tick) {
      std::uint64_t done = 0, errors = 0;
      for (auto& r : results) {
        done += r->completed.load(std::memory_order_relaxed);
        errors += r->errors.load(std::memory_order_relaxed);
      }
      double dt = std::chrono::duration<double>(now - last_t).count();
      std::fprintf(stderr, "%s: %5.0f s %-7s %10.0f %s (last second), %llu errors\n", prog,
                   std::chrono::duration<double>(now - t0).count(), next_tick <= w.measure_start ? "warm-up" : "measure",
                   double(done - last_done) / dt, unit, static_cast<unsigned long long>(errors));
      last_done = done;
      last_t = now;
      next_tick += 1s;
    }
  }
  for (auto& th : threads) th.join();

  latency_histogram all;
  std::uint64_t requests = 0, errors = 0;
  for (auto& r : results) {
    if (fatal.empty()) fatal = r->fatal;
    all.merge(r->hist);
    requests += r->requests;
    errors += r->errors.load(std::memory_order_relaxed);
  }
  if (!fatal.empty()) echo_bench::fail(prog, fatal);
  double rate = double(requests) / o.duration;
  double p50 = us(all.percentile(50)), p99 = us(all.percentile(99)), p999 = us(all.percentile(99.9));
  double server_cpu = server_cpu0 >= 0 && server_cpu1 >= 0 ? server_cpu1 - server_cpu0 : -1;
  double client_cpu = self_cpu1 - self_cpu0;
  long server_rss = o.server_pid > 0 ? echo_bench::read_rss_kib(o.server_pid) : -1;

  std::printf("%s: %s%s%u connections, %zu B, %.1f s: %llu %s, %.1f %s, p50 %.1f us, p99 %.1f us, p99.9 %.1f us, "
              "max %.1f us, errors %llu",
              prog, o.label.c_str(), o.label.empty() ? "" : ": ", o.connections, o.size, o.duration,
              static_cast<unsigned long long>(requests), setup ? "setups" : "requests", rate, unit, p50, p99, p999,
              us(all.max()), static_cast<unsigned long long>(errors));
  if (server_cpu >= 0)
    std::printf(", server CPU %.2f s (%.2f us per %s), client CPU %.2f s", server_cpu,
                requests > 0 ? server_cpu * 1e6 / double(requests) : 0.0, setup ? "setup" : "request", client_cpu);
  std::printf("\n");

  std::string body = "{\"mode\": \"" + std::string(setup ? "setup" : "echo") + "\", \"server\": " + json_string(o.label);
  char buf[768];
  std::snprintf(buf, sizeof buf,
                ", \"connections\": %u, \"threads\": %u, \"size\": %zu, \"warmup_s\": %.3f, \"duration_s\": %.3f, "
                "\"requests\": %llu, \"rps\": %.1f, \"p50_us\": %.3f, \"p99_us\": %.3f, \"p999_us\": %.3f, "
                "\"max_us\": %.3f, \"mean_us\": %.3f, \"errors\": %llu, \"client_cpu_s\": %.3f",
                o.connections, o.threads, o.size, o.warmup, o.duration, static_cast<unsigned long long>(requests), rate,
                p50, p99, p999, us(all.max()), all.mean() / 1000.0, static_cast<unsigned long long>(errors), client_cpu);
  body += buf;
  if (server_cpu >= 0) {
    std::snprintf(buf, sizeof buf, ", \"server_cpu_s\": %.3f, \"server_cpu_us_per_request\": %.3f, \"server_rss_kib\": %ld",
                  server_cpu, requests > 0 ? server_cpu * 1e6 / double(requests) : 0.0, server_rss);
    body += buf;
  }
  body += "}";
  write_json(o, body);

  if (requests == 0) {
    std::fprintf(stderr, "%s: no request completed in the measured window\n", prog);
    return 1;
  }
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  echo_bench::args a(prog, usage, argc, argv);
  bool have_port = false;
  while (a.advance()) {
    unsigned long long v = 0;
    std::string_view text;
    if (a.value("--port", v, 1, 65535)) {
      o.port = std::uint16_t(v);
      have_port = true;
    } else if (a.value("--host", text)) {
      o.host = std::string(text);
    } else if (a.value("--mode", text)) {
      if (text == "echo") o.mode = run_mode::echo;
      else if (text == "setup") o.mode = run_mode::setup;
      else if (text == "idle") o.mode = run_mode::idle;
      else a.bad("--mode wants echo, setup or idle, not \"" + std::string(text) + "\"");
    } else if (a.value("--connections", v, 1, 1000000)) {
      o.connections = unsigned(v);
    } else if (a.seconds("--duration", o.duration) || a.seconds("--warmup", o.warmup)) {
    } else if (a.value("--size", v, 1, 1 << 24)) {
      o.size = std::size_t(v);
    } else if (a.value("--threads", v, 1, 256)) {
      o.threads = unsigned(v);
    } else if (a.value("--server-pid", v, 1, 1u << 30)) {
      o.server_pid = long(v);
    } else if (a.value("--label", text)) {
      o.label = std::string(text);
    } else if (a.value("--json", text)) {
      o.json = std::string(text);
    } else {
      a.unknown();
    }
  }
  if (!have_port) a.bad("--port is required");
  if (o.duration <= 0 && o.mode != run_mode::idle) a.bad("--duration must be more than 0");
  if (o.threads > o.connections) o.threads = o.connections;
  if (o.mode != run_mode::setup && double(o.size) * o.connections > double(1ull << 30))
    a.bad("--size x --connections is over 1 GiB of request buffers");
  sockaddr_in addr = server_addr(o);
  return o.mode == run_mode::idle ? run_idle(o, addr) : run_load(o, addr);
}
